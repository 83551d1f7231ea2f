"""Communes the hub serves (issue 20): created, renamed and retired by province admins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Commune
from thanthien.hub.roles import ADMINS, Actor, require
from thanthien.hub.services import audit
from thanthien.hub.services.errors import Conflict, Invalid
from thanthien.hub.tenancy import commune_by_code, require_province
from thanthien.protocol.ids import ID_PATTERN


def _valid(code: str, name: str) -> tuple[str, str]:
    import re

    code, name = code.strip(), " ".join(name.split())
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
