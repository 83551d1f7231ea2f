"""The media library (upload, text-to-speech, preview) and the nodes' media downloads.

``GET /api/v1/media/{sha256}`` is the speaker nodes' download: it takes a node's bearer
token (``POST /api/v1/nodes/{node}/media-token``), not a login, and serves a file only to a
node that an occurrence of it is targeted at. A node's ``speakers.hub_url`` is therefore
``http(s)://<hub>/api/v1/`` and plan items carry ``media/<sha256>``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile, status
from fastapi.responses import FileResponse

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, TokenNode, allow
from thanthien.hub.api.schemas import MediaOut, NodeTokenOut, TtsIn
from thanthien.hub.roles import BROADCAST_EDITORS, DEVICE_STAFF, EVERYONE
from thanthien.hub.services import media_items
from thanthien.hub.services.errors import Invalid
from thanthien.hub.services.media import MediaLibrary
from thanthien.hub.services.tts import TtsRequest

router = APIRouter(tags=["media"])
node_router = APIRouter(tags=["media"])
"""Routes for nodes (their own token, no login); outside the role-checked ``ROUTERS``."""


def _lib(hub: Hub) -> MediaLibrary:
    return hub.media


@router.get("/media", response_model=list[MediaOut], dependencies=[allow(*BROADCAST_EDITORS)])
def list_media(session: DbSession, user: CurrentUser) -> list[MediaOut]:
    return [MediaOut.model_validate(m) for m in media_items.list_media(session, viewer=user)]


@router.post(
    "/media",
    response_model=MediaOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(*BROADCAST_EDITORS)],
    summary="Upload WAV, MP3, OGG or M4A: validated, converted, loudness-normalised",
)
def upload_media(
    hub: Hub,
    session: DbSession,
    user: CurrentUser,
    file: Annotated[UploadFile, File()],
    title: Annotated[str, Form(max_length=200)] = "",
) -> MediaOut:
    lib = _lib(hub)
    data = file.file.read(hub.settings.media.max_bytes + 1)
    item = media_items.add_upload(
        session,
        lib=lib,
        data=data,
        filename=file.filename or "upload",
        title=title,
        username=user.username,
        commune_id=user.commune_id,
        now=hub.clock(),
    )
    session.commit()
    return MediaOut.model_validate(item)


@router.post(
    "/media/tts",
    response_model=MediaOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(*BROADCAST_EDITORS)],
    summary="Render a Vietnamese announcement (espeak-ng, or an installed Piper voice)",
)
def render_tts(hub: Hub, session: DbSession, user: CurrentUser, body: TtsIn) -> MediaOut:
    request = TtsRequest(text=body.text, voice=body.voice, speed_wpm=body.speed_wpm, chime=body.chime)
    item = media_items.add_tts(
        session,
        lib=_lib(hub),
        settings=hub.settings.tts,
        request=request,
        title=body.title,
        username=user.username,
        commune_id=user.commune_id,
        now=hub.clock(),
    )
    session.commit()
    return MediaOut.model_validate(item)


@router.get("/media/{sha256}/info", response_model=MediaOut, dependencies=[allow(*EVERYONE)])
def media_info(session: DbSession, user: CurrentUser, sha256: str) -> MediaOut:
    item = media_items.get_media(session, viewer=user, sha256=media_items.check_sha(sha256))
    return MediaOut.model_validate(item)


@router.get(
    "/media/{sha256}/preview",
    dependencies=[allow(*EVERYONE)],
    response_class=FileResponse,
    summary="The playback file for listening in the browser",
)
def preview_media(hub: Hub, session: DbSession, user: CurrentUser, sha256: str) -> FileResponse:
    """Serving it to the user starts their listen-through (``POST …/listened`` when played to the end)."""
    item = media_items.get_media(session, viewer=user, sha256=media_items.check_sha(sha256))
    path = _lib(hub).path_for(item.sha256)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Tệp âm thanh không còn trên đĩa")
    media_items.record_fetch(session, sha256=item.sha256, username=user.username, now=hub.clock())
    session.commit()
    return FileResponse(path, media_type="audio/wav")


@router.delete("/media/{sha256}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[allow(*BROADCAST_EDITORS)])
def delete_media(hub: Hub, session: DbSession, actor: CurrentUser, sha256: str) -> None:
    media_items.delete_media(session, actor=actor, lib=_lib(hub), sha256=media_items.check_sha(sha256),
                             now=hub.clock())
    session.commit()


@node_router.get(
    "/media/{sha256}",
    response_class=FileResponse,
    include_in_schema=False,
    summary="Speaker node download (node media token, not a login)",
)
def node_download(hub: Hub, session: DbSession, node_id: TokenNode, sha256: str) -> FileResponse:
    try:
        media_items.check_sha(sha256)
    except Invalid:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Không có tệp này") from None
    if not media_items.node_may_fetch(session, node_id=node_id, sha256=sha256):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Tệp này không thuộc lịch phát của nút")
    path = _lib(hub).path_for(sha256)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Tệp âm thanh không còn trên đĩa")
    return FileResponse(path, media_type="audio/wav")


@router.post(
    "/nodes/{node_id}/media-token",
    response_model=NodeTokenOut,
    dependencies=[allow(*DEVICE_STAFF)],
    summary="Issue (or rotate) a speaker node's media download token",
)
def issue_token(hub: Hub, session: DbSession, actor: CurrentUser, node_id: str) -> NodeTokenOut:
    token = media_items.issue_node_token(session, actor=actor, node_id=node_id, now=hub.clock())
    session.commit()
    return NodeTokenOut(node_id=node_id, token=token)


@router.delete(
    "/nodes/{node_id}/media-token", status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[allow(*DEVICE_STAFF)]
)
def revoke_token(hub: Hub, session: DbSession, actor: CurrentUser, node_id: str) -> None:
    media_items.revoke_node_token(session, actor=actor, node_id=node_id, now=hub.clock())
    session.commit()
