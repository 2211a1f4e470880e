"""Documents for the offline analyst (core/research/offline.py): their text, sentences, dates, counts and
hotness, as the summaries quote and count them.

Names with a leading underscore are private to the offline analyst's modules (core/research/offline*.py).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from core.corpus.documents import Document, hotness
from core.research.offline_aspects import KIND_NAMES, platform_name
from core.research.reasoning import Source
from core.text.dedup import cluster
from core.text.clean import clean_text
from core.text.keywords import split_sentences
from core.text.sentiment import LABELS_ZH, NEGATIVE, NEUTRAL, POSITIVE, shares
from core.text.dates import parse_date

# --- documents ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Sentence:
    text: str
    n: int  # citation number
    doc_pos: int  # position of the source in the list


def _doc_text(doc: Document) -> str:
    return clean_text(doc.text)


def _sentences(sources: Sequence[Source]) -> list[_Sentence]:
    out, seen = [], set()
    for pos, src in enumerate(sources):
        for s in split_sentences(_doc_text(src.doc)):
            key = s.lower()
            if key in seen:  # reposts: the first source keeps the sentence
                continue
            seen.add(key)
            out.append(_Sentence(s, src.n, pos))
    return out


def _day(d) -> str:
    """YYYY-MM-DD of a datetime (or of an ISO string), "" when unknown."""
    if isinstance(d, datetime):
        return d.strftime("%Y-%m-%d")
    if isinstance(d, str) and re.match(r"\d{4}-\d{2}-\d{2}", d):
        return d[:10]
    return ""


def _span(docs: Sequence[Document]) -> tuple[str, str] | None:
    dates = sorted(day for day in (_day(d.published) for d in docs) if day)
    if not dates:
        return None
    return dates[0], dates[-1]


def _num(x) -> int:
    try:
        return int(x or 0)
    except (TypeError, ValueError):
        return 0


def _hot(d: Document) -> float:
    return hotness(_num(d.likes), _num(d.comments), _num(d.shares), _num(d.views))


def _fmt_num(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0.0%"


def _snippet(doc: Document, limit: int = 30) -> str:
    text = _doc_text(doc).replace("\n", " ")
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def _dedupe_sources(sources: Sequence[Source]) -> list[Source]:
    seen, out = set(), []
    for s in sources:
        if s.n in seen:
            continue
        seen.add(s.n)
        out.append(s)
    return out


def _unique_by_doc(sources: Sequence[Source]) -> list[Source]:
    seen, out = set(), []
    for s in sources:
        if s.doc.doc_id in seen:
            continue
        seen.add(s.doc.doc_id)
        out.append(s)
    return out


# --- figures: counted from the sources, never invented ------------------------------------------

def stats_line(zh: bool, docs: Sequence[Document], senti: Sequence[float | None]) -> str:
    """One line: how many sources (and distinct ones), the platform mix, the period, the sentiment shares."""
    total = len(docs)
    distinct = len(set(cluster([_doc_text(d) for d in docs])))
    plat = Counter((d.platform or "").lower() for d in docs)
    items = sorted(plat.items(), key=lambda kv: (-kv[1], kv[0]))
    shown, rest = items[:6], sum(c for _, c in items[6:])
    if zh:
        mix = "、".join(f"{platform_name(k, True)} {c} 条（{_pct(c, total)}）" for k, c in shown)
        if rest:
            mix += f"、其他 {rest} 条（{_pct(rest, total)}）"
    else:
        mix = ", ".join(f"{platform_name(k, False)} {c} ({_pct(c, total)})" for k, c in shown)
        if rest:
            mix += f", other {rest} ({_pct(rest, total)})"
    span = _span(docs)
    if span:
        days = (parse_date(span[1]) - parse_date(span[0])).days + 1
        when = (f"时间跨度 {span[0]} 至 {span[1]}（{days} 天）" if zh else
                f"period {span[0]} to {span[1]} ({days} days)")
    else:
        when = "时间未知" if zh else "dates unknown"
    moods = shares(senti)
    if moods.scored:
        n = moods.scored
        mood = ("情感倾向：" + "，".join(f"{LABELS_ZH[k]} {_pct(moods.count(k), n)}（{moods.count(k)}/{n}）"
                                    for k in (POSITIVE, NEUTRAL, NEGATIVE)) if zh
                else "sentiment: " + ", ".join(f"{k} {_pct(moods.count(k), n)} ({moods.count(k)}/{n})"
                                               for k in (POSITIVE, NEUTRAL, NEGATIVE)))
    else:
        mood = "情感倾向：未知" if zh else "sentiment: unknown"
    if zh:
        return f"**统计**：共 {total} 条来源（{distinct} 条不重复）；平台分布：{mix}；{when}；{mood}。"
    return f"**Statistics**: {total} sources ({distinct} distinct); platforms: {mix}; {when}; {mood}."


def top_posts(zh: bool, sources: Sequence[Source], k: int) -> str:
    """The k hottest sources (one per near-duplicate group) with their counts, or "" when none is hot."""
    ranked = [s for s in sorted(sources, key=lambda s: (-_hot(s.doc), s.n)) if _hot(s.doc) > 0]
    groups = cluster([_doc_text(s.doc) for s in ranked])
    ranked = [s for i, s in enumerate(ranked) if groups[i] == i][:k]  # one post per near-duplicate group
    if not ranked:
        return ""
    head = "**热度最高**（热度 = 点赞 + 5×评论 + 10×转发 + 0.1×浏览）：" if zh else \
        "**Top posts by hotness** (likes + 5×comments + 10×shares + 0.1×views):"
    rows = []
    for i, s in enumerate(ranked, 1):
        d = s.doc
        if zh:
            rows.append(f"{i}. 「{_snippet(d)}」（{platform_name(d.platform, True)}）热度 {_fmt_num(_hot(d))}："
                        f"点赞 {_fmt_num(_num(d.likes))} · 评论 {_fmt_num(_num(d.comments))} · 转发 {_fmt_num(_num(d.shares))} · "
                        f"浏览 {_fmt_num(_num(d.views))} [{s.n}]")
        else:
            rows.append(f"{i}. “{_snippet(d)}” ({platform_name(d.platform, False)}) hotness {_fmt_num(_hot(d))}: "
                        f"likes {_fmt_num(_num(d.likes))} · comments {_fmt_num(_num(d.comments))} · shares {_fmt_num(_num(d.shares))} · "
                        f"views {_fmt_num(_num(d.views))} [{s.n}]")
    return head + "\n" + "\n".join(rows)


def aspect_lines(zh: bool, intent: str, sources: Sequence[Source], senti: Sequence[float | None]) -> list[str]:
    """The figures an intent adds: top posts and spreaders, per-platform counts and formats, comments, dates."""
    docs = [s.doc for s in sources]
    out: list[str] = []
    if intent in ("hot", "influencer"):
        top = top_posts(zh, sources, 5 if intent == "hot" else 3)
        if top:
            out.append(top)
    if intent == "influencer":
        agg: dict[str, list[float]] = {}
        for d in docs:
            if d.author:
                a = agg.setdefault(d.author, [0, 0.0])
                a[0] += 1
                a[1] += _hot(d)
        ranked = sorted(agg.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))[:5]
        if ranked:
            if zh:
                out.append("**主要传播者**（按总热度）：" + "、".join(
                    f"{a}（{int(c)} 条，热度 {_fmt_num(h)}）" for a, (c, h) in ranked))
            else:
                out.append("**Main spreaders** (by total hotness): " + ", ".join(
                    f"{a} ({int(c)} posts, hotness {_fmt_num(h)})" for a, (c, h) in ranked))
    if intent in ("platform", "video", "image"):
        groups: dict[str, list[int]] = {}
        for i, d in enumerate(docs):
            groups.setdefault((d.platform or "").lower(), []).append(i)
        rows = []
        for code, idx in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:6]:
            mix = shares(senti[i] for i in idx)
            avg_hot = sum(_hot(docs[i]) for i in idx) / len(idx)
            if zh:
                mood = (f"，正面 {_pct(mix.positive, mix.scored)}、负面 {_pct(mix.negative, mix.scored)}"
                        f"（{mix.scored} 条可判定）") if mix.scored else ""
                rows.append(f"{platform_name(code, True)} {len(idx)} 条{mood}，平均热度 {_fmt_num(round(avg_hot, 1))}")
            else:
                mood = (f", positive {_pct(mix.positive, mix.scored)}, negative {_pct(mix.negative, mix.scored)} "
                        f"({mix.scored} scored)") if mix.scored else ""
                rows.append(f"{platform_name(code, False)} {len(idx)}{mood}, mean hotness {_fmt_num(round(avg_hot, 1))}")
        out.append(("**分平台**：" + "；".join(rows) + "。") if zh else ("**By platform**: " + "; ".join(rows) + "."))
        kinds = Counter(d.kind or "post" for d in docs)
        if len(kinds) > 1 or intent in ("video", "image"):
            items = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
            if zh:
                out.append("**内容形态**：" + "、".join(
                    f"{KIND_NAMES.get(k, (k, k))[0]} {c} 条" for k, c in items) + "。")
            else:
                out.append("**Formats**: " + ", ".join(f"{KIND_NAMES.get(k, (k, k))[1]} {c}" for k, c in items) + ".")
    if intent == "comments":
        n_comments = sum(1 for d in docs if d.kind == "comment")
        total = sum(_num(d.comments) for d in docs)
        out.append(f"**评论**：来源中评论 {n_comments} 条，帖子累计评论数 {_fmt_num(total)}。" if zh else
                   f"**Comments**: {n_comments} comments among the sources; {_fmt_num(total)} comments on the posts in total.")
    if intent in ("timeline", "risk", "outlook"):
        days = Counter(_day(d.published) for d in docs if _day(d.published))
        if days:
            keys = sorted(days)
            if len(keys) > 10:
                months = Counter(k[:7] for k in keys for _ in range(days[k]))
                keys, counts = sorted(months), months
            else:
                counts = days
            if len(keys) <= 12:
                sep = "、" if zh else ", "
                body = sep.join(f"{k} {counts[k]}" + (" 条" if zh else "") for k in keys)
                out.append(("**按时间分布**：" + body + "。") if zh else ("**Over time**: " + body + "."))
    return out
