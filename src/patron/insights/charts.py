"""Charts drawn on the server as SVG: bar, stacked bar, line, funnel and pie.

No script and no style attribute (the Content Security Policy allows neither):
colours are SVG presentation attributes. Each chart is ``role="img"`` with a
``<title>`` and a ``<desc>``; the values are in the table shown with it, which
is also where keyboard users find the links. Each bar, point, funnel step or
slice links to the records behind it and carries its value as a tooltip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import count

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 56
# Colour-blind-friendly (Okabe-Ito), dark enough for white labels.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#555555", "#882255")
_ids = count(1)


@dataclass
class Series:
    name: str
    values: list[float]


@dataclass
class ChartData:
    categories: list[str]
    series: list[Series]
    links: list[str] = field(default_factory=list)  # one per category ("" : none)
    value_label: str = ""

    @property
    def empty(self) -> bool:
        return not self.categories or not any(v for s in self.series for v in s.values)


def _number(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _linked(link: str, label: str, inner: str) -> str:
    if not link:
        return inner
    return str(format_html('<a href="{}" aria-label="{}">', link, label)) + inner + "</a>"


def _scale(maximum: float) -> float:
    """A round top for the value axis, whose quarters are round too."""
    if maximum <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(maximum))
    for step in (1, 2, 4, 6, 8, 10):
        if step * magnitude >= maximum:
            return step * magnitude
    return 10 * magnitude


def _axes(top: float) -> list[str]:
    parts = []
    plot_height = HEIGHT - TOP - BOTTOM
    for index in range(5):
        value = top * index / 4
        y = HEIGHT - BOTTOM - plot_height * index / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            'stroke="#dee2e6" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#495057">{escape(_number(value))}</text>'
        )
    return parts


def _category_labels(categories: list[str], slot: float) -> list[str]:
    parts = []
    step = max(1, math.ceil(len(categories) * 60 / (WIDTH - LEFT - RIGHT)))
    for index, name in enumerate(categories):
        if index % step:
            continue
        x = LEFT + slot * (index + 0.5)
        short = name if len(name) <= 14 else name[:13] + "…"
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
            f'fill="#212529">{escape(short)}</text>'
        )
    return parts


def _legend(series: list[Series]) -> list[str]:
    if len(series) < 2:
        return []
    parts, x = [], LEFT
    for index, item in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="{HEIGHT - 18}" width="10" height="10" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + 14}" y="{HEIGHT - 9}" font-size="11" fill="#212529">'
            f"{escape(item.name)}</text>"
        )
        x += 24 + 7 * len(item.name)
    return parts


def _bars(data: ChartData, stacked: bool) -> list[str]:
    slot = (WIDTH - LEFT - RIGHT) / max(len(data.categories), 1)
    plot_height = HEIGHT - TOP - BOTTOM
    if stacked:
        maximum = max(
            (sum(s.values[i] for s in data.series) for i in range(len(data.categories))),
            default=0,
        )
    else:
        maximum = max((v for s in data.series for v in s.values), default=0)
    top = _scale(maximum)
    parts = _axes(top)
    groups = 1 if stacked else len(data.series)
    width = slot * 0.7 / groups
    for index, category in enumerate(data.categories):
        link = data.links[index] if index < len(data.links) else ""
        base: float = HEIGHT - BOTTOM
        bars = []
        for number, item in enumerate(data.series):
            value = item.values[index]
            if value <= 0:
                continue
            height = plot_height * value / top
            x = LEFT + slot * index + slot * 0.15 + (0 if stacked else number * width)
            y = base - height
            name = f" · {item.name}" if len(data.series) > 1 else ""
            label = f"{category}{name}: {_number(value)}"
            bars.append(
                f'<rect class="chart-bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                f'height="{height:.1f}" fill="{PALETTE[number % len(PALETTE)]}">'
                f"<title>{escape(label)}</title></rect>"
            )
            if stacked:
                base = y
        parts.append(_linked(link, category, "".join(bars)))
    return parts + _category_labels(data.categories, slot) + _legend(data.series)


def _lines(data: ChartData) -> list[str]:
    slot = (WIDTH - LEFT - RIGHT) / max(len(data.categories), 1)
    plot_height = HEIGHT - TOP - BOTTOM
    top = _scale(max((v for s in data.series for v in s.values), default=0))
    parts = _axes(top)
    for number, item in enumerate(data.series):
        colour = PALETTE[number % len(PALETTE)]
        points = [
            (LEFT + slot * (i + 0.5), HEIGHT - BOTTOM - plot_height * v / top)
            for i, v in enumerate(item.values)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for index, (x, y) in enumerate(points):
            link = data.links[index] if index < len(data.links) else ""
            label = f"{data.categories[index]}: {_number(item.values[index])}"
            dot = (
                f'<circle class="chart-point" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">'
                f"<title>{escape(label)}</title></circle>"
            )
            parts.append(_linked(link, data.categories[index], dot))
    return parts + _category_labels(data.categories, slot) + _legend(data.series)


# A funnel's stage names sit left of its bars, whole ("Marketing-qualified lead").
FUNNEL_LEFT = 168


def _funnel(data: ChartData) -> list[str]:
    values = data.series[0].values if data.series else []
    maximum = max(values, default=0) or 1
    step = (HEIGHT - TOP - 8) / max(len(values), 1)
    area = WIDTH - FUNNEL_LEFT - RIGHT
    centre = FUNNEL_LEFT + area / 2
    parts = []
    for index, value in enumerate(values):
        width = max(area * value / maximum, 2)
        y = TOP + step * index
        category = data.categories[index]
        label = f"{category}: {_number(value)}"
        name = category if len(category) <= 28 else category[:27] + "…"
        # The number inside a bar wide enough to hold it, beside a narrow one.
        if width >= 40:
            number = (
                f'<text x="{centre:.1f}" y="{y + step * 0.5:.1f}" text-anchor="middle" '
                f'font-size="11" fill="#ffffff">{escape(_number(value))}</text>'
            )
        else:
            number = (
                f'<text x="{centre + width / 2 + 6:.1f}" y="{y + step * 0.5:.1f}" '
                f'text-anchor="start" font-size="11" fill="#212529">{escape(_number(value))}</text>'
            )
        shape = (
            f'<rect class="chart-bar" x="{centre - width / 2:.1f}" y="{y:.1f}" '
            f'width="{width:.1f}" height="{step * 0.8:.1f}" fill="{PALETTE[0]}">'
            f"<title>{escape(label)}</title></rect>"
            f'<text x="{FUNNEL_LEFT - 8}" y="{y + step * 0.5:.1f}" text-anchor="end" '
            f'font-size="11" fill="#212529">{escape(name)}</text>{number}'
        )
        link = data.links[index] if index < len(data.links) else ""
        parts.append(_linked(link, category, shape))
    return parts


def _pie(data: ChartData) -> list[str]:
    values = [max(v, 0) for v in (data.series[0].values if data.series else [])]
    total = sum(values)
    if not total:
        return []
    radius = (HEIGHT - TOP - 24) / 2
    cx, cy = LEFT + radius, TOP + radius
    parts, angle = [], -math.pi / 2
    for index, value in enumerate(values):
        if not value:
            continue
        colour = PALETTE[index % len(PALETTE)]
        label = f"{data.categories[index]}: {_number(value)} ({value / total:.0%})"
        if value == total:
            shape = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius:.1f}" fill="{colour}">'
        else:
            end = angle + 2 * math.pi * value / total
            large = 1 if end - angle > math.pi else 0
            x1, y1 = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
            x2, y2 = cx + radius * math.cos(end), cy + radius * math.sin(end)
            shape = (
                f'<path class="chart-slice" d="M{cx:.1f},{cy:.1f} L{x1:.1f},{y1:.1f} '
                f'A{radius:.1f},{radius:.1f} 0 {large} 1 {x2:.1f},{y2:.1f} Z" fill="{colour}">'
            )
            angle = end
        shape += f"<title>{escape(label)}</title>" + ("</circle>" if value == total else "</path>")
        link = data.links[index] if index < len(data.links) else ""
        parts.append(_linked(link, data.categories[index], shape))
        y = TOP + 14 + 18 * index
        parts.append(
            f'<rect x="{cx + radius + 24:.1f}" y="{y - 10}" width="10" height="10" '
            f'fill="{colour}"/>'
            f'<text x="{cx + radius + 40:.1f}" y="{y}" font-size="11" fill="#212529">'
            f"{escape(label)}</text>"
        )
    return parts


def render(data: ChartData, display: str, *, title: str, description: str) -> SafeString:
    """The chart as an inline ``<svg>``; ``display`` is one of catalog.CHARTS."""
    if display == "pie":
        parts = _pie(data)
    elif display == "funnel":
        parts = _funnel(data)
    elif display == "line":
        parts = _lines(data)
    else:
        parts = _bars(data, stacked=display == "stacked_bar")
    number = next(_ids)
    return mark_safe(  # noqa: S308 - every text inside is escaped above
        f'<svg class="report-chart w-100 h-auto" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title-{number} chart-desc-{number}" '
        f'xmlns="http://www.w3.org/2000/svg" data-display="{escape(display)}">'
        f'<title id="chart-title-{number}">{escape(title)}</title>'
        f'<desc id="chart-desc-{number}">{escape(description)}</desc>' + "".join(parts) + "</svg>"
    )
