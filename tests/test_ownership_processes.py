"""`python -m core run` and `resume` as real processes on one database (issue 12).

A bystander `run` never touches another run's jobs; SIGTERM stops a run gracefully (no job left
`running`, a summary printed, the run resumable); `resume` names the live process holding a run,
and finishes the run of a process that was SIGKILLed. The LLM is the fake server, slowed down until
the test lets it go, so a run is reliably in progress when it is signalled.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from core.corpus.demo import generate_demo_corpus
from core.infra.models import Job, Run, Worker, utcnow
from core.runtime import build_handlers
from core.supervisor import Supervisor
from core.work.probe import probe_jobs
from core.work.runs import get_job, get_run, jobs_of
from tests.conftest import wait_for
from tests.support.faults import record
from tests.fakes.openai_server import FakeOpenAI
from tests.research.test_engine import llm_responder

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
TOPIC = "新能源汽车价格战"
TIMEOUT = 120


@pytest.fixture
def corpus(db):
    generate_demo_corpus(db, posts=600)


@pytest.fixture
def env(db, db_url, tmp_path):
    # Leases far longer than the tests: a dead owner is recognised by its process or worker row.
    return {**os.environ, "DATABASE_URL": db_url, "SHOAL_LEASE_SECONDS": "60", "SHOAL_HEARTBEAT_SECONDS": "0.2",
            "SHOAL_CANCEL_TIMEOUT": "2", "SHOAL_SHUTDOWN_TIMEOUT": "5"}


@pytest.fixture
def slow_llm():
    """The fake LLM answering each call after up to a second, until `fast` is set."""
    fast = threading.Event()

    def responder(req):
        fast.wait(1.0)
        return llm_responder(req)

    with FakeOpenAI(responder=responder) as fake:
        fake.fast = fast
        yield fake


def start(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{proc.args} did not finish in {TIMEOUT}s\n{out}\n{err}")
    return proc.returncode, out, err


def cli(args: list[str], env: dict) -> tuple[int, str, str]:
    return finish(start(args, env))


def llm_run(env: dict, fake: FakeOpenAI) -> subprocess.Popen:
    return start(["run", TOPIC, "--engines", "insight", "--paragraphs", "3", "--reflections", "1", "--json"],
                 {**env, **fake.env("INSIGHT_ENGINE")})


def running_insight(db) -> Job | None:
    with db.session() as s:
        job = s.scalars(select(Job).where(Job.kind == "insight", Job.status == "running")).first()
        if job is not None:
            s.expunge(job)
        return job


def test_a_bystander_run_never_claims_another_runs_jobs(db, events, env, corpus):
    queuer = Supervisor(db, events, handlers=build_handlers())  # a page queuing a run; no worker serves it
    other = queuer.submit_run(probe_jobs(4, steps=2, step_seconds=0.01), kind="probe")
    rc, out, err = cli(["run", TOPIC, "--offline", "--engines", "insight", "--paragraphs", "1",
                        "--reflections", "0", "--json"], env)
    assert rc == 0 and json.loads(out)["status"] == "completed", out + err
    assert get_run(db, other).status == "queued"
    assert all(j.status == "pending" and j.attempt == 0 for j in jobs_of(db, other))
    assert not [e for e in events.since(0, run_id=other)[0] if e.type == "job.started"]


def test_resume_names_the_live_holder_then_sigterm_stops_the_run_gracefully_and_resume_finishes_it(db, env, corpus,
                                                                                                  slow_llm):
    proc = llm_run(env, slow_llm)
    try:
        job = wait_for(lambda: running_insight(db), 60, "the run's insight job to run")
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.communicate())
    run_id, holder = job.run_id, job.lease_owner

    rc, out, err = cli(["resume", run_id], env)
    assert rc == 75, out + err
    held = json.loads(out)["held_by"]
    assert [h["worker_id"] for h in held] == [holder] and held[0]["pid"] == proc.pid
    assert holder in err and f"pid {proc.pid}" in err and "live process" in err
    assert get_job(db, job.id).lease_owner == holder, "nothing was taken from a live holder"

    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc, out, err = finish(proc)
    stopped_after = time.monotonic() - signalled
    assert rc == 128 + signal.SIGTERM, out + err
    summary = json.loads(out)  # the summary, printed after a graceful stop
    assert summary["run_id"] == run_id and summary["status"] == "interrupted"
    assert "SIGTERM" in err and f"python -m core resume {run_id}" in err
    assert "Traceback" not in err
    statuses = {j.name: j.status for j in jobs_of(db, run_id)}
    assert not {"running", "cancelling", "pending"} & set(statuses.values()), statuses
    assert statuses["insight"] == "interrupted" and get_run(db, run_id).status == "interrupted"
    with db.session() as s:
        assert s.get(Worker, holder).stopped_at is not None, "its worker row is closed"
    record("cli_sigterm", stopped_after, "exit 143, run interrupted, summary printed")

    slow_llm.fast.set()
    rc, out, err = cli(["resume", run_id, "--json"], {**env, **slow_llm.env("INSIGHT_ENGINE")})
    assert rc == 0, out + err
    summary = json.loads(out)
    assert summary["status"] == "completed" and summary["engines"]["insight"]["status"] == "completed"
    assert f"{run_id}-insight" in summary["resumed_jobs"]


def test_a_killed_run_is_finished_by_resume_from_another_process(db, events, env, corpus, slow_llm):
    proc = llm_run(env, slow_llm)
    try:
        job = wait_for(lambda: running_insight(db), 60, "the run's insight job to run")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    run_id, dead = job.run_id, job.lease_owner
    assert get_job(db, job.id).status == "running", "a SIGKILL hands nothing back"

    slow_llm.fast.set()
    resumed_at = time.monotonic()
    rc, out, err = cli(["resume", run_id, "--json"], {**env, **slow_llm.env("INSIGHT_ENGINE")})
    assert rc == 0, out + err
    summary = json.loads(out)
    assert summary["status"] == "completed", summary
    record("cli_sigkill", time.monotonic() - resumed_at, "completed by resume")
    assert job.id in summary["taken_over"] and job.id in summary["resumed_jobs"]
    assert f"process {proc.pid} is gone" in err, err  # no waiting for the lease to expire
    insight = get_job(db, job.id)
    assert insight.status == "completed" and insight.attempt == 2
    interrupted = [e for e in events.since(0, run_id=run_id)[0] if e.type == "job.interrupted"]
    assert interrupted[0].payload["previous_owner"] == dead


# ---------------------------------------------------------------------------------------- the worker


def worker(env: dict) -> subprocess.Popen:
    proc = start(["worker"], env)
    line = proc.stdout.readline()
    assert json.loads(line)["status"] == "started", line + proc.stderr.read()
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        finish(proc)


def test_a_worker_started_after_a_crash_finishes_the_run_without_a_page(db, env):
    proc = start(["probe", "--jobs", "1", "--steps", "300", "--step-seconds", "0.05"], env)
    try:
        job = wait_for(lambda: next((j for j in _probe_jobs(db) if (j.checkpoint or {}).get("step", 0) >= 3), None),
                       60, "the probe to make progress")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    started = time.monotonic()
    w = worker(env)  # what a systemd unit or compose service starts beside the app
    try:
        assert wait_for(lambda: get_run(db, job.run_id).status == "completed" or None, 120, "the worker to finish it")
        record("cli_sigkill_worker_recovers", time.monotonic() - started, "completed by a worker, no page open")
    finally:
        stop(w)
    trail = get_job(db, job.id).checkpoint["trail"]
    assert trail[0] == job.lease_owner and trail[-1] != job.lease_owner and len(trail) == 300


def test_a_running_worker_resumes_a_run_another_process_left_interrupted(db, events, env):
    w = worker(env)
    try:
        # What an app stopped mid-run leaves behind: an interrupted run and job with a checkpoint.
        run_id = "0123456789ab"
        now = utcnow()
        with db.session() as s:
            s.add(Run(id=run_id, kind="probe", topic="left behind", status="interrupted", mode="offline",
                      params={}, trace_id="t", created_at=now, started_at=now))
            s.flush()
            s.add(Job(id=f"{run_id}-probe-1", run_id=run_id, kind="probe", name="probe-1", status="interrupted",
                      depends_on=[], params={"steps": 5, "step_seconds": 0.01}, attempt=1, max_attempts=3,
                      checkpoint={"step": 2, "trail": ["gone", "gone"]}, trace_id="t", created_at=now))
        assert wait_for(lambda: get_run(db, run_id).status == "completed" or None, 60, "the worker to resume it")
    finally:
        stop(w)
    assert get_job(db, f"{run_id}-probe-1").checkpoint["trail"][:2] == ["gone", "gone"]


def _probe_jobs(db) -> list:
    with db.session() as s:
        jobs = list(s.scalars(select(Job).where(Job.kind == "probe", Job.status == "running")))
        s.expunge_all()
    return jobs
