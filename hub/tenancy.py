"""Communes as tenants (issue 20): which communes an actor reaches, and the one rule for it.

A user belongs to a commune (``User.commune_id``) or to the province (``None``). A commune user
sees and changes only their commune's rows; a province user reads every commune (and, where a
role allows, changes any). Every service that lists or fetches a tenant's rows goes through
:func:`visible_clause` (queries) or :func:`require_reach` (one row), so the API, the web, the
live stream and the exports cannot disagree. Another commune's row is *not found* to a commune
user (404, the same as a row that does not exist), never *forbidden*: a refusal would tell them
it exists.

Codes (zones, counters, nodes, officers) stay unique across the province: they name things in
URLs, MQTT topics and exports, and a province merges communes' data by them.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Commune
from thanthien.hub.services.errors import Forbidden, Invalid, NotFound

HOME: Final = "home"
"""The code of the commune a hub installed for one town has (migration 0018)."""
HOME_PLACEHOLDER: Final = "Xã"
"""Its name until it is declared or named after ``[hub] site_name``."""
RESERVED_CODES: Final = frozenset({"loa", "phan-anh"})
"""Codes the public pages use themselves (``/p/loa/…``, ``/p/phan-anh/…``): no commune has one,
so ``/p/<commune>/`` never meets them."""


class Tenant(Protocol):
    """Who asks: a user (or the hub itself) with a commune, or ``None`` for the province."""

    @property
    def commune_id(self) -> int | None: ...


def is_province(actor: Tenant) -> bool:
    return getattr(actor, "commune_id", None) is None


def reaches(actor: Tenant, commune_id: int | None) -> bool:
    """Whether ``actor`` may see a row of ``commune_id`` (``None``: a province-wide row)."""
    mine = getattr(actor, "commune_id", None)
    return mine is None or commune_id == mine


def visible_clause(actor: Tenant, column: Any, *, shared: bool = False) -> ColumnElement[bool]:
    """A WHERE clause keeping the rows of ``column`` (a ``commune_id``) ``actor`` reaches;
    ``shared``: rows with no commune (a province broadcast, the province's media library) are
    seen by every commune too."""
    mine = getattr(actor, "commune_id", None)
    if mine is None:
        return true()
    return or_(column == mine, column.is_(None)) if shared else column == mine


def require_reach(actor: Tenant, commune_id: int | None, *, what: str = "Mục này",
                  shared: bool = False) -> None:
    """Refuse (``NotFound``) a row of a commune ``actor`` does not reach."""
    if reaches(actor, commune_id) or (shared and commune_id is None):
        return
    raise NotFound(f"{what} không tồn tại")


def require_province(actor: Tenant) -> None:
    """Refuse (``Forbidden``) a commune user what only the province may do."""
    if not is_province(actor):
        raise Forbidden("Chỉ tài khoản cấp tỉnh được làm việc này")


def list_communes(session: Session, *, actor: Tenant, active: bool | None = True) -> list[Commune]:
    """The communes ``actor`` reaches, by name (``active``: only those in service)."""
    stmt = select(Commune).where(visible_clause(actor, Commune.id)).order_by(Commune.name, Commune.code)
    if active is True:
        stmt = stmt.where(Commune.retired_at.is_(None))
    elif active is False:
        stmt = stmt.where(Commune.retired_at.is_not(None))
    return list(session.scalars(stmt))


def commune_by_code(session: Session, code: str) -> Commune:
    commune = session.scalar(select(Commune).where(Commune.code == code))
    if commune is None:
        raise NotFound(f"Không có xã/phường mã {code}")
    return commune


def commune_for_new(session: Session, *, actor: Tenant, requested: str | None = None) -> int:
    """The commune a new row of ``actor`` belongs to. A commune user's rows are their commune's
    (naming another is refused); a province user names one, or gets the only one there is."""
    mine = getattr(actor, "commune_id", None)
    if requested:
        commune = commune_by_code(session, requested)
        if mine is not None and commune.id != mine:
            raise NotFound(f"Không có xã/phường mã {requested}")
        if commune.retired_at is not None:
            raise Invalid(f"Xã/phường {commune.name} đã ngừng sử dụng")
        return commune.id
    if mine is not None:
        return mine
    active = session.scalars(select(Commune.id).where(Commune.retired_at.is_(None)).limit(2)).all()
    if len(active) == 1:
        return active[0]
    count = session.scalar(select(func.count()).select_from(Commune).where(Commune.retired_at.is_(None)))
    raise Invalid("Hãy chọn xã/phường" if count else "Chưa có xã/phường nào: hãy tạo một xã trước")


def heading(session: Session, *, viewer: Tenant, site_name: str) -> str:
    """The name heading what ``viewer`` sees and exports: their commune's, or for a province
    user the hub's ``site_name``."""
    mine = getattr(viewer, "commune_id", None)
    commune = session.get(Commune, mine) if mine is not None else None
    return commune.name if commune is not None else site_name


def commune_names(session: Session) -> dict[int, str]:
    """Every commune's name by id (for province views and labels)."""
    return dict(session.execute(select(Commune.id, Commune.name)).tuples().all())
