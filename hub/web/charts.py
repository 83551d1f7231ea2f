"""Small SVG charts drawn on the server: a line over time and labelled bars.

Drawn here rather than by a JavaScript library: the pages stay light on a phone, work with
scripts off, need nothing vendored, and the numbers in a chart are testable from Python.
The SVG scales to its container (viewBox, width 100%).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 14, 30


def _num(value: float) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.1f}"


def _empty(message: str) -> Markup:
    return Markup('<p class="chart-empty">{}</p>').format(message)


def line_chart(points: Sequence[tuple[datetime, float]], *, tz: str, unit: str = "", label: str = "",
               lower: float | None = 0.0) -> Markup:
    """A line over time; the y range covers the data (and ``lower`` when given). The unit goes
    in the tooltip; the page's caption names it (tick labels stay short enough for a phone)."""
    if not points:
        return _empty("Không có số liệu trong khoảng thời gian này")
    zone = ZoneInfo(tz)
    xs = [p[0].timestamp() for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0 = min(ys) if lower is None else min(lower, min(ys))
    y1 = max(ys)
    if y1 == y0:
        y1 = y0 + 1
    if x1 == x0:
        x1 = x0 + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return TOP + (1 - (y - y0) / (y1 - y0)) * plot_h

    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(label)}"><title>{escape(label)} ({escape(unit)}): '
             f'{escape(_num(min(ys)))}–{escape(_num(max(ys)))}</title>']
    for frac in (0, 0.5, 1):
        y = y0 + frac * (y1 - y0)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
                     f'y1="{sy(y):.1f}" y2="{sy(y):.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">'
                     f'{escape(_num(y))}</text>')
    span_days = (x1 - x0) / 86400
    fmt = "%H:%M" if span_days <= 1 else "%d/%m %H:%M" if span_days <= 3 else "%d/%m"
    for frac, anchor in ((0, "start"), (0.5, "middle"), (1, "end")):
        x = x0 + frac * (x1 - x0)
        when = datetime.fromtimestamp(x, zone).strftime(fmt)
        parts.append(f'<text class="tick" x="{sx(x):.1f}" y="{HEIGHT - 8}" '
                     f'text-anchor="{anchor}">{when}</text>')
    if len(points) == 1:
        parts.append(f'<circle class="line-dot" cx="{sx(xs[0]):.1f}" cy="{sy(ys[0]):.1f}" r="3"/>')
    else:
        parts.append(f'<polyline class="line" points="{path}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(bars: Sequence[tuple[str, float | None, str]], *, top: float = 100.0,
              label: str = "") -> Markup:
    """Vertical bars: (label under the bar, value or None for no data, text above the bar)."""
    if not bars:
        return _empty("Không có số liệu trong khoảng thời gian này")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(bars)
    width = max(4.0, min(48.0, slot * 0.7))
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">']
    for frac in (0, 0.5, 1):
        y = TOP + (1 - frac) * plot_h
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(_num(frac * top))}</text>')
    step = max(1, round(len(bars) / 8))  # at most about 8 labels under the bars
    for i, (name, value, text) in enumerate(bars):
        cx = LEFT + slot * (i + 0.5)
        if value is not None:
            h = max(0.0, min(value, top)) / top * plot_h
            parts.append(f'<rect class="bar" x="{cx - width / 2:.1f}" y="{TOP + plot_h - h:.1f}" '
                         f'width="{width:.1f}" height="{h:.1f}">'
                         f'<title>{escape(name)}: {escape(text)}</title></rect>')
            if len(bars) <= 16:
                parts.append(f'<text class="bar-value" x="{cx:.1f}" y="{TOP + plot_h - h - 4:.1f}" '
                             f'text-anchor="middle">{escape(text)}</text>')
        if i % step == 0:
            parts.append(f'<text class="tick" x="{cx:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                         f'{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
