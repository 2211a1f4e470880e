"""A run's plan: each engine's paragraphs (title and intent), as the analyst reviewed and edited them.

The engines plan their own paragraphs at their start (core.research.engine, the structure node). Before a
run the analyst can see that plan (core.research.plan_preview), edit it, and start the run with it
(core.analysis.start_analysis(plan=...)): the plan is stored in the run's parameters and an engine it
names uses exactly those paragraphs instead of planning its own. An engine the plan leaves out plans
itself, as without a plan. Reviewing is optional: a run started without a plan never waits for one.

The stored and the file form (`python -m core plan TOPIC --json`, `python -m core run TOPIC --plan FILE`)
is the same JSON: {"topic": "...", "engines": {"query": [{"title": "...", "brief": "..."}, ...], ...}}
("intent" is read as "brief"; the bare {"query": [...]} mapping is read too).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from core.i18n import Msg
from core.research.names import ENGINE_NAMES
from core.research.reasoning import Paragraph

MAX_PLAN_PARAGRAPHS = 12  # the most an engine is asked to plan (core.analysis.analysis_params)
MAX_TITLE_CHARS = 120  # what the LLM reasoner keeps of a planned title
MAX_BRIEF_CHARS = 600  # and of a planned intent
PLAN_PARAM = "plan"  # the run parameter the plan is stored under


class PlanError(ValueError):
    """A plan that cannot be used; the message says which engine and paragraph, and why. `msg` is the
    same in the reader's language, for the mistakes an editor can make (core.i18n.Msg, [plan_review])."""

    def __init__(self, text: str, msg: Msg | None = None):
        super().__init__(text)
        self.msg = msg


@dataclass(frozen=True)
class EnginePlan:
    """One engine's planned paragraphs. From a preview it also says who planned them (mode: llm or
    offline), with which search (provider), on how many on-topic sources, and why there is no plan
    (error: the LLM failed, nothing on topic): such an engine plans itself during the run."""
    engine: str
    paragraphs: tuple[Paragraph, ...]
    mode: str = ""
    provider: str = ""
    sources: int = 0
    error: str = ""

    @property
    def nothing_on_topic(self) -> bool:
        """The overview search found nothing about the topic: the engine will write no paragraphs."""
        return not self.paragraphs and not self.error and self.sources == 0


@dataclass(frozen=True)
class RunPlan:
    topic: str
    engines: tuple[EnginePlan, ...] = field(default_factory=tuple)

    def engine(self, name: str) -> EnginePlan | None:
        return next((e for e in self.engines if e.engine == name), None)

    @property
    def planned(self) -> tuple[EnginePlan, ...]:
        """The engines this plan gives paragraphs to."""
        return tuple(e for e in self.engines if e.paragraphs)

    def to_params(self) -> dict[str, list[dict]]:
        """What the run stores: engine → its paragraphs, for the engines that have some."""
        return {e.engine: [p.as_dict() for p in e.paragraphs] for e in self.planned}

    def to_json(self) -> dict:
        """The file form: the topic and each engine's paragraphs; how each was planned beside them."""
        return {"topic": self.topic, "engines": {e.engine: [{"title": p.title, "brief": p.brief}
                                                            for p in e.paragraphs] for e in self.planned},
                "planned_by": {e.engine: {"mode": e.mode, "provider": e.provider, "sources": e.sources,
                                          **({"error": e.error} if e.error else {})} for e in self.engines}}


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def make_paragraphs(engine: str, rows: Iterable[Any]) -> tuple[Paragraph, ...]:
    """Validated paragraphs from rows of {"title", "brief" (or "intent")} or (title, brief) pairs:
    1..MAX_PLAN_PARAGRAPHS of them, each with a title, lengths bounded, numbered from 0 in order.
    Rows with neither a title nor an intent (an empty line added in an editor) are left out."""
    out: list[Paragraph] = []
    for n, row in enumerate(rows, start=1):
        if isinstance(row, Mapping):
            title, brief = row.get("title"), row.get("brief", row.get("intent"))
        elif isinstance(row, (list, tuple)) and len(row) == 2:
            title, brief = row
        else:
            raise PlanError(f"{engine}: paragraph {n} is not a title and an intent")
        title, brief = _text(title), _text(brief)
        if not title and not brief:
            continue
        if not title:
            raise PlanError(f"{engine}: paragraph {n} has an intent but no title; give it a title or remove it",
                            Msg("plan_review.err_no_title", {"engine": engine, "n": n}))
        if len(title) > MAX_TITLE_CHARS:
            raise PlanError(f"{engine}: the title of paragraph {n} is {len(title)} characters long; "
                            f"keep it under {MAX_TITLE_CHARS}",
                            Msg("plan_review.err_long_title", {"engine": engine, "n": n, "max": MAX_TITLE_CHARS}))
        if len(brief) > MAX_BRIEF_CHARS:
            raise PlanError(f"{engine}: the intent of paragraph {n} is {len(brief)} characters long; "
                            f"keep it under {MAX_BRIEF_CHARS}",
                            Msg("plan_review.err_long_intent", {"engine": engine, "n": n, "max": MAX_BRIEF_CHARS}))
        out.append(Paragraph(index=len(out), title=title, brief=brief))
    if not out:
        raise PlanError(f"{engine}: the plan has no paragraphs; give it at least one, or leave the engine "
                        "out of the plan so it plans its own", Msg("plan_review.err_empty", {"engine": engine}))
    if len(out) > MAX_PLAN_PARAGRAPHS:
        raise PlanError(f"{engine}: the plan has {len(out)} paragraphs; an engine writes at most "
                        f"{MAX_PLAN_PARAGRAPHS}",
                        Msg("plan_review.err_too_many", {"engine": engine, "n": len(out), "max": MAX_PLAN_PARAGRAPHS}))
    return tuple(out)


def parse_plan(raw: Any, topic: str, engines: Iterable[str]) -> RunPlan:
    """A plan from its JSON form (or a RunPlan, checked again), for a run of these engines on this topic.
    Raises PlanError with a clear message: an unknown engine, one the run does not include, a plan
    made for another topic, a paragraph without a title or too long, too many or no paragraphs."""
    run_engines = tuple(engines)
    if isinstance(raw, RunPlan):
        raw = {"topic": raw.topic, "engines": {e.engine: [p.as_dict() for p in e.paragraphs] for e in raw.planned}}
    if not isinstance(raw, Mapping):
        raise PlanError("a plan is a JSON object: {\"engines\": {\"query\": [{\"title\": ..., \"brief\": ...}]}}")
    planned_topic = _text(raw.get("topic")) if "engines" in raw else ""
    if planned_topic and planned_topic != _text(topic):
        raise PlanError(f"the plan was made for the topic {planned_topic!r}, not {_text(topic)!r}; "
                        "plan this topic again (python -m core plan TOPIC --json)")
    by_engine = raw.get("engines") if "engines" in raw else raw
    if not isinstance(by_engine, Mapping):
        raise PlanError("the plan's \"engines\" is not an object of engine → paragraphs")
    out = []
    for name, rows in by_engine.items():
        if name not in ENGINE_NAMES:
            raise PlanError(f"the plan names an unknown engine {name!r}; engines are {', '.join(ENGINE_NAMES)}")
        if name not in run_engines:
            raise PlanError(f"the plan has paragraphs for the {name} engine, which this run does not include "
                            f"({', '.join(run_engines)})")
        if not isinstance(rows, (list, tuple)):
            raise PlanError(f"{name}: the plan's paragraphs are not a list")
        out.append(EnginePlan(name, make_paragraphs(name, rows)))
    return RunPlan(_text(topic), tuple(sorted(out, key=lambda e: run_engines.index(e.engine))))


def planned_paragraphs(run_params: Mapping | None, engine: str) -> list[Paragraph] | None:
    """The paragraphs the run's stored plan gives this engine, or None: the engine plans its own."""
    rows = ((run_params or {}).get(PLAN_PARAM) or {}).get(engine)
    if not rows:
        return None
    return list(make_paragraphs(engine, rows))
