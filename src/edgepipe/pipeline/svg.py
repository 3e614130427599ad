"""SVG charts for the report and the benchmarks: scatter plots (with a Pareto front), line
charts and horizontal bars, drawn as plain SVG text (no script, no fetch), on linear or
log axes with readable ticks. :mod:`edgepipe.pipeline.html` places them in ``report.html``;
``standalone`` makes one a file of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape

Format = Callable[[float], str]
# the charts' styles: in the report's stylesheet, and inside a standalone .svg
CHART_CSS = "svg text{font-size:11px;fill:#333}svg .axis{stroke:#999}svg .grid{stroke:#eee}\n"

WIDTH, HEIGHT = 560, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 24, 48
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
          "#e377c2", "#7f7f7f", "#bcbd22"]

def _ticks(low: float, high: float, log: bool) -> list[float]:
    if log:
        decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        steps = (1,) if math.log10(high / low) > 2.5 else (1, 2, 5)
        return [m * 10.0 ** e for e in decades for m in steps]
    if high <= low:
        return [low]
    step = 10 ** math.floor(math.log10((high - low) / 4 or 1))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= 6:
            step *= factor
            break
    start = math.floor(low / step) * step
    return [start + i * step for i in range(int((high - start) / step) + 2)]


class Axis:
    def __init__(self, values: list[float], lo_px: float, hi_px: float, log: bool,
                 pad: float = 0.08) -> None:
        self.log = log and all(v > 0 for v in values)
        data = [math.log10(v) for v in values] if self.log else list(values)
        low, high = min(data), max(data)
        span = (high - low) or (abs(high) * 0.1 or 1.0)
        self.low, self.high = low - span * pad, high + span * pad
        self.lo_px, self.hi_px = lo_px, hi_px

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.lo_px + (v - self.low) / (self.high - self.low) * (self.hi_px - self.lo_px)

    def ticks(self) -> list[float]:
        if self.log:
            return [t for t in _ticks(10 ** self.low, 10 ** self.high, True)
                    if self.low <= math.log10(t) <= self.high]
        return [t for t in _ticks(self.low, self.high, False) if self.low <= t <= self.high]


@dataclass
class Point:
    """A mark of a scatter chart; ``hollow`` for an estimate, ``ring`` for the pick."""

    x: float
    y: float
    label: str
    color: str
    tip: str = ""
    hollow: bool = False
    ring: bool = False


@dataclass
class Bar:
    """A row of a bar chart (``value`` None or 0: left out)."""

    label: str
    value: float | None
    color: str
    hollow: bool = False


@dataclass
class Series:
    """A line of a line chart: its (x, y) points."""

    label: str
    color: str
    points: list[tuple[float, float]] = field(default_factory=list)


def _frame(x: Axis, y: Axis, *, x_format: Format, y_format: Format, x_label: str, y_label: str,
           title: str, height: int) -> list[str]:
    """The opening of a chart: the svg element, title, grid, tick labels, axes and their
    names (the plot area is HEIGHT tall; ``height`` leaves room below for a legend)."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{WIDTH / 2}" y="14" text-anchor="middle" font-weight="bold">'
             f'{escape(title)}</text>']
    for tick in x.ticks():
        px = x(tick)
        parts.append(f'<line class="grid" x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" '
                     f'y2="{HEIGHT - BOTTOM}"/><text x="{px:.1f}" y="{HEIGHT - BOTTOM + 14}" '
                     f'text-anchor="middle">{escape(x_format(tick))}</text>')
    for tick in y.ticks():
        py = y(tick)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{py:.1f}" x2="{WIDTH - RIGHT}" '
                     f'y2="{py:.1f}"/><text x="{LEFT - 6}" y="{py + 4:.1f}" '
                     f'text-anchor="end">{escape(y_format(tick))}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
                 f'y2="{HEIGHT - BOTTOM}"/><line class="axis" x1="{LEFT}" y1="{TOP}" '
                 f'x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 10}" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" '
                 f'text-anchor="middle">{escape(y_label)}</text>')
    return parts


def scatter(points: list[Point], *, x_label: str, y_label: str, x_format: Format,
            y_format: Format, log_x: bool, title: str, front: bool = True) -> str:
    """An SVG scatter of ``points``; the Pareto front (lower x, higher y) joined by a line."""
    if not points:
        return ""
    x = Axis([p.x for p in points], LEFT, WIDTH - RIGHT, log_x)
    y = Axis([p.y for p in points], HEIGHT - BOTTOM, TOP, False)
    parts = _frame(x, y, x_format=x_format, y_format=y_format, x_label=x_label,
                   y_label=y_label, title=title, height=HEIGHT)
    if front:
        best = pareto(points)
        if len(best) > 1:
            path = " ".join(f"{x(p.x):.1f},{y(p.y):.1f}" for p in best)
            parts.append(f'<polyline class="front" points="{path}" fill="none" '
                         'stroke="#2ca02c" stroke-dasharray="4 3"/>')
    placed: list[tuple[float, float]] = []
    for point in points:
        px, py = x(point.x), y(point.y)
        fill = "white" if point.hollow else point.color
        if point.ring:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="10" fill="none" '
                         'stroke="#2ca02c" stroke-width="2"/>')
        parts.append(f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{fill}" '
                     f'stroke="{point.color}" stroke-width="2"><title>'
                     f'{escape(point.tip)}</title></circle>')
        right = px > WIDTH - RIGHT - 7 * len(point.label)
        ly = py - 7
        while any(abs(ly - oy) < 12 and abs(px - ox) < 7 * len(point.label)
                  for ox, oy in placed):
            ly += 12  # a label already there (points that coincide): the next line down
        placed.append((px, ly))
        parts.append(f'<text x="{px - 8 if right else px + 8:.1f}" y="{ly:.1f}" '
                     f'text-anchor="{"end" if right else "start"}">'
                     f'{escape(point.label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def lines(series: list[Series], *, x_label: str, y_label: str, x_format: Format,
          y_format: Format, title: str, marker_x: float | None = None,
          log_y: bool = True, dots: bool = False) -> str:
    """An SVG line chart, x logarithmic (y too unless ``log_y`` is False), with a legend;
    ``marker_x`` draws a vertical line (the recipe's bandwidth), ``dots`` a dot per point
    (a series of one point is a dot)."""
    xs = [x for line in series for x, _ in line.points]
    ys = [y for line in series for _, y in line.points]
    if not xs:
        return ""
    legend_h = 16 * len(series)
    height = HEIGHT + legend_h
    x = Axis(xs, LEFT, WIDTH - RIGHT, True, pad=0)
    y = Axis(ys, HEIGHT - BOTTOM, TOP, log_y)
    parts = _frame(x, y, x_format=x_format, y_format=y_format, x_label=x_label,
                   y_label=y_label, title=title, height=height)
    if marker_x is not None:
        px = x(marker_x)
        parts.append(f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{HEIGHT - BOTTOM}" '
                     'stroke="#999" stroke-dasharray="2 2"/>')
    for i, line in enumerate(series):
        path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in line.points)
        parts.append(f'<polyline class="series" points="{path}" fill="none" '
                     f'stroke="{line.color}" stroke-width="2"><title>'
                     f'{escape(line.label)}</title></polyline>')
        if dots:
            parts += [f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="3" fill="{line.color}">'
                      f'<title>{escape(line.label)}: {escape(x_format(a))}, '
                      f'{escape(y_format(b))}</title></circle>' for a, b in line.points]
        ly = HEIGHT + 16 * i
        parts.append(f'<line x1="{LEFT}" y1="{ly - 4}" x2="{LEFT + 24}" y2="{ly - 4}" '
                     f'stroke="{line.color}" stroke-width="2"/><text x="{LEFT + 30}" '
                     f'y="{ly}">{escape(line.label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def standalone(svg: str) -> str:
    """A chart as an .svg file of its own: the report's chart styles put inside it."""
    style = ("svg{background:#fff}text{font-family:sans-serif}"
             + CHART_CSS.strip().replace("svg ", ""))
    return svg.replace(">", f"><style>{style}</style>", 1)


def pareto(points: list[Point]) -> list[Point]:
    """The points no other point beats on both x (lower) and y (higher), by x."""
    ordered = sorted(points, key=lambda p: (p.x, -p.y))
    front, best_y = [], -math.inf
    for point in ordered:
        if point.y > best_y:
            front.append(point)
            best_y = point.y
    return front


def bars(rows: list[Bar], *, title: str, value_format: Format) -> str:
    """Horizontal bars, one per row with a value."""
    rows = [r for r in rows if r.value is not None and r.value > 0]
    if not rows:
        return ""
    height = TOP + 22 * len(rows) + 16
    label_px = 200
    top = max(r.value for r in rows if r.value is not None)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{WIDTH / 2}" y="14" text-anchor="middle" font-weight="bold">'
             f'{escape(title)}</text>']
    for i, row in enumerate(rows):
        y = TOP + 22 * i
        value = row.value or 0.0
        width = max(1.0, (WIDTH - label_px - 90) * value / top)
        fill = "white" if row.hollow else row.color
        parts.append(f'<text x="{label_px - 6}" y="{y + 13}" text-anchor="end">'
                     f'{escape(row.label[:32])}</text>')
        parts.append(f'<rect class="bar" x="{label_px}" y="{y + 2}" width="{width:.1f}" '
                     f'height="15" fill="{fill}" stroke="{row.color}"/>')
        parts.append(f'<text x="{label_px + width + 4:.1f}" y="{y + 13}">'
                     f'{escape(value_format(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)
