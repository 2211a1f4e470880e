"""A report's material: report-wide source numbers, the engines' findings as units, the statistics
every figure comes from, the charts and the claims check over them.

Every figure comes from the listed sources and carries its base ("负面 38.3%（23/60 条可判定来源）");
sentiment is the one the engines stored on each source (core.text.sentiment: positive / neutral /
negative), and only a source without one is scored, from the same text. Findings are the engines'
lines; answers to the forum host and host speeches are forum material, shown only in the forum's
own section. Actors are the sources' authors and sites. Quote lists show one post per
near-duplicate cluster (core.text.dedup) and say "N 条（M 条不重复）". Before rendering, every
section goes through the claims check (core.reporting.claims): the JSON carries the claims and
their count, the HTML shows the count at the top and marks unsupported sentences, the Markdown
marks them with ⚠. A run whose coverage (params["coverage"]) is insufficient opens with its banner.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Iterable

from loguru import logger

from core.corpus.documents import Document, hotness
from core.forum import ForumMessage
from core.reporting import charts
from core.reporting import claims as claimcheck
from core.reporting.inputs import ReportInputs
from core.reporting.sanitise import safe_url
from core.reporting.types import ReportSection
from core.reporting.text import (
    CITE_GROUP_RE, ENGINE_LABELS, MIN_SAMPLE, MIN_TREND, PLATFORMS_SHOWN, cited, is_forum_exchange, pct, plain,
)
from core.research.offline import platform_name
from core.text.dedup import cluster as dedup_cluster
from core.text.clean import clean_text
from core.text.keywords import extract_keywords, split_sentences
from core.text.sentiment import LABELS_ZH, SentimentShares, label_of, score_documents
from core.text.dates import parse_date

_CITE_GROUP_RE = CITE_GROUP_RE
_NUM_RE = re.compile(r"\d{1,4}")


def renumber(text: str, mapping: dict[int, int]) -> str:
    """[n] (engine-local) → [g] (report-wide); unknown numbers are dropped, not mislinked."""
    def sub(m: re.Match) -> str:
        nums = [mapping.get(int(n)) for n in _NUM_RE.findall(m.group(1))]
        nums = [n for n in dict.fromkeys(nums) if n is not None]
        return "".join(f"[{n}]" for n in nums)
    return _CITE_GROUP_RE.sub(sub, text or "")


@dataclass
class Unit:
    """One finding: a line of an engine paragraph (citations renumbered). Lines that answer the
    forum host, and the host's speeches, are forum material and never findings."""
    text: str
    plain: str
    engine: str
    paragraph_title: str
    cites: list[int]
    kind: str  # bullet | ranked | text
    order: int
    first_paragraph: bool = False
    paragraph: int | None = None  # the engine paragraph's index (provenance: "query-3")
    merged: list[tuple[str, int | None]] = field(default_factory=list)  # (engine, index) of near-duplicates merged in

    @property
    def paragraph_refs(self) -> list[str]:
        """The engine paragraphs this finding comes from ("query-3"), its merged near-duplicates' too."""
        pairs = [(self.engine, self.paragraph)] + list(self.merged)
        return list(dict.fromkeys(f"{e}-{i}" for e, i in pairs if i is not None))


@dataclass
class Material:
    topic: str
    zh: bool
    sources: list[dict]
    paragraphs: list[dict]
    units: list[Unit]
    forum: list[ForumMessage]
    stats: dict
    texts: dict[int, str] = field(default_factory=dict)  # source n → its full text (title and content)

    @property
    def by_n(self) -> dict[int, dict]:
        return {s["n"]: s for s in self.sources}


def _number_sources(inputs: ReportInputs) -> tuple[list[dict], dict[str, dict[int, int]], dict[int, Document]]:
    """Report-wide numbers for the sources the engines' paragraphs use (one number per document, however
    many engines cite it), each engine's map local number → report number, and the documents by number."""
    sources: list[dict] = []
    docs: dict[int, Document] = {}
    seen: dict[str, dict] = {}
    maps: dict[str, dict[int, int]] = {}
    for e in inputs.engine_list():
        local: set[int] = set()
        for p in e.paragraphs:
            local.update(p.sources)
            local.update(cited(p.summary))
        mapping: dict[int, int] = {}
        for n in sorted(local):
            src = e.sources[n - 1] if 0 < n <= len(e.sources) else None
            if src is None:
                continue
            d = src.document
            key = d.doc_id or d.url or f"{d.platform}|{d.title}|{d.content[:80]}"
            if key in seen:
                entry = seen[key]
                if e.engine not in entry["engines"]:
                    entry["engines"].append(e.engine)
            else:
                likes, comments, shares, views = _int(d.likes), _int(d.comments), _int(d.shares), _int(d.views)
                extras = d.extras if isinstance(d.extras, dict) else {}
                entry = {"n": len(sources) + 1, "doc_id": plain(d.doc_id, 200),
                         "title": plain(d.title, 200) or plain(d.content, 60),
                         "snippet": plain(d.content, 400), "url": str(d.url or "")[:2000],
                         "link": safe_url(d.url), "platform": plain(d.platform, 40),
                         "kind": plain(d.kind, 20), "author": plain(d.author, 80),
                         "site": plain(extras.get("site"), 120),
                         "published": d.published.isoformat() if isinstance(d.published, datetime) else None,
                         "likes": likes, "comments": comments, "shares": shares, "views": views,
                         "hotness": float(hotness(likes, comments, shares, views)), "sentiment": _float(d.sentiment),
                         "sentiment_label": None, "sentiment_by": None, "duplicate_of": None,
                         "provider": plain(d.source, 20), "engines": [e.engine]}
                seen[key] = entry
                sources.append(entry)
                docs[entry["n"]] = replace(d)  # a copy: scoring below never changes the inputs
            mapping[n] = entry["n"]
        maps[e.engine] = mapping
    return sources, maps, docs


def _int(x: Any) -> int:
    try:
        return max(0, int(x or 0))
    except (TypeError, ValueError):
        return 0


def _float(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


MAX_REPORT_SCORED = 2000  # sources without a stored sentiment the report scores, at most


def _fill_sentiment(sources: list[dict], docs: dict[int, Document]) -> None:
    """The sentiment of each source is the one the engines stored on it (``Document.sentiment``,
    scored from ``Document.text``). Only a source with none is scored here, from the same text
    (title and full content as the checkpoint holds it) through the same scorer. Then each source
    gets its class (positive / neutral / negative, or None when unknown)."""
    for s in sources:
        if s["sentiment"] is not None:
            s["sentiment_by"] = "engine"
    missing = [(s, docs[s["n"]]) for s in sources if s["sentiment"] is None and s["n"] in docs][:MAX_REPORT_SCORED]
    if missing:
        for _, d in missing:
            d.sentiment = None
        try:
            score_documents([d for _, d in missing])
        except Exception as exc:  # noqa: BLE001 - sources then stay unscored ("unknown")
            logger.warning("report: sentiment unavailable, sources stay unscored: {}", exc)
        for s, d in missing:
            if d.sentiment is not None:
                s["sentiment"] = round(float(d.sentiment), 4)
                s["sentiment_by"] = "report"
    labels: dict[float, str | None] = {}
    for s in sources:
        p = s["sentiment"]
        if p is not None and p not in labels:
            labels[p] = label_of(p)
        s["sentiment_label"] = labels[p] if p is not None else None


def _mark_duplicates(sources: list[dict], texts: dict[int, str]) -> None:
    """``duplicate_of``: the first source of a near-duplicate cluster (core.text.dedup), else None."""
    if len(sources) < 2:
        return
    try:
        labels = dedup_cluster([texts.get(s["n"]) or f"{s['title']}\n{s['snippet']}" for s in sources], threshold=0.7)
    except Exception as exc:  # noqa: BLE001 - without clustering every source counts as distinct
        logger.warning("report: near-duplicate clustering failed: {}", exc)
        return
    for i, (s, label) in enumerate(zip(sources, labels)):
        s["duplicate_of"] = sources[label]["n"] if label != i else None


# The engines' own statistics lines: the report computes its statistics over all engines instead.
_STATS_LINE_RE = re.compile(r"^\*\*(统计|Statistics|热度最高|Top posts by hotness|主要传播者|Main spreaders|分平台|"
                            r"By platform|内容形态|Formats|评论|Comments|按时间分布|Over time)\*\*")
_HEADER_LINE_RE = re.compile(r"^.{0,100}[:：]\s*$")
_BULLET_RE = re.compile(r"^[-*+]\s+(.*)$")
_RANKED_RE = re.compile(r"^\d{1,3}[.)、]\s*(.*)$")


def _units_of(paragraphs: list[dict]) -> list[Unit]:
    units: list[Unit] = []
    order = 0
    first_of: dict[str, int] = {}
    for p in paragraphs:
        first_of.setdefault(p["engine"], p["pos"])
    for p in paragraphs:
        for raw in (p["summary"] or "").splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or _STATS_LINE_RE.match(line) or _HEADER_LINE_RE.match(line):
                continue
            if line.startswith("*补充检索") or line.startswith("*Follow-up search") or is_forum_exchange(line):
                continue
            kind, text = "text", line
            if m := _BULLET_RE.match(line):
                kind, text = "bullet", m.group(1)
            elif m := _RANKED_RE.match(line):
                kind, text = "ranked", m.group(1)
            pieces = [text] if kind != "text" or len(text) <= 220 else split_sentences(text, max_chars=220)
            for piece in pieces:
                if is_forum_exchange(piece):
                    continue
                plain_text = _CITE_GROUP_RE.sub("", piece)
                plain_text = re.sub(r"[*_`]", "", plain_text).strip()
                if len(plain_text) < 4:
                    continue
                units.append(Unit(piece.strip(), plain_text, p["engine"], p["title"], cited(piece), kind, order,
                                  first_paragraph=p["pos"] == first_of[p["engine"]], paragraph=p["index"]))
                order += 1
    # the engines often report the same post: keep one unit per near-duplicate cluster, with every citation
    if not units:
        return []
    try:
        labels = dedup_cluster([u.plain for u in units], threshold=0.7)
    except Exception as exc:  # noqa: BLE001 - then only exact repeats are merged
        logger.warning("report: near-duplicate clustering of findings failed: {}", exc)
        first: dict[str, int] = {}
        labels = [first.setdefault(u.plain, i) for i, u in enumerate(units)]
    kept: list[Unit] = []
    for i, (u, label) in enumerate(zip(units, labels)):
        if label == i:
            kept.append(u)
            continue
        head = units[label]
        head.merged.append((u.engine, u.paragraph))
        for n in u.cites:
            if n not in head.cites:
                head.cites.append(n)
                head.text += f" [{n}]"
    return kept


def _day(published: str | None) -> str | None:
    if not published or len(published) < 10:
        return None
    day = published[:10]
    return day if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) else None


RECENT_DAYS = 7
RISK_RULE_PCT = {"high": 50.0, "medium": 30.0}   # negative share (of scored sources) for a risk level
WEB_KINDS = ("news", "web", "image", "video")


def _distinct(sources: Iterable[dict]) -> int:
    return len({s["duplicate_of"] or s["n"] for s in sources})


def _first_of_clusters(ranked: Iterable[dict], k: int) -> list[int]:
    """The first k sources of a ranking, one per near-duplicate cluster."""
    out: list[int] = []
    seen: set[int] = set()
    for s in ranked:
        c = s["duplicate_of"] or s["n"]
        if c in seen:
            continue
        seen.add(c)
        out.append(s["n"])
        if len(out) == k:
            break
    return out


def _actors(sources: list[dict]) -> list[dict]:
    """Accounts (the sources' authors) and sites (the site of a web result), ranked by the number
    of sources, then by total hotness."""
    table: dict[tuple[str, str], dict] = {}
    for s in sources:
        keys = []
        if s["author"]:
            keys.append(("account", s["author"]))
        web = s["kind"] in WEB_KINDS or s["provider"] not in ("", "corpus")
        if s["site"] and web:
            keys.append(("site", s["site"]))
        for kind, name in keys:
            a = table.setdefault((kind, name), {"name": name, "type": kind, "sources": 0, "hotness": 0.0,
                                                "platforms": Counter(), "cites": []})
            a["sources"] += 1
            a["hotness"] += s["hotness"]
            a["platforms"][s["platform"]] += 1
            a["cites"].append(s["n"])
    ranked = sorted(table.values(), key=lambda a: (-a["sources"], -a["hotness"], a["name"]))
    return [{"name": a["name"], "type": a["type"], "sources": a["sources"], "hotness": int(round(a["hotness"])),
             "platform": a["platforms"].most_common(1)[0][0] if a["platforms"] else "", "cites": a["cites"][:10]}
            for a in ranked]


def _recent(days: list[dict]) -> dict | None:
    if not days:
        return None
    last = parse_date(days[-1]["day"])
    cut = (last - timedelta(days=RECENT_DAYS - 1)).isoformat()
    prev_cut = (last - timedelta(days=2 * RECENT_DAYS - 1)).isoformat()
    n = sum(d["n"] for d in days if d["day"] >= cut)
    previous = sum(d["n"] for d in days if prev_cut <= d["day"] < cut)
    direction = "steady"
    if n >= 1.5 * max(previous, 1) and n - previous >= 3:
        direction = "rising"
    elif previous >= 1.5 * max(n, 1) and previous - n >= 3:
        direction = "falling"
    return {"days": RECENT_DAYS, "until": days[-1]["day"], "from": cut, "n": n, "previous": previous,
            "direction": direction}


def _risk(sentiment: dict, recent: dict | None, dated: int) -> dict:
    scored = sentiment["scored"]
    out = {"level": None, "rule_pct": dict(RISK_RULE_PCT), "raised": False}
    if scored < MIN_SAMPLE:
        return out
    share = 100.0 * sentiment["negative"] / scored
    level = "high" if share >= RISK_RULE_PCT["high"] else "medium" if share >= RISK_RULE_PCT["medium"] else "low"
    if (recent and dated >= MIN_TREND and level != "high" and share >= RISK_RULE_PCT["medium"]
            and recent["n"] >= 2 * max(recent["previous"], 1)):
        level, out["raised"] = "high", True
    out["level"] = level
    return out


def _statistics(inputs: ReportInputs, sources: list[dict], paragraphs: list[dict]) -> dict:
    """Every figure the report states, computed from the listed sources (and the run's forum)."""
    zh = inputs.zh
    n = len(sources)
    platforms = Counter(s["platform"] or "unknown" for s in sources)
    days: dict[str, dict] = {}
    for s in sources:
        d = _day(s["published"])
        if not d:
            continue
        row = days.setdefault(d, {"day": d, "n": 0, "scored": 0, "positive": 0, "neutral": 0, "negative": 0})
        row["n"] += 1
        if s["sentiment_label"]:
            row["scored"] += 1
            row[s["sentiment_label"]] += 1
    ordered_days = [days[d] for d in sorted(days)]
    dated = sum(d["n"] for d in ordered_days)
    by_label = {k: [s for s in sources if s["sentiment_label"] == k] for k in LABELS_ZH}
    shares_ = SentimentShares(len(by_label["positive"]), len(by_label["neutral"]), len(by_label["negative"]),
                              sum(1 for s in sources if s["sentiment_label"] is None))
    sentiment = {**shares_.as_dict(),
                 "pct": {k: pct(shares_.count(k), shares_.scored) for k in LABELS_ZH} if shares_.scored else {},
                 "distinct": {k: _distinct(v) for k, v in by_label.items()},
                 "stored": sum(1 for s in sources if s["sentiment_by"] == "engine"),
                 "scored_by_report": sum(1 for s in sources if s["sentiment_by"] == "report")}
    engaged = [s for s in sources if s["hotness"] > 0]
    by_hot = sorted(engaged, key=lambda s: (-s["hotness"], s["n"]))
    negatives = sorted(by_label["negative"], key=lambda s: (s["sentiment"], s["n"]))
    positives = sorted(by_label["positive"], key=lambda s: (-s["sentiment"], s["n"]))
    actors = _actors(sources)
    texts = [clean_text(f"{s['title']}\n{s['snippet']}") for s in sources]
    try:
        kindex = extract_keywords([t for t in texts if t], top_k=12, exclude=[inputs.topic]) if texts else None
        keywords = [{"word": w, "docs": len(kindex.docs.get(w, ()))} for w in kindex.top(12)] if kindex else []
    except Exception as exc:  # noqa: BLE001 - keywords are a garnish
        logger.warning("report: keyword extraction failed: {}", exc)
        keywords = []
    recent = _recent(ordered_days)
    peak = max(ordered_days, key=lambda d: (d["n"], d["day"])) if ordered_days else None
    engines = {e.engine: {"status": e.status, "paragraphs": len(e.paragraphs), "sources": len(e.sources),
                          "from_checkpoint": e.from_checkpoint} for e in inputs.engine_list()}
    return {
        "language": "zh" if zh else "en",
        "n_sources": n,
        "n_distinct": _distinct(sources),
        "n_paragraphs": len(paragraphs),
        "n_engines_active": sum(1 for v in engines.values() if v["paragraphs"]),
        "platforms": dict(platforms.most_common()),
        "platform_rows": [{"platform": p, "name": platform_name(p, zh), "n": c, "pct": pct(c, n)}
                          for p, c in platforms.most_common()],
        "platforms_other": ({"platforms": len(platforms) - PLATFORMS_SHOWN,
                             "n": sum(c for _, c in platforms.most_common()[PLATFORMS_SHOWN:]),
                             "pct": pct(sum(c for _, c in platforms.most_common()[PLATFORMS_SHOWN:]), n)}
                            if len(platforms) > PLATFORMS_SHOWN else None),
        "days": ordered_days,
        "dated": dated,
        "undated": n - dated,
        "span": [ordered_days[0]["day"], ordered_days[-1]["day"]] if ordered_days else None,
        "peak": {"day": peak["day"], "n": peak["n"]} if peak else None,
        "recent": recent,
        "sentiment": sentiment,
        "min_sample": MIN_SAMPLE,
        "min_trend": MIN_TREND,
        "risk": _risk(sentiment, recent, dated),
        "hotness_formula": {"likes": 1, "comments": 5, "shares": 10, "views": 0.1},
        "engaged": len(engaged),
        "engaged_distinct": _distinct(engaged),
        "top_posts": _first_of_clusters(by_hot, 5),
        "negative_posts": _first_of_clusters(negatives, 3),
        "positive_posts": _first_of_clusters(positives, 3),
        "actors": actors[:20],
        "actors_total": len(actors),
        "keywords": keywords,
        "engines": engines,
        "forum": forum_statistics(inputs.forum),
    }


def forum_statistics(forum: list[ForumMessage]) -> dict:
    """The report's figures about the run's forum transcript."""
    stamps = [m.timestamp for m in forum]
    return {"messages": len(forum), "host": sum(1 for m in forum if m.type == "host"),
            "by_source": dict(Counter(m.source for m in forum).most_common()),
            "first": min(stamps).isoformat() if stamps else None,
            "last": max(stamps).isoformat() if stamps else None}


def with_forum(m: Material, forum: list[ForumMessage]) -> Material:
    """`m` with the run's forum transcript read again (the host's last speeches came after the
    engines' findings it was built from); nothing else in it depends on the forum."""
    return replace(m, forum=list(forum), stats={**m.stats, "forum": forum_statistics(forum)})


def build_material(inputs: ReportInputs) -> Material:
    sources, maps, docs = _number_sources(inputs)
    _fill_sentiment(sources, docs)
    texts = {n: d.text for n, d in docs.items()}
    _mark_duplicates(sources, texts)
    paragraphs = []
    for e in inputs.engine_list():
        for pos, p in enumerate(e.paragraphs):
            mapping = maps.get(e.engine, {})
            summary = renumber(p.summary, mapping)
            srcs = [mapping[n] for n in p.sources if n in mapping]
            paragraphs.append({"engine": e.engine, "pos": pos, "index": p.index,
                               "title": plain(p.title, 200), "summary": summary,
                               "sources": list(dict.fromkeys(srcs)), "from_checkpoint": e.from_checkpoint,
                               "read": p.read})  # forum messages its nodes read (None: not recorded)
    units = _units_of(paragraphs)
    stats = _statistics(inputs, sources, paragraphs)
    return Material(inputs.topic, inputs.zh, sources, paragraphs, units, list(inputs.forum), stats, texts)


def findings_text(material: Material) -> str:
    return "\n".join(u.plain for u in material.units)


def build_charts(inputs: ReportInputs, m: Material) -> list[charts.Chart]:
    zh = m.zh
    st = m.stats
    return [charts.sentiment_over_time(st["days"], zh, min_n=MIN_SAMPLE),
            charts.platform_mix([(r["name"], r["n"]) for r in st["platform_rows"]], zh),
            charts.engine_coverage([{"engine": e.engine, "label": e.label, "sources": len(e.sources),
                                     "paragraphs": len(e.paragraphs), "status": e.status}
                                    for e in inputs.engine_list()], zh),
            charts.forum_activity(list(st["forum"]["by_source"].items()), [x.timestamp for x in inputs.forum], zh)]


def known_names(m: Material) -> set[str]:
    """Names a sentence may use without a citation: platforms, engines, forum speakers, actors."""
    from core.research.offline import PLATFORMS

    names = {n for pair in PLATFORMS.values() for n in pair} | set(ENGINE_LABELS.values())
    names |= {f"{v} engine" for v in ENGINE_LABELS.values()} | {f"{v} 引擎" for v in ENGINE_LABELS.values()}
    names |= set(m.stats["forum"]["by_source"]) | {"HOST", "QUERY", "MEDIA", "INSIGHT", "Shoal", "BettaFish"}
    names |= {r["name"] for r in m.stats["platform_rows"]} | {a["name"] for a in m.stats["actors"]}
    names |= {k["word"] for k in m.stats["keywords"]}
    return names


def verify_claims(m: Material, sections: list[ReportSection], judge: claimcheck.Judge | None = None
                  ) -> list[claimcheck.Claim]:
    """The claims of every section, checked against the cited sources and the report's statistics
    (core.reporting.claims). The forum section's quotes may come from the forum's messages."""
    ev = claimcheck.evidence(m.stats, m.sources, m.texts, zh=m.zh, topic=m.topic, names=known_names(m))
    forum_texts = [x.content for x in m.forum]
    return claimcheck.verify_sections(((s.key, s.markdown, forum_texts if s.kind == "forum" else ())
                                       for s in sections), ev, judge)
