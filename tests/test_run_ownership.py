"""Each process knows which jobs are its own (issue 12): claims filtered by run, the settings a run
was submitted with recorded on it (secrets by reference) and used by whoever executes its jobs,
unfinished work handed back as `interrupted` on exit, and `take_over` (what `resume` does)."""
from __future__ import annotations

import json
import os
import signal
from datetime import timedelta

import pytest
from sqlalchemy import update

from core.infra.config import load_settings
from core.infra.models import Job, Run, Worker, utcnow
from core.runtime import build_handlers
from core.supervisor import Supervisor
from core.work import run_settings
from core.work.jobs import JobContext, JobSpec
from core.work.probe import probe_jobs
from core.work.runs import get_job, get_run, jobs_of
from tests.conftest import fast_config, wait_for

pytestmark = pytest.mark.timeout(120)

KEY_A = "sk-run-owner-key-aaaaaaaaaaaaaaaa"
KEY_B = "sk-other-process-key-bbbbbbbbbbbb"


def h_settings(ctx: JobContext) -> dict:
    """Reports the settings it executes with (never a key's value: whether it is the submitter's)."""
    s = ctx.settings
    return {"mode": s["SHOAL_MODE"], "paragraphs": s["SHOAL_PARAGRAPHS"], "log_dir": str(s.log_dir),
            "base_url": s["QUERY_ENGINE_BASE_URL"], "key_is_a": s["QUERY_ENGINE_API_KEY"] == KEY_A,
            "tavily_set": bool(s["TAVILY_API_KEY"]), "worker": ctx.worker_id}


HANDLERS = build_handlers()
HANDLERS.register("t_settings", h_settings)


@pytest.fixture
def job_handlers():
    return HANDLERS


def settings_with(tmp_path, name: str, **values):
    env = {"SHOAL_LOG_DIR": str(tmp_path / f"logs-{name}"), "SHOAL_DATA_DIR": str(tmp_path / "data"),
           **{k: str(v) for k, v in values.items()}}
    return load_settings(env=env, env_file=tmp_path / "absent.env")


def supervisor(db, events, settings=None, start=True, **config) -> Supervisor:
    sup = Supervisor(db, events, fast_config(**config), handlers=HANDLERS, settings=settings)
    return sup.start() if start else sup


def test_a_run_only_supervisor_never_claims_another_runs_jobs(db, events, make_supervisor):
    queuer = make_supervisor(start=False)  # a page queuing a run that nobody here owns
    other = queuer.submit_run(probe_jobs(3, steps=2, step_seconds=0.01), kind="probe")
    mine_sup = make_supervisor(own_runs_only=True)
    mine = mine_sup.submit_run(probe_jobs(2, steps=2, step_seconds=0.01), kind="probe")
    assert mine_sup.wait_run(mine, 30) == "completed"
    mine_sup.schedule_once()  # one more pass after its own run ended: still nothing of the other run
    assert get_run(db, other).status == "queued", "not even promoted by a process that does not serve it"
    assert all(j.status == "pending" and j.attempt == 0 for j in jobs_of(db, other))
    serving = make_supervisor()  # the worker / the app take any run's jobs
    assert serving.wait_run(other, 30) == "completed"


def test_a_job_added_to_another_processs_run_is_the_only_one_it_claims(db, events, make_supervisor):
    # `python -m core report RUN` on a run the app is running: the report job is its, the rest is not
    queuer = make_supervisor(start=False)
    other = queuer.submit_run(probe_jobs(2, steps=2, step_seconds=0.01), kind="probe")
    with db.session() as s:
        s.execute(update(Run).where(Run.id == other).values(status="running"))  # promoted by its owner
    helper = make_supervisor(own_runs_only=True)
    (extra,) = helper.add_jobs(other, [JobSpec(kind="probe", name="extra", params={"steps": 2, "step_seconds": 0})])
    wait_for(lambda: get_job(db, extra).status == "completed", 30, "the added job to run")
    helper.schedule_once()
    helper.shutdown(timeout=3)
    rest = [j for j in jobs_of(db, other) if j.id != extra]
    assert [(j.status, j.attempt) for j in rest] == [("pending", 0)] * 2, "neither claimed nor handed back"


def test_a_job_runs_under_its_runs_recorded_settings_with_secrets_by_reference(db, events, tmp_path):
    submitted = settings_with(tmp_path, "a", SHOAL_MODE="offline", SHOAL_PARAGRAPHS=7, QUERY_ENGINE_API_KEY=KEY_A,
                              QUERY_ENGINE_BASE_URL="https://a.example/v1")
    queuer = supervisor(db, events, submitted, start=False)
    run_id = queuer.submit_run([JobSpec(kind="t_settings", name="s")], kind="probe")
    with db.session() as s:
        recorded = s.get(Run, run_id).settings
    assert KEY_A not in json.dumps(recorded), "a secret is recorded by reference, never by value"
    assert recorded["QUERY_ENGINE_API_KEY"] == {"ref": "QUERY_ENGINE_API_KEY", "set": True,
                                                "fp": run_settings.fingerprint(KEY_A)}
    assert "DATABASE_URL" not in recorded and "SHOAL_MAX_WORKERS" not in recorded  # the process's own

    # A worker with other limits, another log folder and a search key the run was not started with;
    # it has the run's LLM key under the same name, so it may run the job — under the run's settings.
    executor = settings_with(tmp_path, "b", SHOAL_MODE="auto", SHOAL_PARAGRAPHS=3, QUERY_ENGINE_API_KEY=KEY_A,
                             QUERY_ENGINE_BASE_URL="https://b.example/v1", TAVILY_API_KEY="tvly-b-only")
    sup = supervisor(db, events, executor)
    try:
        assert sup.wait_run(run_id, 30) == "completed"
    finally:
        sup.shutdown(3)
    result = get_job(db, f"{run_id}-s").result
    assert result == {"mode": "offline", "paragraphs": 7, "log_dir": str(tmp_path / "logs-a"),
                      "base_url": "https://a.example/v1", "key_is_a": True, "tavily_set": False,
                      "worker": sup.worker_id}


def test_a_process_whose_key_differs_leaves_the_run_to_one_that_has_it(db, events, tmp_path):
    queuer = supervisor(db, events, settings_with(tmp_path, "a", QUERY_ENGINE_API_KEY=KEY_A), start=False)
    run_id = queuer.submit_run([JobSpec(kind="t_settings", name="s")], kind="probe")
    wrong = supervisor(db, events, settings_with(tmp_path, "b", QUERY_ENGINE_API_KEY=KEY_B))
    try:
        wait_for(lambda: get_run(db, run_id).status == "running", 10, "the run to be promoted")
        for _ in range(3):
            wrong.schedule_once()
        assert get_job(db, f"{run_id}-s").status == "pending", "never sent under another process's key"
        right = supervisor(db, events, settings_with(tmp_path, "c", QUERY_ENGINE_API_KEY=KEY_A))
        try:
            assert right.wait_run(run_id, 30) == "completed"
        finally:
            right.shutdown(3)
    finally:
        wrong.shutdown(3)
    assert get_job(db, f"{run_id}-s").result["worker"] == right.worker_id


def test_on_exit_a_process_hands_its_unfinished_jobs_back_as_interrupted(db, events, make_supervisor):
    sup = make_supervisor(own_runs_only=True, max_workers=1)
    run_id = sup.submit_run(probe_jobs(3, steps=200, step_seconds=0.05), kind="probe")
    wait_for(lambda: any((j.checkpoint or {}).get("step", 0) >= 2 for j in jobs_of(db, run_id)), 30, "progress")
    sup.shutdown(timeout=3)
    jobs = jobs_of(db, run_id)
    assert {j.status for j in jobs} == {"interrupted"}, "running and never-claimed jobs alike"
    assert all(j.lease_owner is None for j in jobs), "handed back, not left to a lease that must expire"
    assert get_run(db, run_id).status == "interrupted"
    with db.session() as s:
        assert s.get(Worker, sup.worker_id).stopped_at is not None
    # another process resumes it from the checkpoints at once
    other = make_supervisor(own_runs_only=True)
    assert other.take_over(run_id).resumed
    assert other.wait_run(run_id, 60) == "completed"


def test_take_over_names_a_live_holder_and_takes_nothing(db, events, make_supervisor):
    owner = make_supervisor(own_runs_only=True)
    run_id = owner.submit_run(probe_jobs(1, steps=400, step_seconds=0.05), kind="probe")
    wait_for(lambda: get_job(db, f"{run_id}-probe-1").status == "running", 30, "the owner to claim the job")
    resumer = make_supervisor(start=False, own_runs_only=True)
    result = resumer.take_over(run_id)
    assert not result.resumed and not result.taken
    (holder,) = result.held_by
    assert holder.alive and holder.worker_id == owner.worker_id and holder.jobs == (f"{run_id}-probe-1",)
    assert holder.pid is not None and holder.host and str(holder.pid) in holder.describe()
    assert get_job(db, f"{run_id}-probe-1").lease_owner == owner.worker_id
    with pytest.raises(KeyError):
        resumer.take_over("nosuchrun")


def test_take_over_from_a_holder_whose_heartbeat_is_stale_finishes_the_run(db, events, make_supervisor):
    queuer = make_supervisor(start=False)
    run_id = queuer.submit_run(probe_jobs(1, steps=5, step_seconds=0.01), kind="probe")
    job_id = f"{run_id}-probe-1"
    now = utcnow()
    # A remote worker that went silent a minute ago, its lease still valid (e.g. a frozen VM)
    with db.session() as s:
        s.add(Worker(id="far:1:dead", host="another-host", pid=1, started_at=now - timedelta(minutes=5),
                     heartbeat_at=now - timedelta(minutes=1)))
        s.execute(update(Run).where(Run.id == run_id).values(status="running", started_at=now))
        s.execute(update(Job).where(Job.id == job_id).values(
            status="running", lease_owner="far:1:dead", lease_expires_at=now + timedelta(minutes=10), attempt=1,
            checkpoint={"step": 2, "trail": ["far:1:dead"] * 2}))
    resumer = make_supervisor(start=False, own_runs_only=True)
    result = resumer.take_over(run_id)
    assert not result.held_by and result.taken == [job_id] and result.resumed == [job_id]
    assert "no heartbeat since" in result.dead[0].why
    resumer.start()
    assert resumer.wait_run(run_id, 30) == "completed"
    trail = get_job(db, job_id).checkpoint["trail"]
    assert trail == ["far:1:dead"] * 2 + [resumer.worker_id] * 3, "resumed from its checkpoint"
    evs = [e for e in events.since(0, run_id=run_id)[0] if e.type == "job.interrupted"]
    assert evs and evs[0].payload["previous_owner"] == "far:1:dead"


def test_recorded_settings_survive_a_round_trip_and_unknown_keys(tmp_path):
    base = settings_with(tmp_path, "x", SHOAL_PARAGRAPHS=4, LLM_TIMEOUT=33.5, SHOAL_MODE="offline")
    recorded = run_settings.record(base)
    recorded["A_SETTING_FROM_A_NEWER_VERSION"] = 1
    again = run_settings.resolve(recorded, settings_with(tmp_path, "y"))
    assert again["SHOAL_PARAGRAPHS"] == 4 and again["LLM_TIMEOUT"] == 33.5 and again["SHOAL_MODE"] == "offline"
    assert again.source("SHOAL_PARAGRAPHS") == "run"
    assert run_settings.resolve(None, base) is base  # a run queued before settings were recorded
    with pytest.raises(run_settings.SettingsMismatch, match="QUERY_ENGINE_API_KEY"):
        run_settings.resolve(run_settings.record(settings_with(tmp_path, "k", QUERY_ENGINE_API_KEY=KEY_A)), base)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_both_ask_run_and_resume_for_a_graceful_stop(sig):
    from core.cli_work import GracefulStop

    before = signal.getsignal(sig)
    with GracefulStop() as stop:
        os.kill(os.getpid(), sig)
        wait_for(stop.event.is_set, 10, f"{sig.name} to set the stop event")
        assert stop.name == sig.name and stop.exit_code == 128 + sig
        # a second signal is not swallowed: it ends the process the usual way
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(sig) is before


def test_a_live_process_that_started_an_open_run_holds_it_between_two_jobs(db, events, make_supervisor):
    # Its run's jobs wait (here: of a kind it does not take); no lease names it, the run does.
    owner = make_supervisor(own_runs_only=True, kinds=frozenset({"t_settings"}))
    run_id = owner.submit_run(probe_jobs(2, steps=2, step_seconds=0), kind="probe")
    wait_for(lambda: get_run(db, run_id).status == "running", 30, "the owner to start its run")
    (holder,) = make_supervisor(start=False, own_runs_only=True).take_over(run_id).held_by
    assert holder.worker_id == owner.worker_id and holder.alive and holder.jobs == ()
    assert "started the run" in holder.describe()
    owner.shutdown(timeout=3)  # its worker row closes: now anyone may resume the run
    resumer = make_supervisor(own_runs_only=True)
    result = resumer.take_over(run_id)
    assert not result.held_by and sorted(result.resumed) == [f"{run_id}-probe-1", f"{run_id}-probe-2"]
    assert resumer.wait_run(run_id, 30) == "completed"


def test_resume_says_what_it_cannot_do_and_why(db, db_url, events, tmp_path, monkeypatch, capsys):
    from core.cli import main as cli_main

    monkeypatch.setenv("DATABASE_URL", db_url)
    assert cli_main(["resume", "nosuchrun"]) == 1
    assert "no run nosuchrun" in capsys.readouterr().err

    done = supervisor(db, events, start=False).submit_run(probe_jobs(1, steps=1, step_seconds=0), kind="probe")
    sup = supervisor(db, events)
    try:
        assert sup.wait_run(done, 30) == "completed"
    finally:
        sup.shutdown(3)
    assert cli_main(["resume", done]) == 0
    captured = capsys.readouterr()
    assert "nothing to resume" in captured.err and json.loads(captured.out)["message"]

    # A run started with a key this process does not have: its jobs are left pending for one that has it.
    keyed = supervisor(db, events, settings_with(tmp_path, "a", QUERY_ENGINE_API_KEY=KEY_A), start=False)
    run_id = keyed.submit_run([JobSpec(kind="t_settings", name="s")], kind="probe")
    assert cli_main(["resume", run_id]) == 78
    err = capsys.readouterr().err
    assert "QUERY_ENGINE_API_KEY" in err and KEY_A not in err
    assert get_job(db, f"{run_id}-s").status == "pending"
