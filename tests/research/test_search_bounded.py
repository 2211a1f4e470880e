"""SEARCH_TIMEOUT bounds a whole search request (connect, headers, the full body), not each read.

Against the fake Tavily and Bocha servers: an answer trickled 16 bytes at a time, each read well
within the limit, is cut at the limit and retried as a timeout; a stalled answer ends the same way.
Outcomes only (errors, retries, what the server managed to send), never elapsed time.
"""
from __future__ import annotations

import pytest

from core.infra import redact
from core.infra.config import load_settings
from core.infra.retry import RetryPolicy
from core.research.web_search import BochaProvider, SearchUnavailable, TavilyProvider, web_provider_for
from tests.conftest import wait_for
from tests.fakes.http_server import fake_http_server  # noqa: F401  (fixture)
from tests.fakes.search_servers import fake_bocha, fake_tavily  # noqa: F401  (fixtures)

EV = "新能源汽车 价格战"
LIMIT = 1.0


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def isolated_redaction(monkeypatch):
    monkeypatch.setattr(redact, "_known", ())


def _policy(attempts: int) -> RetryPolicy:
    return RetryPolicy("search", max_attempts=attempts, max_seconds=60, initial_wait=0, max_wait=0)


def test_a_trickled_answer_is_cut_at_search_timeout_every_attempt(fake_tavily):
    fake_tavily.fail("trickle", times=2, delay=0.2)
    sleeps = Sleeps()
    with TavilyProvider(**fake_tavily.provider_kwargs(timeout=LIMIT), policy=_policy(2), sleep=sleeps) as provider, \
            pytest.raises(SearchUnavailable) as info:
        provider.run_tool("basic_search_news", EV)
    err = info.value
    assert err.kind == "timeout" and err.attempts == 2 and len(sleeps) == 1
    assert "SEARCH_TIMEOUT" in str(err) and "received before the cut" in str(err)
    streams = fake_tavily.http.streams
    assert len(streams) == 2
    wait_for(lambda: all(s.ended == "client_gone" for s in streams), 30, "the server to notice both cuts")
    assert all(0 < s.sent < s.total for s in streams)


def test_a_trickle_then_a_normal_answer_succeeds_on_the_retry(fake_bocha):
    fake_bocha.fail("trickle", delay=0.2)
    sleeps = Sleeps()
    with BochaProvider(**fake_bocha.provider_kwargs(timeout=LIMIT), policy=_policy(3), sleep=sleeps) as provider:
        response = provider.search("comprehensive_search", EV)
    assert response.documents and response.attempts == 2 and len(sleeps) == 1
    [cut] = fake_bocha.http.streams
    wait_for(lambda: cut.ended == "client_gone", 30, "the server to notice the cut")


def test_a_stalled_search_ends_as_a_timeout(fake_tavily):
    fake_tavily.fail("stall", delay=60)
    with TavilyProvider(**fake_tavily.provider_kwargs(timeout=LIMIT), policy=_policy(1)) as provider, \
            pytest.raises(SearchUnavailable) as info:
        provider.run_tool("basic_search_news", EV)
    assert info.value.kind == "timeout" and info.value.attempts == 1
    assert len(fake_tavily.requests) == 1


def test_a_trickle_that_finishes_within_the_limit_is_read_whole(fake_tavily):
    fake_tavily.fail("trickle", delay=0.0)  # 16-byte chunks, no pause: the body arrives in pieces
    with TavilyProvider(**fake_tavily.provider_kwargs(timeout=30), policy=_policy(1)) as provider:
        docs = provider.run_tool("basic_search_news", EV)
    assert docs
    [stream] = fake_tavily.http.streams
    assert stream.ended == "complete" and stream.sent == stream.total


def test_search_timeout_setting_reaches_the_provider(fake_tavily):
    settings = load_settings(env={**fake_tavily.env, "SEARCH_TIMEOUT": "1"})
    fake_tavily.fail("trickle", times=10, delay=0.2)
    with web_provider_for("query", settings) as provider:
        provider._policy = _policy(1)
        with pytest.raises(SearchUnavailable) as info:
            provider.run_tool("basic_search_news", EV)
    assert provider.timeout == 1.0 and info.value.kind == "timeout"
    [stream] = fake_tavily.http.streams
    wait_for(lambda: stream.ended == "client_gone", 30, "the server to notice the cut")
    assert stream.sent < stream.total


def test_a_gzip_answer_is_still_decoded_when_read_in_chunks(fake_http_server):
    import gzip
    import json

    from tests.fakes.http_server import Reply

    body = {"results": [{"url": "https://news.example.cn/a.html", "title": "新能源汽车降价", "content": "价格战"}]}
    data = gzip.compress(json.dumps(body, ensure_ascii=False).encode())
    fake_http_server.always("/search", Reply(200, chunks=[data[:10], data[10:]], content_type="application/json",
                                             headers={"Content-Encoding": "gzip"}))
    with TavilyProvider("tvly-test-123456", fake_http_server.url, timeout=30, policy=_policy(1)) as provider:
        docs = provider.run_tool("basic_search_news", EV)
    assert [d.title for d in docs] == ["新能源汽车降价"]
