"""Broadcast rules (volume by the hour, daily minutes, allowed slots) of the commune, a zone
or one speaker; the minutes each zone plays per day; the TTS pronunciation dictionary and
the listen-through of a rendered file. The services decide (``services/zone_rules.py``,
``services/media_items.py``); these routes translate.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, allow
from thanthien.hub.context import HubContext
from thanthien.hub.roles import (
    BROADCAST_EDITORS,
    BROADCAST_READERS,
    BROADCAST_RULE_EDITORS,
    REGISTRY_READERS,
    TTS_LEXICON_EDITORS,
)
from thanthien.hub.services import media_items, zone_rules
from thanthien.hub.services.errors import Invalid
from thanthien.hub.services.tts import Tts
from thanthien.hub.services.zone_rules import RuleSpec

router = APIRouter(tags=["broadcast rules"])

RULE_READERS = tuple(dict.fromkeys((*REGISTRY_READERS, *BROADCAST_RULE_EDITORS)))


class RuleOut(BaseModel):
    scope: str = Field(description="commune, zone:<id> or speaker:<device id>.")
    label: str
    rule: RuleSpec = Field(description="This level's own rule (null parts are inherited).")


class RuleChangeOut(RuleOut):
    back_to_draft: list[int] = Field(description="Approved broadcasts that broke the new rule: drafts again.")
    reasons: dict[str, str]


class ZoneMinutesOut(BaseModel):
    zone: str
    name: str
    daily_minutes: int | None = Field(description="The zone's cap (its own or the commune's), if any.")
    minutes: dict[date, float] = Field(
        description="Local day -> minutes of approved, non-emergency broadcasts.")


def _tz(hub: HubContext) -> ZoneInfo:
    return ZoneInfo(hub.settings.hub.timezone)


def _get(session: DbSession, where: zone_rules.Scope) -> RuleOut:
    return RuleOut(scope=where.key, label=where.label, rule=zone_rules.get_rule(session, where))


def _put(hub: HubContext, session: DbSession, actor: CurrentUser, where: zone_rules.Scope,
         body: RuleSpec) -> RuleChangeOut:
    change = zone_rules.set_rule(session, actor=actor, where=where, spec=body, now=hub.clock(), tz=_tz(hub),
                                 cfg=hub.settings.broadcasts)
    session.commit()
    return RuleChangeOut(scope=where.key, label=where.label, rule=change.rule,
                         back_to_draft=[i for i, _, _ in change.back_to_draft],
                         reasons={str(i): why for i, _, why in change.back_to_draft})


COMMUNE_QUERY = Query(None, description="A province user: the commune's code (default: the only one).")


@router.get("/broadcast-rules", response_model=RuleOut, dependencies=[allow(*RULE_READERS)],
            summary="The commune's rule (what zones inherit): the caller's commune's")
def commune_rule(session: DbSession, actor: CurrentUser, commune: str | None = COMMUNE_QUERY) -> RuleOut:
    return _get(session, zone_rules.scope(session, viewer=actor, commune=commune))


@router.put("/broadcast-rules", response_model=RuleChangeOut, dependencies=[allow(*BROADCAST_RULE_EDITORS)])
def set_commune_rule(hub: Hub, session: DbSession, actor: CurrentUser, body: RuleSpec,
                     commune: str | None = COMMUNE_QUERY) -> RuleChangeOut:
    return _put(hub, session, actor, zone_rules.scope(session, viewer=actor, commune=commune), body)


@router.get("/zones/{code}/broadcast-rules", response_model=RuleOut, dependencies=[allow(*RULE_READERS)])
def zone_rule(session: DbSession, actor: CurrentUser, code: str) -> RuleOut:
    return _get(session, zone_rules.scope(session, viewer=actor, zone=code))


@router.put("/zones/{code}/broadcast-rules", response_model=RuleChangeOut,
            dependencies=[allow(*BROADCAST_RULE_EDITORS)])
def set_zone_rule(hub: Hub, session: DbSession, actor: CurrentUser, code: str,
                  body: RuleSpec) -> RuleChangeOut:
    return _put(hub, session, actor, zone_rules.scope(session, viewer=actor, zone=code), body)


@router.get("/nodes/{node_id}/broadcast-rules", response_model=RuleOut, dependencies=[allow(*RULE_READERS)],
            summary="A speaker's override of its zone's rule")
def speaker_rule(session: DbSession, actor: CurrentUser, node_id: str) -> RuleOut:
    return _get(session, zone_rules.scope(session, viewer=actor, node=node_id))


@router.put("/nodes/{node_id}/broadcast-rules", response_model=RuleChangeOut,
            dependencies=[allow(*BROADCAST_RULE_EDITORS)])
def set_speaker_rule(hub: Hub, session: DbSession, actor: CurrentUser, node_id: str,
                     body: RuleSpec) -> RuleChangeOut:
    return _put(hub, session, actor, zone_rules.scope(session, viewer=actor, node=node_id), body)


@router.get("/broadcasts/zone-minutes", response_model=list[ZoneMinutesOut],
            dependencies=[allow(*BROADCAST_READERS)], summary="Minutes each zone plays per local day")
def zone_minutes(hub: Hub, session: DbSession, actor: CurrentUser, start: date | None = None,
                 days: int = Query(7, ge=1, le=62)) -> list[ZoneMinutesOut]:
    tz = _tz(hub)
    first = start or hub.clock().astimezone(tz).date()
    if not 2000 <= first.year <= 2200:
        raise Invalid("Ngày phải nằm trong các năm 2000–2200")
    lo = datetime.combine(first, time(0), tz)
    rows = zone_rules.zone_minutes(session, viewer=actor, start=lo, end=lo + timedelta(days=days), tz=tz)
    return [ZoneMinutesOut(zone=r.zone_code, name=r.zone_name, daily_minutes=r.daily_minutes,
                           minutes={d: round(m, 2) for d, m in sorted(r.minutes.items())}) for r in rows]


# -- the pronunciation dictionary and the listen-through ---------------------------------------
class LexiconIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spoken: str = Field(max_length=1000, description="How the term is read out, in Vietnamese words.")


class LexiconOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    term: str
    spoken: str
    updated_by: str = ""
    updated_at: datetime | None = None
    built_in: bool = False


class SpokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=50_000)


class SpokenOut(BaseModel):
    spoken: str = Field(description="What the engine would read: after the dictionary and the normaliser.")


class ListenOut(BaseModel):
    sha256: str
    username: str
    listened_at: datetime


@router.get("/tts/lexicon", response_model=list[LexiconOut], dependencies=[allow(*BROADCAST_EDITORS)],
            summary="The pronunciation dictionary in force: the admin's entries and the built-in ones")
def lexicon(session: DbSession) -> list[LexiconOut]:
    own = {e.term: LexiconOut.model_validate(e) for e in media_items.list_lexicon(session)}
    built = {t: LexiconOut(term=t, spoken=s, built_in=True)
             for t, s in media_items.lexicon(session).entries.items() if t not in own}
    return sorted([*own.values(), *built.values()], key=lambda e: e.term)


@router.put("/tts/lexicon/{term}", response_model=LexiconOut, dependencies=[allow(*TTS_LEXICON_EDITORS)])
def set_lexicon(hub: Hub, session: DbSession, actor: CurrentUser, term: str, body: LexiconIn) -> LexiconOut:
    row = media_items.set_lexicon_entry(session, actor=actor, term=term, spoken=body.spoken, now=hub.clock())
    session.commit()
    return LexiconOut.model_validate(row)


@router.delete("/tts/lexicon/{term}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[allow(*TTS_LEXICON_EDITORS)])
def delete_lexicon(hub: Hub, session: DbSession, actor: CurrentUser, term: str) -> None:
    media_items.delete_lexicon_entry(session, actor=actor, term=term, now=hub.clock())
    session.commit()


@router.post("/tts/spoken", response_model=SpokenOut, dependencies=[allow(*BROADCAST_EDITORS)],
             summary="What the engine would read for a text (nothing rendered or stored)")
def spoken(hub: Hub, session: DbSession, body: SpokenIn) -> SpokenOut:
    from thanthien.hub.services.media import MediaError

    try:
        text = Tts(hub.media, hub.settings.tts).spoken(body.text, media_items.lexicon(session))
    except MediaError as exc:
        raise Invalid(exc.message) from None
    return SpokenOut(spoken=text)


@router.post("/media/{sha256}/listened", response_model=ListenOut, dependencies=[allow(*BROADCAST_EDITORS)],
             summary="The caller's player reached the end of the file (after GET …/preview)")
def listened(hub: Hub, session: DbSession, actor: CurrentUser, sha256: str) -> ListenOut:
    row = media_items.record_listened(session, actor=actor, sha256=media_items.check_sha(sha256),
                                      now=hub.clock())
    session.commit()
    return ListenOut(sha256=row.sha256, username=row.username, listened_at=row.listened_at or hub.clock())
