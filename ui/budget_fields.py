"""A run's budget on the pages: the cap fields of Home's start form, and the badge a run shows once
it has caps (spend against them; orange at 80 %, red once reached). The logic is core.llm.run_budget's."""
from __future__ import annotations

import streamlit as st

from core.llm.run_budget import BudgetStatus, budget_status
from core.runtime import Runtime
from core.work.runs import RunView

from .i18n import t

__all__ = ["budget_inputs", "budget_badge", "badge_text"]


def budget_inputs(rt: Runtime) -> tuple[int, float]:
    """The token and cost caps of a new run, inside the start form (the settings' defaults; 0 = no cap)."""
    c1, c2 = st.columns(2)
    tokens = c1.number_input(t("budget.max_tokens"), min_value=0, max_value=1_000_000_000, step=10_000,
                             value=int(rt.settings["SHOAL_RUN_MAX_TOKENS"]), help=t("budget.max_tokens_help"))
    cost = c2.number_input(t("budget.max_cost"), min_value=0.0, max_value=100_000.0, step=0.5, format="%.2f",
                           value=float(rt.settings["SHOAL_RUN_MAX_COST_USD"]), help=t("budget.max_cost_help"))
    return int(tokens), float(cost)


def badge_text(status: BudgetStatus) -> str:
    """One line: the level and the spend against each cap."""
    caps = status.caps
    parts = [t("budget.tokens", tokens=status.tokens, cap=caps.max_tokens) if caps.max_tokens
             else t("budget.tokens_free", tokens=status.tokens)]
    if caps.max_cost_usd:
        parts.append(t("budget.cost", cost=status.cost_usd, cap=caps.max_cost_usd))
        if status.unpriced:
            parts.append(t("budget.unpriced", models=", ".join(status.unpriced)))
    return t(f"budget.badge_{status.level}", spent=" · ".join(parts))


def budget_badge(rt: Runtime, run: RunView) -> None:
    """The run's budget line (nothing for a run without caps, or without a database)."""
    if not rt.db.ok:
        return
    try:
        status = budget_status(rt.db, run.id, run.params, rt.settings)
    except Exception:  # noqa: BLE001 - a badge never breaks a page
        return
    if status is None:
        return
    text = badge_text(status)
    if status.level == "reached":
        st.error(text)
    elif status.level == "warning":
        st.warning(text)
    else:
        st.caption(text)
