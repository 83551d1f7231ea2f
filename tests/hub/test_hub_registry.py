"""The registry on SQLite and PostgreSQL: retiring instead of deleting (history and reports
stay, nothing new is offered a retired thing), edits, and a camera's addresses and account."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.hub_helpers import rating, rating_msg
from support import role_headers
from thanthien.hub.app import create_app
from thanthien.hub.db.models import AuditEntry, Counter, Device, Officer, Rating, Zone
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.roles import ROLES, SYSTEM, ActingUser
from thanthien.hub.services import registry, users
from thanthien.hub.services.errors import Conflict, Forbidden, Invalid

pytestmark = pytest.mark.usefixtures("cheap_hashing")
IT = ActingUser("kythuat", "it")


@pytest.fixture
def town(ctx):
    """Quầy 1 with its rating box on node mot-cua, Bản Hón with a speaker on loa-hon, an officer."""
    with ctx.db.session() as s:
        registry.create_counter(s, actor=SYSTEM, code="quay-1", name="Quầy Tư pháp")
        registry.create_zone(s, actor=SYSTEM, code="ban-hon", name="Bản Hón")
        for node in ("mot-cua", "loa-hon"):
            registry.register_node(s, actor=SYSTEM, node_id=node)
        registry.upsert_device(s, actor=SYSTEM, node_id="mot-cua", code="box-1", kind="rating_box",
                               counter="quay-1")
        registry.upsert_device(s, actor=SYSTEM, node_id="loa-hon", code="loa", kind="speaker", zone="ban-hon")
        registry.create_officer(s, actor=SYSTEM, code="cb-lan", full_name="Nguyễn Thị Lan")


def row_id(ctx, model, **where) -> int:
    with ctx.db.session(write=False) as s:
        return s.scalar(select(model.id).filter_by(**where))


def device_id(ctx, node: str, code: str) -> int:
    return row_id(ctx, Device, node_id=node, code=code)


def retire(ctx, model, ident, actor=SYSTEM):
    with ctx.db.session() as s:
        return registry.retire(s, actor=actor, model=model, ident=ident, now=ctx.clock())


def test_a_counter_is_not_retired_while_a_rating_box_in_service_serves_it(ctx, town):
    with pytest.raises(Conflict, match=r"Quầy Tư pháp còn 1 hộp đánh giá đang dùng \(mot-cua/box-1\)"):
        retire(ctx, Counter, row_id(ctx, Counter, code="quay-1"))


def test_a_zone_is_not_retired_while_a_speaker_in_service_serves_it(ctx, town):
    with pytest.raises(Conflict, match=r"Khu vực phát Bản Hón còn 1 cụm loa đang dùng \(loa-hon/loa\)"):
        retire(ctx, Zone, row_id(ctx, Zone, code="ban-hon"))


def test_once_its_box_is_retired_a_counter_is_retired_and_keeps_its_ratings(ctx, clock, town):
    IngestWorker(ctx).process([rating_msg(rating(node="mot-cua", box="box-1", pressed_at=clock()), clock())])
    retire(ctx, Device, device_id(ctx, "mot-cua", "box-1"))
    retire(ctx, Counter, row_id(ctx, Counter, code="quay-1"))
    with ctx.db.session(write=False) as s:
        assert [c.code for c in registry.list_counters(s, viewer=SYSTEM, active=True)] == []
        assert [c.code for c in registry.list_counters(s, viewer=SYSTEM, active=False)] == ["quay-1"]
        assert s.scalar(select(Rating.counter_code)) == "quay-1"


def test_a_counter_or_officer_that_ratings_name_is_not_deleted(ctx, clock, town):
    IngestWorker(ctx).process([rating_msg(rating(node="mot-cua", box="box-1", pressed_at=clock()), clock())])
    with ctx.db.session() as s, pytest.raises(Conflict, match="hãy ngừng sử dụng thay vì xóa"):
        registry.delete_row(s, actor=SYSTEM, model=Counter, ident=row_id(ctx, Counter, code="quay-1"))


def test_a_retired_rating_box_is_no_longer_declared_so_its_presses_are_refused(ctx, clock, town):
    retire(ctx, Device, device_id(ctx, "mot-cua", "box-1"))
    with ctx.db.session(write=False) as s:
        assert registry.declared_devices(s, node_ids=["mot-cua"], kind="rating_box") == {"mot-cua": {}}
    IngestWorker(ctx).process([rating_msg(rating(node="mot-cua", box="box-1", pressed_at=clock()), clock())])
    with ctx.db.session(write=False) as s:
        assert s.scalar(select(Rating.id)) is None


def test_a_retired_counter_is_refused_for_a_new_rating_box_but_kept_by_the_box_it_had(ctx, town):
    retire(ctx, Device, device_id(ctx, "mot-cua", "box-1"))
    retire(ctx, Counter, row_id(ctx, Counter, code="quay-1"))
    with ctx.db.session() as s:
        with pytest.raises(Invalid, match="Quầy Tư pháp đã ngừng sử dụng; hãy chọn chỗ khác"):
            registry.upsert_device(s, actor=SYSTEM, node_id="mot-cua", code="box-2", kind="rating_box",
                                   counter="quay-1")
        registry.upsert_device(s, actor=SYSTEM, node_id="mot-cua", code="box-1", kind="rating_box",
                               counter="quay-1", name="Hộp cũ")  # an edit of the old box


def test_a_device_of_a_retired_counter_is_brought_back_only_with_another_counter(ctx, town):
    box = device_id(ctx, "mot-cua", "box-1")
    retire(ctx, Device, box)
    retire(ctx, Counter, row_id(ctx, Counter, code="quay-1"))
    with ctx.db.session() as s, pytest.raises(Invalid, match="Quầy Tư pháp đã ngừng sử dụng"):
        registry.restore(s, actor=SYSTEM, model=Device, ident=box)


def test_retiring_twice_is_refused(ctx, town):
    officer = row_id(ctx, Officer, code="cb-lan")
    retire(ctx, Officer, officer)
    with pytest.raises(Conflict, match="Cán bộ Nguyễn Thị Lan đã ngừng sử dụng từ trước"):
        retire(ctx, Officer, officer)


def test_a_restored_officer_is_in_service_again_and_both_steps_are_audited(ctx, town):
    officer = row_id(ctx, Officer, code="cb-lan")
    retire(ctx, Officer, officer)
    with ctx.db.session() as s:
        registry.restore(s, actor=SYSTEM, model=Officer, ident=officer, now=ctx.clock())
        assert [o.code for o in registry.list_officers(s, viewer=SYSTEM, active=True)] == ["cb-lan"]
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.subject == "officer:cb-lan")
                                 .order_by(AuditEntry.id)))
    assert actions == ["officer.create", "officer.retire", "officer.restore"]


def test_it_staff_retire_devices_but_not_zones(ctx, town):
    retire(ctx, Device, device_id(ctx, "loa-hon", "loa"), actor=IT)
    with pytest.raises(Forbidden):
        retire(ctx, Zone, row_id(ctx, Zone, code="ban-hon"), actor=IT)


def test_renaming_a_zone_records_the_name_before_and_after(ctx, town):
    with ctx.db.session() as s:
        registry.update_zone(s, actor=SYSTEM, zone_id=row_id(ctx, Zone, code="ban-hon"), name="Bản Hón Mới",
                             kind="residential_group")
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "zone.update")).one()
    assert entry.details == {"name": {"from": "Bản Hón", "to": "Bản Hón Mới"},
                             "kind": {"from": "hamlet", "to": "residential_group"}}


# -- a camera's addresses and account ----------------------------------------------------------------
def camera(ctx, **access) -> Device:
    with ctx.db.session() as s:
        device = registry.upsert_device(s, actor=IT, node_id="mot-cua", code="cam-1", kind="camera",
                                        camera=registry.CameraAccess(**access))
        s.expunge(device)
        return device


def test_an_account_written_in_the_rtsp_address_moves_out_of_it(ctx, town):
    device = camera(ctx, rtsp_url="rtsp://quantri:Bi%40Mat@192.168.1.64:554/Streaming/Channels/102")
    assert device.rtsp_url == "rtsp://192.168.1.64:554/Streaming/Channels/102"
    assert (device.camera_username, device.camera_password) == ("quantri", "Bi@Mat")


def test_a_password_alone_replaces_the_password_and_keeps_the_username(ctx, town):
    camera(ctx, rtsp_url="rtsp://192.168.1.64/main", username="quantri", password="cu")
    device = camera(ctx, password="moi")
    assert (device.camera_username, device.camera_password, device.rtsp_url) == \
        ("quantri", "moi", "rtsp://192.168.1.64/main")


def test_a_camera_account_is_cleared_on_request(ctx, town):
    camera(ctx, username="quantri", password="cu")
    device = camera(ctx, clear_credentials=True)
    assert (device.camera_username, device.camera_password) == (None, None)


def test_an_address_of_the_wrong_scheme_is_refused_without_repeating_it(ctx, town):
    with pytest.raises(Invalid) as refused:
        camera(ctx, rtsp_url="http://quantri:Bi-Mat@192.168.1.64/main")
    assert "Địa chỉ RTSP không hợp lệ" in str(refused.value) and "Bi-Mat" not in str(refused.value)


def test_an_account_for_a_speaker_is_refused(ctx, town):
    with ctx.db.session() as s, pytest.raises(Invalid, match="Chỉ camera mới có"):
        registry.upsert_device(s, actor=IT, node_id="loa-hon", code="loa", kind="speaker", zone="ban-hon",
                               camera=registry.CameraAccess(username="x", password="y"))


def test_a_camera_password_is_in_no_api_answer_audit_entry_or_log_line(ctx, town, caplog):
    secret = "Rat-Bi-Mat-2026"
    with ctx.db.session() as s:
        for role in ROLES:
            users.create_user(s, actor=SYSTEM, username=role, password="mat-khau-123", role=role,
                              now=ctx.clock())
    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx)) as client, caplog.at_level(logging.DEBUG):
        headers = role_headers(client, "mat-khau-123")
        body = {"node_id": "mot-cua", "code": "cam-1", "kind": "camera",
                "rtsp_url": f"rtsp://quantri:{secret}@192.168.1.64/main", "camera_password": secret}
        answers = [client.put("/api/v1/devices", json=body, headers=headers("it")).text,
                   client.get("/api/v1/devices", headers=headers("officer")).text]
    with ctx.db.session(write=False) as s:
        audited = repr([e.details for e in s.scalars(select(AuditEntry))])
    for seen in (*answers, audited, caplog.text):
        assert secret not in seen
    assert '"has_credentials":true' in answers[0]
