"""A hub for the fleet tests: the app served by uvicorn on a free loopback port (nodes enroll
over real HTTP), its MQTT link to a real Mosquitto with the ingest attached (config status,
command answers), enrollment writing that broker's password file."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from hub.hub_helpers import hub_settings
from support import HUB, mqtt_settings, wait_until
from thanthien.broker import Broker, free_port
from thanthien.hub.app import create_app
from thanthien.hub.context import HubContext
from thanthien.hub.db.session import Database
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.mqtt import MqttLink


@dataclass
class FleetHub:
    url: str
    ctx: HubContext
    worker: IngestWorker
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.worker.stop()
        if self.ctx.mqtt is not None:
            self.ctx.mqtt.stop()


def start_fleet_hub(db: Database, tmp_path: Path, broker: Broker, *,
                    enrollment: dict[str, Any] | None = None, **sections: Any) -> FleetHub:
    """The hub on a free port over ``db``, linked to ``broker`` as its hub user."""
    enrollment = {"broker_data": str(broker.data_dir), "broker_host": "127.0.0.1", "broker_port": broker.port,
                  **(enrollment or {})}  # never the machine's own broker on 1883
    settings = hub_settings(tmp_path, enrollment=enrollment,
                            mqtt={"host": "127.0.0.1", "port": broker.port, "username": HUB.username,
                                  "password": HUB.password, "reconnect_min_s": 0.1, "reconnect_max_s": 1.0},
                            fleet={"command_timeout_s": 5.0}, **sections)
    ctx = HubContext(settings=settings, db=db)  # the real clock: nodes and broker run in real time
    link = MqttLink(client_id="test-fleet-hub", settings=mqtt_settings(broker.port, HUB), persistent=False)
    worker = IngestWorker(ctx)
    worker.attach(link)
    worker.start()
    ctx.mqtt = link
    link.start()
    assert link.wait_connected(10) and link.subscribed.wait(10)
    app = create_app(settings, db, link, ctx=ctx)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=2, lifespan="off"))
    thread = threading.Thread(target=server.run, name="fleet-hub", daemon=True)
    thread.start()
    assert wait_until(lambda: server.started, timeout=15), "the hub did not start"
    return FleetHub(url=f"http://127.0.0.1:{port}", ctx=ctx, worker=worker, server=server, thread=thread)
