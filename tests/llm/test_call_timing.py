"""What an llm_calls row says about a call's time (the slot wait, `queued_ms`), and the one
connection pool LLM clients share (closing one client never breaks another)."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from core.infra import retry as retry_mod
from core.infra.config import load_settings
from core.infra.db import open_database
from core.infra.models import LlmCall
from core.llm.client import LlmClient, shared_http_client
from core.llm.limits import ProviderLimiter, reset_default_limiter
from tests.conftest import wait_for
from tests.fakes.openai_server import FakeOpenAI

ROLE = "QUERY_ENGINE"
FAST = retry_mod.RetryPolicy("llm", max_attempts=1, max_seconds=30.0, initial_wait=0.0, max_wait=0.0)


@pytest.fixture
def database(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'timing.db'}")
    assert db.ok, db.error
    yield db
    db.dispose()


@pytest.fixture(autouse=True)
def _clean_globals():
    yield
    reset_default_limiter()


def client_for(srv: FakeOpenAI, database=None, limiter=None) -> LlmClient:
    settings = load_settings(env=srv.env(ROLE), env_file=Path("/nonexistent/.env"))
    return LlmClient(ROLE, settings, db=database, limiter=limiter or ProviderLimiter(4), policy=FAST)


def rows(database) -> list[LlmCall]:
    with database.session() as s:
        return list(s.scalars(select(LlmCall).order_by(LlmCall.id)))


def test_a_call_that_waited_for_a_slot_records_the_wait(database):
    limiter = ProviderLimiter(1)
    with FakeOpenAI(default="ok") as srv:
        llm = client_for(srv, database, limiter)
        llm.complete("s", "first: nothing to wait for")
        assert limiter.acquire(llm.provider, timeout=10, role=ROLE)  # the endpoint's only slot, held here
        done = threading.Event()
        worker = threading.Thread(target=lambda: (llm.complete("s", "second: waits"), done.set()), daemon=True)
        worker.start()
        wait_for(lambda: limiter.snapshot()[llm.provider].waiting == 1, what="the call waiting for the slot")
        assert not done.is_set()
        limiter.release(llm.provider, role=ROLE)
        worker.join(30)
        assert done.is_set()
    first, second = rows(database)
    assert first.queued_ms is not None and first.queued_ms < first.latency_ms
    assert second.queued_ms > 0
    assert second.queued_ms <= second.latency_ms


def test_clients_share_one_connection_pool_and_closing_one_keeps_it(database):
    with FakeOpenAI(default="ok") as srv:
        a, b = client_for(srv), client_for(srv)
        assert a._client._client is b._client._client is shared_http_client()
        a.close()
        assert not shared_http_client().is_closed
        assert b.complete("s", "still works").text == "ok"
