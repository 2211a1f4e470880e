"""The circuit breaker: a role whose model keeps failing to answer in JSON is switched off for the run.

A small or ill-suited model (a 1-3B local model, a chat model that ignores the JSON instruction)
fails every JSON node after all its asks; without a breaker each node spends its asks and its
deadline before falling back, and a run takes hours. So, per run and LLM role:

- every node call that ends without usable JSON (LlmJsonError, after its asks) is a failure; one
  that answered resets the count; while the count is above zero, a JSON node gets one ask instead
  of its three (`asks`);
- after `LLM_BREAKER_FAILURES` failures in a row (default 3; 0: never) the breaker opens: every
  later call of that role in that run raises LlmCircuitOpen at once, without a request, and its
  caller falls back to the offline analyst, as it does for any LlmError;
- the failing party is the model, not the role's prompts: once a role's breaker opens, every other
  role of the run that calls the SAME model at the same provider is switched off at its next call
  too, without spending its own failures (with one small local model behind all roles, a run
  otherwise pays LLM_BREAKER_FAILURES failed nodes, each of up to three asks, per role: at 30-60 s
  an ask, hours). Roles on other models keep their own count;
- opening emits the event ``llm.breaker_open`` (payload: role, model, provider, node, failures,
  and ``via``: the role whose failures opened it, for a role switched off by its model), which the
  run's outcome (core.work.outcomes: reason ``llm_switched_off``) and the report's notes
  (`switched_off_notes`) read back.

The state is the process's (engines, host and report of a run share it when they share a process;
a role is used by one engine job, so a worker process sees all of that role's calls). Calls without
a run id (connection tests, the command line's one-off calls) are never switched off.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger

from core.i18n import Msg

__all__ = ["BREAKER_EVENT", "CircuitBreakers", "Refusal", "announce", "breakers", "switched_off", "switched_off_notes"]

BREAKER_EVENT = "llm.breaker_open"
_MAX_RUNS = 2000  # states kept; the oldest runs are forgotten first


@dataclass
class _State:
    in_row: int = 0
    open: bool = False
    via: str = ""  # the role whose failures switched this one's model off


@dataclass(frozen=True)
class Refusal:
    """Why a call is refused: its role is switched off for the run. ``via`` is the role whose failures
    switched off this call's model (empty when the role's own failures did); ``first`` is True for
    the one call that learns of it, which announces the role (its own event)."""
    via: str = ""
    first: bool = False


class CircuitBreakers:
    """Consecutive JSON failures per (run id, role), which roles are switched off, and which models."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], _State] = {}
        self._models: dict[tuple[str, str], str] = {}  # (run id, model key) -> the role that opened it

    def is_open(self, run_id: str | None, role: str, model: str = "") -> bool:
        """Whether the role's calls in the run are refused (its own breaker, or its model's)."""
        if not run_id:
            return False
        with self._lock:
            state = self._states.get((run_id, role))
            return bool(state and state.open) or bool(model and (run_id, model) in self._models)

    def refusal(self, run_id: str | None, role: str, model: str = "") -> Refusal | None:
        """None when the call may go ahead; else why not. A role switched off by its model is marked
        open here, once (that call's Refusal has ``first``)."""
        if not run_id:
            return None
        with self._lock:
            state = self._states.get((run_id, role))
            if state and state.open:
                return Refusal(via=state.via)
            via = self._models.get((run_id, model)) if model else None
            if via is None:
                return None
            state = self._state(run_id, role)
            state.open, state.via = True, via
            return Refusal(via=via, first=True)

    def asks(self, run_id: str | None, role: str, attempts: int) -> int:
        """How many asks a JSON node of the role gets: all ``attempts``, but one while the role's
        previous node failed (its model gave no usable JSON to any of that node's asks, so a
        correction rarely helps, and each ask of a small local model costs tens of seconds). A node
        that answers resets it. With the default 3 failures, a role that never answers in JSON is
        switched off after 3 + 1 + 1 asks instead of 9."""
        if not run_id:
            return attempts
        with self._lock:
            state = self._states.get((run_id, role))
            return 1 if state is not None and state.in_row > 0 and not state.open else attempts

    def failed(self, run_id: str | None, role: str, threshold: int, model: str = "") -> int | None:
        """Count one node that got no usable JSON. Returns the failures in a row when this one opened
        the breaker (the caller announces it), else None."""
        if not run_id or threshold <= 0:
            return None
        with self._lock:
            state = self._state(run_id, role)
            if state.open:
                return None
            state.in_row += 1
            if state.in_row >= threshold:
                state.open = True
                if model:
                    self._models.setdefault((run_id, model), role)
                return state.in_row
            return None

    def _state(self, run_id: str, role: str) -> _State:
        """The (run, role) state, created when new; the oldest are forgotten past _MAX_RUNS. Under the lock."""
        state = self._states.setdefault((run_id, role), _State())
        if len(self._states) > _MAX_RUNS:
            for key in list(self._states)[: len(self._states) - _MAX_RUNS]:
                del self._states[key]
            live = {run for run, _ in self._states}
            for key in [k for k in self._models if k[0] not in live]:
                del self._models[key]
        return state

    def succeeded(self, run_id: str | None, role: str) -> None:
        if not run_id:
            return
        with self._lock:
            state = self._states.get((run_id, role))
            if state is not None and not state.open:
                state.in_row = 0

    def reset(self) -> None:
        """Forget every state (tests)."""
        with self._lock:
            self._states.clear()
            self._models.clear()


breakers = CircuitBreakers()  # the process's


def announce(events: Any, *, run_id: str | None, job_id: str | None, role: str, model: str, provider: str,
             node: str, failures: int, via: str = "", scrub: Callable[[str], str] = str) -> None:
    """Log and emit the event of one role switched off (``via``: the role whose failures switched its model off)."""
    logger.warning("llm {}: {} nodes in a row got no usable JSON from {}{}; the role is switched to the offline "
                   "analyst for the rest of run {}", role, failures, model, f" (in {via})" if via else "", run_id)
    if events is None:
        return
    try:
        events.emit(BREAKER_EVENT, run_id=run_id, job_id=job_id, source="llm", wait=True,
                    payload={"role": role, "model": model, "provider": provider, "node": node,
                             "failures": failures, "via": via})
    except Exception as exc:  # noqa: BLE001 - the breaker holds even when the event is lost
        logger.warning("{} event not recorded: {}", BREAKER_EVENT, scrub(f"{type(exc).__name__}: {exc}")[:300])


@dataclass(frozen=True)
class SwitchedOff:
    """A role the breaker switched off in a run: its model, the node and failures that did it, and
    the call path (`via`) if the failures were in a nested call."""
    role: str
    model: str
    node: str
    failures: int
    via: str


def switched_off(session: Any, run_id: str) -> list[SwitchedOff]:
    """The breaker events of a run, oldest first, one per role (its first)."""
    from sqlalchemy import select

    from core.infra.models import Event

    rows = session.scalars(select(Event.payload).where(Event.run_id == run_id, Event.type == BREAKER_EVENT)
                           .order_by(Event.id)).all()
    seen: dict[str, SwitchedOff] = {}
    for payload in rows:
        if isinstance(payload, dict) and payload.get("role") and str(payload["role"]) not in seen:
            try:
                failures = int(payload.get("failures") or 0)
            except (TypeError, ValueError):
                failures = 0
            seen[str(payload["role"])] = SwitchedOff(str(payload["role"]), str(payload.get("model") or ""),
                                                     str(payload.get("node") or ""), failures,
                                                     str(payload.get("via") or ""))
    return list(seen.values())


def switched_off_notes(db: Any, run_id: str) -> list[Msg]:
    """One note per role switched off in the run, for the report's notes (rendered in its language)."""
    try:
        with db.session() as s:
            items = switched_off(s, run_id)
    except Exception:  # noqa: BLE001 - a note never stops a report
        return []
    return [Msg("outcome.llm_switched_off_via_note" if d.via else "outcome.llm_switched_off_note",
                {"role": d.role, "model": d.model, "n": d.failures, "via": d.via})
            for d in items]
