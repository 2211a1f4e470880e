"""Monitor: the operations console — supervisor, health, runs and jobs, events."""
import pandas as pd
import streamlit as st

from core.health import run_checks
from core.models import from_epoch
from core.probe import probe_jobs
from core.runs import status_counts
from ui.widgets import (admin_unlocked, badge, fmt_duration, fmt_time, jobs_table, live_event_feed, page_setup,
                        run_picker)

rt = page_setup("Monitor", "📈")
st.title("📈 Monitor")

sup = rt.supervisor
c1, c2, c3, c4 = st.columns(4)
if sup is not None:
    status = sup.status()
    c1.metric("Supervisor", "running" if status.running else "stopped")
    c2.metric("Jobs running here", f"{status.active_jobs}/{status.max_workers}")
    counts = status_counts(rt.db) if rt.db.ok else {}
    c3.metric("Runs queued", counts.get("queued", 0))
    c4.metric("Runs running", counts.get("running", 0))
    st.caption(f"Worker `{status.worker_id}` · " + " · ".join(
        f"{name} loop: last ok {fmt_time(from_epoch(ls.last_ok)) if ls.last_ok else '—'} UTC"
        f", errors {ls.errors}" + (f" ({ls.last_error})" if ls.last_error else "")
        for name, ls in status.loops.items()))
else:
    c1.metric("Supervisor", "not running")
    st.warning("The supervisor is not running, so no background work can happen. See the message above.")

st.subheader("Health checks")
checks = run_checks(rt.settings, rt.db)
st.dataframe(pd.DataFrame([{"check": r.name, "status": r.status, "detail": r.detail, "essential": r.essential,
                            "ms": r.ms} for r in checks]), hide_index=True, width="stretch")

st.subheader("Runs and jobs")
run = run_picker(rt, key="monitor_run")
if run is None:
    st.caption("No runs yet.")
else:
    st.markdown(f"{badge(run.status)} run `{run.id}` · {run.kind} · trace `{run.trace_id}` · "
                f"created {fmt_time(run.created_at)} · duration {fmt_duration(run.duration_s)}"
                + (f" · {run.error}" if run.error else ""))
    jobs_table(rt, run.id)
    if sup is not None and admin_unlocked(rt, "monitor"):
        b1, b2 = st.columns(2)
        if b1.button("Cancel run", disabled=run.status not in ("queued", "running", "cancelling")):
            final = sup.cancel_run(run.id)
            st.toast(f"Run {run.id}: {final}")
            st.rerun()
        if b2.button("Resume run", disabled=run.status not in ("interrupted", "failed", "cancelled")):
            resumed = sup.resume_run(run.id)
            st.toast(f"Resumed {len(resumed)} job(s)")
            st.rerun()

with st.expander("Supervisor self-test"):
    st.caption("Runs probe jobs through the real queue, leases, heartbeats and checkpoints.")
    p1, p2, p3 = st.columns(3)
    n_jobs = p1.number_input("Jobs", 1, 20, 3)
    steps = p2.number_input("Steps", 1, 200, 10)
    step_s = p3.number_input("Seconds per step", 0.0, 10.0, 0.2)
    if st.button("Start self-test", disabled=sup is None):
        if admin_unlocked(rt, "probe"):
            run_id = sup.submit_run(probe_jobs(int(n_jobs), int(steps), float(step_s)), kind="probe",
                                    topic=f"self-test: {n_jobs} jobs × {steps} steps")
            st.success(f"Self-test run `{run_id}` queued.")

st.subheader("Events")
live_event_feed("monitor_events")
