"""The Forum page's metering: per speaker and per host round, messages, tokens, cost, LLM latency and
the time from a round's start to the host's speech (core.discussion.metering computes them)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.discussion.metering import ForumMetering, Meter, MeteringTally
from core.runtime import Runtime

from .i18n import fmt_time, t
from .runtime import get_runtime


def _cost(m: Meter) -> str:
    if m.cost_usd is None:
        return t("metering.unpriced")
    text = f"${m.cost_usd:,.4f}"
    return text + (" " + t("metering.some_unpriced", n=m.unpriced) if m.unpriced else "")


def _meter_cols(m: Meter) -> dict:
    return {t("metering.col_messages"): m.messages, t("metering.col_input_tokens"): m.input_tokens,
            t("metering.col_output_tokens"): m.output_tokens, t("metering.col_tokens"): m.tokens,
            t("metering.col_cost"): _cost(m), t("metering.col_latency_s"): round(m.latency_ms / 1000, 2)}


def speaker_frame(metering: ForumMetering) -> pd.DataFrame:
    return pd.DataFrame([{t("metering.col_speaker"): f"{s.sender} ({s.source})", **_meter_cols(s.meter)}
                         for s in metering.speakers])


def round_frame(metering: ForumMetering) -> pd.DataFrame:
    rows = []
    for r in metering.rounds:
        secs = r.seconds_to_host
        rows.append({t("metering.col_round"): t("metering.no_round") if r.round is None else str(r.round),
                     **_meter_cols(r.meter),
                     t("metering.col_started"): fmt_time(r.started_at, with_date=False) if r.started_at else "",
                     t("metering.col_to_host_s"): t("metering.host_pending") if secs is None else f"{secs:,.1f}"})
    return pd.DataFrame(rows)


REFRESH_SECONDS = 10  # a summary: less often than the live transcript's 2 s


def show_metering(rt: Runtime, run_id: str) -> None:
    """The tables, refreshed every REFRESH_SECONDS while the page is open (a fragment)."""
    if rt.db.ok:
        live_metering(run_id)


@st.fragment(run_every=REFRESH_SECONDS)
def live_metering(run_id: str) -> None:
    render_metering(get_runtime(), run_id)


def tally_of(rt: Runtime, run_id: str) -> MeteringTally:
    """This session's running sums for the run: each refresh reads only the messages posted since.
    Keyed by the database too, so switching databases in Settings never mixes two runs' sums."""
    key = f"forum_meter_tally:{rt.db.display_url}:{run_id}"
    if key not in st.session_state:
        st.session_state[key] = MeteringTally(run_id)
    return st.session_state[key]


def render_metering(rt: Runtime, run_id: str) -> ForumMetering | None:
    """The two tables and a total line."""
    if not rt.db.ok:
        return None
    metering = tally_of(rt, run_id).advance(rt.db, getattr(rt, "prices", None))
    st.subheader(t("metering.title"))
    if not metering.total.messages:
        st.caption(t("metering.empty"))
        return metering
    total = metering.total
    st.caption(t("metering.total", messages=total.messages, tokens=f"{total.tokens:,}", cost=_cost(total),
                 seconds=f"{total.latency_ms / 1000:,.1f}"))
    c1, c2 = st.columns(2)
    with c1:
        st.markdown(t("metering.per_speaker"))
        st.dataframe(speaker_frame(metering), hide_index=True, width="stretch")
    with c2:
        st.markdown(t("metering.per_round"))
        st.dataframe(round_frame(metering), hide_index=True, width="stretch")
    st.caption(t("metering.note"))
    return metering
