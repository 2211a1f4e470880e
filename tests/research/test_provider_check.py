"""Test connection for the web search providers (core.research.provider_check) against the fake
Tavily and Bocha servers: one minimal search, no retries, the answer in plain words, no key."""
from __future__ import annotations

import socket

import pytest

from core.research.provider_check import check_search_provider
from tests.fakes.search_servers import FakeBochaServer, FakeTavilyServer

SERVERS = {"tavily": FakeTavilyServer, "bocha": FakeBochaServer}


def secret_free(result, key: str) -> bool:
    return key not in repr(result) and key not in result.msg.render("en") and key not in result.msg.render("zh")


@pytest.mark.parametrize("provider", SERVERS)
def test_one_minimal_search_answers(provider):
    with SERVERS[provider]() as srv:
        result = check_search_provider(provider, srv.url, srv.api_key)
        [request] = srv.requests
    assert result.ok and result.kind == "ok", result
    body = request.json()
    assert body.get("max_results", body.get("count")) == 1
    assert "answered" in result.msg.render("en") and "已响应" in result.msg.render("zh")
    assert secret_free(result, srv.api_key)


@pytest.mark.parametrize("provider", SERVERS)
def test_a_wrong_key_is_rejected_and_never_echoed(provider):
    with SERVERS[provider]() as srv:
        srv.fail("unauthorized", echo_key=True)
        wrong = "sk-wrong-key-0123456789"
        result = check_search_provider(provider, srv.url, wrong)
    assert not result.ok and result.kind == "auth" and result.status == 401
    assert "rejected the key" in result.msg.render("en")
    assert secret_free(result, wrong) and wrong not in result.detail


@pytest.mark.parametrize("fault,kind", [("server_error", "server_error"), ("rate_limit", "rate_limit"),
                                        ("garbage", "bad_response")])
def test_a_fault_is_said_plainly_after_one_request(fault, kind):
    with FakeTavilyServer() as srv:
        srv.fail(fault, times=3, retry_after=0)
        result = check_search_provider("tavily", srv.url, srv.api_key)
        assert len(srv.requests) == 1  # no retries: the answer comes in seconds
    assert not result.ok and result.kind == kind, result


def test_bocha_out_of_balance_is_forbidden():
    with FakeBochaServer() as srv:
        srv.fail("forbidden")
        result = check_search_provider("bocha", srv.url, srv.api_key)
    assert not result.ok and result.kind == "forbidden"
    assert "out of balance" in result.msg.render("en")


def test_a_stalled_provider_times_out():
    with FakeTavilyServer() as srv:
        srv.fail("stall", delay=3.0)
        result = check_search_provider("tavily", srv.url, srv.api_key, timeout=0.5)
    assert not result.ok and result.kind == "timeout", result


def test_nothing_listening_and_no_key():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = check_search_provider("bocha", f"http://127.0.0.1:{port}", "sk-bocha-key-123456")
    assert not result.ok and result.kind == "refused", result
    result = check_search_provider("tavily", "https://api.tavily.com", "")
    assert not result.ok and result.kind == "no_key" and "Tavily" in result.msg.render("zh")
