"""A per-provider limit on concurrent LLM calls.

Rate limits are per provider, not per role: the Query, Media and Insight engines (and the forum
host) may all point at the same endpoint, so one counter per endpoint host:port caps them
together. A slot is held for one attempt (the request and reading its stream), never across a
retry's back-off sleep, so a throttled call does not keep others waiting.

    limiter = default_limiter(settings["SHOAL_LLM_CONCURRENCY"])
    with limiter.slot(provider_key(base_url)):
        ...one HTTP request...

`snapshot()` gives the console what is in flight, waiting and the peak per provider.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

__all__ = ["ProviderLimiter", "ProviderStats", "provider_key", "default_limiter", "reset_default_limiter",
           "DEFAULT_CONCURRENCY"]

DEFAULT_CONCURRENCY = 4


def provider_key(base_url: str | None) -> str:
    """'host:port' of an OpenAI-compatible base URL; 'openai' when none is set (the SDK's default)."""
    text = (base_url or "").strip()
    if not text:
        return "openai"
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return text[:128]
    if not host:
        return text[:128]
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{host}:{port}"


@dataclass(frozen=True)
class ProviderStats:
    in_flight: int
    waiting: int
    limit: int
    peak: int
    total: int  # slots granted since start

    def as_dict(self) -> dict[str, int]:
        return {"in_flight": self.in_flight, "waiting": self.waiting, "limit": self.limit,
                "peak": self.peak, "total": self.total}


class _Gate:
    """A counting semaphore whose limit can change, with counters for the console."""

    __slots__ = ("cond", "in_flight", "waiting", "peak", "total")

    def __init__(self, lock: threading.Lock):
        self.cond = threading.Condition(lock)
        self.in_flight = 0
        self.waiting = 0
        self.peak = 0
        self.total = 0


class ProviderLimiter:
    """At most `max_per_provider` concurrent slots per provider key; gates are created lazily."""

    def __init__(self, max_per_provider: int = DEFAULT_CONCURRENCY):
        self._lock = threading.Lock()  # one lock for all gates: counts and limits change together
        self._gates: dict[str, _Gate] = {}
        self._limit = self._check(max_per_provider)

    @staticmethod
    def _check(n: int) -> int:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"max_per_provider must be a positive integer, got {n!r}")
        return n

    @property
    def limit(self) -> int:
        return self._limit

    def set_limit(self, n: int) -> None:
        """Change the limit (the Settings page may); waiters are woken when it grows. Calls in
        flight above a lowered limit finish normally; new ones wait until the count drops."""
        n = self._check(n)
        with self._lock:
            self._limit = n
            for gate in self._gates.values():
                gate.cond.notify_all()

    def _gate(self, key: str) -> _Gate:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(self._lock)
        return gate

    def acquire(self, key: str, timeout: float | None = None) -> bool:
        """Take a slot for `key`; False if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            gate = self._gate(key)
            gate.waiting += 1
            try:
                while gate.in_flight >= self._limit:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    gate.cond.wait(remaining)
            finally:
                gate.waiting -= 1
            gate.in_flight += 1
            gate.total += 1
            gate.peak = max(gate.peak, gate.in_flight)
            return True

    def release(self, key: str) -> None:
        with self._lock:
            gate = self._gates.get(key)
            if gate is None or gate.in_flight <= 0:
                raise RuntimeError(f"release of provider {key!r} without a slot")
            gate.in_flight -= 1
            gate.cond.notify()

    @contextmanager
    def slot(self, key: str, timeout: float | None = None) -> Iterator[None]:
        """Hold one slot of `key` for the block. Raises TimeoutError if none came within `timeout`."""
        if not self.acquire(key, timeout):
            raise TimeoutError(f"no free LLM slot for provider {key} within {timeout:g}s "
                               f"(limit {self._limit} concurrent calls)")
        try:
            yield
        finally:
            self.release(key)

    def in_flight(self) -> dict[str, int]:
        """Calls in flight per provider (providers seen so far, zeros included)."""
        with self._lock:
            return {k: g.in_flight for k, g in self._gates.items()}

    def snapshot(self) -> dict[str, ProviderStats]:
        with self._lock:
            return {k: ProviderStats(g.in_flight, g.waiting, self._limit, g.peak, g.total)
                    for k, g in self._gates.items()}

    def reset_peaks(self) -> None:
        with self._lock:
            for g in self._gates.values():
                g.peak = g.in_flight


_default_lock = threading.Lock()
_default: ProviderLimiter | None = None


def default_limiter(n: int | None = None) -> ProviderLimiter:
    """The process-wide limiter, shared by every LLM client. `n` (SHOAL_LLM_CONCURRENCY) sets
    its limit: on first use, and again when the setting changed since."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ProviderLimiter(n if n is not None else DEFAULT_CONCURRENCY)
        elif n is not None and n != _default.limit:
            _default.set_limit(n)
        return _default


def reset_default_limiter() -> None:
    """Forget the process-wide limiter (tests)."""
    global _default
    with _default_lock:
        _default = None
