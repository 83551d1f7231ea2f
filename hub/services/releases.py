"""Releases of the edge agent and their staged roll-outs: every rule of remote updates.

**Releases.** IT upload a bundle made and signed with ``thanthien release build --key`` (or
``release sign``). :func:`upload` checks it with the deployment's public key (``[releases]
public_key``) as a node will (``thanthien/releases.py``): an unsigned bundle, one signed with
another key, one whose manifest or any file was changed, is refused with the reason and nothing
is stored. A good one is kept as ``<dir>/<sha256>.tar`` and served to nodes with their media
token (``GET /api/v1/node-releases/{version}``).

**Roll-outs.** :func:`create_rollout` puts a release on the speakers of a zone, a list of nodes or
the whole fleet, in cumulative stages (``[5, 25, 100]`` percent of the nodes, in node id order,
at least one node per stage). The nodes of the first stage are offered the release (retained on
``node/{node}/release``: a node that is offline takes it when it returns). Each node reports its
way (:func:`record_status`); after each report :func:`advance` opens the next stage once the share
of *kept* nodes among those offered so far reaches ``success_share``, and stops the roll-out by
itself (offers not yet taken withdrawn) once ``failure_threshold`` nodes rolled back or failed.
IT pause (no new stage opens), resume and cancel (offers withdrawn from the nodes that had not
switched yet). Every step (upload, create, each stage, each node's outcome, pause, resume, cancel,
the stop and the end) is audited.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien import releases as bundles
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Device, Node, Release, Rollout, RolloutNode, Zone
from thanthien.hub.db.session import mark_changed
from thanthien.hub.roles import DEVICE_STAFF, SYSTEM, ActingUser, Actor, require
from thanthien.hub.services import audit
from thanthien.hub.services.errors import Conflict, Forbidden, Invalid, NotFound
from thanthien.hub.settings import HubSettings
from thanthien.hub.tenancy import Tenant, is_province, reaches, require_province, visible_clause
from thanthien.protocol.payloads import ReleaseOffer, ReleaseStatus

log = logging.getLogger(__name__)

RELEASE_CHANGES: Final = "rollouts"
"""``mark_changed`` topic: offers to publish or withdraw; the follower sends them after the commit."""
ACTIVE: Final = ("running", "paused")
FAILED: Final = ("rolled_back", "failed")
UNSWITCHED: Final = ("pending", "offered", "downloading", "verified", "installed")
"""Node states before the switch: a withdrawn offer still stops these."""
STATE_LABELS: Final = {
    "pending": "chờ đợt sau",
    "offered": "đã gửi đề nghị",
    "downloading": "đang tải",
    "verified": "đã kiểm chữ ký",
    "installed": "đã cài, chờ chuyển",
    "running": "đang chạy thử",
    "kept": "giữ phiên bản mới",
    "rolled_back": "đã quay lại bản cũ",
    "failed": "lỗi",
    "withdrawn": "đã rút đề nghị",
}
ROLLOUT_LABELS: Final = {
    "running": "đang triển khai",
    "paused": "tạm dừng",
    "stopped": "tự dừng vì lỗi",
    "cancelled": "đã hủy",
    "done": "hoàn tất",
}
NO_KEY: Final = (
    "Trung tâm chưa có khóa công khai của bản phát hành ([releases] public_key) "
    "(the hub has no release public key)."
)


class RolloutRequest(BaseModel):
    """A roll-out to create."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(max_length=41, pattern=bundles.VERSION_PATTERN)
    target: Literal["zone", "nodes", "fleet"] = Field(
        description="A zone's speakers, a list of nodes, or all."
    )
    zone: str | None = Field(None, max_length=63, description="With target `zone`: its code.")
    nodes: list[str] = Field(default_factory=list, max_length=5000, description="With target `nodes`.")
    stages: list[int] = Field(
        default_factory=lambda: [5, 25, 100],
        min_length=1,
        max_length=10,
        description="Cumulative percent of the nodes per stage; the last is 100.",
    )
    success_share: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Share of the nodes offered so far that must have kept the "
        "release before the next stage opens.",
    )
    failure_threshold: int = Field(
        1,
        ge=1,
        le=10000,
        description="The roll-out stops by itself once this many nodes rolled back or failed.",
    )

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: list[int]) -> list[int]:
        if any(not 0 < v <= 100 for v in value) or value != sorted(set(value)) or value[-1] != 100:
            raise ValueError("stages must grow, each 1-100, the last 100 (e.g. [5, 25, 100])")
        return value


@dataclass(frozen=True)
class NodeProgress:
    node_id: str
    name: str
    stage: int
    state: str
    reason: str
    running_version: str
    updated_at: datetime

    @property
    def label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)


@dataclass(frozen=True)
class RolloutView:
    id: int
    version: str
    target_kind: str
    target: list[str]
    stages: list[int]
    stage: int
    state: str
    reason: str
    success_share: float
    failure_threshold: int
    created_at: datetime
    created_by: str
    counts: dict[str, int]
    nodes: list[NodeProgress]

    @property
    def label(self) -> str:
        return ROLLOUT_LABELS.get(self.state, self.state)

    @property
    def kept(self) -> int:
        return self.counts.get("kept", 0)

    @property
    def failures(self) -> int:
        return sum(self.counts.get(s, 0) for s in FAILED)


# -- releases -------------------------------------------------------------------------------
def _key(key_path: Path | None) -> bundles.Ed25519PublicKey:
    if key_path is None:
        raise Conflict(NO_KEY)  # a hub set up without updates: nothing the request can change
    try:
        return bundles.load_public(key_path.read_bytes())
    except (OSError, bundles.BundleError) as exc:
        raise Conflict(f"{NO_KEY} {exc}") from None


def public_key_pem(key_path: Path | None) -> str | None:
    """The release public key nodes get at enrollment (``None`` when the hub has none)."""
    if key_path is None:
        return None
    try:
        return bundles.public_pem(_key(key_path)).decode()
    except Conflict:
        log.error("the release public key %s cannot be read: enrolled nodes get none", key_path)
        return None


def bundle_path(store: Path, sha256: str) -> Path:
    return store / f"{sha256}.tar"


def upload_to_hub(session: Session, *, actor: Actor, data: IO[bytes], settings: HubSettings,
                  now: datetime) -> Release:
    """:func:`upload` into this hub's bundle store, checked with its release key (the API and the page)."""
    return upload(session, actor=actor, data=data, store=settings.releases_dir,
                  key_path=settings.releases.public_key, now=now)


def upload(
    session: Session, *, actor: Actor, data: IO[bytes], store: Path, key_path: Path | None, now: datetime
) -> Release:
    """Check and keep an uploaded bundle (see the module); ``Invalid`` with the reason otherwise.
    Releases serve the whole province (signed with its key): only province staff upload them."""
    require(actor, DEVICE_STAFF)
    require_province(actor)
    key = _key(key_path)
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=store, prefix=".upload-", suffix=".tar", delete=False) as tmp:
        shutil.copyfileobj(data, tmp, 1 << 20)
        tmp_path = Path(tmp.name)
    try:
        try:
            manifest = bundles.verify(tmp_path, key)
        except bundles.BundleError as exc:
            log.warning("release bundle refused (uploaded by %s): %s", actor.username, exc)
            audit.record(
                session,
                actor=actor,
                action="release.refused",
                subject="release",
                at=now,
                details={"reason": str(exc)[:300]},
            )
            raise Invalid(f"Gói phát hành bị từ chối: {exc}") from None
        digest = bundles.bundle_digest(tmp_path)
        existing = session.get(Release, manifest.version)
        if existing is not None:
            if existing.sha256 == digest:
                return existing
            raise Conflict(
                f"Đã có bản phát hành {manifest.version} với nội dung khác; hãy đặt số phiên bản mới."
            )
        release = Release(
            version=manifest.version,
            sha256=digest,
            size=tmp_path.stat().st_size,
            python=manifest.python[:16],
            platform=manifest.platform[:64],
            key_fingerprint=bundles.fingerprint(key),
            files=len(manifest.files),
            uploaded_at=now,
            uploaded_by=actor.username[:64],
        )
        tmp_path.replace(bundle_path(store, digest))
        session.add(release)
        audit.record(
            session,
            actor=actor,
            action="release.upload",
            subject=f"release:{manifest.version}",
            at=now,
            details={
                "sha256": digest,
                "size": release.size,
                "platform": release.platform,
                "key": release.key_fingerprint,
            },
        )
        session.flush()
        log.info("release %s uploaded by %s (%d bytes)", manifest.version, actor.username, release.size)
        return release
    finally:
        tmp_path.unlink(missing_ok=True)


def list_releases(session: Session) -> list[Release]:
    return list(session.scalars(select(Release).order_by(Release.uploaded_at.desc())))


def node_may_download(session: Session, *, node_id: str, version: str) -> bool:
    """The node was offered this release by a roll-out (and the offer stands)."""
    return (
        session.scalar(
            select(RolloutNode.node_id)
            .join(Rollout, Rollout.id == RolloutNode.rollout_id)
            .where(
                RolloutNode.node_id == node_id,
                Rollout.version == version,
                RolloutNode.state.not_in(("pending", "withdrawn")),
            )
            .limit(1)
        )
        is not None
    )


def node_bundle(session: Session, *, store: Path, version: str) -> Path:
    """The bundle file a node downloads (its token is checked by the route)."""
    release = session.get(Release, version)
    if release is None:
        raise NotFound(f"Không có bản phát hành {version}.")
    path = bundle_path(store, release.sha256)
    if not path.is_file():
        raise NotFound(f"Tệp của bản phát hành {version} không còn trên đĩa.")
    return path


# -- roll-outs --------------------------------------------------------------------------------
def _targets(session: Session, request: RolloutRequest, actor: Tenant) -> list[str]:
    """The nodes of the request, of the communes ``actor`` reaches: a commune's IT staff roll out
    to their commune's nodes only (the fleet is their commune's; another commune's zone or node
    is not found)."""
    live = select(Node.id).where(Node.registered.is_(True), Node.retired_at.is_(None),
                                 visible_clause(actor, Node.commune_id))
    if request.target == "fleet":
        return sorted(session.scalars(live))
    if request.target == "zone":
        if not request.zone:
            raise Invalid("Cần chọn khu vực phát.")
        zone = session.scalar(select(Zone).where(Zone.code == request.zone))
        if zone is None or not reaches(actor, zone.commune_id):
            raise NotFound(f"Không có khu vực phát {request.zone}.")
        ids = session.scalars(
            select(Device.node_id).where(Device.zone_id == zone.id, Device.kind == "speaker")
        )
        known = set(session.scalars(live))
        return sorted({i for i in ids if i in known})
    wanted = sorted({n.strip() for n in request.nodes if n.strip()})
    if not wanted:
        raise Invalid("Cần chọn ít nhất một thiết bị.")
    known = set(session.scalars(live.where(Node.id.in_(wanted))))
    missing = [n for n in wanted if n not in known]
    if missing:
        raise NotFound(f"Không có thiết bị đang dùng: {', '.join(missing[:20])}.")
    return wanted


def stage_sizes(count: int, stages: list[int]) -> list[int]:
    """How many nodes have been offered once each stage is open (cumulative, each stage adds one
    at least while nodes remain)."""
    out: list[int] = []
    for pct in stages:
        n = max(math.ceil(count * pct / 100), (out[-1] + 1) if out else 1)
        out.append(min(n, count))
    return out


def create_rollout(session: Session, *, actor: Actor, request: RolloutRequest, now: datetime) -> Rollout:
    require(actor, DEVICE_STAFF)
    if session.get(Release, request.version) is None:
        raise NotFound(f"Không có bản phát hành {request.version}; hãy tải gói lên trước.")
    nodes = _targets(session, request, actor)
    if not nodes:
        raise Invalid("Không có thiết bị nào trong phạm vi đã chọn.")
    busy = session.execute(
        select(RolloutNode.node_id, Rollout.id)
        .join(Rollout, Rollout.id == RolloutNode.rollout_id)
        .where(Rollout.state.in_(ACTIVE), RolloutNode.node_id.in_(nodes))
    ).all()
    if busy:
        taken = ", ".join(sorted({f"{n} (đợt #{r})" for n, r in busy})[:10])
        raise Conflict(f"Các thiết bị này đang trong một đợt triển khai khác: {taken}.")
    target = (
        [request.zone or ""] if request.target == "zone" else (nodes if request.target == "nodes" else [])
    )
    rollout = Rollout(
        version=request.version,
        target_kind=request.target,
        target=target,
        stages=request.stages,
        success_share=request.success_share,
        failure_threshold=request.failure_threshold,
        state="running",
        stage=0,
        reason="",
        created_at=now,
        created_by=actor.username[:64],
        updated_at=now,
    )
    session.add(rollout)
    session.flush()
    sizes = stage_sizes(len(nodes), request.stages)
    for index, node_id in enumerate(nodes):
        stage = next(i for i, size in enumerate(sizes) if index < size)
        session.add(
            RolloutNode(
                rollout_id=rollout.id,
                node_id=node_id,
                stage=stage,
                state="offered" if stage == 0 else "pending",
                reason="",
                published="",
                offered_at=now if stage == 0 else None,
                updated_at=now,
            )
        )
    audit.record(
        session,
        actor=actor,
        action="rollout.create",
        subject=f"rollout:{rollout.id}",
        at=now,
        details={
            "version": request.version,
            "target": request.target,
            "zone": request.zone,
            "nodes": len(nodes),
            "stages": request.stages,
            "stage_sizes": sizes,
            "success_share": request.success_share,
            "failure_threshold": request.failure_threshold,
        },
        commune_id=_commune(session, rollout.id),
    )
    session.flush()
    mark_changed(session, RELEASE_CHANGES)
    log.info(
        "roll-out %d of release %s to %d node(s) in stages %s by %s",
        rollout.id,
        request.version,
        len(nodes),
        sizes,
        actor.username,
    )
    return rollout


def _rollout(session: Session, rollout_id: int, viewer: Tenant = SYSTEM, *, change: bool = False) -> Rollout:
    """The roll-out, as ``viewer`` reaches it: one with none of their nodes is not found; to
    ``change`` it (pause, resume, cancel) every node must be theirs (a roll-out across communes
    is the province's)."""
    rollout = session.get(Rollout, rollout_id)
    if rollout is None:
        raise NotFound(f"Không có đợt triển khai #{rollout_id}.")
    if not is_province(viewer):
        communes = set(session.scalars(select(Node.commune_id).join(RolloutNode,
                                                                    RolloutNode.node_id == Node.id)
                                       .where(RolloutNode.rollout_id == rollout_id)))
        if viewer.commune_id not in communes:
            raise NotFound(f"Không có đợt triển khai #{rollout_id}.")
        if change and communes != {viewer.commune_id}:
            raise Forbidden(f"Đợt triển khai #{rollout_id} gồm thiết bị của nhiều xã/phường: "
                            "chỉ cấp tỉnh thay đổi được.")
    return rollout


def _commune(session: Session, rollout_id: int) -> int | None:
    """The commune of a roll-out's audit entries: its nodes' when they are all of one (so the
    commune reads what was done to its nodes), else none (the province's)."""
    communes = set(session.scalars(select(Node.commune_id).join(RolloutNode, RolloutNode.node_id == Node.id)
                                   .where(RolloutNode.rollout_id == rollout_id)))
    return communes.pop() if len(communes) == 1 else None


def _members(session: Session, rollout_id: int) -> list[RolloutNode]:
    return list(
        session.scalars(
            select(RolloutNode)
            .where(RolloutNode.rollout_id == rollout_id)
            .order_by(RolloutNode.stage, RolloutNode.node_id)
        )
    )


def _withdraw(members: list[RolloutNode], now: datetime) -> int:
    """Withdraw the offer of every node that has not switched yet."""
    n = 0
    for member in members:
        if member.state in UNSWITCHED:
            member.state, member.updated_at = "withdrawn", now
            n += 1
    return n


def pause(session: Session, *, actor: Actor, rollout_id: int, now: datetime) -> Rollout:
    require(actor, DEVICE_STAFF)
    rollout = _rollout(session, rollout_id, actor, change=True)
    if rollout.state != "running":
        raise Conflict(
            f"Đợt triển khai #{rollout_id} đang {ROLLOUT_LABELS.get(rollout.state)}, không tạm dừng được."
        )
    rollout.state, rollout.updated_at = "paused", now
    audit.record(session, actor=actor, action="rollout.pause", subject=f"rollout:{rollout_id}", at=now,
                 commune_id=_commune(session, rollout_id))
    return rollout


def resume(session: Session, *, actor: Actor, rollout_id: int, now: datetime) -> Rollout:
    require(actor, DEVICE_STAFF)
    rollout = _rollout(session, rollout_id, actor, change=True)
    if rollout.state != "paused":
        raise Conflict(f"Đợt triển khai #{rollout_id} không ở trạng thái tạm dừng.")
    rollout.state, rollout.updated_at = "running", now
    audit.record(session, actor=actor, action="rollout.resume", subject=f"rollout:{rollout_id}", at=now,
                 commune_id=_commune(session, rollout_id))
    advance(session, rollout=rollout, now=now)
    return rollout


def cancel(session: Session, *, actor: Actor, rollout_id: int, now: datetime) -> Rollout:
    require(actor, DEVICE_STAFF)
    rollout = _rollout(session, rollout_id, actor, change=True)
    if rollout.state not in ACTIVE:
        raise Conflict(f"Đợt triển khai #{rollout_id} đã kết thúc ({ROLLOUT_LABELS.get(rollout.state)}).")
    withdrawn = _withdraw(_members(session, rollout_id), now)
    rollout.state, rollout.updated_at, rollout.reason = "cancelled", now, f"hủy bởi {actor.username}"
    audit.record(
        session,
        actor=actor,
        action="rollout.cancel",
        subject=f"rollout:{rollout_id}",
        at=now,
        details={"withdrawn": withdrawn},
        commune_id=_commune(session, rollout_id),
    )
    mark_changed(session, RELEASE_CHANGES)
    return rollout


def advance(session: Session, *, rollout: Rollout, now: datetime) -> str | None:
    """Stop, open the next stage or finish, as the nodes' states say; what happened (or ``None``)."""
    if rollout.state != "running":
        return None
    members = _members(session, rollout.id)
    counts = Counter(m.state for m in members)
    failures = sum(counts[s] for s in FAILED)
    subject = f"rollout:{rollout.id}"
    if failures >= rollout.failure_threshold:
        withdrawn = _withdraw(members, now)
        rollout.state, rollout.updated_at = "stopped", now
        rollout.reason = f"{failures} thiết bị lỗi hoặc quay lại bản cũ (ngưỡng {rollout.failure_threshold})"
        audit.record(
            session,
            actor=SYSTEM,
            action="rollout.stop",
            subject=subject,
            at=now,
            details={"failures": failures, "threshold": rollout.failure_threshold, "withdrawn": withdrawn},
            commune_id=_commune(session, rollout.id),
        )
        mark_changed(session, RELEASE_CHANGES)
        log.warning("roll-out %d stopped: %s", rollout.id, rollout.reason)
        return "stopped"
    opened = [m for m in members if m.stage <= rollout.stage]
    if all(m.state == "kept" for m in members):
        rollout.state, rollout.updated_at = "done", now
        audit.record(
            session,
            actor=SYSTEM,
            action="rollout.done",
            subject=subject,
            at=now,
            details={"kept": len(members)},
            commune_id=_commune(session, rollout.id),
        )
        return "done"
    last = max(m.stage for m in members)
    share = sum(1 for m in opened if m.state == "kept") / max(len(opened), 1)
    if rollout.stage < last and share >= rollout.success_share:
        rollout.stage += 1
        rollout.updated_at = now
        new = [m for m in members if m.stage == rollout.stage]
        for member in new:
            member.state, member.offered_at, member.updated_at = "offered", now, now
        audit.record(
            session,
            actor=SYSTEM,
            action="rollout.stage",
            subject=subject,
            at=now,
            details={
                "stage": rollout.stage + 1,
                "of": last + 1,
                "nodes": len(new),
                "kept_share": round(share, 3),
            },
            commune_id=_commune(session, rollout.id),
        )
        mark_changed(session, RELEASE_CHANGES)
        log.info(
            "roll-out %d: stage %d of %d opened (%d node(s); %.0f%% kept so far)",
            rollout.id,
            rollout.stage + 1,
            last + 1,
            len(new),
            share * 100,
        )
        return "stage"
    return None


def record_status(session: Session, *, status: ReleaseStatus, now: datetime) -> bool:
    """Store what a node says about a roll-out's release and move the roll-out on; False when the
    report belongs to no roll-out the node is in."""
    if status.rollout is None or status.state is None:
        return False
    member = session.get(RolloutNode, (status.rollout, status.node))
    rollout = session.get(Rollout, status.rollout)
    if member is None or rollout is None or status.version != rollout.version:
        return False
    if member.state == "withdrawn" and status.state in UNSWITCHED:
        return True  # the node has not seen the withdrawal yet
    if member.state == "pending":
        return True  # not offered (a stale retained status)
    changed = member.state != status.state or member.reason != (status.reason or "")
    if not changed:
        return True
    member.state, member.reason, member.updated_at = status.state, (status.reason or "")[:500], now
    if status.state in ("kept", *FAILED):
        actor = ActingUser(username=f"node:{status.node}"[:64], role="it")
        audit.record(
            session,
            actor=actor,
            action=f"rollout.node_{status.state}",
            subject=f"rollout:{rollout.id}",
            at=now,
            details={"node": status.node, "version": status.version, "reason": (status.reason or "")[:300]},
            commune_id=_commune(session, rollout.id),
        )
    advance(session, rollout=rollout, now=now)
    return True


# -- reading ----------------------------------------------------------------------------------
def view(session: Session, *, viewer: Tenant, rollout_id: int) -> RolloutView:
    """The roll-out and its nodes, of the communes ``viewer`` reaches (see :func:`_rollout`)."""
    rollout = _rollout(session, rollout_id, viewer)
    rows = session.execute(
        select(RolloutNode, Node)
        .join(Node, Node.id == RolloutNode.node_id)
        .where(RolloutNode.rollout_id == rollout_id, visible_clause(viewer, Node.commune_id))
        .order_by(RolloutNode.stage, RolloutNode.node_id)
    ).all()
    nodes = [
        NodeProgress(
            node_id=m.node_id,
            name=n.name or m.node_id,
            stage=m.stage,
            state=m.state,
            reason=m.reason,
            running_version=n.agent_version or "",
            updated_at=m.updated_at,
        )
        for m, n in rows
    ]
    return RolloutView(
        id=rollout.id,
        version=rollout.version,
        target_kind=rollout.target_kind,
        target=_visible_target(session, viewer, rollout),
        stages=list(rollout.stages or []),
        stage=rollout.stage,
        state=rollout.state,
        reason=rollout.reason,
        success_share=rollout.success_share,
        failure_threshold=rollout.failure_threshold,
        created_at=rollout.created_at,
        created_by=rollout.created_by,
        counts=dict(Counter(p.state for p in nodes)),
        nodes=nodes,
    )


def _visible_target(session: Session, viewer: Tenant, rollout: Rollout) -> list[str]:
    """What the roll-out was aimed at: the nodes of a ``nodes`` target only those ``viewer`` reaches."""
    target = list(rollout.target or [])
    if rollout.target_kind != "nodes" or is_province(viewer) or not target:
        return target
    reached = set(session.scalars(select(Node.id).where(Node.id.in_(target),
                                                        visible_clause(viewer, Node.commune_id))))
    return [n for n in target if n in reached]


def list_rollouts(session: Session, *, viewer: Tenant, limit: int = 20) -> list[RolloutView]:
    """The latest roll-outs with a node of the communes ``viewer`` reaches."""
    query = select(Rollout.id).order_by(Rollout.id.desc()).limit(limit)
    if not is_province(viewer):
        query = query.where(Rollout.id.in_(
            select(RolloutNode.rollout_id).join(Node, Node.id == RolloutNode.node_id)
            .where(visible_clause(viewer, Node.commune_id))))
    return [view(session, viewer=viewer, rollout_id=i) for i in session.scalars(query)]


@dataclass(frozen=True)
class NodeVersion:
    node_id: str
    name: str
    state: str
    version: str
    update: str
    reason: str


def node_versions(session: Session, *, viewer: Tenant) -> list[NodeVersion]:
    """Every node in service (of the communes ``viewer`` reaches) with the agent version it runs
    and its last roll-out state."""
    latest: dict[str, RolloutNode] = {}
    for member in session.scalars(select(RolloutNode).order_by(RolloutNode.rollout_id)):
        latest[member.node_id] = member
    out = []
    for node in session.scalars(
        select(Node).where(Node.registered.is_(True), Node.retired_at.is_(None),
                           visible_clause(viewer, Node.commune_id)).order_by(Node.id)
    ):
        member = latest.get(node.id)
        out.append(
            NodeVersion(
                node_id=node.id,
                name=node.name or node.id,
                state=node.state,
                version=node.agent_version or "",
                update=member.state if member else "",
                reason=member.reason if member else "",
            )
        )
    return out


# -- publishing -------------------------------------------------------------------------------
def bundle_url(ctx: HubContext, version: str) -> str:
    base = (ctx.settings.releases.download_url or ctx.settings.enrollment.hub_url or "").rstrip("/")
    if not base:
        base = f"http://{ctx.settings.http.host}:{ctx.settings.http.port}/api/v1"
    return f"{base}/node-releases/{version}"


def sync(ctx: HubContext) -> list[str]:
    """Publish (retained) the offer of every node offered a release and not sent it yet, and clear
    the offer of every node whose offer was withdrawn; returns the nodes published."""
    link = ctx.mqtt
    if link is None:
        return []
    out: list[tuple[str, bytes]] = []
    now = ctx.clock()
    with ctx.db.session() as session:
        rows = session.execute(
            select(RolloutNode, Rollout, Release)
            .join(Rollout, Rollout.id == RolloutNode.rollout_id)
            .join(Release, Release.version == Rollout.version)
        ).all()
        for member, rollout, release in rows:
            if member.state == "withdrawn" and member.published == "offer":
                member.published = "cleared"
                out.append((member.node_id, b""))
            elif (
                member.state not in ("pending", "withdrawn")
                and member.published == ""
                and rollout.state in ACTIVE
            ):
                member.published = "offer"
                offer = ReleaseOffer(
                    node=member.node_id,
                    version=release.version,
                    rollout=rollout.id,
                    url=bundle_url(ctx, release.version),
                    sha256=release.sha256,
                    size=release.size,
                    issued_at=now,
                )
                out.append((member.node_id, offer.to_bytes()))
    for node_id, payload in out:
        link.publish(ctx.topics.release_offer(node_id), payload, qos=1, retain=True)
    if out:
        log.info("release offers published to %d node(s)", len(out))
    return [n for n, _ in out]


def follow(ctx: HubContext) -> None:
    ctx.db.follow(RELEASE_CHANGES, ("releases", id(ctx)), lambda: sync(ctx))
