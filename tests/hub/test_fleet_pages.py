"""The enrollment and fleet pages (in-process): adding a node shows its one-time code with its
command and QR code once; the node page shows the config versions, the identity, the state
history from its table, the last picture of a black camera; the same rules through the API and
the web (who may, a command to an offline node)."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.api_and_web import Hub, open_hub
from hub.hub_helpers import incoming
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import EnrollmentCode, Node, NodeConfigRow
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import health, registry
from thanthien.protocol import Topics
from thanthien.protocol.docs import _JPEG
from thanthien.protocol.payloads import CameraThumbnail, ConfigStatus, NodeState

pytestmark = pytest.mark.usefixtures("cheap_hashing")
T = Topics()


@pytest.fixture
def hub(ctx: HubContext) -> Iterator[Hub]:
    with ctx.db.session() as s:
        registry.create_zone(s, actor=SYSTEM, code="ban-moi", name="Bản Mới")
        registry.create_counter(s, actor=SYSTEM, code="quay-9", name="Quầy 9")
    with open_hub(ctx) as opened:
        yield opened


def _add(hub: Hub, node_id: str = "loa-ban-moi", **fields: str):
    return hub.web.post("/ui/enroll", data=hub.form(node_id=node_id, name="Cụm loa Bản Mới", kind="speaker",
                                                    zone="ban-moi", **fields))


def _notice(page: str) -> str:
    marker = 'role="status"'
    return html.unescape(page.split(marker, 1)[1].split("</p>", 1)[0]) if marker in page else ""


def test_it_adds_a_speaker_node_and_sees_its_code_command_and_qr_code_once(hub):
    hub.login("it")
    response = _add(hub)
    assert response.status_code == 200
    page = response.text
    code = page.split('id="enrollment-code"', 1)[1].split(">", 1)[1].split("<", 1)[0]
    assert len(code) == 19 and f"edge enroll --hub http://testserver --code {code}" in page
    assert "<svg" in page and "Mã QR đăng ký thiết bị" in page
    with hub.ctx.db.session(write=False) as s:
        node = s.get(Node, "loa-ban-moi")
        assert node is not None and node.registered
        assert [d.kind for d in registry.list_devices(s, viewer=SYSTEM, node_id="loa-ban-moi")] == ["speaker"]
        assert s.get(NodeConfigRow, "loa-ban-moi") is not None
        assert code not in s.scalars(select(EnrollmentCode.code_sha256)).all()
    node_page = hub.web.get("/ui/nodes/loa-ban-moi").text
    assert code not in node_page and "Có một mã đăng ký đang chờ" in node_page


def test_a_node_id_that_cannot_be_a_topic_level_is_refused_with_the_form_kept(hub):
    hub.login("it")
    response = _add(hub, node_id="Loa Bản Mới")
    assert response.status_code == 422
    assert "Mã thiết bị chỉ gồm" in _notice(response.text) and 'value="Loa Bản Mới"' in response.text


def test_adding_a_node_that_exists_is_refused(hub):
    hub.login("it")
    _add(hub)
    assert _add(hub).status_code == 409


def test_officer_may_not_open_the_add_node_page(hub):
    hub.login("officer")
    assert hub.web.get("/ui/enroll").status_code == 403


def test_node_page_shows_the_config_the_hub_sends_and_the_version_the_node_runs(hub):
    hub.login("it")
    _add(hub)
    with hub.ctx.db.session() as s:
        row = s.get(NodeConfigRow, "loa-ban-moi")
        row.version = 3
    IngestWorker(hub.ctx).process([incoming(T.config_status("loa-ban-moi"), ConfigStatus(
        node="loa-ban-moi", session=1, at=hub.ctx.clock(), version=2, refused_version=3,
        error="rating_boxes: GPIO 5 is used 2 times").to_bytes(), hub.ctx.clock())])
    page = hub.web.get("/ui/nodes/loa-ban-moi").text
    section = page.split('id="config"', 1)[1].split("</section>", 1)[0]
    assert 'data-version="3"' in page and 'data-reported="2"' in page
    assert "phiên bản 3: rating_boxes: GPIO 5 is used 2 times" in section


def test_node_page_history_comes_from_the_state_changes(hub):
    hub.login("it")
    _add(hub)
    now = hub.ctx.clock()
    for i, value in enumerate(("online", "lost", "online")):  # one batch each, as the ingest does
        at = now - timedelta(minutes=3 - i)
        with hub.ctx.db.session() as s:
            health.apply_node_state(s, state=NodeState(node="loa-ban-moi", state=value, session=i + 1, at=at,
                                                       agent_version="0.1.0"), now=at, notify=False)
    page = hub.web.get("/ui/nodes/loa-ban-moi?range=24h").text
    history = page.split('class="stack history"', 1)[1].split("</table>", 1)[0]
    assert history.count("<tr class=") == 3 and "mất kết nối đột ngột" in history


def test_node_page_shows_the_last_picture_of_a_black_camera(hub):
    hub.login("it")
    with hub.ctx.db.session() as s:
        registry.register_node(s, actor=SYSTEM, node_id="mot-cua", name="Một cửa")
        registry.upsert_device(s, actor=SYSTEM, node_id="mot-cua", code="cam-1", kind="camera")
    thumb = CameraThumbnail(node="mot-cua", camera="cam-1", state="black", at=hub.ctx.clock(), jpeg_b64=_JPEG)
    IngestWorker(hub.ctx).process([incoming(T.camera_thumbnail("mot-cua", "cam-1"), thumb.to_bytes(),
                                            hub.ctx.clock())])
    page = hub.web.get("/ui/nodes/mot-cua").text
    assert 'data-camera="cam-1" data-state="black"' in page
    picture = hub.web.get("/ui/nodes/mot-cua/cameras/cam-1/thumbnail.jpg")
    assert picture.headers["content-type"] == "image/jpeg" and picture.content == base64.b64decode(_JPEG)
    assert hub.api.get("/api/v1/nodes/mot-cua/cameras/cam-1/thumbnail",
                       headers=hub.headers("it")).content == picture.content


# -- one rule, one answer ------------------------------------------------------------------
def test_an_officer_gets_no_enrollment_code_through_the_api_or_the_web(hub):
    hub.login("it")
    _add(hub)
    api = hub.api.post("/api/v1/nodes/loa-ban-moi/enrollment", headers=hub.headers("officer"))
    hub.login("officer")
    web = hub.web.post("/ui/nodes/loa-ban-moi/enrollment", data=hub.form())
    assert (api.status_code, web.status_code) == (403, 403)


def test_a_leader_cannot_retire_a_node_through_the_api_or_the_web(hub):
    hub.login("it")
    _add(hub)
    api = hub.api.post("/api/v1/nodes/loa-ban-moi/retire", headers=hub.headers("leader"))
    hub.login("leader")
    web = hub.web.post("/ui/nodes/loa-ban-moi/retire", data=hub.form())
    assert (api.status_code, web.status_code) == (403, 403)
    with hub.ctx.db.session(write=False) as s:
        assert s.get(Node, "loa-ban-moi").retired_at is None


def test_a_command_to_an_offline_node_is_refused_alike_through_the_api_and_the_web(hub):
    hub.ctx.mqtt = _NoBroker()  # nothing is sent to an offline node anyway
    hub.login("it")
    _add(hub)
    with hub.ctx.db.session() as s:
        health.apply_node_state(s, state=NodeState(node="loa-ban-moi", state="offline", session=1,
                                                   at=hub.ctx.clock(), agent_version="0.1.0"),
                                now=hub.ctx.clock(), notify=False)
    api = hub.api.post("/api/v1/nodes/loa-ban-moi/commands", headers=hub.headers("it"), json={"name": "ping"})
    web = hub.web.post("/ui/nodes/loa-ban-moi/commands", data=hub.form(name="ping"))
    assert api.status_code == 409 and web.status_code == 303
    page = hub.web.get(web.headers["location"]).text
    assert api.json()["detail"] in _notice(page)


class _NoBroker:
    """A link no command may reach: the offline rule must answer before anything is sent."""

    def publish(self, *_args: object, **_kwargs: object) -> None:
        raise AssertionError("a command was sent to an offline node")

    def route(self, *_args: object, **_kwargs: object) -> None:
        raise AssertionError("a command was about to be sent to an offline node")
