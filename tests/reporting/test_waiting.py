"""The report's wait for the run's engines and the forum's last speeches (core.reporting.waiting)."""
from __future__ import annotations

import threading

import pytest

from core.infra.models import Job, Run, utcnow
from core.reporting.waiting import wait_for_jobs
from core.work.jobs import HandlerRegistry
from core.work.ledger import Ledger
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(60)


class Ctx:
    """What the wait uses of a report job's context."""

    def __init__(self, db, run_id):
        self.db, self.run_id, self.beats = db, run_id, 0
        self.cancelled = threading.Event()

    def check_cancelled(self):
        if self.cancelled.is_set():
            raise RuntimeError("cancelled")

    def heartbeat(self, **_):
        self.beats += 1


def _run(db) -> str:
    now = utcnow()
    with db.session() as s:
        s.add(Run(id="r-wait", kind="analysis", topic="t", status="running", created_at=now,
                  params={"engines": ["query"]}))
        s.flush()
        s.add(Job(id="r-wait-query", run_id="r-wait", kind="query", name="query", status="completed", created_at=now))
        s.add(Job(id="r-wait-host-9", run_id="r-wait", kind="host", name="host-9", status="running", created_at=now))
    return "r-wait"


def test_the_report_goes_on_when_the_hosts_last_speech_ends_without_waiting_for_its_next_look(db, events):
    run_id = _run(db)
    ctx, emitted, done = Ctx(db, run_id), [], threading.Event()

    def waiter():
        wait_for_jobs(ctx, lambda t, p: emitted.append((t, p)), others=True, poll=3600.0, grace=240.0,
                      auto_resume=True)  # a look an hour apart: only the job's end can wake it in time
        done.set()

    threading.Thread(target=waiter, daemon=True).start()
    wait_for(lambda: ctx.beats, what="the wait to look once")
    assert not done.is_set() and emitted == []  # the engines had ended: request_report said what it waits for
    assert Ledger(db, events, HandlerRegistry()).transition("r-wait-host-9", ("running",), "completed")
    wait_for(done.is_set, what="the wait to end with the host's last job")
    ctx.cancelled.set()


def test_without_other_jobs_to_wait_for_it_returns_at_once_and_a_cancel_stops_it(db):
    run_id = _run(db)
    ctx = Ctx(db, run_id)
    wait_for_jobs(ctx, lambda t, p: None, others=False, poll=3600.0, grace=240.0, auto_resume=True)
    ctx.cancelled.set()
    with pytest.raises(RuntimeError):
        wait_for_jobs(ctx, lambda t, p: None, others=True, poll=0.01, grace=240.0, auto_resume=True)
