"""The registry part of a commune for the tenancy walk: a zone, a counter, two nodes with a
speaker, a rating box and a camera, an officer, and one user per role."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from thanthien.hub.roles import ROLES, SYSTEM
from thanthien.hub.services import registry, users

PASSWORD = "mat-khau-dung-2026"


def seed(session: Session, *, commune: str, prefix: str, marker: str, now: datetime) -> dict[str, Any]:
    zone = registry.create_zone(session, actor=SYSTEM, code=f"{prefix}-ban", name=f"Bản {marker}",
                                commune=commune, now=now)
    counter = registry.create_counter(session, actor=SYSTEM, code=f"{prefix}-quay", name=f"Quầy {marker}",
                                      commune=commune, now=now)
    site = registry.create_site(session, actor=SYSTEM, code=f"{prefix}-ubnd", name=f"UBND {marker}",
                                commune=commune, now=now)
    speaker_node = registry.register_node(session, actor=SYSTEM, node_id=f"{prefix}-loa",
                                          name=f"Loa {marker}", commune=commune, now=now)
    speaker = registry.upsert_device(session, actor=SYSTEM, node_id=speaker_node.id, code="loa",
                                     kind="speaker", name=f"Cụm loa {marker}", zone=zone.code, now=now)
    box_node = registry.register_node(session, actor=SYSTEM, node_id=f"{prefix}-hop", name=f"Hộp {marker}",
                                      commune=commune, now=now)
    box = registry.upsert_device(session, actor=SYSTEM, node_id=box_node.id, code="hop", kind="rating_box",
                                 name=f"Hộp {marker}", counter=counter.code, now=now)
    camera = registry.upsert_device(session, actor=SYSTEM, node_id=box_node.id, code="cam", kind="camera",
                                    name=f"Camera {marker}", counter=counter.code, now=now)
    accounts = {role: users.create_user(session, actor=SYSTEM, username=f"{prefix}-{role}",
                                        password=PASSWORD, role=role, full_name=f"{role} {marker}",
                                        commune=commune, now=now)
                for role in ROLES}
    officer = registry.create_officer(session, actor=SYSTEM, code=f"{prefix}-cb",
                                      full_name=f"Cán bộ {marker}", user_id=accounts["officer"].id,
                                      commune=commune, now=now)
    session.flush()
    return {
        "zone_id": zone.id, "zone": zone.code, "counter_id": counter.id, "counter": counter.code,
        "site_id": site.id, "site": site.code, "node_id": speaker_node.id, "speaker_node": speaker_node.id,
        "box_node": box_node.id, "device_id": speaker.id, "box_device_id": box.id,
        "camera_device_id": camera.id,
        "camera": "cam", "device_code": "loa", "officer_id": officer.id, "user_id": accounts["admin"].id,
        "usernames": {role: u.username for role, u in accounts.items()},
        "zones.row_id": zone.id, "zones.code": zone.code, "counters.row_id": counter.id,
        "officers.row_id": officer.id, "devices.row_id": speaker.id, "nodes.node_id": speaker_node.id,
        "users.user_id": accounts["admin"].id, "rules.code": zone.code, "registry.code": zone.code,
        "registry.area": "zones", "registry.ident": zone.id,
    }
