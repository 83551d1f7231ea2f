"""The province's view of its communes side by side (issue 20): for each commune in service, the
satisfaction index and presses over a period (and over the two survey rounds), the health of its
devices (share of nodes online, cameras ok, broadcasts missed), how long its fault alarms stayed
open, and its broadcasts per week; and the same as an XLSX file for the quarterly report
(Vietnamese headings).

Only a province user reads it (:func:`~thanthien.hub.tenancy.require_province`): a commune user
is refused. A figure is the commune's rows': its counters' presses, its nodes, cameras and
deliveries, its alarms. The broadcasts a commune hears are the occurrences with a delivery to one
of its nodes (its own broadcasts and the province's that reach it); missed are its nodes'
deliveries that ended ``missed`` or ``failed``.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Alarm, CameraStatus, Counter, Delivery, Device, Node, Occurrence
from thanthien.hub.roles import REPORT_READERS, Actor, require
from thanthien.hub.services import reports
from thanthien.hub.services.ratings import RatingFilter
from thanthien.hub.services.reports import Download, Totals
from thanthien.hub.tenancy import list_communes, require_province

FAULT_KINDS: Final = ("node_offline", "camera_down")
"""The alarms whose open time is a fault's repair time (as on the public page)."""
MISSED: Final = ("missed", "failed")


@dataclass(frozen=True)
class Span:
    """A named stretch of time [start, end) (the period, a survey round)."""

    label: str
    start: datetime
    end: datetime


@dataclass
class Satisfaction:
    presses: int = 0
    index: float | None = None


@dataclass
class CommuneRow:
    code: str
    name: str
    period: Satisfaction = field(default_factory=Satisfaction)
    rounds: list[Satisfaction] = field(default_factory=list)
    nodes_total: int = 0
    nodes_online: int = 0
    cameras_total: int = 0
    cameras_ok: int = 0
    deliveries: int = 0
    deliveries_missed: int = 0
    faults_closed: int = 0
    faults_open: int = 0
    fault_median_hours: float | None = None
    fault_max_hours: float | None = None
    broadcasts: int = 0
    per_week: dict[str, int] = field(default_factory=dict)

    @property
    def online_share(self) -> float | None:
        return round(100 * self.nodes_online / self.nodes_total, 1) if self.nodes_total else None


@dataclass(frozen=True)
class Overview:
    period: Span
    rounds: list[Span]
    weeks: list[str]
    communes: list[CommuneRow]


def _satisfaction(session: Session, viewer: Actor, span: Span, tz: str,
                  commune_of: dict[str, int]) -> dict[int, Satisfaction]:
    rows = reports.summarize(session, viewer=viewer, group_by=["counter"],
                             flt=RatingFilter(start=span.start, end=span.end), tz=tz)
    grouped: dict[int, list[reports.SummaryRow]] = defaultdict(list)
    for row in rows:
        if row.key["counter"] in commune_of:
            grouped[commune_of[row.key["counter"]]].append(row)
    out = {}
    for commune_id, commune_rows in grouped.items():
        totals = Totals.of(commune_rows)
        out[commune_id] = Satisfaction(presses=totals.total, index=totals.index)
    return out


def _week(at: datetime, zone: ZoneInfo) -> str:
    return reports.period_label("week", at.astimezone(zone).date())


def overview(session: Session, *, viewer: Actor, period: Span, rounds: list[Span], now: datetime,
             tz: str) -> Overview:
    """Every commune in service side by side over ``period`` (and the survey ``rounds``)."""
    require(viewer, REPORT_READERS)
    require_province(viewer)
    zone = ZoneInfo(tz)
    communes = list_communes(session, actor=viewer, active=True)
    rows = {c.id: CommuneRow(code=c.code, name=c.name) for c in communes}
    commune_of = dict(session.execute(select(Counter.code, Counter.commune_id)).tuples().all())
    for commune_id, figures in _satisfaction(session, viewer, period, tz, commune_of).items():
        if commune_id in rows:
            rows[commune_id].period = figures
    for span in rounds:
        figures_by = _satisfaction(session, viewer, span, tz, commune_of)
        for commune_id, row in rows.items():
            row.rounds.append(figures_by.get(commune_id, Satisfaction()))

    for commune_id, state, n in session.execute(
            select(Node.commune_id, Node.state, func.count()).where(Node.retired_at.is_(None))
            .group_by(Node.commune_id, Node.state)):
        if commune_id in rows:
            rows[commune_id].nodes_total += int(n)
            rows[commune_id].nodes_online += int(n) if state == "online" else 0
    for commune_id, state in session.execute(
            select(Node.commune_id, CameraStatus.state).join(Node, Node.id == CameraStatus.node_id)
            .outerjoin(Device, (Device.node_id == CameraStatus.node_id)
                       & (Device.code == CameraStatus.camera))
            .where(Node.retired_at.is_(None), Device.retired_at.is_(None))):
        if commune_id in rows:
            rows[commune_id].cameras_total += 1
            rows[commune_id].cameras_ok += 1 if state == "ok" else 0

    weeks: set[str] = set()
    heard: dict[int, set[str]] = defaultdict(set)
    for commune_id, occurrence_id, start_at, status in session.execute(
            select(Node.commune_id, Occurrence.id, Occurrence.start_at, Delivery.status)
            .join(Delivery, Delivery.occurrence_id == Occurrence.id)
            .join(Node, Node.id == Delivery.node_id)
            .where(Occurrence.start_at >= period.start, Occurrence.start_at < min(period.end, now),
                   Occurrence.command.is_(False))):
        if commune_id not in rows:
            continue
        row = rows[commune_id]
        row.deliveries += 1
        row.deliveries_missed += 1 if status in MISSED else 0
        if occurrence_id not in heard[commune_id]:
            heard[commune_id].add(occurrence_id)
            week = _week(start_at, zone)
            weeks.add(week)
            row.broadcasts += 1
            row.per_week[week] = row.per_week.get(week, 0) + 1

    hours: dict[int, list[float]] = defaultdict(list)
    for commune_id, raised, cleared in session.execute(
            select(Alarm.commune_id, Alarm.raised_at, Alarm.cleared_at)
            .where(Alarm.kind.in_(FAULT_KINDS), Alarm.raised_at < period.end)
            .where((Alarm.cleared_at.is_(None)) | (Alarm.cleared_at >= period.start))):
        if commune_id not in rows:
            continue
        if cleared is None:
            rows[commune_id].faults_open += 1
        else:
            hours[commune_id].append((cleared - raised).total_seconds() / 3600)
    for commune_id, values in hours.items():
        rows[commune_id].faults_closed = len(values)
        rows[commune_id].fault_median_hours = round(median(values), 1)
        rows[commune_id].fault_max_hours = round(max(values), 1)
    return Overview(period=period, rounds=rounds, weeks=sorted(weeks),
                    communes=[rows[c.id] for c in communes])


def _headings(view: Overview) -> list[str]:
    out = ["Mã xã/phường", "Xã/phường", "Lượt đánh giá", "Chỉ số hài lòng (0–100)"]
    for span in view.rounds:
        out += [f"Lượt đánh giá {span.label}", f"Chỉ số hài lòng {span.label}"]
    return [*out, "Số nút", "Nút trực tuyến", "Tỷ lệ nút trực tuyến (%)", "Số camera", "Camera bình thường",
                  "Lượt phát đến nút", "Lượt phát bỏ lỡ", "Sự cố đã khắc phục", "Sự cố đang mở",
                  "Thời gian khắc phục trung vị (giờ)", "Thời gian khắc phục lâu nhất (giờ)", "Số buổi phát"]


def _values(row: CommuneRow) -> list[object]:
    out: list[object] = [row.code, row.name, row.period.presses, row.period.index]
    for figures in row.rounds:
        out += [figures.presses, figures.index]
    return [*out, row.nodes_total, row.nodes_online, row.online_share, row.cameras_total, row.cameras_ok,
                  row.deliveries, row.deliveries_missed, row.faults_closed, row.faults_open,
                  row.fault_median_hours, row.fault_max_hours, row.broadcasts]


def export_xlsx(view: Overview, *, title: str, name: str) -> Download:
    """The overview for the quarterly report: one row per commune ("Tổng hợp theo xã"), and the
    broadcasts per commune and week ("Phát thanh theo tuần")."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Tổng hợp theo xã"
    ws.append([f"{title} — {view.period.label}"])
    ws["A1"].font = Font(bold=True, size=13)
    headings = _headings(view)
    ws.append(headings)
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for row in view.communes:
        ws.append(_values(row))
    for i, heading in enumerate(headings, start=1):
        width = max(12, min(len(heading) + 2, 40))
        ws.column_dimensions[ws.cell(row=2, column=i).column_letter].width = width
    weekly = wb.create_sheet("Phát thanh theo tuần")
    weekly.append(["Xã/phường", *view.weeks])
    for cell in weekly[1]:
        cell.font = Font(bold=True)
    for row in view.communes:
        weekly.append([row.name, *(row.per_week.get(week, 0) for week in view.weeks)])
    out = io.BytesIO()
    wb.save(out)
    return Download(data=out.getvalue(), media_type=reports.XLSX_MIME,
                    filename=f"{name}.xlsx")
