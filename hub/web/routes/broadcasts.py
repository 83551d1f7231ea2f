"""Broadcast pages: the calendar of upcoming occurrences by day, drafting (upload or TTS with an
in-browser preview), approval, play-now / emergency with confirmation, delivery reports.

Officers, leaders and admins use these pages; approving, playing now and stopping are for
leaders and admins (as in the API). Every page calls the same services as the API.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from thanthien.hub import broadcast_jobs
from thanthien.hub.api.deps import RowId
from thanthien.hub.db.models import MediaItem, Zone
from thanthien.hub.services import broadcasts, deliveries, media_items, plans
from thanthien.hub.services.broadcasts import AUDIT_LABELS, PRIORITY_LABELS, STATUS_LABELS, BroadcastSpec
from thanthien.hub.services.errors import ServiceError
from thanthien.hub.services.schedule import HOLIDAYS, WEEKDAY_LABELS, describe
from thanthien.hub.services.tts import VOICE_LABELS, TtsRequest
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render
from thanthien.protocol.payloads import Command

log = logging.getLogger(__name__)
router = APIRouter()

EDITORS = ("admin", "officer", "leader")
APPROVERS = ("admin", "leader")
Editor = Annotated[UiUser, Depends(Require(*EDITORS))]
Approver = Annotated[UiUser, Depends(Require(*APPROVERS))]
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


def _common(session: Any) -> dict[str, Any]:
    return {
        "media": media_items.list_media(session),
        "zones": list(session.scalars(select(Zone).order_by(Zone.code))),
        "holidays": {k: v[1] for k, v in HOLIDAYS.items()},
        "weekday_labels": WEEKDAY_LABELS,
        "schedule_labels": SCHEDULE_LABELS,
        "priority_labels": PRIORITY_LABELS,
        "status_labels": STATUS_LABELS,
        "target_labels": TARGET_LABELS,
        "speakers": sorted(broadcasts.speaker_nodes(session)),
    }


def _calendar(request: Request, session: Any, week: int) -> list[tuple[str, list[Any]]]:
    hub = hub_of(request)
    tz = _tz(request)
    today = hub.clock().astimezone(tz).date() + timedelta(days=7 * week)
    start = datetime.combine(today, datetime.min.time(), tz)
    days: dict[str, list[Any]] = {}
    for i in range(7):
        d = today + timedelta(days=i)
        days[f"{WEEKDAY_LABELS[d.weekday()]} {d:%d/%m}"] = []
    for entry in plans.calendar(session, start=start, end=start + timedelta(days=7), tz=tz):
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
        rows = [(b, describe(broadcasts.schedule_of(b), tz)) for b in broadcasts.list_broadcasts(session)]
        context = {
            **_common(session),
            "broadcasts": rows,
            "calendar": _calendar(request, session, week),
            "week": week,
            "form": form or {},
            "notice": (message, True) if message else None,
            "can_approve": user.role in APPROVERS,
            "quiet": hub.settings.broadcasts,
        }
        return render(request, "broadcasts.html", context, user=user, status_code=status_code)


@router.get("/broadcasts", response_class=HTMLResponse)
def broadcasts_page(request: Request, user: Editor, week: int = 0) -> Response:
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
}


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
        )
    }
    for key in ("target_zones", "target_nodes", "weekdays", "holidays"):
        form[key] = [str(v) for v in raw.getlist(key)]
    tz = _tz(request)
    kind = form["schedule_kind"]
    start_at = _local_dt(form["start_at"], tz)
    if kind == "once" and start_at is None:
        return form, "Chọn ngày giờ phát."
    try:
        return form, BroadcastSpec(
            title=form["title"].strip(),
            media_sha256=form["media_sha256"],
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
        )
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        field = str(loc[0]) if loc else ""
        return form, f"Thông tin chưa hợp lệ: {FIELD_NAMES.get(field, field or 'biểu mẫu')}."
    except ValueError:
        return form, "Thông tin chưa hợp lệ: âm lượng và các thứ phải là số."


def _form_of(b: Any, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "title": b.title,
        "media_sha256": b.media_sha256,
        "target_kind": b.target_kind,
        "volume": b.volume,
        "priority": b.priority,
        "schedule_kind": b.schedule_kind,
        "start_at": b.start_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if b.start_at else "",
        "local_time": b.local_time or "",
        "rrule": b.rrule or "",
        "target_zones": list(b.target_zones or []),
        "target_nodes": list(b.target_nodes or []),
        "weekdays": [str(d) for d in b.weekdays or []],
        "holidays": list(b.holidays or []),
    }


@router.post("/broadcasts", dependencies=[Csrf], response_class=HTMLResponse)
async def create_broadcast(request: Request, user: Editor) -> Response:
    form, spec = await _read_form(request)
    if isinstance(spec, str):
        return _page(request, user, form=form, message=spec, status_code=422)
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            bid = broadcasts.create_broadcast(
                session,
                spec=spec,
                username=user.username,
                now=hub.clock(),
                tz=_tz(request),
                cfg=hub.settings.broadcasts,
            ).id
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
            b = broadcasts.get_broadcast(session, broadcast_id=broadcast_id)
        except ServiceError:
            raise HTTPException(404, "Không có bản tin này") from None
        context = {
            **_common(session),
            "b": b,
            "schedule_text": describe(broadcasts.schedule_of(b), tz),
            "audit": broadcasts.audit_log(session, broadcast_id=broadcast_id),
            "reports": deliveries.broadcast_reports(session, broadcast_id=broadcast_id, limit=20),
            "delivery_labels": deliveries.STATUS_LABELS,
            "audit_labels": AUDIT_LABELS,
            "can_approve": user.role in APPROVERS,
            "item": session.get(MediaItem, b.media_sha256),
            "form": form or _form_of(b, tz),
            "notice": (message, True) if message else None,
            "quiet": hub.settings.broadcasts,
        }
        return render(request, "broadcast_detail.html", context, user=user, status_code=status_code)


@router.get("/broadcasts/{broadcast_id}", response_class=HTMLResponse)
def broadcast_page(request: Request, user: Editor, broadcast_id: RowId) -> Response:
    return _detail(request, user, broadcast_id)


@router.post("/broadcasts/{broadcast_id}", dependencies=[Csrf], response_class=HTMLResponse)
async def edit_broadcast(request: Request, user: Editor, broadcast_id: RowId) -> Response:
    form, spec = await _read_form(request)
    if isinstance(spec, str):
        return _detail(request, user, broadcast_id, form=form, message=spec, status_code=422)
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            broadcasts.update_broadcast(
                session,
                broadcast_id=broadcast_id,
                spec=spec,
                username=user.username,
                now=hub.clock(),
                tz=_tz(request),
                cfg=hub.settings.broadcasts,
            )
    except ServiceError as exc:
        return _detail(request, user, broadcast_id, form=form, message=str(exc), status_code=422)
    broadcast_jobs.after_change(hub)
    return flash.redirect(
        f"{BACK}/{broadcast_id}", message="Đã lưu thay đổi; bản tin cần được phê duyệt lại."
    )


def _act(request: Request, user: UiUser, broadcast_id: int, action: str) -> Response:
    hub = hub_of(request)
    tz = _tz(request)
    try:
        with hub.db.session() as session:
            if action == "approve":
                broadcasts.approve_broadcast(
                    session,
                    broadcast_id=broadcast_id,
                    username=user.username,
                    now=hub.clock(),
                    tz=tz,
                    cfg=hub.settings.broadcasts,
                )
            else:
                broadcasts.archive_broadcast(
                    session, broadcast_id=broadcast_id, username=user.username, now=hub.clock()
                )
    except ServiceError as exc:
        return flash.redirect(f"{BACK}/{broadcast_id}", message=str(exc), error=True)
    broadcast_jobs.after_change(hub)
    done = "Đã phê duyệt; lịch phát đã gửi tới các cụm loa." if action == "approve" else "Đã lưu trữ bản tin."
    return flash.redirect(f"{BACK}/{broadcast_id}", message=done)


@router.post("/broadcasts/{broadcast_id}/approve", dependencies=[Csrf])
def approve(request: Request, user: Approver, broadcast_id: RowId) -> Response:
    return _act(request, user, broadcast_id, "approve")


@router.post("/broadcasts/{broadcast_id}/archive", dependencies=[Csrf])
def archive(request: Request, user: Editor, broadcast_id: RowId) -> Response:
    return _act(request, user, broadcast_id, "archive")


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
    hub = hub_of(request)
    if priority not in PRIORITY_LABELS:
        return flash.redirect(BACK, message="Mức ưu tiên không hợp lệ", error=True)
    if priority == "emergency" and confirm != "1":
        return flash.redirect(BACK, message="Phát khẩn cấp cần được xác nhận.", error=True)
    if hub.mqtt is None:
        return flash.redirect(BACK, message="Hub chưa kết nối MQTT, không gửi được lệnh.", error=True)
    now, cfg = hub.clock(), hub.settings.broadcasts
    try:
        with hub.db.session() as session:
            p = plans.create_play_now(
                session,
                media_sha256=media_sha256,
                title=title,
                priority=priority,
                volume=100,
                target_kind="zones" if zones else "all",
                target_zones=zones or [],
                target_nodes=[],
                username=user.username,
                now=now,
                cfg=cfg,
            )
            command = plans.play_now_command(p, now=now, cfg=cfg).to_bytes()
            targets, bid = p.targets, p.broadcast.id
    except ServiceError as exc:
        return flash.redirect(BACK, message=str(exc), error=True)
    for node in targets:
        hub.mqtt.publish(hub.topics.command(node, "play-now"), command, qos=1)
    log.warning("play-now (%s) by %s from the UI to %d node(s)", priority, user.username, len(targets))
    broadcast_jobs.after_change(hub)
    return flash.redirect(f"{BACK}/{bid}", message=f"Đã gửi lệnh phát ngay tới {len(targets)} cụm loa.")


@router.post("/stop", dependencies=[Csrf])
def stop(request: Request, user: Approver) -> Response:
    hub = hub_of(request)
    if hub.mqtt is None:
        return flash.redirect(BACK, message="Hub chưa kết nối MQTT, không gửi được lệnh.", error=True)
    with hub.db.new_session(write=False) as session:
        targets = sorted(broadcasts.speaker_nodes(session))
    now = hub.clock()
    command = Command(
        args={}, issued_at=now, expires_at=now + timedelta(seconds=hub.settings.broadcasts.command_ttl_s)
    ).to_bytes()
    for node in targets:
        hub.mqtt.publish(hub.topics.command(node, "stop"), command, qos=1)
    log.warning("stop by %s from the UI to %d node(s)", user.username, len(targets))
    return flash.redirect(BACK, message=f"Đã gửi lệnh dừng tới {len(targets)} cụm loa.")


# -- media ---------------------------------------------------------------------------------
def _media_page(
    request: Request,
    user: UiUser,
    *,
    message: str = "",
    error: bool = False,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        context = {
            "media": media_items.list_media(session),
            "voices": VOICE_LABELS,
            "form": form or {},
            "notice": (message, error) if message else None,
            "tts_max": hub.settings.tts.max_chars,
        }
        return render(request, "media.html", context, user=user, status_code=status_code)


@router.get("/media", response_class=HTMLResponse)
def media_page(request: Request, user: Editor) -> Response:
    return _media_page(request, user)


@router.post("/media", dependencies=[Csrf], response_class=HTMLResponse)
def upload(
    request: Request, user: Editor, file: Annotated[UploadFile, File()], title: Annotated[str, Form()] = ""
) -> Response:
    hub = hub_of(request)
    lib = media_items.library(hub.settings.hub.data_dir, hub.settings.media)
    data = file.file.read(hub.settings.media.max_bytes + 1)
    try:
        with hub.db.session() as session:
            item = media_items.add_upload(
                session,
                lib=lib,
                data=data,
                filename=file.filename or "upload",
                title=title.strip()[:200],
                username=user.username,
                now=hub.clock(),
            )
            name = item.title
    except ServiceError as exc:
        return _media_page(request, user, message=str(exc), error=True, status_code=422)
    return flash.redirect("/ui/media", message=f"Đã thêm “{name}” vào thư viện.")


@router.post("/media/tts", dependencies=[Csrf], response_class=HTMLResponse)
def tts(
    request: Request,
    user: Editor,
    text: Annotated[str, Form()] = "",
    voice: Annotated[str, Form()] = "northern",
    speed_wpm: Annotated[int, Form()] = 150,
    chime: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
) -> Response:
    hub = hub_of(request)
    form = {"text": text, "voice": voice, "speed_wpm": speed_wpm, "chime": chime, "title": title}
    try:
        req = TtsRequest(text=text, voice=voice, speed_wpm=speed_wpm, chime=chime == "1")  # type: ignore[arg-type]
    except ValidationError:
        return _media_page(
            request,
            user,
            message="Giọng đọc hoặc tốc độ không hợp lệ (80–260 từ/phút).",
            error=True,
            form=form,
            status_code=422,
        )
    lib = media_items.library(hub.settings.hub.data_dir, hub.settings.media)
    try:
        with hub.db.session() as session:
            item = media_items.add_tts(
                session,
                lib=lib,
                settings=hub.settings.tts,
                request=req,
                title=title.strip()[:200],
                username=user.username,
                now=hub.clock(),
            )
            name = item.title
    except ServiceError as exc:
        return _media_page(request, user, message=str(exc), error=True, form=form, status_code=422)
    return flash.redirect("/ui/media", message=f"Đã tạo bản đọc “{name}”; hãy nghe thử trước khi lên lịch.")


@router.get("/media/{sha256}.wav")
def preview(request: Request, user: Editor, sha256: str) -> Response:
    hub = hub_of(request)
    try:
        media_items.check_sha(sha256)
    except ServiceError:
        raise HTTPException(404, "Không có tệp này") from None
    path = media_items.library(hub.settings.hub.data_dir, hub.settings.media).path_for(sha256)
    if not path.is_file():
        raise HTTPException(404, "Không có tệp này")
    return FileResponse(path, media_type="audio/wav")
