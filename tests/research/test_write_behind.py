"""An engine run's checkpoints and node records written behind its paragraphs (core.research.write_behind)."""
from __future__ import annotations

import contextvars
import threading

import pytest

from core.research.write_behind import Posts, WriteBehind
from core.work.jobs import LeaseLost
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(30)


class Store:
    """The checkpoint store: records each write; the first write waits for `release` when `hold` is set."""

    def __init__(self, hold: bool = False, fail_on: int | None = None):
        self.writes: list[tuple[dict, list]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.fail_on = fail_on

    def __call__(self, data: dict, items: list) -> None:
        self.started.set()
        self.release.wait(10)
        if self.fail_on is not None and len(self.writes) + 1 == self.fail_on:
            self.writes.append(({"failed": data}, items))
            raise LeaseLost("job-1")
        self.writes.append((data, items))


def test_the_latest_checkpoint_wins_and_no_item_is_dropped():
    store = Store(hold=True)
    behind = WriteBehind(store)
    behind.save({"n": 1}, [(1, "a")])
    assert store.started.wait(10)  # the first write is under way (and held)
    behind.save({"n": 2}, [(2, "b")])
    behind.save({"n": 3}, [])
    behind.save({"n": 4}, [(3, "c"), (4, "d")])
    assert behind.pending == 2  # the held write, and one write for the three saves queued behind it
    store.release.set()
    behind.flush()
    assert store.writes == [({"n": 1}, [(1, "a")]), ({"n": 4}, [(2, "b"), (3, "c"), (4, "d")])]
    assert behind.pending == 0


def test_flush_waits_for_everything_given_and_records_keep_their_order_and_context():
    store = Store(hold=True)
    behind = WriteBehind(store)
    trace = contextvars.ContextVar("trace", default="-")
    seen: list[tuple[str, str]] = []
    behind.save({"n": 1}, [])
    for i in range(5):
        trace.set(f"t{i}")
        behind.log(lambda i=i: seen.append((f"record {i}", trace.get())))
    assert store.started.wait(10) and seen == []  # nothing runs ahead of the held checkpoint
    threading.Timer(0.05, store.release.set).start()
    behind.flush()
    assert store.writes == [({"n": 1}, [])]
    assert seen == [(f"record {i}", f"t{i}") for i in range(5)]  # in order, each in its caller's context


def test_a_failed_write_is_raised_at_the_next_save_and_at_flush_and_nothing_is_written_after_it():
    store = Store(fail_on=1)
    behind = WriteBehind(store)
    behind.save({"n": 1}, [(1, "a")])
    with pytest.raises(LeaseLost):
        behind.flush()
    with pytest.raises(LeaseLost):
        behind.save({"n": 2}, [(2, "b")])
    with pytest.raises(LeaseLost):
        behind.flush()
    assert store.writes == [({"failed": {"n": 1}}, [(1, "a")])]


def test_a_failing_record_is_logged_and_the_writer_goes_on():
    store = Store()
    behind = WriteBehind(store)
    behind.log(lambda: 1 / 0)
    behind.save({"n": 1}, [])
    behind.flush()
    assert store.writes == [({"n": 1}, [])]


def test_an_idle_writer_ends_and_a_later_save_starts_another(monkeypatch):
    monkeypatch.setattr("core.research.write_behind.IDLE_EXIT", 0.01)
    store = Store()
    behind = WriteBehind(store, name="wb-test")
    behind.save({"n": 1}, [])
    behind.flush()
    wait_for(lambda: not any(t.name == "wb-test-behind" for t in threading.enumerate()), what="the idle writer to end")
    behind.save({"n": 2}, [])
    behind.flush()
    assert [d for d, _ in store.writes] == [{"n": 1}, {"n": 2}]


def test_the_writer_begins_its_batch_after_a_delay_that_a_flush_ends(monkeypatch):
    monkeypatch.setattr("core.research.write_behind.DELAY", 120.0)  # far past this test's timeout
    store = Store()
    seen: list[str] = []
    behind = WriteBehind(store, name="wb-delay")
    behind.save({"n": 1}, [(1, "a")])
    behind.log(seen.append, "record")
    wait_for(lambda: any(t.name == "wb-delay-behind" for t in threading.enumerate()), what="the writer")
    behind.save({"n": 2}, [(2, "b")])
    assert store.writes == [] and seen == [] and behind.pending == 2  # waiting for its batch
    behind.flush()  # begins the batch at once
    assert store.writes == [({"n": 2}, [(1, "a"), (2, "b")])] and seen == ["record"]


def test_posts_wait_their_delay_in_order_and_a_drain_ends_it_and_raises_the_first_failure(monkeypatch):
    monkeypatch.setattr("core.research.write_behind.DELAY", 120.0)  # far past this test's timeout
    posts = Posts("posts-test")
    done: list[int] = []

    def post(n: int) -> None:
        if n == 2:
            raise LeaseLost("job-1")
        done.append(n)

    for n in (1, 2, 3):
        posts.submit(post, n)
    wait_for(lambda: any(t.name.startswith("posts-test-forum") for t in threading.enumerate()), what="the poster")
    assert done == []  # each post waits for its delay
    with pytest.raises(LeaseLost):
        posts.drain()  # at once, not after the delay
    assert done == [1, 3]
    posts.submit(post, 4)  # a drained Posts takes new posts
    posts.drain()
    assert done == [1, 3, 4]
