"""LLM usage read back from the llm_calls table (the console's fuller views build on this)."""
from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from .db import Database
from .models import LlmCall

COLUMNS = ["ts", "run_id", "role", "model", "node", "input_tokens", "output_tokens", "latency_ms", "ttft_ms",
           "retries", "status", "error_kind", "trace_id"]


def llm_calls_frame(db: Database, run_id: str | None = None, role: str | None = None, limit: int = 50_000) -> pd.DataFrame:
    stmt = select(*(getattr(LlmCall, c) for c in COLUMNS)).order_by(LlmCall.id.desc()).limit(limit)
    if run_id:
        stmt = stmt.where(LlmCall.run_id == run_id)
    if role:
        stmt = stmt.where(LlmCall.role == role)
    with db.session() as s:
        rows = s.execute(stmt).all()
    return pd.DataFrame(rows, columns=COLUMNS)


def usage_by_model(frame: pd.DataFrame) -> pd.DataFrame:
    """Calls, tokens, errors and latency percentiles per role × model."""
    if frame.empty:
        return pd.DataFrame(columns=["role", "model", "calls", "errors", "input_tokens", "output_tokens",
                                     "p50_ms", "p95_ms", "ttft_p50_ms"])
    g = frame.groupby(["role", "model"], dropna=False)
    out = g.agg(calls=("status", "size"), errors=("status", lambda s: int((s != "ok").sum())),
                input_tokens=("input_tokens", "sum"), output_tokens=("output_tokens", "sum"),
                p50_ms=("latency_ms", lambda s: float(s.quantile(0.5))),
                p95_ms=("latency_ms", lambda s: float(s.quantile(0.95))),
                ttft_p50_ms=("ttft_ms", lambda s: float(s.dropna().quantile(0.5)) if s.notna().any() else None))
    return out.reset_index()
