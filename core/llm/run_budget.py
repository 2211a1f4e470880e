"""A run's budget: caps on its tokens and its cost that hold, even with paragraphs racing for the last of it.

A run may carry caps (Run.params["budget"]: ``{"max_tokens": N, "max_cost_usd": X}``, 0 = no cap; the
defaults are SHOAL_RUN_MAX_TOKENS and SHOAL_RUN_MAX_COST_USD, the Home form and ``core run
--max-tokens/--max-cost`` set them per run). What a run has spent is the sum of its ``llm_calls``
rows (failed calls included: a provider bills them), fed live by the LLM client's accounting.

Reservations. A node may start only while ``spent + reserved < cap``, and starting reserves what it
may cost: its ``max_tokens`` (core.llm.budgets) plus its input, guessed a quarter over the largest prompt
this run has sent for that node (for a new node: over any node's, and at least DEFAULT_INPUT_GUESS); when its call is made the
reservation is topped up to the call's real bound (the prompt's characters, an upper bound of its
tokens, plus max_tokens). Each recorded call settles: its actual usage moves from reserved to spent.
So with N paragraphs in parallel, the last node admitted is admitted only while the others' claims
still leave room: the spend ends at most one node's usage over the cap (plus what calls of admitted
nodes needed beyond their guess: ``RunBudget.unreserved``), never N nodes' worth.

The check is between nodes, never inside one: a node that was admitted finishes (its JSON asks too),
a stream is never cut for the budget.

- The engines (core.research.engine) ask ``admitted(...)`` before every LLM node: refused, a
  paragraph stops (BudgetReached) and the structure or formatting node is done by the offline analyst.
- Any other caller (forum host, report writer, keyword optimiser) is stopped at its node's start by
  the client's gate (LlmBudgetReached, an LlmError: each falls back as it does for any LLM error; no
  llm_calls row is written, no request made). The host job and the report job go offline at once
  when the budget is already spent (``exhausted``).
- At 80 % of a cap: the event ``run.budget_warning`` once per run; at the first refusal:
  ``run.budget_reached`` (core.work.outcomes: reason ``budget_reached``); an engine that stopped:
  ``engine.budget_stopped`` {engine, written, planned}.
- Unpriced models (core.llm.pricing) count against the token cap; the cost cap cannot see them
  (``unpriced`` names them, and the report's note says so).

Cross-process: a process loads a run's state from the database the first time one of its jobs
needs it (the caps from the run, the spend from its llm_calls rows, whether the events were already
sent), and re-reads the spend at most every SYNC_SECONDS when admitting a node, so a second worker
sees what the first spent. State is per process, bounded (_MAX_RUNS).
"""
from __future__ import annotations

import contextvars
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from loguru import logger

from core.i18n import Msg
from core.llm.errors import LlmError

__all__ = ["BUDGET_WARNING", "BUDGET_REACHED", "ENGINE_STOPPED", "WARN_AT", "Caps", "RunBudget", "RunBudgets",
           "budgets", "BudgetReached", "LlmBudgetReached", "caps_of", "budget_params", "admitted", "gate", "reserve",
           "settle", "exhausted", "engine_stopped", "progress", "budget_notes", "BudgetStatus", "budget_status"]

BUDGET_WARNING = "run.budget_warning"
BUDGET_REACHED = "run.budget_reached"
ENGINE_STOPPED = "engine.budget_stopped"
WARN_AT = 0.8
DEFAULT_INPUT_GUESS = 4000  # tokens a node's prompt is assumed to take before the run has sent one
INPUT_MARGIN = 1.25  # prompts of one node vary with the sources they carry
SYNC_SECONDS = 2.0
_MAX_RUNS = 2000


class BudgetReached(Exception):
    """An engine's node was refused: the run's budget is spent (the paragraph stops here)."""


class LlmBudgetReached(LlmError):
    """A node call refused at its start because the run's budget is spent: no request was made."""
    default_kind = "budget"


@dataclass(frozen=True)
class Caps:
    max_tokens: int = 0  # 0 = no cap
    max_cost_usd: float = 0.0

    @property
    def active(self) -> bool:
        return self.max_tokens > 0 or self.max_cost_usd > 0


def caps_of(params: Mapping | None) -> Caps:
    """The caps a run was started with (Run.params["budget"]); none for older runs."""
    raw = (params or {}).get("budget") if isinstance(params, Mapping) else None
    if not isinstance(raw, Mapping):
        return Caps()
    try:
        return Caps(max(0, int(raw.get("max_tokens") or 0)), max(0.0, float(raw.get("max_cost_usd") or 0)))
    except (TypeError, ValueError):
        return Caps()


def budget_params(settings: Any, max_tokens: int | None = None, max_cost: float | None = None) -> dict:
    """The run's stored caps: the given ones, else the settings' defaults; ValueError below 0."""
    tokens = int(settings["SHOAL_RUN_MAX_TOKENS"] if max_tokens is None else max_tokens)
    cost = float(settings["SHOAL_RUN_MAX_COST_USD"] if max_cost is None else max_cost)
    if tokens < 0 or cost < 0:
        raise ValueError("a budget cap cannot be negative (0 = no cap)")
    return {"max_tokens": tokens, "max_cost_usd": round(cost, 6)}


# -- prices -------------------------------------------------------------------------------------------
_prices_lock = threading.Lock()
_prices: dict[Any, Any] = {}


def _price_table(settings: Any) -> Any:
    """The price table the console uses (SHOAL_PRICE_TABLE or data/prices.json, then genai-prices)."""
    from core.llm.pricing import load_price_table

    path: Path | None = None
    try:
        value = settings.get("SHOAL_PRICE_TABLE") if settings is not None else None
        if value:
            path = Path(value) if Path(value).is_absolute() else settings.project_root / value
        elif settings is not None and (settings.data_dir / "prices.json").is_file():
            path = settings.data_dir / "prices.json"
        mtime = path.stat().st_mtime if path is not None and path.exists() else None
    except (OSError, AttributeError, TypeError):
        path, mtime = None, None
    key = (str(path) if path else None, mtime)
    with _prices_lock:
        if key not in _prices:
            _prices.clear()
            _prices[key] = load_price_table(path)
        return _prices[key]


def _cost(table: Any, model: str, tokens_in: int, tokens_out: int, cached: int = 0) -> float | None:
    try:
        return table.cost(model, tokens_in, tokens_out, cached)
    except Exception:  # noqa: BLE001 - a price lookup never breaks a call
        return None


# -- one run's state ------------------------------------------------------------------------------------
@dataclass
class _Ticket:
    """One admitted node's claim: what is still reserved for it."""
    budget: "RunBudget"
    node: str
    tokens: int = 0
    cost: float = 0.0
    guess: int = 0


@dataclass
class RunBudget:
    """What one run may spend, has spent (settled) and has reserved for nodes in flight. Thread-safe."""
    run_id: str
    caps: Caps
    tokens: int = 0
    cost: float = 0.0  # priced calls only
    reserved_tokens: int = 0
    reserved_cost: float = 0.0
    unpriced: set = field(default_factory=set)
    warned: bool = False
    reached: bool = False
    synced_at: float = 0.0
    unreserved: int = 0  # tokens calls needed beyond their node's admission guess (the bound's slack)
    _inputs: dict = field(default_factory=dict)  # node -> the largest prompt bound seen
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _over(self, tokens: int, cost: float) -> bool:
        c = self.caps
        return (c.max_tokens > 0 and tokens >= c.max_tokens) or (c.max_cost_usd > 0 and cost >= c.max_cost_usd)

    def fraction(self) -> float:
        """The settled spend as a share of the tighter cap."""
        shares = []
        if self.caps.max_tokens > 0:
            shares.append(self.tokens / self.caps.max_tokens)
        if self.caps.max_cost_usd > 0:
            shares.append(self.cost / self.caps.max_cost_usd)
        return max(shares, default=0.0)

    def is_spent(self) -> bool:
        with self._lock:
            return self.reached or self._over(self.tokens, self.cost)

    def input_guess(self, node: str) -> int:
        """The prompt a node is reserved for: a quarter over the largest this node has sent in the run;
        for a node not seen yet, at least DEFAULT_INPUT_GUESS."""
        with self._lock:
            seen = self._inputs.get(node)
            if seen:
                return int(seen * INPUT_MARGIN)
            return int(max(DEFAULT_INPUT_GUESS, max(self._inputs.values(), default=0) * INPUT_MARGIN))

    def admit(self, node: str, tokens: int, cost: float) -> _Ticket | None:
        """Atomically: None when spent + reserved has reached a cap, else a ticket reserving `tokens`
        (and `cost`). Not sticky: a node may start again once released reservations leave room."""
        with self._lock:
            if self._over(self.tokens + self.reserved_tokens, self.cost + self.reserved_cost):
                return None
            self.reserved_tokens += tokens
            self.reserved_cost += cost
            return _Ticket(self, node, tokens, cost, tokens)

    def mark_reached(self) -> bool:
        """A node was refused: the budget is reached (the host and the report go offline). True the
        first time in this process (the caller announces it)."""
        with self._lock:
            first, self.reached = not self.reached, True
            return first

    def top_up(self, ticket: _Ticket, tokens: int, cost: float) -> None:
        """A call of an admitted node: its reservation covers at least the call's bound."""
        with self._lock:
            more_t, more_c = max(0, tokens - ticket.tokens), max(0.0, cost - ticket.cost)
            ticket.tokens += more_t
            ticket.cost += more_c
            self.reserved_tokens += more_t
            self.reserved_cost += more_c
            self.unreserved += more_t

    def release(self, ticket: _Ticket) -> None:
        with self._lock:
            self.reserved_tokens = max(0, self.reserved_tokens - ticket.tokens)
            self.reserved_cost = max(0.0, self.reserved_cost - ticket.cost)
            ticket.tokens, ticket.cost = 0, 0.0

    def settle(self, ticket: _Ticket | None, node: str, tokens: int, cost: float | None, model: str,
               prompt_bound: int = 0) -> tuple[bool, dict]:
        """Count one recorded call; returns (crossed WARN_AT just now, the figures)."""
        with self._lock:
            before = self.fraction()
            self.tokens += tokens
            if cost is None:
                self.unpriced.add(model)
            else:
                self.cost += cost
            if ticket is not None:
                used_t, used_c = min(ticket.tokens, tokens), min(ticket.cost, cost or 0.0)
                ticket.tokens -= used_t
                ticket.cost -= used_c
                self.reserved_tokens = max(0, self.reserved_tokens - used_t)
                self.reserved_cost = max(0.0, self.reserved_cost - used_c)
            if node and prompt_bound:
                self._inputs[node] = max(self._inputs.get(node, 0), prompt_bound)
            warn = not self.warned and before < WARN_AT <= self.fraction()
            if warn:
                self.warned = True
            return warn, self._figures()

    def _figures(self) -> dict:
        return {"tokens": self.tokens, "cost_usd": round(self.cost, 6), "max_tokens": self.caps.max_tokens,
                "max_cost_usd": self.caps.max_cost_usd, "unpriced_models": sorted(self.unpriced)}

    def figures(self) -> dict:
        with self._lock:
            return self._figures()


class RunBudgets:
    """The process's run budgets, loaded from the database on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, RunBudget | None] = {}

    def state(self, db: Any, run_id: str | None, settings: Any = None) -> RunBudget | None:
        """The run's budget, or None when it has no caps (or cannot be read)."""
        if not run_id or db is None:
            return None
        with self._lock:
            if run_id in self._runs:
                return self._runs[run_id]
        budget = _load(db, run_id, settings)
        if budget is _UNREAD:
            return None  # not enforced this time; read again at the next call
        with self._lock:
            if run_id not in self._runs:
                self._runs[run_id] = budget
                for key in list(self._runs)[: max(0, len(self._runs) - _MAX_RUNS)]:
                    del self._runs[key]
            return self._runs[run_id]

    def sync(self, db: Any, budget: RunBudget, settings: Any = None, *, force: bool = False) -> None:
        """Re-read the spend from llm_calls (another process's calls), at most every SYNC_SECONDS."""
        now = time.monotonic()
        if not force and now - budget.synced_at < SYNC_SECONDS:
            return
        budget.synced_at = now
        try:
            tokens, cost, unpriced = _spent(db, budget.run_id, settings, budget.caps)
        except Exception as exc:  # noqa: BLE001 - the local figures hold when the database does not answer
            logger.warning("run budget of {}: spend not re-read: {}", budget.run_id, type(exc).__name__)
            return
        with budget._lock:
            budget.tokens = max(budget.tokens, tokens)
            budget.cost = max(budget.cost, cost)
            budget.unpriced |= unpriced

    def forget(self, run_id: str | None = None) -> None:
        """Forget one run's state, or every one (tests)."""
        with self._lock:
            if run_id is None:
                self._runs.clear()
            else:
                self._runs.pop(run_id, None)


budgets = RunBudgets()  # the process's


def _spent(db: Any, run_id: str, settings: Any, caps: Caps) -> tuple[int, float, set]:
    from sqlalchemy import func, select

    from core.infra.models import LlmCall

    with db.session() as s:
        rows = s.execute(select(LlmCall.model, func.sum(LlmCall.input_tokens), func.sum(LlmCall.output_tokens),
                                func.sum(LlmCall.cached_input_tokens))
                         .where(LlmCall.run_id == run_id).group_by(LlmCall.model)).all()
    tokens, cost, unpriced = 0, 0.0, set()
    table = _price_table(settings) if caps.max_cost_usd > 0 and rows else None
    for model, tin, tout, cached in rows:
        tokens += int(tin or 0) + int(tout or 0)
        if table is not None:
            c = _cost(table, model, int(tin or 0), int(tout or 0), int(cached or 0))
            if c is None:
                unpriced.add(model)
            else:
                cost += c
    return tokens, cost, unpriced


_UNREAD: Any = object()  # the database did not answer: nothing cached


def _load(db: Any, run_id: str, settings: Any) -> Any:
    from sqlalchemy import select

    from core.infra.models import Event, Run

    try:
        with db.session() as s:
            params = s.scalar(select(Run.params).where(Run.id == run_id))
            caps = caps_of(params)
            if not caps.active:
                return None
            sent = set(s.scalars(select(Event.type).where(Event.run_id == run_id,
                                                          Event.type.in_((BUDGET_WARNING, BUDGET_REACHED)))))
        budget = RunBudget(run_id, caps, warned=BUDGET_WARNING in sent, reached=BUDGET_REACHED in sent)
        budgets.sync(db, budget, settings, force=True)
        return budget
    except Exception as exc:  # noqa: BLE001 - a budget that cannot be read is not enforced; say so
        logger.warning("run budget of {} not read ({}): not enforced for now", run_id, type(exc).__name__)
        return _UNREAD


# -- events ---------------------------------------------------------------------------------------------
def _emit(events: Any, type_: str, run_id: str, job_id: str | None, payload: dict) -> None:
    if events is None:
        return
    try:
        events.emit(type_, run_id=run_id, job_id=job_id, source="budget", payload=payload, wait=True)
    except Exception as exc:  # noqa: BLE001 - the budget holds even when its event is lost
        logger.warning("{} event not recorded: {}", type_, type(exc).__name__)


def _refused(budget: RunBudget, events: Any, job_id: str | None, node: str) -> None:
    if budget.mark_reached():
        logger.warning("run {}: budget reached ({}); no new LLM node starts", budget.run_id, budget.figures())
        _emit(events, BUDGET_REACHED, budget.run_id, job_id, {**budget.figures(), "node": node})


# -- the engines' admission -----------------------------------------------------------------------------
_ticket: contextvars.ContextVar[_Ticket | None] = contextvars.ContextVar("shoal_budget_ticket", default=None)
_call: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("shoal_budget_call", default=None)
_gated: contextvars.ContextVar[_Ticket | None] = contextvars.ContextVar("shoal_budget_gated", default=None)


@contextmanager
def admitted(ctx: Any, node: str, reasoner: Any = None) -> Iterator[None]:
    """Around one LLM node of an engine (ctx: its JobContext; node: its name in core.llm.budgets, e.g.
    FirstSummaryNode): reserve the node's bound, or raise BudgetReached. Offline nodes and runs without
    caps pass freely."""
    if getattr(reasoner, "mode", "llm") == "offline":
        yield
        return
    budget = budgets.state(ctx.db, ctx.run_id, ctx.settings)
    if budget is None:
        yield
        return
    from core.llm.budgets import node_budget

    budgets.sync(ctx.db, budget, ctx.settings)
    out = node_budget(node, ctx.settings).max_tokens
    guess = budget.input_guess(node)
    model = getattr(getattr(reasoner, "client", None), "model", "") or ""
    cost = 0.0
    if budget.caps.max_cost_usd > 0 and model:
        cost = _cost(_price_table(ctx.settings), model, guess, out) or 0.0
    ticket = budget.admit(node, out + guess, cost)
    if ticket is None:
        _refused(budget, ctx.events, ctx.job_id, node)
        raise BudgetReached(f"the run's budget is reached ({budget.figures()})")
    token = _ticket.set(ticket)
    try:
        yield
    finally:
        _ticket.reset(token)
        budget.release(ticket)


# -- the client's hooks (core/llm/client.py) ------------------------------------------------------------
def gate(client: Any, node: str, run_id: str | None) -> None:
    """At a node call's start (outside an admitted engine node: the host, the report, the keyword
    optimiser): admit it with the node's bound reserved, or LlmBudgetReached once the run's budget is
    spent. No request, no llm_calls row for a refused node."""
    _gated.set(None)
    if not run_id or client.db is None:
        return
    ticket = _ticket.get()
    if ticket is not None and ticket.budget.run_id == run_id:
        return
    budget = budgets.state(client.db, run_id, client.settings)
    if budget is None:
        return
    from core.llm.budgets import node_budget

    budgets.sync(client.db, budget, client.settings)
    out = node_budget(node, client.settings).max_tokens
    guess = budget.input_guess(node)
    cost = (_cost(_price_table(client.settings), client.model, guess, out) or 0.0) if budget.caps.max_cost_usd > 0 \
        else 0.0
    ticket = budget.admit(node, out + guess, cost)
    if ticket is None:
        _refused(budget, client.events, None, node)
        where = f"{client.role}/{node}" if node else client.role
        raise LlmBudgetReached(f"{where}: the run's budget is reached ({_caps_text(budget.caps)}); no LLM call "
                               "was made", role=client.role, provider=client.provider)
    _gated.set(ticket)  # the node's first call takes it over (reserve) and releases it when settled


def reserve(client: Any, run_id: str | None, node: str, messages: list[dict], max_tokens: int | None) -> None:
    """Before a call: reserve its bound (the prompt's characters, an upper bound of its tokens, plus
    max_tokens), topping up the admitted node's ticket."""
    _call.set(None)
    gated = _gated.get()
    _gated.set(None)
    if not run_id or client.db is None:
        return
    budget = budgets.state(client.db, run_id, client.settings)
    if budget is None:
        return
    prompt = sum(len(str(m.get("content") or "")) + 4 for m in messages)
    tokens = prompt + int(max_tokens or 0)
    cost = 0.0
    if budget.caps.max_cost_usd > 0:
        cost = _cost(_price_table(client.settings), client.model, prompt, int(max_tokens or 0)) or 0.0
    ticket, own = _ticket.get(), False
    if ticket is None or ticket.budget is not budget:
        ticket, own = (gated, True) if gated is not None and gated.budget is budget else (None, True)
    if ticket is None:  # a re-ask of a gated node: a reservation of its own
        ticket = budget.admit(node, 0, 0.0) or _Ticket(budget, node)
    budget.top_up(ticket, tokens, cost)
    _call.set((budget, ticket, prompt, own))


def settle(client: Any, run_id: str | None, node: str, input_tokens: int, output_tokens: int,
           cached_input_tokens: int | None = None, job_id: str | None = None) -> None:
    """After a call is recorded: its usage moves from reserved to spent; at WARN_AT, the warning."""
    pending = _call.get()
    _call.set(None)
    if not run_id or client.db is None:
        return
    try:
        budget = budgets.state(client.db, run_id, client.settings)
        if budget is None:
            return
        ticket, prompt, own = (pending[1], pending[2], pending[3]) if pending and pending[0] is budget \
            else (None, 0, False)
        used = int(input_tokens or 0) + int(output_tokens or 0)
        cost = _cost(_price_table(client.settings), client.model, int(input_tokens or 0), int(output_tokens or 0),
                     int(cached_input_tokens or 0)) if budget.caps.max_cost_usd > 0 else 0.0
        warn, figures = budget.settle(ticket, node, used, cost, client.model, prompt)
        if ticket is not None and own:
            budget.release(ticket)  # a call outside an engine node: its reservation ends with it
        if warn:
            logger.warning("run {}: {:.0%} of its budget is spent ({})", run_id, WARN_AT, figures)
            _emit(client.events, BUDGET_WARNING, run_id, job_id, figures)
    except Exception as exc:  # noqa: BLE001 - accounting never breaks a call
        logger.warning("run budget of {} not updated: {}", run_id, type(exc).__name__)


def _caps_text(caps: Caps) -> str:
    parts = [f"SHOAL_RUN_MAX_TOKENS={caps.max_tokens}"] if caps.max_tokens else []
    return ", ".join(parts + ([f"SHOAL_RUN_MAX_COST_USD={caps.max_cost_usd:g}"] if caps.max_cost_usd else []))


def exhausted(db: Any, run_id: str | None, settings: Any = None) -> bool:
    """Whether the run's budget is spent (reached, or its settled spend at a cap): the host and the
    report then go offline at once."""
    budget = budgets.state(db, run_id, settings)
    if budget is None:
        return False
    budgets.sync(db, budget, settings, force=True)
    return budget.is_spent()


# -- what the engines, the outcome and the report say ---------------------------------------------------
def engine_stopped(ctx: Any, engine: str, results: list) -> list:
    """An engine the budget stopped: its event (paragraphs written of planned) and only the paragraphs
    that were written."""
    written = [r for r in results if r.summary]
    ctx.emit(ENGINE_STOPPED, {"engine": engine, "written": len(written), "planned": len(results)})
    return written


@dataclass(frozen=True)
class BudgetProgress:
    """Where a run stood when its budget was reached: paragraphs written of those planned over its
    engines, and the figures (the budget.reached event's payload: spend against the caps)."""
    written: int
    planned: int
    figures: dict


def progress(session: Any, run_id: str) -> BudgetProgress | None:
    """When the run's budget was reached, how far its engines got (an engine the budget did not stop
    counts its paragraphs as planned and written); else None."""
    from sqlalchemy import select

    from core.infra.models import Event, Job

    rows = session.execute(select(Event.type, Event.payload).where(
        Event.run_id == run_id, Event.type.in_((BUDGET_REACHED, ENGINE_STOPPED))).order_by(Event.id)).all()
    reached = [p for t, p in rows if t == BUDGET_REACHED and isinstance(p, dict)]
    if not reached:
        return None
    stopped = {str(p.get("engine")): p for t, p in rows if t == ENGINE_STOPPED and isinstance(p, dict)}
    written = planned = 0
    latest: dict[str, Any] = {}
    for name, kind, result in session.execute(select(Job.name, Job.kind, Job.result).where(
            Job.run_id == run_id, Job.kind.in_(("query", "media", "insight"))).order_by(Job.created_at, Job.id)):
        latest[kind] = result
    for kind, result in latest.items():
        if kind in stopped:
            written += int(stopped[kind].get("written") or 0)
            planned += int(stopped[kind].get("planned") or 0)
        elif isinstance(result, dict) and isinstance(result.get("paragraphs"), list):
            written += len(result["paragraphs"])
            planned += len(result["paragraphs"])
    return BudgetProgress(written, planned, reached[0])


def budget_notes(db: Any, run_id: str, *, report_offline: bool = False) -> list[Msg]:
    """The report's notes: the budget reached after N of M paragraphs (and that the report ran
    offline), and the models the cost cap could not see."""
    try:
        with db.session() as s:
            got = progress(s, run_id)
        budget = budgets.state(db, run_id)
    except Exception:  # noqa: BLE001 - a note never stops a report
        return []
    out: list[Msg] = []
    if got is not None:
        out.append(Msg("budget.report_reached", {"n": got.written, "m": got.planned}))
        if report_offline:
            out.append(Msg("budget.report_offline"))
    if budget is not None and budget.caps.max_cost_usd > 0 and budget.unpriced:
        out.append(Msg("budget.unpriced_note", {"models": ", ".join(sorted(budget.unpriced))}))
    return out


@dataclass(frozen=True)
class BudgetStatus:
    """A run's budget for the pages: its caps, spend and level ('ok', 'warning', 'reached')."""
    caps: Caps
    tokens: int
    cost_usd: float
    level: str
    unpriced: tuple[str, ...] = ()


def budget_status(db: Any, run_id: str, params: Mapping | None, settings: Any = None) -> BudgetStatus | None:
    """What the badge shows; None for a run without caps."""
    caps = caps_of(params)
    if not caps.active:
        return None
    from sqlalchemy import select

    from core.infra.models import Event

    with db.session() as s:
        sent = set(s.scalars(select(Event.type).where(Event.run_id == run_id,
                                                      Event.type.in_((BUDGET_WARNING, BUDGET_REACHED)))))
    tokens, cost, unpriced = _spent(db, run_id, settings, caps)
    level = "reached" if BUDGET_REACHED in sent else "warning" if BUDGET_WARNING in sent else "ok"
    return BudgetStatus(caps, tokens, cost, level, tuple(sorted(unpriced)))
