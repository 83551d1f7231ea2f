"""Rating summaries by counter, officer and period, with the satisfaction index, and their
CSV / XLSX export (Vietnamese headings).

Satisfaction index (chỉ số hài lòng), 0–100: every press is worth its level on a linear
scale, Không hài lòng = 0, Bình thường = 1/3, Hài lòng = 2/3, Rất hài lòng = 1, and the index
is 100 × the mean:  index = 100 × Σ (score − 1) / (3 × n).  All presses "Rất hài lòng" give
100, all "Không hài lòng" give 0; an empty group has no index.

Periods (day, ISO week, month, quarter) are cut in the hub's display time zone
(Asia/Ho_Chi_Minh by default), not in UTC.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Counter, Officer, Rating
from thanthien.hub.services.ratings import RatingFilter

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


def period_label(dim: str, local: datetime) -> str:
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


def _hour_bucket(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", Rating.pressed_at))
    return func.strftime("%Y-%m-%d %H:00:00", Rating.pressed_at)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def summarize(session: Session, *, group_by: list[Dimension], flt: RatingFilter, tz: str) -> list[SummaryRow]:
    """Counts per level and the index for every group that has presses, sorted by the keys.

    The database counts per (counter, officer, UTC hour, level); the hours are then folded into
    local days, weeks, months or quarters here, which keeps one query for both back ends."""
    unknown = [d for d in group_by if d not in DIMENSIONS]
    if unknown or len(set(group_by)) != len(group_by):
        raise ValueError(f"group_by must be distinct values of {', '.join(DIMENSIONS)}")
    zone = ZoneInfo(tz)
    times = [d for d in group_by if d in TIME_DIMENSIONS]
    cols: list[Any] = []
    if "counter" in group_by:
        cols.append(Rating.counter_code)
    if "officer" in group_by:
        cols.append(Rating.officer_id)
    if times:
        cols.append(_hour_bucket(session).label("hour"))
    query = flt.apply(select(*cols, Rating.score, func.count()).select_from(Rating))
    query = query.group_by(*cols, Rating.score)
    names = {o.id: o.full_name for o in session.scalars(select(Officer))}
    rows: dict[tuple, SummaryRow] = {}
    for record in session.execute(query):
        values = list(record)
        score, n = int(values[-2]), int(values[-1])
        key: dict[str, Any] = {}
        i = 0
        if "counter" in group_by:
            key["counter"] = values[i]
            i += 1
        if "officer" in group_by:
            key["officer_id"] = values[i]
            key["officer"] = names.get(values[i], "(chưa phân công)") if values[i] is not None \
                else "(chưa phân công)"
            i += 1
        if times:
            local = _as_utc(values[i]).astimezone(zone)
            for dim in times:
                key[dim] = period_label(dim, local)
        ordered = tuple((k, "" if v is None else v) for k, v in key.items() if k != "officer")
        row = rows.setdefault(ordered, SummaryRow(key=key))
        row.counts[score] += n
    return [rows[k] for k in sorted(rows, key=lambda k: tuple(str(v) for _n, v in k))]


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
