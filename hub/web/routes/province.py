"""The province's page (issue 20): every commune side by side, satisfaction, device health,
fault times and broadcasts per week, and its XLSX for the quarterly report. Province leaders
and admins only (``services/province.py`` refuses a commune user)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from thanthien.hub.api.responses import attachment
from thanthien.hub.roles import REPORT_READERS
from thanthien.hub.services import province
from thanthien.hub.web import periods
from thanthien.hub.web.auth import Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

ProvinceUser = Annotated[UiUser, Depends(Require(*REPORT_READERS))]
PATH = "/ui/province"


def _spans(request: Request, start: str | None, end: str | None) -> tuple[periods.Period, list[province.Span],
                                                                          list[str]]:
    hub = hub_of(request)
    tz = hub.settings.hub.timezone
    day = periods.today(hub.clock(), tz)
    default = periods.Period(periods.quarter_of(day, tz).first, day, tz)
    errors = []
    try:
        period = periods.parse(start, end, default=default, label="kỳ báo cáo")
    except periods.PeriodError as exc:
        errors.append(str(exc))
        period = default
    rounds = [province.Span(f"đợt {p.first:%m/%Y}", p.start, p.end) for p in periods.survey_rounds(day, tz)]
    return period, rounds, errors


def _overview(request: Request, user: UiUser, period: periods.Period,
              rounds: list[province.Span]) -> province.Overview:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        span = province.Span(period.label, period.start, period.end)
        return province.overview(session, viewer=user, period=span, rounds=rounds, now=hub.clock(),
                                 tz=hub.settings.hub.timezone)


@router.get("/province", response_class=HTMLResponse)
def province_page(request: Request, user: ProvinceUser, start: str | None = None,
                  end: str | None = None) -> Response:
    period, rounds, errors = _spans(request, start, end)
    view = _overview(request, user, period, rounds)
    hub = hub_of(request)
    day = periods.today(hub.clock(), hub.settings.hub.timezone)
    return render(request, "province.html", {"view": view, "period": period, "errors": errors,
                                             "presets": periods.presets(day, hub.settings.hub.timezone)},
                  user=user)


@router.get("/province/export")
def export(request: Request, user: ProvinceUser, start: str | None = None,
           end: str | None = None) -> Response:
    period, rounds, _errors = _spans(request, start, end)
    view = _overview(request, user, period, rounds)
    return attachment(province.export_xlsx(view, title="Tổng hợp các xã/phường",
                                           name=f"tong-hop-cac-xa-{period.first:%Y%m%d}-{period.last:%Y%m%d}"))
