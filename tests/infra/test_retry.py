"""core.infra.retry against real HTTP on loopback (httpx and the openai client), a real EventLog on
SQLite, and real SQLAlchemy errors. Waits are recorded through the injectable sleep, except in
the tests that measure real time on purpose."""
from __future__ import annotations

import email.utils
import time
from types import SimpleNamespace

import httpx
import openai
import pytest
from loguru import logger
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from core.infra import retry
from core.infra.db import open_database
from core.infra.events import EventLog
from core.infra.retry import (
    DATABASE,
    LLM,
    SEARCH,
    RetryPolicy,
    call_with_retry,
    classify,
    retry_after_seconds,
    retry_counts,
    retrying,
    set_event_sink,
)
from core.infra.tracing import trace_scope
from tests.fakes.http_server import FakeHTTPServer, Reply, fake_http_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(60)

# Small waits so the exponential path is exercised without slowing the suite.
FAST = RetryPolicy("test", max_attempts=4, max_seconds=10.0, initial_wait=0.01, max_wait=0.05)
SECRET = "sk-live0123456789abcdefXYZ"

CHAT_OK = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "fake-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


class Sleeps(list):
    """Injectable sleep: records each wait instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def _clean_state():
    retry.reset_retry_counts()
    set_event_sink(None)
    yield
    set_event_sink(None)
    retry.reset_retry_counts()


@pytest.fixture
def srv(fake_http_server):  # noqa: F811 (pytest fixture injection)
    return fake_http_server


@pytest.fixture
def client(srv):
    with httpx.Client(base_url=srv.url, timeout=5.0) as c:
        yield c


@pytest.fixture
def events(tmp_path):
    db = open_database(f"sqlite:///{tmp_path}/t.db")
    assert db.ok, db.error
    log = EventLog(db)
    set_event_sink(log)
    yield log
    db.dispose()


@pytest.fixture
def log_lines():
    lines: list[str] = []
    handler = logger.add(lambda m: lines.append(str(m)), level="WARNING", format="{message}")
    yield lines
    logger.remove(handler)


def get_ok(client: httpx.Client, path: str) -> httpx.Response:
    response = client.get(path)
    response.raise_for_status()
    return response


def fetch(client: httpx.Client, path: str, policy: RetryPolicy = FAST, sleep=None, **kw) -> httpx.Response:
    for attempt in retrying(policy, op="fetch", sleep=sleep, **kw):
        with attempt:
            return get_ok(client, path)
    raise AssertionError("unreachable")


# --- HTTP status handling --------------------------------------------------------------------

def test_429_with_retry_after_waits_what_the_server_asked_then_succeeds(srv, client):
    srv.script("/q", Reply(429, headers={"Retry-After": "1"}), Reply(200, json={"ok": 1}))
    sleeps = Sleeps()
    policy = RetryPolicy("test", max_attempts=4, max_seconds=10.0, initial_wait=0.01, max_wait=5.0)

    attempts_seen = []
    for attempt in retrying(policy, op="q", sleep=sleeps):
        with attempt:
            attempts_seen.append(attempt.retry_state.attempt_number)
            result = get_ok(client, "/q").json()

    assert result == {"ok": 1}
    assert attempts_seen == [1, 2]
    assert sleeps == [pytest.approx(1.0)] and sleeps[0] >= 1.0
    assert len(srv.requests_to("/q")) == 2
    assert retry_counts() == {("test", "rate_limit"): 1}


def test_retry_after_really_sleeps(srv, client):
    srv.script("/q", Reply(429, headers={"retry-after": "1"}), Reply(200, json={"ok": 1}))
    policy = RetryPolicy("test", max_attempts=3, max_seconds=10.0, initial_wait=0.01, max_wait=5.0)
    assert fetch(client, "/q", policy).json() == {"ok": 1}
    first, second = srv.requests_to("/q")  # exactly one wait, then one retry that got the answer
    assert second.time - first.time >= 1.0
    assert retry_counts() == {("test", "rate_limit"): 1}


def test_retry_after_is_capped_by_max_wait(srv, client):
    srv.script("/q", Reply(503, headers={"Retry-After": "120"}), Reply(200, json={}))
    sleeps = Sleeps()
    fetch(client, "/q", FAST, sleep=sleeps)
    assert sleeps == [FAST.max_wait]


def test_retry_after_longer_than_the_budget_gives_up_without_sleeping(srv, client):
    srv.always("/q", Reply(429, headers={"Retry-After": "30"}))
    sleeps = Sleeps()
    policy = RetryPolicy("test", max_attempts=5, max_seconds=2.0, initial_wait=0.01, max_wait=60.0)
    with pytest.raises(httpx.HTTPStatusError) as info:
        fetch(client, "/q", policy, sleep=sleeps)
    assert info.value.response.status_code == 429
    assert sleeps == []
    assert len(srv.requests_to("/q")) == 1


def test_500_500_200_makes_three_requests(srv, client):
    srv.script("/q", Reply(500), Reply(500), Reply(200, json={"n": 3}))
    sleeps = Sleeps()
    assert fetch(client, "/q", sleep=sleeps).json() == {"n": 3}
    assert len(srv.requests_to("/q")) == 3
    assert len(sleeps) == 2 and all(0 <= s <= FAST.max_wait for s in sleeps)
    assert retry_counts() == {("test", "server_error"): 2}


def test_503_forever_stops_at_max_attempts_and_reraises_the_original_error(srv, client):
    srv.always("/q", Reply(503, json={"error": "overloaded"}))
    sleeps = Sleeps()
    with pytest.raises(httpx.HTTPStatusError) as info:
        fetch(client, "/q", sleep=sleeps)
    assert info.value.response.status_code == 503
    assert len(srv.requests_to("/q")) == FAST.max_attempts
    assert len(sleeps) == FAST.max_attempts - 1
    assert retry_counts() == {("test", "server_error"): FAST.max_attempts - 1}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_raised_at_once(srv, client, status):
    srv.always("/q", Reply(status, json={"error": "no"}))
    sleeps = Sleeps()
    with pytest.raises(httpx.HTTPStatusError) as info:
        fetch(client, "/q", sleep=sleeps)
    assert info.value.response.status_code == status
    assert len(srv.requests_to("/q")) == 1
    assert sleeps == [] and retry_counts() == {}


# --- timeouts and connections ---------------------------------------------------------------

def test_stall_past_the_client_timeout_is_retried_as_timeout(srv):
    # The stalled answer ({"late": True}) would arrive after 30 s: getting {"ok": True} proves the client
    # did not wait for it but gave up at its 0.3 s timeout and retried.
    srv.script("/q", Reply(200, json={"late": True}, delay=30.0), Reply(200, json={"ok": True}))
    sleeps = Sleeps()
    with httpx.Client(base_url=srv.url, timeout=0.3) as c:
        assert fetch(c, "/q", sleep=sleeps).json() == {"ok": True}
    assert len(srv.requests_to("/q")) == 2
    assert retry_counts() == {("test", "timeout"): 1}


def test_dropped_connection_is_retried_as_connection(srv, client):
    srv.script("/q", Reply(drop=True), Reply(200, json={"ok": True}))
    assert fetch(client, "/q", sleep=Sleeps()).json() == {"ok": True}
    assert len(srv.requests_to("/q")) == 2
    assert retry_counts() == {("test", "connection"): 1}


def test_connection_refused_is_retried_then_reraised():
    with FakeHTTPServer() as gone:
        url = gone.url  # a port that nobody listens on once closed
    sleeps = Sleeps()
    with httpx.Client(base_url=url, timeout=1.0) as c:
        with pytest.raises(httpx.ConnectError):
            fetch(c, "/q", sleep=sleeps)
    assert len(sleeps) == FAST.max_attempts - 1
    assert retry_counts() == {("test", "connection"): FAST.max_attempts - 1}


def test_total_time_budget_stops_before_max_attempts(srv, client):
    # Each attempt costs 0.15 s; 50 attempts would take 7 s, the budget is 0.6 s.
    srv.always("/q", Reply(503, delay=0.15))
    policy = RetryPolicy("test", max_attempts=50, max_seconds=0.6, initial_wait=0.02, max_wait=0.05)
    waits = []

    def real_sleep(s):
        waits.append(s)
        time.sleep(s)

    with pytest.raises(httpx.HTTPStatusError):
        fetch(client, "/q", policy, sleep=real_sleep)
    requests = srv.requests_to("/q")
    assert 2 <= len(requests) <= 5  # the budget stopped it, long before max_attempts
    assert requests[-1].time - requests[0].time < policy.max_seconds  # no attempt started past it
    assert len(waits) == len(requests) - 1
    assert sum(waits) < policy.max_seconds  # it never slept into (or past) the budget


# --- the openai client, its own retries off ---------------------------------------------------

def test_openai_client_429_then_200_is_retried_by_our_layer(srv):
    srv.script("/v1/chat/completions",
               Reply(429, headers={"Retry-After": "1"}, json={"error": {"message": "slow down", "type": "rate_limit"}}),
               Reply(200, json=CHAT_OK))
    sleeps = Sleeps()
    client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-test-0000000000", max_retries=0, timeout=5.0)
    try:
        completion = call_with_retry(LLM, client.chat.completions.create, model="fake-model",
                                     messages=[{"role": "user", "content": "hi"}], op="chat", sleep=sleeps)
    finally:
        client.close()
    assert completion.choices[0].message.content == "hello"
    requests = srv.requests_to("/v1/chat/completions", "POST")
    assert len(requests) == 2
    assert requests[1].json()["model"] == "fake-model"
    assert sleeps == [pytest.approx(1.0)]
    assert retry_counts() == {("llm", "rate_limit"): 1}


def test_openai_client_401_is_not_retried(srv):
    srv.always("/v1/chat/completions", Reply(401, json={"error": {"message": "bad key"}}))
    client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-test-0000000000", max_retries=0, timeout=5.0)
    try:
        with pytest.raises(openai.AuthenticationError):
            call_with_retry(LLM, client.chat.completions.create, model="m", messages=[], op="chat", sleep=Sleeps())
    finally:
        client.close()
    assert len(srv.requests_to("/v1/chat/completions")) == 1


def test_openai_client_stall_is_retried_as_timeout(srv):
    srv.script("/v1/chat/completions", Reply(200, json=CHAT_OK, delay=2.0), Reply(200, json=CHAT_OK))
    client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-test-0000000000", max_retries=0, timeout=0.3)
    try:
        completion = call_with_retry(LLM, client.chat.completions.create, model="m",
                                     messages=[{"role": "user", "content": "hi"}], op="chat", sleep=Sleeps())
    finally:
        client.close()
    assert completion.choices[0].message.content == "hello"
    assert retry_counts() == {("llm", "timeout"): 1}


# --- events, logs, counters -------------------------------------------------------------------

def test_retry_event_goes_through_a_real_event_log_redacted(srv, client, events, log_lines):
    srv.script("/search", Reply(500), Reply(200, json={"hits": []}))
    sleeps = Sleeps()
    with trace_scope("trace-abc"):
        for attempt in retrying(SEARCH, op="web_search", run_id="run-1", job_id="job-2", sleep=sleeps):
            with attempt:
                response = client.get("/search", params={"q": "x", "api_key": SECRET})
                response.raise_for_status()

    got, cursor = events.since(0)
    assert cursor > 0
    assert [e.type for e in got] == ["retry"]
    event = got[0]
    assert (event.run_id, event.job_id, event.trace_id, event.source) == ("run-1", "job-2", "trace-abc", "retry")
    p = event.payload
    assert p["policy"] == "search" and p["op"] == "web_search" and p["kind"] == "server_error"
    assert p["attempt"] == 1 and p["wait_s"] == pytest.approx(sleeps[0], abs=1e-3)
    assert "HTTPStatusError" in p["error"] and "500" in p["error"]
    assert SECRET not in p["error"] and "[REDACTED]" in p["error"]
    # the log line is redacted by core.infra.retry itself, not only by the event log
    retry_lines = [line for line in log_lines if "retry search/web_search" in line]
    assert len(retry_lines) == 1 and SECRET not in retry_lines[0] and "[REDACTED]" in retry_lines[0]
    assert retry_counts() == {("search", "server_error"): 1}


def test_a_failing_event_sink_does_not_break_the_call(srv, client, log_lines):
    class Broken:
        def emit(self, *a, **kw):
            raise RuntimeError("database is down")

    set_event_sink(Broken())
    srv.script("/q", Reply(502), Reply(200, json={"ok": 1}))
    assert fetch(client, "/q", sleep=Sleeps()).json() == {"ok": 1}
    assert any("not recorded" in line and "database is down" in line for line in log_lines)
    assert retry_counts() == {("test", "server_error"): 1}


def test_counters_add_up_by_policy_and_kind(srv, client):
    srv.script("/a", Reply(429), Reply(500), Reply(200, json={}))
    srv.script("/b", Reply(drop=True), Reply(503), Reply(200, json={}))
    fetch(client, "/a", sleep=Sleeps())
    fetch(client, "/b", sleep=Sleeps())
    srv.script("/c", Reply(500), Reply(200, json={}))
    fetch(client, "/c", SEARCH, sleep=Sleeps())
    assert retry_counts() == {("test", "rate_limit"): 1, ("test", "server_error"): 2,
                              ("test", "connection"): 1, ("search", "server_error"): 1}


# --- database policy --------------------------------------------------------------------------

def test_database_policy_retries_operational_error_not_integrity_error():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE jobs", {}, Exception("Lost connection to MySQL server"))
        return "saved"

    sleeps = Sleeps()
    assert call_with_retry(DATABASE, flaky, op="save", sleep=sleeps) == "saved"
    assert len(calls) == 3 and len(sleeps) == 2 and all(s <= DATABASE.max_wait for s in sleeps)
    assert retry_counts() == {("database", "database"): 2}

    duplicates = []

    def insert():
        duplicates.append(1)
        raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    with pytest.raises(IntegrityError):
        call_with_retry(DATABASE, insert, op="insert", sleep=sleeps)
    assert len(duplicates) == 1


def test_database_policy_does_not_retry_a_real_sqlite_programming_error(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/x.db")
    calls = []

    def query():
        calls.append(1)
        with engine.connect() as conn:
            return conn.execute(text("SELECT * FROM no_such_table")).all()

    try:
        with pytest.raises(OperationalError, match="no such table"):
            call_with_retry(DATABASE, query, sleep=Sleeps())
    finally:
        engine.dispose()
    assert len(calls) == 1


def test_pymysql_codes():
    import pymysql

    for code in (1205, 1213, 2006, 2013):
        wrapped = OperationalError("SELECT 1", {}, pymysql.err.OperationalError(code, "transient"))
        assert classify(wrapped) == "database", code
        assert classify(pymysql.err.OperationalError(code, "raw")) == "database", code
    denied = OperationalError("SELECT 1", {}, pymysql.err.OperationalError(1045, "Access denied"))
    assert classify(denied) is None
    # LLM and search policies leave database errors to the database layer
    assert "database" not in LLM.kinds and "database" in DATABASE.kinds


# --- classification and parsing ---------------------------------------------------------------

def _status_error(status: int, headers: dict | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1/")
    response = httpx.Response(status, headers=headers or {}, request=request)
    return httpx.HTTPStatusError("status", request=request, response=response)


class WithStatus(Exception):
    """An SDK error that carries only a status code."""

    def __init__(self, status_code: int):
        super().__init__(f"status {status_code}")
        self.status_code = status_code


class WithResponse(Exception):
    """An SDK error that carries a response object (requests-style)."""

    def __init__(self, response):
        super().__init__("error")
        self.response = response


@pytest.mark.parametrize("exc, kind", [
    (TimeoutError(), "timeout"),
    (httpx.ReadTimeout("t"), "timeout"),
    (ConnectionResetError(), "connection"),
    (httpx.ConnectError("c"), "connection"),
    (httpx.UnsupportedProtocol("ftp"), None),
    (_status_error(429), "rate_limit"),
    (_status_error(500), "server_error"),
    (_status_error(501), None),
    (_status_error(422), None),
    (WithStatus(503), "server_error"),
    (WithResponse(SimpleNamespace(status_code=429, headers={})), "rate_limit"),
    (WithResponse(SimpleNamespace(status_code=404, headers={})), None),
    (ValueError("bad"), None),
    (KeyError("k"), None),
    (KeyboardInterrupt(), None),
])
def test_classify(exc, kind):
    assert classify(exc) == kind


def test_retry_after_parsing():
    assert retry_after_seconds(_status_error(429, {"Retry-After": "2.5"})) == 2.5
    assert retry_after_seconds(_status_error(429, {"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(_status_error(429, {"Retry-After": "-3"})) == 0.0
    assert retry_after_seconds(_status_error(429, {"Retry-After": "soon"})) is None
    assert retry_after_seconds(_status_error(429)) is None
    now = time.time()
    date = email.utils.formatdate(now + 5, usegmt=True)
    assert 4.0 <= retry_after_seconds(_status_error(503, {"Retry-After": date}), now=now) <= 5.0
    past = email.utils.formatdate(now - 60, usegmt=True)
    assert retry_after_seconds(_status_error(503, {"Retry-After": past}), now=now) == 0.0


def test_presets():
    assert (LLM.max_attempts, LLM.max_seconds) == (5, 60.0)
    assert (SEARCH.max_attempts, SEARCH.max_seconds) == (4, 30.0)
    assert (DATABASE.max_attempts, DATABASE.max_seconds) == (5, 15.0)
    with pytest.raises(ValueError):
        RetryPolicy("bad", max_attempts=0, max_seconds=1, initial_wait=0, max_wait=0)
    with pytest.raises(Exception):
        LLM.max_attempts = 9  # frozen


# --- the supervisor's database writes use the DATABASE policy ----------------------------------

def test_the_supervisor_retries_a_locked_database_on_claim_checkpoint_and_lease(tmp_path):
    """README: database calls are retried. A claim, a checkpoint write and a lease renewal that
    meet 'database is locked' once each are retried (an event each) and the run completes."""
    import sqlite3

    from core.runtime import build_handlers
    from core.supervisor import Supervisor
    from core.work.probe import probe_jobs
    from tests.conftest import fast_config

    db = open_database(f"sqlite:///{tmp_path}/sup.db")
    log = EventLog(db)
    set_event_sink(log)
    sup = Supervisor(db, log, fast_config(), handlers=build_handlers())
    failed: list[str] = []

    def locked_once(op, fn):
        def wrapper(*args):
            if op not in failed:
                failed.append(op)
                raise OperationalError("UPDATE jobs", {}, sqlite3.OperationalError("database is locked"))
            return fn(*args)
        return wrapper

    sup._claim_row = locked_once("claim", sup._claim_row)
    sup.ledger.write_checkpoint = locked_once("checkpoint", sup.ledger.write_checkpoint)
    sup._renew_lease = locked_once("lease", sup._renew_lease)
    sup.start()
    try:
        run_id = sup.submit_run(probe_jobs(1, steps=20, step_seconds=0.02), kind="probe")
        assert sup.wait_run(run_id, 60) == "completed"
    finally:
        sup.shutdown(timeout=3)
    assert sorted(failed) == ["checkpoint", "claim", "lease"]
    retried = {e.payload["op"] for e in log.since(0, limit=10_000)[0]
               if e.type == "retry" and e.payload["policy"] == "database"}
    assert retried == {"claim", "checkpoint", "lease"}
    assert retry_counts()[("database", "database")] == 3
    db.dispose()
