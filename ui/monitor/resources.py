"""Monitor tab 7, Resources: the sampled CPU, memory, disk, network and process figures; a live fragment."""
from __future__ import annotations

import altair as alt
import streamlit as st

from core.runtime import Runtime

from ui.i18n import t
from ui.monitor.common import _chart, _time_tip, _time_x, col_label, to_zone, with_time_text
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
        st.caption(t("monitor.resources_off"))
        return
    frame = sampler.frame()
    if frame.empty:
        st.caption(t("monitor.no_samples", seconds=f"{sampler.interval:g}"))
        return
    st.caption(t("monitor.samples", n=f"{len(frame):,}", seconds=f"{sampler.interval:g}", kept=f"{sampler.history:,}")
               + (" · " + t("monitor.sampler_error", error=sampler.last_error) if sampler.last_error else "")
               + ("" if sampler.running else " · " + t("monitor.sampler_down")))
    # The samples' times are naive UTC: shown, like every time, in the display zone (common.to_zone).
    frame = frame.assign(process_rss_mb=frame["process_rss_bytes"] / 2**20, time=to_zone(frame["time"]))
    charts = ((t("monitor.chart_system"), ["cpu_percent", "memory_percent", "disk_percent"], "%"),
              (t("monitor.chart_network"), ["net_sent_bps", "net_recv_bps"], t("monitor.unit_bytes_s")),
              (t("monitor.chart_rss"), ["process_rss_mb"], "MB"),
              (t("monitor.chart_threads"), ["process_threads"], t("monitor.unit_threads")))
    for title, columns, unit in charts:
        long = frame.melt(id_vars=["time"], value_vars=columns, var_name="series", value_name="value").dropna()
        if long.empty:
            st.caption(t("monitor.chart_unreadable", what=title))
            continue
        long["series"] = long["series"].map(col_label)
        _chart(alt.Chart(with_time_text(long, "time"), title=title).mark_line()
               .encode(x=_time_x("time"), y=alt.Y("value:Q", title=unit),
                       color=alt.Color("series:N", title=None),
                       tooltip=[_time_tip("time"), alt.Tooltip("series", title=col_label("series")),
                                alt.Tooltip("value", title=col_label("value"))]),
               height=220)
