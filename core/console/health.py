"""Health checks shared by `python -m core doctor`, the console's monitor thread and the pages.

Each check returns a CheckResult; none raises (a check that crashes anyway becomes a `warn`
result naming the crash, and the other checks still run). `essential` checks decide doctor's
exit code.
"""
from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from core.infra.config import LLM_ROLES, Settings
from core.infra.db import Database

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class CheckResult:
    name: str
    status: str
    detail: str
    essential: bool = False
    ms: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _timed(fn):
    def wrapper(*args, **kwargs) -> CheckResult:
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        result.ms = round((time.perf_counter() - t0) * 1000, 1)
        return result
    wrapper.__name__ = fn.__name__
    return wrapper


def _guarded(name: str, fn, *args) -> CheckResult:
    """One check, on its own: a check that raises is reported as a warning, never raised."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
        from core.infra.redact import redact

        return CheckResult(name, WARN, redact(f"the check itself failed: {exc.__class__.__name__}: {exc}")[:300])


@_timed
def check_settings(settings: Settings) -> CheckResult:
    # DATABASE_URL problems are reported once, by the database check.
    errors = {k: v for k, v in settings.errors.items() if k != "DATABASE_URL"}
    if errors:
        return CheckResult("settings", WARN, "; ".join(errors.values()))
    return CheckResult("settings", OK, "all values valid")


@_timed
def check_database(db: Database) -> CheckResult:
    if not db.ok:
        return CheckResult("database", FAIL, db.error, essential=True)
    try:
        ms = db.ping()
    except Exception as exc:  # noqa: BLE001 - a health check reports, never raises
        return CheckResult("database", FAIL, str(exc), essential=True)
    return CheckResult("database", OK, f"{db.backend} at {db.display_url} answered in {ms:.1f} ms", essential=True)


@_timed
def check_logs(log_dir: Path) -> CheckResult:
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        probe = log_dir / f".doctor-{uuid.uuid4().hex[:8]}"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        return CheckResult("logs", FAIL, f"{log_dir} is not writable: {exc.strerror or exc}", essential=True)
    return CheckResult("logs", OK, f"{log_dir} is writable", essential=True)


@_timed
def check_disk(path: Path, min_free_mb: int) -> CheckResult:
    target = path if path.exists() else path.parent
    try:
        usage = shutil.disk_usage(target)
    except OSError as exc:
        return CheckResult("disk", FAIL, f"cannot read disk usage of {target}: {exc}", essential=True)
    free_mb = usage.free / 2**20
    pct = 100 * usage.used / usage.total if usage.total else 0
    detail = f"{free_mb:,.0f} MB free on {target} ({pct:.0f}% used)"
    if free_mb < min_free_mb:
        return CheckResult("disk", FAIL, detail + f"; below the {min_free_mb} MB minimum", essential=True)
    if free_mb < 2 * min_free_mb or pct > 95:
        return CheckResult("disk", WARN, detail, essential=True)
    return CheckResult("disk", OK, detail, essential=True)


@_timed
def check_llm(settings: Settings) -> CheckResult:
    if settings["SHOAL_MODE"] == "offline":
        return CheckResult("llm", OK, "offline mode (SHOAL_MODE=offline): the offline analyst reasons")
    configured = [r for r in LLM_ROLES if settings.llm_configured(r)]
    if not configured:
        if settings["SHOAL_MODE"] == "llm":
            return CheckResult("llm", FAIL, "SHOAL_MODE=llm but no role has a model and base URL/API key")
        return CheckResult("llm", OK, "no LLM configured: runs are offline")
    missing = [r for r in LLM_ROLES[:5] if r not in configured]
    detail = "configured: " + ", ".join(r.lower() for r in configured)
    if missing:
        detail += "; offline for: " + ", ".join(r.lower() for r in missing)
    return CheckResult("llm", OK, detail)


@_timed
def check_search(settings: Settings) -> CheckResult:
    have = [name for key, name in (("TAVILY_API_KEY", "Tavily (query)"), ("BOCHA_WEB_SEARCH_API_KEY", "Bocha (media)"))
            if settings.get(key)]
    if not have:
        return CheckResult("search", OK, "no search keys: query and media engines search the local corpus")
    return CheckResult("search", OK, "configured: " + ", ".join(have))


def run_checks(settings: Settings, db: Database, logging_problem: str = "") -> list[CheckResult]:
    results = [_guarded("settings", check_settings, settings), _guarded("database", check_database, db),
               _guarded("logs", check_logs, settings.log_dir),
               _guarded("disk", lambda: check_disk(settings.data_dir, settings["SHOAL_MIN_FREE_MB"])),
               _guarded("llm", check_llm, settings), _guarded("search", check_search, settings)]
    if logging_problem:
        results.append(CheckResult("logging", WARN, logging_problem))
    return results


def essential_failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.essential and r.status == FAIL]


@_timed
def check_llm_endpoint(settings: Settings, timeout: float = 3.0) -> CheckResult:
    """Is each configured LLM endpoint reachable? (GET /models; not essential: engines fall back offline)."""
    import httpx

    from core.infra.redact import redact

    if settings["SHOAL_MODE"] == "offline":
        return CheckResult("llm endpoint", OK, "offline mode: no endpoint to check")
    seen: dict[str, str] = {}
    for role in LLM_ROLES:
        if not settings.llm_configured(role):
            continue
        r = settings.llm_role(role)
        base = (r["base_url"] or "https://api.openai.com/v1").rstrip("/")
        if base in seen:
            continue
        try:  # each endpoint on its own: one that breaks the client still leaves the others checked
            resp = httpx.get(f"{base}/models", timeout=timeout,
                             headers={"Authorization": f"Bearer {r['api_key']}"} if r["api_key"] else {})
            seen[base] = "ok" if resp.status_code < 500 and resp.status_code != 401 else f"HTTP {resp.status_code}"
        except Exception as exc:  # noqa: BLE001 - httpx.HTTPError, or a malformed URL, or worse
            seen[base] = redact(f"{exc.__class__.__name__}: {exc}")[:120]
    if not seen:
        return CheckResult("llm endpoint", OK, "no LLM configured")
    bad = {b: v for b, v in seen.items() if v != "ok"}
    detail = "; ".join(f"{b}: {v}" for b, v in seen.items())
    return CheckResult("llm endpoint", WARN if bad else OK, detail)


class HealthMonitor:
    """Runs the checks on an interval (the console's monitor thread calls `run`, never the lease
    thread), keeps a bounded history, and emits an event when a check's status changes — so pages
    read results, never block."""

    def __init__(self, settings: Settings, db: Database, events=None, history: int = 500,
                 logging_problem: str = "", probe_endpoints: bool = True):
        from collections import deque

        self.settings, self.db, self.events = settings, db, events
        self.logging_problem = logging_problem
        self.probe_endpoints = probe_endpoints
        self._history: deque = deque(maxlen=history)
        self._last: dict[str, CheckResult] = {}

    def run(self) -> list[CheckResult]:
        results = run_checks(self.settings, self.db, self.logging_problem)
        if self.probe_endpoints:
            results.append(_guarded("llm endpoint", check_llm_endpoint, self.settings))
        now = time.time()
        for r in results:
            prev = self._last.get(r.name)
            if prev is not None and prev.status != r.status and self.events is not None and self.db.ok:
                try:
                    self.events.emit("health.changed", source="health",
                                     payload={"check": r.name, "from": prev.status, "to": r.status, "detail": r.detail})
                except Exception:  # noqa: BLE001 - a health check reports, never raises
                    pass
            self._last[r.name] = r
            self._history.append((now, r))
        return results

    def latest(self) -> list[CheckResult]:
        return list(self._last.values())

    def history(self) -> list[tuple[float, CheckResult]]:
        return list(self._history)
