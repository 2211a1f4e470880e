"""Home's imports and runtime prepared while the browser loads Streamlit's frontend (ui/preload.py,
Home.py's st.App).

The Preload object: imports on its own thread, once, then builds; a script run's wait() returns at
once when nothing was started and after the work when something was; a step that fails does not stop
the others. And the real thing: `streamlit run Home.py` imports Home.py as a module at server start,
and its lifespan has Home's modules imported and the runtime built before any page is opened.
"""
from __future__ import annotations

import sys
import textwrap
import threading

import pytest

from sqlalchemy import func, select

from core.infra.db import open_database
from core.infra.models import Worker
from tests.conftest import wait_for
from tests.support.streamlit_server import StreamlitServer
from ui import preload


def _module(tmp_path, name: str, body: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return name


@pytest.fixture
def probe_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("shoal_preload_probe")]:
        del sys.modules[name]


def _workers(db) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Worker)) or 0)


def test_wait_returns_at_once_when_nothing_was_started():
    p = preload.Preload(("json",))
    assert not p.started
    assert p.wait(timeout=0) is True


def test_the_modules_are_imported_on_the_preload_thread_once(probe_dir):
    gate = threading.Event()
    name = _module(probe_dir, "shoal_preload_probe_a", """
        import threading
        THREAD = threading.current_thread().name
        COUNT = globals().get("COUNT", 0) + 1
    """)
    p = preload.Preload((name,), freeze=False)
    original_load = p._load

    def held_load():  # the thread waits until the test has seen wait() block
        gate.wait(30)
        original_load()

    p._load = held_load
    first, second = p.start(), p.start()
    assert first is second and first.name == preload.THREAD_NAME
    assert p.wait(timeout=0.05) is False  # not done yet: a script run would wait
    assert name not in sys.modules
    gate.set()
    assert p.wait(timeout=30) is True
    assert sys.modules[name].THREAD == preload.THREAD_NAME
    assert sys.modules[name].COUNT == 1
    assert set(p.timings) == {name} and not p.failed


def test_a_module_that_fails_to_import_does_not_stop_the_rest(probe_dir):
    broken = _module(probe_dir, "shoal_preload_probe_broken", "raise RuntimeError('no such service')\n")
    fine = _module(probe_dir, "shoal_preload_probe_fine", "VALUE = 42\n")
    built = []

    def build():
        built.append(sys.modules.get(fine))  # after the imports
        raise OSError("database unreachable")

    p = preload.Preload((broken, fine), then=build, freeze=False)
    p.start()
    assert p.wait(timeout=30) is True
    assert "no such service" in p.failed[broken]
    assert sys.modules[fine].VALUE == 42
    assert built == [sys.modules[fine]]
    assert "database unreachable" in p.failed[preload.RUNTIME]
    assert set(p.timings) == {broken, fine, preload.RUNTIME}


def test_the_home_modules_exist():
    """The list names importable modules (a renamed module would silently stop being preloaded), and the
    steps after the runtime work (the language catalogues, Streamlit's first-element check)."""
    from core.i18n import LANGUAGES, catalogue

    catalogue.cache_clear()
    p = preload.Preload(preload.MODULES, freeze=False, after=preload._app.after)
    p.start()
    assert p.wait(timeout=120) is True
    assert p.failed == {}
    assert {"catalogues", "first element"} <= set(p.timings)
    assert catalogue.cache_info().currsize == len(LANGUAGES)


def test_the_after_steps_run_after_the_runtime_in_order(probe_dir):
    name = _module(probe_dir, "shoal_preload_probe_after", "VALUE = 1\n")
    order = []
    p = preload.Preload((name,), then=lambda: order.append(("runtime", name in sys.modules)), freeze=False,
                        after=(("one", lambda: order.append(("one", True))), ("two", lambda: 1 / 0)))
    p.start()
    assert p.wait(timeout=30) is True
    assert order == [("runtime", True), ("one", True)]
    assert "ZeroDivisionError" in p.failed["two"] and list(p.timings) == [name, preload.RUNTIME, "one", "two"]


def _held_text_warmup(monkeypatch, name: str):
    from core.text import warmup as W

    loaded = threading.Event()
    held = W.Warmup([("fake tooling", loaded.set)], name=name).hold(3600).start()
    monkeypatch.setattr(W, "_process_warmup", held)
    return held, loaded


def test_a_page_shown_in_the_app_releases_the_held_text_warmup(monkeypatch):
    held, loaded = _held_text_warmup(monkeypatch, "test-held-by-app")
    app = preload.Preload(("json",), freeze=False)
    app.start()
    monkeypatch.setattr(preload, "_app", app)
    assert not held.wait(0.2) and not loaded.is_set()  # held: the first page is not shown yet
    preload.page_shown()
    assert held.wait(30) and loaded.is_set()


def test_a_page_shown_without_the_apps_preload_leaves_the_warmup_alone(monkeypatch):
    held, loaded = _held_text_warmup(monkeypatch, "test-held-no-app")
    monkeypatch.setattr(preload, "_app", preload.Preload(("json",), freeze=False))  # never started (AppTest)
    preload.page_shown()
    assert not held.wait(0.2) and not loaded.is_set()
    held.release()  # (let the test's thread end)
    assert held.wait(30)


@pytest.mark.e2e
@pytest.mark.slow
def test_streamlit_run_preloads_home_before_any_page_is_opened(tmp_path):
    """No browser: the server alone, started as users start it, imports Home.py as its st.App and the
    lifespan's thread imports its modules, builds the runtime (its supervisor registers a worker row) and
    logs it."""
    env = {"SHOAL_DATA_DIR": str(tmp_path / "data"), "SHOAL_LOG_DIR": str(tmp_path / "logs"),
           "SHOAL_ENV_FILE": str(tmp_path / ".env")}
    server = StreamlitServer("Home.py", env=env, log_path=tmp_path / "streamlit.log", startup_timeout=90).start()
    try:
        app_log = tmp_path / "logs" / "app.log"  # the runtime's log (core.infra.logs), where its line goes
        wait_for(lambda: app_log.is_file() and "preload: " in app_log.read_text(encoding="utf-8"), timeout=120,
                 what=f"the app to log its preload:\n{server.log_text()}")
        log = app_log.read_text(encoding="utf-8")
        assert f"preload: {len(preload.MODULES)} modules imported and the runtime built" in log, log[-3000:]
        assert "preload: " not in log.replace("preload: " + str(len(preload.MODULES)), ""), log[-3000:]  # no failure
        assert "missing ScriptRunContext" not in server.log_text(), server.log_text()
        db = open_database(f"sqlite:///{tmp_path / 'data' / 'shoal.db'}")
        try:
            wait_for(lambda: _workers(db), timeout=60, what="the app's supervisor to register its worker")
        finally:
            db.dispose()
    finally:
        server.stop()
