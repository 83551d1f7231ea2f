"""Releases of the edge agent and their roll-outs (``services/releases.py``), and the nodes'
bundle downloads with their media token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, RowId, TokenNode, allow
from thanthien.hub.roles import DEVICE_STAFF
from thanthien.hub.services import releases
from thanthien.hub.services.releases import RolloutRequest

router = APIRouter(tags=["releases"])
node_router = APIRouter(tags=["releases"])


class ReleaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: str
    sha256: str
    size: int
    python: str
    platform: str
    key_fingerprint: str
    files: int
    uploaded_at: datetime
    uploaded_by: str


class NodeProgressOut(BaseModel):
    node_id: str
    stage: int
    state: str
    reason: str
    running_version: str
    updated_at: datetime


class RolloutOut(BaseModel):
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
    nodes: list[NodeProgressOut]


def _out(view: releases.RolloutView) -> RolloutOut:
    return RolloutOut(
        **{k: getattr(view, k) for k in RolloutOut.model_fields if k != "nodes"},
        nodes=[
            NodeProgressOut(**{k: getattr(n, k) for k in NodeProgressOut.model_fields}) for n in view.nodes
        ],
    )


@router.post(
    "/releases",
    response_model=ReleaseOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(*DEVICE_STAFF)],
    summary="Upload a signed release bundle (an unsigned or changed one is refused with the reason)",
)
def upload(
    hub: Hub, session: DbSession, actor: CurrentUser, file: Annotated[UploadFile, File()]
) -> ReleaseOut:
    release = releases.upload_to_hub(session, actor=actor, data=file.file, settings=hub.settings,
                                     now=hub.clock())
    session.commit()
    return ReleaseOut.model_validate(release)


@router.get(
    "/releases",
    response_model=list[ReleaseOut],
    dependencies=[allow(*DEVICE_STAFF)],
    summary="The releases uploaded, newest first",
)
def list_releases(session: DbSession) -> list[ReleaseOut]:
    return [ReleaseOut.model_validate(r) for r in releases.list_releases(session)]


@router.post(
    "/rollouts",
    response_model=RolloutOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(*DEVICE_STAFF)],
    summary="Roll a release out to a zone, a list of nodes or the fleet, in stages",
)
def create_rollout(hub: Hub, session: DbSession, actor: CurrentUser, body: RolloutRequest) -> RolloutOut:
    rollout = releases.create_rollout(session, actor=actor, request=body, now=hub.clock())
    session.commit()  # the offers go out after the commit (releases.follow)
    return _out(releases.view(session, viewer=actor, rollout_id=rollout.id))


@router.get(
    "/rollouts",
    response_model=list[RolloutOut],
    dependencies=[allow(*DEVICE_STAFF)],
    summary="The latest roll-outs with each node's state",
)
def list_rollouts(session: DbSession, actor: CurrentUser) -> list[RolloutOut]:
    return [_out(v) for v in releases.list_rollouts(session, viewer=actor)]


@router.get(
    "/rollouts/{rollout_id}",
    response_model=RolloutOut,
    dependencies=[allow(*DEVICE_STAFF)],
    summary="A roll-out's progress: stage, counts, each node's state and reason",
)
def get_rollout(session: DbSession, actor: CurrentUser, rollout_id: RowId) -> RolloutOut:
    return _out(releases.view(session, viewer=actor, rollout_id=rollout_id))


@router.post(
    "/rollouts/{rollout_id}/{action}",
    response_model=RolloutOut,
    dependencies=[allow(*DEVICE_STAFF)],
    summary="pause, resume or cancel a roll-out",
)
def act(hub: Hub, session: DbSession, actor: CurrentUser, rollout_id: RowId, action: str) -> RolloutOut:
    do = {"pause": releases.pause, "resume": releases.resume, "cancel": releases.cancel}.get(action)
    if do is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Chỉ có pause, resume hoặc cancel.")
    do(session, actor=actor, rollout_id=rollout_id, now=hub.clock())
    session.commit()
    return _out(releases.view(session, viewer=actor, rollout_id=rollout_id))


@node_router.get(
    "/node-releases/{version}",
    response_class=FileResponse,
    include_in_schema=False,
    summary="A node downloads a bundle it was offered (its media token, not a login)",
)
def node_download(hub: Hub, session: DbSession, node_id: TokenNode, version: str) -> FileResponse:
    if not releases.node_may_download(session, node_id=node_id, version=version):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Bản phát hành này không được đề nghị cho nút")
    path = releases.node_bundle(session, store=hub.settings.releases_dir, version=version)
    return FileResponse(path, media_type="application/x-tar")
