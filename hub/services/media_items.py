"""The media library in the database (``media_items``) and the speaker nodes' download tokens.

Files are validated, converted and stored by :class:`MediaLibrary` first; a row is written
only for a file that was stored, and a refused upload leaves neither a file nor a row.

Node tokens: ``tn_<random>`` (256 bits), shown once when issued; only their SHA-256 is kept.
A node's token lets it download only the media of occurrences targeted at that node (its
plan or a play-now command it was sent): a stolen token reveals no other village's audio.

**Communes (issue 20).** A file belongs to its uploader's commune (``MediaItem.commune_id``;
``None``: the province library, which every commune lists and uses). A commune user lists,
previews, inspects and marks listened their commune's files and the province's, deletes only
their commune's; another commune's file does not exist for them (``NotFound``). The library
is content addressed (the sha256 is the key): one row per bytes. When a user of another
commune (or the province) uploads bytes already in the library, the row moves to the province
library (``commune_id`` ``None``) and both use it: the uploader has just proved they hold the
very same audio, so sharing its row tells them nothing they did not have but its title and
author, while keeping it the first commune's would leave the second one's broadcasts unable
to name a file they uploaded (and a second row is impossible without a new key). Deleting a
province file is for province users. The node download (``GET /api/v1/media/{sha256}`` with a
node's token) is unchanged: a node fetches what its plan plays, whoever's it is.

The pronunciation dictionary (``tts_lexicon``) is one for the province: every commune's TTS
reads with it and every editor sees it; only province admins change it (the way a name is
read is the same in every commune, and one commune's edit would change the others' audio).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from thanthien.hub.db.models import (
    Broadcast,
    Delivery,
    MediaItem,
    MediaListen,
    Node,
    NodeMediaToken,
    Occurrence,
    TtsLexiconEntry,
)
from thanthien.hub.roles import TTS_LEXICON_EDITORS, Actor, require
from thanthien.hub.services import audit
from thanthien.hub.services.errors import Conflict, Forbidden, Invalid, NotFound
from thanthien.hub.services.media import MediaError, MediaLibrary, MediaRecord, MediaSettings
from thanthien.hub.services.tts import Tts, TtsRequest, TtsSettings
from thanthien.hub.services.tts_text import Lexicon, check_entry
from thanthien.hub.tenancy import Tenant, reaches, require_province, require_reach, visible_clause

TOKEN_PREFIX = "tn_"


def library(data_dir: Path, settings: MediaSettings) -> MediaLibrary:
    return MediaLibrary(Path(data_dir) / "media", settings)


def _row(
    session: Session,
    record: MediaRecord,
    *,
    title: str,
    username: str,
    commune_id: int | None,
    now: datetime,
    tts: TtsRequest | None = None,
) -> MediaItem:
    item = session.get(MediaItem, record.sha256)
    if item is not None and item.commune_id is not None and item.commune_id != commune_id:
        item.commune_id = None  # the same bytes from another commune: the province library's now
        session.flush()
    if item is None:
        item = MediaItem(
            sha256=record.sha256,
            title=title[:255] or record.original_name,
            duration_s=record.duration_s,
            size_bytes=record.size_bytes,
            source_format=record.source_format,
            source_sha256=record.source_sha256,
            tts_text=tts.text if tts else None,
            tts_voice=tts.voice if tts else None,
            tts_spoken=getattr(record, "spoken", None),
            tts_engine=getattr(record, "engine", None),
            created_at=now,
            created_by=username,
            commune_id=commune_id,
        )
        session.add(item)
        session.flush()
    return item


def add_upload(
    session: Session,
    *,
    lib: MediaLibrary,
    data: bytes,
    filename: str,
    title: str,
    username: str,
    commune_id: int | None,
    now: datetime,
) -> MediaItem:
    """Validate, convert and store an upload of ``commune_id`` (the uploader's; ``None``: the
    province library); :class:`Invalid` with the Vietnamese reason if it is refused (then
    nothing is stored)."""
    try:
        record = lib.add_bytes(data, filename or "upload")
    except MediaError as exc:
        raise Invalid(exc.message) from None
    return _row(session, record, title=title or filename, username=username, commune_id=commune_id, now=now)


def add_tts(
    session: Session,
    *,
    lib: MediaLibrary,
    settings: TtsSettings,
    request: TtsRequest,
    title: str,
    username: str,
    commune_id: int | None,
    now: datetime,
) -> MediaItem:
    try:
        record = Tts(lib, settings).render(request, lexicon=lexicon(session))
    except MediaError as exc:
        raise Invalid(exc.message) from None
    return _row(session, record, title=title or request.text[:80], username=username, commune_id=commune_id,
                now=now, tts=request)


def list_media(session: Session, *, viewer: Tenant) -> list[MediaItem]:
    """The files ``viewer`` uses: their commune's and the province library's, newest first."""
    seen = visible_clause(viewer, MediaItem.commune_id, shared=True)
    return list(session.scalars(select(MediaItem).where(seen).order_by(MediaItem.created_at.desc())))


def get_media(session: Session, *, viewer: Tenant, sha256: str) -> MediaItem:
    """A file ``viewer`` uses (``NotFound`` for another commune's, as for none)."""
    item = session.get(MediaItem, sha256)
    if item is None:
        raise NotFound(f"Không có tệp âm thanh {sha256[:12]}")
    require_reach(viewer, item.commune_id, what=f"Tệp âm thanh {sha256[:12]}", shared=True)
    return item


def delete_media(session: Session, *, actor: Actor, lib: MediaLibrary, sha256: str,
                 now: datetime | None = None) -> None:
    """Delete a file no broadcast ever used; one that was used stays, with the broadcasts'
    delivery reports and audit (archive the broadcast instead). A province library file is
    deleted by province users only."""
    item = get_media(session, viewer=actor, sha256=sha256)
    if not reaches(actor, item.commune_id):
        raise Forbidden("Tệp trong thư viện cấp tỉnh chỉ tài khoản cấp tỉnh được xóa.")
    used = session.scalar(select(Broadcast.id).where(Broadcast.media_sha256 == sha256).limit(1))
    if used is not None:
        raise Conflict(f"Tệp âm thanh đã được dùng cho bản tin #{used}; được giữ lại cùng kết quả phát.")
    audit.record(session, actor=actor, action="media.delete", subject=f"media:{sha256}", at=now,
                 details={"title": item.title, "duration_s": item.duration_s, "created_by": item.created_by},
                 commune_id=item.commune_id)
    session.delete(item)
    session.flush()
    lib.path_for(sha256).unlink(missing_ok=True)


# -- node tokens ---------------------------------------------------------------------------
def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_node_token(session: Session, *, actor: Actor, node_id: str, now: datetime) -> str:
    """A new token for the node (replacing its old one); returned once, stored as a hash, and
    audited without it. Another commune's node does not exist for a commune user."""
    node = session.get(Node, node_id)
    if node is None or not reaches(actor, node.commune_id):
        raise NotFound(f"Không có nút {node_id!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = session.get(NodeMediaToken, node_id)
    if row is None:
        session.add(NodeMediaToken(node_id=node_id, token_sha256=_digest(token), created_at=now))
    else:
        row.token_sha256, row.created_at = _digest(token), now
    session.flush()
    audit.record(session, actor=actor, action="node_token.issue", subject=f"node:{node_id}", at=now,
                 details={"replaced": row is not None})
    return token


def revoke_node_token(session: Session, *, actor: Actor, node_id: str, now: datetime | None = None) -> None:
    node = session.get(Node, node_id)
    if node is not None and not reaches(actor, node.commune_id):
        raise NotFound(f"Không có nút {node_id!r}")
    gone = session.execute(delete(NodeMediaToken).where(NodeMediaToken.node_id == node_id)).rowcount
    if gone:
        audit.record(session, actor=actor, action="node_token.revoke", subject=f"node:{node_id}", at=now)


def node_for_token(session: Session, *, token: str) -> str | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    return session.scalar(select(NodeMediaToken.node_id).where(NodeMediaToken.token_sha256 == _digest(token)))


def node_may_fetch(session: Session, *, node_id: str, sha256: str) -> bool:
    """True when an occurrence targeted at the node plays this file."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    Delivery.node_id == node_id,
                    Delivery.occurrence_id == Occurrence.id,
                    Occurrence.media_sha256 == sha256,
                )
            )
        )
    )


def check_sha(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise Invalid("Mã tệp âm thanh phải là 64 chữ số hex thường (sha256).")
    return sha256


# -- the pronunciation dictionary --------------------------------------------------------------
def lexicon(session: Session) -> Lexicon:
    """The admin's dictionary as the normaliser reads it."""
    return Lexicon({e.term: e.spoken for e in session.scalars(select(TtsLexiconEntry))})


def list_lexicon(session: Session) -> list[TtsLexiconEntry]:
    return list(session.scalars(select(TtsLexiconEntry).order_by(TtsLexiconEntry.term)))


def set_lexicon_entry(session: Session, *, actor: Actor, term: str, spoken: str,
                      now: datetime) -> TtsLexiconEntry:
    """Add or change how a term is read out (province admins; audited). Renders made before keep
    their audio."""
    require(actor, TTS_LEXICON_EDITORS)
    require_province(actor)
    try:
        term, spoken = check_entry(term, spoken)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    row = session.scalar(select(TtsLexiconEntry).where(TtsLexiconEntry.term == term))
    before = {"spoken": row.spoken} if row is not None else {}
    if row is None:
        row = TtsLexiconEntry(term=term, spoken=spoken, updated_at=now, updated_by=actor.username)
        session.add(row)
    row.spoken, row.updated_at, row.updated_by = spoken, now, actor.username
    session.flush()
    audit.record(session, actor=actor, action="tts.lexicon", subject=f"lexicon:{term}", at=now,
                 details=audit.changes(before, {"spoken": spoken}))
    return row


def delete_lexicon_entry(session: Session, *, actor: Actor, term: str, now: datetime) -> None:
    require(actor, TTS_LEXICON_EDITORS)
    require_province(actor)
    row = session.scalar(select(TtsLexiconEntry).where(TtsLexiconEntry.term == term.strip()))
    if row is None:
        raise NotFound(f"Từ điển phát âm không có “{term.strip()[:64]}”")
    audit.record(session, actor=actor, action="tts.lexicon_delete", subject=f"lexicon:{row.term}", at=now,
                 details={"spoken": row.spoken})
    session.delete(row)
    session.flush()


# -- listen-through ------------------------------------------------------------------------------
LISTEN_SLACK = 0.9
"""A listen counts once this share of the file's duration has passed since the hub first
served the file to that user (a player that reports the end sooner did not play it through)."""


def record_fetch(session: Session, *, sha256: str, username: str, now: datetime) -> None:
    """The hub served the file to ``username`` (the preview the browser plays); the first time counts."""
    row = session.scalar(select(MediaListen).where(MediaListen.sha256 == sha256,
                                                   MediaListen.username == username))
    if row is None:
        try:
            with session.begin_nested():  # the browser's parallel range requests may race here
                session.add(MediaListen(sha256=sha256, username=username, fetched_at=now))
        except IntegrityError:
            pass


def record_listened(session: Session, *, actor: Actor, sha256: str, now: datetime) -> MediaListen:
    """The user's player reached the end of the file. Refused when the hub never served the
    file to them, or served it less than the file's length ago."""
    item = get_media(session, viewer=actor, sha256=sha256)
    row = session.scalar(select(MediaListen).where(MediaListen.sha256 == sha256,
                                                   MediaListen.username == actor.username))
    if row is None:
        raise Invalid("Chưa mở bản ghi này để nghe; hãy bấm nghe trên trang.")
    if row.listened_at is None:
        heard_s = (now - row.fetched_at).total_seconds()
        if heard_s < item.duration_s * LISTEN_SLACK:
            raise Invalid(f"Chưa nghe hết: bản ghi dài {item.duration_s:.0f} giây, mới mở "
                          f"{heard_s:.0f} giây trước.")
        row.listened_at = now
        session.flush()
    return row


def listened_at(session: Session, *, sha256: str, username: str) -> datetime | None:
    return session.scalar(select(MediaListen.listened_at).where(MediaListen.sha256 == sha256,
                                                                MediaListen.username == username))


def needs_listen(session: Session, *, sha256: str, username: str) -> str | None:
    """Why ``username`` may not approve a broadcast of this file yet: a rendered (TTS) file
    they have not heard to the end; ``None`` otherwise."""
    item = session.get(MediaItem, sha256)
    if item is None or item.tts_text is None:
        return None
    if listened_at(session, sha256=sha256, username=username) is not None:
        return None
    return ("Người phê duyệt phải nghe hết bản đọc tự động (TTS) một lần trước khi phê duyệt, để chắc máy "
            "đọc đúng tên, số và giờ.")
