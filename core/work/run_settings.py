"""The settings a run was submitted with, recorded on the run, so its jobs never run under another's.

A run's jobs may execute in another process than the one that queued it: the long-lived worker, an
app replica, or `python -m core resume` after a crash. Each process has its own environment, .env and
command-line flags (`core run --offline`), so the settings a job needs — offline mode, models, base
URLs, the log folder, limits — are recorded with the run when it is submitted (`record`), and the
process that claims a job executes it with them (`resolve`).

Secrets are recorded by reference only: the setting's NAME, whether it was set, and a short
fingerprint (the first 16 hex digits of a SHA-256; never the value). The executing process looks the
name up in its own settings and uses the value only when its fingerprint matches: a key that differs
(or is missing) makes the run's jobs unclaimable in that process (`SettingsMismatch`), instead of
sending a request under someone else's key. A role that had no key at submit time has none when its
jobs run.

Process-level settings are not recorded: the database and its pool, the supervisor's leases and
timeouts, the console, the data folder, log rotation, and how many jobs or runs this process runs.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any, Callable, Mapping

from loguru import logger

from core.infra.config import SPECS, Settings, SettingError, load_settings, parse_value

# Groups that describe the process, not the analysis.
_PROCESS_GROUPS = frozenset({"Database", "Supervisor", "Console", "Access", "Storage"})
_PROCESS_KEYS = frozenset({"SHOAL_MAX_WORKERS", "SHOAL_MAX_CONCURRENT_RUNS", "SHOAL_LOG_LEVEL", "SHOAL_LOG_ROTATION",
                           "SHOAL_LOG_RETENTION"})
RECORDED_KEYS = tuple(k for k, s in SPECS.items() if s.group not in _PROCESS_GROUPS and k not in _PROCESS_KEYS)


class SettingsMismatch(Exception):
    """This process cannot run the run's jobs: a secret it refers to differs here or is missing."""

    def __init__(self, keys: list[str]):
        self.keys = list(keys)
        super().__init__(", ".join(self.keys) + (" differs" if len(self.keys) == 1 else " differ")
                         + " from the value the run was started with (or is not set in this process)")


def fingerprint(value: Any) -> str:
    """A short, one-way fingerprint of a secret ('' when unset)."""
    text = str(value or "")
    return hashlib.sha256(("shoal-run-secret:" + text).encode("utf-8")).hexdigest()[:16] if text else ""


def record(settings: Settings) -> dict:
    """What a run records of the submitting process's settings (JSON-ready; no secret values)."""
    out: dict[str, Any] = {}
    for key in RECORDED_KEYS:
        value = settings.get(key, SPECS[key].default)
        if SPECS[key].secret:
            out[key] = {"ref": key, "set": bool(value), "fp": fingerprint(value)}
        else:
            out[key] = value
    return out


def mismatched(recorded: Mapping[str, Any] | None, settings: Settings) -> list[str]:
    """Secret names whose value in `settings` is not the one the run was submitted with."""
    bad = []
    for key, ref in (recorded or {}).items():
        spec = SPECS.get(key)
        if spec is None or not spec.secret or not isinstance(ref, Mapping) or not ref.get("set"):
            continue
        if fingerprint(settings.get(key)) != ref.get("fp"):
            bad.append(key)
    return bad


def resolve(recorded: Mapping[str, Any] | None, base: Settings) -> Settings:
    """The settings a run's job executes with: `base` (this process) overlaid with what the run
    recorded. Raises SettingsMismatch when a recorded secret cannot be found here unchanged.
    A run without recorded settings (queued before they were recorded) runs with `base`."""
    if not recorded:
        return base
    bad = mismatched(recorded, base)
    if bad:
        raise SettingsMismatch(bad)
    values, sources = dict(base.values), dict(base.sources)
    for key, raw in recorded.items():
        spec = SPECS.get(key)
        if spec is None:
            continue  # a setting this version does not know
        if spec.secret:
            if isinstance(raw, Mapping) and not raw.get("set"):
                values[key], sources[key] = "", "run"
            continue
        try:
            values[key] = parse_value(spec, raw)
            sources[key] = "run"
        except SettingError:
            continue  # recorded by another version with other bounds: this process's value stands
    return Settings(values=values, sources=sources, errors=dict(base.errors), env_file=base.env_file,
                    invalid_raw=dict(base.invalid_raw))


class RunSettingsCache:
    """A supervisor's resolved settings per run. A run this process cannot serve (SettingsMismatch,
    after re-reading the settings once: .env may have been edited since) is re-checked every
    `recheck` seconds; its jobs are left to a process that has the keys."""

    def __init__(self, recheck: float = 30.0, size: int = 256):
        self.recheck, self.size = recheck, size
        self._cache: dict[str, tuple[float, Settings | None]] = {}

    def get(self, run_id: str, recorded: Callable[[], Mapping[str, Any] | None], base: Callable[[], Settings],
            who: str = "") -> Settings | None:
        """`recorded` reads the run's recorded settings (only when they are not cached yet)."""
        now = time.monotonic()
        cached = self._cache.get(run_id)
        if cached and (cached[1] is not None or now - cached[0] < self.recheck):
            return cached[1]
        values = recorded()
        try:
            resolved: Settings | None = resolve(values, base())
        except SettingsMismatch:
            try:
                resolved = resolve(values, load_settings())
            except SettingsMismatch as exc:
                resolved = None
                if not cached:
                    logger.warning("supervisor {} leaves run {} to another process: {}", who, run_id, exc)
        if len(self._cache) >= self.size:
            self._cache.clear()
        self._cache[run_id] = (now, resolved)
        return resolved
