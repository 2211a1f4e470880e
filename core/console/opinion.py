"""Opinion telemetry: what a run is finding, per engine, paragraph by paragraph, beside what it costs.

For each engine of a run (its latest job of each engine kind), the paragraphs it has written, in
plan order; after paragraph k, the mix of the sources paragraphs 1..k retrieved (each source once):

  sentiment   positive / neutral / negative shares of the scored sources (the project's one
              scorer, core.text.sentiment: score_documents, then shares), and how many were scored
  platforms   the share of each platform among those sources (weibo, zhihu, news, web, …)

Sources come from the engine job's checkpoint (paragraph states name the sources each retrieved)
and its stored sources (core.research.results.stored_sources). A point's time is that of the
engine's newest forum message about the paragraph (its summary), when there is one.

Scoring is cached per job: stored sources are append-only, so a later read scores only new ones
(the console's scrape and alert tick read the last runs every few seconds).

  run_opinion(db, run_id)       RunOpinion: the engines' series (OpinionPoint per written paragraph)
  recent_opinions(db, k)        the newest k analysis runs' RunOpinion (the Prometheus gauges)
  negative_share(db, ...)       the highest negative share among runs open or ended in a window
                                (the `opinion_negative_share_pct` alert metric)
"""
from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable

from sqlalchemy import func, or_, select

from core.infra.models import ForumMessage as ForumRow
from core.infra.models import Job, Run
from core.research.names import ENGINE_NAMES

RECENT_RUNS = 5          # runs whose opinion the Prometheus gauges carry (bounded label cardinality)
TOP_PLATFORMS = 4        # platforms named per run and engine; the rest are summed as OTHER
OTHER = "other"
UNKNOWN_PLATFORM = "unknown"
MIN_SCORED = 10          # a run's negative share raises no alert before this many scored sources
SENTIMENTS = ("positive", "neutral", "negative")


@dataclass(frozen=True)
class OpinionPoint:
    """An engine's view after its ``step``-th written paragraph (1-based, plan order)."""
    engine: str                 # the engine job kind: query | media | insight
    step: int
    paragraph: int              # the paragraph's index in the plan
    title: str
    sources: int                # distinct sources retrieved by paragraphs 1..step
    scored: int                 # of which the scorer classified
    positive: float             # shares of the scored ones (0.0 when none is scored)
    neutral: float
    negative: float
    platforms: tuple[tuple[str, float], ...]   # (platform, share of the sources), largest first
    at: datetime | None = None  # the engine's newest forum message about the paragraph

    def share(self, sentiment: str) -> float:
        return {"positive": self.positive, "neutral": self.neutral, "negative": self.negative}[sentiment]


@dataclass(frozen=True)
class EngineOpinion:
    engine: str
    job_id: str
    points: tuple[OpinionPoint, ...]

    @property
    def latest(self) -> OpinionPoint | None:
        return self.points[-1] if self.points else None


@dataclass(frozen=True)
class RunOpinion:
    run_id: str
    topic: str
    engines: tuple[EngineOpinion, ...]

    def negative_share(self, min_scored: int = 1) -> tuple[float | None, int]:
        """(negative share over every engine's latest scored sources, scored sources); None below min_scored."""
        neg = scored = 0.0
        for e in self.engines:
            p = e.latest
            if p is not None and p.scored:
                neg += p.negative * p.scored
                scored += p.scored
        return (neg / scored if scored and scored >= max(1, min_scored) else None), int(scored)


def fold_platforms(platforms: Iterable[tuple[str, float]], top: int = TOP_PLATFORMS) -> tuple[tuple[str, float], ...]:
    """The ``top`` largest shares by name, largest first, then the rest summed as OTHER, last
    (bounded label values)."""
    items = sorted(platforms, key=lambda x: (-x[1], x[0]))
    head, rest = items[:top], items[top:]
    if not rest:
        return tuple(head)
    return (*head, (OTHER, sum(v for _, v in rest)))


# ------------------------------------------------------------------------------------------ scoring

class _Scores:
    """Per job, (label or None, platform) of each stored source by number, extended as sources are
    added (they are append-only within an attempt). Bounded to the most recent jobs."""

    MAX_JOBS = 64

    def __init__(self):
        self.lock = threading.Lock()
        self.jobs: OrderedDict[tuple, list] = OrderedDict()

    def of(self, db, job_id: str, attempt: int, checkpoint) -> list[tuple[str | None, str]]:
        from core.research.results import stored_sources
        from core.text.sentiment import label_of, score_documents

        key = (str(getattr(db, "url", id(db))), job_id, attempt)
        with self.lock:
            known = list(self.jobs.get(key, ()))
        new = stored_sources(db, job_id, checkpoint, after=len(known))
        if new:
            docs = [s.document if s is not None else None for s in new]
            score_documents([d for d in docs if d is not None])
            known += [(label_of(d.sentiment), (d.platform or UNKNOWN_PLATFORM).strip().lower() or UNKNOWN_PLATFORM)
                      if d is not None else (None, UNKNOWN_PLATFORM) for d in docs]
        with self.lock:
            self.jobs[key] = known
            self.jobs.move_to_end(key)
            while len(self.jobs) > self.MAX_JOBS:
                self.jobs.popitem(last=False)
        return known


_scores = _Scores()


def _numbers(state) -> list[int]:
    raw = state.get("sources") if isinstance(state, dict) else None
    return [int(n) for n in raw or () if isinstance(n, int) and not isinstance(n, bool)
            or (isinstance(n, str) and n.isdigit())]


def engine_series(engine: str, checkpoint, scores: list[tuple[str | None, str]],
                  times: dict[int, datetime] | None = None) -> tuple[OpinionPoint, ...]:
    """An engine's points from its checkpoint (plan and paragraph states) and its sources' (label,
    platform) by number (position + 1)."""
    cp = checkpoint if isinstance(checkpoint, dict) else {}
    states = cp.get("paragraphs") if isinstance(cp.get("paragraphs"), dict) else {}
    seen: set[int] = set()
    points = []
    for i, p in enumerate(x for x in cp.get("structure") or [] if isinstance(x, dict)):
        try:
            index = int(p.get("index", i))
        except (TypeError, ValueError):
            index = i
        state = states.get(str(index))
        if not isinstance(state, dict) or not str(state.get("summary") or "").strip():
            continue  # not written yet
        seen.update(n for n in _numbers(state) if 1 <= n <= len(scores))
        labels = Counter(scores[n - 1][0] for n in seen)
        platforms = Counter(scores[n - 1][1] for n in seen)
        scored = sum(labels[s] for s in SENTIMENTS)
        total = len(seen)
        points.append(OpinionPoint(
            engine, len(points) + 1, index, str(p.get("title") or ""), total, scored,
            *(labels[s] / scored if scored else 0.0 for s in SENTIMENTS),
            tuple(sorted(((k, v / total) for k, v in platforms.items()), key=lambda x: (-x[1], x[0])))
            if total else (),
            (times or {}).get(index)))
    return tuple(points)


# ------------------------------------------------------------------------------------------ reading

_ENGINE_SOURCE = {n.key: n.source for n in ENGINE_NAMES.values()}


def run_opinion(db, run_id: str, topic: str | None = None) -> RunOpinion:
    """A run's opinion series, one EngineOpinion per engine kind that has a job (its latest)."""
    with db.session() as s:
        jobs = s.execute(select(Job.id, Job.kind, Job.attempt, Job.checkpoint)
                         .where(Job.run_id == run_id, Job.kind.in_(tuple(_ENGINE_SOURCE)))
                         .order_by(Job.created_at, Job.id)).all()
        if topic is None:
            topic = s.scalar(select(Run.topic).where(Run.id == run_id)) or ""
        times = s.execute(select(ForumRow.source, ForumRow.paragraph, func.max(ForumRow.timestamp))
                          .where(ForumRow.run_id == run_id, ForumRow.type == "agent",
                                 ForumRow.paragraph.is_not(None))
                          .group_by(ForumRow.source, ForumRow.paragraph)).all()
    by_source: dict[str, dict[int, datetime]] = {}
    for source, paragraph, ts in times:
        by_source.setdefault(source, {})[int(paragraph)] = ts
    latest = {}
    for job_id, kind, attempt, cp in jobs:  # oldest first: the last of each kind wins
        latest[kind] = (job_id, int(attempt or 0), cp)
    engines = []
    for kind in _ENGINE_SOURCE:  # query, media, insight
        if kind not in latest:
            continue
        job_id, attempt, cp = latest[kind]
        scores = _scores.of(db, job_id, attempt, cp)
        engines.append(EngineOpinion(kind, job_id, engine_series(kind, cp, scores,
                                                                 by_source.get(_ENGINE_SOURCE[kind]))))
    return RunOpinion(run_id, topic or "", tuple(engines))


def recent_opinions(db, k: int = RECENT_RUNS) -> list[RunOpinion]:
    """The newest ``k`` analysis runs, newest first."""
    with db.session() as s:
        runs = s.execute(select(Run.id, Run.topic).where(Run.kind == "analysis")
                         .order_by(Run.created_at.desc(), Run.id.desc()).limit(max(0, int(k)))).all()
    return [run_opinion(db, run_id, topic) for run_id, topic in runs]


def negative_share(db, *, now: float | datetime | None = None, window_seconds: float = 300,
                   k: int = RECENT_RUNS, min_scored: int = MIN_SCORED) -> tuple[float | None, str | None]:
    """(the highest negative share, in percent, and its run) among the newest ``k`` analysis runs that
    are open or ended in the last ``window_seconds``, counting a run only once it has ``min_scored``
    scored sources; (None, None) when none has."""
    from core.work.states import RunState

    if now is None:
        until = datetime.now(timezone.utc).replace(tzinfo=None)
    elif isinstance(now, datetime):
        until = now.astimezone(timezone.utc).replace(tzinfo=None) if now.tzinfo else now
    else:
        until = datetime.fromtimestamp(float(now), timezone.utc).replace(tzinfo=None)
    since = until - timedelta(seconds=window_seconds)
    with db.session() as s:
        runs = s.execute(select(Run.id, Run.topic).where(
            Run.kind == "analysis", or_(Run.status.in_(tuple(RunState.OPEN)), Run.finished_at >= since))
            .order_by(Run.created_at.desc(), Run.id.desc()).limit(max(0, int(k)))).all()
    best: tuple[float | None, str | None] = (None, None)
    for run_id, topic in runs:
        share, _ = run_opinion(db, run_id, topic).negative_share(min_scored)
        if share is not None and (best[0] is None or share * 100 > best[0]):
            best = (share * 100, run_id)
    return best


# ------------------------------------------------------------------------------------------ beside it: ops

@dataclass(frozen=True)
class RunOps:
    """What the run costs, shown beside what it finds: its LLM calls, tokens, cost and latency."""
    calls: int = 0
    tokens: int = 0
    cost_usd: float | None = 0.0       # None when a call's model is unpriced (core.console.usage.run_usage)
    unpriced_models: tuple[str, ...] = ()
    p50_ms: float | None = None
    p95_ms: float | None = None
    error: str | None = None


def run_ops(db, run_id: str, prices=None) -> RunOps:
    """A run's LLM totals (core.console.usage.run_usage) and its calls' p50/p95 latency. Never raises."""
    from core.console.usage import percentiles, run_usage
    from core.infra.models import LlmCall

    usage = run_usage(db, run_id, prices)
    if usage.get("error"):
        return RunOps(error=str(usage["error"]))
    try:
        with db.session() as s:
            latencies = s.scalars(select(LlmCall.latency_ms).where(LlmCall.run_id == run_id)).all()
    except Exception as exc:  # noqa: BLE001 - the page shows what it can
        return RunOps(error=f"{type(exc).__name__}: {exc}"[:300])
    q = percentiles(latencies, (0.5, 0.95))
    return RunOps(int(usage["calls"]), int(usage["total_tokens"]), usage["cost"],
                  tuple(usage.get("unpriced_models") or ()), q[0.5], q[0.95])
