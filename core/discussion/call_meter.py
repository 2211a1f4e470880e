"""What the LLM call behind a forum message cost: its llm_calls row's tokens, latency and price.

core.forum's readers join each message's ``llm_call_id`` here (one read of llm_calls for a page of
messages), so a ForumMessage carries its call's metering; core.discussion.metering sums it.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from core.infra.models import LlmCall


@dataclass(frozen=True)
class CallMeter:
    """What one llm_calls row costs a forum message (core.forum's readers join it)."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    latency_ms: float = 0.0


NO_CALL = CallMeter()
MISSING_CALL = CallMeter(cost_usd=None)  # the message names a call whose row is not there: cost unknown

_default_prices = None


def _prices(prices):
    """The given price table, else genai-prices' (core.llm.pricing.default_table, made once)."""
    global _default_prices
    if prices is not None:
        return prices
    if _default_prices is None:
        from core.llm.pricing import default_table
        _default_prices = default_table()
    return _default_prices


def call_meters(s, rows, prices=None) -> dict[int, CallMeter]:
    """{llm_call_id: CallMeter} for the rows' calls, in one read of llm_calls; each call priced at its
    own time with ``prices`` (a core.llm.pricing.PriceTable; None: genai-prices')."""
    ids = {r.llm_call_id for r in rows if r.llm_call_id is not None}
    if not ids:
        return {}
    out = {}
    for cid, model, ts, tin, tout, cached, latency in s.execute(
            select(LlmCall.id, LlmCall.model, LlmCall.ts, LlmCall.input_tokens, LlmCall.output_tokens,
                   LlmCall.cached_input_tokens, LlmCall.latency_ms).where(LlmCall.id.in_(ids))):
        tin, tout = int(tin or 0), int(tout or 0)
        cost = _prices(prices).cost(model, tin, tout, int(cached or 0), at=ts)
        out[int(cid)] = CallMeter(tin, tout, cost, float(latency or 0.0))
    return out
