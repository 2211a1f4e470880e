"""Shared fixtures: an isolated environment per test, databases on SQLite, MariaDB and PostgreSQL, supervisors."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.infra.config import SPECS  # noqa: E402
from core.infra.db import open_database  # noqa: E402
from core.infra.events import EventLog  # noqa: E402
from core.supervisor import Supervisor, SupervisorConfig  # noqa: E402
from tests.support.mariadb import mariadb_server_fixture  # noqa: E402
from tests.support.postgres import postgres_server_fixture  # noqa: E402

mariadb_server = mariadb_server_fixture()
postgres_server = postgres_server_fixture()

# The backends storage tests run on: the embedded default and real MariaDB and PostgreSQL servers
# (each started once per test process; a test skips when its server cannot run here).
DB_BACKENDS = ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql),
               pytest.param("postgresql", marks=pytest.mark.postgres)]


def server_database(request, backend: str) -> str:
    """A fresh, empty database on the server of `backend` ("mysql" or "postgresql"): its URL."""
    fixture = {"mysql": "mariadb_server", "postgresql": "postgres_server"}[backend]
    return request.getfixturevalue(fixture).fresh_database()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test reads the developer's .env, keys or data: every setting starts from its default."""
    for key in SPECS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SHOAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHOAL_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("SHOAL_ENV_FILE", str(tmp_path / ".env"))
    # The tests' corpora hold a dozen posts, not the 20 sources an analysis needs by default; the
    # tests of the threshold itself set their own.
    monkeypatch.setenv("SHOAL_MIN_SOURCES", "3")
    yield tmp_path


@pytest.fixture(params=DB_BACKENDS)
def db_url(request, tmp_path):
    """The same tests on the embedded default and on real MariaDB and PostgreSQL servers."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return server_database(request, request.param)


@pytest.fixture
def db(db_url):
    database = open_database(db_url)
    assert database.ok, database.error
    yield database
    database.dispose()


@pytest.fixture
def events(db):
    log = EventLog(db)
    yield log
    log.close()


def fast_config(**overrides) -> SupervisorConfig:
    """Short leases and heartbeats so lease and stall behaviour shows within a second or two."""
    base = dict(max_workers=4, max_concurrent_runs=4, lease_seconds=1.5, heartbeat_seconds=0.1, stall_seconds=60,
                cancel_timeout=2.0, shutdown_timeout=3.0, max_attempts=3, auto_resume=True, poll_seconds=0.05)
    base.update(overrides)
    return SupervisorConfig(**base)


@pytest.fixture
def job_handlers():
    """The job handlers a supervisor gets in tests: the app's own (a test module may override this
    fixture to add handlers of its own, or set entries of it)."""
    from core.runtime import build_handlers

    return build_handlers()


@pytest.fixture
def make_supervisor(db, events, job_handlers):
    started: list[Supervisor] = []

    def factory(start: bool = True, worker_id: str | None = None, **overrides) -> Supervisor:
        sup = Supervisor(db, events, fast_config(**overrides), worker_id=worker_id, handlers=job_handlers)
        if start:
            sup.start()
        started.append(sup)
        return sup

    yield factory
    for sup in started:
        sup.shutdown(timeout=3)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll until predicate() is truthy (CI machines are loaded: wait for a condition, never a fixed sleep)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
