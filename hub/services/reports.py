"""Rating summaries by counter, officer and period, with the satisfaction index, and their
CSV / XLSX export (Vietnamese headings).

Satisfaction index (chỉ số hài lòng), 0–100: every press is worth its level on a linear
scale, Không hài lòng = 0, Bình thường = 1/3, Hài lòng = 2/3, Rất hài lòng = 1, and the index
is 100 × the mean:  index = 100 × Σ (score − 1) / (3 × n).  All presses "Rất hài lòng" give
100, all "Không hài lòng" give 0; an empty group has no index.

Periods (day, ISO week, month, quarter) are cut in the hub's display time zone
(Asia/Ho_Chi_Minh by default), not in UTC.

A summary is of the counters its viewer reaches (issue 20): a commune user's counts only their
commune's counters (``ratings.for_viewer``), so do its trends, round comparisons and exports.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Counter, Officer, Rating, RatingCount, RatingMonthCount
from thanthien.hub.services import rating_counts
from thanthien.hub.services.ratings import RatingFilter, for_viewer
from thanthien.hub.tenancy import Tenant

Dimension = Literal["counter", "officer", "day", "week", "month", "quarter"]
DIMENSIONS: tuple[Dimension, ...] = ("counter", "officer", "day", "week", "month", "quarter")
TIME_DIMENSIONS = ("day", "week", "month", "quarter")
LEVELS = (4, 3, 2, 1)
LEVEL_LABELS = {4: "Rất hài lòng", 3: "Hài lòng", 2: "Bình thường", 1: "Không hài lòng"}
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADINGS = {"counter": "Quầy", "officer": "Cán bộ", "day": "Ngày", "week": "Tuần", "month": "Tháng",
            "quarter": "Quý"}


def satisfaction_index(counts: dict[int, int]) -> float | None:
    n = sum(counts.values())
    if n == 0:
        return None
    return round(100 * sum((score - 1) * c for score, c in counts.items()) / (3 * n), 1)


def period_label(dim: str, local: date) -> str:
    """The label of the period holding a local day (or a local time)."""
    if dim == "day":
        return local.strftime("%Y-%m-%d")
    if dim == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if dim == "month":
        return local.strftime("%Y-%m")
    return f"{local.year}-Q{(local.month - 1) // 3 + 1}"


class LevelCounts:
    """Presses per level (``counts``), their total and the satisfaction index."""

    counts: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def index(self) -> float | None:
        return satisfaction_index(self.counts)


@dataclass
class SummaryRow(LevelCounts):
    key: dict[str, Any]
    counts: dict[int, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))


@dataclass(frozen=True)
class Totals(LevelCounts):
    """The counts per level over a set of summary rows (the report's last line)."""

    counts: dict[int, int]

    @classmethod
    def of(cls, rows: list[SummaryRow]) -> Totals:
        counts = dict.fromkeys(LEVELS, 0)
        for row in rows:
            for level, n in row.counts.items():
                counts[level] += n
        return cls(counts)


def _check(group_by: list[Dimension]) -> None:
    unknown = [d for d in group_by if d not in DIMENSIONS]
    if unknown or len(set(group_by)) != len(group_by):
        raise ValueError(f"group_by must be distinct values of {', '.join(DIMENSIONS)}")


class _Groups:
    """Summary rows by their key, filled from counts and raw ratings alike."""

    def __init__(self, session: Session, group_by: list[Dimension]) -> None:
        self.group_by = group_by
        self.times = [d for d in group_by if d in TIME_DIMENSIONS]
        self.names = {o.id: o.full_name for o in session.scalars(select(Officer))} \
            if "officer" in group_by else {}
        self.rows: dict[tuple, SummaryRow] = {}

    def add(self, *, counter: str | None, officer_id: int | None, days: dict[str, date] | None,
            counts: dict[int, int]) -> None:
        """``days``: the local date that stands for each time dimension (a bucket's first day)."""
        if not any(counts.values()):
            return
        key: dict[str, Any] = {}
        if "counter" in self.group_by:
            key["counter"] = counter
        if "officer" in self.group_by:
            key["officer_id"] = officer_id
            key["officer"] = self.names.get(officer_id, UNASSIGNED) if officer_id is not None else UNASSIGNED
        for dim in self.times:
            assert days is not None
            key[dim] = period_label(dim, days[dim])
        ordered = tuple((k, "" if v is None else v) for k, v in key.items() if k != "officer")
        row = self.rows.setdefault(ordered, SummaryRow(key=key))
        for level, n in counts.items():
            row.counts[level] += n

    def sorted(self) -> list[SummaryRow]:
        return [self.rows[k] for k in sorted(self.rows, key=lambda k: tuple(str(v) for _n, v in k))]


UNASSIGNED = "(chưa phân công)"


def summarize(session: Session, *, viewer: Tenant, group_by: list[Dimension], flt: RatingFilter,
              tz: str) -> list[SummaryRow]:
    """Counts per level and the index for every group that has presses (at the counters ``viewer``
    reaches), sorted by the keys.

    The whole local days of the period come from ``rating_counts`` (kept at ingest), its whole
    months from ``rating_month_counts`` when no day or week is asked for; a period that starts
    or ends inside a local day (the API takes any instant) adds the ratings of those partial
    days, counted from the ratings themselves. Equal to :func:`summarize_raw`
    (a property test checks it); that path serves a filter by node, which the counts do not
    keep, and a zone the counts are not cut in."""
    _check(group_by)
    flt = for_viewer(session, flt, viewer=viewer)
    rating_counts.flush(session)
    if flt.start is not None and flt.end is not None and flt.end <= flt.start:
        return []
    if flt.node is not None or not rating_counts.cut_in(session, tz):
        return summarize_raw(session, viewer=viewer, group_by=group_by, flt=flt, tz=tz)
    zone = ZoneInfo(tz)
    groups = _Groups(session, group_by)
    first, stop, edges = split_days(flt.start, flt.end, zone)
    if first is None or stop is None or first < stop:
        for monthly, lo, hi in split_months(groups.times, first, stop):
            _from_counts(session, groups, flt, lo, hi, monthly=monthly)
    for start, end in edges:
        _from_ratings(session, groups, replace(flt, start=start, end=end), tz)
    return groups.sorted()


def summarize_raw(session: Session, *, viewer: Tenant, group_by: list[Dimension], flt: RatingFilter,
                  tz: str) -> list[SummaryRow]:
    """The same summary counted from the ratings themselves: one GROUP BY counter, officer,
    local day and level over the ``ratings`` table, the days folded into periods here."""
    _check(group_by)
    flt = for_viewer(session, flt, viewer=viewer)
    groups = _Groups(session, group_by)
    _from_ratings(session, groups, flt, tz)
    return groups.sorted()


def split_days(start: datetime | None, end: datetime | None,
               zone: ZoneInfo) -> tuple[date | None, date | None, list[tuple[datetime, datetime]]]:
    """[start, end) as the whole local days [first, stop) (None: unbounded) and the partial
    days at its edges, as instants; ``first >= stop`` when no whole day is inside."""
    edges: list[tuple[datetime, datetime]] = []
    first = stop = None
    if start is not None:
        first = start.astimezone(zone).date()
        if rating_counts.day_start(first, zone) < start:
            first += timedelta(days=1)
            edges.append((start, rating_counts.day_start(first, zone)))
    if end is not None:
        stop = end.astimezone(zone).date()
        begins = rating_counts.day_start(stop, zone)
        if begins < end:
            edges.append((begins, end))
    if start is not None and end is not None and first is not None and stop is not None and first > stop:
        edges = [(start, end)]  # both ends inside one local day
    return first, stop, edges


def split_months(times: list[str], first: date | None,
                 stop: date | None) -> list[tuple[bool, date | None, date | None]]:
    """The whole local days [first, stop) as spans (from the monthly counts?, lo, hi): whole
    months from the monthly counts when the grouping cuts no day or week, the rest from the daily."""
    if not set(times) <= {"month", "quarter"}:
        return [(False, first, stop)]
    lo = first if first is None or first.day == 1 else rating_counts.next_month(first)
    hi = stop if stop is None or stop.day == 1 else stop.replace(day=1)
    if lo is not None and hi is not None and lo >= hi:
        return [(False, first, stop)]
    spans: list[tuple[bool, date | None, date | None]] = [(True, lo, hi)]
    if first is not None and lo is not None and first < lo:
        spans.insert(0, (False, first, lo))
    if stop is not None and hi is not None and hi < stop:
        spans.append((False, hi, stop))
    return spans


def _time_buckets(dialect: str, times: list[str], day: Any, *, monthly: bool) -> list[Any]:
    """The first local day of each time dimension's period, from a count table's date column
    (``monthly``: the first day of a month)."""
    out: list[Any] = []
    for dim in times:
        if dim == "day" or (monthly and (dim == "month" or dialect != "postgresql")):
            out.append(day)
        elif dialect == "postgresql":
            out.append(cast(func.date_trunc(dim, day), Date))
        elif dim == "week":
            out.append(func.date(day, "weekday 0", "-6 days"))  # the Monday of its ISO week
        else:  # a quarter is folded from its months here
            out.append(func.date(day, "start of month"))
    return out


def _from_counts(session: Session, groups: _Groups, flt: RatingFilter, first: date | None,
                 stop: date | None, *, monthly: bool) -> None:
    t: Any = RatingMonthCount if monthly else RatingCount
    when = t.month if monthly else t.day
    cols: list[Any] = []
    if "counter" in groups.group_by:
        cols.append(t.counter_code)
    if "officer" in groups.group_by:
        cols.append(t.officer_id)
    cols += _time_buckets(session.get_bind().dialect.name, groups.times, when, monthly=monthly)
    query = select(*cols, func.sum(t.n1), func.sum(t.n2), func.sum(t.n3), func.sum(t.n4))
    if first is not None:
        query = query.where(when >= first)
    if stop is not None:
        query = query.where(when < stop)
    if flt.counter is not None:
        query = query.where(t.counter_code == flt.counter)
    if flt.officer_id is not None:
        query = query.where(t.officer_id == flt.officer_id)
    if flt.counters is not None:
        query = query.where(t.counter_code.in_(flt.counters))
    if cols:
        query = query.group_by(*rating_counts.by_position(*range(1, len(cols) + 1)))
    for record in session.execute(query):
        values = list(record)
        sums = values[len(cols):]
        counts = {level: int(sums[level - 1] or 0) for level in LEVELS}
        if flt.score is not None:
            counts = {level: n if level == flt.score else 0 for level, n in counts.items()}
        _add_record(groups, values[:len(cols)], counts, one_day=False)


def _from_ratings(session: Session, groups: _Groups, flt: RatingFilter, tz: str) -> None:
    cols: list[Any] = []
    if "counter" in groups.group_by:
        cols.append(Rating.counter_code)
    if "officer" in groups.group_by:
        cols.append(func.coalesce(Rating.officer_id, rating_counts.NOBODY))
    if groups.times:
        lo = flt.start or session.scalar(flt.apply(select(func.min(Rating.pressed_at))))
        hi = flt.end or session.scalar(flt.apply(select(func.max(Rating.pressed_at))))
        if lo is None or hi is None:
            return
        cols.append(rating_counts.press_day(session, zone=tz, lo=_as_utc(lo), hi=_as_utc(hi)))
    query = flt.apply(select(*cols, Rating.score, func.count()).select_from(Rating))
    query = query.group_by(*rating_counts.by_position(*range(1, len(cols) + 2)))
    for record in session.execute(query):
        values = list(record)
        _add_record(groups, values[:len(cols)], {int(values[-2]): int(values[-1])}, one_day=True)


def _add_record(groups: _Groups, values: list[Any], counts: dict[int, int], *, one_day: bool) -> None:
    """``values``: counter, officer, then the time buckets: one per time dimension, or (``one_day``)
    the local day they all come from."""
    i = 0
    counter = officer = None
    if "counter" in groups.group_by:
        counter, i = values[0], 1
    if "officer" in groups.group_by:
        officer = values[i] or None  # 0: nobody on duty
        i += 1
    days = None
    if groups.times:
        buckets = [rating_counts.as_date(v) for v in values[i:]]
        days = dict.fromkeys(groups.times, buckets[0]) if one_day else dict(zip(groups.times, buckets,
                                                                                   strict=True))
    groups.add(counter=counter, officer_id=officer, days=days, counts=counts)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _columns(group_by: list[str]) -> list[str]:
    return [HEADINGS[d] for d in group_by] + [LEVEL_LABELS[lv] for lv in LEVELS] + \
        ["Tổng số lượt", "Chỉ số hài lòng (0–100)"]


def _values(row: SummaryRow, group_by: list[str], counter_names: dict[str, str]) -> list[Any]:
    out: list[Any] = []
    for d in group_by:
        if d == "counter":
            code = row.key["counter"]
            out.append(f"{counter_names.get(code, code)} ({code})" if code in counter_names else code)
        elif d == "officer":
            out.append(row.key["officer"])
        else:
            out.append(row.key[d])
    return out + [row.counts[lv] for lv in LEVELS] + [row.total, row.index]


def export_csv(session: Session, *, rows: list[SummaryRow], group_by: list[str]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel shows the Vietnamese headings right."""
    names = {c.code: c.name for c in session.scalars(select(Counter))}
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(_columns(group_by))
    for row in rows:
        writer.writerow(["" if v is None else v for v in _values(row, group_by, names)])
    return buf.getvalue().encode("utf-8-sig")


def export_xlsx(session: Session, *, rows: list[SummaryRow], group_by: list[str], title: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    names = {c.code: c.name for c in session.scalars(select(Counter))}
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Tổng hợp"
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append(_columns(group_by))
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(_values(row, group_by, names))
    for i, heading in enumerate(_columns(group_by), start=1):
        ws.column_dimensions[ws.cell(row=2, column=i).column_letter].width = max(12, len(heading) + 2)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


ExportFormat = Literal["csv", "xlsx"]
MEDIA_TYPES: dict[ExportFormat, str] = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX_MIME}


@dataclass(frozen=True)
class Download:
    """A file for the browser: its bytes, type and name (the API and the web send it alike)."""

    data: bytes
    media_type: str
    filename: str


def export_summary(session: Session, *, rows: list[SummaryRow], group_by: list[str], format: ExportFormat,
                   title: str, name: str) -> Download:
    """The summary table as CSV or XLSX; ``name`` is the file name without its extension."""
    if format == "csv":
        data = export_csv(session, rows=rows, group_by=group_by)
    else:
        data = export_xlsx(session, rows=rows, group_by=group_by, title=title)
    return Download(data=data, media_type=MEDIA_TYPES[format], filename=f"{name}.{format}")
