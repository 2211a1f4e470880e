"""Alert rules with thresholds and durations, evaluated on a dict of current metrics.

A rule holds when `metrics[rule.metric] <op> rule.threshold`. It FIRES once it has held
continuously for `for_seconds` (at exactly that many seconds, `>=`), and CLEARS at the first
evaluation where it does not hold. A metric that is missing or None does not hold (no data is
no alarm: an error rate over too few calls is None). Each firing and clearing is an
AlertChange, kept in a bounded history and written as an `alert.firing` / `alert.cleared`
event when an EventLog is given (a failing event log never breaks evaluation).

Metric names produced by `collect_metrics` (the defaults use them):
  cpu_percent, memory_percent, disk_percent, process_rss_bytes, process_threads   (ResourceSampler)
  llm_calls, llm_error_rate_pct, llm_p95_latency_ms    (LLM calls of the last window; the error
                                                        rate and p95 are None below min_calls)
  stalled_jobs                                         (running jobs flagged stalled)
  runs_degraded, runs_failed                           (runs that ended completed_degraded or report_failed,
                                                        and failed, in the last window)
  telemetry_dropped, telemetry_buffered                (TelemetryWriter)
  opinion_negative_share_pct, opinion_negative_run     (the highest negative share, in %, of the sources
                                                        of a recent run open or ended in the window, and
                                                        that run: core.console.opinion; None below
                                                        opinion.MIN_SCORED scored sources)

Defaults (DESIGN §9): CPU > 85 % for 5 min, memory > 90 % (for 1 min, so one spike does not
page), LLM error rate > 5 % over 5 min, LLM p95 latency > 60 s over 5 min, any stalled job, and any
run that ended degraded or with a failed report in the last window (a rejected key, a dead search API),
and a recent run whose sources are more than SHOAL_OPINION_NEGATIVE_PCT % negative (default 60; 0
turns the rule off: `default_rules(settings)` applies the setting).
Rules are editable: `load_rules` / `save_rules` (JSON), `rules_from_data` reports every
malformed rule as a problem and skips it.
"""
from __future__ import annotations

import json
import math
import operator
import threading
from collections import deque
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from loguru import logger
from sqlalchemy import func, select

from core.infra.models import Job, LlmCall, Run
from core.work.states import JobState, RunState

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
SEVERITIES = ("info", "warning", "critical")
FIRING, CLEARED = "firing", "cleared"


@dataclass(frozen=True)
class AlertRule:
    name: str
    metric: str
    op: str
    threshold: float
    for_seconds: float = 0.0
    severity: str = "warning"
    description: str = ""
    enabled: bool = True

    def holds(self, value: Any) -> bool:
        if value is None:
            return False
        try:
            v = float(value)
        except (TypeError, ValueError):
            return False
        return not math.isnan(v) and OPS[self.op](v, self.threshold)

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("cpu_high", "cpu_percent", ">", 85, 300, "warning", "CPU above 85 % for 5 minutes"),
    AlertRule("memory_high", "memory_percent", ">", 90, 60, "critical", "memory above 90 %"),
    AlertRule("llm_error_rate_high", "llm_error_rate_pct", ">", 5, 0, "warning",
              "more than 5 % of LLM calls failed in the last window"),
    AlertRule("llm_p95_latency_high", "llm_p95_latency_ms", ">", 60_000, 0, "warning",
              "LLM p95 latency above 60 s in the last window"),
    AlertRule("job_stalled", "stalled_jobs", ">", 0, 0, "critical", "a running job stopped sending heartbeats"),
    AlertRule("run_degraded", "runs_degraded", ">", 0, 0, "warning",
              "a run ended completed_degraded or report_failed in the last window (see the run for why)"),
    AlertRule("opinion_negative_high", "opinion_negative_share_pct", ">", 60, 0, "warning",
              "a recent run's sources are mostly negative (above SHOAL_OPINION_NEGATIVE_PCT; see the run's opinion "
              "on Monitor › Runs)"),
)
OPINION_RULE = "opinion_negative_high"


def default_rules(settings=None) -> list[AlertRule]:
    """The default rules, the opinion rule's threshold from SHOAL_OPINION_NEGATIVE_PCT (0: disabled)."""
    from dataclasses import replace

    pct = None
    try:
        pct = float(settings["SHOAL_OPINION_NEGATIVE_PCT"]) if settings is not None else None
    except (KeyError, TypeError, ValueError):
        pct = None
    if pct is None:
        return list(DEFAULT_RULES)
    return [replace(r, threshold=pct if pct > 0 else r.threshold, enabled=pct > 0) if r.name == OPINION_RULE else r
            for r in DEFAULT_RULES]


@dataclass(frozen=True)
class AlertChange:
    rule: str
    state: str  # firing | cleared
    at: float  # epoch seconds
    value: Any
    threshold: float
    op: str
    metric: str
    severity: str
    since: float  # when the condition started holding (firing) or when it fired (cleared)
    message: str  # the log line (English); a page words it from the fields (ui/monitor/alerts.change_message)
    reason: str = ""  # why a cleared alert cleared other than by its condition: "rule disabled", "rule removed or changed"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["time"] = datetime.fromtimestamp(self.at, timezone.utc).replace(tzinfo=None).isoformat()
        return d


@dataclass
class _State:
    pending_since: float | None = None
    firing: bool = False
    fired_at: float | None = None
    value: Any = None


@dataclass(frozen=True)
class ActiveAlert:
    rule: str
    metric: str
    severity: str
    since: float
    value: Any
    threshold: float
    op: str
    description: str


def _epoch(now: float | datetime | None) -> float:
    if now is None:
        return datetime.now(timezone.utc).timestamp()
    if isinstance(now, datetime):
        return (now if now.tzinfo else now.replace(tzinfo=timezone.utc)).timestamp()
    return float(now)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


class AlertEngine:
    def __init__(self, rules: list[AlertRule] | tuple[AlertRule, ...] | None = None, *, events=None,
                 history: int = 500):
        self._lock = threading.Lock()
        self._rules: list[AlertRule] = list(DEFAULT_RULES if rules is None else rules)
        self._state: dict[str, _State] = {}
        self._history: deque[AlertChange] = deque(maxlen=max(1, history))
        self.events = events
        self.last_evaluated: float | None = None
        self.last_metrics: dict = {}

    @property
    def rules(self) -> list[AlertRule]:
        with self._lock:
            return list(self._rules)

    def set_rules(self, rules: list[AlertRule], now: float | datetime | None = None) -> list[AlertChange]:
        """Replace the rules. A rule kept by name keeps its state unless its definition changed;
        an alert firing for a removed or changed rule is cleared (and returned)."""
        at = _epoch(now)
        changes = []
        with self._lock:
            old = {r.name: r for r in self._rules}
            new = {r.name: r for r in rules}
            for name, rule in old.items():
                if new.get(name) != rule:
                    st = self._state.pop(name, None)
                    if st is not None and st.firing:
                        changes.append(self._change(rule, CLEARED, at, st.value, st.fired_at or at,
                                                    "rule removed or changed"))
            self._rules = list(rules)
        self._publish(changes)
        return changes

    def evaluate(self, now: float | datetime | None, metrics: dict) -> list[AlertChange]:
        """Advance every enabled rule to `now` (epoch seconds or a naive-UTC/aware datetime)."""
        at = _epoch(now)
        changes: list[AlertChange] = []
        with self._lock:
            self.last_evaluated, self.last_metrics = at, dict(metrics)
            for rule in self._rules:
                try:  # each rule on its own: one that breaks leaves the others evaluated
                    change = self._advance(rule, at, metrics.get(rule.metric))
                except Exception as exc:  # noqa: BLE001
                    logger.warning("alert rule {} could not be evaluated: {}", rule.name,
                                   f"{type(exc).__name__}: {exc}"[:300])
                    continue
                if change is not None:
                    changes.append(change)
        self._publish(changes)
        return changes

    def _advance(self, rule: AlertRule, at: float, value: Any) -> AlertChange | None:
        st = self._state.setdefault(rule.name, _State())
        st.value = value
        if rule.enabled and rule.holds(value):
            if st.pending_since is None:
                st.pending_since = at
            if not st.firing and at - st.pending_since >= rule.for_seconds:
                st.firing, st.fired_at = True, at
                return self._change(rule, FIRING, at, value, st.pending_since, "")
            return None
        st.pending_since = None
        if st.firing:
            st.firing = False
            reason = "rule disabled" if not rule.enabled else ""
            change = self._change(rule, CLEARED, at, value, st.fired_at or at, reason)
            st.fired_at = None
            return change
        return None

    def _change(self, rule: AlertRule, state: str, at: float, value: Any, since: float, reason: str) -> AlertChange:
        cond = f"{rule.metric} {rule.op} {_fmt(rule.threshold)}"
        if state == FIRING:
            held = f" for {at - since:.0f} s" if rule.for_seconds else ""
            msg = f"{rule.name}: {cond}{held} (now {_fmt(value)})"
        else:
            msg = f"{rule.name} cleared: {reason or f'{cond} no longer holds (now {_fmt(value)})'}"
        change = AlertChange(rule.name, state, at, value, rule.threshold, rule.op, rule.metric, rule.severity, since,
                             msg, reason)
        self._history.append(change)
        return change

    def _publish(self, changes: list[AlertChange]) -> None:
        for c in changes:
            (logger.warning if c.state == FIRING else logger.info)("alert {}", c.message)
            if self.events is None:
                continue
            try:
                payload = c.as_dict()
                if isinstance(payload.get("value"), float) and not math.isfinite(payload["value"]):
                    payload["value"] = repr(payload["value"])
                self.events.emit(f"alert.{c.state}", source="alerts", payload=payload)
            except Exception as exc:  # noqa: BLE001 - the event log may be the thing that is down
                logger.warning("alert event not recorded: {}", f"{type(exc).__name__}: {exc}"[:300])

    def firing(self) -> list[ActiveAlert]:
        """Alerts firing now, most severe first."""
        with self._lock:
            rules = {r.name: r for r in self._rules}
            out = [ActiveAlert(name, rules[name].metric, rules[name].severity, st.fired_at or 0.0, st.value,
                               rules[name].threshold, rules[name].op, rules[name].description)
                   for name, st in self._state.items() if st.firing and name in rules]
        rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
        return sorted(out, key=lambda a: (rank.get(a.severity, 99), a.since))

    def pending(self) -> dict[str, float]:
        """Rules whose condition holds but not yet for long enough: name -> since."""
        with self._lock:
            return {n: st.pending_since for n, st in self._state.items()
                    if st.pending_since is not None and not st.firing}

    def history(self) -> list[AlertChange]:
        """Firing and clearing, oldest first (bounded)."""
        with self._lock:
            return list(self._history)

    def tick(self, db=None, *, resources=None, telemetry=None, now: float | datetime | None = None,
             window_seconds: float = 300, min_calls: int = 10) -> list[AlertChange]:
        """collect_metrics + evaluate, for a periodic caller (the console's monitor thread or a page refresh)."""
        at = _epoch(now)
        return self.evaluate(at, collect_metrics(db, resources=resources, telemetry=telemetry, now=at,
                                                 window_seconds=window_seconds, min_calls=min_calls))


# ---------------------------------------------------------------------------------------------
# Metrics

def collect_metrics(db=None, *, resources=None, telemetry=None, now: float | datetime | None = None,
                    window_seconds: float = 300, min_calls: int = 10) -> dict:
    """The metrics the rules read. Each source is optional; what cannot be read is absent or None
    and `metrics["problems"]` lists why. Never raises."""
    at = _epoch(now)
    m: dict[str, Any] = {"problems": []}
    if resources is not None:
        try:
            latest = resources.latest() or {}
            for key in ("cpu_percent", "memory_percent", "disk_percent", "disk_free_bytes", "process_rss_bytes",
                        "process_threads"):
                m[key] = latest.get(key)
        except Exception as exc:  # noqa: BLE001
            m["problems"].append(f"resources: {exc}")
    if telemetry is not None:
        try:
            st = telemetry.stats()
            m["telemetry_dropped"], m["telemetry_buffered"] = st.dropped, st.buffered
        except Exception as exc:  # noqa: BLE001
            m["problems"].append(f"telemetry: {exc}")
    if db is not None:
        m.update(llm_window_metrics(db, now=at, window_seconds=window_seconds, min_calls=min_calls,
                                    problems=m["problems"]))
        try:
            with db.session() as s:
                m["stalled_jobs"] = int(s.scalar(select(func.count()).select_from(Job).where(
                    Job.stalled.is_(True), Job.status.in_(JobState.ACTIVE))) or 0)  # an ended job keeps its flag
        except Exception as exc:  # noqa: BLE001
            m["stalled_jobs"] = None
            m["problems"].append(f"jobs: {type(exc).__name__}")
        m.update(run_window_metrics(db, now=at, window_seconds=window_seconds, problems=m["problems"]))
        m.update(opinion_window_metrics(db, now=at, window_seconds=window_seconds, problems=m["problems"]))
    return m


def opinion_window_metrics(db, *, now: float | datetime | None = None, window_seconds: float = 300,
                           problems: list | None = None) -> dict:
    """The highest negative share (%) among the recent runs open or ended in the window, and its run."""
    from core.console.opinion import negative_share

    try:
        share, run_id = negative_share(db, now=_epoch(now), window_seconds=window_seconds)
    except Exception as exc:  # noqa: BLE001
        if problems is not None:
            problems.append(f"opinion: {type(exc).__name__}")
        return {"opinion_negative_share_pct": None, "opinion_negative_run": None}
    return {"opinion_negative_share_pct": None if share is None else round(share, 3), "opinion_negative_run": run_id}


def run_window_metrics(db, *, now: float | datetime | None = None, window_seconds: float = 300,
                       problems: list | None = None) -> dict:
    """Runs that ended in the last `window_seconds`: degraded ones (completed_degraded, report_failed)
    and failed ones."""
    until = datetime.fromtimestamp(_epoch(now), timezone.utc).replace(tzinfo=None)
    since = until - timedelta(seconds=window_seconds)
    out: dict[str, Any] = {"runs_degraded": None, "runs_failed": None}
    try:
        with db.session() as s:
            rows = dict(s.execute(select(Run.status, func.count()).where(
                Run.status.in_((RunState.COMPLETED_DEGRADED, RunState.REPORT_FAILED, RunState.FAILED)),
                Run.finished_at >= since, Run.finished_at <= until).group_by(Run.status)).all())
    except Exception as exc:  # noqa: BLE001
        if problems is not None:
            problems.append(f"runs: {type(exc).__name__}")
        return out
    out["runs_degraded"] = int(rows.get(RunState.COMPLETED_DEGRADED, 0) + rows.get(RunState.REPORT_FAILED, 0))
    out["runs_failed"] = int(rows.get(RunState.FAILED, 0))
    return out


def llm_window_metrics(db, *, now: float | datetime | None = None, window_seconds: float = 300,
                       min_calls: int = 10, problems: list | None = None) -> dict:
    """LLM calls of the last `window_seconds`: count, error % and p95 latency (None below min_calls)."""
    from core.console.usage import percentiles

    at = _epoch(now)
    until = datetime.fromtimestamp(at, timezone.utc).replace(tzinfo=None)
    since = until - timedelta(seconds=window_seconds)
    out: dict[str, Any] = {"llm_calls": None, "llm_errors": None, "llm_error_rate_pct": None,
                           "llm_p95_latency_ms": None}
    try:
        with db.session() as s:
            rows = s.execute(select(LlmCall.status, LlmCall.latency_ms).where(
                LlmCall.ts >= since, LlmCall.ts <= until).limit(100_000)).all()
    except Exception as exc:  # noqa: BLE001
        if problems is not None:
            problems.append(f"llm calls: {type(exc).__name__}")
        return out
    n = len(rows)
    errors = sum(1 for status, _ in rows if status != "ok")
    out["llm_calls"], out["llm_errors"] = n, errors
    if n >= max(1, min_calls):
        out["llm_error_rate_pct"] = 100.0 * errors / n
        out["llm_p95_latency_ms"] = percentiles([lat for _, lat in rows], (0.95,))[0.95]
    return out


# ---------------------------------------------------------------------------------------------
# Loading and saving rules

_FIELDS = {f.name for f in fields(AlertRule)}


def rule_from_dict(data: Any) -> tuple[AlertRule | None, str | None]:
    if not isinstance(data, dict):
        return None, f"a rule must be an object, got {type(data).__name__}"
    name = str(data.get("name") or "").strip()
    label = f"rule '{name}'" if name else "a rule without a name"
    if not name:
        return None, f"{label}: 'name' is required"
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        return None, f"{label}: unknown field(s) {', '.join(unknown)}"
    metric = str(data.get("metric") or "").strip()
    if not metric:
        return None, f"{label}: 'metric' is required"
    op = data.get("op", ">")
    if op not in OPS:
        return None, f"{label}: op {op!r} is not one of {', '.join(OPS)}"
    try:
        threshold = _num(data.get("threshold"))
        for_seconds = _num(data.get("for_seconds", 0))
    except ValueError as exc:
        return None, f"{label}: {exc}"
    if for_seconds < 0:
        return None, f"{label}: for_seconds must not be negative"
    severity = data.get("severity", "warning")
    if severity not in SEVERITIES:
        return None, f"{label}: severity {severity!r} is not one of {', '.join(SEVERITIES)}"
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        return None, f"{label}: enabled must be true or false"
    return AlertRule(name, metric, op, threshold, for_seconds, severity, str(data.get("description") or ""),
                     enabled), None


def _num(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a number")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{value!r} is not a finite number")
    return v


def rules_from_data(data: Any) -> tuple[list[AlertRule], list[str]]:
    """Rules from a list (or {"rules": [...]}) of dicts; malformed ones skipped and reported."""
    if isinstance(data, dict) and "rules" in data:
        data = data["rules"]
    if not isinstance(data, list):
        return [], [f"alert rules must be a list, got {type(data).__name__}"]
    rules, problems, seen = [], [], set()
    for item in data:
        rule, problem = rule_from_dict(item)
        if rule is None:
            problems.append(problem)
        elif rule.name in seen:
            problems.append(f"rule '{rule.name}' is defined twice; the first one is used")
        else:
            seen.add(rule.name)
            rules.append(rule)
    return rules, problems


def rules_to_json(rules: list[AlertRule] | tuple[AlertRule, ...]) -> str:
    return json.dumps({"rules": [r.as_dict() for r in rules]}, indent=2, ensure_ascii=False) + "\n"


def load_rules(path: str | Path | None) -> tuple[list[AlertRule], list[str]]:
    """Rules from a JSON file; the defaults when there is no file, or it is unreadable (with a problem)."""
    if path is None or not Path(path).exists():
        return list(DEFAULT_RULES), []
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return list(DEFAULT_RULES), [f"alert rules {path} cannot be read ({exc}); using the defaults"]
    return rules_from_data(data)


def save_rules(path: str | Path, rules: list[AlertRule] | tuple[AlertRule, ...]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(rules_to_json(rules), encoding="utf-8")
    tmp.replace(p)


__all__ = ["AlertRule", "AlertEngine", "AlertChange", "ActiveAlert", "DEFAULT_RULES", "OPS", "SEVERITIES",
           "OPINION_RULE", "default_rules", "opinion_window_metrics", "collect_metrics", "llm_window_metrics", "rules_from_data", "rule_from_dict", "rules_to_json",
           "load_rules", "save_rules"]
