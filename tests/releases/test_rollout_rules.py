"""The roll-out rules (``services/releases.py``) on SQLite and PostgreSQL, with node reports fed
as the ingest feeds them: stages open on the success share, the threshold stops the roll-out and
withdraws the offers not taken, pause / resume / cancel, targets, and refusals that change nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hub.hub_helpers import hub_settings
from sqlalchemy import func, select

from thanthien.hub.context import HubContext
from thanthien.hub.db.models import AuditEntry, Release, Rollout, RolloutNode
from thanthien.hub.roles import SYSTEM, ActingUser
from thanthien.hub.services import registry, releases
from thanthien.hub.services.errors import Conflict, Forbidden, Invalid, NotFound
from thanthien.hub.services.releases import RolloutRequest, stage_sizes
from thanthien.protocol.payloads import ReleaseStatus

IT = ActingUser(username="kythuat", role="it")
NODES = [f"loa-{i:02d}" for i in range(1, 11)]


@pytest.fixture
def ctx(db, clock, tmp_path) -> HubContext:
    ctx = HubContext(settings=hub_settings(tmp_path), db=db, clock=clock)
    with db.session() as s:
        registry.create_zone(s, actor=SYSTEM, code="ban-hon", name="Bản Hón")
        registry.create_zone(s, actor=SYSTEM, code="ban-co", name="Bản Co")
        for i, node in enumerate(NODES):
            registry.register_node(s, actor=SYSTEM, node_id=node, name=node)
            registry.upsert_device(
                s,
                actor=SYSTEM,
                node_id=node,
                code="loa",
                kind="speaker",
                zone="ban-hon" if i < 6 else "ban-co",
            )
        s.add(
            Release(
                version="0.9.2",
                sha256="a" * 64,
                size=1000,
                python="cp311",
                platform="linux_x86_64",
                key_fingerprint="0" * 16,
                files=16,
                uploaded_at=datetime(2026, 12, 1, tzinfo=UTC),
                uploaded_by="kythuat",
            )
        )
    return ctx


def create(ctx, **fields):
    with ctx.db.session() as s:
        return releases.create_rollout(
            s, actor=IT, request=RolloutRequest(version="0.9.2", **fields), now=ctx.clock()
        ).id


def report(ctx, rid, node, state, reason=None):
    status = ReleaseStatus(
        node=node,
        session=1,
        at=ctx.clock(),
        running_version="0.9.1",
        version="0.9.2",
        rollout=rid,
        state=state,
        reason=reason,
    )
    with ctx.db.session() as s:
        releases.record_status(s, status=status, now=ctx.clock())


def members(ctx, rid):
    with ctx.db.session(write=False) as s:
        return {
            m.node_id: m.state for m in s.scalars(select(RolloutNode).where(RolloutNode.rollout_id == rid))
        }


def rollout(ctx, rid):
    with ctx.db.session(write=False) as s:
        r = s.get(Rollout, rid)
        return r.state, r.stage, r.reason


def test_stage_sizes_are_cumulative_with_a_node_each_at_least():
    assert stage_sizes(10, [5, 25, 100]) == [1, 3, 10]
    assert stage_sizes(2, [5, 25, 100]) == [1, 2, 2]
    assert stage_sizes(200, [5, 25, 100]) == [10, 50, 200]


@pytest.mark.postgres
def test_first_stage_is_offered_and_the_rest_waits(ctx):
    rid = create(ctx, target="fleet", stages=[10, 50, 100])
    states = members(ctx, rid)
    assert [n for n, s in states.items() if s == "offered"] == ["loa-01"]
    assert sum(1 for s in states.values() if s == "pending") == 9


@pytest.mark.postgres
def test_next_stage_opens_once_the_success_share_is_kept(ctx):
    rid = create(ctx, target="fleet", stages=[20, 100], success_share=1.0)
    report(ctx, rid, "loa-01", "kept")
    assert rollout(ctx, rid)[1] == 0  # loa-02 has not kept it yet
    report(ctx, rid, "loa-02", "running")
    assert rollout(ctx, rid)[1] == 0
    report(ctx, rid, "loa-02", "kept")
    assert rollout(ctx, rid)[1] == 1
    assert all(s in ("kept", "offered") for s in members(ctx, rid).values())


@pytest.mark.postgres
def test_failures_at_the_threshold_stop_the_rollout_and_withdraw_offers(ctx):
    rid = create(ctx, target="fleet", stages=[30, 100], success_share=0.5, failure_threshold=2)
    report(ctx, rid, "loa-01", "rolled_back", "health check failed: MQTT not connected")
    assert rollout(ctx, rid)[0] == "running"
    report(ctx, rid, "loa-02", "failed", "the bundle does not match")
    state, stage, reason = rollout(ctx, rid)
    assert (state, stage) == ("stopped", 0)
    assert "ngưỡng 2" in reason
    assert members(ctx, rid)["loa-03"] == "withdrawn"
    assert members(ctx, rid)["loa-10"] == "withdrawn"
    with ctx.db.session(write=False) as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.subject == f"rollout:{rid}")))
    assert actions.count("rollout.stop") == 1
    assert {"rollout.node_rolled_back", "rollout.node_failed"} <= set(actions)


@pytest.mark.postgres
def test_paused_rollout_opens_no_stage_until_resumed(ctx):
    rid = create(ctx, target="nodes", nodes=["loa-01", "loa-02"], stages=[50, 100], success_share=1.0)
    with ctx.db.session() as s:
        releases.pause(s, actor=IT, rollout_id=rid, now=ctx.clock())
    report(ctx, rid, "loa-01", "kept")
    assert rollout(ctx, rid)[:2] == ("paused", 0)
    with ctx.db.session() as s:
        releases.resume(s, actor=IT, rollout_id=rid, now=ctx.clock())
    assert rollout(ctx, rid)[:2] == ("running", 1)
    assert members(ctx, rid)["loa-02"] == "offered"


@pytest.mark.postgres
def test_cancel_withdraws_offers_of_nodes_that_have_not_switched(ctx):
    rid = create(ctx, target="zone", zone="ban-hon", stages=[50, 100], success_share=1.0)
    report(ctx, rid, "loa-01", "running")
    report(ctx, rid, "loa-02", "downloading")
    with ctx.db.session() as s:
        releases.cancel(s, actor=IT, rollout_id=rid, now=ctx.clock())
    states = members(ctx, rid)
    assert rollout(ctx, rid)[0] == "cancelled"
    assert states["loa-01"] == "running"  # switched already: its health window decides
    assert states["loa-02"] == "withdrawn"
    assert set(states) == {f"loa-0{i}" for i in range(1, 7)}  # the zone's speakers only


@pytest.mark.postgres
def test_all_kept_finishes_the_rollout(ctx):
    rid = create(ctx, target="nodes", nodes=["loa-01"], stages=[100])
    report(ctx, rid, "loa-01", "kept")
    assert rollout(ctx, rid)[0] == "done"


def test_a_node_in_a_running_rollout_is_not_put_in_another(ctx):
    create(ctx, target="nodes", nodes=["loa-01", "loa-02"], stages=[100])
    with pytest.raises(Conflict, match="loa-01"):
        create(ctx, target="fleet", stages=[100])
    with ctx.db.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Rollout)) == 1


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"target": "nodes", "nodes": ["khong-co"]}, NotFound),
        ({"target": "zone", "zone": "khong-co"}, NotFound),
        ({"target": "zone"}, Invalid),
        ({"target": "nodes", "nodes": []}, Invalid),
    ],
)
def test_bad_targets_are_refused_and_create_nothing(ctx, fields, error):
    with pytest.raises(error):
        create(ctx, stages=[100], **fields)
    with ctx.db.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Rollout)) == 0


@pytest.mark.parametrize("stages", [[50, 25, 100], [5, 25], [0, 100], [5, 5, 100]])
def test_stages_that_do_not_grow_to_100_are_refused(stages):
    with pytest.raises(ValueError, match="stages"):
        RolloutRequest(version="0.9.2", target="fleet", stages=stages)


def test_a_release_that_was_not_uploaded_cannot_be_rolled_out(ctx):
    with ctx.db.session() as s, pytest.raises(NotFound, match=r"0\.9\.9"):
        releases.create_rollout(
            s, actor=IT, request=RolloutRequest(version="0.9.9", target="fleet"), now=ctx.clock()
        )


def test_officers_may_not_roll_out(ctx):
    officer = ActingUser(username="canbo", role="officer")
    with ctx.db.session() as s, pytest.raises(Forbidden):
        releases.create_rollout(
            s, actor=officer, request=RolloutRequest(version="0.9.2", target="fleet"), now=ctx.clock()
        )


def test_a_report_for_another_version_changes_nothing(ctx):
    rid = create(ctx, target="nodes", nodes=["loa-01"], stages=[100])
    status = ReleaseStatus(
        node="loa-01",
        session=1,
        at=ctx.clock(),
        running_version="0.9.1",
        version="0.9.3",
        rollout=rid,
        state="kept",
    )
    with ctx.db.session() as s:
        assert releases.record_status(s, status=status, now=ctx.clock()) is False
    assert members(ctx, rid) == {"loa-01": "offered"}


def test_offers_are_published_retained_and_withdrawn_offers_cleared(ctx, broker):
    """On a real Mosquitto: the offer stays retained for a node that connects later; a cancel
    clears it."""
    from support import HUB, EventCollector, mqtt_settings
    from thanthien.mqtt import MqttLink

    hub_link = MqttLink(client_id="rules-hub", settings=mqtt_settings(broker.port, HUB), persistent=False)
    hub_link.start()
    assert hub_link.wait_connected(10)
    ctx.mqtt = hub_link
    try:
        rid = create(ctx, target="nodes", nodes=["loa-01", "loa-02"], stages=[50, 100])
        assert releases.sync(ctx) == ["loa-01"]
        assert releases.sync(ctx) == []  # sent once

        def retained() -> list[bytes]:
            seen = EventCollector[bytes]()
            late = MqttLink(
                client_id="rules-late", settings=mqtt_settings(broker.port, HUB), persistent=False
            )
            late.route(ctx.topics.release_offer("loa-01"), lambda m: seen(m.payload))
            late.start()
            try:
                seen.wait_count(1, 3)
                return seen.snapshot()
            finally:
                late.stop()

        assert b'"version":"0.9.2"' in retained()[0].replace(b" ", b"")
        with ctx.db.session() as s:
            releases.cancel(s, actor=IT, rollout_id=rid, now=ctx.clock())
        assert releases.sync(ctx) == ["loa-01"]
        assert retained() == []  # the cleared offer is no longer retained
    finally:
        hub_link.stop()
