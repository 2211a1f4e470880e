"""Monitor tab 2, Runs & jobs: the chosen run, its jobs, cancel / resume, what it costs beside what it
finds (ui.monitor.opinion), its timeline (Gantt), and the supervisor self-test."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.console.timeline import run_timeline, timeline_summary
from core.runtime import Runtime
from core.work.probe import probe_jobs
from core.work.runs import RunView
from core.work.states import RunState

from ui.budget_fields import budget_badge
from ui.i18n import status_label, t
from ui.monitor.common import (_chart, _frame_error, _open_trace, _table, _time_tip, _time_x, col_label, run_choice,
                               to_zone, with_time_text)
from ui.monitor.opinion import show_run_opinion
from ui.widgets import admin_unlocked, badge, fmt_duration, fmt_time, jobs_table, outcome_notice

MAX_BARS = 2_000  # Gantt bars drawn; the summary always covers every bar


# ---------------------------------------------------------------------------------------- 2 runs & jobs


def show_runs(rt: Runtime, key: str) -> None:
    sup = rt.supervisor
    run = run_choice(rt, key, f"{key}_run")
    if run is None:
        st.caption(t("monitor.no_runs") if rt.db.ok else t("monitor.no_runs_no_database"))
    else:
        st.markdown(t("monitor.run_line", badge=badge(run.status), id=run.id, kind=run.kind, trace=run.trace_id,
                      created=fmt_time(run.created_at), duration=fmt_duration(run.duration_s))
                    + (f" · {run.error}" if run.error else ""))
        outcome_notice(run)
        budget_badge(rt, run)
        jobs_table(rt, run.id)
        b1, b2, b3 = st.columns(3)
        b3.button(t("monitor.open_trace"), key=f"{key}_open_trace", on_click=_open_trace,
                  args=(key, run.trace_id), disabled=not run.trace_id)
        if sup is not None and admin_unlocked(rt, "monitor"):
            if b1.button(t("monitor.cancel_run"), disabled=run.status not in RunState.OPEN):
                final = sup.cancel_run(run.id)
                st.toast(t("monitor.cancelled_toast", id=run.id, status=status_label(final)))
                st.rerun()
            # Like `python -m core resume`: takes the jobs of a dead owner over, or names the live one.
            if b2.button(t("monitor.resume_run"), disabled=run.status not in RunState.RESUMABLE):
                taken = sup.take_over(run.id)
                if taken.held_by:
                    st.warning(t("monitor.held_by", holders="; ".join(h.describe() for h in taken.held_by)))
                else:
                    st.toast(t("monitor.resumed_toast", resumed=len(taken.resumed), taken=len(taken.taken)))
                    st.rerun()
        show_run_opinion(rt, run)
        show_timeline(rt, run)

    with st.expander(t("monitor.self_test")):
        st.caption(t("monitor.self_test_help"))
        p1, p2, p3 = st.columns(3)
        n_jobs = p1.number_input(t("monitor.probe_jobs"), 1, 20, 3, key=f"{key}_probe_jobs")
        steps = p2.number_input(t("monitor.probe_steps"), 1, 200, 10, key=f"{key}_probe_steps")
        step_s = p3.number_input(t("monitor.probe_step_s"), 0.0, 10.0, 0.2, key=f"{key}_probe_step_s")
        unlocked = sup is not None and admin_unlocked(rt, "probe")  # the password before the button
        if st.button(t("monitor.start_self_test"), disabled=not unlocked):
            run_id = sup.submit_run(probe_jobs(int(n_jobs), int(steps), float(step_s)), kind="probe",
                                    topic=f"self-test: {n_jobs} jobs × {steps} steps")  # data: stays as it is
            st.success(t("monitor.self_test_queued", id=run_id))


def show_timeline(rt: Runtime, run: RunView) -> None:
    """The run's Gantt: a bar per job attempt and per node, one lane per engine and paragraph."""
    st.subheader(t("monitor.timeline"))
    frame = run_timeline(rt.db, run.id)
    if _frame_error(frame):
        return
    skipped = frame.attrs.get("skipped", 0)
    note = (" " + t("monitor.timeline_skipped", n=skipped)) if skipped else ""
    if frame.empty:
        st.caption(t("monitor.no_timeline") + note)
        return
    summary = timeline_summary(frame)
    bars = frame if len(frame) <= MAX_BARS else frame.nlargest(MAX_BARS, "ms").sort_values("start")
    # Lanes grouped by engine (in order of first start), the job's bar above its paragraphs.
    first = {e: i for i, e in enumerate(dict.fromkeys(frame.sort_values("start")["engine"]))}
    order = frame.drop_duplicates("lane").assign(
        _e=lambda f: f["engine"].map(first), _j=lambda f: (f["kind"] != "job").astype(int),
        _p=lambda f: pd.to_numeric(f["paragraph"], errors="coerce").fillna(-1))
    lanes = list(order.sort_values(["_e", "_j", "_p"])["lane"])
    names = dict(zip(order["lane"], order.apply(lane_name, axis=1)))  # the lane in the reader's language
    lanes = [names[lane] for lane in lanes]
    data = bars[["lane", "engine", "kind", "node", "paragraph", "status", "start", "end", "ms", "trace_id"]].copy()
    data["lane"] = data["lane"].map(names)
    data["kind"] = data["kind"].map(lambda k: t(f"monitor.bar_{k}") if k in ("job", "node") else k)
    data["status"] = data["status"].map(status_label)
    data["paragraph"] = data["paragraph"].astype("object").where(data["paragraph"].notna(), None).astype(str)
    data["start"], data["end"] = to_zone(data["start"]), to_zone(data["end"])
    data = with_time_text(data, "start", "end", ms=True)
    chart = (alt.Chart(data, title=t("monitor.timeline_of", id=run.id)).mark_bar()
             .encode(x=_time_x("start", None, "%H:%M:%S"), x2="end:T",
                     y=alt.Y("lane:N", sort=lanes, title=None, axis=alt.Axis(labelOverlap=False)),
                     color=alt.Color("engine:N", title=col_label("engine")),
                     tooltip=[alt.Tooltip(c, title=col_label(c)) for c in ("lane", "kind", "node", "status")]
                     + [alt.Tooltip("ms:Q", format=",.0f", title=col_label("ms")),
                        _time_tip("start"), _time_tip("end"),
                        alt.Tooltip("trace_id", title=col_label("trace_id"))])
             )
    _chart(chart, height=max(160, 22 * len(lanes) + 80))
    shown = "" if len(bars) == len(frame) else " " + t("monitor.timeline_longest", n=f"{MAX_BARS:,}",
                                                       total=f"{len(frame):,}")
    st.caption(t("monitor.timeline_bars", jobs=int((frame["kind"] == "job").sum()),
                 nodes=int((frame["kind"] == "node").sum())) + shown + note)
    _table(summary, column_config={"node_ms": st.column_config.NumberColumn(col_label("node_ms"), format="%.0f"),
                                   "wall_ms": st.column_config.NumberColumn(col_label("wall_ms"), format="%.0f"),
                                   "max_parallel": st.column_config.NumberColumn(col_label("max_parallel"))})


def lane_name(row: pd.Series) -> str:
    """A Gantt lane in words: `query · job`, `query · p2` (`query · 任务`, `query · 第 2 段`)."""
    if row["kind"] == "job":
        return f"{row['engine']} · {t('monitor.lane_job')}"
    para = pd.to_numeric(row["paragraph"], errors="coerce")
    return f"{row['engine']} · " + ("-" if pd.isna(para) else t("monitor.lane_paragraph", n=int(para)))
