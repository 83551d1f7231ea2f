"""The duty roster (Lịch trực): who is on duty now at each counter and over a week; the weekly
pattern of a counter and its exceptions (leave, swaps, one-off days), edited by admins.

A change that moves stored ratings to another officer is counted first (``roster.preview``)
and shown with the question; only a confirmed form applies it (``roster.apply``, which refuses
when the count is no longer the one shown). The rules are ``services/roster.py``'s."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from thanthien.hub.api.deps import RowId
from thanthien.hub.roles import ROSTER_EDITORS, ROSTER_READERS, may
from thanthien.hub.services import registry, roster
from thanthien.hub.services.errors import Invalid, ServiceError
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

Reader = Annotated[UiUser, Depends(Require(*ROSTER_READERS))]
Editor = Annotated[UiUser, Depends(Require(*ROSTER_EDITORS))]
Text = Annotated[str, Form()]
KIND_LABELS = {"leave": "Nghỉ phép", "swap": "Đổi ca", "extra": "Ca đột xuất"}
SOURCE_LABELS = {"pattern": "Lịch tuần", "swap": "Đổi ca", "extra": "Ca đột xuất", "leave": "Nghỉ phép"}


def _back(counter: str, week: str = "") -> str:
    query = "&".join(f"{k}={v}" for k, v in (("counter", counter), ("week", week)) if v)
    return "/ui/roster" + (f"?{query}" if query else "")


@router.get("/roster", response_class=HTMLResponse)
def roster_page(request: Request, user: Reader, counter: str = "", week: str = "") -> Response:
    hub = hub_of(request)
    tz, now = hub.settings.hub.timezone, hub.clock()
    today = roster.local_day(now, tz)
    try:
        day = roster.parse_day(week) if week else today
        roster.check_days(day)
    except Invalid:
        day = today
    monday = day - timedelta(days=day.isoweekday() - 1)
    days = [monday + timedelta(days=i) for i in range(7)]
    with hub.db.new_session(write=False) as session:
        counters = registry.list_counters(session, viewer=user, active=True)
        chosen = next((c for c in counters if c.code == counter), counters[0] if counters else None)
        codes = [c.code for c in counters]
        start, end = roster.local_span(monday, days[-1], None, None, tz)
        week_duties = roster.duties(session, viewer=user, counters=[chosen.code], start=start, end=end,
                                    days_in=tz) if chosen else []
        by_day: dict[date, list[roster.Duty]] = {d: [] for d in days}
        for duty in week_duties:
            by_day.setdefault(roster.local_day(duty.starts_at, tz), []).append(duty)
        officers = registry.list_officers(session, viewer=user)
        context = {
            "counters": counters, "chosen": chosen, "days": days, "by_day": by_day, "today": today,
            "now_on": {d.counter: d for d in roster.duties(session, viewer=user, counters=codes, start=now,
                                                           end=now + timedelta(days=14))
                       if d.starts_at == now},
            "patterns": roster.list_patterns(session, viewer=user, counter=chosen.code, on=monday)
            if chosen else [],
            "exceptions": roster.list_exceptions(session, viewer=user, counter=chosen.code, start=start)
            if chosen else [],
            "officers": officers, "names": {o.id: o.full_name for o in officers},
            "counter_names": {c.id: c.name for c in registry.list_counters(session, viewer=user)},
            "editor": may(user, ROSTER_EDITORS), "weekday_names": roster.WEEKDAY_NAMES,
            "kind_labels": KIND_LABELS, "source_labels": SOURCE_LABELS, "hhmm": roster.hhmm,
            "prev_week": (monday - timedelta(days=7)).isoformat(),
            "next_week": (monday + timedelta(days=7)).isoformat(),
            "monday": monday, "ends_label": lambda at: _ends_label(at, today, tz),
        }
        return render(request, "roster.html", context, user=user)


def _ends_label(at: datetime, today: date, tz: str) -> str:
    """``17:00``, ``24:00`` for midnight, with the date when it is not today."""
    local = at.astimezone(ZoneInfo(tz))
    midnight = local.time() == time()
    day = (local - timedelta(days=1)).date() if midnight else local.date()
    label = "24:00" if midnight else local.strftime("%H:%M")
    return label if day == today else f"{label} {day:%d/%m/%Y}"


def _change(request: Request, user: UiUser, *, back: str, fields: list[tuple[str, str]], action: str,
            build: Callable[[Session], roster.Change], confirm: str, expected: str) -> Response:
    """Count what the change moves; ask when stored ratings change officer, else (or once
    confirmed) apply it and come back to the roster."""
    hub = hub_of(request)
    moved = 0
    try:
        with hub.db.session() as session:
            change = build(session)
            if confirm != "1":
                impact = roster.preview(session, change)
                if impact.count:
                    names = {o.id: o.full_name for o in registry.list_officers(session, viewer=user)}
                    moves = [(names.get(a, "không ai") if a else "không ai",
                              names.get(b, "không ai") if b else "không ai", n) for a, b, n in impact.moves()]
                    question = {"count": impact.count, "moves": moves, "fields": fields, "action": action,
                                "back": back}
                else:
                    question = None
                    roster.apply(session, change, actor=user, now=hub.clock(), expected=0)
            else:
                question = None
                count = int(expected) if expected.isdigit() else None
                applied = roster.apply(session, change, actor=user, now=hub.clock(), expected=count)
                moved = applied.impact.count
    except ServiceError as exc:
        return flash.refused(back, exc)
    if question is not None:
        return render(request, "roster_confirm.html", question, user=user)
    if confirm == "1" and moved:
        return flash.redirect(back, message=f"Đã lưu lịch trực; {moved} lượt đánh giá đã lưu được ghi lại "
                                            "cho đúng cán bộ trực.")
    return flash.redirect(back, message="Đã lưu lịch trực.")


def _officer_id(value: str) -> int:
    if not value.isdigit():
        raise Invalid("Chọn cán bộ.")
    return int(value)


@router.post("/roster/patterns", dependencies=[Csrf], response_class=HTMLResponse)
def add_pattern(request: Request, user: Editor, counter: Text = "", officer_id: Text = "",
                weekdays: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies the default)
                starts: Text = "", ends: Text = "", valid_from: Text = "", valid_until: Text = "",
                confirm: Text = "", expected: Text = "") -> Response:
    hub = hub_of(request)
    tz = hub.settings.hub.timezone
    back = _back(counter)
    fields = [("counter", counter), ("officer_id", officer_id), *[("weekdays", w) for w in weekdays],
              ("starts", starts), ("ends", ends), ("valid_from", valid_from), ("valid_until", valid_until)]

    def build(session: Session) -> roster.Change:
        days = [int(w) for w in weekdays if w.isdigit()]
        return roster.new_pattern(session, actor=user, counter=counter, officer_id=_officer_id(officer_id),
                                  weekdays=days, starts=starts, ends=ends,
                                  valid_from=roster.parse_day(valid_from) if valid_from
                                  else roster.local_day(hub.clock(), tz),
                                  valid_until=roster.parse_day(valid_until) if valid_until else None, tz=tz)
    return _change(request, user, back=back, fields=fields, action="/ui/roster/patterns", build=build,
                   confirm=confirm, expected=expected)


@router.post("/roster/patterns/{pattern_id}/end", dependencies=[Csrf], response_class=HTMLResponse)
def end_pattern(request: Request, user: Editor, pattern_id: RowId, counter: Text = "", last_day: Text = "",
                confirm: Text = "", expected: Text = "") -> Response:
    back = _back(counter)
    fields = [("counter", counter), ("last_day", last_day)]

    def build(session: Session) -> roster.Change:
        return roster.end_pattern(session, actor=user, pattern_id=pattern_id,
                                  last_day=roster.parse_day(last_day))
    return _change(request, user, back=back, fields=fields, action=f"/ui/roster/patterns/{pattern_id}/end",
                   build=build, confirm=confirm, expected=expected)


@router.post("/roster/exceptions", dependencies=[Csrf], response_class=HTMLResponse)
def add_exception(request: Request, user: Editor, kind: Text = "", officer_id: Text = "", counter: Text = "",
                  first_day: Text = "", starts: Text = "", last_day: Text = "", ends: Text = "",
                  note: Text = "", confirm: Text = "", expected: Text = "") -> Response:
    hub = hub_of(request)
    tz = hub.settings.hub.timezone
    back = _back(counter)
    fields = [("kind", kind), ("officer_id", officer_id), ("counter", counter), ("first_day", first_day),
              ("starts", starts), ("last_day", last_day), ("ends", ends), ("note", note)]

    def build(session: Session) -> roster.Change:
        first = roster.parse_day(first_day)
        a, b = roster.local_span(first, roster.parse_day(last_day) if last_day else None, starts or None,
                                 ends or None, tz)
        return roster.new_exception(session, actor=user, kind=kind, officer_id=_officer_id(officer_id),
                                    counter=counter or None, starts_at=a, ends_at=b, note=note, tz=tz)
    return _change(request, user, back=back, fields=fields, action="/ui/roster/exceptions", build=build,
                   confirm=confirm, expected=expected)


@router.post("/roster/exceptions/{exception_id}/remove", dependencies=[Csrf], response_class=HTMLResponse)
def remove_exception(request: Request, user: Editor, exception_id: RowId, counter: Text = "",
                     confirm: Text = "", expected: Text = "") -> Response:
    def build(session: Session) -> roster.Change:
        return roster.drop_exception(session, actor=user, exception_id=exception_id)
    return _change(request, user, back=_back(counter), fields=[("counter", counter)],
                   action=f"/ui/roster/exceptions/{exception_id}/remove", build=build, confirm=confirm,
                   expected=expected)
