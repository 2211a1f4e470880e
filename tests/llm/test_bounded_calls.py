"""LLM_TIMEOUT bounds a whole call (connect, first token, the full stream), not the gap between chunks.

Against the fake OpenAI server: a stream trickling a few characters at a time, each chunk well
within the limit, is cut at the limit, retried as a timeout, and its partial output is counted; a
stream that stalls after its headers ends the same way. The assertions are about outcomes (the
error, the retries, the rows, what the server managed to send), never about elapsed time.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core.infra import retry as retry_mod
from core.infra.db import open_database
from core.infra.models import LlmCall
from core.llm.client import LlmUnavailable
from tests.conftest import wait_for
from tests.fakes.openai_server import FakeOpenAI, FakeReply
from tests.llm.test_llm import ROLE, Sleeps, make_client

ANSWER = "舆情" * 200  # 400 characters: at 4 characters per 0.2 s, a 20 s stream
LIMIT = 1.0


@pytest.fixture
def database(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'bounded.db'}")
    assert db.ok, db.error
    yield db
    db.dispose()


@pytest.fixture
def fake():
    with FakeOpenAI() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_retry_counts():
    retry_mod.reset_retry_counts()
    yield
    retry_mod.reset_retry_counts()


def _rows(db) -> list[LlmCall]:
    with db.session() as s:
        return list(s.scalars(select(LlmCall).order_by(LlmCall.id)))


def _policy(attempts: int) -> retry_mod.RetryPolicy:
    return retry_mod.RetryPolicy("llm", max_attempts=attempts, max_seconds=60, initial_wait=0, max_wait=0)


def test_a_trickling_stream_is_cut_at_llm_timeout_retried_and_its_tokens_counted(fake, database):
    fake.script(FakeReply.trickle(ANSWER, chars=4, every=0.2), FakeReply.trickle(ANSWER, chars=4, every=0.2))
    with make_client(fake, database, policy=_policy(2), timeout=LIMIT) as llm, \
            pytest.raises(LlmUnavailable) as info:
        llm.complete("s", "u", node="FirstSummaryNode")
    err = info.value
    assert err.kind == "timeout" and err.attempts == 2
    assert "LLM_TIMEOUT" in str(err) and "no complete reply within 1s" in str(err)
    assert retry_mod.retry_counts() == {("llm", "timeout"): 1}
    # Both streams were cut: the server saw the client go away before it had sent the answer.
    reqs = fake.wait_for_requests(2)
    assert len(reqs) == 2
    wait_for(lambda: all(r.end is not None for r in reqs), 30, "the server to notice both cuts")
    assert all(0 < r.sent_chars < len(ANSWER) for r in reqs)
    # The error row counts what had been streamed (estimated: no usage chunk came).
    [row] = _rows(database)
    assert (row.status, row.error_kind, row.retries) == ("error", "timeout", 1)
    assert 0 < row.output_tokens <= sum(r.sent_chars for r in reqs) < 2 * len(ANSWER)
    assert row.input_tokens > 0


def test_a_trickle_then_a_good_answer_succeeds_on_the_retry(fake, database):
    fake.script(FakeReply.trickle(ANSWER, chars=4, every=0.2), "完整的回答")
    with make_client(fake, database, policy=_policy(3), timeout=LIMIT) as llm:
        result = llm.complete("s", "u")
    assert result.text == "完整的回答" and result.retries == 1
    assert retry_mod.retry_counts() == {("llm", "timeout"): 1}
    assert [r.status for r in _rows(database)] == ["ok"]


def test_a_stream_that_stalls_after_its_headers_ends_as_a_timeout(fake, database):
    # Headers at once, then nothing: the fake waits `latency` before the first chunk.
    fake.script(FakeReply.text(ANSWER, latency=60))
    with make_client(fake, database, policy=_policy(1), timeout=LIMIT) as llm, \
            pytest.raises(LlmUnavailable) as info:
        llm.complete("s", "u")
    assert info.value.kind == "timeout" and "LLM_TIMEOUT" in str(info.value)
    [req] = fake.requests
    assert req.sent_chars == 0
    [row] = _rows(database)
    assert (row.error_kind, row.output_tokens, row.input_tokens) == ("timeout", 0, 0)


def test_a_stream_within_the_limit_is_untouched(fake):
    fake.script(FakeReply.trickle("一二三四五六七八", chars=2, every=0.01))
    with make_client(fake, policy=_policy(1), timeout=30) as llm:
        result = llm.complete("s", "u")
    assert result.text == "一二三四五六七八" and result.retries == 0 and not result.usage_estimated


def test_settings_llm_timeout_is_the_whole_call_limit(fake):
    from tests.llm.test_llm import settings_for
    from core.llm.client import LlmClient
    from core.llm.limits import ProviderLimiter

    fake.script(FakeReply.trickle(ANSWER, chars=4, every=0.2))
    settings = settings_for(fake, LLM_TIMEOUT="1", RETRY_MAX_SECONDS="0")  # retries off
    with LlmClient(ROLE, settings, limiter=ProviderLimiter(2), sleep=Sleeps()) as llm, \
            pytest.raises(LlmUnavailable) as info:
        llm.complete("s", "u")
    assert llm.timeout == 1.0
    assert info.value.kind == "timeout" and info.value.attempts == 1
    [req] = fake.requests
    wait_for(lambda: req.end is not None, 30, "the server to notice the cut")
    assert req.sent_chars < len(ANSWER)
