"""The console's figures for Prometheus, built with prometheus_client.

Two kinds of figures go into one registry (`build_registry`):

- `ShoalCollector`, a custom collector read at each scrape: the database-backed figures (runs and
  jobs by state, LLM calls, tokens, errors, retries and cost by role and model), and what this
  process holds (retries by policy, telemetry written/dropped, alerts firing, resource gauges).
- in-process instruments: the LLM latency and time-to-first-token histograms the LLM client observes
  (core.llm.instruments), and prometheus_client's process collector (process_cpu_seconds_total, …).

`prometheus_text(...)` renders it once with `generate_latest` (`python -m core metrics`);
core.console.metrics_server serves it over HTTP (`worker --metrics-port N`, SHOAL_METRICS_PORT).

Every family is always present: a labelled family has a series at zero for each known label value
(every run/job state, every LLM role with its configured model, or model "offline" for a role that
has never called one, every retry policy and kind, every alert rule). A scrape never fails: a source
that cannot be read sets `shoal_scrape_error{source}` to 1 (and `shoal_database_up` to 0 for the
database), and its families are sent without samples rather than with made-up zeros.

Families (all prefixed `shoal_`):
  up, database_up, scrape_error{source}      the exporter answered / the database did / a source failed
  runs{status}, jobs{status}, jobs_stalled   gauges from the runs and jobs tables
  llm_calls_total{role,model,status}         counters from llm_calls (all time, every process)
  llm_tokens_total{role,model,direction}     direction input|output
  llm_errors_total{role,model,kind}          failed calls by error kind
  llm_retries_total{role,model}              retries inside recorded LLM calls
  llm_cost_usd_total{model}                  priced models only (an unpriced model has no cost series;
  llm_unpriced_calls_total{model}            this counts its calls instead)
  llm_latency_seconds{role,model}            histogram, this process (core.llm.instruments)
  llm_ttft_seconds{role,model}               histogram, this process, streamed calls
  retries_total{policy,kind}                 every retry in this process (core.infra.retry)
  telemetry_{written,dropped}_total, telemetry_buffered   this process's TelemetryWriter
  alerts_firing{alert,severity}, alerts_firing_rules      this process's AlertEngine
  opinion_share{run,engine,sentiment}       what the newest runs find (core.console.opinion): the
  opinion_sources{run,engine,kind}           sentiment mix and sources (retrieved|scored) and the
  platform_share{run,engine,platform}        platform mix (top few + "other") per engine, last K runs
  cpu_percent (over the sampler's interval), memory_percent, disk_percent, disk_free_bytes,
  network_{sent,recv}_bytes_per_second, process_resident_memory_bytes, process_threads
"""
from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator

from loguru import logger
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import case, func, select

from core.infra.config import LLM_ROLES
from core.infra.models import Job, LlmCall, Run
from core.llm import instruments
from core.llm.pricing import PriceTable, default_table
from core.work.states import JobState, RunState

PREFIX = "shoal_"
OFFLINE_MODEL = "offline"  # the model label of a role that has never called a model (offline analyst)
STATUSES = ("ok", "error")
# The LLM client's error kinds (core.llm.errors.LlmError.kind).
ERROR_KINDS = ("timeout", "connection", "rate_limit", "server_error", "auth", "bad_request", "parse", "config",
               "error")
SOURCES = ("database", "retries", "telemetry", "alerts", "resources", "opinion")

_RESOURCE_GAUGES = (
    ("cpu_percent", "cpu_percent", "System CPU use over the sampler's last interval, percent"),
    ("memory_percent", "memory_percent", "System memory in use, percent"),
    ("disk_percent", "disk_percent", "Use of the data disk, percent"),
    ("disk_free_bytes", "disk_free_bytes", "Free bytes on the data disk"),
    ("net_sent_bps", "network_sent_bytes_per_second", "Network bytes sent per second"),
    ("net_recv_bps", "network_recv_bytes_per_second", "Network bytes received per second"),
    ("process_rss_bytes", "process_resident_memory_bytes", "Resident memory of the Shoal process"),
    ("process_threads", "process_threads", "Threads of the Shoal process"),
)


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


def known_pairs(settings) -> list[tuple[str, str]]:
    """(role, model) for every LLM role: its configured model, or OFFLINE_MODEL (offline mode included)."""
    pairs = []
    for role in LLM_ROLES:
        model = ""
        try:
            if settings is not None and settings.llm_configured(role):
                model = str(settings.llm_role(role)["model"])
        except Exception:  # noqa: BLE001 - settings are only a hint here
            model = ""
        pairs.append((role, model[:128] or OFFLINE_MODEL))
    return pairs


def _gauge(name: str, help_: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, help_, labels=list(labels))


def _counter(name: str, help_: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, help_, labels=list(labels))


class ShoalCollector(Collector):
    """Reads its source at each scrape. `source` has (any of) `db`, `resources`, `telemetry`,
    `alerts`, `prices`, `settings` (a core.runtime.Runtime does); `set_source` swaps it (a rebuilt
    runtime), None leaves only the process's own figures."""

    def __init__(self, source: Any = None):
        self._source = source
        self._lock = threading.Lock()
        self.last_errors: dict[str, str] = {}

    def set_source(self, source: Any) -> None:
        with self._lock:
            self._source = source

    @property
    def source(self) -> Any:
        with self._lock:
            return self._source

    def collect(self) -> Iterator[Metric]:
        src = self.source
        get = (lambda name: getattr(src, name, None)) if src is not None else (lambda name: None)
        errors: dict[str, str] = {}
        up = _gauge("up", "1 when the Shoal metrics exporter answered")
        up.add_metric([], 1)
        yield up
        db = get("db")
        if db is not None and not getattr(db, "ok", True):
            errors["database"] = str(getattr(db, "error", "") or "database unavailable")[:200]
            db = None
        prices = get("prices")
        prices = default_table() if prices is None else prices
        yield from self._guard(errors, "database", lambda: _database(db, prices, known_pairs(get("settings")),
                                                                     errors), _database_down)
        yield from self._guard(errors, "retries", _retries, lambda: [_retry_family()])
        yield from self._guard(errors, "telemetry", lambda: _telemetry(get("telemetry")), _telemetry_families)
        yield from self._guard(errors, "alerts", lambda: _alerts(get("alerts")), _alert_families)
        yield from self._guard(errors, "resources", lambda: _resources(get("resources")), _resource_families)
        yield from self._guard(errors, "opinion", lambda: _opinion(db), _opinion_families)
        fail = _gauge("scrape_error", "1 when a source could not be read at this scrape (its families have "
                      "no samples)", ["source"])
        for name in SOURCES:
            fail.add_metric([name], 1 if name in errors else 0)
        yield fail
        if errors and errors != self.last_errors:  # once per change, not at every scrape
            logger.warning("metrics: not read at this scrape: {}", "; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.last_errors = errors

    @staticmethod
    def _guard(errors: dict, name: str, build: Callable[[], list[Metric]],
               empty: Callable[[], list[Metric]]) -> list[Metric]:
        """A source's families; on any error, the same families without samples (the scrape goes on)."""
        try:
            return build()
        except Exception as exc:  # noqa: BLE001 - one source failing never breaks the scrape
            errors[name] = _err(exc)
            return empty()


# ------------------------------------------------------------------------------------------ database

def _database_families() -> list[Metric]:
    """The database's families, no samples; [0] is database_up (set by the caller)."""
    return [
        _gauge("database_up", "1 when the database answered this scrape"),
        _gauge("runs", "Runs by status", ["status"]),
        _gauge("jobs", "Jobs by status", ["status"]),
        _gauge("jobs_stalled", "Active jobs flagged stalled (no heartbeat)"),
        _counter("llm_calls", "LLM calls by agent role, model and status (all processes, all time)",
                 ["role", "model", "status"]),
        _counter("llm_tokens", "LLM tokens by agent role, model and direction", ["role", "model", "direction"]),
        _counter("llm_errors", "Failed LLM calls by agent role, model and error kind", ["role", "model", "kind"]),
        _counter("llm_retries", "Retries inside recorded LLM calls, by agent role and model", ["role", "model"]),
        _counter("llm_cost_usd", "LLM cost in USD by model (priced models only)", ["model"]),
        _counter("llm_unpriced_calls", "LLM calls whose model has no price (cost unknown)", ["model"]),
    ]


def _database_down() -> list[Metric]:
    fams = _database_families()
    fams[0].add_metric([], 0)
    return fams


def _database(db, prices: PriceTable, seeds: list[tuple[str, str]], errors: dict) -> list[Metric]:
    fams = _database_families()
    dbup, runs_f, jobs_f, stalled_f, calls_f, tokens_f, errors_f, retries_f, cost_f, unpriced_f = fams
    if db is None:
        errors.setdefault("database", "no database")
        return _database_down()
    try:
        with db.session() as s:
            runs = s.execute(select(Run.status, func.count()).group_by(Run.status)).all()
            jobs = s.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            stalled = s.scalar(select(func.count()).select_from(Job).where(
                Job.stalled.is_(True), Job.status.in_(JobState.ACTIVE))) or 0  # an ended job keeps its flag
            calls = s.execute(select(
                LlmCall.role, LlmCall.model, LlmCall.status, func.count(),
                func.coalesce(func.sum(LlmCall.input_tokens), 0), func.coalesce(func.sum(LlmCall.output_tokens), 0),
                func.coalesce(func.sum(LlmCall.retries), 0), func.coalesce(func.sum(LlmCall.cached_input_tokens), 0),
            ).group_by(LlmCall.role, LlmCall.model, LlmCall.status)).all()
            failed = s.execute(select(LlmCall.role, LlmCall.model, LlmCall.error_kind, func.count())
                               .where(LlmCall.status != "ok")
                               .group_by(LlmCall.role, LlmCall.model, LlmCall.error_kind)).all()
    except Exception as exc:  # noqa: BLE001 - the rest of the page is still worth scraping
        errors["database"] = _err(exc)
        return _database_down()
    dbup.add_metric([], 1)
    # Every state has a series (zero when no row is in it), so a gauge never vanishes from a graph.
    for fam, states, rows in ((runs_f, RunState, runs), (jobs_f, JobState, jobs)):
        counts = {**{str(st): 0 for st in states}, **{str(st): int(n) for st, n in rows}}
        for status, n in sorted(counts.items()):
            fam.add_metric([status], n)
    stalled_f.add_metric([], int(stalled))

    seen_roles = {str(role) for role, *_ in calls}
    pairs = {(str(role), str(model)) for role, model, *_ in calls}
    pairs |= {(role, model) for role, model in seeds if model != OFFLINE_MODEL or role not in seen_roles}
    zero = dict.fromkeys(("input", "output", "retries", "cached"), 0)
    by_pair = {p: {**zero, **dict.fromkeys(STATUSES, 0)} for p in pairs}
    for role, model, status, n, tin, tout, retries, cached in calls:
        agg = by_pair[(str(role), str(model))]
        agg[str(status)] = agg.get(str(status), 0) + int(n)
        agg["input"] += int(tin)
        agg["output"] += int(tout)
        agg["retries"] += int(retries)
        agg["cached"] += int(cached)
    kinds = {p: dict.fromkeys(ERROR_KINDS, 0) for p in pairs}
    for role, model, kind, n in failed:
        # (setdefault: MySQL's case-insensitive grouping may name a pair differently in the two queries)
        k = kinds.setdefault((str(role), str(model)), dict.fromkeys(ERROR_KINDS, 0))
        k[kind or "error"] = k.get(kind or "error", 0) + int(n)
    by_model: dict[str, list[int]] = {}
    for (role, model), agg in sorted(by_pair.items()):
        for status in sorted(k for k in agg if k not in zero):
            calls_f.add_metric([role, model, status], agg[status])
        tokens_f.add_metric([role, model, "input"], agg["input"])
        tokens_f.add_metric([role, model, "output"], agg["output"])
        retries_f.add_metric([role, model], agg["retries"])
        m = by_model.setdefault(model, [0, 0, 0, 0])
        m[0] += agg["input"]
        m[1] += agg["output"]
        m[2] += sum(agg[k] for k in agg if k not in zero)
        m[3] += agg["cached"]
    for (role, model), by_kind in sorted(kinds.items()):
        for kind, n in sorted(by_kind.items()):
            errors_f.add_metric([role, model, kind], n)
    for model, (tin, tout, n, cached) in sorted(by_model.items()):
        if model == OFFLINE_MODEL:
            continue  # the offline analyst costs nothing and is no model to price
        cost = prices.cost(model, tin, tout, cached)  # list prices (at=None): a counter that never goes down
        if cost is None:
            unpriced_f.add_metric([model], n)
        else:
            cost_f.add_metric([model], cost)
    return fams


# ------------------------------------------------------------------------------ this process's state

def _retry_family() -> CounterMetricFamily:
    return _counter("retries", "Retries in this process since start, by policy and error kind", ["policy", "kind"])


def _retries() -> list[Metric]:
    from core.infra import retry

    counts = {(p.name, k): 0 for p in (retry.LLM, retry.SEARCH, retry.DATABASE) for k in p.kinds}
    counts.update(retry.retry_counts())
    f = _retry_family()
    for (policy, kind), n in sorted(counts.items()):
        f.add_metric([policy, kind], n)
    return [f]


def _telemetry_families() -> list[Metric]:
    return [_counter("telemetry_written", "Telemetry events written to the database by this process"),
            _counter("telemetry_dropped", "Telemetry events dropped (buffer full while the database was down, "
                     "rejected, or after close)"),
            _gauge("telemetry_buffered", "Telemetry events waiting to be written")]


def _telemetry(telemetry) -> list[Metric]:
    fams = _telemetry_families()
    # No writer in this process: nothing was written or dropped by it.
    st = telemetry.stats() if telemetry is not None else SimpleNamespace(written=0, dropped=0, buffered=0)
    for fam, value in zip(fams, (st.written, st.dropped, st.buffered)):
        fam.add_metric([], value)
    return fams


def _alert_families() -> list[Metric]:
    return [_gauge("alerts_firing", "1 for each alert firing now, 0 for each rule not firing",
                   ["alert", "severity"]),
            _gauge("alerts_firing_rules", "Number of alerts firing now")]


def _alerts(alerts) -> list[Metric]:
    fams = _alert_families()
    if alerts is None:  # this process evaluates no rules (a worker, the metrics command): none fire here
        fams[1].add_metric([], 0)
        return fams
    firing = alerts.firing()
    names = {a.rule for a in firing}
    series = {(r.name, r.severity): 0 for r in alerts.rules if r.enabled}
    series.update({(a.rule, a.severity): 1 for a in firing})
    for (name, severity), v in sorted(series.items()):
        fams[0].add_metric([name, severity], v)
    fams[1].add_metric([], len(names))
    return fams


def _resource_families() -> list[Metric]:
    return [_gauge(name, help_) for _, name, help_ in _RESOURCE_GAUGES]


def _resources(resources) -> list[Metric]:
    fams = _resource_families()
    latest = (resources.latest() or {}) if resources is not None else {}
    for fam, (key, _, _) in zip(fams, _RESOURCE_GAUGES):
        value = latest.get(key)
        if value is not None:  # not measured yet: no sample rather than a false 0
            fam.add_metric([], float(value))
    return fams


# ------------------------------------------------------------------------------------------ opinion

def _opinion_families() -> list[Metric]:
    return [_gauge("opinion_share", "Share of each sentiment among the scored sources an engine has retrieved so "
                   "far, per run (the newest runs only)", ["run", "engine", "sentiment"]),
            _gauge("opinion_sources", "Sources an engine has retrieved so far, and of them scored",
                   ["run", "engine", "kind"]),
            _gauge("platform_share", "Share of each platform among the sources an engine has retrieved so far "
                   "(the top few; the rest as 'other')", ["run", "engine", "platform"])]


def _opinion(db) -> list[Metric]:
    """The newest opinion.RECENT_RUNS analysis runs' latest point per engine (core.console.opinion):
    at most RECENT_RUNS x engines x (3 sentiments + TOP_PLATFORMS + 1) series. No database: the
    families without samples (the database's own error says why)."""
    from core.console import opinion

    fams = _opinion_families()
    if db is None:
        return fams
    shares, sources, platforms = fams
    for run in opinion.recent_opinions(db, opinion.RECENT_RUNS):
        for e in run.engines:
            p = e.latest
            if p is None:
                continue
            sources.add_metric([run.run_id, e.engine, "retrieved"], p.sources)
            sources.add_metric([run.run_id, e.engine, "scored"], p.scored)
            if p.scored:  # no share of nothing: no sample rather than a made-up 0
                for sentiment in opinion.SENTIMENTS:
                    shares.add_metric([run.run_id, e.engine, sentiment], p.share(sentiment))
            for platform, share in opinion.fold_platforms(p.platforms):
                platforms.add_metric([run.run_id, e.engine, platform], share)
    return fams


# ------------------------------------------------------------------------------------------ registry

def build_registry(collector: ShoalCollector, *, histograms: Iterable[Collector] | None = None,
                   process: bool = True, seeds: Iterable[tuple[str, str]] = ()) -> CollectorRegistry:
    """A registry with the collector, the LLM histograms (default: this process's, seeded at zero for
    `seeds`), and prometheus_client's process collector (process_cpu_seconds_total, …) when `process`."""
    if histograms is None:
        instruments.seed(seeds)
        histograms = (instruments.LATENCY, instruments.TTFT)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    for h in histograms:
        registry.register(h)
    if process:
        ProcessCollector(registry=registry)
    return registry


class RecordedHistograms(Collector):
    """The LLM histograms computed from the llm_calls table (bucket counts summed in SQL): what
    `python -m core metrics`, a process that made no call, shows. Same names, labels and buckets as
    core.llm.instruments; a database that cannot be read gives the families without samples."""

    def __init__(self, db, seeds: Iterable[tuple[str, str]] = ()):
        self.db = db
        self.seeds = list(seeds)

    def collect(self) -> Iterator[Metric]:
        fams = []
        for column, name, help_, bounds in (
                (LlmCall.latency_ms, "shoal_llm_latency_seconds", "LLM call latency, all recorded calls",
                 instruments.LATENCY_BUCKETS),
                (LlmCall.ttft_ms, "shoal_llm_ttft_seconds", "LLM time to first token, all recorded calls",
                 instruments.TTFT_BUCKETS)):
            fam = HistogramMetricFamily(name, help_, labels=list(instruments.LABELS))
            fams.append(fam)
            try:
                rows = self._read(column, bounds)
            except Exception:  # noqa: BLE001 - the collector reports the database's state
                continue
            for pair in self.seeds:
                rows.setdefault(pair, (0, 0.0, [0] * len(bounds)))
            for (role, model), (count, total, cumulative) in sorted(rows.items()):
                buckets = [(floatToGoString(b), n) for b, n in zip(bounds, cumulative)] + [("+Inf", count)]
                fam.add_metric([role, model], buckets, total / 1000)
        yield from fams

    def _read(self, column, bounds) -> dict[tuple[str, str], tuple[int, float, list[int]]]:
        if self.db is None or not getattr(self.db, "ok", True):
            raise RuntimeError("no database")
        cols = [func.count(column), func.coalesce(func.sum(column), 0.0)]
        cols += [func.coalesce(func.sum(case((column <= b * 1000, 1), else_=0)), 0) for b in bounds]
        with self.db.session() as s:
            rows = s.execute(select(LlmCall.role, LlmCall.model, *cols).group_by(LlmCall.role, LlmCall.model)).all()
        return {(str(r[0]), str(r[1])): (int(r[2]), float(r[3]), [int(n) for n in r[4:]]) for r in rows}


def histograms_from_database(db, settings=None) -> list[Collector]:
    """The `histograms` argument of prometheus_text/build_registry for a process that made no call."""
    return [RecordedHistograms(db, known_pairs(settings))]


def prometheus_text(db=None, *, resources=None, telemetry=None, alerts=None, prices: PriceTable | None = None,
                    settings=None, histograms: Iterable[Collector] | None = None,
                    process: bool = True) -> str:
    """The whole exposition once, rendered by prometheus_client's generate_latest."""
    source = SimpleNamespace(db=db, resources=resources, telemetry=telemetry, alerts=alerts, prices=prices,
                             settings=settings)
    registry = build_registry(ShoalCollector(source), histograms=histograms, process=process,
                              seeds=known_pairs(settings))
    return generate_latest(registry).decode("utf-8")
