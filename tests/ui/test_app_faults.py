"""SIGKILL and SIGTERM of the app (`streamlit run Home.py`) while its supervisor runs a job (issue 12,
the fault matrix of RELIABILITY.md).

A real Streamlit server on a SQLite data folder shared with the test; Home is opened once in Debian's
Chromium, which builds the app's cached runtime and so starts its supervisor. The test queues a probe
run (core.work.probe) in the database, the app's supervisor claims it, and the app is signalled while
the probe is part-way through. Leases are far longer than the tests, so what takes the run over must
recognise the app's death by its process or its worker row, not by waiting for a lease to expire.

- SIGKILL: a `python -m core worker` started afterwards (the README's deploy section) sees the app's
  pid is gone, hands the job back and resumes it from its checkpoint: the probe's trail names the app
  for the first steps and the worker for the rest, every step once.
- SIGTERM: the app exits within SHOAL_SHUTDOWN_TIMEOUT, its job handed back `interrupted` (no lease
  left), its run `interrupted`, its worker row closed; a worker then finishes the run.
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
from sqlalchemy import select

from core.infra.db import open_database
from core.infra.events import EventLog
from core.infra.models import Job, Worker
from core.runtime import build_handlers
from core.supervisor import Supervisor
from core.work.probe import probe_jobs
from core.work.runs import get_job, get_run
from tests.conftest import wait_for
from tests.support import REPO_ROOT
from tests.support.faults import record
from tests.support.streamlit_server import StreamlitServer, chromium_browser, wait_for_streamlit_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

STEPS, STEP_SECONDS = 200, 0.05  # a probe of about 10 s: long enough to be signalled part-way
SHUTDOWN_TIMEOUT = 5.0
TIMEOUT = 120


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture
def settings_env(tmp_path):
    """What both the app and the worker get: the test's data folder and database, leases of a minute
    (a dead owner must be recognised by its pid or worker row), fast heartbeats."""
    return {"SHOAL_DATA_DIR": os.environ["SHOAL_DATA_DIR"], "SHOAL_LOG_DIR": os.environ["SHOAL_LOG_DIR"],
            "SHOAL_ENV_FILE": os.environ["SHOAL_ENV_FILE"], "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
            "SHOAL_LEASE_SECONDS": "60", "SHOAL_HEARTBEAT_SECONDS": "0.2",
            "SHOAL_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT), "SHOAL_MIN_SOURCES": "3"}


@pytest.fixture
def db(settings_env):
    database = open_database(settings_env["DATABASE_URL"])
    assert database.ok, database.error
    yield database
    database.dispose()


@pytest.fixture
def app(browser, settings_env, tmp_path):
    """`streamlit run Home.py`, with Home opened once so that its runtime (and supervisor) is built."""
    server = StreamlitServer("Home.py", env=settings_env, log_path=tmp_path / "streamlit.log",
                             startup_timeout=90).start()
    try:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(server.url, wait_until="domcontentloaded")
            wait_for_streamlit_idle(page, timeout=90)
        finally:
            context.close()
        yield server
    finally:
        server.stop()


def app_worker(db, pid: int) -> Worker | None:
    with db.session() as s:
        w = s.scalars(select(Worker).where(Worker.pid == pid, Worker.stopped_at.is_(None))).first()
        if w is not None:
            s.expunge(w)
        return w


def queue_probe(db) -> str:
    """A probe run queued in the database, the way a page queues one: no supervisor of the test runs it."""
    events = EventLog(db)
    try:
        return Supervisor(db, events, handlers=build_handlers()).submit_run(
            probe_jobs(1, steps=STEPS, step_seconds=STEP_SECONDS), kind="probe", topic="app fault")
    finally:
        events.close()


def probe_job(db, run_id: str) -> Job:
    with db.session() as s:
        job = s.scalars(select(Job).where(Job.run_id == run_id)).one()
        s.expunge(job)
        return job


def running_in_app(db, run_id: str, app_id: str, min_step: int = 5) -> Job | None:
    job = probe_job(db, run_id)
    ok = job.status == "running" and job.lease_owner == app_id and (job.checkpoint or {}).get("step", 0) >= min_step
    return job if ok else None


def start_worker(env: dict) -> subprocess.Popen:
    """`python -m core worker`, what the deploy examples run beside the app; returns once it has started."""
    proc = subprocess.Popen([sys.executable, "-m", "core", "worker"], cwd=REPO_ROOT, env={**os.environ, **env},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, encoding="utf-8")
    line = proc.stdout.readline()
    if not line or json.loads(line).get("status") != "started":
        proc.kill()
        raise AssertionError(f"the worker did not start: {line}{proc.communicate()[1]}")
    return proc


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def completed(db, run_id: str) -> bool:
    return get_run(db, run_id).status == "completed"


def assert_resumed_not_restarted(db, run_id: str, app_id: str, worker_id: str) -> None:
    job = probe_job(db, run_id)
    trail = job.checkpoint["trail"]
    assert len(trail) == STEPS, "every step ran exactly once"
    assert trail[0] == app_id and trail[-1] == worker_id, (trail[0], trail[-1])
    assert set(trail) == {app_id, worker_id}
    assert job.attempt == 2 and job.result["workers"] == sorted({app_id, worker_id})


def worker_id_of(db, proc: subprocess.Popen) -> str:
    with db.session() as s:
        return s.scalars(select(Worker.id).where(Worker.pid == proc.pid)).one()


def worker_finishes(db, run_id: str, proc: subprocess.Popen, since: float) -> tuple[str, float, float]:
    """(the worker's id, seconds from `since` until it held the job, until the run completed)."""
    worker_id = worker_id_of(db, proc)
    wait_for(lambda: probe_job(db, run_id).lease_owner == worker_id or completed(db, run_id), TIMEOUT,
             "the worker to take the job over")
    taken = time.monotonic() - since
    wait_for(lambda: completed(db, run_id), TIMEOUT, "the worker to finish the run")
    return worker_id, taken, time.monotonic() - since


# ---------------------------------------------------------------------------------------- SIGKILL


def test_a_killed_app_s_run_is_taken_over_by_a_worker_and_resumed_from_its_checkpoint(app, db, settings_env):
    pid = app.proc.pid
    app_id = wait_for(lambda: app_worker(db, pid), 60, "the app's supervisor to register").id
    run_id = queue_probe(db)
    wait_for(lambda: running_in_app(db, run_id, app_id), 60, "the app's supervisor to run the probe part-way")

    app.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    app.proc.wait(timeout=30)
    job = probe_job(db, run_id)
    assert job.status == "running" and job.lease_owner == app_id, "a SIGKILL hands nothing back"
    step_at_kill = job.checkpoint["step"]
    assert step_at_kill < STEPS

    w = start_worker(settings_env)
    try:
        worker_id, taken, seconds = worker_finishes(db, run_id, w, killed)
    finally:
        stop_worker(w)
    assert_resumed_not_restarted(db, run_id, app_id, worker_id)
    events = EventLog(db)
    try:
        handed = [e for e in events.since(0, run_id=run_id)[0] if e.type == "job.interrupted"]
    finally:
        events.close()
    assert handed and handed[0].payload["previous_owner"] == app_id
    assert f"{pid}" in handed[0].payload["reason"] and "gone" in handed[0].payload["reason"], handed[0].payload
    record("app_sigkill", seconds, f"a `core worker` started after the kill held the job {taken:.1f} s after it, "
                                   f"resumed at step {step_at_kill} of {STEPS}, and completed the run")


# ---------------------------------------------------------------------------------------- SIGTERM


def test_sigterm_stops_the_app_gracefully_handing_its_job_back_and_a_worker_finishes_the_run(app, db, settings_env):
    pid = app.proc.pid
    app_id = wait_for(lambda: app_worker(db, pid), 60, "the app's supervisor to register").id
    run_id = queue_probe(db)
    wait_for(lambda: running_in_app(db, run_id, app_id), 60, "the app's supervisor to run the probe part-way")

    signalled = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    try:
        rc = app.proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the app did not exit after SIGTERM:\n{app.log_text()}") from None
    exited_after = time.monotonic() - signalled
    log = app.log_text(20000)
    assert rc == 0, log
    assert "Traceback" not in log, log

    job = probe_job(db, run_id)
    assert job.status == "interrupted", (job.status, log)
    assert job.lease_owner is None and job.lease_expires_at is None, "no lease left to expire"
    step_at_stop = job.checkpoint["step"]
    assert 0 < step_at_stop < STEPS, "stopped part-way, checkpoint kept"
    assert get_run(db, run_id).status == "interrupted"
    with db.session() as s:
        assert s.get(Worker, app_id).stopped_at is not None, "the app's worker row is closed"

    w = start_worker(settings_env)
    try:
        worker_id, _, finished_after = worker_finishes(db, run_id, w, signalled)
    finally:
        stop_worker(w)
    assert_resumed_not_restarted(db, run_id, app_id, worker_id)
    record("app_sigterm", exited_after, f"exit 0, job `interrupted` at step {step_at_stop} of {STEPS}, worker row "
                                        f"closed; a worker completed the run {finished_after:.1f} s after the signal")
