"""Markdown pieces of the reports: the engines' numbered source list, and the report's own
offline text, in which every figure carries its base.

Engines: ``source_line`` / ``source_list_markdown`` (the sources a paragraph cites).

Report (core.report):

    is_forum_exchange(line)     a line that answers the forum host ("回应主持人：…") or repeats a
                                host speech: forum material, never a finding
    strip_forum_exchanges(md)   the same lines removed from an engine paragraph
    share_text(label, c, base)  "负面 38.3%（23/60 条可判定来源）" / "negative 38.3% (23 of 60 scored sources)"
    distinct_text(n, m)         "23 条（19 条不重复）" / "23 posts (19 distinct)"
    lead_lines(kind, m)         the statistics an offline section opens with
    advice_lines(kind, m)       recommendations and outlook, each with the data it rests on
    forum_section(m)            the forum's own section: messages per speaker, the host's questions

``m`` is the report's Material (zh, stats, sources, by_n, forum, units); every number these
functions write is read from ``m.stats``, which the report computes from the listed sources, so
the claims check (core.reporting.claims) finds each of them there.
"""
from __future__ import annotations

import re
from typing import Any

from core.research.names import ENGINE_NAMES
from core.research.reasoning import ParagraphResult, Source
from core.text.clean import clean_text
from core.text.keywords import split_sentences

# [3], and grouped forms an LLM writes: [3, 5], [3，5], [3、5]
CITE_GROUP_RE = re.compile(r"\[(\d{1,4}(?:\s*[,，、]\s*\d{1,4})*)\]")
_NUM_RE = re.compile(r"\d{1,4}")
_CTRL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")

MIN_SAMPLE = 5     # scored sources a share, a chart point or a risk level rests on, at least
MIN_TREND = 10     # dated sources before the report says that volume rises or falls
PLATFORMS_SHOWN = 6  # platforms named in the text; the rest are summed as "other"
ENGINE_LABELS = {key: name.label for key, name in ENGINE_NAMES.items()}
LABEL_ZH = {"positive": "正面", "neutral": "中性", "negative": "负面"}
RISK_ZH = {"high": "高", "medium": "中", "low": "低"}

# A line that answers the forum host, or that reports what the host said: forum material.
_FORUM_LINE_RE = re.compile(
    r"^(?:[-*+]\s+|\d{1,3}[.)、]\s*|>\s*)?(?:\*\*|__)?\s*"
    r"(?:回应主持人|回答主持人|答复主持人|针对主持人|关于主持人|主持人(?:的)?(?:问题|提问|指出|提出|认为|表示|发言|说)?\s*[:：]|"
    r"论坛主持人|responding to the host|response to the host|in reply to the host|replying to the host|"
    r"answering the host|to the host'?s? question|the (?:forum )?host (?:asked|said|noted|raised|wants)|"
    r"host\s*[:：])", re.I)


def cited(text: str) -> list[int]:
    """Citation numbers in a text, in order of first appearance."""
    seen: dict[int, None] = {}
    for m in CITE_GROUP_RE.finditer(text or ""):
        for n in _NUM_RE.findall(m.group(1)):
            seen.setdefault(int(n), None)
    return list(seen)


def cited_numbers(text: str) -> set[int]:
    return set(cited(text))


def source_line(s: Source) -> str:
    d = s.doc
    date = d.published.strftime("%Y-%m-%d") if d.published else "n.d."
    title = " ".join((d.title or d.content[:40]).split()).replace("[", "(").replace("]", ")")
    link = f" — <{d.url}>" if d.url else ""
    return f"[{s.n}] {title} — {d.platform or d.source} — {date}{link}"


def source_list_markdown(results: list[ParagraphResult], heading: str = "## Sources") -> str:
    """The sources the paragraphs actually cite, in citation-number order."""
    cited = set().union(*(cited_numbers(r.summary) for r in results)) if results else set()
    known = {s.n: s for r in results for s in r.sources}
    lines = [source_line(known[n]) for n in sorted(cited) if n in known]
    return heading + "\n\n" + ("\n".join(f"- {line}" for line in lines) if lines else "- (no sources cited)")


def platform_name(code: str, zh: bool) -> str:
    """The one display name of a platform (core.research.offline's table; imported late: offline imports this module)."""
    from core.research.offline import platform_name as name

    return name(code, zh)


# --- forum material -------------------------------------------------------------------------

def is_forum_exchange(line: str) -> bool:
    """True for a line that answers the host or relays the host: never a finding."""
    return bool(_FORUM_LINE_RE.match((line or "").strip()))


def strip_forum_exchanges(text: str) -> str:
    return "\n".join(line for line in (text or "").splitlines() if not is_forum_exchange(line))


def host_questions(speeches: list[str], limit: int = 5) -> list[str]:
    """The questions of the host's speeches (newest speech first), without their numbering."""
    out: list[str] = []
    for speech in reversed(speeches):
        for line in clean_text(speech).splitlines():
            line = re.sub(r"^(?:[-*+]\s+|\d{1,3}[.)、]\s*)", "", line.strip())
            line = line.replace("**", "")
            for sentence in split_sentences(line, min_chars=4, max_chars=300):
                if sentence.rstrip("”」』）) ").endswith(("？", "?")) and sentence not in out:
                    out.append(sentence)
        if len(out) >= limit:
            break
    return out[:limit]


# --- figures with their base ----------------------------------------------------------------

def pct(part: int, whole: int) -> float | None:
    """A percentage with one decimal, as the report writes and stores it (None without a base)."""
    return round(100.0 * part / whole, 1) if whole else None


def share_text(label: str, count: int, base: int, zh: bool, noun: str | None = None) -> str:
    """"负面 38.3%（23/60 条可判定来源）" / "negative 38.3% (23 of 60 scored sources)"."""
    name = LABEL_ZH.get(label, label) if zh else label
    p = pct(count, base)
    if zh:
        return f"{name} {p:.1f}%（{count}/{base} {noun or '条可判定来源'}）"
    return f"{name} {p:.1f}% ({count} of {base} {noun or 'scored sources'})"


def part_text(count: int, base: int, zh: bool, noun_zh: str = "条来源", noun_en: str = "sources") -> str:
    """"28.6%（2/7 条来源）" / "28.6% (2 of 7 sources)"."""
    p = pct(count, base)
    return f"{p:.1f}%（{count}/{base} {noun_zh}）" if zh else f"{p:.1f}% ({count} of {base} {noun_en})"


def distinct_text(n: int, m: int, zh: bool, noun_en: str = "posts") -> str:
    """"23 条（19 条不重复）" / "23 posts (19 distinct)"."""
    return f"{n} 条（{m} 条不重复）" if zh else f"{n} {noun_en} ({m} distinct)"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def num(x: Any) -> str:
    return f"{int(round(float(x))):,}"


def plain(text: Any, limit: int | None = None) -> str:
    t = _CTRL_RE.sub("", str(text or ""))
    t = " ".join(t.split())
    if limit and len(t) > limit:
        t = t[: limit - 1] + "…"
    return t


def src_label(s: dict, limit: int = 36) -> str:
    return plain(s["title"] or s["snippet"], limit).replace("[", "(").replace("]", ")")


def _quote(s: dict, zh: bool, limit: int = 36) -> str:
    return f"「{src_label(s, limit)}」[{s['n']}]" if zh else f"“{src_label(s, limit)}” [{s['n']}]"


def _sep(zh: bool) -> str:
    return "、" if zh else ", "


def _end(zh: bool) -> str:
    return "。" if zh else "."


def sentiment_line(st: dict, zh: bool) -> str:
    """The three classes with their base; counts only when the base is too small for shares."""
    se = st["sentiment"]
    scored = se["scored"]
    if not scored:
        return "没有来源带有可判定的情感分值。" if zh else "No source has a sentiment score."
    if scored < MIN_SAMPLE:
        return (f"可判定情感的来源仅 {scored} 条（正面 {se['positive']} 条、中性 {se['neutral']} 条、负面 "
                f"{se['negative']} 条），样本过少，不计算占比。" if zh else
                f"Only {scored} sources have a sentiment ({se['positive']} positive, {se['neutral']} neutral, "
                f"{se['negative']} negative): too few for shares.")
    parts = [share_text(k, se[k], scored, zh) for k in ("positive", "neutral", "negative")]
    if zh:
        tail = f"；另有 {se['unscored']} 条来源无法判定" if se["unscored"] else ""
        return "情感分布：" + "、".join(parts) + tail + "。"
    tail = f"; {se['unscored']} sources could not be scored" if se["unscored"] else ""
    return "Sentiment: " + ", ".join(parts) + tail + "."


def _sentiment_origin(st: dict, zh: bool) -> str:
    se = st["sentiment"]
    if not se["scored"]:
        return ""
    return (f"情感取自引擎为各来源判定的分值（{se['stored']} 条），其余 {se['scored_by_report']} 条由同一模型按来源全文补判。"
            if zh else f"Sentiment is the score the engines stored on each source ({se['stored']}); "
            f"{se['scored_by_report']} more were scored by the same model from their full text.")


def actors_line(st: dict, zh: bool, limit: int = 8) -> str:
    actors = st["actors"][:limit]
    if not actors:
        return ("来源没有作者或站点信息，无法列出主要参与者。" if zh else
                "The sources carry no author or site: no actors to list.")
    items = []
    for a in actors:
        where = platform_name(a["platform"], zh) if a["platform"] and a["type"] == "account" else ""
        what = ({"account": "账号", "site": "网站/媒体"} if zh else {"account": "account", "site": "site"})[a["type"]]
        name = plain(a["name"], 30)
        if zh:
            items.append(f"{name}（{where}{what}，{a['sources']} 条来源，热度 {num(a['hotness'])}）")
        else:
            items.append(f"{name} ({where + ' ' if where else ''}{what}; {plural(a['sources'], 'source')}, "
                         f"hotness {num(a['hotness'])})")
    head = (f"主要参与者（{st['actors_total']} 个账号与网站中按来源数、热度排序）：" if zh else
            f"Main actors (of {st['actors_total']} accounts and sites, by number of sources, then hotness): ")
    return head + _sep(zh).join(items) + _end(zh)


def hotness_definition(zh: bool) -> str:
    return ("热度 = 点赞 + 5×评论 + 10×转发 + 0.1×浏览。" if zh else
            "Hotness = likes + 5×comments + 10×shares + 0.1×views.")


def _posts(st: dict, key: str, m) -> list[dict]:
    return [m.by_n[x] for x in st[key] if x in m.by_n]


def lead_lines(kind: str, m) -> list[str]:
    """The statistics a section of this kind opens with (offline writer), each with its base."""
    zh, st = m.zh, m.stats
    n = st["n_sources"]
    se = st["sentiment"]
    lines: list[str] = []
    if kind == "overview":
        active = [ENGINE_LABELS.get(e, e) for e, v in st["engines"].items() if v["paragraphs"]]
        if zh:
            lines.append(f"本报告依据 {st['n_engines_active']} 个引擎（{'、'.join(active) or '无'}）的 "
                         f"{st['n_paragraphs']} 个分析段落和 {n} 条来源（{st['n_distinct']} 条不重复）。")
        else:
            lines.append(f"This report rests on {st['n_paragraphs']} analysis paragraphs from {st['n_engines_active']} "
                         f"engine(s) ({', '.join(active) or 'none'}) and "
                         f"{distinct_text(n, st['n_distinct'], zh, 'sources')}.")
        if st["span"]:
            lines.append(f"有发布日期的来源 {st['dated']} 条，时间跨度 {st['span'][0]} 至 {st['span'][1]}。" if zh else
                         f"{st['dated']} sources carry a date, from {st['span'][0]} to {st['span'][1]}.")
        if n:
            lines.append(sentiment_line(st, zh))
    elif kind == "timeline":
        days = st["days"]
        if not days:
            return ["来源没有发布日期，无法还原时间脉络。" if zh else "The sources carry no dates: no timeline."]
        shown = days if len(days) <= 10 else sorted(sorted(days, key=lambda d: (-d["n"], d["day"]))[:10],
                                                    key=lambda d: d["day"])
        undated = (f"，另有 {st['undated']} 条无日期" if zh else f"; {st['undated']} more carry no date") \
            if st["undated"] else ""
        most = "" if len(shown) == len(days) else ("来源最多的 10 天" if zh else "the 10 busiest days")
        if zh:
            lines.append(f"按发布日期统计的来源数（{st['dated']} 条有日期的来源{undated}）{('，' + most) if most else ''}："
                         + "、".join(f"{d['day']} {d['n']} 条" for d in shown) + "。")
        else:
            lines.append(f"Sources per publication day ({st['dated']} dated sources{undated})"
                         + (f", {most}" if most else "") + ": " + ", ".join(f"{d['day']} {d['n']}" for d in shown) + ".")
        lines.append(trend_line(st, zh))
    elif kind == "sentiment":
        lines.append(sentiment_line(st, zh))
        origin = _sentiment_origin(st, zh)
        if origin:
            lines.append(origin)
        for label, key in (("negative", "negative_posts"), ("positive", "positive_posts")):
            posts = _posts(st, key, m)
            if not posts:
                continue
            total, distinct = se[label], se["distinct"][label]
            head = (f"典型{LABEL_ZH[label]}声音（{LABEL_ZH[label]}来源 {distinct_text(total, distinct, zh)}）：" if zh else
                    f"Typical {label} voices ({distinct_text(total, distinct, zh, f'{label} sources')}): ")
            lines.append(head + ("；" if zh else "; ").join(_quote(s, zh) for s in posts))
    elif kind == "channels":
        rows = st["platform_rows"]
        if rows:
            shown = [f"{r['name']} {r['n']} 条（{r['pct']:.1f}%）" if zh else f"{r['name']} {r['n']} ({r['pct']:.1f}%)"
                     for r in rows[:PLATFORMS_SHOWN]]
            other = st["platforms_other"]
            if other:
                shown.append(f"其他 {other['platforms']} 个平台共 {other['n']} 条（{other['pct']:.1f}%）" if zh else
                             f"{plural(other['platforms'], 'other platform')} {other['n']} ({other['pct']:.1f}%)")
            lines.append((f"平台分布（共 {n} 条来源）：" if zh else f"Platforms ({n} sources): ")
                         + _sep(zh).join(shown) + _end(zh))
            top = rows[0]
            if n >= MIN_SAMPLE and top["pct"] >= 50:
                lines.append(f"讨论集中在{top['name']}：{part_text(top['n'], n, zh)}。" if zh else
                             f"The discussion is concentrated on {top['name']}: {part_text(top['n'], n, zh)}.")
        else:
            lines.append("没有来源可供分析渠道。" if zh else "No sources to analyse channels.")
        if n:
            lines.append(actors_line(st, zh, limit=5))
            lines.append(hotness_definition(zh))
    elif kind == "actors":
        lines.append(actors_line(st, zh))
        if n:
            lines.append(hotness_definition(zh))
    elif kind == "voices":
        top = _posts(st, "top_posts", m)
        if top:
            lines.append((f"热度最高的内容（{distinct_text(st['engaged'], st['engaged_distinct'], zh)}有互动数据的来源，"
                          f"近似重复的只列一次）：") if zh else
                         (f"The most engaging posts ({distinct_text(st['engaged'], st['engaged_distinct'], zh, 'sources')} "
                          "with engagement data; near-duplicates listed once):"))
            for s in top:
                where = platform_name(s["platform"], zh)
                lines.append(f"- 「{src_label(s, 50)}」（{where}，点赞 {s['likes']:,}，评论 {s['comments']:,}，转发 "
                             f"{s['shares']:,}）[{s['n']}]" if zh else
                             f"- “{src_label(s, 50)}” ({where}; {s['likes']:,} likes, {s['comments']:,} comments, "
                             f"{s['shares']:,} shares) [{s['n']}]")
            lines.append(hotness_definition(zh))
    elif kind == "themes":
        if st["keywords"]:
            lines.append((f"讨论焦点（关键词，括号内为提及该词的来源数，共 {n} 条来源）：" if zh else
                          f"Focal points (keyword, and how many of the {n} sources mention it): ")
                         + _sep(zh).join(f"{k['word']}（{k['docs']}）" if zh else f"{k['word']} ({k['docs']})"
                                         for k in st["keywords"][:8]) + _end(zh))
    elif kind == "risks":
        lines.append(risk_line(st, zh))
        for s in _posts(st, "negative_posts", m):
            lines.append(f"- 风险信号：{_quote(s, zh, 50)}" if zh else f"- Warning sign: {_quote(s, zh, 50)}")
    elif kind in ("recommendations", "outlook"):
        lines += advice_lines(kind, m)
    return [line for line in lines if line]


def trend_line(st: dict, zh: bool) -> str:
    """Volume in the last RECENT days against the days before, only on enough dated sources."""
    r = st["recent"]
    if not r:
        return ""
    if st["dated"] < MIN_TREND:
        return (f"有日期的来源仅 {st['dated']} 条（少于 {MIN_TREND} 条），不足以判断讨论量的升降。" if zh else
                f"Only {st['dated']} sources carry a date (fewer than {MIN_TREND}): too few to tell whether "
                "attention rises or falls.")
    basis = (f"截至最新来源日期 {r['until']}，近 {r['days']} 天来源 {r['n']} 条，此前 {r['days']} 天 {r['previous']} 条"
             if zh else f"up to the latest source date, {r['until']}, {r['n']} sources in the last {r['days']} days "
             f"against {r['previous']} in the {r['days']} days before")
    word = {"rising": ("讨论量上升", "attention is rising"), "falling": ("讨论量回落", "attention is falling"),
            "steady": ("讨论量大致持平", "attention is about steady")}[r["direction"]]
    return f"{basis}：{word[0]}。" if zh else f"{basis[0].upper() + basis[1:]}: {word[1]}."


def risk_line(st: dict, zh: bool) -> str:
    risk = st["risk"]
    se = st["sentiment"]
    if risk["level"] is None:
        return (f"可判定情感的来源仅 {se['scored']} 条（少于 {MIN_SAMPLE} 条），不评定风险等级。" if zh else
                f"Only {se['scored']} sources have a sentiment (fewer than {MIN_SAMPLE}): no risk level is given.")
    rule = risk["rule_pct"]
    basis = [share_text("negative", se["negative"], se["scored"], zh),
             (f"负面来源 {distinct_text(se['negative'], se['distinct']['negative'], zh)}" if zh else
              f"{distinct_text(se['negative'], se['distinct']['negative'], zh, 'negative sources')}")]
    r = st["recent"]
    if r and st["dated"] >= MIN_TREND:
        basis.append(f"截至 {r['until']} 近 {r['days']} 天来源 {r['n']} 条（此前 {r['days']} 天 {r['previous']} 条）" if zh else
                     f"{r['n']} sources in the {r['days']} days up to {r['until']} ({r['previous']} in the {r['days']} "
                     "days before)")
    level = RISK_ZH[risk["level"]] if zh else risk["level"]
    if zh:
        text = f"风险等级：**{level}** — 依据：" + "；".join(basis) + "。"
        text += (f"评级规则：负面占比不低于 {rule['high']:.0f}% 为高，{rule['medium']:.0f}%–{rule['high']:.0f}% 为中，"
                 f"低于 {rule['medium']:.0f}% 为低")
        text += "；近 7 天来源数达到此前 7 天的两倍以上时上调一级。" if risk.get("raised") else "。"
        return text
    text = f"Risk level: **{level}** — based on: " + "; ".join(basis) + "."
    text += (f" Rule: a negative share of {rule['high']:.0f}% or more is high, {rule['medium']:.0f}%–"
             f"{rule['high']:.0f}% medium, below {rule['medium']:.0f}% low")
    text += "; raised one step when the last 7 days hold at least twice the sources of the 7 before." \
        if risk.get("raised") else "."
    return text


def advice_lines(kind: str, m) -> list[str]:
    """Recommendations or outlook, each saying which data it rests on."""
    zh, st = m.zh, m.stats
    se, n = st["sentiment"], st["n_sources"]
    out: list[str] = []
    if not n and not m.units:
        return ["现有数据不足以提出建议：建议扩大检索范围或补充数据后重新生成报告。" if zh else
                "There is too little data for advice: widen the search or add data, then regenerate the report."]
    basis = "依据" if zh else "based on"
    if se["scored"] >= MIN_SAMPLE and kind == "recommendations":
        neg_share = se["negative"] / se["scored"]
        neg_text = share_text("negative", se["negative"], se["scored"], zh)
        if neg_share >= 0.4:
            neg = _posts(st, "negative_posts", m)
            ex = (f"，例如{_quote(neg[0], zh)}" if zh else f", for example {_quote(neg[0], zh)}") if neg else ""
            out.append(f"- 优先回应负面声音集中的问题{ex}（{basis}：{neg_text}）。" if zh else
                       f"- Answer the main complaints first{ex} ({basis}: {neg_text}).")
        else:
            main = max(("positive", "neutral", "negative"), key=lambda k: (se[k], k == "positive"))
            main_text = share_text(main, se[main], se["scored"], zh)
            if main == "positive":
                out.append(f"- 整体情绪以正面为主，可借势巩固正面认知，同时跟踪负面声音（{basis}：{main_text}；{neg_text}）。"
                           if zh else f"- The mood is mostly positive: build on it while tracking the negative "
                           f"voices ({basis}: {main_text}; {neg_text}).")
            else:
                out.append(f"- 情绪以{LABEL_ZH[main]}为主，持续跟踪负面声音的变化（{basis}：{main_text}；{neg_text}）。" if zh
                           else f"- The mood is mostly {main}: keep tracking the negative voices ({basis}: "
                           f"{main_text}; {neg_text}).")
    rows = st["platform_rows"]
    if rows and n >= MIN_SAMPLE and rows[0]["pct"] >= 40:
        top = rows[0]
        out.append(f"- 沟通与监测以{top['name']}为重点（{basis}：{top['name']}来源 {part_text(top['n'], n, zh)}）。" if zh else
                   f"- Focus communication and monitoring on {top['name']} ({basis}: {top['name']} holds "
                   f"{part_text(top['n'], n, zh)}).")
    r = st["recent"]
    if r and st["dated"] >= MIN_TREND:
        trend = trend_line(st, zh).rstrip("。.")
        if kind == "outlook":
            word = {"rising": ("短期内热度可能继续走高", "attention may keep growing in the short term"),
                    "falling": ("若无新的触发事件，热度将逐步降温", "without a new trigger, attention should keep cooling"),
                    "steady": ("短期内热度可能维持当前水平", "attention may hold at its current level")}[r["direction"]]
            out.append(f"- {word[0]}（{basis}：{trend}）。" if zh else f"- {word[1][0].upper() + word[1][1:]} ({basis}: {trend}).")
        elif r["direction"] == "rising":
            out.append(f"- 热度仍在上升，建议缩短监测周期并准备及时回应（{basis}：{trend}）。" if zh else
                       f"- Attention is rising: monitor more often and be ready to respond ({basis}: {trend}).")
    elif kind == "outlook":
        out.append(f"- 有日期的来源仅 {st['dated']} 条，不足以研判走势；建议补充数据后再评估。" if zh else
                   f"- Only {st['dated']} sources carry a date: too few to forecast; add data and assess again.")
    if st["keywords"]:
        kws = st["keywords"][:3]
        docs = _sep(zh).join(str(k["docs"]) for k in kws)
        out.append(f"- 持续关注与「{'、'.join(k['word'] for k in kws)}」相关的新动向（{basis}：分别见于 {docs} 条来源，共 {n} 条）。"
                   if zh else f"- Keep watching new developments around {', '.join(k['word'] for k in kws)} "
                   f"({basis}: mentioned by {docs} of the {n} sources).")
    if not out:
        out.append("- 现有数据不足以提出有依据的建议：建议扩大检索范围或补充数据后重新生成报告。" if zh else
                   "- The data supports no specific advice: widen the search or add data, then regenerate.")
    return out


def forum_section(m) -> tuple[str, str]:
    """(markdown, status) of the forum's own section: who spoke how often, the host's questions as
    questions. Nothing here is a finding, and the section says so."""
    zh, fs = m.zh, m.stats["forum"]
    if not m.forum:
        return ("本次运行的论坛没有任何发言，因此没有可供总结的多方讨论。" if zh else
                "The forum of this run has no messages, so there is no discussion to summarise."), "empty"
    by = "、".join(f"{k} {v} 条" for k, v in fs["by_source"].items()) if zh else \
        ", ".join(f"{k} {v}" for k, v in fs["by_source"].items())
    lines = [f"论坛共有 {fs['messages']} 条发言（{by}），其中主持人发言 {fs['host']} 次。"
             "以下为论坛讨论的记录，用于说明分析过程，不是本报告的结论。" if zh else
             f"The forum holds {fs['messages']} messages ({by}), {fs['host']} of them by the host. What follows "
             "records the discussion; it is not a finding of this report.", ""]
    speeches = [x.content for x in m.forum if x.type == "host"]
    questions = host_questions(speeches)
    if questions:
        lines.append("**主持人提出的问题**（供后续核实）：" if zh else "**Questions the host raised** (to follow up):")
        lines.append("")
        lines += [f"{i}. {q}" for i, q in enumerate(questions, 1)]
    elif speeches:
        lines.append("**主持人最近一次发言（原文摘录）**：" if zh else "**The host's latest speech (verbatim excerpt)**:")
        lines.append("")
        lines.append("> " + plain(clean_text(speeches[-1]), 400))
    else:
        lines.append("论坛中没有主持人发言。" if zh else "The host did not speak in this forum.")
    return "\n".join(lines), "ok"
