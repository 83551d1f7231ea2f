"""Relays (tiếp sóng): a broadcast that plays the district or province station's stream
(Icecast/HTTP audio URL) for its slot, as Thông tư 39/2020 has the commune station relay the
higher stations' programmes.

A relay is a broadcast with ``stream_url``, ``slot_s`` (how long the speakers relay it) and
``stream_fallback``: ``file`` (the broadcast's file plays once the stream dies or goes silent)
or ``silence``. It is scheduled, approved and reported like any broadcast; each node watches
the stream itself (``edge/speaker/stream.py``) and reports what really went out
(``Delivery.sources``). Every broadcast names a file in the library, so a relay falling back to
silence names the library's one second of silence (:func:`silence_media`), made on first use.
"""

from __future__ import annotations

import hashlib
import io
import re
import wave
from datetime import datetime

from sqlalchemy.orm import Session

from thanthien.hub.db.models import MediaItem
from thanthien.hub.services.errors import Invalid
from thanthien.hub.services.media import MediaLibrary

URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
MIN_SLOT_S = 10.0
MAX_SLOT_S = 4 * 3600.0
SILENCE_TITLE = "Im lặng (tiếp sóng dự phòng)"
FALLBACK_LABELS = {"file": "phát tệp dự phòng", "silence": "im lặng"}


def check(stream_url: str | None, fallback: str, slot_s: float | None, media_sha256: str | None) -> None:
    """Invalid with the reason if the relay fields do not fit together (nothing for a plain broadcast)."""
    if stream_url is None:
        if slot_s is not None:
            raise Invalid("Chỉ bản tin tiếp sóng mới có thời lượng khung giờ.")
        return
    if len(stream_url) > 500 or not URL.match(stream_url):
        raise Invalid("Địa chỉ luồng tiếp sóng phải là http:// hoặc https:// (ví dụ http://dai-tinh.vn:8000/vov1).")
    if slot_s is None or not MIN_SLOT_S <= slot_s <= MAX_SLOT_S:
        raise Invalid(f"Thời lượng tiếp sóng phải từ {MIN_SLOT_S:.0f} giây đến {MAX_SLOT_S / 3600:.0f} giờ.")
    if fallback == "file" and media_sha256 is None:
        raise Invalid("Chọn tệp dự phòng phát khi luồng tiếp sóng mất tín hiệu, hoặc chọn dự phòng im lặng.")


def _silent_wav(seconds: float = 1.0, rate: int = 22050) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(2 * int(seconds * rate)))
    return buf.getvalue()


def silence_media(session: Session, *, lib: MediaLibrary, now: datetime) -> str:
    """The sha256 of the library's second of silence (stored as is: loudness normalisation has
    nothing to work on)."""
    data = _silent_wav()
    sha = hashlib.sha256(data).hexdigest()
    path = lib.path_for(sha)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    if session.get(MediaItem, sha) is None:
        session.add(MediaItem(sha256=sha, title=SILENCE_TITLE, duration_s=1.0, size_bytes=len(data),
                              source_format="wav", source_sha256=sha, created_at=now, created_by="system"))
        session.flush()
    return sha
