"""Cold start: Home's imports and the runtime, prepared while the browser loads Streamlit's frontend.

From the server answering to the page's websocket connecting, Chromium spends about 2 s loading and
starting Streamlit's frontend, and the server's Python has nothing to do. Home's first script run
then spent almost all its time importing (the runtime's modules: SQLAlchemy, the models, the job
handlers; and pandas and pyarrow for its tables), then building the runtime (py-spy of the script
thread, bench/cold_start.py).

`streamlit run Home.py` finds `app = st.App(...)` in Home.py and imports Home.py once as a module
when the server starts; the app's lifespan calls `start()`, which does that work on a thread of its
own, in the idle window:

- imports MODULES, then builds the runtime (ui.runtime.prebuild: the same st.cache_resource the pages
  use, so the first page finds it built), then does what the first page would otherwise do first (the
  language catalogues, Streamlit's first-element check);
- holds the runtime's text warm-up (jieba, the sentiment model: seconds of CPU), beyond its start
  delay, until a script run has ended (`page_shown()`, Home.py): on a machine where the first page
  takes longer than that delay, the loading still does not compete with it;
- `gc.freeze()` after each step: the objects the imports made are never garbage, and Streamlit runs a
  full collection after every script run (`runner.postScriptGC`), which otherwise walks them all
  (about 0.1 s a run, every fragment refresh included);
- a short thread switch interval while it runs, so that the server's event loop, serving the
  frontend's files meanwhile, gets the interpreter back quickly from this thread.

A script run calls `wait()` before its own imports: the work is then done (or it waits for the rest,
which it would otherwise have done itself), and no two threads import the same modules at once (two
threads importing modules that import each other can see one half-initialised). Where nothing
started the preload (AppTest, a bare import), `wait()` returns at once and the page does it all, as
before. This module imports nothing heavy itself: Home.py imports it while the server starts.
"""
from __future__ import annotations

import gc
import importlib
import sys
import threading
import time
from typing import Callable

# What Home's first script run imports beyond what the server has loaded: the menu, Home's panels
# (they import the runtime and the widgets), pyarrow for its tables (ui.widgets.arrow_table: Home
# needs no pandas), and the Streamlit modules its first run loads (the page icon's emoji table, st.dataframe).
MODULES = ("ui.navigation", "ui.home_view", "ui.widgets", "pyarrow", "pyarrow.json",
           "streamlit.emojis", "streamlit.dataframe_util", "streamlit.elements.arrow")
WAIT_LIMIT_S = 60.0  # a script run never waits longer than this for the preload
WARMUP_HOLD_S = 60.0  # the text warm-up waits for the first page at most this long (a server nobody opens)
SWITCH_INTERVAL_S = 0.0005  # while preloading (Python's default is 0.005)
THREAD_NAME = "shoal-preload"
RUNTIME = "runtime"  # the name the runtime's build goes by in `timings` and `failed`


class Preload:
    """Imports `modules`, then calls `then` (if any) and the `after` steps, on one daemon thread started
    at most once."""

    def __init__(self, modules: tuple[str, ...], then: Callable[[], object] | None = None, *, freeze: bool = True,
                 after: tuple[tuple[str, Callable[[], object]], ...] = ()):
        self.modules = modules
        self.then = then
        self.after = after  # (name, callable) steps after `then`
        self.freeze = freeze
        self.timings: dict[str, float] = {}  # step → seconds it took on the thread
        self.failed: dict[str, str] = {}  # step → why it failed (the page does it again and shows the error)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> threading.Thread:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._load, name=THREAD_NAME, daemon=True)
                self._thread.start()
            return self._thread

    def wait(self, timeout: float = WAIT_LIMIT_S) -> bool:
        """True once the work is done (at once if none was started); False after `timeout`."""
        if self._thread is None or threading.current_thread() is self._thread:
            return True
        return self._done.wait(timeout)

    def _step(self, name: str, work: Callable[[], object], logger) -> None:
        t0 = time.perf_counter()
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - the page does it again and shows the error there
            self.failed[name] = f"{type(exc).__name__}: {exc}"
            logger.warning("preload: {} failed: {}", name, exc)
        self.timings[name] = time.perf_counter() - t0
        if self.freeze:
            gc.freeze()

    def _load(self) -> None:
        from loguru import logger  # here, not at the top: Home.py imports this module while the server starts

        began = time.perf_counter()
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, SWITCH_INTERVAL_S))
        try:
            for name in self.modules:
                self._step(name, lambda name=name: importlib.import_module(name), logger)
            if self.then is not None:
                self._step(RUNTIME, self.then, logger)
            for name, work in self.after:
                self._step(name, work, logger)
            logger.info("preload: {} modules imported{} in {:.2f} s", len(self.modules),
                         " and the runtime built" if self.then is not None and RUNTIME not in self.failed else "",
                         time.perf_counter() - began)
        finally:
            sys.setswitchinterval(interval)
            self._done.set()


def _build_runtime() -> None:
    from core.text.warmup import text_warmup
    from ui.runtime import prebuild

    text_warmup().hold(WARMUP_HOLD_S)  # after its delay it also waits for a page to be shown (page_shown)
    prebuild()


def _catalogues() -> None:
    """The reader's language is not known yet: both catalogues (parsed TOML, ~15 ms each)."""
    from core.i18n import LANGUAGES, catalogue

    for lang in LANGUAGES:
        catalogue(lang)


def _first_element() -> None:
    """Streamlit's first element in a process asks `env_util.is_repl()`, whose `inspect.stack()` walks
    the path of every loaded module once (inspect's module cache): 0.05-0.15 s of the first page."""
    from streamlit import env_util

    env_util.is_repl()


_app = Preload(MODULES, then=_build_runtime, after=(("catalogues", _catalogues), ("first element", _first_element)))


def start() -> threading.Thread:
    """Begin Home's preparation (once per process): called by Home.py's st.App lifespan."""
    return _app.start()


def wait(timeout: float = WAIT_LIMIT_S) -> bool:
    """Called by each script run before its imports (Home.py)."""
    return _app.wait(timeout)


def page_shown() -> None:
    """Called after each script run (Home.py): a page has been shown, so the text warm-up, held by
    `_build_runtime`, may load once its start delay is over. Only where this preload ran (the app);
    elsewhere (AppTest, a bare import) the warm-up keeps its start delay alone."""
    if _app.started:
        from core.text.warmup import text_warmup

        text_warmup().release()
