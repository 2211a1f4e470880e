"""The LLM client against a real HTTP fake of an OpenAI-compatible server (tests/fakes/openai_server.py)."""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from core.infra import retry as retry_mod
from core.infra.config import load_settings
from core.infra.db import open_database
from core.infra.events import EventLog
from core.llm.limits import ProviderLimiter, default_limiter, provider_key, reset_default_limiter
from core.llm.client import (
    JSON_INSTRUCTION,
    PLACEHOLDER_KEY,
    LlmAuthError,
    LlmBadRequest,
    LlmClient,
    LlmError,
    LlmJsonError,
    LlmNotConfigured,
    LlmUnavailable,
    estimate_tokens,
    llm_available,
)
from core.infra.models import LlmCall
from core.infra.tracing import trace_scope
from tests.fakes.openai_server import DEFAULT_KEY, FakeOpenAI, FakeReply, count_tokens

ROLE = "QUERY_ENGINE"
FAST = retry_mod.RetryPolicy("llm", max_attempts=3, max_seconds=30.0, initial_wait=0.0, max_wait=0.0)


class Sleeps(list):
    """Records the waits the retry policy asked for, without sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def database(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'llm.db'}")
    assert db.ok, db.error
    yield db
    db.dispose()


@pytest.fixture
def event_log(database):
    return EventLog(database)


@pytest.fixture
def fake():
    with FakeOpenAI() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_globals():
    retry_mod.reset_retry_counts()
    yield
    retry_mod.set_event_sink(None)
    retry_mod.reset_retry_counts()
    reset_default_limiter()


def settings_for(srv: FakeOpenAI | None = None, tmp: Path | None = None, **extra: str):
    env = dict(srv.env(ROLE) if srv is not None else {})
    env.update(extra)
    return load_settings(env=env, env_file=(tmp or Path("/nonexistent")) / ".env")


def make_client(srv, database=None, *, events=None, limiter=None, policy=FAST, sleep=None, **kw) -> LlmClient:
    return LlmClient(ROLE, settings_for(srv), db=database, events=events, limiter=limiter or ProviderLimiter(4),
                     policy=policy, sleep=sleep if sleep is not None else Sleeps(), **kw)


def rows(database) -> list[LlmCall]:
    with database.session() as s:
        return list(s.scalars(select(LlmCall).order_by(LlmCall.id)))


# --- streaming, usage, recording ----------------------------------------------------------------

def test_streaming_call_records_usage_ttft_and_trace(database):
    answer = "舆情总体平稳，负面声量集中在周末。"
    with FakeOpenAI(responder=lambda req: answer, latency=0.15, chunk_delay=0.01, chunk_chars=4) as srv, \
            make_client(srv, database) as llm, trace_scope("trace-run1.job2"):
        result = llm.complete("你是舆情分析师。", "总结一下", node="FirstSummaryNode", run_id="run1", job_id="job2",
                              temperature=0.2, max_tokens=500)
        req = srv.requests[0]

    assert result.text == answer
    assert result.streamed and not result.usage_estimated
    assert result.input_tokens == count_tokens(req.prompt) == len("你是舆情分析师。\n总结一下")
    assert result.output_tokens == len(answer)
    assert result.ttft_ms is not None and 150 * 0.9 <= result.ttft_ms <= result.latency_ms
    assert result.finish_reason == "stop" and result.retries == 0
    assert result.provider == srv.provider == provider_key(srv.url)
    # what the server saw: a streamed request asking for usage, with our parameters and key
    assert req.stream and req.include_usage
    assert req.model == "fake-model" and req.get("temperature") == 0.2 and req.get("max_tokens") == 500
    assert req.api_key == DEFAULT_KEY
    assert [m["role"] for m in req.messages] == ["system", "user"]

    [row] = rows(database)
    assert (row.role, row.provider, row.model, row.node) == (ROLE, srv.provider, "fake-model", "FirstSummaryNode")
    assert (row.run_id, row.job_id, row.trace_id) == ("run1", "job2", "trace-run1.job2")
    assert (row.input_tokens, row.output_tokens) == (result.input_tokens, result.output_tokens)
    assert row.ttft_ms == pytest.approx(result.ttft_ms, abs=0.01) and row.ttft_ms <= row.latency_ms
    assert (row.retries, row.status, row.error_kind) == (0, "ok", None)


def test_missing_usage_is_estimated(fake, database):
    fake.script(FakeReply.no_usage("网友热议 hot topic"))
    with make_client(fake, database) as llm:
        result = llm.complete("sys", "用户问题")
    assert result.usage_estimated
    assert result.output_tokens == estimate_tokens("网友热议 hot topic") == 4 + 3
    assert result.input_tokens == estimate_tokens("sys") + estimate_tokens("用户问题") + 8
    assert rows(database)[0].output_tokens == 7


def test_think_is_removed_and_kept_as_reasoning(fake):
    fake.script(FakeReply.thinking("最终答案", think="先比较各平台的声量"))
    with make_client(fake) as llm:
        result = llm.complete("sys", "q")
    assert result.text == "最终答案"
    assert result.reasoning == "先比较各平台的声量"
    assert result.raw.startswith("<think>")


def test_server_without_stream_options_gets_non_streaming_calls(database):
    with FakeOpenAI(reject_stream_options=True, responder=lambda req: "好的") as srv, \
            make_client(srv, database) as llm:
        first = llm.complete("s", "one")
        second = llm.complete("s", "two")
        seen = [(r.stream, r.status) for r in srv.requests]
    assert seen == [(True, 400), (False, 200), (False, 200)]  # the refusal is remembered
    assert first.text == second.text == "好的"
    assert not first.streamed and first.ttft_ms is None
    assert not llm.streaming
    assert first.input_tokens == len("s\none") and not first.usage_estimated
    assert [(r.status, r.retries) for r in rows(database)] == [("ok", 0), ("ok", 0)]


def test_local_endpoint_without_key_gets_a_placeholder(fake):
    settings = load_settings(env={f"{ROLE}_BASE_URL": fake.url, f"{ROLE}_MODEL_NAME": "qwen2.5"},
                             env_file=Path("/nonexistent/.env"))
    with LlmClient(ROLE, settings, limiter=ProviderLimiter(1)) as llm:
        assert llm.complete("s", "u").text == "ok"
    assert fake.requests[0].api_key == PLACEHOLDER_KEY
    assert fake.requests[0].model == "qwen2.5"


# --- retries and errors -------------------------------------------------------------------------

def test_429_is_retried_counted_and_evented(fake, database, event_log):
    retry_mod.set_event_sink(event_log)
    fake.script(FakeReply.rate_limit(retry_after=0.5), "第二次成功")
    sleeps = Sleeps()
    with make_client(fake, database, sleep=sleeps, policy=retry_mod.LLM) as llm, trace_scope("t-429"):
        result = llm.complete("s", "u", node="ReflectionNode", run_id="r429")
    assert result.text == "第二次成功" and result.retries == 1
    assert sleeps == [pytest.approx(0.5)]  # Retry-After honoured
    assert len(fake.requests) == 2
    [row] = rows(database)
    assert (row.status, row.retries) == ("ok", 1)
    assert retry_mod.retry_counts() == {("llm", "rate_limit"): 1}
    events, _ = event_log.since(0, types=["retry"])
    assert len(events) == 1
    assert events[0].payload["kind"] == "rate_limit" and events[0].run_id == "r429"
    assert events[0].trace_id == "t-429"


def test_401_is_not_retried_and_never_shows_the_key(fake, database):
    key = "sk-live-9f8e7d6c5b4a39281706"
    settings = load_settings(env={**fake.env(ROLE, api_key=key)}, env_file=Path("/nonexistent/.env"))
    fake.script(FakeReply.unauthorized(message=f"Incorrect API key provided: {key}. Find yours at example.com"))
    llm = LlmClient(ROLE, settings, db=database, limiter=ProviderLimiter(2), policy=FAST, sleep=Sleeps())
    with pytest.raises(LlmAuthError) as info:
        llm.complete("s", "u", node="FirstSearchNode")
    llm.close()
    message = str(info.value)
    assert key not in message and "9f8e7d6c5b4a" not in message
    assert "401" in message and f"{ROLE}_API_KEY" in message
    assert len(fake.requests) == 1
    assert info.value.kind == "auth" and info.value.retries == 0
    [row] = rows(database)
    assert (row.status, row.error_kind, row.retries, row.node) == ("error", "auth", 0, "FirstSearchNode")


def test_dropped_stream_is_retried(fake, database):
    fake.script(FakeReply.dropped("这段回答在中途断开了连接", after=2, chunk_chars=3), "完整的回答")
    with make_client(fake, database) as llm:
        result = llm.complete("s", "u")
    assert result.text == "完整的回答" and result.retries == 1
    assert len(fake.requests) == 2
    assert retry_mod.retry_counts() == {("llm", "connection"): 1}
    assert rows(database)[0].retries == 1


@pytest.mark.parametrize("fault,kind", [(FakeReply.malformed(), "server_error"), (FakeReply.error(503), "server_error"),
                                        (FakeReply.error(500), "server_error")])
def test_transient_faults_are_retried(fake, fault, kind):
    fake.script(fault, "恢复了")
    with make_client(fake) as llm:
        assert llm.complete("s", "u").text == "恢复了"
    assert retry_mod.retry_counts() == {("llm", kind): 1}


def test_server_ignoring_stream_true_still_works(fake, database):
    fake.script(FakeReply.unstreamed("一次性返回"))
    with make_client(fake, database) as llm:
        result = llm.complete("s", "u")
    assert result.text == "一次性返回" and result.retries == 0
    assert result.output_tokens == len("一次性返回") and not result.usage_estimated
    assert llm.streaming  # one such reply does not switch the client off streaming


def test_error_event_mid_stream_is_retried(fake):
    fake.script(FakeReply.error_event("前半段回答", after=1, message="upstream overloaded", chunk_chars=2), "完整回答")
    with make_client(fake) as llm:
        assert llm.complete("s", "u").text == "完整回答"
    assert retry_mod.retry_counts() == {("llm", "server_error"): 1}


def test_malformed_non_streaming_body_is_retried():
    with FakeOpenAI(reject_stream_options=True) as srv, make_client(srv) as llm:
        srv.script(FakeReply.malformed(), "好")  # the stream_options refusal comes first, unscripted
        assert llm.complete("s", "u").text == "好"
    assert retry_mod.retry_counts() == {("llm", "server_error"): 1}


def test_exhausted_retries_raise_unavailable_with_the_row(fake, database):
    fake.script(*[FakeReply.error(503, "overloaded")] * 3)
    with make_client(fake, database) as llm, pytest.raises(LlmUnavailable) as info:
        llm.complete("s", "u", node="ReportStructureNode")
    assert "3 attempt(s)" in str(info.value) and "503" in str(info.value) and "overloaded" in str(info.value)
    assert info.value.kind == "server_error"
    [row] = rows(database)
    assert (row.status, row.error_kind, row.retries) == ("error", "server_error", 2)


def test_stall_times_out_and_is_retried(fake, database):
    # Each stall sends nothing for 30 s and then closes the connection: had the client waited for it, the
    # error would be a closed connection, not "timeout". Two requests reached the server: it was retried.
    fake.script(FakeReply.stall(30), FakeReply.stall(30))
    policy = retry_mod.RetryPolicy("llm", max_attempts=2, max_seconds=60, initial_wait=0, max_wait=0)
    with make_client(fake, database, policy=policy, timeout=0.3) as llm, pytest.raises(LlmUnavailable) as info:
        llm.complete("s", "u")
    assert info.value.kind == "timeout" and "0.3s" in str(info.value)
    assert len(fake.requests) == 2
    assert rows(database)[0].error_kind == "timeout"


def test_unreachable_endpoint_is_unavailable(database):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = load_settings(env={f"{ROLE}_BASE_URL": f"http://127.0.0.1:{port}/v1", f"{ROLE}_MODEL_NAME": "m",
                                  f"{ROLE}_API_KEY": "sk-unreachable-123456789"}, env_file=Path("/nonexistent/.env"))
    with LlmClient(ROLE, settings, db=database, limiter=ProviderLimiter(1), policy=FAST, sleep=Sleeps()) as llm, \
            pytest.raises(LlmUnavailable) as info:
        llm.complete("s", "u")
    assert info.value.kind == "connection" and info.value.attempts == 3
    assert "sk-unreachable" not in str(info.value)
    assert rows(database)[0].error_kind == "connection"


def test_unknown_model_is_a_bad_request_not_retried(fake, database):
    fake.script(FakeReply.error(404, "The model `gpt-9` does not exist"))
    with make_client(fake, database) as llm, pytest.raises(LlmBadRequest) as info:
        llm.complete("s", "u")
    assert "gpt-9" in str(info.value) and len(fake.requests) == 1
    assert rows(database)[0].error_kind == "bad_request"


def test_recording_failure_does_not_break_the_call(fake):
    class BrokenDb:
        def session(self):
            raise RuntimeError("database is down")

        def require(self):  # what store_call writes through (Database.require: the engine)
            raise RuntimeError("database is down")

    class BrokenEvents:
        def emit(self, *a, **kw):
            raise RuntimeError("events down")

    with make_client(fake, BrokenDb(), events=BrokenEvents()) as llm:
        assert llm.complete("s", "u").text == "ok"


def test_llm_call_event_when_an_event_log_is_given(fake, event_log):
    with make_client(fake, events=event_log) as llm:
        llm.complete("s", "u", node="FormatNode", run_id="r1")
    [event] = event_log.since(0, types=["llm.call"])[0]
    assert event.run_id == "r1" and event.source == "llm"
    assert event.payload["node"] == "FormatNode" and event.payload["status"] == "ok"


# --- JSON ---------------------------------------------------------------------------------------

def test_complete_json_repairs_broken_json(fake, database):
    fake.script("好的，结果如下：\n```json\n{'search_query': '高校 食堂 涨价', reasoning: \"缺少\"官方\"回应\",}\n```")
    with make_client(fake, database) as llm:
        data = llm.complete_json("生成搜索词。", "话题：食堂涨价", required_keys=("search_query", "reasoning"),
                                 node="FirstSearchNode")
    assert data == {"search_query": "高校 食堂 涨价", "reasoning": '缺少"官方"回应'}
    assert len(fake.requests) == 1
    system = fake.requests[0].system
    assert system.startswith("生成搜索词。") and JSON_INSTRUCTION in system and '"search_query"' in system
    assert [(r.status, r.error_kind) for r in rows(database)] == [("ok", None)]


def test_complete_json_asks_again_after_a_bad_reply(fake, database):
    fake.script("我认为应该搜索食堂涨价。", {"search_query": "食堂 涨价"})
    with make_client(fake, database) as llm:
        data = llm.complete_json("s", "u", required_keys=("search_query",), node="FirstSearchNode")
    assert data == {"search_query": "食堂 涨价"}
    second = fake.requests[1].messages
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == "我认为应该搜索食堂涨价。"
    assert "no JSON" in second[3]["content"] and '"search_query"' in second[3]["content"]
    assert [(r.status, r.error_kind) for r in rows(database)] == [("error", "parse"), ("ok", None)]


def test_complete_json_accepts_arrays_when_asked(fake):
    fake.script('[{"title": "背景", "content": "起因"},]')
    with make_client(fake) as llm:
        assert llm.complete_json("s", "u", expect=list) == [{"title": "背景", "content": "起因"}]


def test_invalid_json_three_times_is_a_clear_error(fake, database):
    fake.script("抱歉，我不能提供 JSON。", {"wrong": 1}, "<think>想了很久</think>")
    with make_client(fake, database) as llm, pytest.raises(LlmJsonError) as info:
        llm.complete_json("s", "u", required_keys=("title",), node="ReportStructureNode", run_id="rj")
    err = info.value
    assert "3 attempt(s)" in str(err) and "ReportStructureNode" in str(err)
    assert len(err.problems) == 3
    assert "no JSON" in err.problems[0]
    assert 'missing key(s) "title"' in err.problems[1]
    assert "only reasoning" in err.problems[2]
    assert len(fake.requests) == 3
    calls = rows(database)
    assert [(r.status, r.error_kind, r.run_id) for r in calls] == [("error", "parse", "rj")] * 3
    assert isinstance(err, LlmError) and err.kind == "parse"


def test_complete_json_does_not_reask_on_transport_errors(fake):
    fake.script(FakeReply.unauthorized())
    with make_client(fake) as llm, pytest.raises(LlmAuthError):
        llm.complete_json("s", "u")
    assert len(fake.requests) == 1


# --- the per-provider limit ---------------------------------------------------------------------

def _hammer(llm: LlmClient, n: int) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def work(i: int) -> None:
        try:
            barrier.wait(5)
            llm.complete("s", f"paragraph {i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return errors


def test_provider_limit_caps_concurrent_requests():
    limiter = ProviderLimiter(2)
    with FakeOpenAI(latency=0.12) as srv, make_client(srv, limiter=limiter) as llm:
        assert _hammer(llm, 6) == []
        reqs = srv.requests
    assert len(reqs) == 6
    assert srv.max_concurrency() == 2  # from the recorded [start, end] timestamps: capped, and parallel
    assert srv.peak_in_flight == 2
    assert limiter.snapshot()[srv.provider].peak == 2
    assert limiter.in_flight() == {srv.provider: 0}
    # Three waves of two: the last request could only start after two others had ended.
    starts = sorted(r.start for r in reqs)
    ends = sorted(r.end for r in reqs)
    assert starts[2] >= ends[0] and starts[4] >= ends[2]


def test_without_a_tight_limit_calls_run_in_parallel():
    with FakeOpenAI(latency=0.2) as srv, make_client(srv, limiter=ProviderLimiter(8)) as llm:
        assert _hammer(llm, 6) == []
    # parallel: the server's recorded [start, end] windows overlapped (not a wall-clock bound)
    assert srv.max_concurrency() >= 3


# --- configuration ------------------------------------------------------------------------------

def test_not_configured_roles(fake, tmp_path):
    empty = settings_for(None, tmp_path)
    assert not llm_available(empty, ROLE)
    with pytest.raises(LlmNotConfigured, match=f"{ROLE}_MODEL_NAME"):
        LlmClient(ROLE, empty)
    configured = settings_for(fake, tmp_path)
    assert llm_available(configured, ROLE)
    offline = settings_for(fake, tmp_path, SHOAL_MODE="offline")
    assert not llm_available(offline, ROLE)
    with pytest.raises(LlmNotConfigured, match="offline"):
        LlmClient(ROLE, offline)
    with pytest.raises(ValueError):
        LlmClient("NOT_A_ROLE", configured)


def test_default_limiter_follows_the_setting(fake):
    with LlmClient(ROLE, settings_for(fake, SHOAL_LLM_CONCURRENCY="3")) as llm:
        assert llm.limiter is default_limiter() and llm.limiter.limit == 3
    assert default_limiter(5).limit == 5 and default_limiter() is llm.limiter


# --- core.llm.limits --------------------------------------------------------------------------------

@pytest.mark.parametrize("url,key", [
    ("https://api.deepseek.com/v1", "api.deepseek.com:443"),
    ("http://127.0.0.1:11434/v1", "127.0.0.1:11434"),
    ("http://LocalHost/v1", "localhost:80"),
    ("", "openai"),
    (None, "openai"),
    ("http://[::1]:8000/v1", "[::1]:8000"),
])
def test_provider_key(url, key):
    assert provider_key(url) == key


def test_limiter_slots_time_out_and_count():
    limiter = ProviderLimiter(1)
    with limiter.slot("a"):
        assert limiter.in_flight() == {"a": 1}
        with pytest.raises(TimeoutError):
            with limiter.slot("a", timeout=0.05):
                pass
        with limiter.slot("b", timeout=0.05):  # another provider is not held up
            assert limiter.in_flight() == {"a": 1, "b": 1}
    assert limiter.in_flight() == {"a": 0, "b": 0}
    stats = limiter.snapshot()["a"]
    assert (stats.peak, stats.total, stats.limit, stats.waiting) == (1, 1, 1, 0)
    with pytest.raises(ValueError):
        ProviderLimiter(0)


def test_raising_the_limit_wakes_waiters():
    limiter = ProviderLimiter(1)
    got = threading.Event()
    limiter.acquire("p")

    def waiter():
        with limiter.slot("p", timeout=5):
            got.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert not got.wait(0.1)
    limiter.set_limit(2)
    assert got.wait(2)
    t.join(2)
    limiter.release("p")
