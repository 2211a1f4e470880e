"""Charts for the report as inline SVG: no script, no external reference, readable offline and in print.

Every label can come from the web or the corpus (platform names, forum sources), so every piece
of text is escaped here; the SVG is built from numbers and escaped strings only.

    sentiment_over_time(days, zh)            positive / neutral / negative shares per day or week
                                             (stacked columns), n per point, at least MIN_SAMPLE
                                             scored sources per point (smaller bins are merged)
    platform_mix(counts, zh)                 posts per platform (horizontal bars)
    engine_coverage(rows, zh)                sources and paragraphs per engine (two bar panels)
    forum_activity(by_source, timestamps, zh)  messages per speaker, and over real clock time (UTC)

Each returns a Chart: its data (for the JSON), the SVG (empty when there is no data) and a note.
Time axes are labelled with real dates and clock times, never with positions.
"""
from __future__ import annotations

import html
import math
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any, Sequence

from core.reporting.types import ReportChart as Chart  # the chart as the report document holds it
from core.text.dates import parse_date

PALETTE = ("#3b6ea8", "#e07b39", "#4f9d69", "#b5485d", "#7d5ba6", "#c9a227", "#2a9d8f", "#8a8a8a")
POSITIVE, NEUTRAL, NEGATIVE, VOLUME = "#2f8f5b", "#b8bec6", "#c0392b", "#c9d3df"
LABEL_NAMES = {"positive": {True: "正面", False: "positive"}, "neutral": {True: "中性", False: "neutral"},
               "negative": {True: "负面", False: "negative"}}
COUNT_KEYS = ("n", "scored", "positive", "neutral", "negative")
MIN_SAMPLE = 5            # scored sources a point of the sentiment chart rests on, at least
WEEKLY_AFTER_DAYS = 45    # a longer span is drawn by week
STEPS_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
FONT = 12
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


_SIZE_RE = re.compile(r'^<svg viewBox="0 0 (\d+) (\d+)" width="100%"')


def image_svg(svg: str) -> str:
    """A chart's SVG (as ``_svg`` writes it) for an <img>: a fixed width and height from its viewBox,
    since a percentage width gives an image no size."""
    m = _SIZE_RE.match(svg or "")
    if not m:
        return svg
    return f'<svg viewBox="0 0 {m.group(1)} {m.group(2)}" width="{m.group(1)}" height="{m.group(2)}"' + svg[m.end():]


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


# --- sentiment over time ----------------------------------------------------------------------

def _parse_day(value: Any) -> date | None:
    try:
        return parse_date(str(value)[:10])
    except ValueError:
        return None


def _fmt_range(start: date, end: date, with_year: bool) -> str:
    fmt = "%Y-%m-%d" if with_year else "%m-%d"
    return start.strftime(fmt) if start == end else f"{start.strftime(fmt)}–{end.strftime(fmt)}"


def sentiment_bins(days: Sequence[dict], min_n: int = MIN_SAMPLE) -> dict[str, Any]:
    """Days → the points of the sentiment chart.

    days: [{"day": "2025-03-01", "n": sources, "scored": n, "positive": n, "neutral": n, "negative": n}].
    The points are by day, or by ISO week (Monday to Sunday) when the span is longer than
    WEEKLY_AFTER_DAYS days or the days are sparse (a median day has fewer than ``min_n`` scored
    sources over more than two weeks). A bin with fewer than ``min_n`` scored sources is merged
    with the bins after it (the last one with the bin before it), so every point rests on at
    least ``min_n`` scored sources; when all of them together have fewer, there is no point.

    A point's start and end (and its label) are the first and last day with sources in it.
    Returns {"granularity", "min_n", "points": [{"start", "end", "label", "n", "scored",
    "positive", "neutral", "negative", "bins"}], "raw": [bins before merging], "merged": how many
    bins were merged into a neighbour, "scored": total, "dated": total sources with a date}."""
    rows = [(d, r) for r in days if (d := _parse_day(r.get("day"))) is not None]
    rows.sort(key=lambda t: t[0])
    out: dict[str, Any] = {"granularity": "day", "min_n": min_n, "points": [], "raw": [], "merged": 0,
                           "scored": sum(int(r.get("scored") or 0) for _, r in rows),
                           "dated": sum(int(r.get("n") or 0) for _, r in rows)}
    if not rows:
        return out
    first, last = rows[0][0], rows[-1][0]
    span = (last - first).days + 1
    per_day = sorted(int(r.get("scored") or 0) for _, r in rows)
    sparse = span > 14 and per_day[len(per_day) // 2] < min_n
    weekly = span > WEEKLY_AFTER_DAYS or sparse
    out["granularity"] = "week" if weekly else "day"
    raw: dict[date, dict] = {}
    for d, r in rows:  # a bin's start and end are the first and last day with sources in it
        key = d - timedelta(days=d.weekday()) if weekly else d
        b = raw.setdefault(key, {"start": d, "end": d, **{k: 0 for k in COUNT_KEYS}})
        b["start"], b["end"] = min(b["start"], d), max(b["end"], d)
        for k in COUNT_KEYS:
            b[k] += int(r.get(k) or 0)
    bins = [raw[k] for k in sorted(raw)]
    out["raw"] = [_point(b, span > 300) for b in bins]
    points: list[dict] = []
    acc: dict | None = None
    for b in bins:
        if acc is None:
            acc = {**b, "bins": 1}
        else:
            acc["end"] = b["end"]
            acc["bins"] += 1
            for k in COUNT_KEYS:
                acc[k] += b[k]
        if acc["scored"] >= min_n:
            points.append(acc)
            acc = None
    if acc is not None and points:  # a short tail joins the last point
        last_point = points[-1]
        last_point["end"] = acc["end"]
        last_point["bins"] += acc["bins"]
        for k in COUNT_KEYS:
            last_point[k] += acc[k]
    out["points"] = [_point(p, span > 300) for p in points]
    out["merged"] = sum(1 for b in bins if b["scored"] < min_n) if points else 0
    return out


def _point(b: dict, with_year: bool) -> dict:
    return {"start": b["start"].isoformat(), "end": b["end"].isoformat(),
            "label": _fmt_range(b["start"], b["end"], with_year), "bins": b.get("bins", 1),
            **{k: b[k] for k in COUNT_KEYS}}


def sentiment_over_time(days: Sequence[dict], zh: bool, *, min_n: int = MIN_SAMPLE) -> Chart:
    """Shares of positive, neutral and negative sources per day or week (stacked columns), each
    labelled with the number of scored sources it rests on; see ``sentiment_bins``."""
    title = "情感随时间变化" if zh else "Sentiment over time"
    binned = sentiment_bins(days, min_n)
    data = {"days": [dict(d) for d in days], **{k: v for k, v in binned.items() if k != "raw"},
            "bins_before_merging": binned["raw"]}
    if not binned["raw"]:
        return Chart("sentiment_over_time", title, data, "",
                     "来源没有日期，无法绘制时间走势。" if zh else "The sources carry no dates: no timeline to draw.")
    unit_zh, unit_en = ("周", "week") if binned["granularity"] == "week" else ("日", "day")
    points = binned["points"]
    notes: list[str] = []
    if not points:
        notes.append(f"可判定情感的来源只有 {binned['scored']} 条，少于每个点所需的 {min_n} 条，不绘制情感走势；"
                     f"图中为按{unit_zh}统计的来源数（共 {binned['dated']} 条有日期的来源）。" if zh else
                     f"Only {binned['scored']} sources have a sentiment, fewer than the {min_n} a point needs: no "
                     f"sentiment trend is drawn. The columns count sources per {unit_en} "
                     f"({binned['dated']} dated sources).")
        svg = _volume_columns(binned["raw"], title, zh)
        return Chart("sentiment_over_time", title, data, svg, " ".join(notes))
    if binned["merged"]:
        notes.append(f"{binned['merged']} 个{unit_zh}期的可判定来源少于 {min_n} 条，已与相邻时段合并。" if zh else
                     f"{binned['merged']} {unit_en}s with fewer than {min_n} scored sources were merged with "
                     "their neighbours.")
    width, height, left, right, top, bottom = 640, 270, 44, 12, 30, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(points)
    step = plot_w / n
    col_w = min(step * 0.7, 90)
    parts = []
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(_text(left - 4, y + 4, f"{frac:.0%}", anchor="end", fill="#777", limit=None))
    label_every = max(1, math.ceil(n / 8))
    for i, p in enumerate(points):
        cx = left + step * (i + 0.5)
        y = top + plot_h
        for key, color in (("negative", NEGATIVE), ("neutral", NEUTRAL), ("positive", POSITIVE)):
            h = plot_h * p[key] / p["scored"]
            if h > 0:
                y -= h
                parts.append(f'<rect x="{cx - col_w / 2:.1f}" y="{y:.1f}" width="{col_w:.1f}" height="{h:.1f}" '
                             f'fill="{color}"><title>{esc(_point_title(p, zh), 200)}</title></rect>')
        parts.append(_text(cx, top - 6, f"n={p['scored']}", anchor="middle", fill="#444", limit=None))
        if i % label_every == 0 or i == n - 1:
            parts.append(_text(cx, top + plot_h + 16, p["label"], anchor="middle", fill="#555", limit=None,
                               size=FONT - 1))
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>')
    first, last = points[0]["start"], points[-1]["end"]
    axis = (f"日期（按{unit_zh}，{first} 至 {last}；n = 每个点的可判定来源数，每点至少 {min_n} 条）" if zh else
            f"Date (by {unit_en}, {first} to {last}; n = scored sources per point, at least {min_n})")
    parts.append(_text(left + plot_w / 2, top + plot_h + 34, axis, anchor="middle", fill="#555", limit=None,
                       size=FONT - 1))
    x = left
    for color, label in ((POSITIVE, LABEL_NAMES["positive"][zh]), (NEUTRAL, LABEL_NAMES["neutral"][zh]),
                         (NEGATIVE, LABEL_NAMES["negative"][zh])):
        parts.append(f'<rect x="{x}" y="{height - 18}" width="10" height="10" fill="{color}"/>')
        parts.append(_text(x + 14, height - 9, label, fill="#444", limit=None))
        x += 90
    return Chart("sentiment_over_time", title, data, _svg(width, height, title, parts), " ".join(notes))


def _point_title(p: dict, zh: bool) -> str:
    parts = [f"{LABEL_NAMES[k][zh]} {p[k]}" for k in ("positive", "neutral", "negative")]
    return f"{p['label']}: " + ", ".join(parts) + (f" / {p['scored']}")


def _volume_columns(bins: Sequence[dict], title: str, zh: bool) -> str:
    """Sources per bin, when there are too few scored sources for shares."""
    width, height, left, right, top, bottom = 640, 200, 44, 12, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(bins)
    step = plot_w / n
    col_w = min(step * 0.7, 90)
    vmax = max((b["n"] for b in bins), default=0) or 1
    parts = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>']
    label_every = max(1, math.ceil(n / 8))
    for i, b in enumerate(bins):
        cx = left + step * (i + 0.5)
        h = plot_h * b["n"] / vmax
        parts.append(f'<rect x="{cx - col_w / 2:.1f}" y="{top + plot_h - h:.1f}" width="{col_w:.1f}" '
                     f'height="{h:.1f}" fill="{VOLUME}"/>')
        parts.append(_text(cx, top + plot_h - h - 4, str(b["n"]), anchor="middle", fill="#444", limit=None))
        if i % label_every == 0 or i == n - 1:
            parts.append(_text(cx, top + plot_h + 16, b["label"], anchor="middle", fill="#555", limit=None,
                               size=FONT - 1))
    parts.append(_text(left, height - 6, "来源数" if zh else "sources", fill="#555", limit=None))
    return _svg(width, height, title, parts)


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


# --- forum activity ---------------------------------------------------------------------------

def time_buckets(timestamps: Sequence[datetime], max_buckets: int = 12, min_buckets: int = 6) -> dict[str, Any]:
    """Messages per clock-time bucket: a step from STEPS_MINUTES giving at most ``max_buckets``
    buckets over the span, aligned to the step; a short span (a single instant included) is
    padded on both sides to ``min_buckets`` buckets, so the axis shows real times around it.

    Returns {"step_minutes", "start", "end", "buckets": [{"start": iso, "label", "n"}]}."""
    ts = sorted(t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t
                for t in timestamps if isinstance(t, datetime))
    if not ts:
        return {"step_minutes": 0, "start": None, "end": None, "buckets": []}
    t0, t1 = ts[0], ts[-1]
    span_min = (t1 - t0).total_seconds() / 60
    step = next((s for s in STEPS_MINUTES if span_min / s < max_buckets), STEPS_MINUTES[-1])
    if span_min / step >= max_buckets:
        step = int(math.ceil(span_min / (max_buckets - 1)))
    delta = timedelta(minutes=step)
    epoch = datetime(2000, 1, 3)  # a Monday at midnight: buckets align to clock times (and weeks)
    start = epoch + delta * math.floor((t0 - epoch) / delta)
    count = math.floor((t1 - start) / delta) + 1
    pad = max(0, min_buckets - count)
    start -= delta * (pad // 2)
    count += pad
    counts = [0] * count
    for t in ts:
        counts[min(count - 1, math.floor((t - start) / delta))] += 1
    end = start + delta * count
    multi_day = start.date() != (end - timedelta(seconds=1)).date()
    fmt = "%m-%d %H:%M" if multi_day or step >= 1440 else "%H:%M"
    if step >= 1440:
        fmt = "%m-%d"
    return {"step_minutes": step, "start": start.isoformat(), "end": end.isoformat(),
            "buckets": [{"start": (start + delta * i).isoformat(), "label": (start + delta * i).strftime(fmt),
                         "n": c} for i, c in enumerate(counts)]}


def _step_words(minutes: int, zh: bool) -> str:
    if minutes % 1440 == 0:
        d = minutes // 1440
        return f"{d} 天" if zh else f"{d} day{'s' if d > 1 else ''}"
    if minutes % 60 == 0:
        h = minutes // 60
        return f"{h} 小时" if zh else f"{h} hour{'s' if h > 1 else ''}"
    return f"{minutes} 分钟" if zh else f"{minutes} min"


def forum_activity(by_source: Sequence[tuple[str, int]], timestamps: Sequence[datetime], zh: bool) -> Chart:
    """Messages per speaker (bars) and over clock time (columns on a real time axis, UTC)."""
    title = "论坛活跃度" if zh else "Forum activity"
    over = time_buckets(timestamps)
    data = {"by_source": [{"source": s, "n": n} for s, n in by_source], "over_time": over["buckets"],
            "step_minutes": over["step_minutes"], "start": over["start"], "end": over["end"], "timezone": "UTC"}
    if not any(n for _, n in by_source):
        return Chart("forum_activity", title, data, "", "论坛没有发言。" if zh else "The forum has no messages.")
    total = sum(n for _, n in by_source)
    parts = [_text(0, 14, f"按发言方（共 {total} 条发言）" if zh else f"By speaker ({total} messages)", weight="bold",
                   limit=None)]
    bars, h = _hbars(list(by_source), x0=0, y0=22, width=640, label_w=90)
    parts += bars
    y0 = 22 + h + 16
    height = y0
    buckets = over["buckets"]
    if buckets:
        every = _step_words(over["step_minutes"], zh)
        first = over["start"][:16].replace("T", " ")
        last = over["end"][:16].replace("T", " ")
        parts.append(_text(0, y0 + 6, f"随时间（UTC，每 {every}，{first} 至 {last}）" if zh else
                           f"Over time (UTC, per {every}, {first} to {last})", weight="bold", limit=None))
        plot_h, base = 70, y0 + 30 + 70
        left, plot_w = 60, 560
        top = max(b["n"] for b in buckets) or 1
        step = plot_w / len(buckets)
        label_every = max(1, math.ceil(len(buckets) / 7))
        for i, b in enumerate(buckets):
            x = left + step * i
            h2 = plot_h * b["n"] / top
            if b["n"]:
                parts.append(f'<rect x="{x + step * 0.15:.1f}" y="{base - h2:.1f}" width="{step * 0.7:.1f}" '
                             f'height="{h2:.1f}" fill="{PALETTE[0]}"><title>{esc(b["label"])}: {b["n"]}</title></rect>')
                parts.append(_text(x + step / 2, base - h2 - 3, str(b["n"]), anchor="middle", fill="#444",
                                   limit=None, size=FONT - 2))
            if i % label_every == 0:
                parts.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#999"/>')
                parts.append(_text(x, base + 16, b["label"], anchor="middle", fill="#555", limit=None,
                                   size=FONT - 1))
        parts.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#999"/>')
        height = base + 24
    return Chart("forum_activity", title, data, _svg(640, int(height), title, parts))

