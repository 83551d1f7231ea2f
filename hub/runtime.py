"""One hub process: the API, the MQTT ingest and the scheduler, each optional (``roles``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from thanthien import __version__
from thanthien.hub.app import create_app
from thanthien.hub.context import HubContext
from thanthien.hub.db.session import Database
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.jobs.scheduler import build_scheduler, unregister_context
from thanthien.hub.services import registry
from thanthien.hub.settings import ALL_PROCESS_ROLES, DEFAULT_SECRET, HubSettings, ProcessRole
from thanthien.mqtt import MqttLink, Will
from thanthien.protocol.payloads import HubState, utc_now

log = logging.getLogger(__name__)


def parse_roles(text: str) -> tuple[ProcessRole, ...]:
    roles = tuple(r.strip() for r in text.split(",") if r.strip())
    bad = [r for r in roles if r not in ALL_PROCESS_ROLES]
    if bad or not roles:
        raise ValueError(
            f"roles must be a comma-separated subset of {','.join(ALL_PROCESS_ROLES)} (got {text!r})")
    return roles  # type: ignore[return-value]


class HubRuntime:
    def __init__(self, settings: HubSettings, roles: Iterable[ProcessRole] = ALL_PROCESS_ROLES,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.roles = tuple(roles)
        self.db = Database(settings.database_url)
        self.ctx = HubContext(settings=settings, db=self.db, clock=clock)
        self.link: MqttLink | None = None
        self.worker: IngestWorker | None = None
        self.scheduler: BackgroundScheduler | None = None
        self.server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self._context_name = f"hub-{id(self)}"

    def _hub_state(self, state: str) -> bytes:
        return HubState(state=state, at=self.ctx.clock(), version=__version__).to_bytes()  # type: ignore[arg-type]

    def start(self) -> None:
        if self.settings.database.migrate_on_start:
            self.db.migrate()
        with self.db.session() as session:
            registry.apply_declarations(session, registry=self.settings.registry)
        if "ingest" in self.roles:
            self._start_ingest()
        if "scheduler" in self.roles:
            self.scheduler = build_scheduler(self.ctx, self._context_name)
            self.scheduler.start()
        if "api" in self.roles:
            self._start_api()
        log.info("hub started with roles %s (database %s)", ",".join(self.roles),
                 self.db.url.render_as_string(hide_password=True))

    def _start_ingest(self) -> None:
        topics = self.ctx.topics
        link = MqttLink(
            client_id=self.settings.ingest.client_id, settings=self.settings.mqtt,
            will=Will(topics.hub_state(), self._hub_state("offline")), persistent=True,
            on_connected=lambda lk, _present: lk.publish(topics.hub_state(), self._hub_state("online"),
                                                         qos=1, retain=True))
        worker = IngestWorker(self.ctx)
        worker.attach(link)
        worker.start()
        self.ctx.mqtt, self.ctx.queue_depth = link, worker.depth
        self.link, self.worker = link, worker
        link.start()

    def _start_api(self) -> None:
        if self.settings.http.secret_key.get_secret_value() == DEFAULT_SECRET:
            log.warning("http.secret_key is the built-in default: anyone can forge login tokens; "
                        "set a long random value (THANTHIEN_HUB_HTTP__SECRET_KEY)")
        app = create_app(self.settings, self.db, self.link, self.scheduler, ctx=self.ctx)
        http = self.settings.http
        # A slow request (or an open event stream) may hold a stopping hub at most 2 s.
        config = uvicorn.Config(app, host=http.host, port=http.port, log_config=None, access_log=False,
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self._server_thread = threading.Thread(target=self.server.run, name="hub-http", daemon=True)
        self._server_thread.start()

    @property
    def api_failed(self) -> bool:
        """The HTTP server thread ended without being asked to (e.g. port in use)."""
        return (self._server_thread is not None and not self._server_thread.is_alive()
                and self.server is not None and not self.server.should_exit)

    def healthy(self) -> bool:
        """What the systemd watchdog checks: the ingest thread and the scheduler still run
        (a broker outage is not ill health: the link reconnects by itself)."""
        if self.worker is not None and not self.worker.alive:
            return False
        return not (self.scheduler is not None and not self.scheduler.running)

    def wait_http(self, timeout: float) -> bool:
        stop = threading.Event()
        deadline = timeout
        while deadline > 0:
            if self.server is not None and self.server.started:
                return True
            if self.api_failed:
                return False
            stop.wait(0.05)
            deadline -= 0.05
        return False

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            if self._server_thread is not None:
                self._server_thread.join(10)
        if self.scheduler is not None:
            # Jobs that start from now on find no context and return. APScheduler 3 holds its
            # job-store lock while it waits for running jobs, so a job that calls back into
            # the scheduler (re-arming a delivery check) would wait forever: bound the wait.
            unregister_context(self._context_name)
            stopper = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True},
                                       name="scheduler-stop", daemon=True)
            stopper.start()
            stopper.join(10)
            if stopper.is_alive():
                log.error("scheduler jobs still running after 10 s; stopping without them")
        if self.worker is not None:
            self.worker.stop()
        if self.link is not None:
            self.link.stop(final=(self.ctx.topics.hub_state(), self._hub_state("offline"), True))
        self.db.dispose()
        log.info("hub stopped")
