"""Remote updates from the browser (IT staff): upload a signed bundle, roll a release out to a
zone, a list of nodes or the fleet in stages, pause, resume or cancel it, and see each node's
version and each roll-out's progress. The rules are ``services/releases.py``'s."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from thanthien.hub.api.deps import RowId
from thanthien.hub.roles import DEVICE_STAFF
from thanthien.hub.services import registry, releases
from thanthien.hub.services.errors import ServiceError
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()
ItUser = Annotated[UiUser, Depends(Require(*DEVICE_STAFF))]
PAGE = "/ui/releases"


@router.get("/releases", response_class=HTMLResponse)
def page(request: Request, user: ItUser) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        context = {
            "releases": releases.list_releases(session),
            "rollouts": releases.list_rollouts(session, viewer=user),
            "nodes": releases.node_versions(session, viewer=user),
            "zones": registry.list_zones(session, viewer=user),
            "labels": releases.STATE_LABELS,
            "has_key": hub.settings.releases.public_key is not None,
        }
        return render(request, "releases.html", context, user=user)


@router.get("/releases/rollouts/{rollout_id}", response_class=HTMLResponse)
def rollout_page(request: Request, user: ItUser, rollout_id: RowId) -> Response:
    hub = hub_of(request)
    try:
        with hub.db.new_session(write=False) as session:
            view = releases.view(session, viewer=user, rollout_id=rollout_id)
    except ServiceError as exc:
        return flash.refused(PAGE, exc)
    return render(request, "rollout.html", {"r": view}, user=user)


@router.post("/releases", dependencies=[Csrf])
def upload(request: Request, user: ItUser, file: Annotated[UploadFile, File()]) -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            release = releases.upload_to_hub(session, actor=user, data=file.file, settings=hub.settings,
                                             now=hub.clock())
            version = release.version
    except ServiceError as exc:
        return flash.refused(PAGE, exc)
    return flash.redirect(PAGE, message=f"Đã nhận bản phát hành {version} (chữ ký và mọi tệp đều đúng)")


def _numbers(text: str) -> list[int]:
    return [int(x) for x in text.replace("%", "").replace(";", ",").replace("→", ",").split(",") if x.strip()]


@router.post("/releases/rollouts", dependencies=[Csrf])
def create(
    request: Request,
    user: ItUser,
    version: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "zone",
    zone: Annotated[str, Form()] = "",
    nodes: Annotated[str, Form()] = "",
    stages: Annotated[str, Form()] = "5, 25, 100",
    success_pct: Annotated[str, Form()] = "90",
    failure_threshold: Annotated[str, Form()] = "1",
) -> Response:
    hub = hub_of(request)
    try:
        req = releases.RolloutRequest(
            version=version,
            target=target,
            zone=zone or None,  # type: ignore[arg-type]
            nodes=[n for n in nodes.replace(",", " ").split() if n],
            stages=_numbers(stages),
            success_share=float(success_pct.replace(",", ".")) / 100,
            failure_threshold=int(failure_threshold),
        )
    except (ValidationError, ValueError) as exc:
        problems = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": str(exc)}]
        text = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems)
        return flash.redirect(PAGE, message=f"Thông tin đợt triển khai chưa hợp lệ: {text}", error=True)
    try:
        with hub.db.session() as session:
            rollout_id = releases.create_rollout(session, actor=user, request=req, now=hub.clock()).id
    except ServiceError as exc:
        return flash.refused(PAGE, exc)
    return flash.redirect(f"{PAGE}/rollouts/{rollout_id}", message=f"Đã bắt đầu đợt triển khai #{rollout_id}")


@router.post("/releases/rollouts/{rollout_id}/{action}", dependencies=[Csrf])
def act(request: Request, user: ItUser, rollout_id: RowId, action: str) -> Response:
    hub = hub_of(request)
    back = f"{PAGE}/rollouts/{rollout_id}"
    do = {"pause": releases.pause, "resume": releases.resume, "cancel": releases.cancel}.get(action)
    if do is None:
        return flash.redirect(back, message="Chỉ có tạm dừng, tiếp tục hoặc hủy.", error=True)
    try:
        with hub.db.session() as session:
            state = do(session, actor=user, rollout_id=rollout_id, now=hub.clock()).state
    except ServiceError as exc:
        return flash.refused(back, exc)
    return flash.redirect(
        back, message=f"Đợt triển khai #{rollout_id}: {releases.ROLLOUT_LABELS.get(state, state)}"
    )
