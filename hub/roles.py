"""User roles: who a user is, and which roles may do what.

The one vocabulary for roles: the API's dependencies and schemas, the users service, the web
UI's guards, its menu and its live stream all import it. A permission is a named tuple of
roles here, so an API route and the web page doing the same thing check the same tuple.
(Not to be confused with a hub *process* role, ``api``/``ingest``/``scheduler``:
``settings.ProcessRole``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Protocol, get_args

from thanthien.hub.services.errors import Forbidden

Role = Literal["admin", "officer", "it", "leader"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

ADMIN: Final[Role] = "admin"
OFFICER: Final[Role] = "officer"
IT: Final[Role] = "it"
LEADER: Final[Role] = "leader"

ROLE_LABELS: Final[dict[Role, str]] = {
    ADMIN: "Quản trị hệ thống",
    OFFICER: "Cán bộ, công chức",
    IT: "Cán bộ kỹ thuật (CNTT)",
    LEADER: "Lãnh đạo",
}

# -- permissions: which roles may do what ------------------------------------------------
EVERYONE: Final[tuple[Role, ...]] = ROLES
ADMINS: Final[tuple[Role, ...]] = (ADMIN,)
"""Users and their roles; sites, zones, counters, officers and the roster (write)."""
DEVICE_STAFF: Final[tuple[Role, ...]] = (ADMIN, IT)
"""Nodes and devices (write), telemetry, dead letters, node media tokens, the health page."""
ALARM_HANDLERS: Final[tuple[Role, ...]] = (ADMIN, IT, LEADER)
"""See and acknowledge alarms, each role only its own audience (``services/alarms.py``)."""
CAMERA_READERS: Final[tuple[Role, ...]] = (ADMIN, IT, LEADER)
REPORT_READERS: Final[tuple[Role, ...]] = (ADMIN, LEADER)
"""Ratings, satisfaction summaries and their exports."""
ROSTER_READERS: Final[tuple[Role, ...]] = (ADMIN, LEADER, OFFICER)
"""Officers and the duty roster (read); admins edit them."""
BROADCAST_READERS: Final[tuple[Role, ...]] = EVERYONE
"""The calendar, broadcasts, their audit and delivery reports (IT staff check what played)."""
BROADCAST_EDITORS: Final[tuple[Role, ...]] = (ADMIN, OFFICER, LEADER)
"""Draft, edit and archive broadcasts; the media library."""
BROADCAST_APPROVERS: Final[tuple[Role, ...]] = (ADMIN, LEADER)
"""Approve broadcasts, play now (emergency too) and stop."""
LIVE_SPEAKERS: Final[tuple[Role, ...]] = (ADMIN, OFFICER, LEADER)
"""Speak live from the browser to chosen zones (an emergency only BROADCAST_APPROVERS)."""
REGISTRY_READERS: Final[tuple[Role, ...]] = (ADMIN, IT)
"""The registry pages (Danh mục): zones and their speakers, counters and their rating boxes."""
REGISTRY_EDITORS: Final[tuple[Role, ...]] = ADMINS
"""Zones, counters and officers: create, edit, retire and bring back."""
ROSTER_EDITORS: Final[tuple[Role, ...]] = ADMINS
"""The duty roster: the weekly pattern, its exceptions, and stored ratings following a change."""
BROADCAST_RULE_EDITORS: Final[tuple[Role, ...]] = ADMINS
"""A zone's or a speaker's broadcast rules (volume by the hour, daily minutes, allowed slots) and
the commune's; IT staff read them on the registry pages."""
TTS_LEXICON_EDITORS: Final[tuple[Role, ...]] = ADMINS
"""The TTS pronunciation dictionary (everyone who drafts reads it)."""
DOSSIER_OFFICERS: Final[tuple[Role, ...]] = (ADMIN, OFFICER)
"""Record dossiers and their events (the notices to citizens follow); admins also edit the
notice templates, see every message sent and manage opt-outs and alarm contacts."""


class Actor(Protocol):
    """Who asks a service to do something: a logged-in API or UI user, or the system."""

    @property
    def id(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def commune_id(self) -> int | None:
        """The commune the actor belongs to; ``None``: the province (``hub/tenancy.py``)."""


@dataclass(frozen=True)
class ActingUser:
    """An :class:`Actor` by value: the hub itself (``SYSTEM``), or a user named by a job."""

    username: str
    role: str
    id: int = 0
    commune_id: int | None = None


SYSTEM: Final = ActingUser(username="system", role=ADMIN)
"""The hub itself (seeding, the command line): a province admin that is no user row."""


def may(actor: Actor, permission: tuple[Role, ...]) -> bool:
    return actor.role in permission


def require(actor: Actor, permission: tuple[Role, ...]) -> None:
    """Refuse (``Forbidden``, 403) a user whose role is not in ``permission``."""
    if not may(actor, permission):
        allowed = ", ".join(ROLE_LABELS[r] for r in permission)
        raise Forbidden(f"Vai trò {actor.role!r} không được phép; cần một trong: {allowed}")
