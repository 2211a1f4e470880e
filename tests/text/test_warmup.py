"""Warm before needed: the text tooling loads once per process, in the background, at runtime start.

Behaviour only (no timing): concurrent first callers make exactly one load; a caller arriving in the
middle of the warm-up waits for that load and gets the same object; a failing step is logged, not
raised; the runtime starts the warm-up; the loaders of jieba and the sentiment model go through it.
"""
from __future__ import annotations

import threading

import pytest

from core.text import jieba_loader, sentiment
from core.text import warmup as W
from core.text.warmup import Once, Warmup
from tests.conftest import wait_for


class SlowLoader:
    """A loader that counts its calls and holds each one until `release` is set."""

    def __init__(self):
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self):
        self.calls += 1
        self.entered.set()
        assert self.release.wait(30), "the test never released the load"
        return object()


def start_threads(n: int, target) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def test_concurrent_first_callers_make_exactly_one_load():
    loader = SlowLoader()
    once = Once(loader, "slow")
    barrier = threading.Barrier(8)
    got: list = []

    def caller():
        barrier.wait(10)
        got.append(once())

    threads = start_threads(8, caller)
    assert loader.entered.wait(10)
    wait_for(lambda: once.waiting == 7, what="the 7 other callers to block on the load in progress")
    assert got == [] and not once.loaded  # nobody got a value before the one load finished
    loader.release.set()
    for t in threads:
        t.join(10)
    assert loader.calls == 1 and once.loads == 1 and once.loaded
    assert len(got) == 8 and all(v is got[0] for v in got)
    assert once() is got[0] and loader.calls == 1  # later calls: the stored value, no load


def test_a_caller_arriving_mid_warmup_waits_for_it_and_gets_the_same_object():
    loader = SlowLoader()
    once = Once(loader, "slow")
    warm = Warmup([("slow", once)], name="test-warmup").start()
    assert loader.entered.wait(10)  # the warm-up thread is inside the load
    got: list = []
    [caller] = start_threads(1, lambda: got.append(once()))
    wait_for(lambda: once.waiting == 1, what="the caller to block on the warm-up's load")
    assert got == [] and not warm.done
    loader.release.set()
    caller.join(10)
    assert warm.wait(10) and warm.done and warm.errors == {}
    assert loader.calls == 1 and len(got) == 1 and got[0] is once()
    assert set(warm.seconds) == {"slow"}


def test_a_failing_step_is_logged_and_kept_never_raised_and_the_next_step_runs():
    def broken():
        raise OSError("no dictionary here")

    after = Once(lambda: "loaded", "after")
    failing = Once(broken, "broken")
    warm = Warmup([("broken", failing), ("after", after)], name="test-warmup").start()
    assert warm.wait(10)
    assert warm.errors == {"broken": "OSError: no dictionary here"}
    assert after.loaded and not failing.loaded
    with pytest.raises(OSError):  # whoever needs the part loads it and sees the error, as without warm-up
        failing()


def test_a_failed_load_stores_nothing_and_the_next_call_loads():
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first try fails")
        return "ok"

    once = Once(flaky)
    with pytest.raises(ValueError):
        once()
    assert not once.loaded and once() == "ok" and once() == "ok" and len(attempts) == 2 and once.loads == 1


def test_a_warmup_starts_one_thread_however_often_it_is_started():
    loader = SlowLoader()
    warm = Warmup([("slow", Once(loader))], name="test-warmup-once")
    assert not warm.started and not warm.wait(0)
    for _ in range(3):
        warm.start()
    assert loader.entered.wait(10)
    assert [t.daemon for t in threading.enumerate() if t.name == "test-warmup-once"] == [True]
    loader.release.set()
    assert warm.wait(10) and loader.calls == 1


def test_a_delayed_warmup_waits_until_hurried():
    loader = SlowLoader()
    loader.release.set()
    once = Once(loader)
    warm = Warmup([("slow", once)], name="test-delayed-warmup").start(delay=3600)
    assert warm.started and not warm.wait(0.2) and loader.calls == 0  # still in its delay
    warm.hurry()  # a run was submitted: load now
    assert warm.wait(30) and loader.calls == 1 and once.loaded


def test_a_held_warmup_waits_for_its_release_after_its_delay():
    loader = SlowLoader()
    loader.release.set()
    warm = Warmup([("slow", Once(loader))], name="test-held-warmup").hold(3600).start(delay=0)
    assert warm.started and not warm.wait(0.2) and loader.calls == 0  # no delay, but held
    warm.release()  # the app's first page has been shown
    assert warm.wait(30) and loader.calls == 1


def test_a_released_warmup_still_waits_its_delay_and_a_release_starts_no_thread():
    loader = SlowLoader()
    loader.release.set()
    warm = Warmup([("slow", Once(loader))], name="test-released-warmup").hold(3600)
    warm.release()  # (a page shown before the runtime started it)
    assert not warm.started and not [t for t in threading.enumerate() if t.name == "test-released-warmup"]
    warm.start(delay=3600)
    assert not warm.wait(0.2) and loader.calls == 0  # released, but still in its delay
    warm.hurry()  # a run was submitted: load now
    assert warm.wait(30) and loader.calls == 1


def test_hurrying_a_held_warmup_loads_without_a_release():
    loader = SlowLoader()
    loader.release.set()
    warm = Warmup([("slow", Once(loader))], name="test-hurried-held-warmup").hold(3600).start(delay=3600)
    warm.hurry()
    assert warm.wait(30) and loader.calls == 1


def test_submitting_an_analysis_hurries_the_warmup(monkeypatch):
    from core import analysis

    hurried = []
    monkeypatch.setattr(analysis, "hurry_warmup", lambda: hurried.append(1))

    class FakeSupervisor:
        def submit_run(self, jobs, **kw):
            assert hurried, "the warm-up must be hurried before the run's jobs can be claimed"
            return "run1"

    from core.infra.config import load_settings

    assert analysis.start_analysis(FakeSupervisor(), load_settings(), "新能源汽车", ["insight"], offline=True) == "run1"
    assert hurried == [1]


def test_the_text_warmup_covers_jieba_its_dictionaries_and_the_sentiment_model(monkeypatch):
    loaders = {"jieba": SlowLoader(), "posseg": SlowLoader(), "idf": SlowLoader(), "model": SlowLoader()}
    for loader in loaders.values():
        loader.release.set()
    monkeypatch.setattr(jieba_loader, "_jieba", Once(loaders["jieba"]))
    monkeypatch.setattr(jieba_loader, "_posseg", Once(loaders["posseg"]))
    monkeypatch.setattr(jieba_loader, "_idf", Once(loaders["idf"]))
    monkeypatch.setattr(sentiment, "_model", Once(loaders["model"]))
    warm = Warmup(W.TEXT_STEPS, name="test-text-warmup").start()
    assert warm.wait(10) and warm.errors == {}
    assert {k: v.calls for k, v in loaders.items()} == {"jieba": 1, "posseg": 1, "idf": 1, "model": 1}
    # the public loaders hand out what the warm-up loaded, without loading again
    first = (jieba_loader.get_jieba(), jieba_loader.get_posseg(), jieba_loader.idf_table(), sentiment.load_model())
    assert first == (jieba_loader._jieba(), jieba_loader._posseg(), jieba_loader._idf(), sentiment._model())
    assert {k: v.calls for k, v in loaders.items()} == {"jieba": 1, "posseg": 1, "idf": 1, "model": 1}


def test_a_run_needing_the_model_mid_warmup_waits_for_the_warmups_load(monkeypatch):
    loader = SlowLoader()
    monkeypatch.setattr(sentiment, "_model", Once(loader, "sentiment model"))
    warm = Warmup([("sentiment model", sentiment.load_model)], name="test-model-warmup").start()
    assert loader.entered.wait(10)
    got: list = []
    [run] = start_threads(1, lambda: got.append(sentiment.load_model()))
    wait_for(lambda: sentiment._model.waiting == 1, what="the run to wait for the warm-up's model load")
    loader.release.set()
    run.join(10)
    assert warm.wait(10) and loader.calls == 1 and got == [sentiment.load_model()]


def test_the_real_loaders_load_once_and_work():
    import gc

    gc.unfreeze()  # (anything frozen before goes back to the collector, so the count below is this warm-up's)
    warm = Warmup(W.TEXT_STEPS, name="test-real-warmup").start()
    assert warm.wait(120) and warm.errors == {}
    assert gc.get_freeze_count() > 0  # what it loaded is out of the collector's reach
    assert jieba_loader._jieba.loads == 1 and sentiment._model.loads == 1
    assert jieba_loader.get_jieba().lcut("新能源汽车") and jieba_loader.idf_table()[1] > 0
    assert jieba_loader.get_posseg().lcut("汽车") and 0.0 <= sentiment.score("今天很开心") <= 1.0
    assert jieba_loader._jieba.loads == 1 and jieba_loader._posseg.loads == 1 and jieba_loader._idf.loads == 1


def test_the_runtime_starts_the_warmup_once_per_process(monkeypatch, tmp_path):
    from core import runtime as runtime_mod

    loader = SlowLoader()
    loader.release.set()
    fresh = Warmup([("fake tooling", Once(loader))], name="test-runtime-warmup")
    monkeypatch.setattr(W, "_process_warmup", fresh)
    rt = runtime_mod.build_runtime(console_log=False)
    try:
        assert rt.supervisor is not None and rt.warmup is fresh and fresh.started
        assert runtime_mod.WARMUP_DELAY_S > 0 and fresh._delay == runtime_mod.WARMUP_DELAY_S
        fresh.hurry()  # (what submitting a run does; otherwise it loads after the delay)
        assert fresh.wait(10) and loader.calls == 1
        rt.new_supervisor()  # a second supervisor in the same process: no second warm-up
        assert rt.warmup is fresh and loader.calls == 1
    finally:
        rt.close(timeout=10)


def test_a_runtime_without_a_supervisor_does_not_warm_up(monkeypatch):
    from core import runtime as runtime_mod

    fresh = Warmup([("fake tooling", lambda: None)], name="test-no-warmup")
    monkeypatch.setattr(W, "_process_warmup", fresh)
    rt = runtime_mod.build_runtime(start_supervisor=False, console_log=False)
    try:
        assert rt.warmup is None and not fresh.started
    finally:
        rt.close(timeout=10)
