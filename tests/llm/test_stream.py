"""Streamed replies as core.llm.stream reads them: events as JSON, the body to its end (connection reuse)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.infra import retry as retry_mod
from core.infra.config import load_settings
from core.llm.client import LlmClient
from core.llm.limits import ProviderLimiter, reset_default_limiter
from tests.fakes.http_server import FakeHTTPServer, Reply
from tests.fakes.openai_server import FakeOpenAI

ROLE = "QUERY_ENGINE"
FAST = retry_mod.RetryPolicy("llm", max_attempts=3, max_seconds=30.0, initial_wait=0.0, max_wait=0.0)
PATH = "/v1/chat/completions"


@pytest.fixture(autouse=True)
def _clean_globals():
    retry_mod.reset_retry_counts()
    yield
    retry_mod.reset_retry_counts()
    reset_default_limiter()


def client_for(base_url: str) -> LlmClient:
    env = {f"{ROLE}_BASE_URL": base_url, f"{ROLE}_MODEL_NAME": "fake-model", f"{ROLE}_API_KEY": "sk-test-0000"}
    return LlmClient(ROLE, load_settings(env=env, env_file=Path("/nonexistent/.env")), limiter=ProviderLimiter(4),
                     policy=FAST, sleep=lambda s: None)


def event(obj) -> str:
    return "data: " + json.dumps(obj, ensure_ascii=False) + "\r\n\r\n"


def chunk(delta: dict | None = None, finish: str | None = None, **extra) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return event({"id": "c1", "object": "chat.completion.chunk", "model": "fake-model", "choices": choices, **extra})


def test_deltas_reasoning_usage_and_finish_are_read_as_the_sdk_did():
    sse = [": keep-alive\r\n\r\n",
           chunk({"role": "assistant", "content": ""}),
           chunk({"reasoning_content": "先看"}), chunk({"reasoning_content": "声量"}),
           chunk({"content": "舆情"}), chunk({"content": "平稳"}),
           "data: {\"id\": \"c1\", \"choices\": [{\"index\": 0, \"delta\": {\"content\": \"。\"},\n"
           "data:  \"finish_reason\": \"stop\"}]}\n\n",  # one event on two data lines (joined by a newline)
           chunk(None, usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
                              "prompt_tokens_details": {"cached_tokens": 8}}),
           "data: [DONE]\r\n\r\n"]
    with FakeHTTPServer() as srv, client_for(f"{srv.url}/v1") as llm:
        srv.always(PATH, Reply(chunks=sse))
        result = llm.complete("sys", "总结")
    assert (result.text, result.reasoning) == ("舆情平稳。", "先看声量")
    assert (result.input_tokens, result.output_tokens, result.usage_estimated) == (12, 5, False)
    assert result.cached_input_tokens == 8
    assert result.finish_reason == "stop" and result.streamed and result.ttft_ms is not None


def test_a_data_line_that_is_not_json_is_a_bad_reply_and_retried():
    good = [chunk({"content": "好"}, finish="stop"), "data: [DONE]\n\n"]
    with FakeHTTPServer() as srv, client_for(f"{srv.url}/v1") as llm:
        srv.script(PATH, Reply(chunks=[chunk({"content": "半"}), "data: {\"choices\": [\n\n"]), then=Reply(chunks=good))
        result = llm.complete("sys", "u")
    assert result.text == "好" and result.retries == 1


def test_a_stream_without_events_is_incomplete_and_retried():
    with FakeHTTPServer() as srv, client_for(f"{srv.url}/v1") as llm:
        srv.script(PATH, Reply(chunks=[": nothing\n\n", "data: [DONE]\n\n"]),
                   then=Reply(chunks=[chunk({"content": "好"}, finish="stop"), "data: [DONE]\n\n"]))
        assert llm.complete("sys", "u").retries == 1


def test_streamed_calls_reuse_one_connection(monkeypatch):
    """The body is read to its end after [DONE], so the connection goes back to the pool: one TCP
    connection (one TLS handshake on a real endpoint) for a client's successive calls, not one per call."""
    opened = []
    handler = FakeOpenAI.handler
    setup = handler.setup
    monkeypatch.setattr(handler, "setup", lambda self: (opened.append(1), setup(self))[1])
    with FakeOpenAI(responder=lambda req: "好的" * 40, chunk_chars=4) as srv:
        llm = LlmClient(ROLE, load_settings(env=srv.env(ROLE), env_file=Path("/nonexistent/.env")),
                        limiter=ProviderLimiter(4), policy=FAST, sleep=lambda s: None)
        answers = [llm.complete("sys", f"第{i}问").text for i in range(4)]
        assert answers == ["好的" * 40] * 4 and len(srv.requests) == 4
    assert len(opened) == 1
