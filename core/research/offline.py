"""The offline analyst: the Reasoner of core/research/reasoning.py without an LLM.

Deterministic and real, over the documents the engine retrieved:

  plan_structure      P paragraphs from the engine's aspects (query: what happened, timeline, official
                      statements, media framing, outlook; media: visual, video, platforms, influencers;
                      insight: sentiment, hot posts, platform differences, comments, risks), kept or
                      dropped by what the overview search actually found, titled with the topic and
                      keyword clusters of the overview (jieba TF-IDF), extra paragraphs as sub-topics.
  plan_first_search   the topic plus the paragraph's keywords, on the tool that fits the paragraph
                      (hot / date / comments / platform / image / video tools when ctx.tools has them;
                      parameters only from the tool's declared ones).
  first_summary       extractive: TextRank-ranked, de-duplicated sentences, each cited [n], chosen to
                      cover the paragraph's keywords; statistics (count, platform mix, time span,
                      sentiment shares, top posts by hotness) and the aspect's own figures.
  plan_reflection     searches a keyword (or platform) that matters in the sources or the brief but
                      is not covered by the summary yet; None when everything is covered.
  reflection_summary  re-selects over all sources, keeping what was covered and adding the searched
                      keyword; bounded length; notes a search that found nothing.
  the forum           an analyst's question (ForumGuidance.human) is the next reflection's search (the
                      topic and the question's terms) and terms the summaries cover first, and each
                      summary answers it, and the host's questions, from its sources or says they say
                      nothing about it (offline_forum.py).
  format_report       Markdown: title, "离线分析 (offline analysis)", sections, and the cited sources.

The object holds no mutable state: paragraphs may run in parallel threads. Nothing is invented:
every sentence is quoted from a source, every figure is counted from the sources.

This module is the public entry; its parts are
  offline_aspects.py  platforms, the aspects of a report per engine, a paragraph's intent and brief
  offline_tools.py    which search tool (and parameters) a paragraph's search uses
  offline_stats.py    documents as the summaries quote them, and the figures counted from them
  offline_forum.py    the analyst's and the host's questions: what to search, and the answers
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Callable, Sequence

from core.corpus.documents import Document
from core.text.dedup import cluster
from core.text.sentiment import NEGATIVE, POSITIVE, label_of
from core.research.reasoning import (NO_GUIDANCE, ForumGuidance, Paragraph, ParagraphResult, ReasonContext,
                                     SearchPlan, Source)
from core.text.clean import clean_text, has_cjk
from core.text.keywords import (
    contains,
    extract_keywords,
    near_duplicate,
    rank_sentences,
    words,
)

from core.reporting.text import cited as cited_numbers  # noqa: E402 - one citation parser for everything
from core.research.offline_aspects import (
    ASPECTS,
    EXTRA,
    IMAGE_PLATFORMS,
    PLATFORMS,
    THEME,
    VIDEO_PLATFORMS,
    Aspect,
    _FOCUS_WORDS,
    _brief,
    intent_of,
    parse_brief,
    platform_name,
)
from core.research.offline_stats import (
    _day,
    _dedupe_sources,
    _doc_text,
    _hot,
    _num,
    _sentences,
    _snippet,
    _span,
    _unique_by_doc,
    aspect_lines,
    stats_line,
    top_posts,
)
from core.research.offline_forum import (body, host_line, human_lines, no_source_lines, pending_question,
                                        question_terms, searched_note)
from core.research.offline_tools import has_platform_param, tool_for

__all__ = ["OfflineReasoner", "OFFLINE_LABEL", "PLATFORMS", "platform_name", "parse_brief", "cited_numbers"]

OFFLINE_LABEL = "离线分析 (offline analysis)"

MAX_BULLETS = 6
MAX_BULLET_CHARS = 720  # the quoted sentences of one paragraph
MIN_BULLET_CHARS = 200
MAX_PARAGRAPH_CHARS = 1200
MAX_NOTES = 3
MAX_TOPIC_CHARS = 40

_BROAD_TOOLS = ("search_topic_globally", "basic_search_news", "comprehensive_search")  # an analyst's question
_TOPIC_FILLER = ("舆情分析", "舆情", "事件", "热点", "话题", "讨论", "分析", "最新")

Classifier = Callable[[list[str]], list[tuple[int, float]]]


# --- the reasoner ---------------------------------------------------------------------------

class OfflineReasoner:
    """Deterministic reasoning over retrieved documents. Thread-safe: no mutable state.

    ``classifier``: ``texts -> [(label, score)]`` for documents without ``Document.sentiment``;
    by default core.text.sentiment.predict, imported lazily; when it is unavailable the sentiment of
    such documents is unknown."""

    mode = "offline"

    def __init__(self, classifier: Classifier | None = None, use_default_classifier: bool = True):
        self._classifier = classifier
        self._use_default = use_default_classifier

    # -- topic -----------------------------------------------------------------------------

    @staticmethod
    def _zh(ctx: ReasonContext) -> bool:
        return has_cjk(ctx.topic)

    @staticmethod
    def _topic(ctx: ReasonContext) -> str:
        t = clean_text(ctx.topic).replace("\n", " ").strip()
        if len(t) > MAX_TOPIC_CHARS:
            t = t[:MAX_TOPIC_CHARS].rstrip() + "…"
        return t or ("（未命名主题）" if OfflineReasoner._zh(ctx) else "(untitled topic)")

    @staticmethod
    def _core_topic(ctx: ReasonContext) -> str:
        """The topic as a search query: without generic filler such as 舆情 / 事件."""
        t = clean_text(ctx.topic).replace("\n", " ").strip()[:80]
        core = t
        for filler in _TOPIC_FILLER:
            if core.endswith(filler) and len(core) > len(filler) + 1:
                core = core[: -len(filler)].strip()
        return core or t

    def _topic_terms(self, ctx: ReasonContext) -> list[str]:
        core = self._core_topic(ctx)
        return [core] + list(words(core)) if core else []

    # -- sentiment -------------------------------------------------------------------------

    def _sentiments(self, docs: Sequence[Document]) -> list[float | None]:
        """Probability of positive per document: Document.sentiment (the engines fill it with the one
        scorer, core.text.sentiment.score_documents, from Document.text); else the injected classifier on
        the same text; else None (unknown)."""
        out: list[float | None] = [d.sentiment for d in docs]
        todo = [i for i, v in enumerate(out) if v is None and (docs[i].text or "").strip()]
        if not todo:
            return out
        predict = self._classifier
        if predict is None and self._use_default:
            from core.text.sentiment import predict
        if predict is None:
            return out
        try:
            for i, res in zip(todo, predict([docs[i].text for i in todo])):
                out[i] = float(res[1])
        except (OSError, ValueError):
            pass  # the model is unavailable: these stay unknown
        return out

    # -- structure -------------------------------------------------------------------------

    def plan_structure(self, ctx: ReasonContext, overview: list[Source]) -> list[Paragraph]:
        zh = self._zh(ctx)
        p = max(1, int(ctx.n_paragraphs or 1))
        docs = [s.doc for s in _unique_by_doc(overview)]
        table = ASPECTS.get(ctx.engine, ASPECTS["query"])
        supported = [a for a in table if not docs or self._supported(a, docs)]
        if p == 1:
            chosen = [table[0]]
        elif p <= len(supported):
            chosen = supported[: p - 1] + [supported[-1]]
        else:
            chosen = supported[:-1] + [THEME] * (p - len(supported)) + supported[-1:]
        kindex = extract_keywords([_doc_text(d) for d in docs], top_k=30, exclude=self._topic_terms(ctx))
        clusters = self._clusters(kindex, len(chosen))
        span = _span(docs)
        plat_counts = Counter((d.platform or "").lower() for d in docs if d.platform)
        platforms = [k for k, _ in sorted(plat_counts.items(), key=lambda kv: (-kv[1], kv[0]))][:6]
        topic = self._topic(ctx)
        out: list[Paragraph] = []
        extra = 0
        for i, aspect in enumerate(chosen):
            kws = clusters[i]
            if aspect is THEME and not kws:
                extra += 1
                aspect_used = EXTRA
            else:
                aspect_used = aspect
            label = aspect_used.zh if zh else aspect_used.en
            if i == 0:
                title = f"「{topic}」{label}" if zh else f"“{topic}”: {label}"
            elif kws:
                title = f"{label}：{'、'.join(kws[:2])}" if zh else f"{label}: {', '.join(kws[:2])}"
            elif aspect_used is EXTRA:
                title = f"{label} {extra}"
            else:
                title = label
            plats = platforms if aspect_used.intent in ("platform", "overview", "video", "image") else platforms[:3]
            out.append(Paragraph(index=i, title=title, brief=_brief(aspect_used, zh, kws, span, plats)))
        return out

    @staticmethod
    def _supported(aspect: Aspect, docs: Sequence[Document]) -> bool:
        intent = aspect.intent
        if intent == "timeline":
            return len({_day(d.published) for d in docs} - {""}) >= 2
        if intent == "hot":
            return any(_hot(d) > 0 for d in docs)
        if intent == "influencer":
            return any(_hot(d) > 0 and d.author for d in docs)
        if intent == "platform":
            return len({(d.platform or "").lower() for d in docs if d.platform}) >= 2
        if intent == "comments":
            return any(_num(d.comments) > 0 or d.kind == "comment" for d in docs)
        if intent == "video":
            return any(d.kind == "video" or (d.platform or "").lower() in VIDEO_PLATFORMS for d in docs)
        if intent == "image":
            return any(d.kind == "image" or (d.platform or "").lower() in IMAGE_PLATFORMS for d in docs)
        return True

    @staticmethod
    def _clusters(kindex, count: int, size: int = 3) -> list[list[str]]:
        """Keyword clusters: each seeded by the strongest free keyword, joined by the free keywords
        that co-occur with it in most documents."""
        free = kindex.top(len(kindex.ranked))
        rank = {w: i for i, w in enumerate(free)}
        out = []
        for _ in range(count):
            if not free:
                out.append([])
                continue
            seed = free[0]
            seed_docs = kindex.docs.get(seed, frozenset())
            mates = sorted(((len(seed_docs & kindex.docs.get(w, frozenset())), w) for w in free[1:]),
                           key=lambda t: (-t[0], rank[t[1]]))
            cluster = [seed] + [w for c, w in mates if c > 0][: size - 1]
            out.append(cluster)
            free = [w for w in free if w not in cluster]
        return out

    # -- searches --------------------------------------------------------------------------

    def plan_first_search(self, ctx: ReasonContext, paragraph: Paragraph,
                          guidance: ForumGuidance = NO_GUIDANCE) -> SearchPlan:
        """The paragraph's own search (an analyst's question is searched by the reflection that follows)."""
        zh = self._zh(ctx)
        intent = intent_of(paragraph)
        info = parse_brief(paragraph.brief)
        kws = info["keywords"]
        core = self._core_topic(ctx)
        platform = info["platforms"][0] if intent == "platform" and info["platforms"] else None
        tool, params = tool_for(ctx, intent, info, platform)
        # A search limited to recent dates asks for the topic alone: a keyword of the whole span may
        # not occur in that window at all.
        windowed = any(k in params for k in ("start_date", "end_date", "date"))
        query = core if (paragraph.index == 0 or not kws or windowed) else f"{core} {kws[0]}".strip()
        why = (f"离线分析：段落类型 {intent}，检索主题与关键词" if zh else
               f"offline analysis: {intent} paragraph, searching the topic and its keywords")
        if kws:
            why += ("（" + "、".join(kws) + "）") if zh else f" ({', '.join(kws)})"
        return SearchPlan(query=query or paragraph.title, tool=tool.name if tool else "", params=params, reasoning=why)

    def _candidates(self, ctx: ReasonContext, paragraph: Paragraph, sources: Sequence[Source]) -> list[str]:
        """Keywords this paragraph should cover: its brief's, then the sources' strongest."""
        info = parse_brief(paragraph.brief)
        docs = [s.doc for s in _unique_by_doc(sources)]
        kindex = extract_keywords([_doc_text(d) for d in docs], top_k=8, exclude=self._topic_terms(ctx))
        out: list[str] = []
        for k in info["keywords"] + kindex.top(8):
            if k and k not in out:
                out.append(k)
        return out

    def _uncovered(self, ctx: ReasonContext, paragraph: Paragraph, summary: str,
                   sources: Sequence[Source]) -> tuple[str, str] | None:
        """The first thing the summary misses: ("platform", code) or ("keyword", word)."""
        zh = self._zh(ctx)
        if intent_of(paragraph) == "platform" and any(has_platform_param(t) for t in ctx.tools or ()):
            for code in parse_brief(paragraph.brief)["platforms"]:
                if not (contains(summary, platform_name(code, zh)) or contains(summary, code)):
                    return ("platform", code)
        for k in self._candidates(ctx, paragraph, sources):
            if not contains(summary, k):
                return ("keyword", k)
        return None

    def _target(self, ctx: ReasonContext, paragraph: Paragraph, summary: str, sources: Sequence[Source],
                guidance: ForumGuidance | None) -> tuple[str, str] | None:
        """What the next reflection searches: an analyst's question not covered yet ("human", its terms),
        else the first thing the summary misses."""
        pending = pending_question(guidance, summary, self._topic_terms(ctx))
        if pending is not None:
            return ("human", " ".join(pending[1]))
        return self._uncovered(ctx, paragraph, summary, sources)

    def plan_reflection(self, ctx: ReasonContext, paragraph: Paragraph, summary: str,
                        sources: list[Source], guidance: ForumGuidance = NO_GUIDANCE) -> SearchPlan | None:
        if not ctx.tools:
            return None
        target = self._target(ctx, paragraph, summary, sources, guidance)
        if target is None:
            return None
        zh = self._zh(ctx)
        intent = intent_of(paragraph)
        info = parse_brief(paragraph.brief)
        core = self._core_topic(ctx)
        kind, value = target
        if kind == "platform":
            tool, params = tool_for(ctx, "platform", info, value, reflection=True)
            query = core
            why = (f"离线分析：摘要尚未覆盖平台 {platform_name(value, True)}" if zh else
                   f"offline analysis: the summary does not cover {platform_name(value, False)} yet")
        elif kind == "human":  # the whole topic, not this paragraph's window or platform: where the answer may be
            broad = next((t for n in _BROAD_TOOLS for t in ctx.tools if t.name == n), None)
            tool, params = (broad, {}) if broad else tool_for(ctx, intent, info, None, reflection=True)
            query = f"{core} {value}".strip()
            why = (f"离线分析：分析师在论坛提问，检索问题中的关键词「{value}」" if zh else
                   f"offline analysis: the analyst asked in the forum; searching their terms “{value}”")
        else:
            tool, params = tool_for(ctx, intent, info, None, reflection=True)
            query = f"{core} {value}".strip()
            why = (f"离线分析：关键词「{value}」在来源或段落要求中出现，但摘要尚未覆盖" if zh else
                   f"offline analysis: “{value}” matters in the sources or the brief but the summary does not cover it")
        if tool is None:
            return None
        return SearchPlan(query=query, tool=tool.name, params=params, reasoning=why)

    # -- summaries -------------------------------------------------------------------------

    def first_summary(self, ctx: ReasonContext, paragraph: Paragraph, sources: list[Source],
                      guidance: ForumGuidance = NO_GUIDANCE) -> str:
        sources = _dedupe_sources(sources)
        must = self._asked(ctx, guidance) + [k for k in parse_brief(paragraph.brief)["keywords"]]
        return self._compose(ctx, paragraph, sources, must, keep=[], notes=[], guidance=guidance)

    def _asked(self, ctx: ReasonContext, guidance: ForumGuidance | None) -> list[str]:
        """The terms of the analyst's latest questions, newest first: what a summary covers first."""
        out: list[str] = []
        for q in reversed((guidance or NO_GUIDANCE).human):
            out += [t for t in question_terms(q, self._topic_terms(ctx)) if t not in out]
        return out

    def reflection_summary(self, ctx: ReasonContext, paragraph: Paragraph, summary: str, new_sources: list[Source],
                           all_sources: list[Source], guidance: ForumGuidance = NO_GUIDANCE) -> str:
        all_sources = _dedupe_sources(list(all_sources) + [s for s in new_sources])
        new_ns = {s.n for s in new_sources}
        old_sources = [s for s in all_sources if s.n not in new_ns]
        zh = self._zh(ctx)
        target = self._target(ctx, paragraph, summary, old_sources, guidance)
        candidates = self._candidates(ctx, paragraph, all_sources)
        covered = [k for k in candidates if contains(summary, k)]
        must: list[str] = []
        if target and target[0] == "keyword":
            must.append(target[1])
        must += [k for k in self._asked(ctx, guidance) + covered if k not in must]
        keep = self._parse_bullets(summary)
        notes = self._parse_notes(summary)
        text = self._compose(ctx, paragraph, all_sources, must, keep=keep, notes=notes, guidance=guidance)
        if target and target[0] == "human":
            asked = target[1].split(" ")
            missing = [t for t in asked if not contains(body(text), t)]
            if missing == asked:  # the search found none of the question's terms
                notes = (notes + [searched_note(missing, zh)])[-MAX_NOTES:]
                text = self._compose(ctx, paragraph, all_sources, must, keep=keep, notes=notes, guidance=guidance)
        elif target:
            kind, value = target
            shown = platform_name(value, zh) if kind == "platform" else value
            if not contains(text, shown) and not (kind == "platform" and contains(text, value)):
                note = (f"*补充检索「{shown}」：新来源中未发现相关内容。*" if zh else
                        f"*Follow-up search for “{shown}”: nothing new was found.*")
                notes = (notes + [note])[-MAX_NOTES:]
                text = self._compose(ctx, paragraph, all_sources, must, keep=keep, notes=notes, guidance=guidance)
        return text

    @staticmethod
    def _parse_bullets(summary: str) -> list[tuple[str, int]]:
        out = []
        for line in (summary or "").splitlines():
            m = re.match(r"^- (?:\*\*[^*]+\*\* )?(.+) \[(\d+)\]$", line.strip())
            if m:
                out.append((m.group(1), int(m.group(2))))
        return out

    @staticmethod
    def _parse_notes(summary: str) -> list[str]:
        return [line.strip() for line in (summary or "").splitlines()
                if re.match(r"^\*(补充检索|Follow-up search)", line.strip())][-MAX_NOTES:]

    def _compose(self, ctx: ReasonContext, paragraph: Paragraph, sources: list[Source], must: list[str],
                 keep: list[tuple[str, int]], notes: list[str], guidance: ForumGuidance | None) -> str:
        zh = self._zh(ctx)
        intent = intent_of(paragraph)
        if not sources:
            empty = ("本段没有检索到相关内容：当前数据中未找到与「" + self._topic(ctx) + "」及本段主题匹配的文档，故不作推断。"
                     if zh else
                     f"Nothing was found for this paragraph: no retrieved document matches “{self._topic(ctx)}” "
                     "and this paragraph's subject, so nothing is inferred.")
            return "\n\n".join([empty] + notes + no_source_lines(zh, guidance))

        docs = [s.doc for s in sources]
        senti = self._sentiments(docs)
        by_n = {s.n: (s, senti[i]) for i, s in enumerate(sources)}
        sentences = _sentences(sources)
        kindex = extract_keywords([_doc_text(d) for d in docs], top_k=20, exclude=self._topic_terms(ctx))
        weights = kindex.weights()
        focus = _FOCUS_WORDS.get(intent, ())
        max_hot = max((_hot(d) for d in docs), default=0.0)
        boosts = []
        for s in sentences:
            doc = sources[s.doc_pos].doc
            b = 1.0
            if focus and any(contains(s.text, f) for f in focus):
                b *= 1.5
            if intent == "comments" and doc.kind == "comment":
                b *= 1.5
            if intent == "video" and (doc.kind == "video" or (doc.platform or "").lower() in VIDEO_PLATFORMS):
                b *= 1.5
            if intent == "image" and (doc.kind == "image" or (doc.platform or "").lower() in IMAGE_PLATFORMS):
                b *= 1.5
            if intent in ("hot", "influencer") and max_hot > 0:
                b *= 1.0 + math.log1p(_hot(doc)) / math.log1p(max_hot)
            if any(contains(s.text, k) for k in must[:3]):
                b *= 1.2
            boosts.append(b)
        scores = rank_sentences([s.text for s in sentences], weights, boosts)
        kept = {(t, n) for t, n in keep}
        order = sorted(range(len(sentences)),
                       key=lambda i: (-(scores[i] * (1.3 if (sentences[i].text, sentences[i].n) in kept else 1.0)), i))

        stats = stats_line(zh, docs, senti)
        extra = aspect_lines(zh, intent, sources, senti)
        top = top_posts(zh, sources, 3) if intent not in ("hot", "influencer") else ""
        g = guidance or NO_GUIDANCE
        forum = human_lines(zh, g, sentences, order, self._topic_terms(ctx)) + [host_line(zh, g.host_speech, sentences,
                                                                                         order)]
        fixed = [stats] + extra + [top] + notes + forum
        fixed_len = sum(len(x) + 2 for x in fixed if x)
        budget = max(MIN_BULLET_CHARS, min(MAX_BULLET_CHARS, MAX_PARAGRAPH_CHARS - fixed_len))
        label_len = 15 if intent == "timeline" else 0
        limit = MAX_BULLETS - (2 if intent == "sentiment" else 0)
        chosen: list[int] = []
        used = [0]

        def cost(i: int) -> int:
            return len(sentences[i].text) + len(str(sentences[i].n)) + 6 + label_len

        groups = cluster([_doc_text(d) for d in docs])  # reposts and templated posts share a group

        def fits(i: int, cap: int) -> bool:
            if i in chosen or len(chosen) >= cap or used[0] + cost(i) > budget:
                return False
            pos = sentences[i].doc_pos
            if any(groups[sentences[j].doc_pos] == groups[pos] and sentences[j].doc_pos != pos for j in chosen):
                return False  # never quote two near-duplicate posts
            return not any(near_duplicate(sentences[i].text, sentences[j].text) for j in chosen)

        def take(i: int) -> None:
            chosen.append(i)
            used[0] += cost(i)

        for k in must:  # coverage first: the best sentence for each keyword not yet covered
            if any(contains(sentences[j].text, k) for j in chosen):
                continue
            for i in order:
                if contains(sentences[i].text, k) and fits(i, limit):
                    take(i)
                    break
        for i in order:
            if len(chosen) >= limit:
                break
            if fits(i, limit):
                take(i)

        if intent == "timeline":
            dated = sorted(chosen, key=lambda i: (_day(sources[sentences[i].doc_pos].doc.published) or "9999", i))
            bullets = []
            for i in dated:
                day = _day(sources[sentences[i].doc_pos].doc.published)
                label = f"**{day}** " if day else ""
                bullets.append(f"- {label}{sentences[i].text} [{sentences[i].n}]")
        else:
            chosen.sort(key=lambda i: order.index(i))
            bullets = [f"- {sentences[i].text} [{sentences[i].n}]" for i in chosen]
        if intent == "sentiment":
            for want_pos, label in ((True, "正面" if zh else "positive"), (False, "负面" if zh else "negative")):
                for i in order:
                    p = by_n[sentences[i].n][1]
                    if label_of(p) == (POSITIVE if want_pos else NEGATIVE) and fits(i, MAX_BULLETS):
                        take(i)
                        bullets.append(f"- **{label}** {sentences[i].text} [{sentences[i].n}]")
                        break
        lines = [stats, "\n".join(bullets)] + extra + [top] + notes + forum
        return "\n\n".join(line for line in lines if line)

    # -- report ----------------------------------------------------------------------------

    def format_report(self, ctx: ReasonContext, results: list[ParagraphResult]) -> str:
        zh = self._zh(ctx)
        topic = self._topic(ctx)
        engine = ctx.engine_title or ctx.engine
        by_n: dict[int, Source] = {}
        for r in results:
            for s in r.sources:
                by_n.setdefault(s.n, s)
        title = f"# 「{topic}」分析报告 · {engine}" if zh else f"# Report on “{topic}” · {engine}"
        n_docs = len(by_n)
        intro = (f"> {OFFLINE_LABEL}：本报告由离线分析器根据检索到的 {n_docs} 篇文档生成（抽取式摘要与统计），未使用大模型。"
                 if zh else
                 f"> {OFFLINE_LABEL}: written by the offline analyst from {n_docs} retrieved documents "
                 "(extractive summaries and statistics); no LLM was used.")
        lines = [title, "", intro, ""]
        cited: dict[int, None] = {}
        for k, r in enumerate(sorted(results, key=lambda r: r.paragraph.index), 1):
            body = (r.summary or "").strip() or ("本段没有内容。" if zh else "This paragraph has no content.")
            lines += [f"## {k}. {r.paragraph.title}", "", body, ""]
            for n in cited_numbers(body):
                if n in by_n:
                    cited.setdefault(n, None)
        lines += ["## 来源" if zh else "## Sources", ""]
        if not cited:
            lines.append("（无引用来源）" if zh else "(no sources cited)")
        for n in sorted(cited):
            d = by_n[n].doc
            name = re.sub(r"\s+", " ", clean_text(d.title) or _snippet(d, 40)).strip() or "—"
            if len(name) > 60:
                name = name[:60] + "…"
            name = name.replace("[", "［").replace("]", "］")
            lines.append(f"- [{n}] {name} — {platform_name(d.platform, zh)} — {_day(d.published) or '—'} — {d.url or '—'}")
        return "\n".join(lines).rstrip() + "\n"
