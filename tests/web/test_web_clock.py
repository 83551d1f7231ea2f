"""The node page and the health table say when a node does not trust its clock and how many
scheduled broadcasts it holds (issue 14 item 5)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hub.hub_helpers import telemetry

from support import ui_login
from thanthien.hub.app import create_app
from thanthien.hub.context import HubContext
from thanthien.hub.services import health
from thanthien.hub.settings import HubSettings
from web.town import PASSWORDS, TZ, seed

NODE = "loa-ban-hon"


@pytest.fixture
def web(db, tmp_path: Path) -> Iterator[tuple[HubContext, TestClient]]:
    """A hub of its own over the town's data, an IT officer logged in."""
    settings = HubSettings(hub={"data_dir": str(tmp_path), "timezone": TZ, "site_name": "UBND xã Nà Hin"},
                           http={"secret_key": "web-clock-test-secret-0123456789"})
    ctx = HubContext(settings=settings, db=db)
    seed(ctx)
    with TestClient(create_app(settings, db, ctx=ctx), follow_redirects=False) as client:
        ui_login(client, "it", PASSWORDS["it"])
        yield ctx, client


def report(ctx: HubContext, **over) -> None:
    now = ctx.clock()
    with ctx.db.session() as s:
        health.record_telemetry(s, t=telemetry(node=NODE, at=now - timedelta(seconds=1), **over), now=now,
                                thresholds=ctx.thresholds, notify=False)


def test_node_page_shows_the_held_broadcasts_and_the_offset_from_the_hub(web):
    ctx, client = web
    report(ctx, clock_synced=False, clock_offset_ms=None, clock_trusted=False, hub_offset_ms=-10_800_000.0,
           held_broadcasts=3)
    page = client.get(f"/ui/nodes/{NODE}")
    assert page.status_code == 200
    text = page.text
    assert 'data-clock-trusted="False"' in text and 'data-held="3"' in text
    assert "đang giữ <b data-held=\"3\">3</b> bản tin chưa phát" in text
    assert "nhanh 3,0 giờ" in text
    assert "đang giữ 3 bản tin chưa phát" in text  # the open alarm, listed on the page


def test_health_table_marks_a_node_holding_broadcasts(web):
    ctx, client = web
    report(ctx, clock_synced=False, clock_trusted=False, hub_offset_ms=600_000.0, held_broadcasts=2)
    page = client.get("/ui/health")
    assert page.status_code == 200
    row = page.text[page.text.index(f'data-node="{NODE}"'):]
    row = row[:row.index("</tr>")]
    assert 'data-held="2"' in row and "chậm 10 phút so với trung tâm" in row


def test_node_page_says_scheduled_broadcasts_play_on_time_on_a_trusted_clock(web):
    ctx, client = web
    report(ctx, clock_synced=True, clock_trusted=True, hub_offset_ms=-4.0, held_broadcasts=0)
    text = client.get(f"/ui/nodes/{NODE}").text
    assert 'data-clock-trusted="True"' in text and "đúng giờ" in text and "data-held" not in text
