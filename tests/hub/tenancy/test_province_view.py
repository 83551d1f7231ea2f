"""The province's page of its communes side by side (issue 20): a province leader reads it and
its XLSX (one row per commune); a commune's users are refused."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from hub.tenancy import walk
from hub.tenancy.people_world import actor, seed_both
from hub.tenancy.seed_registry import PASSWORD
from support import ui_login
from thanthien.hub.app import create_app
from thanthien.hub.services import province
from thanthien.hub.services.errors import Forbidden

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def client(ctx):
    seed_both(ctx)
    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx), follow_redirects=False) as c:
        yield c


def test_a_province_leader_sees_every_commune_side_by_side(client):
    ui_login(client, "tinh-leader", PASSWORD)
    page = client.get("/ui/province")
    assert page.status_code == 200
    assert walk.MARKER_A in page.text and walk.MARKER_B in page.text
    assert page.text.count('data-commune="xb"') >= 2  # satisfaction, devices (broadcasts: when any)


def test_the_province_page_counts_each_commune_s_presses(client):
    ui_login(client, "tinh-admin", PASSWORD)
    page = client.get("/ui/province").text
    row = page.split('data-commune="xb"')[1].split("</tr>")[0]
    assert 'data-label="Lượt đánh giá">3<' in row


@pytest.mark.parametrize("role", ["leader", "admin"])
def test_a_commune_user_is_refused_the_province_page(client, role):
    ui_login(client, f"xa-{role}", PASSWORD)
    for path in ("/ui/province", "/ui/province/export"):
        answer = client.get(path)
        assert answer.status_code in (403, 404), path
        assert walk.MARKER_B not in answer.text


def test_the_province_export_has_one_row_per_commune(client):
    ui_login(client, "tinh-leader", PASSWORD)
    answer = client.get("/ui/province/export")
    assert answer.status_code == 200 and "spreadsheet" in answer.headers["content-type"]
    sheet = load_workbook(io.BytesIO(answer.content))["Tổng hợp theo xã"]
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    assert sorted(r[0] for r in rows) == ["home", "xb"]
    assert sheet.cell(row=2, column=4).value == "Chỉ số hài lòng (0–100)"


def test_the_province_service_refuses_a_commune_leader(ctx):
    seed_both(ctx)
    now = ctx.clock()
    span = province.Span("kỳ", now.replace(year=now.year - 1), now)
    with ctx.db.session(write=False) as s, pytest.raises(Forbidden):
        province.overview(s, viewer=actor(ctx, "xa-leader"), period=span, rounds=[], now=now,
                          tz="Asia/Ho_Chi_Minh")


def test_the_province_view_counts_each_commune_s_broadcasts_misses_and_fault_times(ctx):
    from datetime import timedelta

    from thanthien.hub.db.models import Alarm, Broadcast, Delivery, MediaItem, Occurrence

    a, b = seed_both(ctx)
    now = ctx.clock()
    with ctx.db.session() as s:
        s.add(MediaItem(sha256="a" * 64, title="Bản tin", duration_s=60, size_bytes=1, source_format="wav",
                        source_sha256="a" * 64, created_at=now))
        s.flush()
        s.add(Broadcast(id=9001, title="Tin tỉnh", media_sha256="a" * 64, target_kind="all",
                        schedule_kind="once", created_by="tinh", created_at=now, updated_at=now))
        s.flush()
        for i, status in enumerate(("finished", "missed")):
            s.add(Occurrence(id=f"o{i}", broadcast_id=9001, start_at=now - timedelta(days=1 + 7 * i),
                             duration_s=60, media_sha256="a" * 64, priority="normal", volume=80,
                             title="Tin tỉnh"))
            s.flush()
            s.add(Delivery(occurrence_id=f"o{i}", node_id=b["node_id"], status=status))
        s.add(Alarm(kind="node_offline", subject="node:xb-loa", severity="major", audience="it",
                    message="Mất", raised_at=now - timedelta(hours=5), notified_at=now,
                    cleared_at=now - timedelta(hours=2),
                    commune_id=b["commune_id"]))
    span = province.Span("kỳ", now - timedelta(days=30), now + timedelta(days=1))
    with ctx.db.session(write=False) as s:
        view = province.overview(s, viewer=actor(ctx, "tinh-leader"), period=span, rounds=[], now=now,
                                 tz="Asia/Ho_Chi_Minh")
    rows = {row.code: row for row in view.communes}
    assert (rows["xb"].broadcasts, rows["xb"].deliveries_missed, rows["xb"].faults_closed) == (2, 1, 1)
    assert rows["xb"].fault_median_hours == 3.0 and sum(rows["xb"].per_week.values()) == 2
    assert (rows["home"].broadcasts, rows["home"].faults_closed) == (0, 0) and a["commune"] == "home"
