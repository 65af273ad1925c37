"""Server-drawn SVG charts for the web app's reports (docs/webapp.md, "Reports").

No JavaScript and nothing from a CDN: a chart is a string of SVG drawn here from plain numbers, so it
shows offline, in a printout and with scripts off. Three kinds, each scaled to its own largest value
(rounded up to 1, 2 or 5 × 10ⁿ so the axis reads in round numbers):

- `hbars`: one horizontal bar per label (counts by status, failures by error code, top links);
- `columns`: vertical columns over a row of x labels, one or more series stacked (per time bucket or day);
- `line`: one polyline per series over the same x labels (cumulative figures over time).

Every text that reaches the SVG is escaped (labels are data: link targets, line names, error codes), and
every bar or point carries a <title> with its exact value, which a browser shows on hover.

Sizes: a chart is as wide as its container (width="100%", no viewBox: nothing is scaled) and a fixed
number of pixels high. Horizontal positions are percentages of the width, vertical ones and the text are
pixels, so labels are FONT_PX high at any width — 375 px phone or desktop — instead of shrinking with
the picture (a 640-unit viewBox drawn 323 px wide made 11-unit labels 6 px). A line chart's polylines
sit in an inner <svg> stretched to the plot (preserveAspectRatio="none", strokes non-scaling). At phone
widths CSS hides every other x label (class "alt", webapp/static/webapp/app.css), so they never overlap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FONT_PX = 12
FONT = f'font-family="system-ui, sans-serif" font-size="{FONT_PX}"'
AXIS = "#6e7781"
GRID = "#eef0f2"
DEFAULT_COLOR = "#0b5cad"
# x labels shown at most (every other one of them hidden at phone widths by CSS)
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    color: str = DEFAULT_COLOR


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 × 10ⁿ at or above `value` (1 for nothing to show)."""
    if value <= 0 or not math.isfinite(value):
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def _number(value: float) -> str:
    """12345 → "12,345"; 0.5 → "0.5" (values in titles and axes)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def _svg(height: int, title: str, body: list[str]) -> SafeString:
    label = escape(title)
    return mark_safe(  # noqa: S308 - every text placed in `body` went through escape()
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="100%" height="{height}" '
        f'role="img" aria-label="{label}"><title>{label}</title>{"".join(body)}</svg>'
    )


def _empty(title: str) -> SafeString:
    return _svg(40, title, [f'<text x="8" y="24" {FONT} fill="{AXIS}">No data yet.</text>'])


def hbars(
    rows: Sequence[tuple[str, float]],
    *,
    title: str,
    color: str = DEFAULT_COLOR,
    colors: dict[str, str] | None = None,
    suffix: str = "",
) -> SafeString:
    """One bar per (label, value), in the order given, each under its label (a label has the whole
    width, however narrow the screen); `colors` by label overrides `color`."""
    if not rows or all(v <= 0 for _, v in rows):
        return _empty(title)
    label_h, bar, gap = FONT_PX + 4, 14, 8
    row_h = label_h + bar + gap
    span = 0.8  # of the width: the longest bar leaves room for its value
    top = nice_ceiling(max(v for _, v in rows))
    body = []
    for i, (label, value) in enumerate(rows):
        y = gap // 2 + i * row_h
        fraction = span * max(value, 0) / top
        fill = (colors or {}).get(label, color)
        shown = label if len(label) <= 60 else label[:59] + "…"
        body.append(
            f"<g><title>{escape(label)}: {_number(value)}{escape(suffix)}</title>"
            f'<text x="0" y="{y + FONT_PX}" {FONT} fill="#1f2328">{escape(shown)}</text>'
            f'<rect x="0" y="{y + label_h}" width="{_pct(fraction)}" height="{bar}" rx="2" fill="{escape(fill)}"/>'
            f'<text x="{_pct(fraction)}" dx="4" y="{y + label_h + bar - 2}" {FONT} fill="#1f2328">'
            f"{_number(value)}{escape(suffix)}</text></g>"
        )
    return _svg(len(rows) * row_h, title, body)


def _frame(top: float, upper: int, plot_h: int) -> list[str]:
    """Horizontal grid lines at 0, ½ and the top of the scale, each with its value just above it."""
    parts = []
    for fraction in (0, 0.5, 1):
        y = upper + plot_h * (1 - fraction)
        parts.append(f'<line x1="0" x2="100%" y1="{y:.1f}" y2="{y:.1f}" stroke="{AXIS if fraction == 0 else GRID}"/>')
        if fraction:
            parts.append(f'<text x="0" y="{y - 3:.1f}" {FONT} fill="{AXIS}">{_number(top * fraction)}</text>')
    return parts


def _x_labels(labels: Sequence[str], x_of, baseline: float) -> list[str]:
    """At most MAX_X_LABELS x labels, evenly spaced; every other one has class "alt", which CSS hides at
    phone widths. The first starts at its point and a last one at the right edge ends there, so neither is
    cut off by the picture's edge."""
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    parts = []
    for n, i in enumerate(range(0, len(labels), every)):
        x = x_of(i)
        anchor = "start" if i == 0 else "end" if x >= 0.97 else "middle"
        alt = ' class="alt"' if n % 2 else ""
        parts.append(
            f'<text{alt} x="{_pct(x)}" y="{baseline + FONT_PX + 4:.1f}" text-anchor="{anchor}" {FONT} '
            f'fill="{AXIS}">{escape(labels[i])}</text>'
        )
    return parts


LEGEND_PER_ROW = 3  # a legend's items per row: three fit a 323 px chart (a phone's) at FONT_PX


def _legend_height(series: Sequence[Series]) -> int:
    return 0 if len(series) < 2 else math.ceil(len(series) / LEGEND_PER_ROW) * (FONT_PX + 6) + 4


def _legend(series: Sequence[Series], y: float) -> list[str]:
    """Below the plot from y (the first row's baseline), LEGEND_PER_ROW items per row."""
    if len(series) < 2:
        return []
    parts = []
    for n, s in enumerate(series):
        row, col = divmod(n, LEGEND_PER_ROW)
        x, yy = _pct(col / LEGEND_PER_ROW), y + row * (FONT_PX + 6)
        parts.append(
            f'<rect x="{x}" y="{yy - 10:.1f}" width="10" height="10" fill="{escape(s.color)}"/>'
            f'<text x="{x}" dx="14" y="{yy:.1f}" {FONT} fill="#1f2328">{escape(s.name)}</text>'
        )
    return parts


def columns(labels: Sequence[str], series: Sequence[Series], *, title: str, height: int = 220) -> SafeString:
    """Stacked columns: at x label i, each series' values[i] on top of the previous series'."""
    if not labels or not series or all(v <= 0 for s in series for v in s.values):
        return _empty(title)
    upper, lower = FONT_PX + 6, FONT_PX + 8
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = nice_ceiling(max(totals))
    plot_h = height - upper - lower
    slot = 1 / len(labels)
    bar_w = slot * 0.75

    def x_of(i: int) -> float:
        return slot * (i + 0.5)

    body = _frame(top, upper, plot_h)
    for i, label in enumerate(labels):
        y: float = upper + plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            body.append(
                f'<rect x="{_pct(x_of(i) - bar_w / 2)}" y="{y:.1f}" width="{_pct(bar_w)}" height="{h:.1f}" '
                f'fill="{escape(s.color)}"><title>{escape(label)} · {escape(s.name)}: {_number(value)}</title></rect>'
            )
    body += _x_labels(labels, x_of, upper + plot_h)
    body += _legend(series, height + FONT_PX + 4)
    return _svg(height + _legend_height(series), title, body)


# A line chart's polylines are drawn in this many units across, then stretched to the plot's width.
LINE_UNITS = 1000


def line(labels: Sequence[str], series: Sequence[Series], *, title: str, height: int = 200) -> SafeString:
    """One polyline per series; a point per x label with its value in a <title>."""
    if not labels or not series or all(v <= 0 for s in series for v in s.values):
        return _empty(title)
    upper, lower = FONT_PX + 6, FONT_PX + 8
    top = nice_ceiling(max(v for s in series for v in s.values))
    plot_h = height - upper - lower
    # points inset 1 % from each edge, so the first and last circles are whole
    step = 0.98 / max(1, len(labels) - 1)

    def x_of(i: int) -> float:
        return 0.01 + step * i if len(labels) > 1 else 0.5

    def y_of(value: float) -> float:
        return plot_h * (1 - max(value, 0) / top)

    body = _frame(top, upper, plot_h)
    body.append(
        f'<svg x="0" y="{upper}" width="100%" height="{plot_h}" viewBox="0 0 {LINE_UNITS} {plot_h}" '
        'preserveAspectRatio="none" overflow="visible">'
    )
    for s in series:
        points = " ".join(f"{LINE_UNITS * x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(s.values))
        body.append(
            f'<polyline points="{points}" fill="none" stroke="{escape(s.color)}" stroke-width="2" '
            'vector-effect="non-scaling-stroke"/>'
        )
    body.append("</svg>")
    for s in series:
        body += [
            f'<circle cx="{_pct(x_of(i))}" cy="{upper + y_of(v):.1f}" r="2.5" fill="{escape(s.color)}">'
            f"<title>{escape(labels[i])} · {escape(s.name)}: {_number(v)}</title></circle>"
            for i, v in enumerate(s.values)
        ]
    body += _x_labels(labels, x_of, upper + plot_h)
    body += _legend(series, height + FONT_PX + 4)
    return _svg(height + _legend_height(series), title, body)
