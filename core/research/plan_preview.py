"""Each engine's planned paragraphs for a topic, without starting a run: what the analyst reviews.

For each engine this does what the engine does at its start (core.research.engine.EngineRun.run): the
same provider and reasoner (make_provider / make_reasoner), the same overview search of the topic (its
plain topic tool, kept on topic, the first MAX_DOCS_PER_SEARCH, scored, numbered as the engine numbers
them), then Reasoner.plan_structure. Offline that is a corpus query and the offline analyst: fast, and
the same paragraphs the engine would plan. In LLM mode it is one structure call per engine (the three at
once); a failure is said per engine (EnginePlan.error) and that engine plans itself during the run.
Insight's keyword optimiser is not asked here (the run's overview search may add its phrasings).
"""
from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

from loguru import logger

from core.infra.config import Settings
from core.infra.redact import redact
from core.research.engine import (ENGINES, MAX_DOCS_PER_SEARCH, SourceRegistry, corpus_provider, engine_mode,
                                  make_provider, make_reasoner, overview_tool)
from core.research.plan import EnginePlan, RunPlan
from core.research.reasoning import ReasonContext
from core.text.sentiment import score_documents


def preview_plan(db, settings: Settings, topic: str, engines=None, *, paragraphs: int | None = None,
                 offline: bool = False, events=None) -> RunPlan:
    """The plan each engine would make for `topic`. Raises TopicError/ValueError for a bad topic,
    engine list or paragraph count (the messages of core.analysis); never for one engine's failure."""
    from core.analysis import analysis_params, clean_topic, parse_engines
    from core.research.scope import build_scope

    topic = clean_topic(topic)
    names = parse_engines(engines)
    params = analysis_params(settings, names, paragraphs=paragraphs, offline=offline)
    scope = build_scope(db, topic, floor=float(settings["SHOAL_RELEVANCE_FLOOR"]))
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="plan-preview") as pool:
        futures = [pool.submit(contextvars.copy_context().run, _engine_plan, db, settings, events, topic, name,
                               params["paragraphs"], params["offline"], scope) for name in names]
        return RunPlan(topic, tuple(f.result() for f in futures))


def _engine_plan(db, settings: Settings, events, topic: str, engine: str, n_paragraphs: int, offline: bool,
                 scope) -> EnginePlan:
    config = ENGINES[engine]
    mode = engine_mode(engine, settings, offline)
    provider = None
    try:
        provider = make_provider(engine, settings, db, scope) if not offline else corpus_provider(engine, db, scope)
        reasoner = make_reasoner(engine, settings, db, events, offline)
        rctx = ReasonContext(topic=topic, engine=engine, engine_title=config.title, focus=config.focus,
                             tools=tuple(provider.tools), n_paragraphs=n_paragraphs)
        overview = _overview(provider, topic, scope, rctx)
        if not overview:
            return EnginePlan(engine, (), mode, provider.name, 0)  # nothing on topic: it will write no paragraphs
        planned = reasoner.plan_structure(rctx, overview)[:n_paragraphs]
        return EnginePlan(engine, tuple(planned), mode, provider.name, len(overview))
    except Exception as exc:  # noqa: BLE001 - one engine's failure is said, the others' plans stand
        message = redact(str(exc))[:300] or type(exc).__name__
        logger.warning("plan preview: the {} engine could not plan: {}", engine, message)
        return EnginePlan(engine, (), mode, getattr(provider, "name", ""), 0, error=message)
    finally:
        close = getattr(provider, "close", None) if provider is not None else None
        if close is not None:
            close()


def _overview(provider, topic: str, scope, rctx: ReasonContext) -> list:
    """The engine's overview search (EngineRun._search on the topic with its overview tool)."""
    docs = provider.run_tool(overview_tool(rctx.tools), topic)
    if scope is not None and getattr(provider, "scope", None) is not scope:
        from core.research.scope import admits_text

        docs = [d for d in docs if admits_text(scope, d.title, d.content)]
    docs = docs[:MAX_DOCS_PER_SEARCH]
    score_documents(docs)
    registry = SourceRegistry()
    return [registry.add(d) for d in docs]
