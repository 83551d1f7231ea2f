"""``/healthz`` (no login) and ``/metrics`` (Prometheus text) outside /api/v1."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from thanthien.hub.api.deps import Hub
from thanthien.hub.jobs import contexts
from thanthien.hub.metrics import Labels
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import alarms, health, ratings

log = logging.getLogger(__name__)
router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Liveness and readiness: database reachable, MQTT connected; which process "
                                "runs the scheduler and owns the retained state")
def healthz(hub: Hub) -> JSONResponse:
    db_ok = hub.db.ping()
    mqtt = None if hub.mqtt is None else hub.mqtt.connected.is_set()
    body = {"status": "ok" if db_ok else "degraded", "database": db_ok, "mqtt": mqtt,
            "at": hub.clock().isoformat()}
    # "scheduler" / "retained_state": this_process, election, since, holder (who has the role)
    body.update(contexts.roles_of(hub) or {})
    return JSONResponse(body, status_code=200 if db_ok else 503)


@router.get("/metrics", response_class=PlainTextResponse,
            summary="Prometheus metrics: ingest rate, dead letters, nodes online, alarms")
def metrics(hub: Hub) -> PlainTextResponse:
    extra: dict[str, dict[Labels, float]] = {
        "thanthien_hub_ingest_queue_depth": {(): float(hub.queue_depth())}}
    try:
        with hub.db.session(write=False) as session:
            states = health.state_counts(session, viewer=SYSTEM)
            extra["thanthien_hub_nodes"] = {(("state", s),): float(states.get(s, 0))
                                            for s in ("online", "offline", "lost", "unknown")}
            unregistered = health.unregistered_count(session, viewer=SYSTEM)
            extra["thanthien_hub_nodes_unregistered"] = {(): float(unregistered)}
            active = alarms.active_counts(session, viewer=SYSTEM)
            extra["thanthien_hub_alarms_active"] = {(("severity", s),): float(active.get(s, 0))
                                                    for s in alarms.SEVERITIES}
            extra["thanthien_hub_ratings_stored"] = {(): float(ratings.count_ratings(session))}
    except Exception as exc:  # the process counters are still worth serving without the database
        log.warning("metrics without database gauges: %s", exc)
    return PlainTextResponse(hub.metrics.render(extra), media_type="text/plain; version=0.0.4")
