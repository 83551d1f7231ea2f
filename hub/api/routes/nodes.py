"""Edge nodes (registered and unregistered) and their devices."""

from __future__ import annotations

from fastapi import APIRouter, status

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, RowId, allow
from thanthien.hub.api.retiring import add_retire_routes
from thanthien.hub.api.schemas import DeviceIn, DeviceOut, NodeIn, NodeOut, NodeUpdate
from thanthien.hub.db.models import Device, Node
from thanthien.hub.roles import DEVICE_STAFF, EVERYONE
from thanthien.hub.services import enrollment, registry

router = APIRouter(tags=["nodes"])


@router.get("/nodes", response_model=list[NodeOut], dependencies=[allow(*EVERYONE)],
            summary="Nodes with their health; registered=false lists the unknown ones")
def list_nodes(session: DbSession, actor: CurrentUser, registered: bool | None = None) -> list[NodeOut]:
    nodes = registry.list_nodes(session, viewer=actor, registered=registered)
    return [NodeOut.model_validate(n) for n in nodes]


@router.get("/nodes/{node_id}", response_model=NodeOut, dependencies=[allow(*EVERYONE)])
def get_node(session: DbSession, actor: CurrentUser, node_id: str) -> NodeOut:
    return NodeOut.model_validate(registry.get_node(session, node_id=node_id, viewer=actor))


@router.post("/nodes", response_model=NodeOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*DEVICE_STAFF)], summary="Register a node (also one seen unregistered)")
def register_node(hub: Hub, session: DbSession, actor: CurrentUser, body: NodeIn) -> NodeOut:
    node = registry.register_node(session, actor=actor, now=hub.clock(), node_id=body.id, name=body.name,
                                  site=body.site, commune=body.commune)
    session.commit()
    return NodeOut.model_validate(node)


@router.patch("/nodes/{node_id}", response_model=NodeOut, dependencies=[allow(*DEVICE_STAFF)])
def update_node(hub: Hub, session: DbSession, actor: CurrentUser, node_id: str, body: NodeUpdate) -> NodeOut:
    node = registry.update_node(session, actor=actor, now=hub.clock(), node_id=node_id, name=body.name,
                                site=body.site, registered=body.registered)
    session.commit()
    return NodeOut.model_validate(node)


@router.delete("/nodes/{node_id}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[allow(*DEVICE_STAFF)])
def delete_node(hub: Hub, session: DbSession, actor: CurrentUser, node_id: str) -> None:
    """Delete a node: its broker identity is revoked first (the broker refuses its next connect);
    ``POST /nodes/{id}/retire`` keeps its history instead."""
    enrollment.revoke_node(session, actor=actor, node_id=node_id, now=hub.clock(), reason="deleted",
                           media_token=False)
    registry.delete_row(session, actor=actor, now=hub.clock(), model=Node, ident=node_id)
    session.commit()


@router.get("/devices", response_model=list[DeviceOut], dependencies=[allow(*EVERYONE)],
            summary="Devices (of a node); active=true only those in service, false only the retired ones")
def list_devices(session: DbSession, actor: CurrentUser, node_id: str | None = None,
                 active: bool | None = None) -> list[DeviceOut]:
    devices = registry.list_devices(session, viewer=actor, node_id=node_id, active=active)
    return [DeviceOut.of(d) for d in devices]


@router.put("/devices", response_model=DeviceOut, dependencies=[allow(*DEVICE_STAFF)],
            summary="Create or update a device of a node (a camera's account is never shown back)")
def put_device(hub: Hub, session: DbSession, actor: CurrentUser, body: DeviceIn) -> DeviceOut:
    password = body.camera_password.get_secret_value() if body.camera_password else None
    camera = registry.CameraAccess(rtsp_url=body.rtsp_url, snapshot_url=body.snapshot_url,
                                   username=body.camera_username, password=password,
                                   clear_credentials=body.clear_credentials)
    device = registry.upsert_device(session, actor=actor, now=hub.clock(), node_id=body.node_id,
                                    code=body.code, kind=body.kind, name=body.name, counter=body.counter,
                                    zone=body.zone, camera=camera)
    session.commit()
    return DeviceOut.of(device)


add_retire_routes(router, path="/devices", model=Device, out=DeviceOut, permission=DEVICE_STAFF,
                  shape=DeviceOut.of,
                  summary="Retire a device: its node's claims for it are refused from then on")


@router.delete("/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[allow(*DEVICE_STAFF)])
def delete_device(hub: Hub, session: DbSession, actor: CurrentUser, device_id: RowId) -> None:
    registry.delete_row(session, actor=actor, now=hub.clock(), model=Device, ident=device_id)
    session.commit()
