"""Warm before needed: the text tooling loads once per process, on one background thread at runtime start.

    Once(load, name)   a value loaded at most once per process, thread-safe: the first caller loads it,
                       callers arriving meanwhile block on that load and get the same object (a load
                       that raises stores nothing: the error goes to the caller, the next call tries again)
    Warmup(steps)      runs (name, callable) steps in order on one daemon thread: start(delay)
                       (idempotent), hurry() (load now), hold(limit)/release() (after the delay,
                       wait for an event too), wait(timeout), done, errors, seconds.
                       A failing step is logged and recorded,
                       never raised: the next step still runs, and whoever needs that part loads it
                       (and sees the error) on first use, as without a warm-up
    text_warmup()      the process's Warmup of the text tooling (jieba and its dictionary, part-of-speech
                       tags, the TF-IDF table, the sentiment model); not started
    start_warmup(delay) the same, started (core/runtime.py calls it when it makes a supervisor)
    hurry_warmup()     load now (core/analysis.py calls it when a run is submitted)

The runtime starts it with a short delay (core.runtime.WARMUP_DELAY_S): loading jieba holds the
interpreter for seconds, and the first page, rendering in the same process, must not wait behind
it. The app also holds it until its first page has been shown (ui.preload: an event, where the
delay is a guess of how long a page takes). A run submitted earlier ends the delay and the hold.

A run that starts before the warm-up is over waits for it once, and only for the parts it uses: its
first call of `get_jieba()` (or `get_posseg`, `idf_table`, `load_model`) blocks on the warm-up's
load in progress instead of starting a second one. The steps import jieba, numpy and the model in
the background thread, so a page importing the runtime does not pay for them.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Sequence, TypeVar

from loguru import logger

T = TypeVar("T")

__all__ = ["Once", "Warmup", "text_warmup", "start_warmup", "hurry_warmup", "TEXT_STEPS"]


class Once(Generic[T]):
    """`load()` called at most once successfully per process; every caller gets its value."""

    def __init__(self, load: Callable[[], T], name: str = ""):
        self._load = load
        self.name = name or getattr(load, "__name__", "value")
        self._lock = threading.Lock()
        self._done = False
        self._value: T | None = None
        self.loads = 0        # successful loads: 1 once loaded, whatever the number of callers
        self.waiting = 0      # callers blocked on a load in progress (tests wait on it)

    @property
    def loaded(self) -> bool:
        return self._done

    def __call__(self) -> T:
        if self._done:  # the fast path: one attribute read, no lock
            return self._value  # type: ignore[return-value]
        contended = self._lock.locked()
        if contended:
            with _count_lock:
                self.waiting += 1
        try:
            with self._lock:
                if not self._done:
                    value = self._load()
                    self._value, self._done = value, True
                    self.loads += 1
        finally:
            if contended:
                with _count_lock:
                    self.waiting -= 1
        return self._value  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Once({self.name!r}, loaded={self._done})"


_count_lock = threading.Lock()


class Warmup:
    """Named steps run in order, once, on one daemon thread; errors are logged and kept, never raised."""

    def __init__(self, steps: Sequence[tuple[str, Callable[[], object]]], name: str = "shoal-warmup"):
        self.steps = list(steps)
        self.name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._go = threading.Event()
        self._delay = 0.0
        self._hold: float | None = None  # hold(): after the delay, wait for release() too
        self._released = threading.Event()
        self.errors: dict[str, str] = {}
        self.seconds: dict[str, float] = {}

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def start(self, delay: float = 0.0) -> "Warmup":
        """Start the thread, the first time only; it begins loading after `delay` seconds, or at once
        when `hurry()` is called. A thread that cannot start is logged, not raised: everything then
        loads on first use, as without a warm-up."""
        with self._lock:
            if self._thread is None:
                self._delay = max(0.0, float(delay))
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                try:
                    self._thread.start()
                except RuntimeError as exc:  # "can't start new thread"
                    self.errors["thread"] = str(exc)
                    logger.warning("warm-up not started ({}); text tooling loads on first use", exc)
                    self._done.set()
        return self

    def hold(self, limit: float) -> "Warmup":
        """Call before `start`: after its start delay the thread also waits for `release()`, at most
        `limit` seconds. The app holds it until its first page has been shown (ui.preload): on a machine
        where that page takes longer than the delay, the loading does not compete with it; `limit`
        covers a server nobody opens. `hurry()` ends both."""
        with self._lock:
            self._hold = max(0.0, float(limit))
        return self

    def release(self) -> "Warmup":
        """End a hold (now, or before the thread starts). Starts no thread (a runtime without a
        supervisor needs no warm-up)."""
        self._released.set()
        return self

    def hurry(self) -> "Warmup":
        """Begin loading now: end a start delay, or start the thread without one."""
        self._go.set()
        self._released.set()
        return self.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every step has run (True), or `timeout` seconds pass (False). Never started: False."""
        if self._thread is None:
            return self.done
        return self._done.wait(timeout)

    def _run(self) -> None:
        if self._delay:
            self._go.wait(self._delay)
        if self._hold is not None:
            self._released.wait(self._hold)
        began = time.perf_counter()
        try:
            for name, step in self.steps:
                t0 = time.perf_counter()
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - a warm-up never breaks a page or a run
                    self.errors[name] = f"{type(exc).__name__}: {exc}"
                    logger.warning("warm-up: {} failed ({}); it will load on first use", name, self.errors[name])
                finally:
                    self.seconds[name] = time.perf_counter() - t0
            logger.debug("warm-up done in {:.2f} s: {}", time.perf_counter() - began,
                         ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items()))
        finally:
            self._done.set()


# -- the text tooling --------------------------------------------------------------------------------

def _jieba() -> object:
    from core.text.jieba_loader import get_jieba
    return get_jieba()


def _posseg() -> object:
    from core.text.jieba_loader import get_posseg
    return get_posseg()


def _idf() -> object:
    from core.text.jieba_loader import idf_table
    return idf_table()


def _sentiment() -> object:
    from core.text.sentiment import load_model
    return load_model()


def _freeze() -> object:
    """Move what is loaded so far (the tables above, the imported modules) out of the collector's
    reach: they live as long as the process, and every full collection would walk them again."""
    import gc

    gc.freeze()
    return None


# In the order a run needs them: corpus search segments first, keywords then need tags and TF-IDF,
# sentiment scoring comes with the first documents. (The near-duplicate clustering, core.text.dedup, is
# plain Python and needs no warming.)
TEXT_STEPS: tuple[tuple[str, Callable[[], object]], ...] = (
    ("jieba dictionary", _jieba), ("jieba part-of-speech tags", _posseg), ("jieba TF-IDF table", _idf),
    ("sentiment model", _sentiment), ("collector frozen", _freeze),
)

_process_lock = threading.Lock()
_process_warmup: Warmup | None = None


def text_warmup() -> Warmup:
    """The one Warmup of the text tooling in this process (created on first call, not started)."""
    global _process_warmup
    with _process_lock:
        if _process_warmup is None:
            _process_warmup = Warmup(TEXT_STEPS, name="shoal-warmup")
        return _process_warmup


def start_warmup(delay: float = 0.0) -> Warmup:
    """Start the text warm-up on its daemon thread (once per process), loading after `delay` seconds."""
    return text_warmup().start(delay)


def hurry_warmup() -> Warmup:
    """A run is starting: the text warm-up loads now (started if it was not)."""
    return text_warmup().hurry()
