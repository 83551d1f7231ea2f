"""The Jinja2 environment of the UI: Vietnamese labels and local-time filters."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from thanthien.hub.roles import (
    ADMINS,
    BROADCAST_EDITORS,
    BROADCAST_READERS,
    DEVICE_STAFF,
    DOSSIER_OFFICERS,
    EVERYONE,
    LIVE_SPEAKERS,
    REGISTRY_READERS,
    REPORT_READERS,
    ROSTER_READERS,
    Role,
)
from thanthien.hub.web import flash
from thanthien.hub.web.auth import CSRF_FIELD, UiUser, hub_of

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

NODE_STATES = {"online": "Trực tuyến", "offline": "Ngoại tuyến", "lost": "Mất kết nối", "unknown": "Chưa rõ"}
CAMERA_STATES = {"ok": "Bình thường", "degraded": "Chập chờn", "down": "Mất tín hiệu",
                 "frozen": "Đứng hình", "black": "Màn hình đen", "unknown": "Không rõ"}
DEVICE_KINDS = {"rating_box": "Hộp đánh giá", "speaker": "Cụm loa", "camera": "Camera"}
SEVERITIES = {"info": "Thông tin", "warning": "Cảnh báo", "major": "Nghiêm trọng", "critical": "Khẩn cấp"}
ALARM_KINDS = {"node_offline": "Thiết bị ngoại tuyến", "node_unregistered": "Thiết bị chưa đăng ký",
               "outbox_backlog": "Tồn đọng dữ liệu", "disk_full": "Sắp đầy bộ nhớ",
               "high_temperature": "Nhiệt độ cao", "clock_unsynced": "Đồng hồ chưa đồng bộ",
               "camera_down": "Camera gặp sự cố",
               "claim_refused": "An ninh: thiết bị gửi dữ liệu không thuộc về mình",
               "negative_spike": "Đánh giá tiêu cực tăng đột biến",
               "broadcast_missed": "Bản tin không phát được",
               "speaker_silent": "Loa phát nhưng không có tiếng"}
STATE_REASONS = {"last will: connection lost": "mất kết nối đột ngột", "clean stop": "tắt bình thường",
                 "heartbeat expired": "quá thời gian không gửi tín hiệu"}


@pass_context
def _local(ctx: Context, value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """A UTC time in the hub's zone (``tz`` in the template context)."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(ctx["tz"])).strftime(fmt)


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "chưa bao giờ"
    seconds = int((now - value).total_seconds())
    if seconds < 60:
        return "vừa xong"
    if seconds < 3600:
        return f"{seconds // 60} phút trước"
    if seconds < 86400:
        return f"{seconds // 3600} giờ trước"
    return f"{seconds // 86400} ngày trước"


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\u2009").replace(".", ",")  # Vietnamese: thin-space thousands, decimal comma


def _signed(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return ("+" if value > 0 else "") + _number(value, digits).replace("-", "−")


templates.env.filters.update(local=_local, number=_number, signed=_signed)
templates.env.globals.update(NODE_STATES=NODE_STATES, CAMERA_STATES=CAMERA_STATES, DEVICE_KINDS=DEVICE_KINDS,
                             SEVERITIES=SEVERITIES, ALARM_KINDS=ALARM_KINDS, STATE_REASONS=STATE_REASONS,
                             ago=_ago, CSRF_FIELD=CSRF_FIELD)


# pages in the menu: (path, label, roles); a page is listed only for roles that may open it,
# with the same permission its routes require (hub/roles.py)
NAV: list[tuple[str, str, tuple[Role, ...]]] = [
    ("/ui/", "Trang chủ", EVERYONE),
    ("/ui/health", "Tình trạng thiết bị", DEVICE_STAFF),
    ("/ui/enroll", "Thêm thiết bị", DEVICE_STAFF),
    ("/ui/releases", "Cập nhật phần mềm", DEVICE_STAFF),
    ("/ui/satisfaction", "Mức độ hài lòng", REPORT_READERS),
    ("/ui/broadcasts", "Lịch phát thanh", BROADCAST_READERS),
    ("/ui/media", "Thư viện âm thanh", BROADCAST_EDITORS),
    ("/ui/live", "Phát trực tiếp", LIVE_SPEAKERS),
    ("/ui/province", "Tổng hợp toàn tỉnh", REPORT_READERS),
    ("/ui/communes", "Xã, phường", ADMINS),
    ("/ui/users", "Người dùng", ADMINS),
    ("/ui/audit", "Nhật ký quản trị", ADMINS),
    ("/ui/dossiers", "Hồ sơ một cửa", DOSSIER_OFFICERS),
    ("/ui/dossier-ratings", "Đánh giá qua tin nhắn", REPORT_READERS),
    ("/ui/sms", "Tin nhắn", ADMINS),
    ("/ui/contacts", "Người nhận cảnh báo", ADMINS),
    ("/ui/registry", "Danh mục", REGISTRY_READERS),
    ("/ui/roster", "Lịch trực", ROSTER_READERS),
    ("/ui/faults", "Phản ánh của dân", DEVICE_STAFF),
]


PROVINCE_PAGES: Final = frozenset({"/ui/province"})
"""Pages only province users (no commune) open (``services/province.py`` refuses the others)."""


def nav_for(role: str, *, province: bool = True) -> list[tuple[str, str]]:
    return [(path, label) for path, label, roles in NAV
            if role in roles and (province or path not in PROVINCE_PAGES)]


def render(request: Request, name: str, context: dict[str, Any], *, user: UiUser | None,
           status_code: int = 200) -> HTMLResponse:
    hub = hub_of(request)
    nav = nav_for(user.role, province=user.commune_id is None) if user else []
    base = {"tz": hub.settings.hub.timezone, "user": user, "nav": nav,
            "site_name": (user.commune_name if user else "") or hub.settings.hub.site_name,
            "now": hub.clock(), "path": request.url.path,
            "flash": flash.take(request)}
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
    flash.clear(request, response)
    return response


def render_fragment(name: str, context: dict[str, Any]) -> str:
    """A partial template as a string (for the live-update stream)."""
    return templates.env.get_template(name).render(**context)
