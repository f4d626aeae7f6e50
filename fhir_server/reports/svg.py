"""Inline SVG charts (no JavaScript, no build step): horizontal bars and a per-quarter trend."""

from __future__ import annotations

from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def _fmt(v: float) -> str:
    return f"{v:,.0f}".replace(",", ".") if float(v).is_integer() else f"{v:,.2f}"


def bar_chart(items: list[tuple[str, float]], title: str, chart_id: str) -> str:
    items = sorted(items, key=lambda kv: -kv[1])[:25]
    bar_h, label_w, width = 22, 300, 760
    height = 40 + bar_h * max(len(items), 1)
    top = max((v for _, v in items), default=0) or 1
    out = [f'<svg id="{escape(chart_id)}" class="chart" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f'<title>{escape(title)}</title>',
           f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>']
    if not items:
        out.append('<text x="0" y="40" font-size="12">Không có số liệu / no data</text>')
    for i, (label, value) in enumerate(items):
        y = 28 + i * bar_h
        w = (width - label_w - 80) * value / top
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end">{escape(label[:45])}</text>')
        out.append(f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" '
                   f'fill="{PALETTE[0]}" data-label="{escape(label)}" data-value="{value}"/>')
        out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="12">{_fmt(value)}</text>')
    out.append("</svg>")
    return "".join(out)


def trend_chart(labels: list[str], series: list[tuple[str, list[float]]], title: str, chart_id: str) -> str:
    width, height, left, bottom, top_pad = 760, 300, 60, 40, 50
    plot_w, plot_h = width - left - 300, height - bottom - top_pad
    top = max((v for _, vals in series for v in vals), default=0) or 1
    n = max(len(labels), 1)
    step = plot_w / max(n - 1, 1)
    out = [f'<svg id="{escape(chart_id)}" class="chart" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f'<title>{escape(title)}</title>',
           f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
           f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" stroke="#444"/>',
           f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="#444"/>',
           f'<text x="{left - 6}" y="{top_pad + 4}" font-size="11" text-anchor="end">{_fmt(top)}</text>',
           f'<text x="{left - 6}" y="{top_pad + plot_h}" font-size="11" text-anchor="end">0</text>']
    for i, label in enumerate(labels):
        x = left + i * step
        out.append(f'<text x="{x:.1f}" y="{top_pad + plot_h + 18}" font-size="11" text-anchor="middle">'
                   f'{escape(label)}</text>')
    for s, (name, values) in enumerate(series):
        color = PALETTE[s % len(PALETTE)]
        pts = [(left + i * step, top_pad + plot_h - plot_h * v / top) for i, v in enumerate(values)]
        out.append(f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" '
                   f'data-name="{escape(name)}" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}"/>')
        for (x, y), v in zip(pts, values, strict=True):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}" data-value="{v}"/>')
        ly = top_pad + 14 * s
        out.append(f'<rect x="{left + plot_w + 16}" y="{ly}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{left + plot_w + 30}" y="{ly + 9}" font-size="11">{escape(name[:44])}</text>')
    out.append("</svg>")
    return "".join(out)
