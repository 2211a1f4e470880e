"""Retries for calls that fail for a while and then work again: LLM endpoints, search APIs, the database.

Built on tenacity (no hand-written loops). Three presets, `LLM`, `SEARCH` and `DATABASE`, each
with an attempt limit and a total-time budget. Only transient failures are retried: timeouts,
connection errors, HTTP 408/429/5xx, and lock/deadlock/lost-connection errors of the database.
A 400/401/403/404/422 or a programming error is raised at once: retrying it only delays the
error and burns rate limit (BettaFish users hit 429s for exactly this reason).

Waits honour `Retry-After` (or `retry-after-ms`) when the server sends it, capped by the
policy's `max_wait` and by what is left of the budget; otherwise exponential backoff with full
jitter, so many workers that failed together do not come back together. The budget is enforced
with `stop_before_delay`: we never start a sleep that would end past it.

Every retry is visible: a `retry` event (when an event sink is registered), a loguru warning
with the error redacted, and a counter by (policy, kind) that the console reads.

Usage:
    for attempt in retrying(LLM, op="chat", run_id=run_id):
        with attempt:
            reply = client.chat.completions.create(...)

    rows = call_with_retry(DATABASE, load_rows, run_id, op="load")

Who uses which: the LLM client (LLM), the web search providers (SEARCH), and the supervisor's
claims, lease renewals and checkpoint writes plus event compaction (DATABASE).

Note: `op`, `run_id`, `job_id` and `sleep` are consumed by call_with_retry, not forwarded to
`fn`; wrap `fn` in a lambda or functools.partial if it takes them.
"""
from __future__ import annotations

import email.utils
import math
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Protocol, TypeVar

import tenacity
from loguru import logger
from tenacity import (RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_before_delay,
                      wait_random_exponential)
from tenacity.wait import wait_base

from core.infra.redact import redact
from core.infra.tracing import current_trace_id

T = TypeVar("T")

__all__ = [
    "RetryPolicy", "LLM", "SEARCH", "DATABASE", "KINDS", "classify", "retry_after_seconds",
    "retrying", "call_with_retry",
    "set_event_sink", "event_sink", "retry_counts", "reset_retry_counts",
]

KINDS = ("timeout", "connection", "rate_limit", "server_error", "database")
_NETWORK_KINDS = frozenset({"timeout", "connection", "rate_limit", "server_error"})
_ERROR_TEXT_MAX = 500


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one kind of call.

    max_attempts counts the first call. max_seconds is the budget from the first attempt:
    no sleep is started that would end after it (an attempt in flight is bounded by the
    client's own timeout, not here). `kinds` are the error kinds this policy retries.
    """
    name: str
    max_attempts: int
    max_seconds: float
    initial_wait: float
    max_wait: float
    kinds: frozenset[str] = field(default=_NETWORK_KINDS)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_seconds <= 0 or self.initial_wait < 0 or self.max_wait < 0:
            raise ValueError("max_seconds must be positive, waits not negative")
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown retry kinds: {sorted(unknown)}")


# An LLM call is the critical path and the expensive one; providers throttle for tens of seconds.
LLM = RetryPolicy("llm", max_attempts=5, max_seconds=60.0, initial_wait=1.0, max_wait=20.0)
# Search feeds one paragraph among many: give up sooner and let the caller degrade.
SEARCH = RetryPolicy("search", max_attempts=4, max_seconds=30.0, initial_wait=0.5, max_wait=10.0)
# Locks and deadlocks clear in milliseconds to seconds; a database down for longer is an outage,
# reported by health checks, not hidden by retries. A database error inside an LLM or search call
# is not retried by those policies: re-running an expensive call for a local hiccup is waste.
DATABASE = RetryPolicy("database", max_attempts=5, max_seconds=15.0, initial_wait=0.2, max_wait=3.0,
                       kinds=frozenset(KINDS))


# ---------------------------------------------------------------------------------------------
# Classification

def _classes(module: str, *names: str) -> tuple[type, ...]:
    """Exception classes of an optional package (httpx; httpx2, openai's transport; openai), read
    from ``sys.modules`` and never imported here: no exception of a package nobody imported can
    exist, and importing openai would cost every first page a second even offline."""
    mod = sys.modules.get(module)
    if mod is None:
        return ()
    return tuple(c for n in names if isinstance(c := getattr(mod, n, None), type))


def _timeouts() -> tuple[type, ...]:
    return (TimeoutError,) + _classes("httpx", "TimeoutException") + _classes("httpx2", "TimeoutException") \
        + _classes("openai", "APITimeoutError")


def _transport() -> tuple[type, ...]:
    return _classes("httpx", "TransportError") + _classes("httpx2", "TransportError")


def _transport_permanent() -> tuple[type, ...]:
    """Our own mistakes, not the network's: a bad URL scheme or a request we built wrong."""
    return _classes("httpx", "UnsupportedProtocol", "LocalProtocolError") \
        + _classes("httpx2", "UnsupportedProtocol", "LocalProtocolError")


def _connection() -> tuple[type, ...]:
    return (ConnectionError,) + _classes("openai", "APIConnectionError")


# MySQL/MariaDB error codes that go away by themselves: lock wait timeout, deadlock, too many
# connections, can't connect, server gone away, lost connection (several flavours), killed/idle.
MYSQL_TRANSIENT_CODES = frozenset({1205, 1213, 1040, 2002, 2003, 2006, 2013, 2055, 1927, 4031})
_DRIVER_MODULES = frozenset({"pymysql", "MySQLdb", "sqlite3"})
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy", "disk i/o error")


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status carried by an exception (httpx, httpx2, openai, requests-like), if any."""
    for holder in (exc, _safe_attr(exc, "response")):
        code = _safe_attr(holder, "status_code") if holder is not None else None
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return None


def _safe_attr(obj: Any, name: str) -> Any:
    # Some exceptions raise from a property (httpx's `.request` when unset): never let that escape.
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _status_kind(status: int) -> str | None:
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    # 501 Not Implemented and 505 HTTP Version Not Supported will say the same next time.
    if 500 <= status <= 599 and status not in (501, 505):
        return "server_error"
    return None


def _database_kind(exc: BaseException) -> str | None:
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        sa_exc = None
    if sa_exc is not None:
        if isinstance(exc, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
            return "database"  # pool checkout timeout, connection invalidated by pre-ping
        if isinstance(exc, sa_exc.DBAPIError):
            if exc.connection_invalidated:
                return "database"
            if isinstance(exc, sa_exc.OperationalError):
                return _driver_kind(exc.orig, default_transient=True)
            # IntegrityError, ProgrammingError, DataError...: never transient by themselves,
            # but a driver may still carry a transient code (MySQL deadlock as InternalError).
            return _driver_kind(exc.orig, default_transient=False)
    # A driver exception that escaped SQLAlchemy (raw pymysql/sqlite3 connection use).
    if type(exc).__module__.split(".")[0] in _DRIVER_MODULES:
        return _driver_kind(exc, default_transient=False)
    return None


def _driver_kind(orig: BaseException | None, *, default_transient: bool) -> str | None:
    if orig is None:
        return "database" if default_transient else None
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):  # pymysql: (code, message)
        return "database" if args[0] in MYSQL_TRANSIENT_CODES else None
    if type(orig).__module__.startswith("sqlite3"):
        # SQLite reports "no such table" and syntax errors as OperationalError too: only locks retry.
        text = str(orig).lower()
        return "database" if any(s in text for s in _SQLITE_TRANSIENT) else None
    # Another driver's OperationalError: by DB-API definition outside the programmer's control.
    return "database" if default_transient else None


def classify(exc: BaseException) -> str | None:
    """The kind of a transient error ('timeout', 'connection', 'rate_limit', 'server_error',
    'database'), or None when retrying cannot help."""
    if not isinstance(exc, Exception):
        return None  # KeyboardInterrupt, SystemExit, cancellation
    if isinstance(exc, _timeouts()):
        return "timeout"
    status = _status_of(exc)
    if status is not None:
        return _status_kind(status)
    if isinstance(exc, _transport()):
        return None if isinstance(exc, _transport_permanent()) else "connection"
    if isinstance(exc, _connection()):
        return "connection"
    return _database_kind(exc)


def _retryable(policy: RetryPolicy) -> Callable[[BaseException], bool]:
    def predicate(exc: BaseException) -> bool:
        kind = classify(exc)
        return kind is not None and kind in policy.kinds
    return predicate


# ---------------------------------------------------------------------------------------------
# Waiting

def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    try:
        value = headers.get(name)  # httpx/httpx2 Headers are case-insensitive
        if value is None and isinstance(headers, dict):
            value = next((v for k, v in headers.items() if str(k).lower() == name), None)
    except Exception:
        return None
    return None if value is None else str(value)


def retry_after_seconds(exc: BaseException | None, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, or `Retry-After` as seconds or an
    HTTP-date), or None when it did not say or said something unreadable."""
    if exc is None:
        return None
    headers = _safe_attr(_safe_attr(exc, "response"), "headers")
    if headers is None:
        headers = _safe_attr(exc, "headers")
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = _header(headers, name)
        if raw is None:
            continue
        try:
            value = float(raw.strip())
        except ValueError:
            if divisor == 1.0:
                return _http_date_delay(raw, now)
            continue
        if math.isnan(value):
            continue
        return max(0.0, value / divisor)
    return None


def _http_date_delay(raw: str, now: float | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now_dt = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    return max(0.0, (when - now_dt).total_seconds())


class _wait_for_policy(wait_base):
    """Retry-After when given, else exponential backoff with full jitter; both within the budget."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self._backoff = wait_random_exponential(multiplier=policy.initial_wait, max=policy.max_wait)

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        asked = retry_after_seconds(exc)
        wait = min(asked, self.policy.max_wait) if asked is not None else self._backoff(retry_state)
        # A wait that reaches the budget makes stop_before_delay end the retries now, instead of
        # sleeping past the budget (or retrying early into the same 429).
        remaining = self.policy.max_seconds - (retry_state.seconds_since_start or 0.0)
        return max(0.0, min(wait, remaining))


# ---------------------------------------------------------------------------------------------
# Observation: events, logs, counters

class EventSink(Protocol):
    def emit(self, type: str, *, run_id: str | None = None, job_id: str | None = None, source: str = ...,
             payload: dict | None = None, trace_id: str | None = None) -> Any: ...


_sink_lock = threading.Lock()
_sink: EventSink | None = None
_counts_lock = threading.Lock()
_counts: Counter[tuple[str, str]] = Counter()


def event_sink() -> EventSink | None:
    """The sink retries report to now (the runtime checks it before clearing on close)."""
    return _sink


def set_event_sink(sink: EventSink | None) -> None:
    """Where retry events go: a core.infra.events.EventLog (or anything with its `emit`), or None."""
    global _sink
    with _sink_lock:
        _sink = sink


def retry_counts() -> dict[tuple[str, str], int]:
    """Retries since start (or the last reset), keyed by (policy name, error kind)."""
    with _counts_lock:
        return dict(_counts)


def reset_retry_counts() -> None:
    with _counts_lock:
        _counts.clear()


def _error_text(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact(text)[:_ERROR_TEXT_MAX]


def _emit(type_: str, payload: dict, run_id: str | None, job_id: str | None) -> None:
    # Observing must never break the work it observes: a missing or failing sink is a warning.
    sink = _sink
    if sink is None:
        return
    try:
        sink.emit(type_, run_id=run_id, job_id=job_id, source="retry", payload=payload,
                  trace_id=current_trace_id())
    except Exception as exc:  # the database may be the very thing that is failing
        logger.warning("retry event {} not recorded: {}", type_, _error_text(exc))


def _before_sleep(policy: RetryPolicy, op: str, run_id: str | None, job_id: str | None):
    def hook(retry_state: RetryCallState) -> None:
        try:
            exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
            kind = classify(exc) if exc is not None else None
            kind = kind or "unknown"
            wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
            error = _error_text(exc)
            with _counts_lock:
                _counts[(policy.name, kind)] += 1
            logger.warning("retry {}/{}: attempt {}/{} failed ({}): {}; waiting {:.2f}s",
                           policy.name, op, retry_state.attempt_number, policy.max_attempts, kind, error, wait)
            _emit("retry", {"policy": policy.name, "op": op, "attempt": retry_state.attempt_number,
                            "max_attempts": policy.max_attempts, "wait_s": round(float(wait), 3),
                            "kind": kind, "error": error}, run_id, job_id)
        except Exception as exc:  # pragma: no cover - defensive: a hook bug must not fail the call
            logger.warning("retry hook failed: {}", _error_text(exc))
    return hook


# ---------------------------------------------------------------------------------------------
# API

def retrying(policy: RetryPolicy, op: str = "call", run_id: str | None = None, job_id: str | None = None,
             sleep: Callable[[float], None] | None = None) -> Retrying:
    """A tenacity Retrying for one call: `for attempt in retrying(...): with attempt: ...`.

    After the last attempt the original exception is raised (not tenacity.RetryError).
    `sleep` replaces time.sleep (tests record waits with it). Make a new one per call.
    """
    return Retrying(
        retry=retry_if_exception(_retryable(policy)),
        stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.max_seconds),
        wait=_wait_for_policy(policy),
        before_sleep=_before_sleep(policy, op, run_id, job_id),
        reraise=True,
        sleep=sleep if sleep is not None else tenacity.nap.sleep,
        name=f"{policy.name}:{op}",
    )


def call_with_retry(policy: RetryPolicy, fn: Callable[..., T], *args: Any, op: str | None = None,
                    run_id: str | None = None, job_id: str | None = None,
                    sleep: Callable[[float], None] | None = None, **kwargs: Any) -> T:
    """fn(*args, **kwargs), retried under `policy`; raises the original exception at the end."""
    return retrying(policy, op=op or _name(fn), run_id=run_id, job_id=job_id, sleep=sleep)(fn, *args, **kwargs)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
