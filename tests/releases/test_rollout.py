"""Staged roll-outs on a real Mosquitto to simulated nodes that run real releases (the project's
own wheel in two versions, and a third whose agent never connects): every node reached, stage by
stage; a node offline during the roll-out updates when it returns; a release failing its health
window rolls back by itself and stops the roll-out at the threshold."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from releases.release_helpers import BAD, BASE, GOOD
from support import wait_until
from thanthien.hub.db.models import AuditEntry, Node, Rollout, RolloutNode
from thanthien.hub.roles import ActingUser
from thanthien.hub.services import releases
from thanthien.hub.services.releases import RolloutRequest

pytestmark = [pytest.mark.timeout(240), pytest.mark.xdist_group("releases"), pytest.mark.slow]
IT = ActingUser(username="kythuat", role="it")


def upload(hub, kit, version):
    with hub.ctx.db.session() as s, kit.bundles[version].open("rb") as f:
        releases.upload(
            s,
            actor=IT,
            data=f,
            store=hub.ctx.settings.releases_dir,
            key_path=hub.ctx.settings.releases.public_key,
            now=hub.ctx.clock(),
        )


def roll_out(hub, version, **request):
    with hub.ctx.db.session() as s:
        return releases.create_rollout(
            s, actor=IT, request=RolloutRequest(version=version, **request), now=hub.ctx.clock()
        ).id


def states(hub, rollout_id):
    with hub.ctx.db.session(write=False) as s:
        return {
            m.node_id: m.state
            for m in s.scalars(select(RolloutNode).where(RolloutNode.rollout_id == rollout_id))
        }


def rollout_state(hub, rollout_id):
    with hub.ctx.db.session(write=False) as s:
        return s.get(Rollout, rollout_id).state


def wait_online(hub, names, version):
    def ok():
        with hub.ctx.db.session(write=False) as s:
            return all(
                (n := s.get(Node, name)) is not None and n.state == "online" and n.agent_version == version
                for name in names
            )

    return wait_until(ok, timeout=60, every=0.2)


def test_staged_rollout_reaches_every_node_and_an_offline_one_when_it_returns(fleet, kit):
    names = ["nut-1", "nut-2", "nut-3"]
    hub, nodes = fleet(names)
    for name in names[:2]:
        nodes[name].start()
    assert wait_online(hub, names[:2], BASE), "the nodes did not come up on the base release"
    upload(hub, kit, GOOD)
    rid = roll_out(hub, GOOD, target="fleet", stages=[50, 100], success_share=1.0, failure_threshold=1)
    assert states(hub, rid) == {"nut-1": "offered", "nut-2": "offered", "nut-3": "pending"}

    assert wait_until(lambda: states(hub, rid)["nut-3"] == "offered", timeout=120, every=0.2), (
        f"{states(hub, rid)}\n{nodes['nut-2'].log()}"
    )
    assert states(hub, rid) == {"nut-1": "kept", "nut-2": "kept", "nut-3": "offered"}  # offline: retained
    assert rollout_state(hub, rid) == "running"
    nodes["nut-3"].start()  # back: it takes its update
    assert wait_until(lambda: rollout_state(hub, rid) == "done", timeout=90, every=0.2), (
        f"{states(hub, rid)}\n{nodes['nut-3'].log()}"
    )

    assert wait_online(hub, names, GOOD)
    assert {n.layout.current for n in nodes.values()} == {GOOD}
    assert nodes["nut-1"].layout.versions() == [BASE, GOOD]  # two releases kept
    assert nodes["nut-3"].starts[:2] == [BASE, GOOD]
    with hub.ctx.db.session(write=False) as s:
        audit = [
            (e.action, e.details.get("stage"))
            for e in s.scalars(
                select(AuditEntry).where(AuditEntry.subject == f"rollout:{rid}").order_by(AuditEntry.id)
            )
        ]
        offered = {m.node_id: m.offered_at for m in s.scalars(select(RolloutNode))}
    assert audit[0] == ("rollout.create", None)
    assert [a for a in audit if a[0] == "rollout.stage"] == [("rollout.stage", 2)]
    assert audit[-1] == ("rollout.done", None)
    assert sum(1 for a, _ in audit if a == "rollout.node_kept") == 3
    assert offered["nut-1"] == offered["nut-2"] < offered["nut-3"]


def test_release_failing_its_health_check_rolls_back_and_stops_the_rollout(fleet, kit):
    names = ["loi-1", "loi-2"]
    hub, nodes = fleet(names)
    for node in nodes.values():
        node.start()
    assert wait_online(hub, names, BASE)
    upload(hub, kit, BAD)
    rid = roll_out(
        hub, BAD, target="nodes", nodes=names, stages=[33, 100], success_share=1.0, failure_threshold=1
    )
    assert wait_until(lambda: rollout_state(hub, rid) == "stopped", timeout=120, every=0.2), (
        f"{states(hub, rid)}\n{nodes['loi-1'].log()}"
    )

    assert states(hub, rid) == {"loi-1": "rolled_back", "loi-2": "withdrawn"}
    with hub.ctx.db.session(write=False) as s:
        member = s.get(RolloutNode, (rid, "loi-1"))
        assert "MQTT not connected" in member.reason
        assert "ngưỡng 1" in s.get(Rollout, rid).reason
    assert wait_online(hub, names, BASE), "the node did not come back on the release before"
    assert nodes["loi-1"].starts[:3] == [BASE, BAD, BASE]
    assert all(n.layout.current == BASE for n in nodes.values())
    assert nodes["loi-2"].layout.versions() == [BASE]  # its offer was withdrawn before it was taken


def test_node_refuses_a_tampered_bundle_from_the_hub_and_keeps_running(fleet, kit, tmp_path):
    """The file on the hub's disk changed after the upload (the digest the hub offers follows it):
    the node's own check of the signature and every digest refuses it."""
    hub, nodes = fleet(["nut-x"])
    nodes["nut-x"].start()
    assert wait_online(hub, ["nut-x"], BASE)
    upload(hub, kit, GOOD)
    from thanthien import releases as bundles
    from thanthien.hub.db.models import Release

    with hub.ctx.db.session() as s:
        release = s.get(Release, GOOD)
        path = releases.bundle_path(hub.ctx.settings.releases_dir, release.sha256)
        data = bytearray(path.read_bytes())
        data[-20000] ^= 1  # inside the last wheel
        tampered = releases.bundle_path(hub.ctx.settings.releases_dir, "f" * 64)
        tampered.write_bytes(bytes(data))
        release.sha256 = bundles.bundle_digest(tampered)
        tampered.rename(releases.bundle_path(hub.ctx.settings.releases_dir, release.sha256))
    rid = roll_out(hub, GOOD, target="nodes", nodes=["nut-x"], stages=[100], failure_threshold=1)
    assert wait_until(lambda: states(hub, rid)["nut-x"] == "failed", timeout=60, every=0.2), nodes[
        "nut-x"
    ].log()
    with hub.ctx.db.session(write=False) as s:
        assert "does not match its digest" in s.get(RolloutNode, (rid, "nut-x")).reason
    assert nodes["nut-x"].layout.versions() == [BASE]
    assert nodes["nut-x"].starts == [BASE]


def _wav(path, seconds: float) -> str:
    import hashlib
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plan(sha: str, start, revision: int):
    from datetime import UTC, datetime, timedelta

    from thanthien.protocol.payloads import Plan, PlanItem

    item = PlanItem(
        occurrence_id="occ-thu",
        broadcast_id=1,
        title="Bản tin thử",
        start_at=start,
        media_sha256=sha,
        media_url=f"/media/{sha}",
        duration_s=3.0,
        priority="normal",
        volume=80,
    )
    return Plan(
        node="loa-1",
        revision=revision,
        generated_at=datetime.now(UTC),
        valid_until=start + timedelta(days=1),
        items=[item],
    )


def test_speaker_due_to_play_switches_only_after_the_broadcast(fleet, kit, tmp_path):
    """The bulletin is due within the margin when the release is installed (whenever that is), so
    the switch waits; then it is moved to start in 3 s: the switch comes after it has played."""
    import time
    from datetime import UTC, datetime, timedelta

    from support import EventCollector
    from thanthien.protocol.payloads import ReleaseStatus, decode

    hub, nodes = fleet(["loa-1"], speakers=("loa-1",), margin_s=900.0)
    node = nodes["loa-1"]
    clip = tmp_path / "clip.wav"
    sha = _wav(clip, 3.0)
    cached = node.root / "data" / "media" / sha[:2] / f"{sha}.wav"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(clip.read_bytes())
    node.start()
    assert wait_online(hub, ["loa-1"], BASE)
    seen = EventCollector[ReleaseStatus]()
    hub.ctx.mqtt.route(
        hub.ctx.topics.release_status("loa-1"), lambda m: seen(decode(ReleaseStatus, m.payload))
    )
    plan_topic = hub.ctx.topics.plan("loa-1")
    hub.ctx.mqtt.publish(
        plan_topic, _plan(sha, datetime.now(UTC) + timedelta(seconds=600), 1).to_bytes(), qos=1, retain=True
    )
    upload(hub, kit, GOOD)
    roll_out(hub, GOOD, target="zone", zone="ban-hon", stages=[100])

    def waiting() -> list[ReleaseStatus]:
        return [s for s in seen.snapshot() if s.state == "installed" and s.waiting_until is not None]

    assert wait_until(lambda: bool(waiting()), timeout=120, every=0.2), node.log()
    assert "Bản tin thử" in waiting()[0].reason
    assert node.starts == [BASE]  # installed, not switched
    start = datetime.now(UTC) + timedelta(seconds=3)
    hub.ctx.mqtt.publish(plan_topic, _plan(sha, start, 2).to_bytes(), qos=1, retain=True)
    assert wait_until(lambda: len(node.starts) >= 2, timeout=60, every=0.2), node.log()

    end = (start + timedelta(seconds=3)).timestamp()
    assert node.starts[:2] == [BASE, GOOD]
    assert node.started_at[1] >= end - 0.05
    assert abs(waiting()[-1].waiting_until.timestamp() - end) < 0.5  # it said until when
    assert list((node.root / "audio").glob("*.wav")), "the broadcast was not played"
    assert time.time() > end
