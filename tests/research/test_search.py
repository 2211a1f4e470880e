"""Web search providers against fake Tavily and Bocha servers on loopback (real HTTP).

Every tool of both providers, the request each sends, the documents each returns; retries for
429 (honouring Retry-After), 5xx, stalls and drops; immediate failure for 401/403 and for garbage;
the knowledge_query log; provider selection from settings.
"""
from __future__ import annotations

import json
import logging
from datetime import date, datetime, timezone

import pytest
from loguru import logger

from core.infra import logs
from core.infra import redact
from core.infra.config import load_settings
from core.corpus.documents import Document
from core.infra.logs import StderrSink, setup_logging
from core.infra.retry import RetryPolicy
from core.text.dates import parse_time
from core.research.web_search import (
    MAX_QUERY_CHARS,
    MEDIA_TOOLS,
    QUERY_TOOLS,
    BochaProvider,
    SearchAuthError,
    SearchBadResponse,
    SearchError,
    SearchInputError,
    SearchUnavailable,
    TavilyProvider,
    web_provider_for,
)
from tests.fakes.http_server import Reply, fake_http_server  # noqa: F401  (fixture)
from tests.fakes.search_servers import (ARTICLES, FAKE_BOCHA_KEY, FAKE_TAVILY_KEY,
                                        FakeTavilyServer, fake_bocha, fake_tavily)  # noqa: F401  (fixtures)

EV = "新能源汽车 价格战"
EV_LATEST = ARTICLES[0]  # 5 h old, with an image and a douyin video
EV_2D = ARTICLES[1]      # 50 h old
EV_OLD = ARTICLES[2]     # 400 h old, with an image
JOBS_LATEST = ARTICLES[3]  # with an image and a Bing-style video


class Sleeps(list):
    """Injectable sleep: records each wait instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def isolated_redaction(monkeypatch):
    """Providers register their keys for redaction; keep that from leaking into other test modules."""
    monkeypatch.setattr(redact, "_known", ())


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def tavily(fake_tavily, sleeps):
    with TavilyProvider(**fake_tavily.provider_kwargs(timeout=5), sleep=sleeps) as provider:
        yield provider


@pytest.fixture
def bocha(fake_bocha, sleeps):
    with BochaProvider(**fake_bocha.provider_kwargs(timeout=5), sleep=sleeps) as provider:
        yield provider


@pytest.fixture
def log_dir(tmp_path):
    """loguru writing to tmp_path/logs; handlers removed (files closed) afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    path = tmp_path / "logs"
    setup_logging(path, level="DEBUG", console=False)
    yield path
    logger.remove()
    logger.configure(patcher=None, extra={})
    logger.add(StderrSink(), level="WARNING")  # the stderr of the moment: pytest closes each capture
    root.handlers[:] = handlers
    root.setLevel(level)


def _read_logs(path) -> dict[str, str]:
    logger.complete()
    for handler_id in list(logs.state.handler_ids):
        try:
            logger.remove(handler_id)
        except ValueError:
            pass
    return {p.name: p.read_text("utf-8") for p in path.iterdir() if p.is_file()}


def naive_utc(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc).replace(tzinfo=None, microsecond=0)


# ---------------------------------------------------------------------------------------------
# Tool catalogue

def test_tool_catalogues_match_bettafish_names():
    assert [t.name for t in QUERY_TOOLS] == ["basic_search_news", "deep_search_news", "search_news_last_24_hours",
                                             "search_news_last_week", "search_images_for_news", "search_news_by_date"]
    assert [t.name for t in MEDIA_TOOLS] == ["comprehensive_search", "web_search_only", "search_for_structured_data",
                                             "search_last_24_hours", "search_last_week"]
    by_name = {t.name: t for t in QUERY_TOOLS}
    assert by_name["search_news_by_date"].params == ("start_date", "end_date")
    assert all(t.params == () for t in QUERY_TOOLS + MEDIA_TOOLS if t.name != "search_news_by_date")
    assert all(t.description for t in QUERY_TOOLS + MEDIA_TOOLS)
    assert TavilyProvider.tools == QUERY_TOOLS and TavilyProvider.name == "tavily"
    assert BochaProvider.tools == MEDIA_TOOLS and BochaProvider.name == "bocha"


# ---------------------------------------------------------------------------------------------
# Tavily: every tool

TAVILY_BODIES = {
    "basic_search_news": {"search_depth": "basic", "max_results": 7, "include_answer": False},
    "deep_search_news": {"search_depth": "advanced", "max_results": 20, "include_answer": "advanced"},
    "search_news_last_24_hours": {"time_range": "day", "max_results": 10},
    "search_news_last_week": {"time_range": "week", "max_results": 10},
    "search_images_for_news": {"include_images": True, "include_image_descriptions": True, "max_results": 5},
    "search_news_by_date": {"start_date": "2000-01-01", "end_date": "2100-12-31", "max_results": 15},
}


@pytest.mark.parametrize("tool", [t.name for t in QUERY_TOOLS])
def test_tavily_tool_request_and_documents(tool, tavily, fake_tavily):
    params = {"start_date": "2000-01-01", "end_date": "2100-12-31"} if tool == "search_news_by_date" else {}
    docs = tavily.run_tool(tool, EV, **params)

    [request] = fake_tavily.requests
    assert request.method == "POST" and request.path == "/search"
    assert request.header("authorization") == f"Bearer {FAKE_TAVILY_KEY}"
    assert request.header("content-type") == "application/json"
    body = request.json()
    assert "api_key" not in body  # Bearer auth only: the key is not repeated in the body
    assert body["query"] == EV and body["topic"] == "news"
    for key, value in TAVILY_BODIES[tool].items():
        assert body[key] == value, key
    for absent in {"time_range", "start_date", "include_images"} - set(TAVILY_BODIES[tool]):
        assert absent not in body, absent

    news = [d for d in docs if d.kind == "news"]
    assert news, "the fake has matching EV articles for every tool"
    articles = {a.url: a for a in ARTICLES}
    for doc in news:
        art = articles[doc.url]
        assert (doc.title, doc.content, doc.platform, doc.source) == (art.title, art.content, "news", "tavily")
        assert doc.published == naive_utc(fake_tavily.published(art))
        assert doc.published.tzinfo is None
        assert 0 < doc.score <= 1
    assert [d.score for d in news] == sorted((d.score for d in news), reverse=True)
    # the time windows really reached the server
    if tool == "search_news_last_24_hours":
        assert [d.url for d in news] == [EV_LATEST.url]
    elif tool == "search_news_last_week":
        assert [d.url for d in news] == [EV_LATEST.url, EV_2D.url]
    else:
        assert {d.url for d in news} == {EV_LATEST.url, EV_2D.url, EV_OLD.url}
    images = [d for d in docs if d.kind == "image"]
    assert bool(images) == (tool == "search_images_for_news")


def test_tavily_images_are_documents_with_url_and_description(tavily):
    docs = tavily.run_tool("search_images_for_news", EV)
    images = [d for d in docs if d.kind == "image"]
    assert [(d.url, d.content) for d in images] == [EV_LATEST.image, EV_OLD.image]
    assert all(d.title == d.content for d in images)  # short descriptions serve as titles
    assert all(d.source == "tavily" and d.doc_id for d in images)
    assert len({d.doc_id for d in docs}) == len(docs)


def test_tavily_answer_is_kept_beside_the_documents(tavily):
    deep = tavily.search("deep_search_news", EV)
    assert deep.answer and EV_LATEST.title in deep.answer
    assert tavily.search("basic_search_news", EV).answer is None


def test_tavily_by_date_selects_the_range(tavily, fake_tavily):
    day = naive_utc(fake_tavily.published(EV_2D)).date()
    docs = tavily.run_tool("search_news_by_date", "新能源汽车", start_date=day.isoformat(), end_date=day.isoformat())
    assert [d.url for d in docs] == [EV_2D.url]
    docs = tavily.run_tool("search_news_by_date", "新能源汽车", start_date=date(2000, 1, 1),
                           end_date=datetime(2000, 12, 31, 10, 0))
    assert docs == [] and fake_tavily.last_json()["end_date"] == "2000-12-31"


@pytest.mark.parametrize("params, needle", [
    ({"start_date": "2024/01/01", "end_date": "2024-01-31"}, "start_date"),
    ({"start_date": "2024-02-30", "end_date": "2024-03-01"}, "not a real date"),
    ({"start_date": "2024-03-01", "end_date": "2024-01-01"}, "after"),
    ({"start_date": "2024-03-01"}, "end_date"),
    ({}, "start_date"),
])
def test_tavily_by_date_validates_dates_before_sending(params, needle, tavily, fake_tavily):
    with pytest.raises(SearchInputError, match=needle) as info:
        tavily.run_tool("search_news_by_date", EV, **params)
    assert isinstance(info.value, ValueError) and info.value.tool == "search_news_by_date"
    assert fake_tavily.requests == []


def test_bad_input_is_refused_before_sending(tavily, bocha, fake_tavily, fake_bocha):
    with pytest.raises(SearchInputError, match="unknown tool"):
        tavily.run_tool("comprehensive_search", EV)  # a Media tool on the Query provider
    with pytest.raises(SearchInputError, match="empty"):
        bocha.run_tool("web_search_only", " \x00\t\n ")
    with pytest.raises(SearchInputError, match="max_results"):
        tavily.run_tool("basic_search_news", EV, max_results="many")
    assert fake_tavily.requests == [] and fake_bocha.requests == []
    with pytest.raises(SearchInputError, match="no API key"):
        TavilyProvider("", base_url=fake_tavily.url)


def test_long_query_with_control_characters_is_cleaned_and_clipped(tavily, fake_tavily):
    topic = "新能源汽车\x00价格战\x1b[31m " + "舆情" * 25_000  # a 50,000-character topic
    docs = tavily.run_tool("basic_search_news", topic)
    sent = fake_tavily.last_json()["query"]
    assert len(sent) == MAX_QUERY_CHARS
    assert sent.startswith("新能源汽车 价格战 [31m") and "\x00" not in sent and "\x1b" not in sent
    assert docs  # a real answer, not a 400 for a too-long query


def test_max_results_is_passed_and_capped(tavily, bocha, fake_tavily, fake_bocha):
    tavily.run_tool("basic_search_news", EV, max_results=2)
    assert fake_tavily.last_json()["max_results"] == 2
    tavily.run_tool("basic_search_news", EV, max_results=500)
    assert fake_tavily.last_json()["max_results"] == 20
    bocha.run_tool("web_search_only", EV, max_results=999)
    assert fake_bocha.last_json()["count"] == 50


# ---------------------------------------------------------------------------------------------
# Bocha: every tool

BOCHA_REQUESTS = {
    "comprehensive_search": ("/v1/ai-search", {"freshness": "noLimit", "answer": True, "count": 10, "stream": False}),
    "web_search_only": ("/v1/web-search", {"freshness": "noLimit", "summary": True, "count": 15}),
    "search_for_structured_data": ("/v1/ai-search", {"freshness": "noLimit", "answer": True, "count": 5,
                                                     "stream": False}),
    "search_last_24_hours": ("/v1/ai-search", {"freshness": "oneDay", "answer": False, "count": 10,
                                               "stream": False}),
    "search_last_week": ("/v1/ai-search", {"freshness": "oneWeek", "answer": False, "count": 10, "stream": False}),
}


@pytest.mark.parametrize("tool", [t.name for t in MEDIA_TOOLS])
def test_bocha_tool_request_and_documents(tool, bocha, fake_bocha):
    result = bocha.search(tool, EV)

    [request] = fake_bocha.requests
    path, expected = BOCHA_REQUESTS[tool]
    assert request.method == "POST" and request.path == path
    assert request.header("authorization") == f"Bearer {FAKE_BOCHA_KEY}"
    body = request.json()
    assert body == {"query": EV, **expected}

    web = [d for d in result.documents if d.kind == "web" and not d.extras.get("modal_card")]
    articles = {a.url: a for a in ARTICLES}
    assert web
    for doc in web:
        art = articles[doc.url]
        assert (doc.title, doc.content, doc.platform, doc.source) == (art.title, art.content, art.site, "bocha")
        assert doc.published == naive_utc(fake_bocha.published(art))
    urls = {d.url for d in web}
    if tool == "search_last_24_hours":
        assert urls == {EV_LATEST.url}
    elif tool == "search_last_week":
        assert urls == {EV_LATEST.url, EV_2D.url}
    elif tool == "search_for_structured_data":
        assert len(web) <= 5
    else:
        assert urls == {EV_LATEST.url, EV_2D.url, EV_OLD.url}
    kinds = {d.kind for d in result.documents}
    assert "image" in kinds
    if tool == "web_search_only":
        assert "video" not in kinds and result.answer is None
        assert not any(d.extras.get("modal_card") for d in result.documents)
    else:
        assert "video" in kinds  # the douyin clip of the latest EV article
        assert any(d.extras.get("card_type") == "baike_pro" for d in result.documents)
        assert (result.answer is not None) == expected["answer"]
        assert (len(result.follow_ups) == 2) == expected["answer"]


def test_bocha_maps_images_videos_and_cards(bocha, fake_bocha):
    docs = bocha.run_tool("comprehensive_search", EV)
    by_kind: dict[str, list[Document]] = {}
    for d in docs:
        by_kind.setdefault(d.kind, []).append(d)

    assert [(d.url, d.title) for d in by_kind["image"]] == [EV_LATEST.image, EV_OLD.image]
    first = by_kind["image"][0]
    assert first.extras["host_page_url"] == EV_LATEST.url and first.platform == "web"
    assert first.published == naive_utc(fake_bocha.published(EV_LATEST))

    [clip] = by_kind["video"]
    v = EV_LATEST.video
    assert clip.platform == "douyin" and clip.author == v["creator"] and clip.content == v["description"]
    assert (clip.likes, clip.comments, clip.shares, clip.views) == (v["digg"], v["comments"], v["shares"], v["reads"])
    assert clip.hotness == v["digg"] + 5 * v["comments"] + 10 * v["shares"] + 0.1 * v["reads"]
    assert clip.published == naive_utc(fake_bocha.published(EV_LATEST))

    [card] = [d for d in docs if d.extras.get("modal_card")]
    assert card.kind == "web" and card.platform == "百科" and card.extras["card_type"] == "baike_pro"
    assert "纯电动汽车" in card.content and card.title == "新能源汽车 - 百科"
    assert card.published == datetime(2024, 1, 4, 16, 0)  # +08:00 midnight as naive UTC


def test_bocha_bing_style_video(bocha, fake_bocha):
    docs = bocha.run_tool("comprehensive_search", "高校毕业生 招聘会")
    [video] = [d for d in docs if d.kind == "video"]
    v = JOBS_LATEST.video
    assert (video.title, video.content, video.platform, video.views) == (v["name"], v["description"], v["publisher"],
                                                                        v["views"])
    assert video.url.endswith("-video.html") and video.extras["duration"] == v["duration"]


def test_bocha_variants_of_the_message_format(fake_http_server, sleeps):
    """Real responses differ: images as {"value": [...]}, pages with only dateLastCrawled,
    contents that are not JSON, messages from other roles."""
    page = {"name": "某地暴雨", "url": "https://x.example/a", "summary": "积水严重", "siteName": "",
            "dateLastCrawled": "2024-07-01T08:00:00Z"}
    fake_http_server.always("/v1/ai-search", Reply(200, json={"code": 200, "messages": [
        {"role": "assistant", "type": "source", "content_type": "webpage", "content": json.dumps({"value": [page]})},
        {"role": "assistant", "type": "source", "content_type": "image",
         "content": json.dumps({"value": [{"contentUrl": "https://x.example/1.jpg", "name": "图1"},
                                          {"contentUrl": "https://x.example/2.jpg", "name": "图2"}]})},
        {"role": "assistant", "type": "source", "content_type": "webpage", "content": "{not json"},
        {"role": "user", "type": "source", "content_type": "webpage", "content": json.dumps({"value": [page]})},
        {"role": "assistant", "type": "answer", "content_type": "text", "content": "暴雨导致内涝。"},
    ]}))
    provider = BochaProvider("k-123456", base_url=fake_http_server.url + "/v1/ai-search", sleep=sleeps)
    result = provider.search("comprehensive_search", "暴雨")
    assert fake_http_server.requests[0].path == "/v1/ai-search"  # a full endpoint URL as base still works
    [web, img1, img2] = result.documents
    assert (web.platform, web.published, web.extras["date_is_crawl_time"]) == ("web", datetime(2024, 7, 1, 8), True)
    assert [img1.url, img2.url] == ["https://x.example/1.jpg", "https://x.example/2.jpg"]
    assert result.skipped == 1 and result.answer == "暴雨导致内涝。"


def test_no_results_is_an_empty_list(tavily, bocha, fake_tavily, fake_bocha):
    assert tavily.run_tool("basic_search_news", "zzqx") == []
    assert bocha.run_tool("comprehensive_search", "zzqx") == []
    assert bocha.run_tool("web_search_only", "zzqx") == []
    fake_tavily.fail("empty")
    assert tavily.run_tool("basic_search_news", EV) == []


# ---------------------------------------------------------------------------------------------
# Transient failures: retried under the SEARCH policy

def test_429_then_200_honours_retry_after(tavily, fake_tavily, sleeps):
    fake_tavily.fail("rate_limit", retry_after=2)
    result = tavily.search("basic_search_news", EV)
    assert len(fake_tavily.requests) == 2
    assert sleeps == [pytest.approx(2.0)]  # the server's Retry-After, not the 0–0.5 s jittered backoff
    assert result.attempts == 2 and len(result.documents) == 3


def test_429_really_waits_retry_after(fake_tavily):
    fake_tavily.fail("rate_limit", retry_after=1)
    with TavilyProvider(**fake_tavily.provider_kwargs(timeout=5)) as provider:  # the real sleep
        docs = provider.run_tool("basic_search_news", EV)
    gap = fake_tavily.requests[1].time - fake_tavily.requests[0].time
    # one wait of (at least) Retry-After, then one retry that got the answer
    assert docs and gap >= 0.95 and len(fake_tavily.requests) == 2


def test_bocha_rate_limit_in_the_body_is_retried(bocha, fake_bocha, sleeps):
    fake_bocha.fail("body_error", code=429)
    assert bocha.run_tool("web_search_only", EV)
    assert len(fake_bocha.requests) == 2 and len(sleeps) == 1


@pytest.mark.parametrize("fault", ["server_error", "bad_gateway", "drop", "stall"])
def test_transient_fault_then_success(fault, fake_bocha, sleeps):
    fake_bocha.fail(fault, delay=2.0)
    with BochaProvider(**fake_bocha.provider_kwargs(timeout=0.5), sleep=sleeps) as provider:
        docs = provider.run_tool("comprehensive_search", EV)
    assert docs and len(fake_bocha.requests) == 2 and len(sleeps) == 1


def test_stall_every_time_ends_unavailable(fake_tavily, sleeps):
    # Each stalled answer would arrive (a normal one) after 30 s: the call can only fail if every attempt
    # gave up at the client's 0.3 s timeout, so the raise below is the proof that nothing waited for it.
    fake_tavily.fail("stall", times=4, delay=30.0)
    with TavilyProvider(**fake_tavily.provider_kwargs(timeout=0.3), sleep=sleeps) as provider:
        with pytest.raises(SearchUnavailable) as info:
            provider.run_tool("basic_search_news", EV)
    # 4 attempts, the 3 waits between them recorded by the injected sleep, not slept
    assert len(fake_tavily.requests) == 4 and len(sleeps) == 3
    err = info.value
    assert err.attempts == 4 and err.provider == "tavily" and err.tool == "basic_search_news"
    assert "timeout" in str(err) and "4 attempt" in str(err)


def test_server_errors_every_time_end_unavailable(bocha, fake_bocha, sleeps):
    fake_bocha.fail("server_error", times=10)
    with pytest.raises(SearchUnavailable, match="server_error") as info:
        bocha.run_tool("search_last_week", EV)
    assert info.value.status == 500 and len(fake_bocha.requests) == 4


# ---------------------------------------------------------------------------------------------
# Permanent failures: at once, never retried, never the key

def test_401_is_an_auth_error_at_once_without_the_key(log_dir, sleeps):
    key = "PlainKey-4d8f1c2b"  # no recognisable shape: only our own scrubbing can hide it
    with FakeTavilyServer(api_key=key) as srv, TavilyProvider(key, base_url=srv.url, sleep=sleeps) as provider:
        srv.fail("unauthorized", echo_key=True)  # a server that quotes the token back
        with pytest.raises(SearchAuthError) as info:
            provider.run_tool("basic_search_news", EV)
        assert len(srv.requests) == 1 and sleeps == []
        assert srv.requests[0].header("authorization") == f"Bearer {key}"
    message = str(info.value)
    assert key not in message and "[REDACTED]" in message
    assert "401" in message and "TAVILY_API_KEY" in message and info.value.status == 401
    files = _read_logs(log_dir)
    assert '"status": "auth_error"' in files["knowledge_query.log"]
    assert all(key not in text for text in files.values())


def test_wrong_key_is_an_auth_error(fake_tavily, fake_bocha, sleeps):
    with TavilyProvider("tvly-wrong-000000000", base_url=fake_tavily.url, sleep=sleeps) as provider:
        with pytest.raises(SearchAuthError, match="Unauthorized"):
            provider.run_tool("search_news_last_week", EV)
    with BochaProvider("wrong", base_url=fake_bocha.url, sleep=sleeps) as provider:
        with pytest.raises(SearchAuthError, match="BOCHA_WEB_SEARCH_API_KEY"):
            provider.run_tool("comprehensive_search", EV)
    assert len(fake_tavily.requests) == 1 and len(fake_bocha.requests) == 1 and sleeps == []


def test_bocha_403_balance_is_an_auth_error(bocha, fake_bocha):
    fake_bocha.fail("forbidden")
    with pytest.raises(SearchAuthError, match="余额不足") as info:
        bocha.run_tool("comprehensive_search", EV)
    assert info.value.status == 403 and len(fake_bocha.requests) == 1


def test_other_4xx_is_a_plain_search_error_not_retried(fake_http_server, sleeps):
    fake_http_server.always("/search", Reply(400, json={"detail": {"error": "Invalid topic: sports"}}))
    with TavilyProvider("tvly-abc-1234567890", base_url=fake_http_server.url, sleep=sleeps) as provider:
        with pytest.raises(SearchError, match="Invalid topic") as info:
            provider.run_tool("basic_search_news", EV)
    assert type(info.value) is SearchError and info.value.status == 400
    assert len(fake_http_server.requests) == 1 and sleeps == []


@pytest.mark.parametrize("fault", ["garbage", "wrong_shape"])
@pytest.mark.parametrize("provider_name, tool", [("tavily", "basic_search_news"), ("bocha", "comprehensive_search"),
                                                 ("bocha", "web_search_only")])
def test_garbage_is_a_bad_response_not_a_crash(fault, provider_name, tool, tavily, bocha, fake_tavily, fake_bocha,
                                               sleeps):
    fake, provider = (fake_tavily, tavily) if provider_name == "tavily" else (fake_bocha, bocha)
    fake.fail(fault)
    with pytest.raises(SearchBadResponse) as info:
        provider.run_tool(tool, EV)
    assert len(fake.requests) == 1 and sleeps == []  # a 200 with garbage says the same next time
    assert info.value.provider == provider_name and info.value.status == 200
    assert ("not JSON" if fault == "garbage" else "unexpected shape") in str(info.value)
    assert provider.run_tool(tool, EV)  # the next search works: nothing was left broken


# ---------------------------------------------------------------------------------------------
# knowledge_query.log

def test_every_search_is_logged_to_knowledge_query(log_dir, tavily, bocha, fake_tavily):
    long_query = "高校毕业生就业" + "很长的查询" * 200
    tavily.run_tool("basic_search_news", EV)
    bocha.run_tool("web_search_only", "城市暴雨 内涝")
    bocha.run_tool("comprehensive_search", long_query)
    fake_tavily.fail("garbage")
    with pytest.raises(SearchBadResponse):
        tavily.run_tool("search_news_by_date", EV, start_date="2024-01-01", end_date="2024-01-31")

    files = _read_logs(log_dir)
    lines = files["knowledge_query.log"].splitlines()
    assert len(lines) == 4
    assert '"provider": "tavily"' in lines[0] and '"tool": "basic_search_news"' in lines[0] and EV in lines[0]
    assert '"status": "ok"' in lines[0] and '"results": 3' in lines[0] and '"ms": ' in lines[0]
    assert '"tool": "web_search_only"' in lines[1] and "城市暴雨 内涝" in lines[1]
    assert "高校毕业生就业很长的查询" in lines[2] and len(lines[2]) < 1200  # 400-char query, clipped in the log
    assert "WARNING" in lines[3] and '"status": "bad_response"' in lines[3] and '"start_date": "2024-01-01"' in lines[3]
    assert all(k not in text for text in files.values() for k in (FAKE_TAVILY_KEY, FAKE_BOCHA_KEY))
    assert "search_news_by_date" in files["app.log"] and "query.log" not in files  # not the Query engine's log


# ---------------------------------------------------------------------------------------------
# Selection and helpers

def test_web_provider_for_selects_by_engine_and_key(fake_tavily, fake_bocha):
    settings = load_settings(env={**fake_tavily.env, **fake_bocha.env, "SEARCH_TIMEOUT": "7"})
    query = web_provider_for("query", settings)
    media = web_provider_for("media", settings)
    try:
        assert isinstance(query, TavilyProvider) and query.base_url == fake_tavily.url and query.timeout == 7
        assert isinstance(media, BochaProvider) and media.base_url == fake_bocha.url
        assert query.run_tool("search_news_last_week", EV) and media.run_tool("search_last_week", EV)
        assert FAKE_TAVILY_KEY not in repr(query)
    finally:
        query.close()
        media.close()
    assert web_provider_for("insight", settings) is None
    assert web_provider_for("query", settings, offline=True) is None
    empty = load_settings(env={})
    assert web_provider_for("query", empty) is None and web_provider_for("media", empty) is None
    only_tavily = load_settings(env=fake_tavily.env)
    assert web_provider_for("media", only_tavily) is None
    default = web_provider_for("query", load_settings(env={"TAVILY_API_KEY": "tvly-x-123456789"}))
    assert default.base_url == "https://api.tavily.com" and default.timeout == 20
    default.close()


@pytest.mark.parametrize("raw, expected", [
    ("Tue, 18 Feb 2025 04:48:30 GMT", datetime(2025, 2, 18, 4, 48, 30)),
    ("2025-02-18T12:48:30+08:00", datetime(2025, 2, 18, 4, 48, 30)),
    ("2025-02-18T04:48:30Z", datetime(2025, 2, 18, 4, 48, 30)),
    ("2025-02-18", datetime(2025, 2, 18)),
    (1739854110, datetime(2025, 2, 18, 4, 48, 30)),
    (1739854110000, datetime(2025, 2, 18, 4, 48, 30)),
    ("2025年02月18日", datetime(2025, 2, 18)),
    ("yesterday-ish", None), ("", None), (None, None), (True, None), (-5, None),
])
def test_parse_published(raw, expected):
    assert parse_time(raw, lenient=True) == expected


def test_custom_policy_limits_attempts(fake_tavily, sleeps):
    fake_tavily.fail("server_error", times=5)
    one_shot = RetryPolicy("test", max_attempts=2, max_seconds=5, initial_wait=0.01, max_wait=0.01)
    with TavilyProvider(**fake_tavily.provider_kwargs(), policy=one_shot, sleep=sleeps) as provider:
        with pytest.raises(SearchUnavailable, match="2 attempt"):
            provider.run_tool("basic_search_news", EV)
    assert len(fake_tavily.requests) == 2
