"""Monitor tabs 3 and 4, over the recorded LLM calls: Usage & cost (per period, per run, the price table)
and Latency & errors (percentiles per agent and model, failures and retries over time)."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.console.metrics import OFFLINE_MODEL, known_pairs
from core.llm.pricing import INVALID_ENTRY
from core.console.usage import (UNPRICED, error_timeline, errors_by_kind, latency_table, retries_by_kind, run_usage,
                                usage_table)
from core.runtime import Runtime

from ui.cached import cached_llm_calls, cached_retry_events
from ui.i18n import fmt_time, t
from ui.monitor.common import (WINDOWS, _bars, _chart, _frame_error, _no_database, _table, _time_tip, _time_x,
                               col_label, in_zone, names, period_name, run_choice, window_name,
                               with_time_text)

MAX_CALLS = 50_000  # LLM call rows read for the usage and latency tabs (newest first)


# ---------------------------------------------------------------------------------------- 3 usage & cost


def _llm_frame(rt: Runtime, window: str) -> pd.DataFrame:
    """The window's LLM calls, cached briefly (ui.cached): a click on this tab does not re-read 50,000 rows.
    Their times are in the display zone, so a day or an hour of the tables and charts is the reader's."""
    frame = cached_llm_calls(rt, WINDOWS.get(window), MAX_CALLS)
    if frame.attrs.get("error"):
        return frame
    zoned = in_zone(frame, "ts")
    zoned["ts_utc"] = frame["ts"]  # each call is priced at its stored (UTC) time (core.console.usage.with_cost)
    return zoned


def _calls_caption(frame: pd.DataFrame, window: str) -> None:
    more = " " + t("monitor.calls_capped", n=f"{MAX_CALLS:,}") if len(frame) >= MAX_CALLS else ""
    st.caption(t("monitor.calls_in_window", n=f"{len(frame):,}", window=window_name(window)) + more)


def cost_text(label: str) -> str:
    """core's cost label ("$0.0123 + unpriced") in the reader's language."""
    return str(label).replace(UNPRICED, t("monitor.unpriced"))


def _radio(label: str, options: tuple, index: int, key: str, names) -> str:
    return st.radio(label, options, index=index, horizontal=True, key=key, format_func=names)


def show_usage(rt: Runtime, key: str) -> None:
    if _no_database(rt, t("monitor.what_usage")):
        return
    c1, c2 = st.columns(2)
    with c1:
        period = _radio(t("monitor.per"), ("day", "week", "month"), 0, f"{key}_usage_period", names("period_"))
    with c2:
        window = _radio(t("monitor.window"), tuple(WINDOWS), 3, f"{key}_usage_window", names("window_"))
    frame = _llm_frame(rt, window)
    if not _frame_error(frame):
        if frame.empty:
            st.info(t("monitor.no_calls_usage"))
        else:
            _calls_caption(frame, window)
            totals = usage_table(frame, rt.prices, period="all", by=()).iloc[0]
            m1, m2, m3, m4, m5 = st.columns([1, 1, 1, 1, 2])
            m1.metric(t("monitor.llm_calls"), f"{int(totals['calls']):,}")
            m2.metric(t("monitor.input_tokens"), f"{int(totals['input_tokens']):,}")
            m3.metric(t("monitor.output_tokens"), f"{int(totals['output_tokens']):,}")
            m4.metric(t("monitor.failed_calls"), f"{int(totals['errors']):,}")
            m5.metric(t("monitor.cost"), cost_text(totals["cost_label"]))
            table = usage_table(frame, rt.prices, period=period)
            table = table.drop(columns=["cost_usd"]).rename(columns={"cost_label": "cost"})
            table["cost"] = table["cost"].map(cost_text)
            _table(table, column_config={"period": st.column_config.DatetimeColumn(
                t("monitor.col_period_of", period=period_name(period)), format="YYYY-MM-DD")}, zoned=("period",))
            st.caption(t("monitor.cost_note"))
            over_time = error_timeline(frame, period, by=("role",))
            _bars(over_time, period, t("monitor.chart_calls"), "calls", col_label("calls"), "role", col_label("role"),
                  ["role", "calls", "errors"])

    st.subheader(t("monitor.per_run"))
    run = run_choice(rt, key, f"{key}_usage_run")
    if run is None:
        st.caption(t("monitor.no_runs"))
    else:
        u = run_usage(rt.db, run.id, rt.prices)
        if u["error"]:
            st.error(t("monitor.read_error", error=u["error"]))
        else:
            r1, r2, r3, r4 = st.columns([1, 1, 1, 2])
            r1.metric(t("monitor.run_llm_calls"), f"{u['calls']:,}")
            r2.metric(t("monitor.run_tokens"), f"{u['total_tokens']:,}")
            r3.metric(t("monitor.run_failed_calls"), f"{u['errors']:,}")
            r4.metric(t("monitor.run_cost"), cost_text(u["cost_label"]))
            if not u["calls"]:
                st.caption(t("monitor.run_no_calls"))
            elif u["unpriced_models"]:
                st.caption(t("monitor.run_unpriced", models=", ".join(u["unpriced_models"])))

    in_use = [] if frame.attrs.get("error") or "model" not in frame else list(frame["model"].unique())
    _price_table(rt, in_use + [m for _, m in known_pairs(rt.settings) if m != OFFLINE_MODEL])


def _price_table(rt: Runtime, models: list[str]) -> None:
    """The prices of the price file and of the models in use or configured, and where they come from."""
    st.subheader(t("monitor.price_table"))
    if rt.prices is None:
        st.caption(t("monitor.no_price_table"))
        return
    for problem in rt.prices.problems:
        st.warning(t("monitor.price_problem", problem=problem))
    shown = pd.DataFrame(rt.prices.rows(models),
                         columns=["model", "input_per_m", "cached_input_per_m", "output_per_m", "source"])
    shown["source"] = shown["source"].replace({UNPRICED: t("monitor.unpriced"),
                                               INVALID_ENTRY: t("monitor.price_invalid")})
    _table(shown, column_config={c: st.column_config.NumberColumn(col_label(c))
                                 for c in ("input_per_m", "cached_input_per_m", "output_per_m")})
    for line in price_source_lines(rt):
        st.caption(line)


def price_source_lines(rt: Runtime) -> list[str]:
    """Where the prices come from, with dates: the price file (path, changed when) and genai-prices
    (version, data date), in the reader's language."""
    src = rt.prices.sources()
    if src["file"]:
        lines = [t("monitor.prices_file", path=f"`{src['file']}`", when=fmt_time(src["file_mtime"]))]
    else:
        configured = rt.settings.get("SHOAL_PRICE_TABLE")
        lines = [t("monitor.prices_no_file", path=f"`{configured or rt.settings.data_dir / 'prices.json'}`")]
    maintained = src["maintained"]
    if maintained is not None:
        if maintained["version"] is None:
            lines.append(t("monitor.prices_maintained_off"))
        elif maintained["date"]:
            lines.append(t("monitor.prices_maintained", version=maintained["version"], date=maintained["date"]))
        else:
            lines.append(t("monitor.prices_maintained_undated", version=maintained["version"]))
    lines.append(t("monitor.prices_unit"))
    return lines


# ---------------------------------------------------------------------------------------- 4 latency & errors


def show_latency(rt: Runtime, key: str) -> None:
    if _no_database(rt, t("monitor.what_latency")):
        return
    c1, c2 = st.columns(2)
    with c1:
        window = _radio(t("monitor.window"), tuple(WINDOWS), 1, f"{key}_latency_window", names("window_"))
    with c2:
        freq = _radio(t("monitor.bucket"), ("5min", "hour", "day"), 1, f"{key}_latency_bucket", names("period_"))
    frame = _llm_frame(rt, window)
    if _frame_error(frame):
        return
    st.subheader(t("monitor.latency_title"))
    if frame.empty:
        st.info(t("monitor.no_calls_latency"))
    else:
        _calls_caption(frame, window)
        ms = {c: st.column_config.NumberColumn(col_label(c), format="%.1f")
              for c in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms")}
        _table(latency_table(frame), column_config=ms)
        st.caption(t("monitor.latency_note"))

        st.subheader(t("monitor.errors_over_time"))
        timeline = error_timeline(frame, freq)
        _chart(alt.Chart(with_time_text(timeline, "bucket"), title=t("monitor.chart_failed_pct")).mark_line(point=True)
               .encode(x=_time_x("bucket", period_name(freq)), y=alt.Y("error_pct:Q", title=t("monitor.pct_failed")),
                       tooltip=[_time_tip("bucket"), alt.Tooltip("calls", title=col_label("calls")),
                                alt.Tooltip("errors", title=col_label("errors")),
                                alt.Tooltip("error_pct:Q", format=".1f", title=col_label("error_pct")),
                                alt.Tooltip("retries", title=col_label("retries"))]))
        kinds = errors_by_kind(frame, freq)
        if kinds.empty:
            st.caption(t("monitor.no_failed_calls"))
        else:
            _bars(kinds, freq, t("monitor.chart_failed_kind"), "errors", t("monitor.failed_calls"), "error_kind",
                  col_label("error_kind"), ["error_kind", "errors", "retries"])
            _table(kinds.groupby("error_kind", as_index=False)[["errors", "retries"]].sum()
                   .sort_values("errors", ascending=False))

    st.subheader(t("monitor.retries_title"))
    retries = cached_retry_events(rt, WINDOWS.get(window))
    if _frame_error(retries):
        return
    by_kind = retries_by_kind(in_zone(retries, "ts"), freq)
    if by_kind.empty:
        st.caption(t("monitor.no_retries"))
        return
    _bars(by_kind, freq, t("monitor.retries_title"), "retries", col_label("retries"), "kind", col_label("kind"),
          ["kind", "retries", "gave_up"])
    _table(by_kind.groupby("kind", as_index=False)[["retries", "gave_up"]].sum()
           .sort_values("retries", ascending=False))
