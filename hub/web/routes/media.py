"""The media library pages: upload a file, type a Vietnamese text for text-to-speech (with what
the engine will read), listen before using it (officers, leaders and admins, as in the API);
the pronunciation dictionary (admins edit). Playing a file through its end is reported here
(``…/listened``): an approver of a TTS broadcast must have done it once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import ValidationError

from thanthien.hub.roles import BROADCAST_EDITORS, TTS_LEXICON_EDITORS, may
from thanthien.hub.services import media_items
from thanthien.hub.services.errors import ServiceError
from thanthien.hub.services.tts import TtsRequest, voices
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

Editor = Annotated[UiUser, Depends(Require(*BROADCAST_EDITORS))]
LexiconEditor = Annotated[UiUser, Depends(Require(*TTS_LEXICON_EDITORS))]


def _media_page(
    request: Request,
    user: UiUser,
    *,
    message: str = "",
    error: bool = False,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        context = {
            "media": media_items.list_media(session, viewer=user),
            "voices": voices(hub.settings.tts),
            "lexicon": sorted(media_items.lexicon(session).entries.items()),
            "own_terms": {e.term for e in media_items.list_lexicon(session)},
            "lexicon_editor": may(user, TTS_LEXICON_EDITORS),
            "form": form or {},
            "notice": (message, error) if message else None,
            "tts_max": hub.settings.tts.max_chars,
        }
        return render(request, "media.html", context, user=user, status_code=status_code)


@router.get("/media", response_class=HTMLResponse)
def media_page(request: Request, user: Editor) -> Response:
    return _media_page(request, user)


@router.post("/media", dependencies=[Csrf], response_class=HTMLResponse)
def upload(
    request: Request, user: Editor, file: Annotated[UploadFile, File()], title: Annotated[str, Form()] = ""
) -> Response:
    hub = hub_of(request)
    data = file.file.read(hub.settings.media.max_bytes + 1)
    try:
        with hub.db.session() as session:
            item = media_items.add_upload(
                session,
                lib=hub.media,
                data=data,
                filename=file.filename or "upload",
                title=title.strip()[:200],
                username=user.username,
                commune_id=user.commune_id,
                now=hub.clock(),
            )
            name = item.title
    except ServiceError as exc:
        return _media_page(request, user, message=str(exc), error=True, status_code=422)
    return flash.redirect("/ui/media", message=f"Đã thêm “{name}” vào thư viện.")


@router.post("/media/tts", dependencies=[Csrf], response_class=HTMLResponse)
def tts(
    request: Request,
    user: Editor,
    text: Annotated[str, Form()] = "",
    voice: Annotated[str, Form()] = "northern",
    speed_wpm: Annotated[int, Form()] = 150,
    chime: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
) -> Response:
    hub = hub_of(request)
    form = {"text": text, "voice": voice, "speed_wpm": speed_wpm, "chime": chime, "title": title}
    try:
        req = TtsRequest(text=text, voice=voice, speed_wpm=speed_wpm, chime=chime == "1")  # type: ignore[arg-type]
    except ValidationError:
        return _media_page(
            request,
            user,
            message="Giọng đọc hoặc tốc độ không hợp lệ (80–260 từ/phút).",
            error=True,
            form=form,
            status_code=422,
        )
    try:
        with hub.db.session() as session:
            item = media_items.add_tts(
                session,
                lib=hub.media,
                settings=hub.settings.tts,
                request=req,
                title=title.strip()[:200],
                username=user.username,
                commune_id=user.commune_id,
                now=hub.clock(),
            )
            name = item.title
    except ServiceError as exc:
        return _media_page(request, user, message=str(exc), error=True, form=form, status_code=422)
    return flash.redirect("/ui/media", message=f"Đã tạo bản đọc “{name}”; hãy nghe thử trước khi lên lịch.")


@router.get("/media/{sha256}.wav")
def preview(request: Request, user: Editor, sha256: str) -> Response:
    hub = hub_of(request)
    try:
        media_items.check_sha(sha256)
    except ServiceError:
        raise HTTPException(404, "Không có tệp này") from None
    path = hub.media.path_for(sha256)
    if not path.is_file():
        raise HTTPException(404, "Không có tệp này")
    with hub.db.session() as session:  # the start of this user's listen-through
        try:
            media_items.get_media(session, viewer=user, sha256=sha256)  # another commune's: none
        except ServiceError:
            raise HTTPException(404, "Không có tệp này") from None
        media_items.record_fetch(session, sha256=sha256, username=user.username, now=hub.clock())
    return FileResponse(path, media_type="audio/wav")


@router.post("/media/{sha256}/listened", dependencies=[Csrf])
def listened(request: Request, user: Editor, sha256: str) -> Response:
    """The page's player reached the end (``POST /api/v1/media/{sha256}/listened``)."""
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            media_items.record_listened(session, actor=user, sha256=media_items.check_sha(sha256),
                                        now=hub.clock())
    except ServiceError as exc:
        return Response(str(exc), status_code=422, media_type="text/plain; charset=utf-8")
    return Response(status_code=204)


@router.post("/media/lexicon", dependencies=[Csrf])
def save_lexicon(request: Request, user: LexiconEditor, term: Annotated[str, Form()] = "",
                 spoken: Annotated[str, Form()] = "", delete: Annotated[str, Form()] = "") -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            if delete == "1":
                media_items.delete_lexicon_entry(session, actor=user, term=term, now=hub.clock())
                message = f"Đã xóa “{term.strip()}” khỏi từ điển phát âm."
            else:
                row = media_items.set_lexicon_entry(session, actor=user, term=term, spoken=spoken,
                                                    now=hub.clock())
                message = f"Từ điển phát âm: “{row.term}” đọc là “{row.spoken}”."
    except ServiceError as exc:
        return flash.refused("/ui/media#lexicon", exc)
    return flash.redirect("/ui/media#lexicon", message=message)
