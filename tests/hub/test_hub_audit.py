"""The administrative audit log on SQLite and PostgreSQL: every change an admin (or IT staff,
for devices) makes through the API is recorded by the service with who made it, secrets never
are, and admins read, filter and export the log."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from support import role_headers
from thanthien.hub.app import create_app
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import AuditEntry, MediaItem
from thanthien.hub.roles import ROLES, SYSTEM, ActingUser
from thanthien.hub.services import audit, media_items, registry, users
from thanthien.hub.services.audit import AuditFilter
from thanthien.hub.settings import RegistrySection
from thanthien.hub.web import periods

pytestmark = pytest.mark.usefixtures("cheap_hashing")
PASSWORD = "mat-khau-123"
SHA = "ab" * 32
ADMIN = ActingUser(username="admin", role="admin", id=1)


@dataclass
class World:
    ctx: HubContext
    client: TestClient
    headers: Callable[[str], dict[str, str]]
    ids: dict[str, int]

    def entries(self, actor: str | None = None) -> list[AuditEntry]:
        with self.ctx.db.session(write=False) as s:
            query = select(AuditEntry).order_by(AuditEntry.id)
            if actor is not None:
                query = query.where(AuditEntry.actor_username == actor)
            return list(s.scalars(query))


@pytest.fixture
def world(ctx: HubContext):
    """A user per role, a site, zone, counter, speaker node, officer on a shift and a media file."""
    with ctx.db.session() as s:
        ids = {role: users.create_user(s, actor=SYSTEM, username=role, password=PASSWORD, role=role,
                                       now=ctx.clock()).id for role in ROLES}
        ids["site"] = registry.create_site(s, actor=SYSTEM, code="ubnd", name="UBND thị trấn").id
        ids["zone"] = registry.create_zone(s, actor=SYSTEM, code="ban-hon", name="Bản Hón").id
        ids["counter"] = registry.create_counter(s, actor=SYSTEM, code="quay-1", name="Quầy 1").id
        registry.register_node(s, actor=SYSTEM, node_id="loa-1", name="Cụm loa Bản Hón")
        ids["device"] = registry.upsert_device(s, actor=SYSTEM, node_id="loa-1", code="loa", kind="speaker",
                                               zone="ban-hon").id
        ids["cb"] = registry.create_officer(s, actor=SYSTEM, code="cb-lan",
                                            full_name="Nguyễn Thị Lan").id
        ids["shift"] = registry.add_shift(s, actor=SYSTEM, officer_id=ids["cb"], counter="quay-1",
                                          starts_at=ctx.clock(), ends_at=ctx.clock() + timedelta(hours=4)).id
        media_items.issue_node_token(s, actor=SYSTEM, node_id="loa-1", now=ctx.clock())
        s.add(MediaItem(sha256=SHA, title="Thông báo họp thôn", duration_s=12.0, size_bytes=1000,
                        source_format="wav", source_sha256=SHA, created_at=ctx.clock(), created_by="officer"))
    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx)) as client:
        yield World(ctx, client, role_headers(client, PASSWORD), ids)


SHIFT = {"officer_id": "{cb}", "counter": "quay-1", "starts_at": "2026-03-03T01:00:00+00:00",
         "ends_at": "2026-03-03T09:00:00+00:00"}
# (method, path, body, role, action, subject); "{name}" is the world's id of that name
CHANGES = {
    "user-create": ("POST", "/users", {"username": "can-bo-moi", "password": "mat-khau-moi-1",
                                       "role": "officer"}, "admin", "user.create", "user:can-bo-moi"),
    "user-role": ("PATCH", "/users/{officer}", {"role": "leader"}, "admin", "user.role", "user:officer"),
    "user-lock": ("PATCH", "/users/{officer}", {"active": False}, "admin", "user.lock", "user:officer"),
    "user-password": ("PATCH", "/users/{officer}", {"password": "mat-khau-moi-1"}, "admin",
                      "user.password_change", "user:officer"),
    "user-reset": ("POST", "/users/{officer}/reset-password", None, "admin", "user.password_reset",
                   "user:officer"),
    "site-create": ("POST", "/sites", {"code": "xa-moi", "name": "Xã mới"}, "admin", "site.create",
                    "site:xa-moi"),
    "site-delete": ("DELETE", "/sites/{site}", None, "admin", "site.delete", "site:ubnd"),
    "zone-create": ("POST", "/zones", {"code": "to-1", "name": "Tổ 1"}, "admin", "zone.create", "zone:to-1"),
    "zone-delete": ("DELETE", "/zones/{zone}", None, "admin", "zone.delete", "zone:ban-hon"),
    "counter-create": ("POST", "/counters", {"code": "quay-2", "name": "Quầy 2"}, "admin", "counter.create",
                       "counter:quay-2"),
    "counter-delete": ("DELETE", "/counters/{counter}", None, "admin", "counter.delete", "counter:quay-1"),
    "node-register": ("POST", "/nodes", {"id": "loa-2", "name": "Cụm loa 2"}, "it", "node.register",
                      "node:loa-2"),
    "node-update": ("PATCH", "/nodes/loa-1", {"name": "Cụm loa mới"}, "it", "node.update", "node:loa-1"),
    "node-delete": ("DELETE", "/nodes/loa-1", None, "it", "node.delete", "node:loa-1"),
    "device-create": ("PUT", "/devices", {"node_id": "loa-1", "code": "loa-2", "kind": "speaker"}, "it",
                      "device.create", "device:loa-1/loa-2"),
    "device-update": ("PUT", "/devices", {"node_id": "loa-1", "code": "loa", "kind": "speaker",
                                          "name": "Loa B"}, "it", "device.update", "device:loa-1/loa"),
    "device-delete": ("DELETE", "/devices/{device}", None, "it", "device.delete", "device:loa-1/loa"),
    "officer-create": ("POST", "/officers", {"code": "cb-minh", "full_name": "Trần Minh"}, "admin",
                       "officer.create", "officer:cb-minh"),
    "officer-delete": ("DELETE", "/officers/{cb}", None, "admin", "officer.delete", "officer:cb-lan"),
    "roster-add": ("POST", "/roster", SHIFT, "admin", "roster.add", "roster:quay-1"),
    "roster-remove": ("DELETE", "/roster/{shift}", None, "admin", "roster.remove", "roster:quay-1"),
    "token-issue": ("POST", "/nodes/loa-1/media-token", None, "it", "node_token.issue", "node:loa-1"),
    "token-revoke": ("DELETE", "/nodes/loa-1/media-token", None, "it", "node_token.revoke", "node:loa-1"),
    "media-delete": ("DELETE", f"/media/{SHA}", None, "admin", "media.delete", f"media:{SHA}"),
}


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1].split("}")[0]]
    return value


def change(world: World, name: str) -> Any:
    method, path, body, role, _action, _subject = CHANGES[name]
    response = world.client.request(method, "/api/v1" + path.format(**world.ids), json=_fill(body, world.ids),
                                    headers=world.headers(role))
    assert response.status_code < 300, response.text
    return response


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_each_administrative_change_through_the_api_leaves_one_entry_naming_who_made_it(world, name):
    _method, _path, _body, role, action, subject = CHANGES[name]
    change(world, name)
    entries = [(e.action, e.subject, e.actor_id, e.actor_role) for e in world.entries(actor=role)]
    assert entries == [(action, subject, world.ids[role], role)]


def test_unlocking_a_user_is_audited(world):
    change(world, "user-lock")
    world.client.patch(f"/api/v1/users/{world.ids['officer']}", json={"active": True},
                       headers=world.headers("admin"))
    assert [e.action for e in world.entries(actor="admin")] == ["user.lock", "user.unlock"]


def test_a_role_change_records_the_role_before_and_after(world):
    change(world, "user-role")
    assert world.entries(actor="admin")[0].details == {"role": {"from": "officer", "to": "leader"}}


def test_a_change_that_changes_nothing_leaves_no_entry(world):
    world.client.patch(f"/api/v1/users/{world.ids['officer']}", json={"role": "officer"},
                       headers=world.headers("admin"))
    assert world.entries(actor="admin") == []


def test_a_refused_change_leaves_no_entry(world):
    answer = world.client.patch(f"/api/v1/users/{world.ids['admin']}", json={"active": False},
                                headers=world.headers("admin"))
    assert answer.status_code == 403
    assert world.entries(actor="admin") == []


def test_a_password_reset_is_audited_without_the_password(world):
    password = change(world, "user-reset").json()["password"]
    assert password not in repr([(e.subject, e.details) for e in world.entries()])


def test_a_node_token_is_audited_without_the_token(world):
    token = change(world, "token-issue").json()["token"]
    stored = repr([(e.subject, e.details) for e in world.entries()])
    assert token not in stored and token[3:20] not in stored


def test_details_never_keep_a_key_that_names_a_secret(world):
    with world.ctx.db.session() as s:
        entry = audit.record(s, actor=ADMIN, action="user.create", subject="user:x",
                             details={"password": "p", "new_token": "t", "secret_key": "k", "role": "it",
                                      "nested": {"password_hash": "h", "ok": 1}})
        s.flush()
        assert entry.details == {"role": "it", "nested": {"ok": 1}}


def test_declarations_from_the_config_are_audited_as_the_hub_once(world):
    decl = RegistrySection(counters=[{"code": "quay-9", "name": "Quầy 9"}],
                           nodes=[{"id": "mot-cua", "devices": [{"code": "box-9", "kind": "rating_box",
                                                                 "counter": "quay-9"}]}])
    for _start in range(2):
        with world.ctx.db.session() as s:
            registry.apply_declarations(s, registry=decl)
    declared = [(e.action, e.subject, e.actor_username) for e in world.entries()
                if e.action.endswith(".declare")]
    assert declared == [("counter.declare", "counter:quay-9", "system"),
                        ("node.declare", "node:mot-cua", "system"),
                        ("device.declare", "device:mot-cua/box-9", "system")]


# -- reading, filtering, exporting ------------------------------------------------------------
def _record(world: World, at: datetime, action: str, subject: str, actor: ActingUser = ADMIN) -> None:
    with world.ctx.db.session() as s:
        audit.record(s, actor=actor, action=action, subject=subject, at=at)


T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_the_log_lists_the_newest_change_first(world):
    _record(world, T0 - timedelta(days=1), "site.create", "site:cu")
    _record(world, T0, "site.create", "site:moi")
    page = world.client.get("/api/v1/audit?area=site&actor=admin", headers=world.headers("admin")).json()
    assert [e["subject"] for e in page["entries"]] == ["site:moi", "site:cu"]


def test_the_log_filters_by_area_actor_subject_and_period(world):
    it = ActingUser(username="it", role="it", id=world.ids["it"])
    _record(world, T0 - timedelta(days=40), "node.update", "node:loa-ban-hon", actor=it)
    _record(world, T0, "node.update", "node:loa-ban-hon", actor=it)
    _record(world, T0, "node.delete", "node:loa-ban-co", actor=it)
    _record(world, T0, "user.lock", "user:loa-ban-hon-khong-phai")
    query = {"area": "node", "actor": "it", "subject": "BAN-HON",
             "start": (T0 - timedelta(days=1)).isoformat()}
    page = world.client.get("/api/v1/audit", params=query, headers=world.headers("admin")).json()
    assert (page["total"], [(e["action"], e["subject"], e["at"]) for e in page["entries"]]) == \
        (1, [("node.update", "node:loa-ban-hon", "2026-03-02T02:00:00Z")])


def test_an_area_filter_does_not_take_a_longer_area_with_the_same_start(world):
    _record(world, T0, "node.update", "node:a")
    _record(world, T0, "node_token.issue", "node:a")
    with world.ctx.db.session(write=False) as s:
        page = audit.list_entries(s, actor=ADMIN, flt=AuditFilter(area="node", actor="admin"))
    assert [e.action for e in page.entries] == ["node.update"]


def test_the_api_gives_the_action_in_vietnamese(world):
    change(world, "user-lock")
    page = world.client.get("/api/v1/audit?area=user.lock", headers=world.headers("admin")).json()
    entry = page["entries"][0]
    assert (entry["action"], entry["action_label"]) == ("user.lock", "Khóa tài khoản")


def test_only_admins_read_the_log_in_the_service(world):
    from thanthien.hub.services.errors import Forbidden

    with world.ctx.db.session(write=False) as s, pytest.raises(Forbidden):
        audit.list_entries(s, actor=ActingUser(username="it", role="it", id=3), flt=AuditFilter())


def test_the_csv_export_has_vietnamese_headings_local_times_and_a_byte_order_mark(world):
    change(world, "user-role")
    answer = world.client.get("/api/v1/audit/export?format=csv&area=user", headers=world.headers("admin"))
    assert answer.headers["content-disposition"] == 'attachment; filename="nhat-ky-quan-tri.csv"'
    assert answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0] == ["Thời điểm", "Người thực hiện", "Vai trò", "Thao tác", "Đối tượng", "Chi tiết"]
    assert rows[1][1:] == ["admin", "Quản trị hệ thống", "Đổi vai trò", "user:officer",
                           "role: officer → leader"]


def test_the_export_shows_times_in_the_hubs_time_zone(world):
    _record(world, T0, "site.create", "site:moi")
    answer = world.client.get("/api/v1/audit/export?format=csv&area=site.create&subject=moi",
                              headers=world.headers("admin"))
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[1][0] == "2026-03-02 09:00:00"  # 02:00 UTC in Hà Nội


def test_the_xlsx_export_opens_with_the_title_and_headings(world):
    change(world, "site-create")
    answer = world.client.get("/api/v1/audit/export?format=xlsx&actor=admin", headers=world.headers("admin"))
    sheet = load_workbook(io.BytesIO(answer.content)).active
    assert sheet["A1"].value.startswith("Nhật ký quản trị — ")
    assert [c.value for c in sheet[2]] == ["Thời điểm", "Người thực hiện", "Vai trò", "Thao tác", "Đối tượng",
                                           "Chi tiết"]
    assert "site:xa-moi" in [c.value for c in sheet[3]]


def test_a_period_of_local_days_selects_entries_by_local_date(world):
    _record(world, datetime(2026, 3, 1, 16, 59, tzinfo=UTC), "site.create", "site:truoc")  # 23:59 on the 1st
    _record(world, datetime(2026, 3, 1, 17, 0, tzinfo=UTC), "site.create", "site:trong")  # 00:00 on the 2nd
    day = periods.Period(T0.date(), T0.date(), "Asia/Ho_Chi_Minh")
    with world.ctx.db.session(write=False) as s:
        page = audit.list_entries(s, actor=ADMIN, flt=AuditFilter(start=day.start, end=day.end, area="site"))
    assert [e.subject for e in page.entries] == ["site:trong"]


def test_the_xlsx_export_replaces_characters_a_worksheet_refuses(world):
    _record(world, T0, "site.create", "site:chuong\x07bao")
    answer = world.client.get("/api/v1/audit/export", params={"format": "xlsx", "subject": "chuong"},
                              headers=world.headers("admin"))
    assert answer.status_code == 200
    assert load_workbook(io.BytesIO(answer.content)).active["E3"].value == "site:chuong\ufffdbao"


@pytest.mark.parametrize("module", ["ratings", "registry", "audit", "users", "logins", "media_items"])
def test_each_service_that_records_imports_on_its_own(module):
    """audit is imported by services that reports (which it exports with) imports in turn."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", f"import thanthien.hub.services.{module}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]


def _recorded_actions() -> set[str]:
    """Every literal action the hub's code writes to the admin audit log."""
    import re
    from pathlib import Path

    import thanthien.hub as hub_package
    actions: set[str] = set()
    for path in Path(hub_package.__file__).parent.rglob("*.py"):
        text = path.read_text()
        actions |= set(re.findall(r"audit\.record\([^)]*?action=\"([a-z_]+\.[a-z_]+)\"", text, re.S))
    return actions


def test_every_action_the_hub_records_has_a_vietnamese_label():
    actions = (_recorded_actions()
               | {f"{area}.{verb}" for area in registry._AREAS.values()
                  for verb in ("create", "update", "delete", "retire", "restore")}
               | {f"rollout.node_{state}" for state in ("kept", "rolled_back", "failed")})
    assert len(actions) > 20
    unlabelled = sorted(a for a in actions if audit.action_label(a) == a)
    assert unlabelled == []
