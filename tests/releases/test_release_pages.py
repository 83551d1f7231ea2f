"""The releases API and pages (in-process app): upload a signed bundle (an unsigned one refused
with the reason), roll out from the page, pause it, see each node's version and state; a node
downloads only what it was offered, with its media token."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from hub.api_and_web import Hub, open_hub
from hub.hub_helpers import hub_settings

from releases.release_helpers import GOOD
from thanthien import releases as bundles
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Node
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import media_items, registry

pytestmark = [pytest.mark.usefixtures("cheap_hashing"), pytest.mark.xdist_group("releases")]


@pytest.fixture
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite: the roll-out rules run on both back ends in test_rollout_rules.py."""
    return f"sqlite:///{tmp_path_factory.getbasetemp() / 'hub-sqlite.db'}"


@pytest.fixture
def hub(db, clock, tmp_path, kit) -> Iterator[Hub]:
    settings = hub_settings(
        tmp_path, releases={"public_key": str(kit.public_key_path), "dir": str(tmp_path / "bundles")}
    )
    ctx = HubContext(settings=settings, db=db, clock=clock)
    with db.session() as s:
        registry.create_zone(s, actor=SYSTEM, code="ban-hon", name="Bản Hón")
        for node_id in ("loa-1", "loa-2"):
            registry.register_node(s, actor=SYSTEM, node_id=node_id, name=f"Cụm loa {node_id}")
            registry.upsert_device(
                s, actor=SYSTEM, node_id=node_id, code="loa", kind="speaker", zone="ban-hon"
            )
            s.get(Node, node_id).agent_version = "0.9.1"
    with open_hub(ctx) as opened:
        yield opened


def _upload_api(hub: Hub, path, role: str = "it"):
    with path.open("rb") as f:
        return hub.api.post(
            "/api/v1/releases",
            headers=hub.headers(role),
            files={"file": ("bundle.tar", f, "application/x-tar")},
        )


def test_it_uploads_a_signed_bundle_through_the_api(hub, kit):
    answer = _upload_api(hub, kit.bundles[GOOD])
    assert answer.status_code == 201, answer.text
    assert answer.json()["version"] == GOOD
    assert answer.json()["sha256"] == bundles.bundle_digest(kit.bundles[GOOD])


def test_an_unsigned_bundle_is_refused_through_the_api_with_the_reason(hub, kit, tmp_path):
    unsigned = tmp_path / "unsigned.tar"
    bundles.write_bundle(unsigned, bundles.verify(kit.bundles[GOOD], kit.key.public_key()).raw, [])
    answer = _upload_api(hub, unsigned)
    assert answer.status_code == 422
    assert "not signed" in answer.json()["detail"]
    assert hub.api.get("/api/v1/releases", headers=hub.headers("it")).json() == []


def test_officers_may_not_upload_releases(hub, kit):
    assert _upload_api(hub, kit.bundles[GOOD], role="officer").status_code == 403


def _rollout_from_page(hub: Hub, bundle) -> str:
    hub.login("it")
    with bundle.open("rb") as f:
        done = hub.web.post(
            "/ui/releases", data=hub.form(), files={"file": ("b.tar", f, "application/x-tar")}
        )
    assert done.status_code == 303
    done = hub.web.post(
        "/ui/releases/rollouts",
        data=hub.form(
            version=GOOD,
            target="zone",
            zone="ban-hon",
            stages="50, 100",
            success_pct="100",
            failure_threshold="1",
        ),
    )
    assert done.status_code == 303, done.text
    return done.headers["location"]


def test_rollout_page_shows_each_nodes_stage_and_state(hub, kit):
    location = _rollout_from_page(hub, kit.bundles[GOOD])
    page = html.unescape(hub.web.get(location).text)
    rows = dict(re.findall(r'data-node="([^"]+)" data-state="([^"]+)"', page))
    assert rows == {"loa-1": "offered", "loa-2": "pending"}
    assert "đang triển khai" in page
    assert "Đợt 1/2" in page


def test_pausing_from_the_page_says_so_and_is_audited(hub, kit):
    location = _rollout_from_page(hub, kit.bundles[GOOD])
    done = hub.web.post(f"{location}/pause", data=hub.form())
    assert done.status_code == 303
    page = html.unescape(hub.web.get(location).text)
    assert "tạm dừng" in page
    from sqlalchemy import select

    from thanthien.hub.db.models import AuditEntry

    with hub.ctx.db.session(write=False) as s:
        assert s.scalar(select(AuditEntry.actor_username).where(AuditEntry.action == "rollout.pause")) == "it"


def test_releases_page_lists_each_nodes_version(hub):
    hub.login("it")
    page = html.unescape(hub.web.get("/ui/releases").text)
    assert re.search(r'data-node="loa-1">.*?0\.9\.1', page, re.S)


def test_an_officer_may_not_open_the_releases_page(hub):
    hub.login("officer")
    assert hub.web.get("/ui/releases").status_code == 403


def test_a_node_downloads_only_a_release_it_was_offered(hub, kit):
    _rollout_from_page(hub, kit.bundles[GOOD])
    ctx = hub.ctx
    with ctx.db.session() as s:
        offered = media_items.issue_node_token(s, actor=SYSTEM, node_id="loa-1", now=ctx.clock())
        waiting = media_items.issue_node_token(s, actor=SYSTEM, node_id="loa-2", now=ctx.clock())
    url = f"/api/v1/node-releases/{GOOD}"
    assert hub.api.get(url).status_code == 401
    assert hub.api.get(url, headers={"Authorization": f"Bearer {waiting}"}).status_code == 403
    got = hub.api.get(url, headers={"Authorization": f"Bearer {offered}"})
    assert got.status_code == 200
    assert got.content == kit.bundles[GOOD].read_bytes()
