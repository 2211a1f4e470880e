"""Monitor tab 2, Runs & jobs: the chosen run, its jobs, cancel / resume, its timeline (Gantt), and the
supervisor self-test."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.console.timeline import run_timeline, timeline_summary
from core.runtime import Runtime
from core.work.probe import probe_jobs
from core.work.runs import RunView
from core.work.states import RunState

from ui.monitor.common import _chart, _frame_error, _open_trace, _table, _time_x, run_choice
from ui.widgets import admin_unlocked, badge, fmt_duration, fmt_time, jobs_table, outcome_notice

MAX_BARS = 2_000  # Gantt bars drawn; the summary always covers every bar


# ---------------------------------------------------------------------------------------- 2 runs & jobs


def show_runs(rt: Runtime, key: str) -> None:
    sup = rt.supervisor
    run = run_choice(rt, key, f"{key}_run")
    if run is None:
        st.caption("No runs yet." if rt.db.ok else "No runs to show: the database is unavailable.")
    else:
        st.markdown(f"{badge(run.status)} run `{run.id}` · {run.kind} · trace `{run.trace_id}` · "
                    f"created {fmt_time(run.created_at)} · duration {fmt_duration(run.duration_s)}"
                    + (f" · {run.error}" if run.error else ""))
        outcome_notice(run)
        jobs_table(rt, run.id)
        b1, b2, b3 = st.columns(3)
        b3.button("Show everything for this trace", key=f"{key}_open_trace", on_click=_open_trace,
                  args=(key, run.trace_id), disabled=not run.trace_id)
        if sup is not None and admin_unlocked(rt, "monitor"):
            if b1.button("Cancel run", disabled=run.status not in RunState.OPEN):
                final = sup.cancel_run(run.id)
                st.toast(f"Run {run.id}: {final}")
                st.rerun()
            # Like `python -m core resume`: takes the jobs of a dead owner over, or names the live one.
            if b2.button("Resume run", disabled=run.status not in RunState.RESUMABLE):
                taken = sup.take_over(run.id)
                if taken.held_by:
                    st.warning("Held by a live process: " + "; ".join(h.describe() for h in taken.held_by)
                               + ". Stop it first, or cancel the run.")
                else:
                    st.toast(f"Resumed {len(taken.resumed)} job(s), took over {len(taken.taken)}")
                    st.rerun()
        show_timeline(rt, run)

    with st.expander("Supervisor self-test"):
        st.caption("Runs probe jobs through the real queue, leases, heartbeats and checkpoints.")
        p1, p2, p3 = st.columns(3)
        n_jobs = p1.number_input("Jobs", 1, 20, 3, key=f"{key}_probe_jobs")
        steps = p2.number_input("Steps", 1, 200, 10, key=f"{key}_probe_steps")
        step_s = p3.number_input("Seconds per step", 0.0, 10.0, 0.2, key=f"{key}_probe_step_s")
        unlocked = sup is not None and admin_unlocked(rt, "probe")  # the password before the button
        if st.button("Start self-test", disabled=not unlocked):
            run_id = sup.submit_run(probe_jobs(int(n_jobs), int(steps), float(step_s)), kind="probe",
                                    topic=f"self-test: {n_jobs} jobs × {steps} steps")
            st.success(f"Self-test run `{run_id}` queued.")


def show_timeline(rt: Runtime, run: RunView) -> None:
    """The run's Gantt: a bar per job attempt and per node, one lane per engine and paragraph."""
    st.subheader("Timeline")
    frame = run_timeline(rt.db, run.id)
    if _frame_error(frame):
        return
    skipped = frame.attrs.get("skipped", 0)
    note = f" {skipped} node event(s) without a duration were skipped." if skipped else ""
    if frame.empty:
        st.caption("No timeline for this run yet: it has no job or node events." + note)
        return
    summary = timeline_summary(frame)
    bars = frame if len(frame) <= MAX_BARS else frame.nlargest(MAX_BARS, "ms").sort_values("start")
    # Lanes grouped by engine (in order of first start), the job's bar above its paragraphs.
    first = {e: i for i, e in enumerate(dict.fromkeys(frame.sort_values("start")["engine"]))}
    order = frame.drop_duplicates("lane").assign(
        _e=lambda f: f["engine"].map(first), _j=lambda f: (f["kind"] != "job").astype(int),
        _p=lambda f: pd.to_numeric(f["paragraph"], errors="coerce").fillna(-1))
    lanes = list(order.sort_values(["_e", "_j", "_p"])["lane"])
    data = bars[["lane", "engine", "kind", "node", "paragraph", "status", "start", "end", "ms", "trace_id"]].copy()
    data["paragraph"] = data["paragraph"].astype("object").where(data["paragraph"].notna(), None).astype(str)
    chart = (alt.Chart(data, title=f"Timeline of run {run.id}").mark_bar()
             .encode(x=_time_x("start", "time (UTC)", "%H:%M:%S"), x2="end:T",
                     y=alt.Y("lane:N", sort=lanes, title=None, axis=alt.Axis(labelOverlap=False)),
                     color=alt.Color("engine:N", title="engine"),
                     tooltip=["lane", "kind", "node", "status", alt.Tooltip("ms:Q", format=",.0f"),
                              alt.Tooltip("start:T", format="%H:%M:%S.%L"), alt.Tooltip("end:T", format="%H:%M:%S.%L"),
                              "trace_id"])
             )
    _chart(chart, height=max(160, 22 * len(lanes) + 80))
    shown = "" if len(bars) == len(frame) else f" The {MAX_BARS:,} longest of {len(frame):,} bars are drawn."
    st.caption(f"{int((frame['kind'] == 'job').sum())} job bar(s), {int((frame['kind'] == 'node').sum())} node bar(s)."
               + shown + note)
    _table(summary, column_config={"node_ms": st.column_config.NumberColumn("node time (ms)", format="%.0f"),
                                   "wall_ms": st.column_config.NumberColumn("wall time (ms)", format="%.0f"),
                                   "max_parallel": st.column_config.NumberColumn("max parallel nodes")})
