"""The administrative audit log: every change an administrator (or the hub itself) makes to
users, the registry, the roster, node credentials, the media library and broadcast rules,
written by the service that makes the change, in the same transaction.

A service records with :func:`record`: who (the :class:`Actor` as they were then), what
(``action``, e.g. ``user.role``), to what (``subject``, e.g. ``user:canbo``) and the details
(values, or ``{"field": {"from": …, "to": …}}`` for a change). Details never hold a secret:
keys that name one (password, token, secret, hash) are dropped whatever the caller passes.
Admins read the log (:func:`list_entries`) and export it as CSV or XLSX (:func:`export`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import AuditEntry
from thanthien.hub.roles import ADMINS, ROLE_LABELS, Actor, require
from thanthien.hub.tenancy import visible_clause
from thanthien.protocol.payloads import utc_now

if TYPE_CHECKING:  # reports imports ratings, which imports registry, which records here
    from thanthien.hub.services.reports import Download, ExportFormat

MAX_PAGE: Final = 500
MAX_EXPORT_ROWS: Final = 100_000
SECRET_WORDS: Final = ("password", "token", "secret", "hash")
"""A details key containing one of these is never stored."""

# What each action is called on the page and in the export (an action without a label shows as is).
ACTION_LABELS: Final[dict[str, str]] = {
    "commune.create": "Thêm xã, phường",
    "commune.update": "Đổi tên xã, phường",
    "user.create": "Tạo người dùng",
    "user.role": "Đổi vai trò",
    "user.lock": "Khóa tài khoản",
    "user.unlock": "Mở khóa tài khoản",
    "user.password_reset": "Đặt lại mật khẩu",
    "user.password_change": "Đổi mật khẩu",
    "user.rename": "Đổi họ tên",
    "site.create": "Tạo địa điểm",
    "site.delete": "Xóa địa điểm",
    "zone.create": "Tạo khu vực phát",
    "zone.delete": "Xóa khu vực phát",
    "counter.create": "Tạo quầy",
    "counter.delete": "Xóa quầy",
    "node.register": "Đăng ký nút",
    "node.update": "Sửa nút",
    "node.delete": "Xóa nút",
    "device.create": "Thêm thiết bị",
    "device.update": "Sửa thiết bị",
    "device.delete": "Xóa thiết bị",
    "officer.create": "Thêm cán bộ",
    "officer.delete": "Xóa cán bộ",
    "roster.add": "Phân công ca trực",
    "roster.remove": "Bỏ ca trực",
    "node_token.issue": "Cấp mã tải âm thanh cho nút",
    "node_token.revoke": "Thu hồi mã tải âm thanh của nút",
    "media.delete": "Xóa tệp âm thanh",
    "broadcast.quiet_hours_exception": "Cho phép phát trong giờ yên tĩnh",
    "broadcast.quiet_hours_exception_revoked": "Thu hồi cho phép phát trong giờ yên tĩnh",
    "broadcast.rules": "Đổi quy định phát (khung giờ, số phút, âm lượng)",
    "tts.lexicon": "Sửa từ điển phát âm",
    "tts.lexicon_delete": "Xóa khỏi từ điển phát âm",
    "login.locked": "Tạm khóa đăng nhập (sai nhiều lần)",
    "node.enrollment_code": "Cấp mã đăng ký nút",
    "node.enroll": "Nút đăng ký bằng mã (cấp định danh mới)",
    "node.revoke": "Thu hồi định danh của nút",
    "node.retire": "Ngừng sử dụng nút (thu hồi định danh)",
    "node.command": "Gửi lệnh tới nút",
    "node.config": "Đổi cấu hình nút",
    "enroll.locked": "Tạm khóa đăng ký nút (nhập sai mã nhiều lần)",
    "fault_report.answer": "Trả lời phản ánh của người dân",
    "release.upload": "Tải lên bản phát hành",
    "release.refused": "Từ chối bản phát hành (chữ ký hoặc tệp không đúng)",
    "rollout.create": "Tạo đợt cập nhật",
    "rollout.stage": "Mở giai đoạn cập nhật tiếp theo",
    "rollout.pause": "Tạm dừng đợt cập nhật",
    "rollout.resume": "Tiếp tục đợt cập nhật",
    "rollout.cancel": "Hủy đợt cập nhật",
    "rollout.stop": "Đợt cập nhật tự dừng (quá ngưỡng lỗi)",
    "rollout.done": "Đợt cập nhật hoàn tất",
    "rollout.node_kept": "Nút giữ bản cập nhật",
    "rollout.node_rolled_back": "Nút tự quay lại bản cũ",
    "rollout.node_failed": "Nút cập nhật thất bại",
}
# Registry changes (``registry``): the verb before the area's name ("Ngừng sử dụng quầy").
VERBS: Final[dict[str, str]] = {
    "create": "Tạo",
    "update": "Sửa",
    "delete": "Xóa",
    "retire": "Ngừng sử dụng",
    "restore": "Dùng lại",
}
# The part of an action before the dot: what the page's filter offers.
AREAS: Final[dict[str, str]] = {
    "commune": "Xã, phường",
    "user": "Người dùng",
    "site": "Địa điểm",
    "zone": "Khu vực phát",
    "counter": "Quầy",
    "node": "Nút (thiết bị biên)",
    "device": "Thiết bị",
    "officer": "Cán bộ",
    "roster": "Lịch trực",
    "node_token": "Mã tải âm thanh của nút",
    "media": "Thư viện âm thanh",
    "broadcast": "Phát thanh",
    "login": "Đăng nhập",
    "enroll": "Đăng ký nút",
    "fault_report": "Phản ánh của người dân",
    "release": "Bản phát hành",
    "rollout": "Đợt cập nhật",
}
HEADINGS: Final = ("Thời điểm", "Người thực hiện", "Vai trò", "Thao tác", "Đối tượng", "Chi tiết")


def action_label(action: str) -> str:
    area, _dot, verb = action.partition(".")
    if verb == "declare" and area in AREAS:  # registry.apply_declarations: the config file
        return f"Khai báo {AREAS[area].lower()} (tệp cấu hình)"
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    if verb in VERBS and area in AREAS:
        return f"{VERBS[verb]} {AREAS[area].lower()}"
    return action


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()
                if not any(word in str(k).lower() for word in SECRET_WORDS)}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_json_safe(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def record(session: Session, *, actor: Actor, action: str, subject: str,
           details: Mapping[str, Any] | None = None, at: datetime | None = None,
           commune_id: int | None = None) -> AuditEntry:
    """Write one entry in the caller's transaction (it commits or rolls back with the change).

    ``at`` defaults to now; ``details`` keys naming a secret are dropped. ``commune_id``: the
    commune of what changed (default: the actor's; ``None`` for a province user's own)."""
    if commune_id is None:
        commune_id = getattr(actor, "commune_id", None)
    entry = AuditEntry(at=at or utc_now(), actor_id=actor.id or None, actor_username=actor.username[:64],
                       actor_role=actor.role[:16], action=action[:64], subject=subject[:255],
                       details=_json_safe(details or {}), commune_id=commune_id)
    session.add(entry)
    return entry


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{"field": {"from": old, "to": new}}`` for each field whose value differs; with no
    ``before`` (a new row) the values themselves (``{"field": new}``)."""
    if not before:
        return dict(after)
    return {k: {"from": before.get(k), "to": v} for k, v in after.items() if before.get(k) != v}


# -- reading ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditFilter:
    start: datetime | None = None
    """Inclusive."""
    end: datetime | None = None
    """Exclusive."""
    area: str | None = None
    """An area (``user``: every ``user.*`` action) or one action (``user.role``)."""
    actor: str | None = None
    """The username of whoever made the change."""
    subject: str | None = None
    """Part of the subject, any case (``loa-ban-hon`` finds ``node:loa-ban-hon``)."""


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    total: int


def _where(flt: AuditFilter, viewer: Actor) -> list[Any]:
    """The filter's conditions, and the viewer's reach: a commune user reads only the entries of
    their commune (a province-wide entry, ``commune_id`` None, is the province's)."""
    out: list[Any] = [visible_clause(viewer, AuditEntry.commune_id)]
    if flt.start is not None:
        out.append(AuditEntry.at >= flt.start)
    if flt.end is not None:
        out.append(AuditEntry.at < flt.end)
    if flt.area:
        out.append(AuditEntry.action == flt.area if "." in flt.area
                   else or_(AuditEntry.action == flt.area, AuditEntry.action.startswith(flt.area + ".",
                                                                                        autoescape=True)))
    if flt.actor:
        out.append(AuditEntry.actor_username == flt.actor)
    if flt.subject:
        out.append(func.lower(AuditEntry.subject).contains(flt.subject.lower(), autoescape=True))
    return out


def list_entries(session: Session, *, actor: Actor, flt: AuditFilter, limit: int = 100,
                 offset: int = 0) -> AuditPage:
    """Entries newest first (admins only)."""
    require(actor, ADMINS)
    where = _where(flt, actor)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    rows = session.scalars(_newest_first(flt, actor).limit(max(1, min(limit, MAX_PAGE)))
                           .offset(max(0, offset)))
    return AuditPage(entries=list(rows), total=total)


def _newest_first(flt: AuditFilter, viewer: Actor) -> Any:
    return select(AuditEntry).where(*_where(flt, viewer)).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


def describe(details: Mapping[str, Any], tz: str | None = None) -> str:
    """The details in one line: ``role: officer → leader; name: Quầy 1`` (times in ``tz``)."""
    zone = ZoneInfo(tz) if tz else None
    parts = []
    for key, value in details.items():
        if isinstance(value, Mapping) and set(value) == {"from", "to"}:
            parts.append(f"{key}: {_text(value['from'], zone)} → {_text(value['to'], zone)}")
        else:
            parts.append(f"{key}: {_text(value, zone)}")
    return "; ".join(parts)


def _text(value: Any, zone: ZoneInfo | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "có" if value else "không"
    if isinstance(value, list):
        return ", ".join(_text(v, zone) for v in value)
    if isinstance(value, Mapping):
        return "{" + describe(value, str(zone) if zone else None) + "}"
    if zone is not None and isinstance(value, str) and _ISO_TIME.match(value):
        return datetime.fromisoformat(value).astimezone(zone).strftime("%d/%m/%Y %H:%M")
    return str(value)


_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


def role_label(entry: AuditEntry) -> str:
    """The actor's role as shown; the hub itself (no user row) is "Hệ thống"."""
    if entry.actor_id is None:
        return SYSTEM_LABEL
    return ROLE_LABELS.get(entry.actor_role, entry.actor_role)  # type: ignore[call-overload, no-any-return]


SYSTEM_LABEL: Final = "Hệ thống (tự động)"


def _rows(entries: list[AuditEntry], tz: ZoneInfo) -> list[list[str]]:
    return [[e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"), e.actor_username, role_label(e),
             action_label(e.action), e.subject, describe(e.details, str(tz))] for e in entries]


def _csv(rows: list[list[str]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel shows the Vietnamese right."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HEADINGS)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def _xlsx(rows: list[list[str]], title: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Nhật ký quản trị"
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append(list(HEADINGS))
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for row in rows:  # names typed by people may hold control characters a worksheet refuses
        ws.append([ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) for value in row])
    for i, width in enumerate((20, 18, 22, 30, 30, 60), start=1):
        ws.column_dimensions[ws.cell(row=2, column=i).column_letter].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def export(session: Session, *, actor: Actor, flt: AuditFilter, format: ExportFormat, tz: str,
           title: str, name: str = "nhat-ky-quan-tri") -> Download:
    """The entries the filter selects (newest first, at most ``MAX_EXPORT_ROWS``) as CSV or
    XLSX with Vietnamese headings and local times (admins only)."""
    from thanthien.hub.services.reports import MEDIA_TYPES, Download

    require(actor, ADMINS)
    entries = list(session.scalars(_newest_first(flt, actor).limit(MAX_EXPORT_ROWS)))
    rows = _rows(entries, ZoneInfo(tz))
    data = _csv(rows) if format == "csv" else _xlsx(rows, title)
    return Download(data=data, media_type=MEDIA_TYPES[format], filename=f"{name}.{format}")
