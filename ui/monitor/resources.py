"""Monitor tab 7, Resources: the sampled CPU, memory, disk, network and process figures; a live fragment."""
from __future__ import annotations

import altair as alt
import streamlit as st

from core.runtime import Runtime

from ui.monitor.common import _chart, _time_x
from ui.runtime import get_runtime


# ---------------------------------------------------------------------------------------- 7 resources


def show_resources(rt: Runtime, key: str) -> None:
    _resources_live(key)


@st.fragment(run_every=10)
def _resources_live(key: str) -> None:
    render_resources(get_runtime(), key)


def render_resources(rt: Runtime, key: str) -> None:
    sampler = rt.resources
    if sampler is None:
        st.caption("Resources are not sampled in this process.")
        return
    frame = sampler.frame()
    if frame.empty:
        st.caption(f"No samples yet: one is taken every {sampler.interval:g} s.")
        return
    st.caption(f"{len(frame):,} sample(s), one every {sampler.interval:g} s, the last {sampler.history:,} kept"
               + (f" · sampler error: {sampler.last_error}" if sampler.last_error else "")
               + ("" if sampler.running else " · the sampler is not running"))
    frame = frame.assign(process_rss_mb=frame["process_rss_bytes"] / 2**20)
    charts = (("System use (%)", ["cpu_percent", "memory_percent", "disk_percent"], "%"),
              ("Network (bytes/s)", ["net_sent_bps", "net_recv_bps"], "bytes/s"),
              ("This process: resident memory (MB)", ["process_rss_mb"], "MB"),
              ("This process: threads", ["process_threads"], "threads"))
    for title, columns, unit in charts:
        long = frame.melt(id_vars=["time"], value_vars=columns, var_name="series", value_name="value").dropna()
        if long.empty:
            st.caption(f"{title}: cannot be read here.")
            continue
        _chart(alt.Chart(long, title=title).mark_line()
               .encode(x=_time_x("time", "time (UTC)"), y=alt.Y("value:Q", title=unit),
                       color=alt.Color("series:N", title=None), tooltip=["time:T", "series", "value"]),
               height=220)
