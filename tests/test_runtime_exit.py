"""A process that exits with its runtime still open (the app, once Streamlit has stopped its server on
SIGTERM) hands its running jobs back as `interrupted` and closes its worker row, instead of holding
the exit until the jobs finish (concurrent.futures joins the job threads before atexit runs).

tests/ui/test_app_faults.py proves it for the real app in a browser; this is the same without one."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.infra.models import Worker
from core.work.runs import get_run, jobs_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys, time
from core.runtime import build_runtime
from core.work.probe import probe_jobs
from core.work.runs import jobs_of

rt = build_runtime(console_log=False)
run_id = rt.supervisor.submit_run(probe_jobs(1, steps=400, step_seconds=0.05), kind="probe")
print(run_id, rt.supervisor.worker_id, flush=True)
while (jobs_of(rt.db, run_id)[0].checkpoint or {}).get("step", 0) < 3:
    time.sleep(0.05)
sys.exit(0)  # the runtime is left open, as Streamlit leaves the app's
"""


def test_exiting_with_the_runtime_open_hands_running_jobs_back(db, db_url):
    env = {**os.environ, "DATABASE_URL": db_url, "SHOAL_LEASE_SECONDS": "60", "SHOAL_HEARTBEAT_SECONDS": "0.2",
           "SHOAL_SHUTDOWN_TIMEOUT": "5"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id, worker_id = proc.stdout.split()
    [job] = jobs_of(db, run_id)
    # Without the exit hook the 20 s probe would have run to `completed` before the process exited.
    assert job.status == "interrupted", (job.status, proc.stderr)
    assert job.lease_owner is None and 3 <= job.checkpoint["step"] < 400
    assert get_run(db, run_id).status == "interrupted"
    with db.session() as s:
        assert s.get(Worker, worker_id).stopped_at is not None


STUBBORN = """
import sys, threading
from core.runtime import build_runtime
from core.work.jobs import JobSpec
from core.work.runs import jobs_of

rt = build_runtime(console_log=False)
started = threading.Event()

def stubborn(ctx):  # ignores its cancel: waits on an event nobody sets
    started.set()
    threading.Event().wait()

rt.supervisor.handlers.register("stubborn", stubborn)
run_id = rt.supervisor.submit_run([JobSpec(kind="stubborn", name="stubborn")], kind="probe")
print(run_id, flush=True)
started.wait(60)
if sys.argv[1] == "close":  # as `python -m core` does: its command closes the runtime, then
    from core.work.active import exit_if_stuck
    rt.close()
    exit_if_stuck(3)
sys.exit(3)  # "open": the runtime left open, as Streamlit leaves the app's
"""


@pytest.mark.parametrize("how", ["close", "open"])
def test_a_job_that_ignores_its_cancel_does_not_keep_the_process_alive(db, db_url, how):
    """Before, the interpreter waited at exit for the job's thread: for ever, here. Now the process
    ends once its runtime is closed (by the process, or by the exit hook), with the job handed back."""
    env = {**os.environ, "DATABASE_URL": db_url, "SHOAL_LEASE_SECONDS": "60", "SHOAL_HEARTBEAT_SECONDS": "0.2",
           "SHOAL_SHUTDOWN_TIMEOUT": "0.5"}
    proc = subprocess.run([sys.executable, "-c", STUBBORN, how], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=90)
    assert proc.returncode == (3 if how == "close" else 1), proc.stdout + proc.stderr
    assert "ignored their cancel and still run" in proc.stderr
    [job] = jobs_of(db, proc.stdout.split()[0])
    assert job.status == "interrupted" and job.lease_owner is None


def test_a_job_that_returned_is_not_taken_for_stuck_when_abandoned_after():
    """Shutdown may list a job a moment before its thread returns, then abandon it: that thread is an
    idle worker, not a stuck one, and must not make the process exit with 1."""
    import threading

    from core.work.active import ActiveJob, stuck_threads

    gate = threading.Event()
    worker = threading.Thread(target=gate.wait, args=(60,), daemon=True)
    worker.start()
    try:
        late = ActiveJob(ctx=None, handler=None, started=0.0, thread=worker)  # type: ignore[arg-type]
        late.ended()
        late.abandon()
        assert late.abandoned and worker not in stuck_threads()
        running = ActiveJob(ctx=None, handler=None, started=0.0, thread=worker)  # type: ignore[arg-type]
        running.abandon()
        assert worker in stuck_threads()
        running.ended()
        assert worker not in stuck_threads()
    finally:
        gate.set()
