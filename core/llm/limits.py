"""Concurrency budgets for LLM calls: one per endpoint, with a reserved slot per role, shrinking on 429.

Rate limits belong to an endpoint, not a role: the Query, Media and Insight engines, the forum host,
the report and the keyword optimiser may all point at one provider, so one budget per endpoint
(host:port, `provider_key`) caps them together. Inside that budget:

- **Reservations.** Every role that uses an endpoint (configured for it in the settings, or seen
  calling it) has one reserved slot there; the rest of the budget is shared. A role may always use
  its own reserved slot, and takes a shared slot only while the other roles' unused reservations
  stay free. So with the engines holding every shared slot the host still starts at once, and the
  host and report cannot take an engine's last slot either. When a budget is smaller than the
  number of roles on its endpoint (a user-set limit below it) the reservations cannot all fit and
  are off: that endpoint is one shared pool, as before budgets had reservations.
- **Limits.** `SHOAL_LLM_CONCURRENCY` (default 18) is the budget of every endpoint; a role's
  `<ROLE>_CONCURRENCY` (0: unset) states what the provider behind that role's endpoint allows, and
  the smallest one given for an endpoint wins. 18 = P=5 paragraphs × 3 engines, plus one slot for
  each of the forum host, the report and the keyword optimiser, so a whole analysis's calls fit.
- **Adaptive (AIMD).** An HTTP 429 halves the endpoint's budget (never below its floor: one slot
  per role, or the limit when that is smaller); several 429s from calls that started before the
  same cut count as one. Every `grow_after` successful calls add one slot back, up to the limit.

A slot is held for one attempt (the request and reading its stream), never across a retry's back-off
sleep, so a throttled call does not keep others waiting.

    limiter = default_limiter(settings["SHOAL_LLM_CONCURRENCY"])
    limiter.configure(settings)                      # endpoints, their roles and limits
    with limiter.slot(provider_key(base_url), role="QUERY_ENGINE") as slot:
        ...one HTTP request...                       # on a 429: slot.throttled()

`budgets()` is the typed view the Settings and Monitor pages show; `snapshot()` the raw counters.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import urlsplit

__all__ = ["ProviderLimiter", "ProviderStats", "EndpointBudget", "Slot", "provider_key", "default_limiter",
           "reset_default_limiter", "endpoint_plan", "budgets", "DEFAULT_CONCURRENCY", "GROW_AFTER",
           "RESERVED_PER_ROLE", "role_limit_key"]

DEFAULT_CONCURRENCY = 18  # 5 paragraphs × 3 engines + forum host + report + keyword optimiser
GROW_AFTER = 10  # successful calls per slot given back after a 429 cut
RESERVED_PER_ROLE = 1


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


def role_limit_key(role: str) -> str:
    """The setting that states what the provider behind `role`'s endpoint allows."""
    return f"{role}_CONCURRENCY"


# ---------------------------------------------------------------------------------------------
# What the pages read

@dataclass(frozen=True)
class ProviderStats:
    """Raw counters of one endpoint (`ProviderLimiter.snapshot`)."""

    in_flight: int
    waiting: int
    limit: int  # what the endpoint allows (the setting)
    peak: int
    total: int  # slots granted since start
    budget: int = 0  # the limit after 429 cuts
    throttled: int = 0  # 429s seen
    floor: int = 1
    roles: tuple[str, ...] = ()  # roles with a reserved slot
    by_role: tuple[tuple[str, int], ...] = ()  # calls in flight per role

    def as_dict(self) -> dict[str, Any]:
        return {"in_flight": self.in_flight, "waiting": self.waiting, "limit": self.limit,
                "peak": self.peak, "total": self.total, "budget": self.budget, "throttled": self.throttled,
                "floor": self.floor, "roles": list(self.roles), "by_role": dict(self.by_role)}


@dataclass(frozen=True)
class EndpointBudget:
    """One endpoint's budget as a page shows it."""

    endpoint: str
    roles: tuple[str, ...]  # roles that use it (each has one reserved slot)
    limit: int  # what the provider allows
    limit_from: str  # the setting that limit comes from
    budget: int  # the limit after 429 cuts (equal to limit when none)
    reserved: int  # slots reserved for the roles (0: reservations off, the budget is too small)
    in_flight: int
    waiting: int
    peak: int
    calls: int  # slots granted since start
    throttled: int  # 429s seen
    in_flight_by_role: tuple[tuple[str, int], ...] = ()

    @property
    def shared(self) -> int:
        return max(0, self.budget - self.reserved)


def endpoint_plan(settings: Any) -> dict[str, tuple[tuple[str, ...], int | None, str]]:
    """Per endpoint of the roles configured in `settings`: (roles, limit or None, where the limit
    comes from). None means the endpoint follows SHOAL_LLM_CONCURRENCY."""
    from core.infra.config import LLM_ROLES  # no import cycle at module load: config never imports us

    plan: dict[str, tuple[list[str], int | None, str]] = {}
    for role in LLM_ROLES:
        if not settings.llm_configured(role):
            continue
        key = provider_key(settings.llm_role(role)["base_url"])
        roles, limit, source = plan.setdefault(key, ([], None, "SHOAL_LLM_CONCURRENCY"))
        roles.append(role)
        own = settings.get(role_limit_key(role)) or 0
        if isinstance(own, int) and own > 0 and (limit is None or own < limit):
            plan[key] = (roles, own, role_limit_key(role))
    return {k: (tuple(r), lim, src) for k, (r, lim, src) in plan.items()}


def _in_role_order(roles: set[str]) -> list[str]:
    """LLM_ROLES' order (engines first), then any other role by name."""
    from core.infra.config import LLM_ROLES

    return [r for r in LLM_ROLES if r in roles] + sorted(roles - set(LLM_ROLES))


# ---------------------------------------------------------------------------------------------
# The limiter

class _Gate:
    """One endpoint: its counters, roles, limit and adaptive budget. Guarded by the limiter's lock."""

    __slots__ = ("cond", "in_flight", "by_role", "waiting", "peak", "total", "planned", "seen", "cap",
                 "cap_source", "cut", "epoch", "successes", "throttled")

    def __init__(self, lock: threading.Lock):
        self.cond = threading.Condition(lock)
        self.in_flight = 0
        self.by_role: dict[str, int] = {}
        self.waiting = 0
        self.peak = 0
        self.total = 0
        self.planned: tuple[str, ...] = ()  # roles the settings put here
        self.seen: set[str] = set()  # roles that called here
        self.cap: int | None = None  # None: the limiter's default limit
        self.cap_source = "SHOAL_LLM_CONCURRENCY"
        self.cut: int | None = None  # the budget after a 429; None: not cut
        self.epoch = 0  # bumped by every cut: a 429 from a call older than the cut does not cut again
        self.successes = 0
        self.throttled = 0

    def roles(self) -> list[str]:
        return _in_role_order(set(self.planned) | self.seen)

    def flying(self) -> tuple[tuple[str, int], ...]:
        """(role, calls in flight) of the roles with calls in flight."""
        return tuple((r, self.by_role[r]) for r in _in_role_order({r for r, n in self.by_role.items() if n}))


@dataclass
class Slot:
    """One granted slot; `throttled()` says its request got a 429."""

    key: str
    role: str | None
    epoch: int
    _limiter: "ProviderLimiter" = field(repr=False)
    rate_limited: bool = False
    waited_s: float = 0.0  # how long the call waited for this slot (the budget was full)

    def throttled(self) -> None:
        self.rate_limited = True


class ProviderLimiter:
    """A budget of concurrent LLM calls per endpoint key, with per-role reservations and AIMD on 429.

    `max_per_provider` is the default limit of every endpoint (`set_endpoint`/`configure` may give
    one endpoint its own). Gates are created lazily. Calls without a role use shared slots only.
    """

    def __init__(self, max_per_provider: int = DEFAULT_CONCURRENCY, *, grow_after: int = GROW_AFTER):
        self._lock = threading.Lock()  # one lock for all gates: counts and limits change together
        self._gates: dict[str, _Gate] = {}
        self._limit = self._check(max_per_provider)
        self._grow_after = self._check(grow_after)

    @staticmethod
    def _check(n: int) -> int:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"max_per_provider must be a positive integer, got {n!r}")
        return n

    @property
    def limit(self) -> int:
        """The default limit of an endpoint (SHOAL_LLM_CONCURRENCY)."""
        return self._limit

    def set_limit(self, n: int) -> None:
        """Change the default limit (the Settings page may); waiters are woken when it grows. Calls in
        flight above a lowered limit finish normally; new ones wait until the count drops."""
        n = self._check(n)
        with self._lock:
            self._limit = n
            for gate in self._gates.values():
                gate.cond.notify_all()

    def set_endpoint(self, key: str, *, limit: int | None = None, roles: tuple[str, ...] | list[str] = (),
                     limit_from: str = "") -> None:
        """Give endpoint `key` its own limit (None: the default) and the roles that use it."""
        if limit is not None:
            self._check(limit)
        with self._lock:
            gate = self._gate(key)
            gate.cap = limit
            gate.cap_source = limit_from or ("SHOAL_LLM_CONCURRENCY" if limit is None else "set_endpoint")
            gate.planned = tuple(roles)
            gate.cond.notify_all()

    def configure(self, settings: Any) -> None:
        """Endpoints, roles and limits from `settings` (see `endpoint_plan`); endpoints the settings no
        longer name go back to the default limit and keep only the roles seen calling them."""
        plan = endpoint_plan(settings)
        with self._lock:
            for key, gate in self._gates.items():
                if key not in plan and (gate.planned or gate.cap is not None):
                    gate.planned, gate.cap, gate.cap_source = (), None, "SHOAL_LLM_CONCURRENCY"
                    gate.cond.notify_all()
            for key, (roles, limit, source) in plan.items():
                gate = self._gate(key)
                if gate.planned != roles or gate.cap != limit:
                    gate.planned, gate.cap, gate.cap_source = roles, limit, source
                    gate.cond.notify_all()

    # the budget ------------------------------------------------------------------------------
    def _gate(self, key: str) -> _Gate:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(self._lock)
        return gate

    def _cap(self, gate: _Gate) -> int:
        return gate.cap if gate.cap is not None else self._limit

    def _reserved(self, gate: _Gate) -> dict[str, int]:
        return {r: RESERVED_PER_ROLE for r in gate.roles()}

    def _floor(self, gate: _Gate) -> int:
        return max(1, min(self._cap(gate), sum(self._reserved(gate).values())))

    def _budget(self, gate: _Gate) -> int:
        cap = self._cap(gate)
        return cap if gate.cut is None else max(1, min(gate.cut, cap))

    def _may_start(self, gate: _Gate, role: str | None) -> bool:
        budget = self._budget(gate)
        if gate.in_flight >= budget:
            return False
        reserved = self._reserved(gate)
        if sum(reserved.values()) > budget:
            return True  # the reservations do not fit: one shared pool
        if role is not None and gate.by_role.get(role, 0) < reserved.get(role, 0):
            return True  # its own reserved slot
        unused_by_others = sum(max(0, n - gate.by_role.get(r, 0)) for r, n in reserved.items() if r != role)
        return gate.in_flight + unused_by_others < budget  # a shared slot

    def _grant(self, gate: _Gate, role: str | None) -> None:
        gate.in_flight += 1
        if role is not None:
            gate.by_role[role] = gate.by_role.get(role, 0) + 1
        gate.total += 1
        gate.peak = max(gate.peak, gate.in_flight)

    def _wait(self, key: str, role: str | None, timeout: float | None) -> _Gate | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        gate = self._gate(key)
        if role is not None and role not in gate.seen:
            gate.seen.add(role)
            gate.cond.notify_all()  # a new reservation may change who may start
        gate.waiting += 1
        try:
            while not self._may_start(gate, role):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                gate.cond.wait(remaining)
        finally:
            gate.waiting -= 1
        self._grant(gate, role)
        return gate

    def acquire(self, key: str, timeout: float | None = None, role: str | None = None) -> bool:
        """Take a slot of `key` for `role` (None: a shared slot); False if `timeout` passed first."""
        with self._lock:
            return self._wait(key, role, timeout) is not None

    def _free(self, key: str, role: str | None) -> _Gate:
        gate = self._gates.get(key)
        if gate is None or gate.in_flight <= 0 or (role is not None and gate.by_role.get(role, 0) <= 0):
            raise RuntimeError(f"release of provider {key!r} without a slot")
        gate.in_flight -= 1
        if role is not None:
            gate.by_role[role] -= 1
        # Waiters differ in what they may take (their role's reservation): wake them all to look.
        gate.cond.notify_all()
        return gate

    def release(self, key: str, role: str | None = None) -> None:
        with self._lock:
            self._free(key, role)

    def _feedback(self, gate: _Gate, slot: Slot, ok: bool) -> None:
        if slot.rate_limited:
            gate.throttled += 1
            gate.successes = 0
            if slot.epoch == gate.epoch:  # the first 429 since the last cut: halve
                gate.cut = max(self._floor(gate), self._budget(gate) // 2)
                gate.epoch += 1
        elif ok and gate.cut is not None:
            gate.successes += 1
            if gate.successes >= self._grow_after:
                gate.successes = 0
                gate.cut += 1
                if gate.cut >= self._cap(gate):
                    gate.cut = None  # back to the full limit, following it again
                gate.cond.notify_all()

    @contextmanager
    def slot(self, key: str, timeout: float | None = None, role: str | None = None) -> Iterator[Slot]:
        """Hold one slot of `key` for the block. Raises TimeoutError if none came within `timeout`.
        A block that ends normally counts as a success towards growing a cut budget back; call
        `throttled()` on the yielded Slot when the request got a 429."""
        t0 = time.perf_counter()
        with self._lock:
            gate = self._wait(key, role, timeout)
            if gate is None:
                raise TimeoutError(f"no free LLM slot for provider {key} within {timeout:g}s "
                                   f"(budget {self._budget(self._gate(key))} concurrent calls)")
            held = Slot(key, role, gate.epoch, self, waited_s=time.perf_counter() - t0)
        ok = False
        try:
            yield held
            ok = True
        finally:
            with self._lock:
                self._feedback(self._free(key, role), held, ok)

    # reading ---------------------------------------------------------------------------------
    def in_flight(self) -> dict[str, int]:
        """Calls in flight per provider (providers seen so far, zeros included)."""
        with self._lock:
            return {k: g.in_flight for k, g in self._gates.items()}

    def snapshot(self) -> dict[str, ProviderStats]:
        with self._lock:
            return {k: ProviderStats(g.in_flight, g.waiting, self._cap(g), g.peak, g.total, self._budget(g),
                                     g.throttled, self._floor(g), tuple(g.roles()),
                                     g.flying())
                    for k, g in self._gates.items()}

    def budgets(self) -> list[EndpointBudget]:
        with self._lock:
            out = []
            for key, g in sorted(self._gates.items()):
                budget = self._budget(g)
                reserved = sum(self._reserved(g).values())
                out.append(EndpointBudget(
                    endpoint=key, roles=tuple(g.roles()), limit=self._cap(g), limit_from=g.cap_source,
                    budget=budget, reserved=reserved if reserved <= budget else 0, in_flight=g.in_flight,
                    waiting=g.waiting, peak=g.peak, calls=g.total, throttled=g.throttled,
                    in_flight_by_role=g.flying()))
            return out

    def reset_peaks(self) -> None:
        with self._lock:
            for g in self._gates.values():
                g.peak = g.in_flight


# ---------------------------------------------------------------------------------------------
# The process-wide limiter

_default_lock = threading.Lock()
_default: ProviderLimiter | None = None


def default_limiter(n: int | None = None) -> ProviderLimiter:
    """The process-wide limiter, shared by every LLM client. `n` (SHOAL_LLM_CONCURRENCY) sets
    its default limit: on first use, and again when the setting changed since."""
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


def budgets(settings: Any = None, limiter: ProviderLimiter | None = None) -> list[EndpointBudget]:
    """The budget of every endpoint, for the Settings and Monitor pages: the ones calls went to, and
    (given `settings`) the ones configured but not called yet. Reads; changes nothing."""
    limiter = limiter if limiter is not None else default_limiter()
    seen = {b.endpoint: b for b in limiter.budgets()}
    if settings is not None:
        default = settings.get("SHOAL_LLM_CONCURRENCY") or limiter.limit
        for key, (roles, limit, source) in endpoint_plan(settings).items():
            if key in seen:
                continue
            cap = limit if limit is not None else default
            reserved = RESERVED_PER_ROLE * len(roles)
            seen[key] = EndpointBudget(endpoint=key, roles=roles, limit=cap, limit_from=source, budget=cap,
                                       reserved=reserved if reserved <= cap else 0, in_flight=0, waiting=0,
                                       peak=0, calls=0, throttled=0)
    return [seen[k] for k in sorted(seen)]

