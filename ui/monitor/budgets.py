"""The LLM budgets panel (Monitor › Overview and the Settings page): per endpoint, what the provider
allows, the budget now (after 429 cuts), the reserved and shared slots and the calls in flight.
It shows core.llm.limits.budgets(); the budgeting itself is there."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.llm.limits import EndpointBudget, ProviderLimiter, budgets
from core.runtime import Runtime
from ui.i18n import t

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


def column_labels() -> dict[str, str]:
    """The frame keeps its column names (tests and code read them); the reader sees them translated."""
    names = {"429s": "throttled"}
    return {c: t(f"settings.col_{names.get(c, c).replace(' ', '_')}") for c in COLUMNS}


def show_budgets(rt: Runtime) -> None:
    st.subheader(t("settings.budgets_title"))
    rows = budgets(rt.settings, limiter=_limiter(rt))
    if not rows:
        st.caption(t("settings.budgets_none"))
        return
    st.dataframe(budget_frame(rows), hide_index=True, width="stretch",
                 column_config={c: st.column_config.Column(label) for c, label in column_labels().items()})
    throttled = [b for b in rows if b.budget < b.limit]
    for b in throttled:
        st.warning(t("settings.budgets_throttled", endpoint=b.endpoint, budget=b.budget, limit=b.limit))
    st.caption(t("settings.budgets_caption"))
