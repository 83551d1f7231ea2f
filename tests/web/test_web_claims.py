"""The security alarm of a node that spoke for another's device (issue 14 item 4) is on the IT
staff's health page and on the node's page, with its label, like every device alarm."""

from __future__ import annotations

import pytest
from hub.hub_helpers import rating, rating_msg
from sqlalchemy import delete

from thanthien.hub.db.models import DeadLetter
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.services import alarms
from thanthien.hub.web.templating import ALARM_KINDS
from web.conftest import login_client

LABEL = ALARM_KINDS["claim_refused"]


@pytest.fixture
def forged(hub_server):
    """The town's hamlet loudspeaker (node-b) sent a rating for the quay-1 box of node-a."""
    ctx = hub_server.ctx
    IngestWorker(ctx).process([rating_msg(rating(node="node-b", box="box-quay-1", counter="quay-1", score=1),
                                          ctx.clock())])
    with ctx.db.session(write=False) as s:
        alarm = alarms.active_alarm(s, kind="claim_refused", subject="node-b")
        assert alarm is not None
        message = alarm.message
    yield message
    with ctx.db.session() as s:  # the town is shared by the session's web tests
        alarms.clear_alarm(s, kind="claim_refused", subject="node-b", now=ctx.clock(), notify=False)
        s.execute(delete(DeadLetter).where(DeadLetter.node_id == "node-b"))


@pytest.mark.parametrize("page", ["/ui/health", "/ui/nodes/node-b"])
def test_the_security_alarm_is_shown_to_it_staff_with_its_label(client, forged, page):
    html = login_client(client, "it").get(page).text
    assert LABEL in html and forged in html
