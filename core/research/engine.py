"""The deep-research engine: one design, three configurations (Query, Media, Insight).

Per run: an overview search and a report structure of P paragraphs; then, for every paragraph
IN PARALLEL (bounded): first search → first summary → R × (reflection → search → updated
summary); then formatting. BettaFish runs all of this in sequence, 2 + P(2+2R) LLM round
trips; here the critical path is about 2 + 2 + 2R.

Progress is checkpointed per node (structure, each paragraph's stage and summary; the sources
found so far are appended once each to the job's stored list, not rewritten per node), so an interrupted engine resumes where it stopped and a paragraph already done
is never redone or lost. Every node writes one structured record to the engine's log (for the
log viewer). Each paragraph summary (first and after every reflection) is posted straight to the
forum (core.forum.Forum.post_summary) with the llm_calls row of the call that wrote it, so the
forum does not depend on the log level. Before each search plan and summary the engine reads the
forum's guidance (core.forum.forum_guidance: the host's latest speech, the analyst's latest messages).
"""
from __future__ import annotations

import contextvars
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from loguru import logger

from core.console import telemetry
from core.infra.config import Settings
from core.corpus.search import CorpusSlice
from core.corpus.documents import Document
from core.llm.answered import answered_calls
from core.llm import run_budget
from core.work.jobs import JobCancelled, JobContext, LeaseLost
from core.research.names import ENGINE_NAMES
from core.research.plan import planned_paragraphs
from core.research.reasoning import (ForumGuidance, Paragraph, ParagraphResult, ReasonContext, Reasoner, SearchPlan,
                                     Source)
from core.infra.redact import redact
from core.research.relevance import TopicScope
from core.research.results import EngineResult, ResultParagraph, ResultSource, sources_to_json, stored_sources
from core.research.write_behind import Posts, WriteBehind
from core.text.sentiment import score_documents
from core.text.clean import has_cjk
from core.infra.tracing import child_trace_id, current_trace_id, trace_scope

if TYPE_CHECKING:
    from core.forum import Forum

MAX_DOCS_PER_SEARCH = 12
CONTENT_CHARS_KEPT = 1500  # per document in the checkpoint: enough to cite and summarise


@dataclass(frozen=True)
class EngineConfig:
    name: str  # query | media | insight
    title: str
    source: str  # forum source tag: QUERY | MEDIA | INSIGHT
    focus: str
    llm_role: str
    offline_slice: CorpusSlice  # the part of the corpus this engine reads


# Each engine reads its own slice of the corpus, so the three add distinct value instead of citing
# the same posts three times (README, "Trust: what an analysis rests on", has the table):
#   Query   news and web-like sources: every platform that is not a social or video/image platform
#           (news sites, zhihu, web pages, wechat articles, …), posts only
#   Media   video and image platforms (douyin, bilibili, kuaishou, xhs), posts only
#   Insight social posts (weibo, tieba) and the comments of every platform, with sentiment
SOCIAL_PLATFORMS = ("weibo", "tieba")
VISUAL_PLATFORMS = ("douyin", "bilibili", "kuaishou", "xhs")

ENGINES: dict[str, EngineConfig] = {
    "query": EngineConfig("query", ENGINE_NAMES["query"].title, ENGINE_NAMES["query"].source,
                          "news and web coverage: what happened, timeline, official statements, media framing",
                          "QUERY_ENGINE",
                          CorpusSlice("news and web", exclude_platforms=SOCIAL_PLATFORMS + VISUAL_PLATFORMS,
                                      posts_only=True)),
    "media": EngineConfig("media", ENGINE_NAMES["media"].title, ENGINE_NAMES["media"].source,
                          "multimodal coverage: video and image platforms, formats, influential creators",
                          "MEDIA_ENGINE", CorpusSlice("video and image", platforms=VISUAL_PLATFORMS, posts_only=True)),
    "insight": EngineConfig("insight", ENGINE_NAMES["insight"].title, ENGINE_NAMES["insight"].source,
                            "the analyst's own social-media database: public sentiment, hot posts, comments, "
                            "platform differences, risks",
                            "INSIGHT_ENGINE",
                            CorpusSlice("social posts and comments", platforms=SOCIAL_PLATFORMS,
                                        comments_anywhere=True)),
}

NODE_NAMES = {
    "structure": "ReportStructureNode", "first_search": "FirstSearchNode", "first_summary": "FirstSummaryNode",
    "reflection": "ReflectionNode", "reflection_summary": "ReflectionSummaryNode", "format": "ReportFormattingNode",
}


# -- wiring: which provider and reasoner an engine uses ----------------------------------------
def make_provider(engine: str, settings: Settings, db, scope: TopicScope | None = None):
    if engine in ("query", "media") and settings["SHOAL_MODE"] != "offline":
        from core.research.web_search import web_provider_for

        web = web_provider_for(engine, settings)
        if web is not None:
            return web
    return corpus_provider(engine, db, scope)


def corpus_provider(engine: str, db, scope: TopicScope | None = None):
    from core.research.corpus_tools import CorpusSearchProvider

    return CorpusSearchProvider(db, where=ENGINES[engine].offline_slice, scope=scope)


def make_reasoner(engine: str, settings: Settings, db, events, offline: bool) -> Reasoner:
    from core.research.offline import OfflineReasoner

    role = ENGINES[engine].llm_role
    if offline or not settings.llm_configured(role):
        return OfflineReasoner()
    from core.llm.client import LlmClient
    from core.research.llm_reasoner import LlmReasoner

    return LlmReasoner(LlmClient(role, settings, db=db, events=events))


def engine_mode(engine: str, settings: Settings, offline: bool) -> str:
    return "offline" if offline or not settings.llm_configured(ENGINES[engine].llm_role) else "llm"


def overview_tool(tools) -> str:
    """The structure's first search: the plain topic search (never a hot list, a date or a platform)."""
    names = [t.name for t in tools]
    for preferred in ("search_topic_globally", "basic_search_news", "comprehensive_search"):
        if preferred in names:
            return preferred
    return names[0] if names else "search_topic_globally"


# -- state kept in the job's checkpoint ------------------------------------------------------------
class SourceRegistry:
    """Citation numbers for every document this engine retrieved, shared by parallel paragraphs."""

    def __init__(self, stored: "list[ResultSource | None] | None" = None):
        self._lock = threading.Lock()
        self._by_id: dict[str, Source] = {}
        self._ordered: list[Source] = []
        for r in stored or []:
            if r is not None:
                self.add(r.document)

    def add(self, doc: Document) -> Source:
        with self._lock:
            existing = self._by_id.get(doc.doc_id)
            if existing:
                return existing
            if len(doc.content) > CONTENT_CHARS_KEPT:
                doc.content = doc.content[:CONTENT_CHARS_KEPT] + "…"
            src = Source(len(self._ordered) + 1, doc)
            self._by_id[doc.doc_id] = src
            self._ordered.append(src)
            return src

    def unknown(self, docs: list[Document]) -> list[Document]:
        """The documents not registered yet (add() keeps the registered one of a known id)."""
        with self._lock:
            return [d for d in docs if d.doc_id not in self._by_id]

    def get(self, n: int) -> Source | None:
        with self._lock:
            return self._ordered[n - 1] if 0 < n <= len(self._ordered) else None

    def all(self) -> list[Source]:
        with self._lock:
            return list(self._ordered)

    def to_json(self) -> list[dict]:
        with self._lock:
            return sources_to_json(ResultSource(s.n, s.doc) for s in self._ordered)


def log_node(engine: str, node: str, output: dict, *, run_id: str, paragraph: int | None = None) -> None:
    """One structured record per node in logs/<engine>.log, in BettaFish's old shape,
    `[NodeName] 清理后的输出: {json}`, with the JSON on one line. For people and the log viewer:
    the forum gets summaries from EngineRun._summarise, never from these lines."""
    record = {"engine": engine, "run_id": run_id, **({"paragraph": paragraph} if paragraph is not None else {}),
              **output}
    logger.bind(sink=engine, node=node).info("[{}] 清理后的输出: {}", node,
                                             json.dumps(record, ensure_ascii=False, default=str))


@dataclass
class EngineServices:
    settings: Settings
    db: Any
    events: Any
    provider: Any
    reasoner: Reasoner
    guidance: Callable[[], ForumGuidance]  # the forum's latest host speech and analyst messages (read per node)
    max_parallel: int
    expand_query: Callable[[str], list[str]] | None = None  # Insight's keyword optimiser (LLM mode)
    scope: TopicScope | None = None  # what is on topic for this run: every kept source passes it
    forum: "Forum | None" = None  # where paragraph summaries are posted (core.forum)


class EngineRun:
    """Runs one engine for one job, checkpointing after every node."""
    budget_stopped = False  # set when the run's budget refused a paragraph's next node

    def __init__(self, ctx: JobContext, config: EngineConfig, services: EngineServices):
        self.ctx = ctx
        self.config = config
        self.s = services
        cp = ctx.checkpoint
        self.registry = SourceRegistry(stored_sources(ctx.db, ctx.job_id, cp) if cp else [])
        self._stored = len(self.registry.all())  # sources already in job_items (or inline, if older)
        if isinstance(cp.get("sources"), list):
            self._stored = 0  # a checkpoint from before job_items: store its sources once on the next save
        self.structure = [Paragraph(**p) for p in cp.get("structure", [])]
        self.paragraphs: dict[str, dict] = {k: dict(v) for k, v in cp.get("paragraphs", {}).items()}
        self.search_errors: list[str] = list(cp.get("search_errors", []))
        self.fallbacks: int = int(cp.get("fallbacks", 0))
        # fallbacks by the LLM error's kind (LlmError.kind: 'auth', 'parse', ...), for core.work.outcomes
        self.fallback_kinds: dict[str, int] = {str(k): int(v) for k, v in (cp.get("fallback_kinds") or {}).items()}
        self._cp_lock = threading.Lock()
        self.report_md: str | None = cp.get("report_md")
        # Checkpoints and node log records are written behind the paragraphs' chains, in order
        # (core.research.write_behind); run() flushes them before the job ends, whatever its outcome.
        self._behind = WriteBehind(self._write_checkpoint, name=config.name)
        # Forum posts go out on one thread per engine, in order, off the paragraphs' chains: a post
        # (de-duplication, its row, the host's round) is not what the next node needs. run() waits
        # for them before the job ends, so the report and the host rounds see every post.
        self._posts = Posts(config.name)
        params = ctx.run_params
        self.n_paragraphs = int(params.get("paragraphs") or services.settings["SHOAL_PARAGRAPHS"])
        self.n_reflections = int(params.get("reflections") if params.get("reflections") is not None
                                 else services.settings["SHOAL_REFLECTIONS"])
        self.rctx = ReasonContext(topic=ctx.topic, engine=config.name, engine_title=config.title, focus=config.focus,
                                  tools=tuple(services.provider.tools), n_paragraphs=self.n_paragraphs,
                                  run_id=ctx.run_id, job_id=ctx.job_id)

    # -- checkpoint -------------------------------------------------------------------------
    def _save(self) -> None:
        """The checkpoint: the plan, each paragraph's state (summary, source numbers, searches) and
        counters. Sources are not in it: each is appended once to the job's "sources" list
        (core.work.checkpoints) by the first save after it was found; `sources_stored` says how many
        belong to this checkpoint (core.research.results.stored_sources reads them back)."""
        with self._cp_lock:  # built and queued under one lock: saves are written in the order taken
            sources = self.registry.all()
            new = [(src.n, ResultSource(src.n, src.doc).to_dict()) for src in sources[self._stored:]]
            self._behind.save({
                "structure": [p.as_dict() for p in self.structure],
                "paragraphs": {k: {f: list(v) if isinstance(v, list) else v for f, v in state.items()}
                               for k, state in self.paragraphs.items()},  # a copy: the paragraphs go on
                "sources_stored": len(sources),
                "search_errors": self.search_errors[-50:],
                "fallbacks": self.fallbacks,
                "fallback_kinds": dict(self.fallback_kinds),
                "report_md": self.report_md,
            }, new)
            self._stored = len(sources)

    def _write_checkpoint(self, data: dict, new: list) -> None:
        """On the write-behind thread: the checkpoint, with the sources it is the first to count."""
        self.ctx.save_checkpoint(data, append={"sources": new} if new else None)

    def _log(self, node: str, output: dict, paragraph: int | None = None) -> None:
        self._behind.log(log_node, self.config.name, node, output, run_id=self.ctx.run_id, paragraph=paragraph)

    def _progress(self) -> None:
        total = max(1, len(self.structure) * (2 + self.n_reflections) + 2)
        done = (1 if self.structure else 0) + sum(2 + int(p.get("reflections_done", 0)) if p.get("summary") else 0
                                                  for p in self.paragraphs.values())
        self.ctx.heartbeat(progress=min(0.99, done / total))

    # -- nodes ------------------------------------------------------------------------------
    def _node(self, node: str, paragraph: int | None, fn: Callable[[], Any]) -> Any:
        self.ctx.check_cancelled()
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.ctx.emit("engine.node", {"engine": self.config.name, "node": NODE_NAMES.get(node, node),
                                          "paragraph": paragraph, "ms": round((time.perf_counter() - t0) * 1000, 1),
                                          "t0": time.time() - (time.perf_counter() - t0)})
            self.ctx.heartbeat()

    def _reason(self, node: str, paragraph: int | None, call: Callable[[Reasoner], Any]) -> Any:
        """Ask the reasoner; if the LLM fails for good, the offline analyst answers this node instead
        and the fallback is counted and visible, so a dead endpoint never loses the run."""
        from core.llm.errors import LlmError  # not core.llm.client: an offline run never imports openai
        from core.research.offline import OfflineReasoner

        try:
            with run_budget.admitted(self.ctx, NODE_NAMES.get(node, node), self.s.reasoner):  # a run's caps
                return self._node(node, paragraph, lambda: call(self.s.reasoner))
        except run_budget.BudgetReached:
            if paragraph is not None:
                raise  # the paragraph stops here (_paragraph_in_trace); its finished nodes are kept
            return self._node(node, paragraph, lambda: call(OfflineReasoner()))  # structure, formatting: offline
        except LlmError as exc:
            if self.s.reasoner.mode == "offline":
                raise
            self.fallbacks += 1
            kind = str(getattr(exc, "kind", "") or "error")
            self.fallback_kinds[kind] = self.fallback_kinds.get(kind, 0) + 1
            message = redact(str(exc))[:300]
            self.ctx.emit("engine.fallback", {"engine": self.config.name, "node": NODE_NAMES.get(node, node),
                                              "paragraph": paragraph, "error": message, "error_kind": kind})
            self.ctx.log.warning("{} {} fell back to the offline analyst: {}", self.config.name, node, message)
            return self._node(node, paragraph, lambda: call(OfflineReasoner()))

    def _search(self, plan: SearchPlan, paragraph: int | None) -> list[Source]:
        def one(query: str) -> list[Document]:
            return self.s.provider.run_tool(plan.tool, query, **(plan.params or {}))

        def run() -> list[Document]:
            try:
                if not self.s.expand_query:
                    return one(plan.query)
                # Insight: the plain query is searched while the keyword optimiser is asked, then its
                # phrasings all at once; the results are merged in query order, without duplicates.
                with ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"{self.config.name}-search") as pool:
                    found = [pool.submit(contextvars.copy_context().run, one, plan.query)]
                    found += [pool.submit(contextvars.copy_context().run, one, q)
                              for q in self.s.expand_query(plan.query)]
                    results = [f.result() for f in found]
                if len(results) == 1:
                    return results[0]
                merged: dict[str, Document] = {}
                for docs in results:
                    for doc in docs:
                        merged.setdefault(doc.doc_id, doc)
                return list(merged.values())
            except (JobCancelled, LeaseLost):
                raise
            except Exception as exc:  # noqa: BLE001 - a failed search is visible, not fatal
                message = f"{plan.tool}({plan.query[:60]}): {redact(str(exc))[:200]}"
                self.search_errors.append(message)
                self.ctx.emit("engine.search_error", {"engine": self.config.name, "paragraph": paragraph,
                                                      "error": message})
                self.ctx.log.warning("search failed: {}", message)
                return []

        t0 = time.perf_counter()
        docs = self._on_topic(self._node("search", paragraph, run), plan, paragraph)[:MAX_DOCS_PER_SEARCH]
        telemetry.record("search", run_id=self.ctx.run_id, trace_id=self.ctx.trace_id,
                         payload={"engine": self.config.name, "provider": self.s.provider.name, "tool": plan.tool,
                                  "results": len(docs), "ms": round((time.perf_counter() - t0) * 1000, 1)})
        score_documents(self.registry.unknown(docs))  # the one scorer; a source found before keeps its score
        self._log("SearchNode", {"search_query": plan.query, "search_tool": plan.tool, "results": len(docs)}, paragraph)
        return [self.registry.add(d) for d in docs]

    def _on_topic(self, docs: list[Document], plan: SearchPlan, paragraph: int | None) -> list[Document]:
        """Keep only documents about the run's topic. The corpus provider applies the scope in its
        query; web results (and anything else) are checked here with the same rule on the same tokens."""
        scope = self.s.scope
        if scope is None or getattr(self.s.provider, "scope", None) is scope:
            return docs
        from core.research.scope import admits_text

        kept = [d for d in docs if admits_text(scope, d.title, d.content)]
        if len(kept) < len(docs):
            self.ctx.emit("engine.off_topic_dropped", {"engine": self.config.name, "paragraph": paragraph,
                                                       "tool": plan.tool, "dropped": len(docs) - len(kept),
                                                       "kept": len(kept)})
        return kept

    # -- the pipeline -------------------------------------------------------------------------
    def _overview_tool(self) -> str:
        return overview_tool(self.rctx.tools)

    def run(self) -> dict:
        """The engine's work; its checkpoints and records are all written when it returns or raises."""
        try:
            result = self._run()
        except BaseException:
            for what, wait in (("a forum post", self._drain_posts), ("a checkpoint", self._behind.flush)):
                try:
                    wait()
                except Exception as exc:  # noqa: BLE001 - the error the run raises says more
                    self.ctx.log.warning("{}: {} was not written: {}", self.config.name, what, type(exc).__name__)
            raise
        # The paragraphs' last posts are written while the report is formatted (it does not read them),
        # and before the job ends, so the report job and the host rounds see every post.
        self._drain_posts()
        self._behind.flush()  # before the supervisor stores the job's checkpoint from its context
        return result

    def _run(self) -> dict:
        if not self.structure:
            overview_tool = self._overview_tool()
            overview = self._search(SearchPlan(self.ctx.topic, overview_tool), None)
            if not overview:
                return self._nothing_on_topic()
            # The analyst's reviewed plan (core.research.plan), when the run has one for this engine, is
            # used as it is; otherwise the engine plans its paragraphs itself.
            given = planned_paragraphs(self.ctx.run_params, self.config.name)
            if given:
                self.structure = given
            else:
                self.structure = self._reason("structure", None, lambda r: r.plan_structure(self.rctx, overview))
                self.structure = self.structure[: self.n_paragraphs]
            self._log(NODE_NAMES["structure"], {"report_structure": [p.as_dict() for p in self.structure],
                                                **({"planned_by": "analyst"} if given else {})})
            self._save()
        todo = [p for p in self.structure if not self.paragraphs.get(str(p.index), {}).get("done")]
        workers = max(1, min(self.s.max_parallel, len(todo) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{self.config.name}-para") as pool:
            futures = [pool.submit(self._paragraph_in_trace, p) for p in todo]
            # Paragraphs are independent: one failing does not stop the others, whose work is kept.
            errors = [exc for f in futures if (exc := f.exception()) is not None]
        for exc in errors:
            if isinstance(exc, (JobCancelled, LeaseLost)):
                raise exc
        if errors:
            raise errors[0]
        results = self.results()
        if self.budget_stopped:  # only the paragraphs written before the budget ran out
            results = run_budget.engine_stopped(self.ctx, self.config.name, results)
        report_md = self.report_md
        if not report_md:
            report_md = self._reason("format", None, lambda r: r.format_report(self.rctx, results))
            self._log(NODE_NAMES["format"], {"final_report_chars": len(report_md)})
            self.report_md = report_md
            self._save()
        return EngineResult(
            engine=self.config.name,
            mode=self.s.reasoner.mode if not self.fallbacks else f"{self.s.reasoner.mode} (offline fallback ×{self.fallbacks})",
            provider=self.s.provider.name,
            report_md=report_md,
            paragraphs=[ResultParagraph(r.paragraph.index, r.paragraph.title, r.summary, [s.n for s in r.sources],
                                        list((self.paragraphs.get(str(r.paragraph.index)) or {}).get("read") or []))
                        for r in results],
            n_sources=len(self.registry.all()),
            search_errors=self.search_errors[-20:],
            fallbacks=self.fallbacks,
            fallback_kinds=dict(self.fallback_kinds),
        ).to_dict()

    def _nothing_on_topic(self) -> dict:
        """Nothing this engine can read is about the topic: say so in one line instead of writing
        paragraphs about nothing (the report lists the engine as having found no sources)."""
        where = getattr(self.s.provider, "where", None)
        zh = has_cjk(self.ctx.topic)
        what = (f"本地语料库中「{where.name}」部分" if zh else f"the corpus's {where.name} slice") if where else \
            (f"{self.s.provider.name} 搜索" if zh else f"the {self.s.provider.name} search")
        report_md = (f"# 「{self.ctx.topic}」· {self.config.title}\n\n{what}中没有与主题相关的来源，本引擎不作分析。\n"
                     if zh else f"# {self.ctx.topic} · {self.config.title}\n\nNothing in {what} is about the topic; "
                                "this engine has nothing to analyse.\n")
        self.ctx.emit("engine.no_sources", {"engine": self.config.name, "slice": where.name if where else None})
        self._log(NODE_NAMES["format"], {"final_report_chars": len(report_md), "sources": 0})
        return EngineResult(self.config.name, self.s.reasoner.mode, self.s.provider.name, report_md, [], 0,
                            self.search_errors[-20:], self.fallbacks, dict(self.fallback_kinds)).to_dict()

    def _summarise(self, node: str, p: Paragraph, call: Callable[[Reasoner], str]) -> str:
        """A summary node, posted to the forum with the llm_calls row of the call that wrote it
        (None when the offline analyst did)."""
        with answered_calls() as calls:
            summary = self._reason(node, p.index, call)
        if self.s.forum is not None:
            self._posts.submit(self.s.forum.post_summary, self.ctx.run_id, source=self.config.source, content=summary,
                               paragraph=p.index, llm_call_id=calls[-1].call_id if calls else None,
                               trace_id=current_trace_id(), metering=False)  # the posted view is not read
        return summary

    def _drain_posts(self) -> None:
        """Wait until every forum post of this engine is written; the first failure is raised."""
        self._posts.drain()

    def _paragraph_in_trace(self, paragraph: Paragraph) -> None:
        with trace_scope(child_trace_id(self.ctx.trace_id)):
            try:
                self._paragraph(paragraph)
            except run_budget.BudgetReached:
                self.budget_stopped = True  # the run's budget is spent: no new node (core.llm.run_budget)

    def _paragraph(self, p: Paragraph) -> None:
        key = str(p.index)
        state = self.paragraphs.setdefault(key, {"summary": "", "sources": [], "searches": [], "reflections_done": 0})
        if not state.get("summary"):
            plan = self._reason("first_search", p.index,
                                lambda r: r.plan_first_search(self.rctx, p, self._guidance(state)))
            sources = self._search(plan, p.index)
            summary = self._summarise("first_summary", p,
                                      lambda r: r.first_summary(self.rctx, p, sources, self._guidance(state)))
            self._log(NODE_NAMES["first_summary"], {"paragraph_latest_state": summary, "title": p.title}, p.index)
            state.update(summary=summary, sources=[s.n for s in sources], searches=[plan.as_dict()])
            self._save()
            self._progress()
        while state["reflections_done"] < self.n_reflections:
            current = self._sources_of(state)
            guidance = self._guidance(state)  # one reading for the search and the summary it feeds
            plan = self._reason("reflection", p.index,
                                lambda r: r.plan_reflection(self.rctx, p, state["summary"], current, guidance))
            if plan is None:
                break
            new = self._search(plan, p.index)
            all_sources = current + [s for s in new if s.n not in set(state["sources"])]
            summary = self._summarise("reflection_summary", p,
                                      lambda r: r.reflection_summary(self.rctx, p, state["summary"], new,
                                                                     all_sources, guidance))
            self._log(NODE_NAMES["reflection_summary"], {"updated_paragraph_latest_state": summary, "title": p.title},
                      p.index)
            state.update(summary=summary, sources=[s.n for s in all_sources],
                         searches=state["searches"] + [plan.as_dict()],
                         reflections_done=state["reflections_done"] + 1)
            self._save()
            self._progress()
        state["done"] = True
        self._save()

    def _guidance(self, state: dict) -> ForumGuidance:
        """The forum's guidance for the paragraph's next node; the ids of the messages it held are kept
        in the paragraph's state ("read"), so its provenance names exactly what shaped it."""
        guidance = self.s.guidance()
        if guidance.ids:
            state["read"] = sorted(set(state.get("read") or []) | set(guidance.ids))
        return guidance

    def _sources_of(self, state: dict) -> list[Source]:
        return [s for n in state.get("sources", []) if (s := self.registry.get(n)) is not None]

    def results(self) -> list[ParagraphResult]:
        out = []
        for p in self.structure:
            state = self.paragraphs.get(str(p.index), {})
            out.append(ParagraphResult(p, state.get("summary", ""), self._sources_of(state),
                                       [SearchPlan(**s) for s in state.get("searches", [])]))
        return out


# -- job handlers ------------------------------------------------------------------------------
def services_for(ctx: JobContext, engine: str) -> EngineServices:
    settings, db, events = ctx.settings, ctx.db, ctx.events
    offline = bool(ctx.run_params.get("offline"))
    from core.forum import Forum, forum_guidance

    from core.research.scope import build_scope

    scope = build_scope(db, ctx.topic, floor=float(settings["SHOAL_RELEVANCE_FLOOR"]))
    return EngineServices(
        settings=settings, db=db, events=events, scope=scope,
        provider=make_provider(engine, settings, db, scope) if not offline else corpus_provider(engine, db, scope),
        reasoner=make_reasoner(engine, settings, db, events, offline),
        guidance=lambda: forum_guidance(db, ctx.run_id),
        forum=Forum(db, events, settings.log_dir, host_every=settings["FORUM_HOST_EVERY"], jobs=ctx.runs),
        # Every paragraph at once by default; the per-provider LLM limit is what really bounds load.
        max_parallel=int(ctx.run_params.get("paragraph_concurrency") or 8),
        expand_query=keyword_optimizer(settings, db, events, ctx) if engine == "insight" and not offline
        else None,
    )


def keyword_optimizer(settings: Settings, db, events, ctx: JobContext) -> Callable[[str], list[str]] | None:
    """BettaFish's keyword optimiser: turn a search into the words people actually post with.

    Only with a KEYWORD_OPTIMIZER model configured; a failure just means no extra phrasings."""
    if not settings.llm_configured("KEYWORD_OPTIMIZER"):
        return None
    from core.llm.client import LlmClient, LlmError

    client = LlmClient("KEYWORD_OPTIMIZER", settings, db=db, events=events, limiter=ctx.limits)
    system = ("You turn an analyst's search into 2-3 short keyword phrases that ordinary users would write on "
              "Chinese social media (Weibo, Douyin, Xiaohongshu) about the same thing. Answer with JSON only.")

    def expand(query: str) -> list[str]:
        try:
            data = client.complete_json(system, f'Search: {query}\nReturn JSON: {{"keywords": ["...", "..."]}}',
                                        required_keys=("keywords",), node="KeywordOptimizerNode",
                                        run_id=ctx.run_id, job_id=ctx.job_id)
        except LlmError as exc:
            ctx.log.warning("keyword optimiser failed, searching the original query only: {}", exc)
            return []
        words = [" ".join(str(k).split())[:60] for k in data.get("keywords") or [] if str(k).strip()]
        return [w for w in dict.fromkeys(words) if w != query][:3]

    return expand


def run_engine_job(ctx: JobContext) -> dict:
    config = ENGINES[ctx.kind]
    services = services_for(ctx, ctx.kind)
    ctx.emit("engine.started", {"engine": ctx.kind, "mode": services.reasoner.mode,
                                "provider": services.provider.name, "resumed": ctx.resumed})
    return EngineRun(ctx, config, services).run()

