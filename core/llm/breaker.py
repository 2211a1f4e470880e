"""The circuit breaker: a role whose model keeps failing to answer in JSON is switched off for the run.

A small or ill-suited model (a 1-3B local model, a chat model that ignores the JSON instruction)
fails every JSON node after all its asks; without a breaker each node spends its asks and its
deadline before falling back, and a run takes hours. So, per run and LLM role:

- every node call that ends without usable JSON (LlmJsonError, after its asks) is a failure; one
  that answered resets the count;
- after `LLM_BREAKER_FAILURES` failures in a row (default 3; 0: never) the breaker opens: every
  later call of that role in that run raises LlmCircuitOpen at once, without a request, and its
  caller falls back to the offline analyst, as it does for any LlmError;
- opening emits the event ``llm.breaker_open`` (payload: role, model, provider, node, failures),
  which the run's outcome (core.work.outcomes: reason ``llm_switched_off``) and the report's notes
  (`switched_off_notes`) read back.

The state is the process's (engines, host and report of a run share it when they share a process;
a role is used by one engine job, so a worker process sees all of that role's calls). Calls without
a run id (connection tests, the command line's one-off calls) are never switched off.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from core.i18n import Msg

__all__ = ["BREAKER_EVENT", "CircuitBreakers", "breakers", "switched_off", "switched_off_notes"]

BREAKER_EVENT = "llm.breaker_open"
_MAX_RUNS = 2000  # states kept; the oldest runs are forgotten first


@dataclass
class _State:
    in_row: int = 0
    open: bool = False


class CircuitBreakers:
    """Consecutive JSON failures per (run id, role), and which roles are switched off."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], _State] = {}

    def is_open(self, run_id: str | None, role: str) -> bool:
        if not run_id:
            return False
        with self._lock:
            state = self._states.get((run_id, role))
            return bool(state and state.open)

    def failed(self, run_id: str | None, role: str, threshold: int) -> int | None:
        """Count one node that got no usable JSON. Returns the failures in a row when this one opened
        the breaker (the caller announces it), else None."""
        if not run_id or threshold <= 0:
            return None
        with self._lock:
            state = self._states.setdefault((run_id, role), _State())
            if len(self._states) > _MAX_RUNS:
                for key in list(self._states)[: len(self._states) - _MAX_RUNS]:
                    del self._states[key]
            if state.open:
                return None
            state.in_row += 1
            if state.in_row >= threshold:
                state.open = True
                return state.in_row
            return None

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


breakers = CircuitBreakers()  # the process's


def switched_off(session: Any, run_id: str) -> list[dict]:
    """The breaker events of a run, oldest first: [{"role", "model", "node", "failures"}], one per role."""
    from sqlalchemy import select

    from core.infra.models import Event

    rows = session.scalars(select(Event.payload).where(Event.run_id == run_id, Event.type == BREAKER_EVENT)
                           .order_by(Event.id)).all()
    seen: dict[str, dict] = {}
    for payload in rows:
        if isinstance(payload, dict) and payload.get("role") and payload["role"] not in seen:
            seen[str(payload["role"])] = {"role": str(payload["role"]), "model": str(payload.get("model") or ""),
                                          "node": str(payload.get("node") or ""),
                                          "failures": int(payload.get("failures") or 0)}
    return list(seen.values())


def switched_off_notes(db: Any, run_id: str) -> list[Msg]:
    """One note per role switched off in the run, for the report's notes (rendered in its language)."""
    try:
        with db.session() as s:
            items = switched_off(s, run_id)
    except Exception:  # noqa: BLE001 - a note never stops a report
        return []
    return [Msg("outcome.llm_switched_off_note", {"role": d["role"], "model": d["model"], "n": d["failures"]})
            for d in items]
