"""The LLM budgets panel (Monitor › Overview and the Settings page): per endpoint, what the provider
allows, the budget now (after 429 cuts), the reserved and shared slots and the calls in flight.
It shows core.llm.limits.budgets(); the budgeting itself is there."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.llm.limits import EndpointBudget, ProviderLimiter, budgets
from core.runtime import Runtime

COLUMNS = ["endpoint", "roles", "limit", "limit from", "budget now", "reserved", "shared", "in flight",
           "in flight per role", "waiting", "peak", "calls", "429s"]


def budget_frame(rows: list[EndpointBudget]) -> pd.DataFrame:
    return pd.DataFrame([{
        "endpoint": b.endpoint, "roles": ", ".join(b.roles) or "—", "limit": b.limit, "limit from": b.limit_from,
        "budget now": b.budget, "reserved": b.reserved, "shared": b.shared, "in flight": b.in_flight,
        "in flight per role": ", ".join(f"{r} {n}" for r, n in b.in_flight_by_role) or "—",
        "waiting": b.waiting, "peak": b.peak, "calls": b.calls, "429s": b.throttled} for b in rows],
        columns=COLUMNS)


def _limiter(rt: Runtime) -> ProviderLimiter | None:
    """The limiter this process's jobs use (the supervisor's), else the process-wide one."""
    limits = getattr(rt.supervisor, "limits", None)
    return limits if isinstance(limits, ProviderLimiter) else None


def show_budgets(rt: Runtime) -> None:
    st.subheader("LLM budgets")
    rows = budgets(rt.settings, limiter=_limiter(rt))
    if not rows:
        st.caption("No LLM endpoint is configured or called yet (offline runs make no LLM calls).")
        return
    st.dataframe(budget_frame(rows), hide_index=True, width="stretch")
    throttled = [b for b in rows if b.budget < b.limit]
    for b in throttled:
        st.warning(f"{b.endpoint} answered HTTP 429 (rate limited): its budget is {b.budget} of {b.limit} "
                   "concurrent calls and grows back one slot at a time as calls succeed.")
    st.caption("Concurrent LLM calls per endpoint: each role using it keeps one slot reserved (so the forum "
               "host and the report never wait behind the engines, nor the reverse) and shares the rest. "
               "Limits: SHOAL_LLM_CONCURRENCY, or a role's <ROLE>_CONCURRENCY (the smallest wins).")
