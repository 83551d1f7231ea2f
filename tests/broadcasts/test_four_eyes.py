"""Four eyes (SQLite and PostgreSQL): whoever wrote a broadcast does not approve it, unless the
hub is set up for a commune with a single leader; the audit names author and approver."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from broadcasts.support import APPROVER, DRAFTER, media_row, speakers, spec
from thanthien.hub.db.models import Broadcast
from thanthien.hub.roles import LEADER, SYSTEM, ActingUser
from thanthien.hub.services import broadcasts
from thanthien.hub.services.errors import Forbidden
from thanthien.hub.services.schedule import BroadcastSettings
from thanthien.hub.settings import HubSettings

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CFG = BroadcastSettings()
CHAIRMAN = ActingUser("chu-tich", LEADER)


@pytest.fixture
def sha(ctx):
    with ctx.db.session() as s:
        speakers(s, {"ban-a": ["loa-1"]})
        return media_row(s, ctx.clock())


def create(ctx, sha, *, actor) -> int:
    with ctx.db.session() as s:
        return broadcasts.create_broadcast(s, spec=spec(sha), actor=actor, now=ctx.clock(), tz=TZ, cfg=CFG).id


def approve(ctx, bid, *, actor, cfg=CFG) -> None:
    with ctx.db.session() as s:
        broadcasts.approve_broadcast(s, broadcast_id=bid, actor=actor, now=ctx.clock(), tz=TZ, cfg=cfg)


def audit_of(ctx, bid):
    with ctx.db.session(write=False) as s:
        return [(a.action, a.username, a.details)
                for a in broadcasts.audit_log(s, viewer=SYSTEM, broadcast_id=bid)]


def status_of(ctx, bid) -> str:
    with ctx.db.session(write=False) as s:
        return s.get(Broadcast, bid).status


def test_the_author_cannot_approve_their_own_broadcast(ctx, sha):
    bid = create(ctx, sha, actor=CHAIRMAN)
    with pytest.raises(Forbidden, match=r"không tự phê duyệt được.*chu-tich"):
        approve(ctx, bid, actor=CHAIRMAN)
    assert status_of(ctx, bid) == "draft"
    assert [a[0] for a in audit_of(ctx, bid)] == ["created"]


def test_a_leader_who_edited_a_draft_cannot_approve_the_version_they_wrote(ctx, sha):
    bid = create(ctx, sha, actor=DRAFTER)
    with ctx.db.session() as s:
        broadcasts.update_broadcast(s, broadcast_id=bid, spec=spec(sha, local_time="08:00"), actor=APPROVER,
                                    now=ctx.clock(), tz=TZ, cfg=CFG)
    with pytest.raises(Forbidden, match="can-bo, lanh-dao"):
        approve(ctx, bid, actor=APPROVER)
    approve(ctx, bid, actor=CHAIRMAN)
    assert status_of(ctx, bid) == "approved"


def test_another_leader_approves_and_the_audit_names_author_and_approver(ctx, sha):
    bid = create(ctx, sha, actor=DRAFTER)
    approve(ctx, bid, actor=APPROVER)
    action, username, details = audit_of(ctx, bid)[-1]
    assert (action, username) == ("approved", "lanh-dao")
    assert {k: details[k] for k in ("author", "editors", "approver", "self_approved")} == {
        "author": "can-bo", "editors": [], "approver": "lanh-dao", "self_approved": False}


def test_a_commune_with_a_single_leader_may_let_the_author_approve_and_the_audit_says_so(ctx, sha):
    bid = create(ctx, sha, actor=CHAIRMAN)
    approve(ctx, bid, actor=CHAIRMAN, cfg=BroadcastSettings(allow_self_approval=True))
    assert status_of(ctx, bid) == "approved"
    details = audit_of(ctx, bid)[-1][2]
    assert (details["author"], details["approver"], details["self_approved"]) == (
        "chu-tich", "chu-tich", True)


def test_self_approval_is_off_unless_the_config_turns_it_on():
    assert BroadcastSettings().allow_self_approval is False
    assert HubSettings(broadcasts={"allow_self_approval": True}).broadcasts.allow_self_approval is True


def test_a_misspelt_four_eyes_setting_is_refused_not_ignored():
    with pytest.raises(ValidationError, match="allow_self_approve"):
        HubSettings(broadcasts={"allow_self_approve": True})


def test_the_page_learns_why_an_author_may_not_approve_from_the_same_rule(ctx, sha):
    bid = create(ctx, sha, actor=CHAIRMAN)
    with ctx.db.session(write=False) as s:
        b = s.get(Broadcast, bid)
        assert "không tự phê duyệt" in broadcasts.approval_refusal(s, b, actor=CHAIRMAN, cfg=CFG)
        assert broadcasts.approval_refusal(s, b, actor=APPROVER, cfg=CFG) is None
