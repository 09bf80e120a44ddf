"""Inline SVG chart primitives for the session report (pure: strings in, strings out).

Every chart is a self-contained ``<svg>`` element with a ``viewBox`` (it scales to its
container) and no external references: time-series charts (lines, step lines, markers),
a histogram and a timeline of lanes. Time charts share one geometry (:data:`WIDTH` and the
margins), so charts stacked on a page line up in time.

Elements carry ``class`` and ``data-*`` attributes naming what they draw (``data-series``
on a polyline, ``data-count`` on a histogram bar, ``fill-marker`` on a fill) so a reader
(or a test) can find the data in the markup; ``<title>`` children give native tooltips.
Time-series charts also carry their scales (``data-t0``, ``data-t1``, ``data-plot``) for
the page's small hover read-out script.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Final

from attrs import field, frozen

__all__ = [
    "WIDTH",
    "Band",
    "Lane",
    "Marker",
    "Series",
    "fmt_num",
    "histogram",
    "nice_ticks",
    "time_chart",
    "time_ticks",
    "timeline",
]

WIDTH: Final = 1100
LEFT: Final = 124
RIGHT: Final = 18
TOP: Final = 14
BOTTOM: Final = 30
GRID: Final = "#e5e7eb"
AXIS: Final = "#9ca3af"
TEXT: Final = "#4b5563"
_TIME_STEPS_S: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
                        10800, 21600, 43200, 86400, 172800, 604800)


@frozen
class Series:
    """One line: ``points`` are (time ns, value) in time order; ``step`` draws a step line."""

    name: str
    color: str
    points: Sequence[tuple[int, float]]
    step: bool = False
    width: float = 2.0
    dash: str | None = None
    fill: str | None = field(default=None)  # area fill down to zero, when set


@frozen
class Marker:
    """A triangle at (time, value): ``up`` for buys, else down; ``title`` is its tooltip."""

    t_ns: int
    value: float
    color: str
    up: bool
    title: str
    css: str = "marker"
    size: float = 5.5


@frozen
class Band:
    """A shaded time interval (e.g. disconnected from .. to)."""

    t0_ns: int
    t1_ns: int
    color: str
    title: str


@frozen
class Lane:
    """One row of a timeline: marks (time, tooltip) and bands in one colour."""

    label: str
    color: str
    marks: Sequence[tuple[int, str]]
    bands: Sequence[Band] = ()
    count: int = 0
    kind: str = ""


def fmt_num(v: float, decimals: int = 2) -> str:
    """A number with thousands separators and ``decimals`` places (``-0`` shown as ``0``)."""
    s = f"{v:,.{max(decimals, 0)}f}"
    return "0" if s.strip("-0.,") == "" else s


def _decimals_for(step: float) -> int:
    if step <= 0 or not math.isfinite(step):
        return 2
    return max(0, min(10, -math.floor(math.log10(step) + 1e-9)))


def nice_ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], int]:
    """About ``n`` round tick values covering [lo, hi], and the decimals to print them."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 1e-3 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    for i in range(1000):
        t = first + i * step
        if t > hi + step * 1e-9:
            break
        ticks.append(round(t, 12))
    return ticks, _decimals_for(step)


def time_ticks(t0_ns: int, t1_ns: int, n: int = 7) -> list[tuple[int, str]]:
    """About ``n`` round UTC times in [t0, t1] with labels (seconds shown when needed)."""
    span_s = max((t1_ns - t0_ns) / 1e9, 1e-3)
    if span_s < n:  # sub-second spans: plain ms offsets
        ticks, dec = nice_ticks(0, span_s * 1000, n)
        return [(t0_ns + int(v * 1e6), f"+{fmt_num(v, dec)} ms") for v in ticks]
    step = next((s for s in _TIME_STEPS_S if span_s / s <= n), _TIME_STEPS_S[-1])
    start = math.ceil(t0_ns / 1e9 / step) * step
    out = []
    for i in range(200):
        t = start + i * step
        if t * 1e9 > t1_ns:
            break
        d = datetime.fromtimestamp(t, UTC)
        if step >= 86400:
            label = d.strftime("%m-%d")
        elif step >= 60:
            label = d.strftime("%H:%M")
        else:
            label = d.strftime("%H:%M:%S")
        out.append((int(t * 1e9), label))
    return out


class _Frame:
    """The plot area of a time chart and its two scales."""

    def __init__(self, t0: int, t1: int, lo: float, hi: float, height: int) -> None:
        self.t0, self.t1 = t0, max(t1, t0 + 1)
        self.lo, self.hi = lo, hi if hi > lo else lo + 1.0
        self.x0, self.x1 = LEFT, WIDTH - RIGHT
        self.y0, self.y1 = height - BOTTOM, TOP  # bottom, top in px
        self.height = height

    def x(self, t: int) -> float:
        return self.x0 + (t - self.t0) * (self.x1 - self.x0) / (self.t1 - self.t0)

    def y(self, v: float) -> float:
        return self.y0 - (v - self.lo) * (self.y0 - self.y1) / (self.hi - self.lo)


def _open_svg(height: int, css: str, label: str, extra: str = "", width: int = WIDTH) -> str:
    return (f'<svg class="chart {css}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet" '
            f'xmlns="http://www.w3.org/2000/svg"{extra}>')


def _time_axis(f: _Frame, parts: list[str]) -> None:
    for t, label in time_ticks(f.t0, f.t1):
        x = f.x(t)
        anchor = "end" if x > f.x1 - 30 else "start" if x < f.x0 + 30 else "middle"
        parts.append(f'<line x1="{x:.1f}" y1="{f.y1}" x2="{x:.1f}" y2="{f.y0}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(f'<text x="{x:.1f}" y="{f.y0 + 18}" text-anchor="{anchor}" '
                     f'class="tick">{escape(label)}</text>')
    parts.append(f'<line x1="{f.x0}" y1="{f.y0}" x2="{f.x1}" y2="{f.y0}" stroke="{AXIS}"/>')


def _value_axis(f: _Frame, parts: list[str], fmt_y: Callable[[float, int], str]) -> None:
    ticks, dec = nice_ticks(f.lo, f.hi, 6)
    for v in ticks:
        y = f.y(v)
        parts.append(f'<line x1="{f.x0}" y1="{y:.1f}" x2="{f.x1}" y2="{y:.1f}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(f'<text x="{f.x0 - 8}" y="{y + 4:.1f}" text-anchor="end" '
                     f'class="tick">{escape(fmt_y(v, dec))}</text>')


def _path_points(f: _Frame, s: Series) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = []
    prev_y: float | None = None
    for t, v in s.points:
        x, y = f.x(t), f.y(v)
        if s.step and prev_y is not None:
            pts.append((x, prev_y))
        pts.append((x, y))
        prev_y = y
    if s.step and prev_y is not None and pts and pts[-1][0] < f.x1:
        pts.append((f.x1, prev_y))  # a step line holds its last value to the end
    return pts


def _series_svg(f: _Frame, s: Series) -> str:
    pts = _path_points(f, s)
    if not pts:
        return ""
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    values = ",".join(f"{t}:{v:.10g}" for t, v in s.points)
    out = []
    if s.fill:
        base = f.y(min(max(0.0, f.lo), f.hi))
        out.append(f'<polygon points="{pts[0][0]:.1f},{base:.1f} {coords} '
                   f'{pts[-1][0]:.1f},{base:.1f}" fill="{s.fill}" stroke="none"/>')
    dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
    out.append(f'<polyline class="series" data-series="{escape(s.name)}" '
               f'data-values="{values}" points="{coords}" fill="none" stroke="{s.color}" '
               f'stroke-width="{s.width}" stroke-linejoin="round"{dash}>'
               f'<title>{escape(s.name)}</title></polyline>')
    return "".join(out)


def _marker_svg(f: _Frame, m: Marker) -> str:
    x, y = f.x(m.t_ns), f.y(m.value)
    r = m.size
    if m.up:
        d = f"M{x:.1f},{y - r:.1f} L{x + r:.1f},{y + r * 0.8:.1f} L{x - r:.1f},{y + r * 0.8:.1f} Z"
    else:
        d = f"M{x:.1f},{y + r:.1f} L{x + r:.1f},{y - r * 0.8:.1f} L{x - r:.1f},{y - r * 0.8:.1f} Z"
    edge = 0.8 if r >= 4 else 0.4
    return (f'<path class="{m.css}" d="{d}" fill="{m.color}" stroke="#ffffff" '
            f'stroke-width="{edge}"><title>{escape(m.title)}</title></path>')


def _plain_fmt(v: float, dec: int) -> str:
    return fmt_num(v, dec)


def time_chart(
    series: Sequence[Series],
    *,
    t0_ns: int,
    t1_ns: int,
    height: int = 230,
    css: str = "",
    label: str = "",
    markers: Sequence[Marker] = (),
    bands: Sequence[Band] = (),
    zero_line: bool = False,
    fmt_y: Callable[[float, int], str] = _plain_fmt,
) -> str:
    """A chart of lines (and markers, bands) over [t0, t1] with time and value axes."""
    values = [v for s in series for _, v in s.points] + [m.value for m in markers]
    if zero_line:
        values.append(0.0)
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.06 or (abs(hi) * 1e-3 or 1.0)
    f = _Frame(t0_ns, t1_ns, lo - pad, hi + pad, height)
    extra = (f' data-t0="{f.t0}" data-t1="{f.t1}" '
             f'data-plot="{f.x0} {f.x1} {f.y1} {f.y0}"')
    parts = [_open_svg(height, f"tchart {css}".strip(), label, extra)]
    for b in bands:
        xa, xb = f.x(max(b.t0_ns, f.t0)), f.x(min(b.t1_ns, f.t1))
        parts.append(f'<rect class="band" x="{xa:.1f}" y="{f.y1}" width="{max(xb - xa, 2):.1f}" '
                     f'height="{f.y0 - f.y1}" fill="{b.color}" opacity="0.18">'
                     f'<title>{escape(b.title)}</title></rect>')
    _value_axis(f, parts, fmt_y)
    _time_axis(f, parts)
    if zero_line and f.lo < 0 < f.hi:
        parts.append(f'<line x1="{f.x0}" y1="{f.y(0):.1f}" x2="{f.x1}" y2="{f.y(0):.1f}" '
                     f'stroke="{AXIS}" stroke-width="1.2"/>')
    parts.extend(_series_svg(f, s) for s in series)
    parts.extend(_marker_svg(f, m) for m in markers)
    if not series and not markers:
        parts.append(f'<text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle" '
                     f'class="empty">no data in this session</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    bins: Sequence[tuple[float, float, int]],
    *,
    color: str,
    x_label: str,
    height: int = 230,
    width: int = 760,
    css: str = "",
    label: str = "",
    overflow_last: bool = False,
) -> str:
    """Bars for ``bins`` of (low, high, count); ``overflow_last`` labels the last bin ``≥ low``."""
    parts = [_open_svg(height, f"hist {css}".strip(), label, width=width)]
    x0, x1, yb, yt = 56, width - RIGHT, height - BOTTOM - 8, TOP
    if not bins:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
                     f'class="empty">no answered orders</text></svg>')
        return "".join(parts)
    top = max(c for _, _, c in bins) or 1
    ticks, _dec = nice_ticks(0, top, 4)
    ticks = [t for t in ticks if t == int(t)] or [0.0, float(top)]
    scale_top = max(ticks[-1], top)
    for v in ticks:
        y = yb - v * (yb - yt) / scale_top
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(f'<text x="{x0 - 8}" y="{y + 4:.1f}" text-anchor="end" '
                     f'class="tick">{int(v)}</text>')
    n = len(bins)
    w = (x1 - x0) / n
    width_dec = _decimals_for(bins[0][1] - bins[0][0])
    every = max(1, math.ceil(n / 12))
    for i, (lo, hi, count) in enumerate(bins):
        h = count * (yb - yt) / scale_top
        x = x0 + i * w
        last = overflow_last and i == n - 1
        what = (f"≥ {fmt_num(lo, width_dec)}" if last else
                f"{fmt_num(lo, width_dec)}–{fmt_num(hi, width_dec)}")
        parts.append(f'<rect class="bar" data-count="{count}" x="{x + 1:.1f}" '
                     f'y="{yb - h:.1f}" width="{max(w - 2, 1):.1f}" height="{h:.1f}" '
                     f'fill="{color}" rx="2"><title>{what} {escape(x_label)}: {count}'
                     f'</title></rect>')
        if i % every == 0 or last:
            tick = f"≥{fmt_num(lo, width_dec)}" if last else fmt_num(lo, width_dec)
            parts.append(f'<text x="{x + (w / 2 if last else 0):.1f}" y="{yb + 16}" '
                         f'text-anchor="middle" class="tick">{tick}</text>')
    parts.append(f'<line x1="{x0}" y1="{yb}" x2="{x1}" y2="{yb}" stroke="{AXIS}"/>')
    parts.append(f'<text x="{x1}" y="{height - 2}" text-anchor="end" class="axis-label">'
                 f'{escape(x_label)}</text></svg>')
    return "".join(parts)


def timeline(lanes: Sequence[Lane], *, t0_ns: int, t1_ns: int, css: str = "",
             label: str = "") -> str:
    """One lane a row: bands (shaded) and marks (ticks) over [t0, t1]."""
    lane_h = 26
    height = TOP + max(len(lanes), 1) * lane_h + BOTTOM
    f = _Frame(t0_ns, t1_ns, 0.0, 1.0, height)
    extra = (f' data-t0="{f.t0}" data-t1="{f.t1}" '
             f'data-plot="{f.x0} {f.x1} {f.y1} {f.y0}"')
    parts = [_open_svg(height, f"tchart timeline {css}".strip(), label, extra)]
    for i in range(0, len(lanes), 2):
        parts.append(f'<rect x="{f.x0}" y="{TOP + i * lane_h}" width="{f.x1 - f.x0}" '
                     f'height="{lane_h}" fill="#f9fafb"/>')
    _time_axis(f, parts)
    if not lanes:
        parts.append(f'<text x="{WIDTH / 2}" y="{TOP + 18}" text-anchor="middle" '
                     f'class="empty">no anomalies</text>')
    for i, lane in enumerate(lanes):
        y = TOP + i * lane_h
        parts.append(f'<g class="lane" data-kind="{escape(lane.kind or lane.label)}" '
                     f'data-count="{lane.count}">')
        for b in lane.bands:
            xa, xb = f.x(max(b.t0_ns, f.t0)), f.x(min(b.t1_ns, f.t1))
            parts.append(f'<rect class="band" x="{xa:.1f}" y="{y + 4}" '
                         f'width="{max(xb - xa, 3):.1f}" height="{lane_h - 8}" '
                         f'fill="{b.color}" opacity="0.35" rx="3"><title>{escape(b.title)}'
                         f'</title></rect>')
        for t, title in lane.marks:
            x = f.x(min(max(t, f.t0), f.t1))
            parts.append(f'<rect class="mark" x="{x - 2:.1f}" y="{y + 5}" width="4" '
                         f'height="{lane_h - 10}" fill="{lane.color}" rx="1">'
                         f'<title>{escape(title)}</title></rect>')
        label_text = lane.label if len(lane.label) <= 19 else lane.label[:18] + "…"
        parts.append(f'<text x="{f.x0 - 8}" y="{y + lane_h / 2 + 4:.1f}" text-anchor="end" '
                     f'class="tick lane-label">{escape(label_text)}<title>{escape(lane.label)}'
                     f'</title></text></g>')
    parts.append("</svg>")
    return "".join(parts)
