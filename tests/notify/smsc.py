"""A test SMSC: smpp34's SMPP 3.4 server (not the project's code) in its own process.

It accepts every bind and every ``submit_sm``; each accepted message is appended to the
ledger (one JSON line, fsynced before the ``submit_sm_resp``), then a delivery receipt goes
back when the ESME asked for one. With ``--die-after N`` it stops dead once the Nth message
is in the ledger, before answering it (an SMSC that took a message and dropped the link). A
JSON file dropped into ``--mo-dir`` (``{"from": "+84…", "text": "4"}``) is sent to the bound
ESME as a text from a phone (MO). ``READY <port>`` on stdout once it listens. Run:
``python smsc.py --port P --ledger FILE --mo-dir DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid
from pathlib import Path

import smpp34


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ledger", type=Path, required=True)
    ap.add_argument("--mo-dir", type=Path, required=True)
    ap.add_argument(
        "--refuse", type=int, default=0, help="Answer the first N submit_sm with ESME_RTHROTTLED."
    )
    ap.add_argument(
        "--die-after", type=int, default=0,
        help="Stop dead once the Nth message is in the ledger, before its submit_sm_resp.",
    )
    args = ap.parse_args()
    args.mo_dir.mkdir(parents=True, exist_ok=True)
    server = smpp34.Server(host="127.0.0.1", port=args.port, system_id="TESTSMSC")
    await server.start()
    print(f"READY {args.port}", flush=True)
    sessions: dict[str, smpp34.Esme] = {}
    refuse = args.refuse
    stored = 0

    async def mo_loop() -> None:
        while True:
            for path in sorted(args.mo_dir.glob("*.json")):
                if not sessions:
                    break
                mo = json.loads(path.read_text(encoding="utf-8"))
                esme = next(iter(sessions.values()))
                await esme.deliver_sm(
                    destination_addr="TESTSMSC",
                    source_addr=mo["from"].lstrip("+"),
                    short_message=mo["text"].encode("latin-1"),
                )
                path.unlink()
            await asyncio.sleep(0.05)

    asyncio.get_running_loop().create_task(mo_loop())
    while True:
        ev = await server.next()
        if isinstance(ev, smpp34.Esme):
            sessions[ev.session_id] = ev
        elif isinstance(ev, smpp34.Unbound):
            sessions.pop(ev.session_id, None)
        elif isinstance(ev, smpp34.SubmitSmEvent):
            if refuse > 0:
                refuse -= 1
                ev.reject(smpp34.ESME_RTHROTTLED)
                continue
            mid = uuid.uuid4().hex[:16]
            with open(args.ledger, "a", encoding="utf-8") as f:
                f.write(
                    json.dumps(
                        {
                            "id": mid,
                            "to": ev.destination_addr,
                            "from": ev.source_addr,
                            "from_ton": ev.source_addr_ton,
                            "coding": ev.data_coding,
                            "esm": ev.esm_class,
                            "text": ev.short_message.decode("latin-1"),
                        }
                    )
                    + "\n"
                )
                f.flush()
                os.fsync(f.fileno())
            stored += 1
            if stored == args.die_after:
                os._exit(1)  # the message is stored and its answer never goes
            ev.accept(message_id=mid)
            if ev.registered_delivery & 1 and ev.session_id in sessions:
                await sessions[ev.session_id].deliver_sm(
                    destination_addr=ev.source_addr,
                    source_addr=ev.destination_addr,
                    esm_class=0x04,
                    short_message=f"id:{mid} sub:001 dlvrd:001 submit date:2612011030 done date:2612011030 "
                    f"stat:DELIVRD err:000 text:".encode(),
                )


if __name__ == "__main__":
    asyncio.run(main())
