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

from core.i18n import Msg
from core.infra.config import LLM_ROLES, Settings
from core.infra.db import Database

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class CheckResult:
    name: str
    status: str
    detail: str  # in English: the command line, the health events, the logs
    essential: bool = False
    ms: float = 0.0
    msg: Msg | None = None  # the same for a page, in the reader's language (`label` names the check)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("msg", None)
        return d

    @property
    def label(self) -> Msg:
        return Msg(f"health.name_{self.name.replace(' ', '_')}")

    @property
    def text(self) -> Msg | str:
        """What a page shows: the Msg, or the English detail of a result made without one."""
        return self.msg if self.msg is not None else self.detail


def _result(name: str, status: str, key: str, essential: bool = False, **args) -> CheckResult:
    msg = Msg(f"health.{key}", args)
    return CheckResult(name, status, msg.render("en"), essential=essential, msg=msg)


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

        return _result(name, WARN, "check_crashed", error=redact(f"{exc.__class__.__name__}: {exc}")[:280])


@_timed
def check_settings(settings: Settings) -> CheckResult:
    # DATABASE_URL problems are reported once, by the database check.
    errors = {k: v for k, v in settings.errors.items() if k != "DATABASE_URL"}
    if errors:
        return _result("settings", WARN, "settings_invalid", errors="; ".join(map(str, errors.values())))
    return _result("settings", OK, "settings_ok")


@_timed
def check_database(db: Database) -> CheckResult:
    if not db.ok:
        return _result("database", FAIL, "db_down", True, error=db.error)
    try:
        ms = db.ping()
    except Exception as exc:  # noqa: BLE001 - a health check reports, never raises
        return _result("database", FAIL, "db_down", True, error=str(exc))
    return _result("database", OK, "db_ok", True, backend=db.backend, url=db.display_url, ms=ms)


@_timed
def check_logs(log_dir: Path) -> CheckResult:
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        probe = log_dir / f".doctor-{uuid.uuid4().hex[:8]}"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        return _result("logs", FAIL, "logs_unwritable", True, dir=str(log_dir), error=str(exc.strerror or exc))
    return _result("logs", OK, "logs_ok", True, dir=str(log_dir))


@_timed
def check_disk(path: Path, min_free_mb: int) -> CheckResult:
    target = path if path.exists() else path.parent
    try:
        usage = shutil.disk_usage(target)
    except OSError as exc:
        return _result("disk", FAIL, "disk_unreadable", True, target=str(target), error=str(exc))
    free_mb = usage.free / 2**20
    pct = 100 * usage.used / usage.total if usage.total else 0
    args = {"free": free_mb, "target": str(target), "pct": pct}
    if free_mb < min_free_mb:
        return _result("disk", FAIL, "disk_low", True, min=min_free_mb, **args)
    return _result("disk", WARN if free_mb < 2 * min_free_mb or pct > 95 else OK, "disk_free", True, **args)


@_timed
def check_llm(settings: Settings) -> CheckResult:
    if settings["SHOAL_MODE"] == "offline":
        return _result("llm", OK, "llm_offline_mode")
    configured = [r for r in LLM_ROLES if settings.llm_configured(r)]
    if not configured:
        if settings["SHOAL_MODE"] == "llm":
            return _result("llm", FAIL, "llm_mode_without_roles")
        return _result("llm", OK, "llm_none")
    missing = [r for r in LLM_ROLES[:5] if r not in configured]
    roles = ", ".join(r.lower() for r in configured)
    if missing:
        return _result("llm", OK, "llm_some", roles=roles, missing=", ".join(r.lower() for r in missing))
    return _result("llm", OK, "llm_all", roles=roles)


@_timed
def check_search(settings: Settings) -> CheckResult:
    have = [name for key, name in (("TAVILY_API_KEY", "Tavily (query)"), ("BOCHA_WEB_SEARCH_API_KEY", "Bocha (media)"))
            if settings.get(key)]
    if not have:
        return _result("search", OK, "search_none")
    return _result("search", OK, "search_configured", names=", ".join(have))


def run_checks(settings: Settings, db: Database, logging_problem: str = "") -> list[CheckResult]:
    results = [_guarded("settings", check_settings, settings), _guarded("database", check_database, db),
               _guarded("logs", check_logs, settings.log_dir),
               _guarded("disk", lambda: check_disk(settings.data_dir, settings["SHOAL_MIN_FREE_MB"])),
               _guarded("llm", check_llm, settings), _guarded("search", check_search, settings)]
    if logging_problem:
        results.append(_result("logging", WARN, "logging_problem", problem=logging_problem))
    return results


def essential_failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.essential and r.status == FAIL]


@_timed
def check_llm_endpoint(settings: Settings, timeout: float = 3.0) -> CheckResult:
    """Is each configured LLM endpoint reachable? (GET /models; not essential: engines fall back offline)."""
    import httpx

    from core.infra.redact import redact

    if settings["SHOAL_MODE"] == "offline":
        return _result("llm endpoint", OK, "endpoint_offline")
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
        return _result("llm endpoint", OK, "endpoint_none")
    bad = {b: v for b, v in seen.items() if v != "ok"}
    detail = "; ".join(f"{b}: {v}" for b, v in seen.items())
    return _result("llm endpoint", WARN if bad else OK, "endpoint_results", results=detail)


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
