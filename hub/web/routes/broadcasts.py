"""Broadcast pages: the calendar of upcoming occurrences by day, drafting (upload or TTS with an
in-browser preview), approval, play-now / emergency with confirmation, delivery reports.

Officers, leaders and admins use these pages; approving (four eyes: not one's own draft),
granting a quiet-hours exception, playing now and stopping are for leaders and admins (as in
the API). Every page calls the same services as the API, which decide.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from thanthien.hub.api.deps import RowId
from thanthien.hub.db.models import MediaItem
from thanthien.hub.roles import BROADCAST_APPROVERS, BROADCAST_EDITORS, BROADCAST_READERS, may
from thanthien.hub.services import (
    broadcasts,
    deliveries,
    media_items,
    plans,
    proof,
    registry,
    speaker_commands,
    zone_rules,
)
from thanthien.hub.services.broadcasts import (
    AUDIT_LABELS,
    PRIORITY_LABELS,
    STATUS_LABELS,
    BroadcastSpec,
    BroadcastView,
)
from thanthien.hub.services.errors import ServiceError
from thanthien.hub.services.schedule import HOLIDAYS, WEEKDAY_LABELS, describe
from thanthien.hub.services.speaker_commands import PlayNowRequest, StopRequest
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

Reader = Annotated[UiUser, Depends(Require(*BROADCAST_READERS))]
Editor = Annotated[UiUser, Depends(Require(*BROADCAST_EDITORS))]
Approver = Annotated[UiUser, Depends(Require(*BROADCAST_APPROVERS))]
BACK = "/ui/broadcasts"
SCHEDULE_LABELS = {
    "once": "Một lần",
    "daily": "Hằng ngày",
    "weekdays": "Các thứ trong tuần",
    "rrule": "Quy tắc lặp (RRULE)",
    "holiday": "Ngày lễ, Tết",
}
TARGET_LABELS = {"all": "Tất cả cụm loa", "zones": "Theo khu vực phát", "nodes": "Chọn cụm loa"}


def _tz(request: Request) -> ZoneInfo:
    return ZoneInfo(hub_of(request).settings.hub.timezone)


def _rules(request: Request) -> dict[str, Any]:
    """What the broadcast services decide by besides the actor: now, the zone, ``[broadcasts]``."""
    hub = hub_of(request)
    return {"now": hub.clock(), "tz": _tz(request), "cfg": hub.settings.broadcasts}


def _common(session: Any, user: UiUser) -> dict[str, Any]:
    return {
        "media": media_items.list_media(session, viewer=user),
        "zones": registry.list_zones(session, viewer=user),
        "holidays": {k: h.label for k, h in HOLIDAYS.items()},
        "weekday_labels": WEEKDAY_LABELS,
        "schedule_labels": SCHEDULE_LABELS,
        "priority_labels": PRIORITY_LABELS,
        "status_labels": STATUS_LABELS,
        "target_labels": TARGET_LABELS,
        "speakers": sorted(broadcasts.speaker_nodes(session, within=user)),
    }


def _calendar(request: Request, session: Any, user: UiUser, week: int) -> list[tuple[str, list[Any]]]:
    hub = hub_of(request)
    tz = _tz(request)
    today = hub.clock().astimezone(tz).date() + timedelta(days=7 * week)
    start = datetime.combine(today, datetime.min.time(), tz)
    days: dict[str, list[Any]] = {}
    for i in range(7):
        d = today + timedelta(days=i)
        days[f"{WEEKDAY_LABELS[d.weekday()]} {d:%d/%m}"] = []
    for entry in plans.calendar(session, viewer=user, start=start, end=start + timedelta(days=7), tz=tz):
        d = entry.start_at.astimezone(tz).date()
        days[f"{WEEKDAY_LABELS[d.weekday()]} {d:%d/%m}"].append(entry)
    return list(days.items())


def _page(
    request: Request,
    user: UiUser,
    *,
    week: int = 0,
    form: dict[str, Any] | None = None,
    message: str = "",
    status_code: int = 200,
) -> Response:
    hub = hub_of(request)
    tz = _tz(request)
    with hub.db.new_session(write=False) as session:
        rows = [(b, describe(broadcasts.schedule_of(b), tz))
                for b in broadcasts.list_broadcasts(session, viewer=user)]
        first = hub.clock().astimezone(tz).date() + timedelta(days=7 * week)
        week_start = datetime.combine(first, datetime.min.time(), tz)
        context = {
            "zone_minutes": zone_rules.zone_minutes(session, viewer=user, start=week_start,
                                                    end=week_start + timedelta(days=7), tz=tz),
            "week_days": [first + timedelta(days=i) for i in range(7)],
            **_common(session, user),
            "broadcasts": rows,
            "calendar": _calendar(request, session, user, week),
            "week": week,
            "form": form or {},
            "notice": (message, True) if message else None,
            "can_approve": may(user, BROADCAST_APPROVERS),
            "can_edit": may(user, BROADCAST_EDITORS),
            "quiet": hub.settings.broadcasts,
        }
        return render(request, "broadcasts.html", context, user=user, status_code=status_code)


@router.get("/broadcasts", response_class=HTMLResponse)
def broadcasts_page(request: Request, user: Reader, week: int = 0) -> Response:
    return _page(request, user, week=max(-52, min(52, week)))


def _local_dt(text: str, tz: ZoneInfo) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=tz)
    except ValueError:
        return None


FIELD_NAMES = {
    "title": "tiêu đề",
    "media_sha256": "tệp âm thanh",
    "volume": "âm lượng",
    "schedule_kind": "kiểu lịch phát",
    "target_kind": "phạm vi phát",
    "priority": "mức ưu tiên",
    "stream_url": "địa chỉ luồng tiếp sóng",
    "slot_s": "thời lượng tiếp sóng",
}


def _invalid(exc: ValidationError) -> str:
    """Which field of the form is wrong, in Vietnamese."""
    loc = exc.errors()[0]["loc"]
    field = str(loc[0]) if loc else ""
    return f"Thông tin chưa hợp lệ: {FIELD_NAMES.get(field, field or 'biểu mẫu')}."


async def _read_form(request: Request) -> tuple[dict[str, Any], BroadcastSpec | str]:
    """The posted fields (to show again) and the spec, or why it is not one."""
    raw = await request.form()
    form: dict[str, Any] = {
        k: str(raw.get(k, ""))
        for k in (
            "title",
            "media_sha256",
            "target_kind",
            "volume",
            "priority",
            "schedule_kind",
            "start_at",
            "local_time",
            "rrule",
            "stream_url",
            "slot_min",
            "stream_fallback",
        )
    }
    for key in ("target_zones", "target_nodes", "weekdays", "holidays"):
        form[key] = [str(v) for v in raw.getlist(key)]
    form["quiet_exception_requested"] = raw.get("quiet_exception_requested") == "1"
    tz = _tz(request)
    kind = form["schedule_kind"]
    start_at = _local_dt(form["start_at"], tz)
    if kind == "once" and start_at is None:
        return form, "Chọn ngày giờ phát."
    stream_url = form["stream_url"].strip() or None
    try:
        slot_s = float(form["slot_min"]) * 60 if stream_url and form["slot_min"].strip() else None
        return form, BroadcastSpec(
            title=form["title"].strip(),
            media_sha256=form["media_sha256"] or None,
            stream_url=stream_url,
            stream_fallback="silence" if form["stream_fallback"] == "silence" else "file",
            slot_s=slot_s,
            target_kind=form["target_kind"] or "all",
            target_zones=form["target_zones"],
            target_nodes=form["target_nodes"],
            volume=int(form["volume"] or 100),
            priority=form["priority"] or "normal",
            schedule_kind=kind,
            start_at=start_at if kind == "once" else None,  # type: ignore[arg-type]
            local_time=form["local_time"] or None,
            weekdays=[int(d) for d in form["weekdays"]],
            rrule=form["rrule"] or None,
            holidays=form["holidays"],
            quiet_exception_requested=form["quiet_exception_requested"],
        )
    except ValidationError as exc:
        return form, _invalid(exc)
    except ValueError:
        return form, "Thông tin chưa hợp lệ: âm lượng, thời lượng tiếp sóng và các thứ phải là số."


# the fields of the form: what _read_form reads back
FORM_FIELDS = ("title", "media_sha256", "target_kind", "volume", "priority", "schedule_kind", "local_time",
               "rrule", "target_zones", "target_nodes", "holidays")


def _form_of(b: Any, tz: ZoneInfo) -> dict[str, Any]:
    """The edit form's values, from the broadcast's public shape (local times as the form has them)."""
    view = BroadcastView.of(b, tz)
    form: dict[str, Any] = {k: getattr(view, k) for k in FORM_FIELDS}
    form.update(
        start_at=view.start_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if view.start_at else "",
        local_time=view.local_time or "", rrule=view.rrule or "", weekdays=[str(d) for d in view.weekdays],
        stream_url=view.stream_url or "", stream_fallback=view.stream_fallback or "file",
        slot_min=f"{view.slot_s / 60:g}" if view.slot_s else "")
    return form


@router.post("/broadcasts", dependencies=[Csrf], response_class=HTMLResponse)
async def create_broadcast(request: Request, user: Editor) -> Response:
    form, spec = await _read_form(request)
    if isinstance(spec, str):
        return _page(request, user, form=form, message=spec, status_code=422)
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            bid = broadcasts.create_broadcast(session, spec=spec, actor=user, lib=hub_of(request).media,
                                              **_rules(request)).id
    except ServiceError as exc:
        return _page(request, user, form=form, message=str(exc), status_code=422)
    return flash.redirect(f"{BACK}/{bid}", message="Đã lưu bản nháp; chờ lãnh đạo phê duyệt.")


def _detail(
    request: Request,
    user: UiUser,
    broadcast_id: int,
    *,
    form: dict[str, Any] | None = None,
    message: str = "",
    status_code: int = 200,
) -> Response:
    hub = hub_of(request)
    tz = _tz(request)
    with hub.db.new_session(write=False) as session:
        try:
            b = broadcasts.get_broadcast(session, viewer=user, broadcast_id=broadcast_id)
        except ServiceError:
            raise HTTPException(404, "Không có bản tin này") from None
        rules = _rules(request)
        item = session.get(MediaItem, b.media_sha256)
        context = {
            **_common(session, user),
            "b": b,
            "listen_needed": media_items.needs_listen(session, sha256=b.media_sha256, username=user.username)
            if b.status == "draft" and may(user, BROADCAST_APPROVERS) else None,
            "listened_at": media_items.listened_at(session, sha256=b.media_sha256, username=user.username),
            "rules_refusal": zone_rules.refusal(
                session, zone_rules.candidate_of(b, item.duration_s if item else 0), **rules)
            if b.status == "draft" else None,
            "schedule_text": describe(broadcasts.schedule_of(b), tz),
            "quiet_exception": broadcasts.quiet_exception_of(b),
            "quiet_conflict": broadcasts.quiet_conflict(session, b, **rules),
            "approval_refusal": broadcasts.approval_refusal(session, b, actor=user, cfg=rules["cfg"])
            if b.status == "draft" else None,
            "audit": broadcasts.audit_log(session, viewer=user, broadcast_id=broadcast_id),
            "reports": deliveries.broadcast_reports(session, viewer=user, broadcast_id=broadcast_id,
                                                    limit=20),
            "delivery_labels": deliveries.STATUS_LABELS,
            "proof_labels": proof.LABELS,
            "describe_sources": deliveries.describe_sources,
            "audit_labels": AUDIT_LABELS,
            "can_approve": may(user, BROADCAST_APPROVERS),
            "can_edit": may(user, BROADCAST_EDITORS),
            "item": item,
            "form": form or _form_of(b, tz),
            "notice": (message, True) if message else None,
            "quiet": hub.settings.broadcasts,
        }
        return render(request, "broadcast_detail.html", context, user=user, status_code=status_code)


@router.get("/broadcasts/{broadcast_id}", response_class=HTMLResponse)
def broadcast_page(request: Request, user: Reader, broadcast_id: RowId) -> Response:
    return _detail(request, user, broadcast_id)


@router.post("/broadcasts/{broadcast_id}", dependencies=[Csrf], response_class=HTMLResponse)
async def edit_broadcast(request: Request, user: Editor, broadcast_id: RowId) -> Response:
    form, spec = await _read_form(request)
    if isinstance(spec, str):
        return _detail(request, user, broadcast_id, form=form, message=spec, status_code=422)
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            broadcasts.update_broadcast(session, broadcast_id=broadcast_id, spec=spec, actor=user,
                                        lib=hub_of(request).media, **_rules(request))
    except ServiceError as exc:
        return _detail(request, user, broadcast_id, form=form, message=str(exc), status_code=422)
    return flash.redirect(
        f"{BACK}/{broadcast_id}", message="Đã lưu thay đổi; bản tin cần được phê duyệt lại."
    )


DONE = {
    "approve": "Đã phê duyệt; lịch phát đã gửi tới các cụm loa.",
    "archive": "Đã lưu trữ bản tin.",
    "grant": "Đã cho phép bản tin này phát trong giờ yên tĩnh.",
    "revoke": "Đã thu hồi ngoại lệ giờ yên tĩnh.",
}


def _act(request: Request, user: UiUser, broadcast_id: int, action: str, reason: str = "") -> Response:
    """One command of a broadcast's page, through the service the API calls for it."""
    hub, rules = hub_of(request), _rules(request)
    try:
        with hub.db.session() as session:
            if action == "approve":
                broadcasts.approve_broadcast(session, broadcast_id=broadcast_id, actor=user, **rules)
            elif action == "grant":
                broadcasts.grant_quiet_exception(session, broadcast_id=broadcast_id, actor=user,
                                                 reason=reason, **rules)
            elif action == "revoke":
                broadcasts.revoke_quiet_exception(session, broadcast_id=broadcast_id, actor=user, **rules)
            else:
                broadcasts.archive_broadcast(session, broadcast_id=broadcast_id, actor=user, now=rules["now"])
    except ServiceError as exc:
        return flash.refused(f"{BACK}/{broadcast_id}", exc)
    return flash.redirect(f"{BACK}/{broadcast_id}", message=DONE[action])


@router.post("/broadcasts/{broadcast_id}/approve", dependencies=[Csrf])
def approve(request: Request, user: Approver, broadcast_id: RowId) -> Response:
    return _act(request, user, broadcast_id, "approve")


@router.post("/broadcasts/{broadcast_id}/archive", dependencies=[Csrf])
def archive(request: Request, user: Editor, broadcast_id: RowId) -> Response:
    return _act(request, user, broadcast_id, "archive")


@router.post("/broadcasts/{broadcast_id}/quiet-exception", dependencies=[Csrf])
def grant_quiet_exception(
    request: Request, user: Approver, broadcast_id: RowId, reason: Annotated[str, Form()] = ""
) -> Response:
    """``POST /api/v1/broadcasts/{id}/quiet-exception``: a leader's leave, with the reason."""
    return _act(request, user, broadcast_id, "grant", reason)


@router.post("/broadcasts/{broadcast_id}/quiet-exception/revoke", dependencies=[Csrf])
def revoke_quiet_exception(request: Request, user: Approver, broadcast_id: RowId) -> Response:
    """``DELETE /api/v1/broadcasts/{id}/quiet-exception``."""
    return _act(request, user, broadcast_id, "revoke")


# -- play now ------------------------------------------------------------------------------
@router.post("/play-now", dependencies=[Csrf])
def play_now(
    request: Request,
    user: Approver,
    media_sha256: Annotated[str, Form()] = "",
    priority: Annotated[str, Form()] = "emergency",
    title: Annotated[str, Form()] = "",
    zones: Annotated[list[str] | None, Form()] = None,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """The same service as ``POST /api/v1/broadcasts/play-now``; the browser asked to confirm."""
    try:
        asked = PlayNowRequest(media_sha256=media_sha256, priority=priority, title=title,  # type: ignore[arg-type]
                               target_kind="zones" if zones else "all", target_zones=zones or [],
                               confirm=confirm == "1")
    except ValidationError as exc:
        return flash.redirect(BACK, message=_invalid(exc), error=True)
    try:
        result = speaker_commands.play_now(hub_of(request), actor=user, request=asked)
    except ServiceError as exc:
        return flash.refused(BACK, exc)
    return flash.redirect(f"{BACK}/{result.broadcast_id}",
                          message=f"Đã gửi lệnh phát ngay tới {len(result.targets)} cụm loa.")


@router.post("/stop", dependencies=[Csrf])
def stop(request: Request, user: Approver) -> Response:
    """Every speaker stops (``POST /api/v1/broadcasts/stop`` with the default targets)."""
    try:
        targets = speaker_commands.stop(hub_of(request), actor=user, request=StopRequest())
    except ServiceError as exc:
        return flash.refused(BACK, exc)
    return flash.redirect(BACK, message=f"Đã gửi lệnh dừng tới {len(targets)} cụm loa.")
