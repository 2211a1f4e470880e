"""Charts for the report as inline SVG: no script, no external reference, readable offline and in print.

Every label can come from the web or the corpus (platform names, forum sources), so every piece
of text is escaped here; the SVG is built from numbers and escaped strings only.

    sentiment_over_time(days, zh)       volume per day (columns) and positive / negative share (lines)
    platform_mix(counts, zh)            posts per platform (horizontal bars)
    engine_coverage(rows, zh)           sources and paragraphs per engine (two bar panels)
    forum_activity(by_source, by_time, zh)  messages per speaker and over time

Each returns a Chart: its data (for the JSON), the SVG (empty when there is no data) and a note.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

PALETTE = ("#3b6ea8", "#e07b39", "#4f9d69", "#b5485d", "#7d5ba6", "#c9a227", "#2a9d8f", "#8a8a8a")
POSITIVE, NEGATIVE, VOLUME = "#2f8f5b", "#c0392b", "#c9d3df"
FONT = 12
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Chart:
    key: str
    title: str
    data: dict[str, Any] = field(default_factory=dict)
    svg: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "data": self.data, "note": self.note, "has_svg": bool(self.svg)}


def esc(value: Any, limit: int | None = None) -> str:
    text = _CTRL.sub("", str(value))
    if limit is not None and len(text) > limit:
        text = text[: max(1, limit - 1)] + "…"
    return html.escape(text, quote=True)


def _num(x: float) -> str:
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:g}" if float(x).is_integer() else f"{x:.1f}"


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (f'<svg viewBox="0 0 {width} {height}" width="100%" '
            f'role="img" aria-label="{esc(label, 200)}" class="chart" '
            f'font-size="{FONT}" preserveAspectRatio="xMidYMid meet">'
            f"<title>{esc(label, 200)}</title>" + "".join(body) + "</svg>")


def _text(x: float, y: float, text: Any, *, anchor: str = "start", fill: str = "#333", size: int | None = None,
          limit: int | None = 24, weight: str | None = None) -> str:
    extra = f' font-size="{size}"' if size else ""
    extra += f' font-weight="{weight}"' if weight else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>{esc(text, limit)}</text>'


def _hbars(items: Sequence[tuple[str, float]], *, x0: float, y0: float, width: float, label_w: float = 110,
           row_h: float = 24, color_cycle: bool = True, color: str = PALETTE[0]) -> tuple[list[str], float]:
    """Horizontal bars; returns the SVG parts and the height used."""
    parts: list[str] = []
    top = max((v for _, v in items), default=0) or 1
    bar_w = max(10.0, width - label_w - 60)
    for i, (label, value) in enumerate(items):
        y = y0 + i * row_h
        w = bar_w * (value / top) if value > 0 else 0
        fill = PALETTE[i % len(PALETTE)] if color_cycle else color
        parts.append(_text(x0 + label_w - 6, y + row_h * 0.62, label, anchor="end", limit=14))
        parts.append(f'<rect x="{x0 + label_w:.1f}" y="{y + 4:.1f}" width="{w:.1f}" height="{row_h - 8:.1f}" '
                     f'fill="{fill}" rx="2"/>')
        parts.append(_text(x0 + label_w + w + 4, y + row_h * 0.62, _num(value), fill="#555", limit=None))
    return parts, row_h * len(items)


def sentiment_over_time(days: Sequence[dict], zh: bool) -> Chart:
    """days: [{"day": "2025-03-01", "n": posts, "scored": n, "positive": n, "negative": n}], oldest first."""
    title = "情感随时间变化" if zh else "Sentiment over time"
    data = {"days": [dict(d) for d in days]}
    if not days:
        return Chart("sentiment_over_time", title, data, "",
                     "来源没有日期，无法绘制时间走势。" if zh else "The sources carry no dates: no timeline to draw.")
    width, height, left, right, top, bottom = 640, 250, 44, 44, 28, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(days)
    step = plot_w / n
    vmax = max(d["n"] for d in days) or 1
    parts = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>']
    for frac in (0.0, 0.5, 1.0):  # share axis on the right, volume on the left
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(_text(left + plot_w + 4, y + 4, f"{frac:.0%}", fill="#777", limit=None))
        parts.append(_text(left - 4, y + 4, _num(round(vmax * frac, 1)), anchor="end", fill="#777", limit=None))
    pos_pts, neg_pts = [], []
    label_every = max(1, n // 8)
    for i, d in enumerate(days):
        cx = left + step * (i + 0.5)
        h = plot_h * d["n"] / vmax
        parts.append(f'<rect x="{cx - step * 0.35:.1f}" y="{top + plot_h - h:.1f}" width="{step * 0.7:.1f}" '
                     f'height="{h:.1f}" fill="{VOLUME}"/>')
        if d.get("scored"):
            pos_pts.append((cx, top + plot_h * (1 - d["positive"] / d["scored"])))
            neg_pts.append((cx, top + plot_h * (1 - d["negative"] / d["scored"])))
        if i % label_every == 0 or i == n - 1:
            parts.append(_text(cx, top + plot_h + 16, str(d["day"])[5:] or d["day"], anchor="middle", fill="#555",
                               limit=10))
    for pts, color in ((pos_pts, POSITIVE), (neg_pts, NEGATIVE)):
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
    legend = [("■", VOLUME, "来源数（左轴）" if zh else "sources (left axis)"),
              ("●", POSITIVE, "正面占比" if zh else "positive share"),
              ("●", NEGATIVE, "负面占比" if zh else "negative share")]
    x = left
    for mark, color, label in legend:
        parts.append(_text(x, height - 8, mark, fill=color, limit=None))
        parts.append(_text(x + 14, height - 8, label, fill="#444", limit=None))
        x += 150
    scored = sum(d.get("scored", 0) for d in days)
    note = "" if scored else ("来源没有情感分值，仅显示数量。" if zh else "No sentiment scores: volume only.")
    return Chart("sentiment_over_time", title, data, _svg(width, height, title, parts), note)


def platform_mix(counts: Sequence[tuple[str, int]], zh: bool, limit: int = 10) -> Chart:
    title = "平台分布" if zh else "Platform mix"
    items = sorted(((str(k), int(v)) for k, v in counts if v > 0), key=lambda kv: (-kv[1], kv[0]))
    if len(items) > limit:
        items = items[: limit - 1] + [("其他" if zh else "other", sum(v for _, v in items[limit - 1:]))]
    data = {"platforms": [{"platform": k, "n": v} for k, v in items]}
    if not items:
        return Chart("platform_mix", title, data, "", "没有来源。" if zh else "No sources.")
    parts, h = _hbars(items, x0=0, y0=8, width=640)
    return Chart("platform_mix", title, data, _svg(640, int(h + 16), title, parts))


def engine_coverage(rows: Sequence[dict], zh: bool) -> Chart:
    """rows: [{"engine": "query", "label": "Query", "sources": n, "paragraphs": n, "status": "completed"}]."""
    title = "各引擎覆盖" if zh else "Engine coverage"
    data = {"engines": [dict(r) for r in rows]}
    if not rows:
        return Chart("engine_coverage", title, data, "", "本次运行没有引擎。" if zh else "This run has no engines.")
    half = 320
    parts = [_text(0, 14, "来源数" if zh else "Sources", weight="bold", limit=None),
             _text(half, 14, "段落数" if zh else "Paragraphs", weight="bold", limit=None)]
    p1, h1 = _hbars([(r["label"], r["sources"]) for r in rows], x0=0, y0=22, width=half, label_w=80)
    p2, _ = _hbars([(r["label"], r["paragraphs"]) for r in rows], x0=half, y0=22, width=half, label_w=80)
    note = ""
    if all(r["sources"] == 0 and r["paragraphs"] == 0 for r in rows):
        note = "引擎没有产出任何内容。" if zh else "The engines produced nothing."
    return Chart("engine_coverage", title, data, _svg(640, int(h1 + 30), title, parts + p1 + p2), note)


def forum_activity(by_source: Sequence[tuple[str, int]], by_time: Sequence[tuple[str, int]], zh: bool) -> Chart:
    title = "论坛活跃度" if zh else "Forum activity"
    data = {"by_source": [{"source": s, "n": n} for s, n in by_source],
            "over_time": [{"bucket": b, "n": n} for b, n in by_time]}
    if not any(n for _, n in by_source):
        return Chart("forum_activity", title, data, "", "论坛没有发言。" if zh else "The forum has no messages.")
    parts = [_text(0, 14, "按发言方" if zh else "By speaker", weight="bold", limit=None)]
    bars, h = _hbars(list(by_source), x0=0, y0=22, width=640, label_w=90)
    parts += bars
    y0 = 22 + h + 16
    height = y0
    if len(by_time) > 1:
        parts.append(_text(0, y0 + 6, "随时间" if zh else "Over time", weight="bold", limit=None))
        plot_h, base = 70, y0 + 16 + 70
        top = max(n for _, n in by_time) or 1
        step = 560 / len(by_time)
        for i, (label, n) in enumerate(by_time):
            x = 60 + step * i
            h2 = plot_h * n / top
            parts.append(f'<rect x="{x + step * 0.15:.1f}" y="{base - h2:.1f}" width="{step * 0.7:.1f}" '
                         f'height="{h2:.1f}" fill="{PALETTE[0]}"/>')
            if i in (0, len(by_time) - 1) or len(by_time) <= 8:
                parts.append(_text(x + step / 2, base + 14, label, anchor="middle", fill="#555", limit=8))
        parts.append(f'<line x1="60" y1="{base}" x2="620" y2="{base}" stroke="#999"/>')
        height = base + 22
    return Chart("forum_activity", title, data, _svg(640, int(height), title, parts))
