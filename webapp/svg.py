"""Server-drawn SVG charts for the web app's reports (docs/webapp.md, "Reports").

No JavaScript and nothing from a CDN: a chart is a string of SVG drawn here from plain numbers, so it
shows offline, in a printout and with scripts off. Three kinds, each scaled to its own largest value
(rounded up to 1, 2 or 5 × 10ⁿ so the axis reads in round numbers):

- `hbars`: one horizontal bar per label (counts by status, failures by error code, top links);
- `columns`: vertical columns over a row of x labels, one or more series stacked (per time bucket or day);
- `line`: one polyline per series over the same x labels (cumulative figures over time).

Every text that reaches the SVG is escaped (labels are data: link targets, line names, error codes), and
every bar or point carries a <title> with its exact value, which a browser shows on hover. The width is
the viewBox's; CSS scales the picture to its container (`svg.chart { width: 100%; height: auto }`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FONT = 'font-family="system-ui, sans-serif" font-size="11"'
AXIS = "#8c959f"
GRID = "#eef0f2"
DEFAULT_COLOR = "#0b5cad"


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


def _svg(width: int, height: int, title: str, body: list[str]) -> SafeString:
    label = escape(title)
    return mark_safe(  # noqa: S308 - every text placed in `body` went through escape()
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{label}"><title>{label}</title>{"".join(body)}</svg>'
    )


def _empty(width: int, title: str) -> SafeString:
    return _svg(width, 40, title, [f'<text x="8" y="24" {FONT} fill="{AXIS}">No data yet.</text>'])


def hbars(
    rows: Sequence[tuple[str, float]],
    *,
    title: str,
    color: str = DEFAULT_COLOR,
    colors: dict[str, str] | None = None,
    width: int = 560,
    suffix: str = "",
) -> SafeString:
    """One bar per (label, value), in the order given; `colors` by label overrides `color`."""
    if not rows or all(v <= 0 for _, v in rows):
        return _empty(width, title)
    bar, gap, label_w, value_w = 18, 6, 170, 70
    top = nice_ceiling(max(v for _, v in rows))
    span = width - label_w - value_w
    height = len(rows) * (bar + gap) + gap
    body = []
    for i, (label, value) in enumerate(rows):
        y = gap + i * (bar + gap)
        w = span * max(value, 0) / top
        fill = (colors or {}).get(label, color)
        shown = label if len(label) <= 28 else label[:27] + "…"
        body.append(
            f"<g><title>{escape(label)}: {_number(value)}{escape(suffix)}</title>"
            f'<text x="{label_w - 6}" y="{y + bar - 5}" text-anchor="end" {FONT} fill="#1f2328">{escape(shown)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar}" rx="2" fill="{escape(fill)}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar - 5}" {FONT} fill="#1f2328">'
            f"{_number(value)}{escape(suffix)}</text></g>"
        )
    return _svg(width, height, title, body)


def _frame(width: int, height: int, top: float, pad: tuple[int, int, int, int]) -> list[str]:
    """Horizontal grid lines at 0, ½ and the top of the scale, with their values on the left."""
    left, right, upper, lower = pad
    plot_h = height - upper - lower
    parts = []
    for fraction in (0, 0.5, 1):
        y = upper + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{AXIS if fraction == 0 else GRID}"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="{AXIS}">'
            f"{_number(top * fraction)}</text>"
        )
    return parts


def _x_labels(labels: Sequence[str], x_of, baseline: float) -> list[str]:
    """At most ~8 x labels, evenly spaced, so they never overlap at any width."""
    every = max(1, math.ceil(len(labels) / 8))
    return [
        f'<text x="{x_of(i):.1f}" y="{baseline + 14:.1f}" text-anchor="middle" {FONT} fill="{AXIS}">'
        f"{escape(label)}</text>"
        for i, label in enumerate(labels)
        if i % every == 0
    ]


def _legend(series: Sequence[Series], y: float, left: int) -> list[str]:
    parts, x = [], left
    for s in series:
        parts.append(
            f'<rect x="{x}" y="{y - 9:.1f}" width="10" height="10" fill="{escape(s.color)}"/>'
            f'<text x="{x + 14}" y="{y:.1f}" {FONT} fill="#1f2328">{escape(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return parts


def columns(
    labels: Sequence[str], series: Sequence[Series], *, title: str, width: int = 640, height: int = 220
) -> SafeString:
    """Stacked columns: at x label i, each series' values[i] on top of the previous series'."""
    if not labels or not series or all(v <= 0 for s in series for v in s.values):
        return _empty(width, title)
    pad = (48, 8, 10, 44 if len(series) > 1 else 24)
    left, right, upper, lower = pad
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = nice_ceiling(max(totals))
    plot_w, plot_h = width - left - right, height - upper - lower
    slot = plot_w / len(labels)
    bar_w = max(1.0, slot * 0.75)

    def x_of(i: int) -> float:
        return left + slot * (i + 0.5)

    body = _frame(width, height, top, pad)
    for i, label in enumerate(labels):
        y: float = upper + plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            body.append(
                f'<rect x="{x_of(i) - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{escape(s.color)}"><title>{escape(label)} · {escape(s.name)}: {_number(value)}</title></rect>'
            )
    body += _x_labels(labels, x_of, upper + plot_h)
    if len(series) > 1:
        body += _legend(series, height - 6, left)
    return _svg(width, height, title, body)


def line(
    labels: Sequence[str], series: Sequence[Series], *, title: str, width: int = 640, height: int = 200
) -> SafeString:
    """One polyline per series; a point per x label with its value in a <title>."""
    if not labels or not series or all(v <= 0 for s in series for v in s.values):
        return _empty(width, title)
    pad = (48, 12, 10, 44 if len(series) > 1 else 24)
    left, right, upper, lower = pad
    top = nice_ceiling(max(v for s in series for v in s.values))
    plot_w, plot_h = width - left - right, height - upper - lower
    step = plot_w / max(1, len(labels) - 1)

    def x_of(i: int) -> float:
        return left + step * i if len(labels) > 1 else left + plot_w / 2

    def y_of(value: float) -> float:
        return upper + plot_h * (1 - max(value, 0) / top)

    body = _frame(width, height, top, pad)
    for s in series:
        points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(s.values))
        body.append(f'<polyline points="{points}" fill="none" stroke="{escape(s.color)}" stroke-width="2"/>')
        body += [
            f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="2.5" fill="{escape(s.color)}">'
            f"<title>{escape(labels[i])} · {escape(s.name)}: {_number(v)}</title></circle>"
            for i, v in enumerate(s.values)
        ]
    body += _x_labels(labels, x_of, upper + plot_h)
    if len(series) > 1:
        body += _legend(series, height - 6, left)
    return _svg(width, height, title, body)
