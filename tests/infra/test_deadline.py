"""core.infra.deadline: a whole-call limit, whatever the work is doing when it runs out."""
from __future__ import annotations

import contextvars
import threading

import pytest

from core.infra import retry as retry_mod
from core.infra.deadline import CallTimeout, run_bounded
from tests.conftest import wait_for

_VAR = contextvars.ContextVar("deadline_test_var", default="unset")


def test_a_quick_work_returns_its_value_with_the_callers_context():
    _VAR.set("from the caller")
    assert run_bounded(lambda cut: (_VAR.get(), cut.is_cut), 30) == ("from the caller", False)


def test_the_works_own_error_reaches_the_caller_unchanged():
    class Boom(RuntimeError):
        pass

    with pytest.raises(Boom, match="inside"):
        run_bounded(lambda cut: (_ for _ in ()).throw(Boom("inside")), 30)


def test_a_work_past_its_limit_is_cut_and_reported_as_a_timeout():
    hook_ran = threading.Event()
    finished = threading.Event()

    def work(cut):
        cut.on_cut(hook_ran.set)       # e.g. shut the socket down
        cut.received = 12              # progress so far
        hook_ran.wait(60)              # a read that only the cut ends
        try:
            cut.raise_if_cut()
        finally:
            finished.set()
        return "never seen"

    with pytest.raises(CallTimeout) as info:
        run_bounded(work, 0.2, what="QUERY_ENGINE LLM call", setting="LLM_TIMEOUT", unit="characters")
    err = info.value
    assert (err.seconds, err.received, err.setting) == (0.2, 12, "LLM_TIMEOUT")
    assert "QUERY_ENGINE LLM call: no complete answer within 0.2s (LLM_TIMEOUT)" in str(err)
    assert "12 characters received" in str(err)
    assert retry_mod.classify(err) == "timeout"  # retried by the LLM and SEARCH policies like a read timeout
    wait_for(finished.is_set, 10, "the cut work to stop")
    assert hook_ran.is_set()


def test_a_hook_registered_after_the_cut_runs_at_once():
    registered = threading.Event()
    late = threading.Event()

    def work(cut):
        wait_for(lambda: cut.is_cut, 30, "the cut")
        cut.on_cut(late.set)
        registered.set()

    with pytest.raises(CallTimeout, match="nothing received"):
        run_bounded(work, 0.1)
    wait_for(registered.is_set, 10, "the late hook")
    assert late.is_set()


def test_a_released_work_is_never_touched_by_a_late_cut():
    # The work finished its I/O (its connection went back to the pool) but not the call: the cut at
    # the deadline must not run the hook that would shut down a connection another call now uses.
    hook_ran = threading.Event()
    released = threading.Event()

    def work(cut):
        cut.on_cut(hook_ran.set)
        cut.release()
        released.set()
        wait_for(lambda: cut.is_cut, 30, "the cut")

    with pytest.raises(CallTimeout):
        run_bounded(work, 0.1)
    assert released.is_set() and not hook_ran.is_set()


def test_works_run_on_threads_kept_between_calls():
    from core.infra import deadline

    def me(cut):
        return threading.current_thread()

    first = run_bounded(me, 30, what="first")
    assert first is not threading.current_thread()
    wait_for(lambda: deadline._WORKERS._idle > 0, 10, "a thread to wait for the next work")
    existing = set(threading.enumerate())
    second = run_bounded(me, 30, what="second")
    assert second in existing  # no new thread for it (an idle one took it, maybe of an earlier test)
    assert second.name == "bounded:second"  # each work names the thread it runs on


def test_a_work_that_never_returns_does_not_hold_up_the_next_call():
    release = threading.Event()
    stuck_thread = []

    def stuck(cut):
        stuck_thread.append(threading.current_thread())
        release.wait(60)  # I/O that nothing cuts (no hook registered)

    try:
        with pytest.raises(CallTimeout):
            run_bounded(stuck, 0.1)
        other = run_bounded(lambda cut: threading.current_thread(), 30)
        assert other is not stuck_thread[0] and stuck_thread[0].is_alive()
    finally:
        release.set()
