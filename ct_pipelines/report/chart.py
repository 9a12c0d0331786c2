"""A small trend chart drawn as inline SVG on the server: no JavaScript, no chart library, prints well."""

from __future__ import annotations

from html import escape

from ct_pipelines.report.warehouse import RunRow

SERIES = (
    ("rows_in", "Rows checked", "series-in"),
    ("set_aside", "Set aside", "series-aside"),
    ("published", "Published", "series-published"),
)


def trend_svg(runs: list[RunRow], width: int = 560, height: int = 180) -> str:
    """Rows in, set aside and published per run (oldest left); an empty string with fewer than one run."""
    if not runs:
        return ""
    left, right, top, bottom = 56, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([getattr(r, key) or 0 for r in runs for key, _, _ in SERIES] + [1])
    step = plot_w / max(len(runs) - 1, 1)

    def xy(i: int, value: int) -> tuple[float, float]:
        return left + i * step if len(runs) > 1 else left + plot_w / 2, top + plot_h * (1 - value / peak)

    label = "; ".join(
        f"run {i + 1}: "
        + ", ".join(
            f"{name.lower()} {getattr(r, key) if getattr(r, key) is not None else 'none'}"
            for key, name, _ in SERIES
        )
        for i, r in enumerate(runs)
    )
    parts = [
        f'<svg class="trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="Trend over the last {len(runs)} runs. {escape(label)}">',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{peak:,}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
        f'<text class="tick" x="{left}" y="{height - 8}">oldest</text>',
        f'<text class="tick" x="{left + plot_w}" y="{height - 8}" text-anchor="end">latest</text>',
    ]
    for key, name, css in SERIES:
        points = [(i, getattr(r, key)) for i, r in enumerate(runs) if getattr(r, key) is not None]
        if not points:
            continue
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in points))
        parts.append(f'<polyline class="{css}" points="{coords}"><title>{name}</title></polyline>')
        for i, v in points:
            x, y = xy(i, v)
            parts.append(
                f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{name}: {v:,}</title></circle>'
            )
    parts.append("</svg>")
    return "".join(parts)
