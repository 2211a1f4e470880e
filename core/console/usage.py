"""LLM usage, cost, latency and errors, read back from the llm_calls table with pandas.

Every LLM call is one row (core.llm.client writes it). The views here are plain DataFrames a page
can show or chart:

  llm_calls_frame(db, ...)            the rows (newest first, bounded by `limit`)
  usage_table(frame, prices, period)  calls, tokens, errors, retries and cost per period x role x model
  latency_table(frame)                p50/p95/p99 latency and time to first token per role x model
  error_timeline(frame, freq)         calls, errors, error % and retries per time bucket
  errors_by_kind(frame, freq)         failed calls per bucket x error kind (timeout, rate_limit, parse...)
  retry_events_frame(db) / retries_by_kind(...)   retries by kind from the `retry` events
  run_usage(db, run_id, prices)       one run's totals as a dict (for Home and the engine pages)

Cost: `cost_usd` is a float, NaN (pandas' None) when the model is unpriced, never 0;
`cost_label` says "unpriced" in words. Each call is priced at its own time (genai-prices records
price changes and DeepSeek's off-peak hours; the price file's prices hold at all times), with its
cached input tokens at the cached rate (core.llm.pricing). Percentiles use linear interpolation between closest
ranks (numpy's and pandas' default): on latencies 1..100 ms, p50 = 50.5, p95 = 95.05,
p99 = 99.01. Latency percentiles include failed calls unless `ok_only=True` (a timeout's
latency is part of what the operator waits for). Times are naive UTC like the database.

Reading functions never raise for a database problem: they return an empty frame whose
`attrs["error"]` says why (run_usage: the dict's "error").
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Iterable, Sequence

from sqlalchemy import select

from core.infra.db import Database, explain
from core.infra.models import Event, LlmCall
from core.llm.pricing import UNPRICED, PriceTable, default_table
from core.infra.events import flush_queued

if TYPE_CHECKING:  # pandas is imported inside the functions that build frames: a page (or the runtime)
    import pandas as pd  # that builds none does not load it

COLUMNS = ["ts", "run_id", "role", "model", "node", "input_tokens", "output_tokens", "latency_ms", "ttft_ms",
           "retries", "status", "error_kind", "trace_id", "provider", "job_id", "cached_input_tokens"]

PERIODS = ("hour", "day", "week", "month", "all")


def _empty(columns: Sequence[str], error: str = "") -> pd.DataFrame:
    import pandas as pd
    frame = pd.DataFrame(columns=list(columns))
    if error:
        frame.attrs["error"] = error
    return frame


def _error_text(exc: BaseException) -> str:
    return explain(exc) if hasattr(exc, "orig") else f"{type(exc).__name__}: {exc}"[:300]


def llm_calls_frame(db: Database, run_id: str | None = None, role: str | None = None, limit: int = 50_000, *,
                    since: datetime | None = None, until: datetime | None = None, model: str | None = None,
                    trace_prefix: str | None = None) -> pd.DataFrame:
    """LLM call rows, newest first, at most `limit`. A database problem gives an empty frame
    with `attrs["error"]`."""
    import pandas as pd
    stmt = select(*(getattr(LlmCall, c) for c in COLUMNS)).order_by(LlmCall.id.desc()).limit(limit)
    if run_id:
        stmt = stmt.where(LlmCall.run_id == run_id)
    if role:
        stmt = stmt.where(LlmCall.role == role)
    if model:
        stmt = stmt.where(LlmCall.model == model)
    if since is not None:
        stmt = stmt.where(LlmCall.ts >= since)
    if until is not None:
        stmt = stmt.where(LlmCall.ts < until)
    if trace_prefix:
        stmt = stmt.where(LlmCall.trace_id.like(like_prefix(trace_prefix), escape="\\"))
    try:
        with db.session() as s:
            rows = s.execute(stmt).all()
    except Exception as exc:  # noqa: BLE001 - the console shows what it can
        return _empty(COLUMNS, f"LLM calls cannot be read: {_error_text(exc)}")
    return pd.DataFrame(rows, columns=COLUMNS)


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching values that start with `prefix` (wildcards escaped with \\)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with the types the aggregations rely on (a frame built by hand may lack columns)."""
    import pandas as pd
    f = frame.copy()
    for col in COLUMNS:
        if col not in f.columns:
            f[col] = None
    f["ts"] = pd.to_datetime(f["ts"], errors="coerce")
    for col in ("input_tokens", "output_tokens", "retries", "cached_input_tokens"):
        f[col] = pd.to_numeric(f[col], errors="coerce").fillna(0).astype("int64")
    for col in ("latency_ms", "ttft_ms"):
        f[col] = pd.to_numeric(f[col], errors="coerce").astype("float64")
    for col in ("role", "model", "node", "status", "trace_id", "provider"):
        f[col] = f[col].fillna("").astype(str)
    f["status"] = f["status"].replace("", "ok")
    f["is_error"] = (f["status"] != "ok").astype("int64")
    return f


def bucket(ts: pd.Series, period: str) -> pd.Series:
    """The start of each time's bucket: 'hour', 'day', 'week' (Monday), 'month', or any pandas
    fixed frequency such as '5min' or '15min'."""
    import pandas as pd
    ts = pd.to_datetime(ts, errors="coerce")
    if period == "month":
        return ts.dt.to_period("M").dt.start_time
    if period == "week":
        return ts.dt.to_period("W-SUN").dt.start_time
    if period == "day":
        return ts.dt.floor("D")
    if period == "hour":
        return ts.dt.floor("h")
    return ts.dt.floor(period)


PRICE_STEP = "30min"  # calls are priced per half hour: genai-prices' time-of-day prices change on the half hour


def with_cost(frame: pd.DataFrame, prices: PriceTable | None = None) -> pd.DataFrame:
    """`frame` (prepared) plus `cost_usd` (NaN when the model is unpriced) and `priced`. Each call is
    priced at its half hour (a call without a time: at today's list price), cached input tokens at
    the cached rate."""
    import pandas as pd
    prices = prices if prices is not None else default_table()
    f = frame if "is_error" in frame.columns else prepare(frame)
    f = f.copy()
    # the stored (UTC) time: a page that shows times in its zone keeps them in `ts_utc`
    when = pd.to_datetime(f["ts_utc"] if "ts_utc" in f else f["ts"], errors="coerce").dt.floor(PRICE_STEP)
    timed = {m: prices.changes_over_time(m) for m in f["model"].unique()}
    keys = pd.DataFrame({"model": f["model"], "when": when.where(f["model"].map(timed).astype(bool))})
    table = keys.drop_duplicates().reset_index(drop=True)
    nan = float("nan")
    rates = []
    for model, at in zip(table["model"], table["when"]):
        p = prices.price(model, None if pd.isna(at) else at.to_pydatetime())
        rates.append((nan, nan, nan) if p is None else (
            p.input_per_m, p.output_per_m, p.input_per_m if p.cached_input_per_m is None else p.cached_input_per_m))
    table[["in_rate", "out_rate", "cached_rate"]] = pd.DataFrame(rates, columns=[0, 1, 2], dtype="float64")
    joined = keys.merge(table, on=["model", "when"], how="left")
    in_rate, out_rate, cached_rate = (joined[c].set_axis(f.index).astype("float64")
                                      for c in ("in_rate", "out_rate", "cached_rate"))
    cached = f["cached_input_tokens"].clip(lower=0)
    cached = cached.where(cached <= f["input_tokens"], f["input_tokens"])
    f["cost_usd"] = ((f["input_tokens"] - cached) * in_rate + cached * cached_rate + f["output_tokens"] * out_rate) / 1e6
    f["priced"] = in_rate.notna()
    return f


def _missing(value) -> bool:
    """None, NaN, or pandas' NA (no number to show); without importing pandas, which Home's run line
    (`run_usage`) would otherwise load on the first page (0.5 s of the cold start)."""
    if value is None:
        return True
    try:
        return math.isnan(value)
    except TypeError:  # pd.NA: not a number
        return True


def cost_label(cost: float | None, unpriced_calls: int = 0, calls: int | None = None) -> str:
    """"$0.0123", "unpriced", or "$0.0123 + unpriced" when only part of the calls has a price."""
    if _missing(cost) or (calls is not None and unpriced_calls >= calls and calls > 0):
        return UNPRICED
    text = f"${cost:,.4f}"
    return text + f" + {UNPRICED}" if unpriced_calls else text


USAGE_COLUMNS = ["calls", "errors", "input_tokens", "cached_input_tokens", "output_tokens", "total_tokens", "retries",
                 "cost_usd", "unpriced_calls", "cost_label"]


def usage_table(frame: pd.DataFrame, prices: PriceTable | None = None, *, period: str = "day",
                by: Sequence[str] = ("role", "model")) -> pd.DataFrame:
    """Usage per period x `by` (default agent role x model). period: hour/day/week/month/all.

    cost_usd sums the priced calls of the group and is NaN when none is priced; unpriced_calls
    counts the others, and cost_label says so."""
    keys = ([] if period == "all" else ["period"]) + list(by)
    if frame is None or frame.empty:
        return _empty(keys + USAGE_COLUMNS, getattr(frame, "attrs", {}).get("error", "") if frame is not None else "")
    f = with_cost(prepare(frame), prices)
    if period != "all":
        f["period"] = bucket(f["ts"], period)
    f["unpriced"] = (~f["priced"]).astype("int64")
    f["_all"] = "all"  # grouping by nothing: one row of totals
    g = f.groupby(keys or ["_all"], dropna=False, sort=True)
    out = g.agg(calls=("status", "size"), errors=("is_error", "sum"), input_tokens=("input_tokens", "sum"),
                cached_input_tokens=("cached_input_tokens", "sum"), output_tokens=("output_tokens", "sum"),
                retries=("retries", "sum"),
                unpriced_calls=("unpriced", "sum"))
    out["cost_usd"] = g["cost_usd"].sum(min_count=1)
    out = out.reset_index() if keys else out.reset_index(drop=True)
    out["total_tokens"] = out["input_tokens"] + out["output_tokens"]
    out["cost_label"] = [cost_label(c, u, n) for c, u, n in zip(out["cost_usd"], out["unpriced_calls"], out["calls"])]
    return out[keys + USAGE_COLUMNS]


def usage_by_model(frame: pd.DataFrame) -> pd.DataFrame:
    """Calls, tokens, errors and latency percentiles per role × model."""
    import pandas as pd
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


QUANTILES = (0.5, 0.95, 0.99)
LATENCY_COLUMNS = ["calls", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms", "ttft_calls", "ttft_p50_ms",
                   "ttft_p95_ms", "ttft_p99_ms"]


def percentiles(values: Iterable[float], qs: Sequence[float] = QUANTILES) -> dict[float, float | None]:
    """Linear-interpolated percentiles of the non-missing values; None for each when there are none.

    numpy's quantile (the same linear interpolation as pandas' Series.quantile), not pandas: the alert
    tick calls this on the monitor thread, and importing pandas there (about 0.3 s, 5 s after start)
    held up every analysis thread beside it. The runtime has numpy loaded already."""
    import numpy as np

    arr = np.asarray(list(values), dtype="float64")  # None is NaN
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return {q: None for q in qs}
    return {q: float(v) for q, v in zip(qs, np.quantile(arr, list(qs)).tolist())}


def latency_table(frame: pd.DataFrame, by: Sequence[str] = ("role", "model"), *, ok_only: bool = False) -> pd.DataFrame:
    """Latency and time-to-first-token percentiles per `by` (TTFT only over calls that streamed)."""
    import pandas as pd
    keys = list(by)
    if frame is None or frame.empty:
        return _empty(keys + LATENCY_COLUMNS)
    f = prepare(frame)
    if ok_only:
        f = f[f["status"] == "ok"]
        if f.empty:
            return _empty(keys + LATENCY_COLUMNS)
    rows = []
    groups = f.groupby(keys, dropna=False, sort=True) if keys else [((), f)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        lat = percentiles(g["latency_ms"])
        ttft = percentiles(g["ttft_ms"])
        lat_s = g["latency_ms"].dropna()
        rows.append(list(key) + [len(g), lat[0.5], lat[0.95], lat[0.99],
                                 float(lat_s.mean()) if len(lat_s) else None,
                                 float(lat_s.max()) if len(lat_s) else None,
                                 int(g["ttft_ms"].notna().sum()), ttft[0.5], ttft[0.95], ttft[0.99]])
    return pd.DataFrame(rows, columns=keys + LATENCY_COLUMNS)


def error_timeline(frame: pd.DataFrame, freq: str = "hour", by: Sequence[str] = ()) -> pd.DataFrame:
    """Calls, failed calls, error % (0-100) and retries per time bucket (and per `by`)."""
    keys = ["bucket"] + list(by)
    cols = keys + ["calls", "errors", "error_pct", "retries"]
    if frame is None or frame.empty:
        return _empty(cols)
    f = prepare(frame)
    f["bucket"] = bucket(f["ts"], freq)
    out = f.groupby(keys, dropna=False, sort=True).agg(calls=("status", "size"), errors=("is_error", "sum"),
                                                        retries=("retries", "sum")).reset_index()
    out["error_pct"] = 100.0 * out["errors"] / out["calls"]
    return out[cols]


def errors_by_kind(frame: pd.DataFrame, freq: str = "hour") -> pd.DataFrame:
    """Failed calls per bucket x error kind ('unknown' when a failed row has no kind)."""
    cols = ["bucket", "error_kind", "errors", "retries"]
    if frame is None or frame.empty:
        return _empty(cols)
    f = prepare(frame)
    f = f[f["is_error"] == 1].copy()
    if f.empty:
        return _empty(cols)
    f["bucket"] = bucket(f["ts"], freq)
    f["error_kind"] = f["error_kind"].fillna("unknown").replace("", "unknown")
    out = f.groupby(["bucket", "error_kind"], sort=True).agg(errors=("status", "size"), retries=("retries", "sum"))
    return out.reset_index()[cols]


RETRY_COLUMNS = ["ts", "run_id", "job_id", "type", "policy", "op", "kind", "attempt", "trace_id"]


def retry_events_frame(db: Database, *, since: datetime | None = None, until: datetime | None = None,
                       run_id: str | None = None, limit: int = 20_000) -> pd.DataFrame:
    """`retry` and `retry.gave_up` events (core.infra.retry), newest first: one row per retry or give-up."""
    flush_queued(db)  # this process's queued events first: this reads the table directly
    import pandas as pd
    stmt = select(Event.ts, Event.run_id, Event.job_id, Event.type, Event.payload, Event.trace_id).where(
        Event.type.in_(["retry", "retry.gave_up"])).order_by(Event.id.desc()).limit(limit)
    if since is not None:
        stmt = stmt.where(Event.ts >= since)
    if until is not None:
        stmt = stmt.where(Event.ts < until)
    if run_id:
        stmt = stmt.where(Event.run_id == run_id)
    try:
        with db.session() as s:
            rows = s.execute(stmt).all()
    except Exception as exc:  # noqa: BLE001
        return _empty(RETRY_COLUMNS, f"retry events cannot be read: {_error_text(exc)}")
    out = []
    for ts, run, job, type_, payload, trace in rows:
        p = payload if isinstance(payload, dict) else {}
        out.append([ts, run, job, type_, p.get("policy"), p.get("op"), p.get("kind") or "unknown",
                    p.get("attempt", p.get("attempts")), trace])
    return pd.DataFrame(out, columns=RETRY_COLUMNS)


def retries_by_kind(retries: pd.DataFrame, freq: str = "hour") -> pd.DataFrame:
    """Retries and give-ups per bucket x kind, from retry_events_frame."""
    cols = ["bucket", "kind", "retries", "gave_up"]
    if retries is None or retries.empty:
        return _empty(cols)
    f = retries.copy()
    f["bucket"] = bucket(f["ts"], freq)
    f["is_retry"] = (f["type"] == "retry").astype("int64")
    f["is_gave_up"] = (f["type"] == "retry.gave_up").astype("int64")
    out = f.groupby(["bucket", "kind"], sort=True).agg(retries=("is_retry", "sum"), gave_up=("is_gave_up", "sum"))
    return out.reset_index()[cols]


def run_usage(db: Database, run_id: str, prices: PriceTable | None = None, role: str | None = None) -> dict:
    """One run's LLM totals: calls, errors, tokens, retries and cost.

    `cost` is None when any call used an unpriced model (the total would be wrong);
    `priced_cost` is what the priced calls cost; `unpriced_models` lists the others.
    A run with no LLM calls costs 0.0 and `note` says there were none. Never raises."""
    prices = prices if prices is not None else default_table()
    out: dict = {"run_id": run_id, "calls": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0,
                 "total_tokens": 0, "retries": 0, "cost": 0.0, "priced_cost": 0.0, "cost_label": "$0.0000",
                 "models": [], "unpriced_models": [], "note": "", "error": None}
    # One row per call (a run's calls are few): each is priced at its half hour, as with_cost does.
    stmt = (select(LlmCall.model, LlmCall.ts, LlmCall.input_tokens, LlmCall.output_tokens,
                   LlmCall.cached_input_tokens, LlmCall.status, LlmCall.retries)
            .where(LlmCall.run_id == run_id).order_by(LlmCall.model))
    if role:
        stmt = stmt.where(LlmCall.role == role)
    try:
        with db.session() as s:
            rows = s.execute(stmt).all()
    except Exception as exc:  # noqa: BLE001
        out.update(cost=None, cost_label=UNPRICED, error=f"LLM usage cannot be read: {_error_text(exc)}")
        return out
    unpriced_calls = 0
    timed: dict = {}   # model -> its price changes over time (priced per half hour) or not (once)
    found: dict = {}   # (model, half hour or None) -> Price or None
    for model, ts, tin, tout, cached, status, retries in rows:
        tin, tout = int(tin or 0), int(tout or 0)
        out["calls"] += 1
        out["input_tokens"] += tin
        out["output_tokens"] += tout
        out["errors"] += int(status != "ok")
        out["retries"] += int(retries or 0)
        if model not in out["models"]:
            out["models"].append(model)
        if model not in timed:
            timed[model] = prices.changes_over_time(model)
        at = None if ts is None or not timed[model] else ts.replace(minute=ts.minute // 30 * 30, second=0,
                                                                        microsecond=0)
        if (model, at) not in found:
            found[(model, at)] = prices.price(model, at)
        price = found[(model, at)]
        cost = None if price is None else price.cost(tin, tout, int(cached or 0))
        if cost is None:
            if model not in out["unpriced_models"]:
                out["unpriced_models"].append(model)
            unpriced_calls += 1
        else:
            out["priced_cost"] += cost
    out["total_tokens"] = out["input_tokens"] + out["output_tokens"]
    if not rows:
        out["note"] = "no LLM calls recorded for this run"
    if out["unpriced_models"]:
        out["cost"] = None
        shown = ", ".join(m or "(no model)" for m in out["unpriced_models"])
        out["note"] = f"unpriced model(s): {shown}; add them to the price table"
        out["cost_label"] = cost_label(out["priced_cost"] if unpriced_calls < out["calls"] else None,
                                       unpriced_calls, out["calls"])
    else:
        out["cost"] = out["priced_cost"]
        out["cost_label"] = cost_label(out["cost"])
    return out
