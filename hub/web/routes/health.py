"""Device health for IT staff: every node and device at a glance, open alarms with
acknowledge, and a node page with telemetry charts, its state history, the config version
the hub publishes and the one the node runs, its commands with their answers, and the last
picture of a camera that went black or froze (the forms it posts are in ``routes/fleet.py``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from thanthien.hub.api.deps import RowId
from thanthien.hub.roles import ALARM_HANDLERS, DEVICE_STAFF
from thanthien.hub.services import alarms, enrollment, fleet_commands, node_config, node_history, registry
from thanthien.hub.services.errors import Conflict, NotFound
from thanthien.hub.web import charts, flash, periods, queries, regions
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

ItUser = Annotated[UiUser, Depends(Require(*DEVICE_STAFF))]
AlarmUser = Annotated[UiUser, Depends(Require(*ALARM_HANDLERS))]

RANGES = {"6h": ("6 giờ", timedelta(hours=6)), "24h": ("24 giờ", timedelta(days=1)),
          "7d": ("7 ngày", timedelta(days=7)), "30d": ("30 ngày", timedelta(days=30))}


@router.get("/health", response_class=HTMLResponse)
def health_page(request: Request, user: ItUser) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        context = {**regions.health_context(session, hub, user),
                   "marks": regions.marks(session, hub, user, "health-nodes", "health-alarms")}
        return render(request, "health.html", context, user=user)


@router.get("/nodes/{node_id}", response_class=HTMLResponse)
def node_page(request: Request, user: ItUser, node_id: str, range: str = "24h", start: str | None = None,
              end: str | None = None) -> Response:
    hub = hub_of(request)
    tz = hub.settings.hub.timezone
    now = hub.clock()
    error = ""
    if range not in RANGES:
        range = "24h"
    span_start, span_end, label = now - RANGES[range][1], now, f"{RANGES[range][0]} qua"
    if start or end:
        day = periods.today(now, tz)
        try:
            period = periods.parse(start, end, default=periods.Period(day, day, tz))
            span_start, span_end, label, range = period.start, period.end, period.label, ""
        except periods.PeriodError as exc:
            error = str(exc)
    with hub.db.new_session(write=False) as session:
        try:
            node = registry.get_node(session, node_id=node_id, viewer=user)
        except NotFound:
            return render(request, "message.html", {"title": "Không tìm thấy thiết bị",
                                                    "message": f"Không có thiết bị mã {node_id}."},
                          user=user, status_code=404)
        series, hourly = queries.telemetry_series(session, viewer=user, node_id=node_id, start=span_start,
                                                  end=span_end)
        context = {
            "node": node,
            "devices": queries.node_devices(session, viewer=user, node_id=node_id),
            "latest": queries.latest_telemetry(session, node_id=node_id),
            "charts": [(s, charts.line_chart(s.points, tz=tz, unit=s.unit, label=s.label,
                                             lower=None if s.key == "clock_offset_ms" else 0.0))
                       for s in series],
            "hourly": hourly,
            "history": node_history.state_history(session, viewer=user, node_id=node_id, start=span_start,
                                                  end=span_end),
            "config": node_config.view(session, viewer=user, node_id=node_id),
            "enrollment": enrollment.status(session, viewer=user, node_id=node_id, now=now),
            "commands": fleet_commands.recent(session, viewer=user, node_id=node_id),
            "command_labels": {name: spec.label for name, spec in fleet_commands.COMMANDS.items()},
            "thumbnails": node_history.thumbnails(session, viewer=user, node_id=node_id),
            "alarms": alarms.alarms_for(session, viewer=user, active=True, subject=node_id),
            "ranges": [(key, text) for key, (text, _span) in RANGES.items()],
            "range": range, "span_label": label, "error": error,
            "start": start or "", "end": end or "", "back": f"/ui/nodes/{node_id}",
        }
        return render(request, "node.html", context, user=user)


@router.post("/alarms/{alarm_id}/acknowledge", dependencies=[Csrf])
def acknowledge(request: Request, user: AlarmUser, alarm_id: RowId,
                next: Annotated[str, Form()] = "/ui/health") -> Response:
    """Xác nhận: the alarms service decides who may (a refusal is a 403 page, as in the API)."""
    hub = hub_of(request)
    back = flash.safe_next(next)
    try:
        with hub.db.session() as session:
            alarms.acknowledge_alarm(session, alarm_id=alarm_id, actor=user, now=hub.clock(),
                                     notify=hub.notify)
    except (NotFound, Conflict) as exc:
        return flash.refused(back, exc)
    return flash.redirect(back, message="Đã xác nhận cảnh báo")
