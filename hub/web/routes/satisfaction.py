"""Satisfaction reports for leaders: today's presses live, index and counts per level by
counter and by officer over a period, the trend by week or month, two periods side by side,
and the export (the hub's report services do the counting)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from thanthien.hub.api.responses import attachment
from thanthien.hub.context import HubContext
from thanthien.hub.roles import REPORT_READERS
from thanthien.hub.services import reports
from thanthien.hub.services.ratings import RatingFilter
from thanthien.hub.services.reports import SummaryRow, Totals
from thanthien.hub.tenancy import heading
from thanthien.hub.web import charts, periods, regions
from thanthien.hub.web.auth import Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

LeaderUser = Annotated[UiUser, Depends(Require(*REPORT_READERS))]
TREND_LABELS = {"week": "theo tuần", "month": "theo tháng"}
EXPORT_GROUPS = {"counter": "theo quầy", "officer": "theo cán bộ", "week": "theo tuần", "month": "theo tháng"}


def _summary(session: Session, hub: HubContext, user: UiUser, group_by: list[reports.Dimension],
             period: periods.Period) -> list[SummaryRow]:
    return reports.summarize(session, viewer=user, group_by=group_by,
                             flt=RatingFilter(start=period.start, end=period.end),
                             tz=hub.settings.hub.timezone)


def _compare(a_rows: list[SummaryRow], b_rows: list[SummaryRow]) -> list[dict[str, Any]]:
    a = {r.key["counter"]: r for r in a_rows}
    b = {r.key["counter"]: r for r in b_rows}
    out = []
    for code in sorted(set(a) | set(b)):
        ia, ib = (a[code].index if code in a else None), (b[code].index if code in b else None)
        out.append({"counter": code, "a": a.get(code), "b": b.get(code),
                    "change": round(ib - ia, 1) if ia is not None and ib is not None else None})
    return out


@router.get("/satisfaction", response_class=HTMLResponse)
def satisfaction_page(request: Request, user: LeaderUser, start: str | None = None, end: str | None = None,
                      trend: Literal["week", "month"] = "week", a_start: str | None = None,
                      a_end: str | None = None, b_start: str | None = None,
                      b_end: str | None = None) -> Response:
    hub = hub_of(request)
    tz = hub.settings.hub.timezone
    day = periods.today(hub.clock(), tz)
    errors = []
    default = periods.Period(periods.quarter_of(day, tz).first, day, tz)
    round_a, round_b = periods.survey_rounds(day, tz)
    chosen: list[periods.Period] = []
    asked = ((start, end, default, "kỳ báo cáo"), (a_start, a_end, round_a, "kỳ thứ nhất"),
             (b_start, b_end, round_b, "kỳ thứ hai"))
    for (s, e, fallback, label) in asked:
        try:
            chosen.append(periods.parse(s, e, default=fallback, label=label))
        except periods.PeriodError as exc:
            errors.append(str(exc))
            chosen.append(fallback)
    period, period_a, period_b = chosen
    with hub.db.new_session(write=False) as session:
        by_counter = _summary(session, hub, user, ["counter"], period)
        by_officer = _summary(session, hub, user, ["officer"], period)
        trend_rows = _summary(session, hub, user, [trend], period)
        compare_a = _summary(session, hub, user, ["counter"], period_a)
        compare_b = _summary(session, hub, user, ["counter"], period_b)
        context = {
            **regions.today_context(session, hub, user),
            **regions.rating_alarms_context(session, hub, user),
            "period": period, "presets": periods.presets(day, tz), "errors": errors,
            "by_counter": by_counter, "by_officer": by_officer, "totals": Totals.of(by_counter),
            "trend": trend, "trend_labels": TREND_LABELS, "trend_rows": trend_rows,
            "trend_chart": charts.bar_chart(
                [(r.key[trend], r.index, f"{r.index:g}" if r.index is not None else "") for r in trend_rows],
                label=f"Chỉ số hài lòng {TREND_LABELS[trend]}"),
            "period_a": period_a, "period_b": period_b, "compare": _compare(compare_a, compare_b),
            "totals_a": Totals.of(compare_a), "totals_b": Totals.of(compare_b),
            "export_groups": EXPORT_GROUPS,
            "marks": regions.marks(session, hub, user, "today", "leader-alarms"),
        }
        return render(request, "satisfaction.html", context, user=user)


@router.get("/satisfaction/export")
def export(request: Request, user: LeaderUser, format: reports.ExportFormat = "xlsx",
           group_by: Literal["counter", "officer", "week", "month"] = "counter", start: str | None = None,
           end: str | None = None) -> Response:
    hub = hub_of(request)
    tz = hub.settings.hub.timezone
    day = periods.today(hub.clock(), tz)
    try:
        period = periods.parse(start, end, default=periods.Period(periods.quarter_of(day, tz).first, day, tz))
    except periods.PeriodError as exc:
        return render(request, "message.html", {"title": "Không xuất được báo cáo", "message": str(exc)},
                      user=user, status_code=422)
    with hub.db.new_session(write=False) as session:
        return attachment(reports.export_summary(
            session, rows=_summary(session, hub, user, [group_by], period), group_by=[group_by],
            format=format,
            name=f"muc-do-hai-long-{group_by}-{period.first:%Y%m%d}-{period.last:%Y%m%d}",
            title=f"Mức độ hài lòng {EXPORT_GROUPS[group_by]}, {period.label} — "
                  f"{heading(session, viewer=user, site_name=hub.settings.hub.site_name)}"))
