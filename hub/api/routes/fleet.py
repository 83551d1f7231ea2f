"""Putting nodes into service and looking after them: enrollment codes and the enrollment
itself (the Pi's one unauthenticated call), retirement, the configuration the hub holds for a
node, commands with their answers, and the last picture of a camera."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, allow
from thanthien.hub.api.schemas import NodeOut
from thanthien.hub.api.schemas_fleet import (
    BrokerIdentityOut,
    CommandIn,
    CommandOut,
    ConfigIn,
    EnrollIn,
    EnrollmentCodeOut,
    EnrollOut,
    NodeConfigOut,
)
from thanthien.hub.roles import DEVICE_STAFF
from thanthien.hub.services import enrollment, fleet_commands, node_config, node_history, releases
from thanthien.hub.services.errors import NotFound

router = APIRouter(tags=["enrollment and fleet"])
node_router = APIRouter(tags=["enrollment and fleet"])
"""What a node calls without a login (its code is its credential); outside the role-checked
``ROUTERS`` and the published schema, like the media downloads."""


@router.post("/nodes/{node_id}/enrollment", response_model=EnrollmentCodeOut,
             status_code=status.HTTP_201_CREATED, dependencies=[allow(*DEVICE_STAFF)],
             summary="A one-time enrollment code for the node (shown once; an older unused one stops)")
def enrollment_code(hub: Hub, session: DbSession, actor: CurrentUser, request: Request,
                    node_id: str) -> EnrollmentCodeOut:
    cfg = hub.settings.enrollment
    issued = enrollment.issue_code(session, actor=actor, node_id=node_id, now=hub.clock(), settings=cfg)
    session.commit()
    command = enrollment.enroll_command(enrollment.hub_base(cfg, str(request.base_url)), issued.code)
    return EnrollmentCodeOut(node_id=node_id, code=issued.code, expires_at=issued.expires_at, command=command,
                             qr_svg=enrollment.qr_svg(command))


@node_router.post("/enroll", response_model=EnrollOut, include_in_schema=False,
             summary="The node's side: trade its code for its broker identity, media token and config")
def enroll(hub: Hub, session: DbSession, request: Request, body: EnrollIn) -> EnrollOut:
    try:
        result = enrollment.redeem(session, code=body.code, csr_pem=body.csr, now=hub.clock(),
                                   settings=hub.settings.enrollment, throttle=hub.settings.auth,
                                   enrolled_via=str(request.base_url),
                                   client=request.client.host if request.client else None,
                                   tz=hub.settings.hub.timezone)
    except enrollment.CodeRefused:
        session.commit()  # only the refusal counted against the address
        raise
    session.commit()  # the broker's password file and CRL follow (enrollment.follow)
    return EnrollOut(node_id=result.node_id, hub_url=result.hub_url, media_token=result.media_token,
                     config=result.config,
                     release_key=releases.public_key_pem(hub.settings.releases.public_key),
                     broker=BrokerIdentityOut(host=result.broker_host, port=result.broker_port,
                                              username=result.node_id, tls=result.tls,
                                              password=result.password, certificate=result.certificate_pem,
                                              ca=result.ca_pem))


@router.post("/nodes/{node_id}/retire", response_model=NodeOut, dependencies=[allow(*DEVICE_STAFF)],
             summary="Take the node out of service: identity revoked (next connect refused), history kept")
def retire(hub: Hub, session: DbSession, actor: CurrentUser, node_id: str) -> NodeOut:
    node = enrollment.retire_node(session, actor=actor, node_id=node_id, now=hub.clock(), notify=hub.notify)
    session.commit()
    return NodeOut.model_validate(node)


@router.get("/nodes/{node_id}/config", response_model=NodeConfigOut, dependencies=[allow(*DEVICE_STAFF)],
            summary="The config the hub holds for the node, and the version the node runs")
def get_config(session: DbSession, actor: CurrentUser, node_id: str) -> NodeConfigOut:
    return _config_out(session, actor, node_id)


@router.put("/nodes/{node_id}/config", response_model=NodeConfigOut, dependencies=[allow(*DEVICE_STAFF)],
            summary="Change the speaker's volume and warm-up, devices' hardware, the telemetry interval")
def put_config(hub: Hub, session: DbSession, actor: CurrentUser, node_id: str,
               body: ConfigIn) -> NodeConfigOut:
    node_config.update(session, actor=actor, node_id=node_id, change=body, now=hub.clock())
    session.commit()  # published after the commit (node_config.follow)
    return _config_out(session, actor, node_id)


def _config_out(session: DbSession, actor: CurrentUser, node_id: str) -> NodeConfigOut:
    view = node_config.view(session, viewer=actor, node_id=node_id)
    if view is None:
        raise NotFound(f"Thiết bị {node_id} chưa được quản lý cấu hình từ trung tâm.")
    return NodeConfigOut(**{k: getattr(view, k) for k in NodeConfigOut.model_fields if k != "in_force"},
                         in_force=view.in_force)


@router.get("/nodes/{node_id}/commands", response_model=list[CommandOut], dependencies=[allow(*DEVICE_STAFF)],
            summary="The last commands sent to the node, with their answers")
def list_commands(session: DbSession, actor: CurrentUser, node_id: str) -> list[CommandOut]:
    return [CommandOut.model_validate(c)
            for c in fleet_commands.recent(session, viewer=actor, node_id=node_id, limit=50)]


@router.post("/nodes/{node_id}/commands", response_model=CommandOut, dependencies=[allow(*DEVICE_STAFF)],
             summary="Send a command and wait for its answer (409 at once for a node that is not online)")
def send_command(hub: Hub, actor: CurrentUser, node_id: str, body: CommandIn) -> CommandOut:
    return CommandOut.model_validate(fleet_commands.send(hub, actor=actor, node_id=node_id, name=body.name,
                                                         args=body.args))


@router.get("/nodes/{node_id}/cameras/{camera}/thumbnail", dependencies=[allow(*DEVICE_STAFF)],
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}}},
            summary="The last picture the node's probe saw of the camera (sent with a change of health)")
def thumbnail(session: DbSession, actor: CurrentUser, node_id: str, camera: str) -> Response:
    thumb = node_history.thumbnail(session, viewer=actor, node_id=node_id, camera=camera)
    return Response(thumb.jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
