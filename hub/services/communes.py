"""Communes the hub serves (issue 20): created and renamed by province admins, and how far each
is into service."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Commune, Counter, Node, Officer, User, Zone
from thanthien.hub.roles import ADMINS, Actor, require
from thanthien.hub.services import audit
from thanthien.hub.services.errors import Conflict, Invalid
from thanthien.hub.tenancy import (
    RESERVED_CODES,
    Tenant,
    commune_by_code,
    list_communes,
    require_province,
    require_reach,
)
from thanthien.protocol.ids import ID_PATTERN


def _valid(code: str, name: str) -> tuple[str, str]:
    code, name = code.strip(), " ".join(name.split())
    if code in RESERVED_CODES:
        raise Invalid(f"Mã {code!r} dành cho trang công khai; hãy chọn mã khác cho xã/phường.")
    if not re.fullmatch(ID_PATTERN, code):
        raise Invalid("Mã xã/phường chỉ gồm chữ thường không dấu, chữ số và dấu gạch ngang "
                      "(tối đa 63 ký tự).")
    if not 1 <= len(name) <= 200:
        raise Invalid("Tên xã/phường phải có từ 1 đến 200 ký tự.")
    return code, name


def create_commune(session: Session, *, actor: Actor, code: str, name: str, now: datetime) -> Commune:
    """A new commune (a province admin's): its zones, counters, users and nodes follow."""
    require(actor, ADMINS)
    require_province(actor)
    code, name = _valid(code, name)
    if session.scalar(select(Commune.id).where(Commune.code == code)) is not None:
        raise Conflict(f"Đã có xã/phường mã {code}")
    commune = Commune(code=code, name=name, created_at=now)
    session.add(commune)
    session.flush()
    audit.record(session, actor=actor, action="commune.create", subject=f"commune:{code}", at=now,
                 details={"name": name}, commune_id=commune.id)
    return commune


def rename_commune(session: Session, *, actor: Actor, code: str, name: str, now: datetime) -> Commune:
    require(actor, ADMINS)
    require_province(actor)
    commune = commune_by_code(session, code)
    _code, name = _valid(code, name)
    if commune.name != name:
        audit.record(session, actor=actor, action="commune.update", subject=f"commune:{code}", at=now,
                     details={"name": {"from": commune.name, "to": name}}, commune_id=commune.id)
        commune.name = name
    return commune


@dataclass(frozen=True)
class Onboarding:
    """How far a commune is into service (the province admin's onboarding page): what it has of
    each kind, in service."""

    commune: Commune
    zones: int
    counters: int
    officers: int
    users: int
    admins: int
    nodes: int
    nodes_online: int

    @property
    def steps(self) -> list[tuple[str, bool]]:
        """The onboarding steps in order, and whether each is done."""
        return [("Có tài khoản quản trị của xã", self.admins > 0),
                ("Có khu vực phát (bản, tổ dân phố)", self.zones > 0),
                ("Có quầy một cửa", self.counters > 0), ("Có cán bộ", self.officers > 0),
                ("Có thiết bị đã đăng ký", self.nodes > 0),
                ("Có thiết bị đang trực tuyến", self.nodes_online > 0)]


# what the onboarding counts: figure -> (table, conditions on the rows counted)
_FIGURES: dict[str, tuple[type, tuple[Any, ...]]] = {
    "zones": (Zone, (Zone.retired_at.is_(None),)),
    "counters": (Counter, (Counter.retired_at.is_(None),)),
    "officers": (Officer, (Officer.retired_at.is_(None),)),
    "users": (User, (User.active.is_(True),)),
    "admins": (User, (User.active.is_(True), User.role == "admin")),
    "nodes": (Node, (Node.retired_at.is_(None), Node.registered.is_(True))),
    "nodes_online": (Node, (Node.retired_at.is_(None), Node.state == "online")),
}


def _figures(session: Session, commune_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each figure of each commune: one grouped count per figure, whatever the communes."""
    out: dict[int, dict[str, int]] = {c: dict.fromkeys(_FIGURES, 0) for c in commune_ids}
    for figure, (model, conditions) in _FIGURES.items():
        query = (select(model.commune_id, func.count()).where(model.commune_id.in_(commune_ids), *conditions)
                 .group_by(model.commune_id))
        for commune_id, n in session.execute(query):
            out[commune_id][figure] = int(n)
    return out


def onboarding(session: Session, *, viewer: Tenant, code: str) -> Onboarding:
    commune = commune_by_code(session, code)
    require_reach(viewer, commune.id, what=f"Xã/phường {code}")
    return Onboarding(commune=commune, **_figures(session, [commune.id])[commune.id])


def overview(session: Session, *, viewer: Tenant) -> list[Onboarding]:
    """Every commune ``viewer`` reaches, with its onboarding figures."""
    communes = list_communes(session, actor=viewer)
    figures = _figures(session, [c.id for c in communes])
    return [Onboarding(commune=c, **figures[c.id]) for c in communes]
