"""One hub process: the API, the MQTT ingest and the scheduler, each optional (``roles``).

On PostgreSQL several such processes may share the database (``hub/leases.py``): each one
with the scheduler role takes part in the election of the one scheduler, and, when the ingest
is split between workers (``ingest.shared_group``), each ingest worker in the election of the
one owner of the retained node state and camera health. The owner receives those on an MQTT
connection of its own (clean start, so every connect brings the retained copies: a new owner
starts from the current state of every node and camera), which also carries the hub's
presence (its Last Will and ``online``); the others subscribe the shared kinds only. On SQLite
(one process) there is no election: the process runs the scheduler and owns the state.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from datetime import datetime
from typing import Any

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from thanthien import __version__
from thanthien.hub.app import create_app
from thanthien.hub.context import HubContext
from thanthien.hub.db.session import Database
from thanthien.hub.ingest.table import HANDLERS, SHAREABLE
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.jobs import contexts
from thanthien.hub.jobs.scheduler import build_scheduler, unregister_context
from thanthien.hub.leases import ELECTION_RETRY_S, Election, Lease, one_at_a_time
from thanthien.hub.services import registry
from thanthien.hub.settings import ALL_PROCESS_ROLES, DEFAULT_SECRET, HubSettings, ProcessRole
from thanthien.mqtt import Handler, MqttLink, Will
from thanthien.protocol.payloads import HubState, utc_now

log = logging.getLogger(__name__)


def parse_roles(text: str) -> tuple[ProcessRole, ...]:
    roles = tuple(r.strip() for r in text.split(",") if r.strip())
    bad = [r for r in roles if r not in ALL_PROCESS_ROLES]
    if bad or not roles:
        raise ValueError(
            f"roles must be a comma-separated subset of {','.join(ALL_PROCESS_ROLES)} (got {text!r})")
    return roles  # type: ignore[return-value]


class _SplitRoutes:
    """Stands in for the ingest link in ``IngestWorker.attach``: the shared kinds are routed
    on the process's ingest link, the retained ones are kept for the state owner's link."""

    def __init__(self, link: MqttLink, retained: set[str]) -> None:
        self.link = link
        self.retained = retained
        self.kept: list[tuple[str, Handler, int]] = []

    def route(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        if topic_filter in self.retained:
            self.kept.append((topic_filter, handler, qos))
        else:
            self.link.route(topic_filter, handler, qos)


class HubRuntime:
    def __init__(self, settings: HubSettings, roles: Iterable[ProcessRole] = ALL_PROCESS_ROLES,
                 clock: Callable[[], datetime] = utc_now, *,
                 election_retry_s: float = ELECTION_RETRY_S) -> None:
        self.settings = settings
        self.roles = tuple(roles)
        self.db = Database(settings.database_url)
        self.ctx = HubContext(settings=settings, db=self.db, clock=clock)
        self.link: MqttLink | None = None
        self.state_link: MqttLink | None = None
        """The retained state owner's connection (while this process owns the state)."""
        self.worker: IngestWorker | None = None
        self.scheduler: BackgroundScheduler | None = None
        """The scheduler while this process runs it (on PostgreSQL: while it holds the lock)."""
        self.server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self._context_base = f"hub-{id(self)}"
        self._context_name = self._context_base
        self._term = 0
        self._election_retry_s = election_retry_s
        self.scheduler_election: Election | None = None
        self.state_election: Election | None = None
        self._state_routes: list[tuple[str, Handler, int]] = []
        self._role_lock = threading.Lock()

    @property
    def elects(self) -> bool:
        """Several processes may share this database (PostgreSQL): roles are elected."""
        return not self.db.is_sqlite

    @property
    def shares_state(self) -> bool:
        """The ingest is split between workers: one of them owns the retained state."""
        return self.elects and "ingest" in self.roles and bool(self.settings.ingest.shared_group)

    @property
    def leads_scheduler(self) -> bool:
        return self.scheduler is not None

    @property
    def owns_state(self) -> bool:
        return "ingest" in self.roles and (not self.shares_state or self.state_link is not None)

    def _hub_state(self, state: str) -> bytes:
        return HubState(state=state, at=self.ctx.clock(), version=__version__).to_bytes()  # type: ignore[arg-type]

    def start(self) -> None:
        # processes started together migrate and declare the registry one after the other
        with one_at_a_time(self.db.url) if self.elects else nullcontext():
            if self.settings.database.migrate_on_start:
                self.db.migrate()
            with self.db.session() as session:
                registry.apply_declarations(session, registry=self.settings.registry,
                                            site_name=self.settings.hub.site_name)
        contexts.report_roles(self.ctx, self.role_status)
        if "ingest" in self.roles:
            self._start_ingest()
        if "scheduler" in self.roles:
            self._start_scheduler()
        if "api" in self.roles:
            self._start_api()
        log.info("hub started with roles %s (database %s)", ",".join(self.roles),
                 self.db.url.render_as_string(hide_password=True))

    # -- the scheduler (one per database) ---------------------------------------------------
    def _start_scheduler(self) -> None:
        self.ctx.metrics.set("thanthien_hub_scheduler_leader", 0)
        if not self.elects:
            self._lead_scheduler()
            return
        lease = Lease(self.db.url, "scheduler")
        self.scheduler_election = Election(lease, on_gain=self._lead_scheduler,
                                           on_loss=self._follow_scheduler, retry_s=self._election_retry_s)
        if not self.scheduler_election.start():
            log.info("the scheduler runs in another process (%s); this one takes over if it stops",
                     lease.holder() or "unknown")

    def _lead_scheduler(self) -> None:
        """Build the scheduler from the settings and the tables and start it (a takeover
        re-derives every job, the delivery checks of unchecked occurrences included)."""
        with self._role_lock:
            election = self.scheduler_election
            self._term += 1
            self._context_name = f"{self._context_base}-{self._term}" if election else self._context_base
            fence = election.lease if election is not None else None
            scheduler = build_scheduler(self.ctx, self._context_name, fence=fence,
                                        on_fenced=election.wake if election is not None else lambda: None)
            scheduler.start()
            self.scheduler = scheduler
            self.ctx.metrics.set("thanthien_hub_scheduler_leader", 1)
            self.ctx.metrics.inc("thanthien_hub_role_changes_total", role="scheduler", change="taken")
        if election is not None:
            log.warning("this process now runs the scheduler (PostgreSQL advisory lock, %s)",
                        election.lease.label)

    def _follow_scheduler(self) -> None:
        """Give the scheduler up at once: jobs not started yet find no context, running ones
        are fenced (their commits refused)."""
        with self._role_lock:
            scheduler, self.scheduler = self.scheduler, None
            if scheduler is None:
                return
            unregister_context(self._context_name)
            self.ctx.metrics.set("thanthien_hub_scheduler_leader", 0)
            self.ctx.metrics.inc("thanthien_hub_role_changes_total", role="scheduler", change="given_up")
            _shutdown(scheduler, wait=False)

    # -- the ingest; the retained state (one owner per database when the ingest is shared) ----
    def _start_ingest(self) -> None:
        topics = self.ctx.topics
        worker = IngestWorker(self.ctx)
        if self.shares_state:
            # the hub's presence (Will, online) travels on the state owner's link
            link = MqttLink(client_id=self.settings.ingest.client_id, settings=self.settings.mqtt,
                            persistent=True)
            retained = {topics.wildcard(kind) for kind in HANDLERS if kind not in SHAREABLE}
            split = _SplitRoutes(link, retained)
            worker.attach(split)  # type: ignore[arg-type]
            self._state_routes = split.kept
        else:
            link = self._presence_link(self.settings.ingest.client_id, persistent=True)
            worker.attach(link)
        worker.start()
        self.ctx.mqtt, self.ctx.queue_depth, self.ctx.heard_until = link, worker.depth, worker.heard_until
        self.link, self.worker = link, worker
        link.start()
        if self.shares_state:
            self.ctx.metrics.set("thanthien_hub_state_owner", 0)
            lease = Lease(self.db.url, "retained-state")
            self.state_election = Election(lease, on_gain=self._own_state, on_loss=self._disown_state,
                                           retry_s=self._election_retry_s)
            if not self.state_election.start():
                log.info("the retained node state and camera health are handled by another process (%s)",
                         lease.holder() or "unknown")
        else:
            self.ctx.metrics.set("thanthien_hub_state_owner", 1)

    def _presence_link(self, client_id: str, *, persistent: bool) -> MqttLink:
        topics = self.ctx.topics
        return MqttLink(
            client_id=client_id, settings=self.settings.mqtt,
            will=Will(topics.hub_state(), self._hub_state("offline")), persistent=persistent,
            on_connected=lambda lk, _present: lk.publish(topics.hub_state(), self._hub_state("online"),
                                                         qos=1, retain=True))

    def _own_state(self) -> None:
        """Subscribe the retained kinds on a clean session: the broker sends the retained copy
        of every node state and camera health, then each change."""
        link = self._presence_link(f"{self.settings.ingest.client_id}-state", persistent=False)
        for topic_filter, handler, qos in self._state_routes:
            link.route(topic_filter, handler, qos)
        with self._role_lock:
            self.state_link = link
            self.ctx.metrics.set("thanthien_hub_state_owner", 1)
            self.ctx.metrics.inc("thanthien_hub_role_changes_total", role="retained_state", change="taken")
        link.start()
        log.warning("this process now handles the retained node state and camera health (%s)",
                    self.state_election.lease.label if self.state_election else "")

    def _disown_state(self, final: bool = False) -> None:
        with self._role_lock:
            link, self.state_link = self.state_link, None
            if link is None:
                return
            self.ctx.metrics.set("thanthien_hub_state_owner", 0)
            self.ctx.metrics.inc("thanthien_hub_role_changes_total", role="retained_state", change="given_up")
        link.stop(final=(self.ctx.topics.hub_state(), self._hub_state("offline"), True) if final else None)

    def role_status(self) -> dict[str, Any]:
        """Which roles this process has and whether it runs the scheduler and owns the
        retained state (``/healthz``)."""
        single = {"election": "none: SQLite, one process" if not self.elects else "none: ingest not shared"}
        out: dict[str, Any] = {"process": {"pid": os.getpid(), "host": socket.gethostname(),
                                           "roles": list(self.roles)}}
        if "scheduler" in self.roles:
            out["scheduler"] = (self.scheduler_election.status() if self.scheduler_election is not None
                                else {"this_process": self.leads_scheduler, **single})
        else:
            out["scheduler"] = None
        if "ingest" in self.roles:
            out["retained_state"] = (self.state_election.status() if self.state_election is not None
                                     else {"this_process": True, **single})
        else:
            out["retained_state"] = None
        return out

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
        """What the systemd watchdog checks: the ingest thread, the scheduler where this
        process runs it, and the elections still run (a broker outage is not ill health: the
        link reconnects by itself; nor is waiting for a role another process holds)."""
        if self.worker is not None and not self.worker.alive:
            return False
        if any(e is not None and not e.alive for e in (self.scheduler_election, self.state_election)):
            return False
        scheduler = self.scheduler
        return not (scheduler is not None and not scheduler.running)

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
        if self.scheduler_election is not None:
            self.scheduler_election.stop_trying()
        with self._role_lock:
            scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            # Jobs that start from now on find no context and return.
            unregister_context(self._context_name)
            self.ctx.metrics.set("thanthien_hub_scheduler_leader", 0)
            _shutdown(scheduler, wait=True)
        if self.scheduler_election is not None:
            self.scheduler_election.stop()  # the lock goes back once the jobs are over
        if self.state_election is not None:
            self.state_election.stop_trying()
            self._disown_state(final=True)
            self.state_election.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.link is not None:
            self.link.stop(final=None if self.shares_state
                           else (self.ctx.topics.hub_state(), self._hub_state("offline"), True))
        contexts.report_roles(self.ctx, None)
        self.db.dispose()
        log.info("hub stopped")


def _shutdown(scheduler: BackgroundScheduler, *, wait: bool) -> None:
    """Shut a scheduler down, waiting at most 10 s for its running jobs. APScheduler 3 holds its
    job-store lock while it waits for them, so a job that calls back into the scheduler
    (re-arming a delivery check) would wait forever: the wait is bounded."""
    stopper = threading.Thread(target=scheduler.shutdown, kwargs={"wait": wait}, name="scheduler-stop",
                               daemon=True)
    stopper.start()
    stopper.join(10)
    if stopper.is_alive():
        log.error("scheduler jobs still running after 10 s; stopping without them")
