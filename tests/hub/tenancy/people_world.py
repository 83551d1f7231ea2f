"""Two communes seeded as the tenancy walk seeds them, for the people room's focused tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.tenancy import seed_people, seed_registry, walk
from thanthien.hub.db.models import Commune, User
from thanthien.hub.roles import SYSTEM, ActingUser
from thanthien.hub.services import communes, users


def seed_both(ctx: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Commune A (``home``, prefix ``xa``, ALPHA) and B (``xb``, BEBE), each with the registry's
    and the people room's rows; and a province admin ``tinh-admin`` and leader ``tinh-leader``."""
    now = ctx.clock()
    out = []
    with ctx.db.session() as s:
        s.scalar(select(Commune).where(Commune.code == "home")).name = f"Thị trấn {walk.MARKER_A}"
        communes.create_commune(s, actor=SYSTEM, code="xb", name=f"Xã {walk.MARKER_B}", now=now)
        for commune, prefix, marker in (("home", "xa", walk.MARKER_A), ("xb", "xb", walk.MARKER_B)):
            ids = seed_registry.seed(s, commune=commune, prefix=prefix, marker=marker, now=now)
            ids.update(seed_people.seed(s, commune=commune, prefix=prefix, marker=marker, now=now,
                                        registry=ids))
            ids["commune"] = commune
            ids["commune_id"] = s.scalar(select(Commune.id).where(Commune.code == commune))
            out.append(ids)
        for role in ("admin", "leader"):
            users.create_user(s, actor=SYSTEM, username=f"tinh-{role}", password=seed_registry.PASSWORD,
                              role=role, full_name=f"Tỉnh {role}", now=now)
    return out[0], out[1]


def actor(ctx: Any, username: str) -> ActingUser:
    """The user ``username`` as a service's actor."""
    with ctx.db.session(write=False) as s:
        user = s.scalar(select(User).where(User.username == username))
        return ActingUser(username=user.username, role=user.role, id=user.id, commune_id=user.commune_id)
