"""Proof of play: did the people hear the broadcast a speaker says it played?

A speaker reports, with each finished or interrupted playback, the level of what it sent to
the amplifier (RMS per second of its output) and, where a microphone or a line-in loopback is
fitted, the level it heard over the same seconds (``PlaybackEvent.levels``). This module is the
one place that judges them:

* ``silent``: the output itself was (almost) silent: a silent or broken file, a dead relay
  stream, a volume at 0. "Đã phát nhưng không có tiếng."
* ``unheard``: the output carried sound but the loopback heard (almost) none of it: the
  amplifier is off or dead, a cable or a horn is cut. "Ampli bật nhưng không nghe thấy tiếng."
* ``ok``: otherwise. A node that reports no levels (an older agent) is not judged (``None``).

A judged delivery keeps its verdict in the delivery report. ``silent`` and ``unheard`` raise
the ``speaker_silent`` alarm of the node (major); the node's next playback judged ``ok`` clears it.
The thresholds are the hub config's ``[proof]`` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import Field
from sqlalchemy.orm import Session

from thanthien.config import Section
from thanthien.hub.services import alarms
from thanthien.protocol.payloads import PlayLevels

ALARM_KIND = "speaker_silent"
Verdict = Literal["ok", "silent", "unheard"]
LABELS: dict[str, str] = {"ok": "nghe rõ", "silent": "phát nhưng không có tiếng",
                          "unheard": "ampli bật nhưng không nghe thấy tiếng"}


class ProofSettings(Section):
    """The ``[proof]`` table of the hub config: when a playback counts as silent or unheard."""

    silence_dbfs: float = Field(
        -50.0, ge=-120, le=0, description="A second sent to the amplifier below this level (dBFS) is silent.")
    silent_share: float = Field(
        0.9, gt=0, le=1, description="A playback whose seconds were silent in at least this share was "
                                     "'played but silent'.")
    heard_dbfs: float = Field(
        -45.0, ge=-120, le=0,
        description="A second the microphone/loopback picked up above this level (dBFS) was heard.")
    heard_share: float = Field(
        0.5, gt=0, le=1, description="Fewer of the audible seconds heard than this share: 'amplifier on, "
                                     "nothing heard'.")


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    detail: str


def judge(levels: PlayLevels, cfg: ProofSettings) -> Judgement:
    sent = levels.sent_dbfs
    if not sent:
        return Judgement("silent", "không có âm thanh nào được gửi ra ampli")
    audible = [i for i, v in enumerate(sent) if v >= cfg.silence_dbfs]
    loudest = max(sent)
    if len(sent) - len(audible) >= cfg.silent_share * len(sent) - 1e-9:
        return Judgement("silent", f"âm thanh gửi ra ampli im lặng {len(sent) - len(audible)}/{len(sent)} "
                                   f"đoạn (mức cao nhất {loudest:.0f} dBFS)")
    heard = levels.heard_dbfs
    if heard is None:
        return Judgement("ok", f"gửi ra ampli {len(audible)}/{len(sent)} đoạn có tiếng; "
                               "không có micro kiểm tra")
    picked = [i for i in audible if i < len(heard) and heard[i] >= cfg.heard_dbfs]
    if len(picked) < cfg.heard_share * len(audible):
        top = max(heard, default=-120.0)
        return Judgement("unheard", f"micro chỉ nghe thấy {len(picked)}/{len(audible)} đoạn có tiếng "
                                    f"(mức cao nhất {top:.0f} dBFS)")
    return Judgement("ok", f"micro nghe thấy {len(picked)}/{len(audible)} đoạn có tiếng")


class Judged(Protocol):
    """What a judgement is written into: a delivery (its ORM row, or the ingest's plain row)."""

    proof: str | None
    proof_detail: str
    levels: dict[str, Any] | None


def apply(d: Judged, levels: PlayLevels, cfg: ProofSettings) -> Judgement:
    """Judge the levels into the delivery row."""
    j = judge(levels, cfg)
    d.proof, d.proof_detail = j.verdict, j.detail[:300]
    d.levels = levels.model_dump(mode="json")
    return j


def follow_alarm(session: Session, *, node_id: str, title: str, judgement: Judgement, now: datetime,
                 notify: bool) -> None:
    """The node's ``speaker_silent`` alarm follows its latest judged playback."""
    if judgement.verdict == "ok":
        alarms.clear_alarm(session, kind=ALARM_KIND, subject=node_id, now=now, notify=notify)
        return
    message = f"Cụm loa {node_id}: bản tin “{title}” {LABELS[judgement.verdict]} ({judgement.detail})"
    alarms.raise_alarm(session, kind=ALARM_KIND, subject=node_id, severity="major", message=message[:500],
                       now=now, notify=notify, details={"verdict": judgement.verdict, "title": title[:200]})
