"""Two supervisor processes on one database (`python -m core worker`), as two app replicas would be.

They never run the same job; when one is killed mid-job, the other takes the job over once the
lease has expired — not before — and resumes it from its checkpoint.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.work.probe import probe_jobs
from core.work.runs import get_job, get_run, jobs_of
from core.supervisor import Supervisor
from tests.conftest import wait_for
from tests.support.faults import record
from core.runtime import build_handlers

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
LEASE_S = 2.0


class WorkerProcess:
    def __init__(self, db_url: str, tmp: Path, name: str, max_workers: int = 2):
        env = os.environ.copy()
        env.update(DATABASE_URL=db_url, SHOAL_LEASE_SECONDS=str(LEASE_S), SHOAL_HEARTBEAT_SECONDS="0.2",
                   SHOAL_MAX_WORKERS=str(max_workers), SHOAL_LOG_DIR=str(tmp / f"logs-{name}"),
                   SHOAL_CANCEL_TIMEOUT="2", SHOAL_SHUTDOWN_TIMEOUT="3")
        self.proc = subprocess.Popen([sys.executable, "-m", "core", "worker"], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        try:
            self.worker_id = json.loads(line)["worker"]
        except (ValueError, KeyError):
            self.proc.kill()
            raise AssertionError(f"worker {name} did not start: {line}{self.proc.stdout.read()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                out, _ = self.proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, _ = self.proc.communicate()
            return out
        return ""


@pytest.fixture
def workers(db_url, tmp_path):
    started: list[WorkerProcess] = []

    def start(name: str, **kw) -> WorkerProcess:
        w = WorkerProcess(db_url, tmp_path, name, **kw)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def test_two_worker_processes_never_run_the_same_job(db, events, workers):
    a, b = workers("a"), workers("b")
    submitter = Supervisor(db, events, handlers=build_handlers())  # not started: it only queues work, like a page would
    run_id = submitter.submit_run(probe_jobs(12, steps=4, step_seconds=0.05), kind="probe")
    assert wait_for(lambda: get_run(db, run_id).status == "completed" or None, 60, "the run to complete")
    jobs = jobs_of(db, run_id)
    started = [e for e in events.since(0, run_id=run_id, limit=10_000)[0] if e.type == "job.started"]
    assert sorted(e.job_id for e in started) == sorted(j.id for j in jobs), "each job started exactly once"
    for job in jobs:
        trail = job.checkpoint["trail"]
        assert len(trail) == 4 and len(set(trail)) == 1, f"{job.id} ran on more than one worker: {trail}"
        assert job.attempt == 1
    owners = {j.checkpoint["trail"][0] for j in jobs}
    assert owners == {a.worker_id, b.worker_id}, "both replicas took a share of the work"


def test_a_killed_worker_s_job_is_taken_over_after_its_lease_expires(db, events, workers):
    # Both replicas are up before the job exists (a replica's start-up can take seconds on a loaded
    # machine, long enough for a short job to finish): whichever claims it is killed, the other takes over.
    steps = 200
    w1, w2 = workers("a", max_workers=1), workers("b", max_workers=1)
    submitter = Supervisor(db, events, handlers=build_handlers())
    run_id = submitter.submit_run(probe_jobs(1, steps=steps, step_seconds=0.1), kind="probe")
    job_id = f"{run_id}-probe-1"
    owner = wait_for(lambda: get_job(db, job_id).lease_owner, 30, "a replica to claim the job")
    a, b = (w1, w2) if owner == w1.worker_id else (w2, w1)
    wait_for(lambda: (get_job(db, job_id).checkpoint or {}).get("step", 0) >= 5, 30, "a's progress")
    a.kill()
    killed_at = time.monotonic()
    lease_expiry = get_job(db, job_id).lease_expires_at
    done_by_a = get_job(db, job_id).checkpoint["step"]
    assert 5 <= done_by_a < steps, "a was killed mid-job"
    assert wait_for(lambda: get_run(db, run_id).status == "completed" or None, 120, "b to finish the job")
    record("worker_sigkill", time.monotonic() - killed_at, "completed by the other replica")
    job = get_job(db, job_id)
    trail = job.checkpoint["trail"]
    assert trail == [a.worker_id] * done_by_a + [b.worker_id] * (steps - done_by_a), "resumed, not restarted"
    assert job.attempt == 2
    evs = events.since(0, run_id=run_id, limit=10_000)[0]
    interrupted = next(e for e in evs if e.type == "job.interrupted")
    assert interrupted.payload["previous_owner"] == a.worker_id
    assert interrupted.ts >= lease_expiry, "taken over only after the lease expired"
    restarted = [e for e in evs if e.type == "job.started"]
    assert [e.payload["worker"] for e in restarted] == [a.worker_id, b.worker_id]


def test_sigterm_is_a_graceful_shutdown_that_leaves_resumable_jobs(db, events, workers):
    a = workers("a", max_workers=1)
    submitter = Supervisor(db, events, handlers=build_handlers())
    run_id = submitter.submit_run(probe_jobs(1, steps=50, step_seconds=0.1), kind="probe")
    job_id = f"{run_id}-probe-1"
    wait_for(lambda: (get_job(db, job_id).checkpoint or {}).get("step", 0) >= 3, 30, "progress")
    signalled_at = time.monotonic()
    out = a.stop()
    assert a.proc.returncode == 0, out  # exited by itself on SIGTERM (stop() kills only after 15 s)
    job = get_job(db, job_id)
    assert job.status == "interrupted" and job.lease_owner is None
    record("worker_sigterm", time.monotonic() - signalled_at, "exited 0, job interrupted")
    assert 3 <= job.checkpoint["step"] < 50
