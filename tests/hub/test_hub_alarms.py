"""The negative-rating spike rule, and alarm events POSTed to a real loopback webhook."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.hub_helpers import Hook, hub_settings, rating, rating_msg
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import AlarmNotification
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.jobs import contexts, maintenance
from thanthien.hub.roles import LEADER, SYSTEM, ActingUser
from thanthien.hub.services import alarms, registry
from thanthien.hub.settings import RegistrySection

BOXES = RegistrySection(  # node-a's boxes, one per counter the presses name (the hub checks the claim)
    counters=[{"code": "quay-1", "name": "Quầy 1"}, {"code": "quay-2", "name": "Quầy 2"}],
    nodes=[{"id": "node-a", "devices": [{"code": "box-1", "kind": "rating_box", "counter": "quay-1"},
                                        {"code": "box-2", "kind": "rating_box", "counter": "quay-2"}]}])


@pytest.fixture(autouse=True)
def _registered(db):
    with db.session() as s:
        registry.apply_declarations(s, registry=BOXES)
        registry.register_node(s, actor=SYSTEM, node_id="node-a")


def press(ctx, *scores: int, counter: str = "quay-1") -> None:
    events = [rating(seq=i + 1, score=s, counter=counter, box=f"box-{counter[-1]}", pressed_at=ctx.clock())
              for i, s in enumerate(scores)]
    IngestWorker(ctx).process([rating_msg(e, ctx.clock()) for e in events])


def spike(ctx, counter: str = "quay-1"):
    with ctx.db.session() as s:
        return alarms.active_alarm(s, kind="negative_spike", subject=counter)


def test_half_negative_with_four_presses_raises_a_spike_for_leaders(ctx):
    press(ctx, 4, 3, 1, 2)
    found = spike(ctx)
    assert found is not None and found.audience == "leader"
    assert "2/4" in found.message


def test_three_negative_presses_are_not_enough(ctx):
    press(ctx, 1, 1, 2)
    assert spike(ctx) is None


def test_mostly_positive_presses_raise_nothing(ctx):
    press(ctx, 4, 4, 4, 1, 2)
    assert spike(ctx) is None


def test_spike_rule_is_per_counter(ctx):
    press(ctx, 1, 1, counter="quay-1")
    press(ctx, 1, 1, counter="quay-2")
    assert spike(ctx, "quay-1") is None and spike(ctx, "quay-2") is None


def test_spike_clears_when_the_window_has_passed(ctx):
    press(ctx, 1, 1, 2, 2)
    assert spike(ctx) is not None
    ctx.clock.advance(16 * 60)
    contexts.register("t-spike", ctx)
    try:
        maintenance.check_alarms("t-spike")
    finally:
        contexts.unregister("t-spike")
    assert spike(ctx) is None


@pytest.fixture
def hook():
    h = Hook(fail=2)
    yield h
    h.close()


@pytest.fixture
def hooked(db, clock, tmp_path, hook):
    settings = hub_settings(tmp_path, alarms={"webhook_url": hook.url, "webhook_backoff_s": 1,
                                              "webhook_attempts": 5})
    ctx = HubContext(settings=settings, db=db, clock=clock)
    contexts.register("t-hook", ctx)
    yield ctx
    contexts.unregister("t-hook")


def test_webhook_gets_the_alarm_as_json_after_retries(hooked, hook):
    press(hooked, 1, 1, 1, 1)
    assert maintenance.deliver_webhooks("t-hook") == (0, 1)
    assert maintenance.deliver_webhooks("t-hook") == (0, 0)  # not due before the backoff
    hooked.clock.advance(1)
    assert maintenance.deliver_webhooks("t-hook") == (0, 1)
    hooked.clock.advance(2)
    assert maintenance.deliver_webhooks("t-hook") == (1, 0)
    [body] = hook.bodies
    assert body["event"] == "raised" and body["alarm"]["kind"] == "negative_spike"
    assert body["alarm"]["subject"] == "quay-1" and body["site"] == "UBND"


def test_webhook_gives_up_after_the_configured_attempts(hooked, hook):
    hook.fail = 100
    press(hooked, 1, 1, 1, 1)
    for _ in range(5):
        maintenance.deliver_webhooks("t-hook")
        hooked.clock.advance(3600)
    with hooked.db.session() as s:
        note = s.query(AlarmNotification).one()
    assert note.failed and note.attempts == 5 and "500" in note.last_error
    assert hook.calls == 5


def test_acknowledge_and_clear_are_sent_too(hooked, hook):
    hook.fail = 0
    press(hooked, 1, 1, 1, 1)
    with hooked.db.session() as s:
        alarms.acknowledge_alarm(s, alarm_id=spike(hooked).id, actor=ActingUser("lanhdao", LEADER),
                                 now=hooked.clock(), notify=True)
    hooked.clock.advance(timedelta(minutes=20).total_seconds())
    maintenance.check_alarms("t-hook")
    maintenance.deliver_webhooks("t-hook")
    assert [b["event"] for b in hook.bodies] == ["raised", "acknowledged", "cleared"]
