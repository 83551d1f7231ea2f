"""Edge footprint: resident memory and idle CPU of the real edge agent process
(``thanthien edge run``) with a rating box, a speaker (amplifier relay, media cache, plan
player) and four cameras (simulated cameras on loopback, checked every minute), connected
to a private broker; against a bare process that only imports paho-mqtt, connects as a node
and publishes its retained state, measured the same way in the same run.

Both run as their own processes; after they are online and have settled, RSS (VmRSS, and the
peak VmHWM) is read from /proc and their CPU time is sampled over an idle window."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from thanthien.bench.common import Options, Result, Target, proc_cpu_s, proc_rss_mb, run_measured, wait_for
from thanthien.bench.load import start_broker
from thanthien.paths import PROJECT_ROOT
from thanthien.protocol import Topics

log = logging.getLogger(__name__)

NAME = "edge_footprint"
TITLE = "Edge footprint: agent RSS and idle CPU (rating box, speaker, 4 cameras) vs a bare MQTT client"
T = Topics()
NODE = "bench-edge"
BARE = "bench-bare"

BARE_SCRIPT = """
import json, sys, threading
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
port, user, password, topic = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
c = paho.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=paho.MQTTv5)
c.username_pw_set(user, password)
c.will_set(topic, json.dumps({"state": "lost"}), qos=1, retain=True)
c.on_connect = lambda cl, *_a: cl.publish(topic, json.dumps({"state": "online"}), qos=1, retain=True)
c.connect("127.0.0.1", int(port), keepalive=30)
c.loop_start()
threading.Event().wait()
"""


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def write_config(path: Path, tables: dict[str, dict[str, Any]],
                 arrays: dict[str, list[dict[str, Any]]]) -> Path:
    lines: list[str] = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
    for name, items in arrays.items():
        for item in items:
            lines.append(f"[[{name}]]")
            lines += [f"{k} = {_toml(v)}" for k, v in item.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _measure(pid: int, settle_s: float, window_s: float, stop: threading.Event) -> dict[str, float]:
    stop.wait(settle_s)
    cpu0 = proc_cpu_s(pid)
    stop.wait(window_s)
    cpu1 = proc_cpu_s(pid)
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    hwm = next((int(x.split()[1]) / 1024 for x in status if x.startswith("VmHWM:")), 0.0)
    threads = next((int(x.split()[1]) for x in status if x.startswith("Threads:")), 0)
    return {"rss_mb": round(proc_rss_mb(pid), 1), "peak_rss_mb": round(hwm, 1),
            "idle_cpu_pct": round(100 * (cpu1 - cpu0) / window_s, 3), "threads": threads}


def run(opts: Options) -> Result:
    return run_measured(NAME, TITLE, opts, lambda r: _body(r, opts))


def _body(result: Result, opts: Options) -> None:
    from thanthien.sim.cameras.camera import SimCamera

    settle_s = opts.pick(15.0, 8.0, 3.0)
    window_s = opts.pick(90.0, 20.0, 4.0)
    camera_interval = opts.pick(60.0, 10.0, 2.0)
    work = opts.work_dir / "edge_footprint"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    broker = start_broker(work / "broker", [NODE, BARE])
    cameras = [SimCamera().start() for _ in range(4)]
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    try:
        config = write_config(work / "edge.toml", {
            "node": {"id": NODE, "hardware": "mock", "data_dir": str(work / "node")},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "password": broker.passwords[NODE]},
            "telemetry": {"interval_s": 30},
            "audio": {"output": "null"},
            "logging": {"level": "WARNING"},
            "speakers": {"hub_url": "http://127.0.0.1:9/api/", "relay_pin": 26},
        }, {
            "rating_boxes": [{"id": "box-1", "counter": "quay-1", "led_pin": 21}],
            "cameras": [{"id": f"cam-{i + 1}", "rtsp_url": cam.rtsp_url, "snapshot_url": cam.snapshot_url,
                         "username": cam.auth.username, "password": cam.auth.password,
                         "interval_s": camera_interval} for i, cam in enumerate(cameras)],
        })
        with (work / "edge.log").open("wb") as log_file:
            agent = subprocess.Popen([sys.executable, "-m", "thanthien.cli", "edge", "run", "--config",
                                      str(config)], cwd=PROJECT_ROOT, stdout=log_file, stderr=log_file)
        procs.append(agent)
        bare = subprocess.Popen([sys.executable, "-c", BARE_SCRIPT, str(broker.port), BARE,
                                 broker.passwords[BARE], T.node_state(BARE)], stdout=subprocess.DEVNULL)
        procs.append(bare)
        if not _online(broker.port, broker.passwords["hub"], [NODE, BARE]):
            raise RuntimeError(f"the agent or the bare client did not come online (see {work / 'edge.log'})")
        measured: dict[str, dict[str, float]] = {}
        threads = [threading.Thread(target=lambda p=p, k=k: measured.__setitem__(
            k, _measure(p.pid, settle_s, window_s, stop))) for k, p in (("agent", agent), ("bare", bare))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if agent.poll() is not None:
            raise RuntimeError(f"the agent exited with {agent.returncode} (see {work / 'edge.log'})")
    finally:
        stop.set()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        for cam in cameras:
            cam.close()
        broker.stop()
    a, b = measured["agent"], measured["bare"]
    keys = ("rss_mb", "peak_rss_mb", "idle_cpu_pct")
    result.figures = {k: a[k] for k in keys}
    result.baseline = {k: b[k] for k in keys}
    result.ratio = {k: round(a[k] / b[k], 2) for k in keys if b[k] > 0}
    result.params = {"settle_s": settle_s, "idle_window_s": window_s, "camera_interval_s": camera_interval,
                     "telemetry_interval_s": 30, "agent_threads": a["threads"], "bare_threads": b["threads"],
                     "devices": "1 rating box (4 buttons, LED), 1 speaker (relay, plan player), 4 cameras"}
    result.targets += [
        Target("edge agent resident memory", "≤ 60 MB", a["rss_mb"], "MB", a["rss_mb"] <= 60,
               "" if a["rss_mb"] <= 60 else WHY_RSS),
        Target("edge agent idle CPU", "≤ 1 % of a core", a["idle_cpu_pct"], "%", a["idle_cpu_pct"] <= 1,
               "" if a["idle_cpu_pct"] <= 1 else WHY_CPU),
    ]
    result.notes.append("Measured on x86-64; a Pi Zero 2 W core (Cortex-A53, 1 GHz) is several times slower, "
                        "so idle CPU there is a few times the figure here; memory is about the same on "
                        "64-bit Raspberry Pi OS.")
    result.method = __doc__ or ""


WHY_RSS = ("Python itself with pydantic, paho-mqtt, gpiozero and the agent's modules: the bare client "
           "(Python + paho only) is the floor, shown as the baseline.")
WHY_CPU = ("The idle window includes the camera checks (a snapshot fetched and decoded per camera), "
           "the telemetry tick and the plan player's wake-ups.")


def _online(port: int, hub_password: str, nodes: list[str], timeout: float = 90.0) -> bool:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    seen: set[str] = set()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{os.getpid()}",
                         protocol=paho.MQTTv5)
    client.username_pw_set("hub", hub_password)

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        try:
            if json.loads(msg.payload).get("state") == "online":
                seen.add(msg.topic)
        except ValueError:
            pass

    client.on_message = on_message
    client.on_connect = lambda c, *_a: c.subscribe([(T.node_state(n), 1) for n in nodes])
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        return wait_for(lambda: len(seen) == len(nodes), timeout)
    finally:
        client.disconnect()
        client.loop_stop()
