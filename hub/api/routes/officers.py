"""Officers (cán bộ, công chức) and the duty roster (who staffs which counter when).

The roster is a weekly pattern per counter and its exceptions (leave, swaps, one-off days).
Every change answers how many stored ratings change officer; with ``?dry_run=true`` it only
says so and changes nothing (the page asks before applying the same way)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, RowId, allow
from thanthien.hub.api.retiring import add_retire_routes
from thanthien.hub.api.schemas import (
    DutyOut,
    ExceptionIn,
    ExceptionOut,
    OfficerIn,
    OfficerOut,
    OfficerUpdate,
    PatternEnd,
    PatternIn,
    PatternOut,
    RosterChangeOut,
    ShiftIn,
    ShiftOut,
)
from thanthien.hub.db.models import Officer, User
from thanthien.hub.roles import REGISTRY_EDITORS, ROSTER_EDITORS, ROSTER_READERS
from thanthien.hub.services import registry, roster

router = APIRouter(tags=["officers"])
DryRun = Annotated[bool, Query(description="Only count the stored ratings that would change officer.")]


@router.get("/officers", response_model=list[OfficerOut], dependencies=[allow(*ROSTER_READERS)],
            summary="Officers; active=true only those in service, false only the retired ones")
def list_officers(session: DbSession, actor: CurrentUser, active: bool | None = None) -> list[OfficerOut]:
    officers = registry.list_officers(session, viewer=actor, active=active)
    return [OfficerOut.model_validate(o) for o in officers]


@router.post("/officers", response_model=OfficerOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*REGISTRY_EDITORS)])
def create_officer(hub: Hub, session: DbSession, actor: CurrentUser, body: OfficerIn) -> OfficerOut:
    officer = registry.create_officer(session, actor=actor, now=hub.clock(), code=body.code,
                                      full_name=body.full_name, title=body.title, user_id=body.user_id,
                                      commune=body.commune)
    session.commit()
    return OfficerOut.model_validate(officer)


@router.patch("/officers/{officer_id}", response_model=OfficerOut, dependencies=[allow(*REGISTRY_EDITORS)])
def update_officer(hub: Hub, session: DbSession, actor: CurrentUser, officer_id: RowId,
                   body: OfficerUpdate) -> OfficerOut:
    officer = registry.update_officer(session, actor=actor, now=hub.clock(), officer_id=officer_id,
                                      full_name=body.full_name, title=body.title,
                                      user_id=body.user_id if "user_id" in body.model_fields_set else "keep")
    session.commit()
    return OfficerOut.model_validate(officer)


add_retire_routes(router, path="/officers", model=Officer, out=OfficerOut, permission=REGISTRY_EDITORS,
                  summary="Retire an officer (refused while the roster names them from today)")


@router.delete("/officers/{officer_id}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[allow(*REGISTRY_EDITORS)],
               summary="Delete an officer no rating names (retire one that has ratings)")
def delete_officer(hub: Hub, session: DbSession, actor: CurrentUser, officer_id: RowId) -> None:
    registry.delete_row(session, actor=actor, now=hub.clock(), model=Officer, ident=officer_id)
    session.commit()


# -- the weekly pattern and its exceptions -----------------------------------------------------
def _change(session: Session, actor: User, hub: Hub, change: roster.Change, dry_run: bool,
            response: Response, *, created: bool) -> RosterChangeOut:
    """Count (dry run) or make a roster change; 201 for a new row that was made."""
    if dry_run:
        return RosterChangeOut.of(roster.preview(session, change), dry_run=True)
    applied = roster.apply(session, change, actor=actor, now=hub.clock())
    session.commit()
    if created:
        response.status_code = status.HTTP_201_CREATED
    return RosterChangeOut.of(applied.impact, dry_run=False, applied=applied)


@router.get("/roster/patterns", response_model=list[PatternOut], dependencies=[allow(*ROSTER_READERS)],
            summary="The weekly pattern (of a counter; rows still valid on `on`)")
def list_patterns(session: DbSession, actor: CurrentUser, counter: str | None = None,
                  on: date | None = None) -> list[PatternOut]:
    return [PatternOut.of(p) for p in roster.list_patterns(session, viewer=actor, counter=counter, on=on)]


@router.post("/roster/patterns", response_model=RosterChangeOut, dependencies=[allow(*ROSTER_EDITORS)],
             summary="Add a weekly duty; stored ratings it covers follow (dry_run: only count them)")
def add_pattern(hub: Hub, session: DbSession, actor: CurrentUser, body: PatternIn, response: Response,
                dry_run: DryRun = False) -> RosterChangeOut:
    tz = hub.settings.hub.timezone
    change = roster.new_pattern(session, actor=actor, counter=body.counter, officer_id=body.officer_id,
                                weekdays=body.weekdays, starts=body.starts, ends=body.ends,
                                valid_from=body.valid_from or roster.local_day(hub.clock(), tz),
                                valid_until=body.valid_until, tz=tz)
    return _change(session, actor, hub, change, dry_run, response, created=True)


@router.post("/roster/patterns/{pattern_id}/end", response_model=RosterChangeOut,
             dependencies=[allow(*ROSTER_EDITORS)],
             summary="End a weekly duty after a day (dry_run: only count)")
def end_pattern(hub: Hub, session: DbSession, actor: CurrentUser, pattern_id: RowId, body: PatternEnd,
                response: Response, dry_run: DryRun = False) -> RosterChangeOut:
    change = roster.end_pattern(session, actor=actor, pattern_id=pattern_id, last_day=body.last_day)
    return _change(session, actor, hub, change, dry_run, response, created=False)


@router.get("/roster/exceptions", response_model=list[ExceptionOut], dependencies=[allow(*ROSTER_READERS)],
            summary="Leave, swaps and one-off days overlapping [start, end) (of a counter, with every leave)")
def list_exceptions(session: DbSession, actor: CurrentUser, counter: str | None = None,
                    start: AwareDatetime | None = None,
                    end: AwareDatetime | None = None) -> list[ExceptionOut]:
    return [ExceptionOut.model_validate(e)
            for e in roster.list_exceptions(session, viewer=actor, counter=counter, start=start, end=end)]


@router.post("/roster/exceptions", response_model=RosterChangeOut, dependencies=[allow(*ROSTER_EDITORS)],
             summary="Add leave, a swap or a one-off day (dry_run: only count the ratings it moves)")
def add_exception(hub: Hub, session: DbSession, actor: CurrentUser, body: ExceptionIn, response: Response,
                  dry_run: DryRun = False) -> RosterChangeOut:
    change = roster.new_exception(session, actor=actor, kind=body.kind, officer_id=body.officer_id,
                                  counter=body.counter, starts_at=body.starts_at, ends_at=body.ends_at,
                                  note=body.note, tz=hub.settings.hub.timezone)
    return _change(session, actor, hub, change, dry_run, response, created=True)


@router.delete("/roster/exceptions/{exception_id}", response_model=RosterChangeOut,
               dependencies=[allow(*ROSTER_EDITORS)], summary="Remove an exception (dry_run: only count)")
def drop_exception(hub: Hub, session: DbSession, actor: CurrentUser, exception_id: RowId, response: Response,
                   dry_run: DryRun = False) -> RosterChangeOut:
    change = roster.drop_exception(session, actor=actor, exception_id=exception_id)
    return _change(session, actor, hub, change, dry_run, response, created=False)


@router.get("/roster/duty", response_model=list[DutyOut], dependencies=[allow(*ROSTER_READERS)],
            summary="Who is on duty at each counter in service over [start, end) (default: the next 7 days)")
def duty(hub: Hub, session: DbSession, actor: CurrentUser, counter: str | None = None,
         start: AwareDatetime | None = None, end: AwareDatetime | None = None) -> list[DutyOut]:
    start = start or hub.clock()
    end = end or start + timedelta(days=7)
    codes = [counter] if counter else \
        [c.code for c in registry.list_counters(session, viewer=actor, active=True)]
    return [DutyOut(counter=d.counter, starts_at=d.starts_at, ends_at=d.ends_at, officer_id=d.officer_id,
                    source=d.source, replaces_officer_id=d.replaces)  # type: ignore[arg-type]
            for d in roster.duties(session, viewer=actor, counters=codes, start=start, end=end,
                                   days_in=hub.settings.hub.timezone)]


# -- one-off days (the roster's shifts before the weekly pattern) -------------------------------
@router.get("/roster", response_model=list[ShiftOut], dependencies=[allow(*ROSTER_READERS)],
            summary="One-off days (extra exceptions)")
def list_roster(session: DbSession, actor: CurrentUser, counter: str | None = None,
                start: AwareDatetime | None = None, end: AwareDatetime | None = None) -> list[ShiftOut]:
    return [ShiftOut.model_validate(e)
            for e in registry.list_roster(session, viewer=actor, counter=counter, start=start, end=end)]


@router.post("/roster", response_model=ShiftOut, status_code=status.HTTP_201_CREATED,
             dependencies=[allow(*ROSTER_EDITORS)], summary="Put an officer on duty; stored ratings follow")
def add_shift(hub: Hub, session: DbSession, actor: CurrentUser, body: ShiftIn) -> ShiftOut:
    entry = registry.add_shift(session, actor=actor, now=hub.clock(), officer_id=body.officer_id,
                               counter=body.counter, starts_at=body.starts_at, ends_at=body.ends_at)
    session.commit()
    return ShiftOut.model_validate(entry)


@router.delete("/roster/{entry_id}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[allow(*ROSTER_EDITORS)])
def remove_shift(hub: Hub, session: DbSession, actor: CurrentUser, entry_id: RowId) -> None:
    registry.remove_shift(session, actor=actor, now=hub.clock(), entry_id=entry_id)
    session.commit()
