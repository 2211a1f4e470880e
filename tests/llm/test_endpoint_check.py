"""Test connection for an LLM role (core.llm.endpoint_check) against real HTTP on 127.0.0.1: the
model list, or the endpoint's problem in plain words, and never the key."""
from __future__ import annotations

import socket

import pytest

from core.llm.endpoint_check import check_llm_endpoint
from tests.fakes.http_server import FakeHTTPServer, Reply
from tests.fakes.openai_server import FakeOpenAI

KEY = "sk-endpoint-check-0123456789"


def secret_free(result) -> bool:
    return KEY not in repr(result) and all(KEY not in m.render(lang) for m in (result.msg, *result.notes)
                                           for lang in ("en", "zh"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lists_the_models_and_finds_the_one_configured():
    with FakeOpenAI(api_key=KEY) as llm:
        llm.listed_models = ["deepseek-chat", "fake-model", "deepseek-reasoner"]
        result = check_llm_endpoint(llm.url, KEY, "fake-model")
    assert result.ok and result.kind == "ok"
    assert result.models == ("deepseek-chat", "deepseek-reasoner", "fake-model")
    assert result.msg.key == "config.check_ok_models" and result.msg.args["count"] == 3
    assert [n.key for n in result.notes] == ["config.check_model_found"]
    assert "127.0.0.1" in result.msg.render("en") and "已连接" in result.msg.render("zh")
    assert secret_free(result)


def test_says_when_the_model_is_not_offered():
    with FakeOpenAI() as llm:
        result = check_llm_endpoint(llm.url + "/", "", "gpt-9")
    assert result.ok and [n.key for n in result.notes] == ["config.check_model_missing"]
    assert "gpt-9" in result.notes[0].render("en")


def test_a_rejected_key_is_said_plainly_without_the_key():
    with FakeOpenAI(api_key="sk-the-right-one-000") as llm:
        result = check_llm_endpoint(llm.url, KEY, "fake-model")
    assert not result.ok and (result.kind, result.status) == ("auth", 401)
    assert "rejected the key" in result.msg.render("en") and "拒绝了密钥" in result.msg.render("zh")
    assert "Incorrect API key" in result.detail
    assert secret_free(result)


def test_nothing_listening_is_connection_refused():
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = check_llm_endpoint(url, KEY, "m")
    assert not result.ok and result.kind == "refused"
    assert url in result.msg.render("en") and "连接被拒绝" in result.msg.render("zh")
    assert secret_free(result)


def test_a_server_that_never_answers_times_out():
    with socket.socket() as listener:  # accepts connections (the backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        result = check_llm_endpoint(f"http://127.0.0.1:{port}/v1", KEY, "m", timeout=0.5)
    assert not result.ok and result.kind == "timeout"
    assert "did not answer within 0.5 s" in result.msg.render("en")


def test_a_wrong_base_url_is_a_404_and_an_html_page_is_not_an_api():
    with FakeHTTPServer() as srv:
        result = check_llm_endpoint(srv.url + "/v1", KEY, "m")
        assert not result.ok and (result.kind, result.status) == ("not_found", 404)
        assert "base URL is probably wrong" in result.msg.render("en")
        assert len(srv.requests_to("/v1/models")) == 1  # one request, no retries
        srv.always("/api/models", Reply(200, body="<html>welcome</html>", content_type="text/html"))
        result = check_llm_endpoint(srv.url + "/api", KEY, "m")
    assert not result.ok and result.kind == "bad_response", result


@pytest.mark.parametrize("status,kind", [(429, "rate_limit"), (503, "server_error"), (403, "forbidden")])
def test_other_statuses_in_words_with_no_retry(status, kind):
    with FakeHTTPServer() as srv:
        srv.always("/v1/models", Reply(status, json={"error": {"message": f"echo {KEY}"}}))
        result = check_llm_endpoint(srv.url + "/v1", KEY, "m")
        assert len(srv.requests_to("/v1/models")) == 1
    assert not result.ok and (result.kind, result.status) == (kind, status)
    assert "[REDACTED]" in result.detail and secret_free(result)


def test_no_url_is_said_before_any_request():
    result = check_llm_endpoint("  ", KEY, "m")
    assert not result.ok and result.kind == "no_url"


def test_a_trickling_answer_is_cut_at_the_timeout_as_a_whole():
    """Each read comes quickly, the whole never does: the test still answers within its limit."""
    body = '{"object": "list", "data": [{"id": "slow-model", "object": "model"}]}'
    with FakeHTTPServer() as srv:
        srv.always("/v1/models", Reply(200, chunks=[c for c in body], chunk_delay=0.2,
                                       content_type="application/json"))
        result = check_llm_endpoint(srv.url + "/v1", KEY, "slow-model", timeout=1.0)
    assert not result.ok and result.kind == "timeout", result
    assert "did not answer within 1 s" in result.msg.render("en")
