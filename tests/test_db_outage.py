"""The database crashed and restarted in the middle of a run (issue 12, item 7; PostgreSQL since
issue 14): the `core run` process keeps going through the outage (its writes wait and retry; nothing
is lost), and once the server is back the run reaches its final status with every job finished.
MariaDB is killed (SIGKILL; InnoDB recovers), PostgreSQL ends by immediate shutdown (crash recovery).

A private server (not the shared test server) so that killing it disturbs no other test."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from core.corpus.importers import import_records
from core.infra.db import open_database
from tests.conftest import wait_for
from tests.support.corpora import price_war_posts
from tests.support.faults import record
from tests.support.mariadb import MariaDBServer, mysql_available
from tests.support.postgres import PostgresServer, postgres_available

pytestmark = [pytest.mark.timeout(420)]
ROOT = Path(__file__).resolve().parent.parent
TOPIC = "新能源汽车价格战"


SERVERS = {"mariadb": (MariaDBServer, mysql_available), "postgresql": (PostgresServer, postgres_available)}


@pytest.fixture(params=[pytest.param("mariadb", marks=pytest.mark.mysql),
                        pytest.param("postgresql", marks=pytest.mark.postgres)])
def private_server(request):
    server_class, available = SERVERS[request.param]
    ok, why = available()
    if not ok and not os.environ.get("CI"):
        pytest.skip(why)
    # PostgreSQL with its durable defaults: the test server's synchronous_commit=off lets an immediate
    # shutdown lose the last commits (seen once: the run's own row), which no real deployment does
    server = (server_class(durable=True) if request.param == "postgresql" else server_class()).start()
    if server.external:
        server.stop()
        pytest.skip(f"an external {request.param} server cannot be crashed by the test")
    server.kind = request.param
    yield server
    server.stop()


def _jobs(url: str) -> list[tuple[str, str]]:
    db = open_database(url)
    try:
        with db.session() as s:
            return [(r[0], r[1]) for r in s.execute(text("SELECT kind, status FROM jobs"))]
    finally:
        db.dispose()


def test_a_run_survives_the_database_crashing_and_coming_back(private_server, isolated_env):
    url = private_server.fresh_database()
    db = open_database(url)
    assert db.ok, db.error
    import_records(db, price_war_posts(60), source="test")
    db.dispose()
    env = {**os.environ, "DATABASE_URL": url, "SHOAL_MIN_SOURCES": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "core", "run", "--offline", TOPIC, "--paragraphs", "3",
                             "--reflections", "2", "--json", "--timeout", "300"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        # Crash the server once the engines are at work.
        wait_for(lambda: any(status == "running" for _kind, status in _jobs(url)) or proc.poll() is not None,
                 timeout=120, what="an engine job running")
        assert proc.poll() is None, proc.communicate()
        private_server.crash()
        wait_for(lambda: proc.poll() is not None or any("database is unreachable" in line for line in err_lines),
                 timeout=120, what="the run to notice the outage")
        private_server.restart()
        back = time.monotonic()
        out = proc.stdout.read()
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=30)
    err = "".join(err_lines)
    if os.environ.get("SHOAL_TEST_DUMP"):
        Path(os.environ["SHOAL_TEST_DUMP"]).write_text(err)
    assert "database is back" in err, err[-3000:]
    assert out.strip(), f"rc {proc.returncode}, no summary:\n{err[:3000]}\n...\n{err[-1500:]}"
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "completed", out + err[-3000:]
    record(f"{private_server.kind}_restart", time.monotonic() - back, "completed")
    assert "Traceback" not in err, err[-3000:]
    jobs = _jobs(url)
    assert jobs and all(status == "completed" for _kind, status in jobs), jobs
