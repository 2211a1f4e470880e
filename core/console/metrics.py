"""The console's figures in Prometheus text exposition format (version 0.0.4).

`prometheus_text(db, resources=..., telemetry=..., alerts=...)` returns the whole page; the
CLI prints it (`python -m core metrics`), and an existing Prometheus can read it through the
node_exporter textfile collector or a tiny HTTP wrapper. Every family has HELP and TYPE lines
and its samples together; label values are escaped (\\\\, \\", \\n) per the format.

Families (all prefixed `shoal_`):
  up / database_up                         gauges: the exporter answered / the database did
  runs{status}, jobs{status}, jobs_stalled gauges from the runs and jobs tables
  llm_calls_total{role,model,status}       counters from llm_calls (all time)
  llm_tokens_total{role,model,direction}   counter, direction input|output
  llm_errors_total{role,model,kind}        counter of failed calls by error kind
  llm_cost_usd_total{model}                counter; priced models only (an unpriced model has no
                                           cost series, and llm_unpriced_calls_total{model} counts it)
  llm_latency_seconds{role,model,quantile} summary: quantiles 0.5/0.95/0.99 over the newest
  llm_ttft_seconds{role,model,quantile}    `quantile_calls` calls; _sum and _count over all calls
  retries_total{policy,kind}               counter, this process since start (core.infra.retry)
  telemetry_{written,dropped}_total, telemetry_buffered       the TelemetryWriter, if given
  alerts_firing{alert,severity}, alerts_firing_count          the AlertEngine, if given
  cpu_percent, memory_percent, disk_percent, disk_free_bytes, network_{sent,recv}_bytes_per_second,
  process_resident_memory_bytes, process_threads              the ResourceSampler, if given

Never raises: a source that cannot be read is left out and named in a `# ` comment line.
"""
from __future__ import annotations

import math
import re
from typing import Any, Iterable

from sqlalchemy import case, func, select

from core.infra.models import Job, LlmCall, Run
from core.llm.pricing import PriceTable, default_table
from core.work.states import JobState, RunState

NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
PREFIX = "shoal_"


def escape_label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: Any) -> str:
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return repr(v)


class Exposition:
    """Collects metric families and renders them; a family is written only if it has samples."""

    def __init__(self):
        self._families: dict[str, dict] = {}
        self.comments: list[str] = []

    def family(self, name: str, type_: str, help_: str) -> str:
        name = PREFIX + name
        if not NAME_RE.match(name):
            raise ValueError(f"bad metric name {name!r}")
        self._families.setdefault(name, {"type": type_, "help": help_, "samples": []})
        return name

    def sample(self, family: str, value: Any, labels: dict | None = None, suffix: str = "") -> None:
        if value is None:
            return
        try:
            text = format_value(value)
        except (TypeError, ValueError):
            return
        fam = self._families[family]
        labels = {k: v for k, v in (labels or {}).items() if v is not None}
        for k in labels:
            if not LABEL_RE.match(k) or k.startswith("__"):
                raise ValueError(f"bad label name {k!r}")
        fam["samples"].append((family + suffix, labels, text))

    def render(self) -> str:
        lines = [f"# {escape_help(c)}" for c in self.comments]
        for name, fam in self._families.items():
            if not fam["samples"]:
                continue
            lines.append(f"# HELP {name} {escape_help(fam['help'])}")
            lines.append(f"# TYPE {name} {fam['type']}")
            for sample_name, labels, value in fam["samples"]:
                if labels:
                    body = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
                    lines.append(f"{sample_name}{{{body}}} {value}")
                else:
                    lines.append(f"{sample_name} {value}")
        return "\n".join(lines) + "\n"


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


def prometheus_text(db=None, *, resources=None, telemetry=None, alerts=None, prices: PriceTable | None = None,
                    quantile_calls: int = 10_000) -> str:
    ex = Exposition()
    up = ex.family("up", "gauge", "1 when the Shoal metrics exporter answered")
    ex.sample(up, 1)
    if db is not None:
        _database(ex, db, prices if prices is not None else default_table(), quantile_calls)
    _retries(ex)
    if telemetry is not None:
        _telemetry(ex, telemetry)
    if alerts is not None:
        _alerts(ex, alerts)
    if resources is not None:
        _resources(ex, resources)
    return ex.render()


def _database(ex: Exposition, db, prices: PriceTable, quantile_calls: int) -> None:
    dbup = ex.family("database_up", "gauge", "1 when the database answered this scrape")
    try:
        with db.session() as s:
            runs = s.execute(select(Run.status, func.count()).group_by(Run.status)).all()
            jobs = s.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            stalled = s.scalar(select(func.count()).select_from(Job).where(
                Job.stalled.is_(True), Job.status.in_(JobState.ACTIVE))) or 0  # an ended job keeps its flag
            calls = s.execute(select(
                LlmCall.role, LlmCall.model, LlmCall.status, func.count(),
                func.coalesce(func.sum(LlmCall.input_tokens), 0), func.coalesce(func.sum(LlmCall.output_tokens), 0),
                func.coalesce(func.sum(LlmCall.latency_ms), 0.0),
                func.coalesce(func.sum(LlmCall.ttft_ms), 0.0),
                func.coalesce(func.sum(case((LlmCall.ttft_ms.is_not(None), 1), else_=0)), 0),
            ).group_by(LlmCall.role, LlmCall.model, LlmCall.status)).all()
            errors = s.execute(select(LlmCall.role, LlmCall.model, LlmCall.error_kind, func.count())
                               .where(LlmCall.status != "ok")
                               .group_by(LlmCall.role, LlmCall.model, LlmCall.error_kind)).all()
            recent = s.execute(select(LlmCall.role, LlmCall.model, LlmCall.latency_ms, LlmCall.ttft_ms)
                               .order_by(LlmCall.id.desc()).limit(quantile_calls)).all()
    except Exception as exc:  # noqa: BLE001 - the rest of the page is still worth scraping
        ex.sample(dbup, 0)
        ex.comments.append(f"database not read: {_err(exc)}")
        return
    ex.sample(dbup, 1)
    # Every state has a series (zero when no row is in it), so a gauge never vanishes from a graph.
    for name, help_, states, rows in (("runs", "Runs by status", RunState, runs), ("jobs", "Jobs by status", JobState, jobs)):
        f = ex.family(name, "gauge", help_)
        counts = {**{str(st): 0 for st in states}, **{str(st): n for st, n in rows}}
        for status, n in sorted(counts.items()):
            ex.sample(f, n, {"status": status})
    ex.sample(ex.family("jobs_stalled", "gauge", "Running jobs flagged stalled (no heartbeat)"), stalled)

    fc = ex.family("llm_calls_total", "counter", "LLM calls by agent role, model and status")
    ft = ex.family("llm_tokens_total", "counter", "LLM tokens by agent role, model and direction")
    by_rm: dict[tuple[str, str], dict] = {}
    by_model: dict[str, list[int]] = {}
    for role, model, status, n, tin, tout, lat_sum, ttft_sum, ttft_n in calls:
        ex.sample(fc, n, {"role": role, "model": model, "status": status})
        agg = by_rm.setdefault((role, model), dict.fromkeys(("calls", "input", "output", "lat", "ttft", "ttft_n"), 0))
        agg["calls"] += int(n)
        agg["input"] += int(tin)
        agg["output"] += int(tout)
        agg["lat"] += float(lat_sum)
        agg["ttft"] += float(ttft_sum)
        agg["ttft_n"] += int(ttft_n)
        m = by_model.setdefault(model, [0, 0, 0])
        m[0] += int(tin)
        m[1] += int(tout)
        m[2] += int(n)
    for (role, model), agg in sorted(by_rm.items()):
        ex.sample(ft, agg["input"], {"role": role, "model": model, "direction": "input"})
        ex.sample(ft, agg["output"], {"role": role, "model": model, "direction": "output"})
    fe = ex.family("llm_errors_total", "counter", "Failed LLM calls by agent role, model and error kind")
    for role, model, kind, n in sorted(errors, key=lambda r: tuple(str(x) for x in r[:3])):
        ex.sample(fe, n, {"role": role, "model": model, "kind": kind or "unknown"})
    fcost = ex.family("llm_cost_usd_total", "counter", "LLM cost in USD by model (priced models only)")
    funp = ex.family("llm_unpriced_calls_total", "counter", "LLM calls whose model has no price (cost unknown)")
    for model, (tin, tout, n) in sorted(by_model.items()):
        cost = prices.cost(model, tin, tout)
        if cost is None:
            ex.sample(funp, n, {"model": model})
        else:
            ex.sample(fcost, cost, {"model": model})
    _summaries(ex, by_rm, recent)


def _summaries(ex: Exposition, by_rm: dict, recent: Iterable) -> None:
    from core.console.usage import QUANTILES, percentiles

    lat_recent: dict[tuple[str, str], list[float]] = {}
    ttft_recent: dict[tuple[str, str], list[float]] = {}
    for role, model, lat, ttft in recent:
        if lat is not None:
            lat_recent.setdefault((role, model), []).append(float(lat))
        if ttft is not None:
            ttft_recent.setdefault((role, model), []).append(float(ttft))
    fl = ex.family("llm_latency_seconds", "summary",
                   "LLM call latency; quantiles over the newest calls, sum and count over all calls")
    ff = ex.family("llm_ttft_seconds", "summary",
                   "LLM time to first token (streamed calls); quantiles over the newest calls")
    for (role, model), agg in sorted(by_rm.items()):
        labels = {"role": role, "model": model}
        for q, v in percentiles(lat_recent.get((role, model), []), QUANTILES).items():
            ex.sample(fl, None if v is None else v / 1000, {**labels, "quantile": str(q)})
        ex.sample(fl, agg["lat"] / 1000, labels, "_sum")
        ex.sample(fl, agg["calls"], labels, "_count")
        if agg["ttft_n"]:
            for q, v in percentiles(ttft_recent.get((role, model), []), QUANTILES).items():
                ex.sample(ff, None if v is None else v / 1000, {**labels, "quantile": str(q)})
            ex.sample(ff, agg["ttft"] / 1000, labels, "_sum")
            ex.sample(ff, agg["ttft_n"], labels, "_count")


def _retries(ex: Exposition) -> None:
    try:
        from core.infra.retry import retry_counts
        counts = retry_counts()
    except Exception as exc:  # noqa: BLE001
        ex.comments.append(f"retry counters not read: {_err(exc)}")
        return
    f = ex.family("retries_total", "counter", "Retries in this process since start, by policy and error kind")
    for (policy, kind), n in sorted(counts.items()):
        ex.sample(f, n, {"policy": policy, "kind": kind})


def _telemetry(ex: Exposition, telemetry) -> None:
    try:
        st = telemetry.stats()
    except Exception as exc:  # noqa: BLE001
        ex.comments.append(f"telemetry not read: {_err(exc)}")
        return
    ex.sample(ex.family("telemetry_written_total", "counter", "Telemetry events written to the database"),
              st.written)
    ex.sample(ex.family("telemetry_dropped_total", "counter",
                        "Telemetry events dropped (buffer full while the database was down, rejected, or after close)"),
              st.dropped)
    ex.sample(ex.family("telemetry_buffered", "gauge", "Telemetry events waiting to be written"), st.buffered)


def _alerts(ex: Exposition, alerts) -> None:
    try:
        firing = alerts.firing()
    except Exception as exc:  # noqa: BLE001
        ex.comments.append(f"alerts not read: {_err(exc)}")
        return
    f = ex.family("alerts_firing", "gauge", "1 for each alert firing now")
    for a in firing:
        ex.sample(f, 1, {"alert": a.rule, "severity": a.severity})
    ex.sample(ex.family("alerts_firing_count", "gauge", "Number of alerts firing now"), len(firing))


_RESOURCE_GAUGES = (
    ("cpu_percent", "cpu_percent", "System CPU use, percent"),
    ("memory_percent", "memory_percent", "System memory in use, percent"),
    ("disk_percent", "disk_percent", "Use of the data disk, percent"),
    ("disk_free_bytes", "disk_free_bytes", "Free bytes on the data disk"),
    ("net_sent_bps", "network_sent_bytes_per_second", "Network bytes sent per second"),
    ("net_recv_bps", "network_recv_bytes_per_second", "Network bytes received per second"),
    ("process_rss_bytes", "process_resident_memory_bytes", "Resident memory of the Shoal process"),
    ("process_threads", "process_threads", "Threads of the Shoal process"),
)


def _resources(ex: Exposition, resources) -> None:
    try:
        latest = resources.latest() or {}
    except Exception as exc:  # noqa: BLE001
        ex.comments.append(f"resources not read: {_err(exc)}")
        return
    for key, name, help_ in _RESOURCE_GAUGES:
        ex.sample(ex.family(name, "gauge", help_), latest.get(key))
