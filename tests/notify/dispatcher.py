"""A hub's SMS dispatch in its own process, for the kill test: the jobs of ``hub/jobs/notify.py``
against the given config, until the outbox holds nothing due (then ``DONE`` on stdout)."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import func, select

from thanthien.config import load_config
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import SmsMessage
from thanthien.hub.db.session import Database
from thanthien.hub.jobs import contexts, notify
from thanthien.hub.settings import HubSettings


def main() -> None:
    settings = load_config(HubSettings, Path(sys.argv[1]))
    ctx = HubContext(settings=settings, db=Database(settings.database_url))
    contexts.register("kill-test", ctx)
    while True:
        notify.dispatch_sms("kill-test")
        with ctx.db.session(write=False) as s:
            left = s.scalar(select(func.count()).select_from(SmsMessage).where(SmsMessage.status == "queued"))
        if not left:
            print("DONE", flush=True)
            return


if __name__ == "__main__":
    main()
