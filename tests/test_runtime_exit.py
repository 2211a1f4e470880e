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
