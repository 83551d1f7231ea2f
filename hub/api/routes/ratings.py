"""Ratings: a paged list, the summary by counter / officer / period, and its export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, OptionalRowId, allow
from thanthien.hub.api.responses import attachment
from thanthien.hub.api.schemas import RatingOut, RatingPage, Summary, SummaryRowOut
from thanthien.hub.roles import REPORT_READERS
from thanthien.hub.services import reports
from thanthien.hub.services.ratings import RatingFilter, list_ratings
from thanthien.hub.services.reports import SummaryRow
from thanthien.hub.tenancy import heading

router = APIRouter(prefix="/ratings", tags=["ratings"], dependencies=[allow(*REPORT_READERS)])

Start = Annotated[str | None, Query(description="ISO 8601 with offset, inclusive")]


def _filter(start: str | None, end: str | None, counter: str | None, officer_id: int | None,
            node: str | None = None, score: int | None = None) -> RatingFilter:
    from pydantic import AwareDatetime, TypeAdapter, ValidationError

    adapter = TypeAdapter(AwareDatetime)
    try:
        s = adapter.validate_python(start) if start else None
        e = adapter.validate_python(end) if end else None
    except ValidationError as exc:
        raise HTTPException(422, "start/end phải là thời điểm ISO 8601 có múi giờ, "
                                 f"ví dụ 2026-01-01T00:00:00+07:00 ({exc.errors()[0]['msg']})") from None
    if s and e and e <= s:
        raise HTTPException(422, "end must be after start")
    return RatingFilter(start=s, end=e, counter=counter, officer_id=officer_id, node=node, score=score)


@router.get("", response_model=RatingPage)
def ratings_page(session: DbSession, actor: CurrentUser, start: Start = None, end: str | None = None,
                 counter: str | None = None,
                 officer_id: OptionalRowId = None, node: str | None = None,
                 score: Annotated[int | None, Query(ge=1, le=4)] = None,
                 page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                 page_size: Annotated[int, Query(ge=1, le=500)] = 50) -> RatingPage:
    flt = _filter(start, end, counter, officer_id, node, score)
    rows, total = list_ratings(session, viewer=actor, flt=flt, limit=page_size, offset=(page - 1) * page_size)
    return RatingPage(items=[RatingOut.model_validate(r) for r in rows], total=total, page=page,
                      page_size=page_size)


def _group_by(value: str) -> list[reports.Dimension]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    bad = [p for p in parts if p not in reports.DIMENSIONS]
    if not parts or bad or len(set(parts)) != len(parts):
        raise HTTPException(422, f"group_by: distinct values of {', '.join(reports.DIMENSIONS)}, "
                                 f"comma-separated (got {value!r})")
    return parts  # type: ignore[return-value]


def _summary(hub: Hub, session: DbSession, actor: CurrentUser, group_by: str, start: str | None,
             end: str | None,
             counter: str | None, officer_id: int | None) -> tuple[list[reports.Dimension], RatingFilter,
                                                                   list[SummaryRow]]:
    dims = _group_by(group_by)
    flt = _filter(start, end, counter, officer_id)
    rows = reports.summarize(session, viewer=actor, group_by=dims, flt=flt, tz=hub.settings.hub.timezone)
    return dims, flt, rows


GroupBy = Annotated[str, Query(description="comma-separated: counter, officer, day, week, month, quarter")]


@router.get("/summary", response_model=Summary,
            summary="Counts per level and the satisfaction index (0–100) per group",
            description="index = 100 × Σ(score − 1) / (3 × n): Rất hài lòng counts 1, Hài lòng 2/3, "
                        "Bình thường 1/3, Không hài lòng 0. Periods are cut in the hub's time zone.")
def summary(hub: Hub, session: DbSession, actor: CurrentUser, group_by: GroupBy = "counter",
            start: Start = None,
            end: str | None = None, counter: str | None = None, officer_id: OptionalRowId = None) -> Summary:
    dims, flt, rows = _summary(hub, session, actor, group_by, start, end, counter, officer_id)
    totals = reports.Totals.of(rows)
    return Summary(group_by=list(dims), start=flt.start, end=flt.end, timezone=hub.settings.hub.timezone,
                   rows=[SummaryRowOut(key=r.key, counts={str(k): v for k, v in r.counts.items()},
                                       total=r.total, satisfaction_index=r.index) for r in rows],
                   total=totals.total, satisfaction_index=totals.index)


@router.get("/summary/export", summary="The summary as CSV or Excel (Vietnamese headings)",
            response_class=Response,
            responses={200: {"content": {"text/csv": {}, reports.XLSX_MIME: {}}}})
def export(hub: Hub, session: DbSession, actor: CurrentUser, format: reports.ExportFormat = "xlsx",
           group_by: GroupBy = "counter", start: Start = None, end: str | None = None,
           counter: str | None = None, officer_id: OptionalRowId = None) -> Response:
    dims, _flt, rows = _summary(hub, session, actor, group_by, start, end, counter, officer_id)
    heading_name = heading(session, viewer=actor, site_name=hub.settings.hub.site_name)
    return attachment(reports.export_summary(
        session, rows=rows, group_by=list(dims), format=format, name="tong-hop-danh-gia-" + "-".join(dims),
        title=f"Tổng hợp mức độ hài lòng — {heading_name}"))
