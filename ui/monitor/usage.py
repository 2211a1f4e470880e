"""Monitor tabs 3 and 4, over the recorded LLM calls: Usage & cost (per period, per run, the price table)
and Latency & errors (percentiles per agent and model, failures and retries over time)."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.console.usage import error_timeline, errors_by_kind, latency_table, retries_by_kind, run_usage, usage_table
from core.runtime import Runtime

from ui.cached import cached_llm_calls, cached_retry_events
from ui.monitor.common import (WINDOWS, _bars, _chart, _frame_error, _no_database, _table, _time_x,
                               run_choice)

MAX_CALLS = 50_000  # LLM call rows read for the usage and latency tabs (newest first)


# ---------------------------------------------------------------------------------------- 3 usage & cost


def _llm_frame(rt: Runtime, window: str) -> pd.DataFrame:
    """The window's LLM calls, cached briefly (ui.cached): a click on this tab does not re-read 50,000 rows."""
    return cached_llm_calls(rt, WINDOWS.get(window), MAX_CALLS)


def _calls_caption(frame: pd.DataFrame, window: str) -> None:
    more = f" (the newest {MAX_CALLS:,}; narrow the window to see all)" if len(frame) >= MAX_CALLS else ""
    st.caption(f"{len(frame):,} LLM call(s) in the window “{window}”{more}.")


def show_usage(rt: Runtime, key: str) -> None:
    if _no_database(rt, "LLM usage"):
        return
    c1, c2 = st.columns(2)
    period = c1.radio("Per", ("day", "week", "month"), horizontal=True, key=f"{key}_usage_period")
    window = c2.radio("Window", tuple(WINDOWS), index=3, horizontal=True, key=f"{key}_usage_window")
    frame = _llm_frame(rt, window)
    if not _frame_error(frame):
        if frame.empty:
            st.info("No LLM calls recorded in this window. Offline runs make none; runs with an LLM configured "
                    "(Settings) record one row per call.")
        else:
            _calls_caption(frame, window)
            totals = usage_table(frame, rt.prices, period="all", by=()).iloc[0]
            m1, m2, m3, m4, m5 = st.columns([1, 1, 1, 1, 2])
            m1.metric("LLM calls", f"{int(totals['calls']):,}")
            m2.metric("Input tokens", f"{int(totals['input_tokens']):,}")
            m3.metric("Output tokens", f"{int(totals['output_tokens']):,}")
            m4.metric("Failed calls", f"{int(totals['errors']):,}")
            m5.metric("Cost", totals["cost_label"])
            table = usage_table(frame, rt.prices, period=period)
            table = table.drop(columns=["cost_usd"]).rename(columns={"cost_label": "cost"})
            _table(table, column_config={"period": st.column_config.DatetimeColumn(period, format="YYYY-MM-DD")})
            st.caption("Cost per 1M tokens from the price table below; a model missing from it is “unpriced”, "
                       "never $0.")
            over_time = error_timeline(frame, period, by=("role",))
            _bars(over_time, period, "LLM calls over time", "calls", "calls", "role", "agent",
                  ["role", "calls", "errors"])

    st.subheader("Per run")
    run = run_choice(rt, key, f"{key}_usage_run")
    if run is None:
        st.caption("No runs yet.")
    else:
        u = run_usage(rt.db, run.id, rt.prices)
        if u["error"]:
            st.error(u["error"])
        else:
            r1, r2, r3, r4 = st.columns([1, 1, 1, 2])
            r1.metric("Run LLM calls", f"{u['calls']:,}")
            r2.metric("Run tokens", f"{u['total_tokens']:,}")
            r3.metric("Run failed calls", f"{u['errors']:,}")
            r4.metric("Run cost", u["cost_label"])
            if u["note"]:
                st.caption(u["note"])

    st.subheader("Price table")
    if rt.prices is None:
        st.caption("No price table is loaded in this process.")
        return
    for problem in rt.prices.problems:
        st.warning(f"Price table: {problem}")
    _table(pd.DataFrame(rt.prices.rows(), columns=["model", "input_per_m", "output_per_m", "source"]),
           column_config={"input_per_m": st.column_config.NumberColumn("input $/1M tokens"),
                          "output_per_m": st.column_config.NumberColumn("output $/1M tokens")})
    configured = rt.settings.get("SHOAL_PRICE_TABLE")
    st.caption("Prices from " + (f"`{configured}`" if configured else
                                 f"the defaults and `{rt.settings.data_dir / 'prices.json'}` if present")
               + " (SHOAL_PRICE_TABLE); USD per 1M tokens.")


# ---------------------------------------------------------------------------------------- 4 latency & errors


def show_latency(rt: Runtime, key: str) -> None:
    if _no_database(rt, "Latency and errors"):
        return
    c1, c2 = st.columns(2)
    window = c1.radio("Window", tuple(WINDOWS), index=1, horizontal=True, key=f"{key}_latency_window")
    freq = c2.radio("Bucket", ("5min", "hour", "day"), index=1, horizontal=True, key=f"{key}_latency_bucket")
    frame = _llm_frame(rt, window)
    if _frame_error(frame):
        return
    st.subheader("Latency per agent and model")
    if frame.empty:
        st.info("No LLM calls recorded in this window, so there is no latency to show.")
    else:
        _calls_caption(frame, window)
        ms = {c: st.column_config.NumberColumn(c.replace("_ms", " (ms)"), format="%.1f")
              for c in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms")}
        _table(latency_table(frame), column_config=ms)
        st.caption("Percentiles include failed calls (a timeout is time the operator waits). "
                   "TTFT: time to first token, over calls that streamed.")

        st.subheader("Errors over time")
        timeline = error_timeline(frame, freq)
        _chart(alt.Chart(timeline, title="Failed calls (%)").mark_line(point=True)
               .encode(x=_time_x("bucket", freq), y=alt.Y("error_pct:Q", title="% failed"),
                       tooltip=["bucket:T", "calls", "errors", alt.Tooltip("error_pct:Q", format=".1f"), "retries"]))
        kinds = errors_by_kind(frame, freq)
        if kinds.empty:
            st.caption("No failed LLM calls in this window.")
        else:
            _bars(kinds, freq, "Failed calls by kind", "errors", "failed calls", "error_kind", "kind",
                  ["error_kind", "errors", "retries"])
            _table(kinds.groupby("error_kind", as_index=False)[["errors", "retries"]].sum()
                   .sort_values("errors", ascending=False))

    st.subheader("Retries by kind")
    retries = cached_retry_events(rt, WINDOWS.get(window))
    if _frame_error(retries):
        return
    by_kind = retries_by_kind(retries, freq)
    if by_kind.empty:
        st.caption("No retries in this window.")
        return
    _bars(by_kind, freq, "Retries by kind", "retries", "retries", "kind", "kind", ["kind", "retries", "gave_up"])
    _table(by_kind.groupby("kind", as_index=False)[["retries", "gave_up"]].sum()
           .sort_values("retries", ascending=False))
