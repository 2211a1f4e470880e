"""Fake Tavily and Bocha search APIs on 127.0.0.1: real HTTP, answers shaped like the real ones.

Both serve a small built-in set of Chinese news articles (three topics: 新能源汽车价格战,
高校毕业生就业, 城市暴雨内涝), filtered by the query (CJK bigrams and ASCII words), by time
windows relative to the server's `now`, and by date ranges. Both check `Authorization: Bearer
<api_key>` and answer 401 as the real APIs do when it is wrong. Faults are queued and served
before normal answers, one request each, on any search path:

    with FakeTavilyServer() as tv:                      # or the `fake_tavily` fixture
        tv.fail("rate_limit", retry_after=1)            # 429 + Retry-After, then normal answers
        tv.fail("stall", times=4, delay=2.0)            # answers only after 2 s (past a client timeout)
        provider = TavilyProvider(**tv.provider_kwargs())
        ...
        tv.last_json()                                  # the last request body
        tv.requests                                     # RecordedRequest list (headers lower-cased)

Fault kinds: rate_limit (429, Retry-After), server_error (500), bad_gateway (502, HTML body),
stall (delay, then a normal answer), trickle (the normal answer 16 bytes at a time, `delay`
seconds apart: each read comes quickly, the whole never does; see `http.streams`), drop (connection closed, no response), garbage (200, not
JSON), wrong_shape (200, JSON of the wrong shape), unauthorized (401; `echo_key=True` puts the
received token in the message, as careless gateways do), forbidden (403; Bocha: balance
exhausted), body_error (Bocha only: HTTP 200 with {"code": <code>} in the body), empty (200, no
results).

`env` gives the settings that point the app at the fake: {"TAVILY_API_KEY": …, "TAVILY_BASE_URL": …}.
"""
from __future__ import annotations

import email.utils
import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from .http_server import FakeHTTPServer, RecordedRequest, Reply

TRICKLE_BYTES = 16  # per chunk of a "trickle" fault
FAKE_TAVILY_KEY = "tvly-fake-0123456789abcdef"
FAKE_BOCHA_KEY = "sk-fake-bocha-0123456789abcdef"

FAULT_KINDS = ("rate_limit", "server_error", "bad_gateway", "stall", "trickle", "drop", "garbage", "wrong_shape",
               "unauthorized", "forbidden", "body_error", "empty")


@dataclass(frozen=True)
class FakeArticle:
    title: str
    content: str
    url: str
    site: str
    age_hours: float  # published this long before the server's `now`
    image: tuple[str, str] | None = None  # (image URL, description)
    video: dict[str, Any] | None = None   # {"kind": "douyin" | "video", ...}


ARTICLES: tuple[FakeArticle, ...] = (
    FakeArticle("新能源汽车价格战再升级，多家车企宣布限时降价",
                "本周多家新能源汽车品牌宣布限时降价，最高优惠超过两万元。业内人士认为，价格战短期利好消费者，"
                "但长期可能压缩车企利润，行业洗牌加速。网友评论两极分化，有人称“终于等到了”，也有人担心保值率。",
                "https://news.example.cn/auto/2024/price-war-1.html", "新华财经", 5,
                image=("https://img.example.cn/auto/price-war.jpg", "车展现场的新能源汽车与降价海报"),
                video={"kind": "douyin", "description": "实拍4S店：新能源汽车降价后排队提车 #价格战",
                       "creator": "汽车观察员小李", "digg": 1520, "comments": 233, "shares": 88, "reads": 40210}),
    FakeArticle("新能源汽车降价潮下，消费者持币观望情绪上升",
                "调查显示，近六成受访者表示会等待进一步降价再购车。经销商库存压力增大，部分门店出现“价格倒挂”。"
                "专家建议理性消费，关注电池质保与售后服务。",
                "https://www.example-finance.com/a/20240312/ev-wait.html", "第一财经", 50),
    FakeArticle("工信部：规范新能源汽车市场竞争秩序",
                "工信部相关负责人表示，将加强对新能源汽车市场价格行为的监测，反对无序价格竞争，"
                "引导企业把精力放在技术创新和产品质量上。",
                "https://gov.example.cn/xwdt/ev-order.html", "人民网", 400,
                image=("https://img.example.cn/gov/briefing.png", "新闻发布会现场")),
    FakeArticle("高校毕业生就业季：招聘会现场人头攒动",
                "今年高校毕业生规模再创新高。多地举办专场招聘会，数字经济、先进制造岗位需求旺盛，"
                "不少毕业生表示“慢就业”心态有所转变，更看重岗位稳定性。",
                "https://edu.example.cn/jiuye/2024/job-fair.html", "中国青年报", 10,
                image=("https://img.example.cn/edu/job-fair.jpg", "高校招聘会现场排队的毕业生"),
                video={"kind": "video", "name": "直击高校招聘会", "description": "记者探访招聘会，毕业生谈求职期待",
                       "publisher": "央视新闻", "views": 98000, "duration": "PT2M31S"}),
    FakeArticle("毕业生就业观念变化：考公考编热度不减",
                "多项调查显示，毕业生求职更趋稳健，考公考编报名人数持续增长。也有毕业生选择灵活就业和自主创业，"
                "社交平台上关于“体制内还是互联网大厂”的讨论热度很高。",
                "https://www.example-news.com/society/grad-choice.html", "澎湃新闻", 100),
    FakeArticle("教育部部署高校毕业生就业促进行动",
                "教育部召开视频会议，部署高校毕业生就业创业促进行动，要求各地拓宽就业渠道、加强就业指导。",
                "https://moe.example.cn/jyb/2023/promote.html", "教育部网站", 2000),
    FakeArticle("城市暴雨内涝：多条道路积水严重，地铁临时停运",
                "受强降雨影响，市区多条道路出现严重积水，部分地铁线路临时停运。市民在社交媒体上分享积水视频，"
                "呼吁改进排水系统。应急管理部门已启动防汛四级响应。",
                "https://local.example.cn/2024/rainstorm.html", "本地宝", 2,
                image=("https://img.example.cn/local/flood.jpg", "暴雨后积水的城市主干道")),
    FakeArticle("暴雨过后内涝治理再引关注，专家谈“海绵城市”建设",
                "专家指出，城市内涝频发暴露出排水设施标准偏低的问题，建议加快海绵城市建设，提升城市韧性。",
                "https://www.example-news.com/city/sponge-city.html", "光明网", 30),
)

CARDS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("新能源汽车", {
        "id": None, "name": "新能源汽车 - 百科", "url": "https://baike.example.cn/item/新能源汽车",
        "displayUrl": "https://baike.example.cn/item/新能源汽车", "snippet": None, "summary": None,
        "siteName": "百科", "siteIcon": None, "datePublished": "2024-01-05T00:00:00+08:00",
        "modelCard": {"module_list": [{"item_list": [{"data": {"card": {
            "title": "新能源汽车", "subTitle": "采用新型动力系统的汽车",
            "abstract_info": "新能源汽车是指采用非常规车用燃料作为动力来源，或使用常规燃料但采用新型车载动力装置的汽车，"
                             "包括纯电动汽车、插电式混合动力汽车和燃料电池汽车等。"}}}]}]},
    }),
)

_CJK = re.compile(r"[\u4e00-\u9fff]+")
_WORD = re.compile(r"[A-Za-z0-9]{2,}")


def query_terms(query: str) -> set[str]:
    """What the fakes match on: CJK bigrams (single characters alone) and ASCII words."""
    terms: set[str] = set()
    for run in _CJK.findall(query or ""):
        if len(run) == 1:
            terms.add(run)
        terms.update(run[i:i + 2] for i in range(len(run) - 1))
    terms.update(w.lower() for w in _WORD.findall(query or ""))
    return terms


def _rfc2822(dt: datetime) -> str:
    return email.utils.format_datetime(dt.astimezone(timezone.utc), usegmt=True)


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Fault:
    kind: str
    retry_after: float = 1.0
    delay: float = 5.0
    echo_key: bool = False
    code: int = 500


class FakeSearchServer:
    """The shared part: built-in articles, auth, fault queue, recording. Use a subclass."""

    paths: tuple[str, ...] = ()
    default_key = ""
    env_names: tuple[str, str] = ("", "")

    def __init__(self, api_key: str | None = None, articles: tuple[FakeArticle, ...] = ARTICLES,
                 now: datetime | None = None):
        self.api_key = api_key if api_key is not None else self.default_key
        self.articles = tuple(articles)
        self.now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        self.http = FakeHTTPServer()
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        for path in self.paths:
            self.http.always(path, self._respond)

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> "FakeSearchServer":
        self.http.start()
        return self

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def env(self) -> dict[str, str]:
        key_name, url_name = self.env_names
        return {key_name: self.api_key, url_name: self.url}

    def provider_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for TavilyProvider / BochaProvider pointing at this server."""
        return {"api_key": self.api_key, "base_url": self.url, **overrides}

    # faults ----------------------------------------------------------------------------------
    def fail(self, kind: str, times: int = 1, *, retry_after: float = 1.0, delay: float = 5.0,
             echo_key: bool = False, code: int = 500) -> "FakeSearchServer":
        """Queue `times` faulty answers, served before any normal answer (any search path)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(kind, retry_after, delay, echo_key, code))
        return self

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    # inspection ------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        return [r for r in self.http.requests if r.path in self.paths]

    def last_json(self) -> Any:
        reqs = self.requests
        return reqs[-1].json() if reqs else None

    # matching --------------------------------------------------------------------------------
    def published(self, article: FakeArticle) -> datetime:
        return self.now - timedelta(hours=article.age_hours)

    def match(self, query: str, *, max_age: timedelta | None = None, start: date | None = None,
              end: date | None = None) -> list[tuple[FakeArticle, int]]:
        """Articles for a query, best first, with their match scores."""
        terms = query_terms(query)
        hits = []
        for art in self.articles:
            text = (art.title + art.content).lower()
            score = sum(2 if t in art.title.lower() else 1 for t in terms if t in text)
            if score <= 0:
                continue
            when = self.published(art)
            if max_age is not None and self.now - when > max_age:
                continue
            if start is not None and when.date() < start:
                continue
            if end is not None and when.date() > end:
                continue
            hits.append((art, score))
        hits.sort(key=lambda h: (-h[1], h[0].age_hours))
        return hits

    # serving ---------------------------------------------------------------------------------
    def _token(self, request: RecordedRequest) -> str:
        auth = request.header("authorization") or ""
        return auth[7:].strip() if auth.lower().startswith("bearer ") else ""

    def _respond(self, request: RecordedRequest) -> Reply:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            return self._fault_reply(fault, request)
        try:
            body = request.json()
        except ValueError:
            return self._error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return self._error(400, "request body must be a JSON object")
        if not self._authorised(request, body):
            return self._unauthorized(request, echo=False)
        return self.answer(request.path, body)

    def _authorised(self, request: RecordedRequest, body: dict) -> bool:
        return bool(self.api_key) and self._token(request) == self.api_key

    def _fault_reply(self, fault: _Fault, request: RecordedRequest) -> Reply:
        kind = fault.kind
        if kind == "rate_limit":
            return self._error(429, "rate limit exceeded", headers={"Retry-After": f"{fault.retry_after:g}"})
        if kind == "server_error":
            return self._error(500, "internal server error")
        if kind == "bad_gateway":
            return Reply(502, body="<html><body><h1>502 Bad Gateway</h1></body></html>",
                         content_type="text/html")
        if kind == "stall":
            try:
                body = request.json()
            except ValueError:
                body = {}
            normal = self.answer(request.path, body if isinstance(body, dict) else {})
            return Reply(normal.status, json=normal.json, delay=fault.delay)
        if kind == "trickle":
            try:
                body = request.json()
            except ValueError:
                body = {}
            data = self.answer(request.path, body if isinstance(body, dict) else {}).payload()
            return Reply(200, chunks=[data[i:i + TRICKLE_BYTES] for i in range(0, len(data), TRICKLE_BYTES)],
                         chunk_delay=fault.delay, content_type="application/json")
        if kind == "drop":
            return Reply(drop=True)
        if kind == "garbage":
            return Reply(200, body="<!DOCTYPE html><html><body>维护中 maintenance {\"results\": [",
                         content_type="application/json")
        if kind == "wrong_shape":
            return Reply(200, json=self.wrong_shape(request.path))
        if kind == "unauthorized":
            return self._unauthorized(request, echo=fault.echo_key)
        if kind == "forbidden":
            return self._error(403, "余额不足，请充值 (insufficient balance)")
        if kind == "body_error":
            return self.body_error(fault.code)
        if kind == "empty":
            try:
                body = request.json()
            except ValueError:
                body = {}
            return self.answer(request.path, {**(body if isinstance(body, dict) else {}), "query": "zzzz-no-match"},
                               echo_query=(body or {}).get("query", ""))
        raise AssertionError(kind)  # pragma: no cover

    def _unauthorized(self, request: RecordedRequest, echo: bool) -> Reply:
        msg = "Unauthorized: missing or invalid API key."
        if echo:
            msg += f" Received: {self._token(request) or '(none)'}"
        return self._error(401, msg)

    # per API ---------------------------------------------------------------------------------
    def answer(self, path: str, body: dict, echo_query: str | None = None) -> Reply:
        raise NotImplementedError

    def wrong_shape(self, path: str) -> Any:
        raise NotImplementedError

    def body_error(self, code: int) -> Reply:
        return self._error(code, "error")

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Tavily: POST /search

_TAVILY_RANGES = {"day": 1, "d": 1, "week": 7, "w": 7, "month": 30, "m": 30, "year": 365, "y": 365}


class FakeTavilyServer(FakeSearchServer):
    """POST /search like api.tavily.com. Accepts the key as a Bearer token or, as the legacy API
    did, `api_key` in the body."""

    paths = ("/search",)
    default_key = FAKE_TAVILY_KEY
    env_names = ("TAVILY_API_KEY", "TAVILY_BASE_URL")

    def _authorised(self, request: RecordedRequest, body: dict) -> bool:
        return super()._authorised(request, body) or (bool(self.api_key) and body.get("api_key") == self.api_key)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        return Reply(status, json={"detail": {"error": message}}, headers=headers or {})

    def wrong_shape(self, path: str) -> Any:
        return {"query": "?", "results": {"title": "not a list"}, "response_time": 0.01}

    def answer(self, path: str, body: dict, echo_query: str | None = None) -> Reply:
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return self._error(400, "Query is missing.")
        if len(query) > 400:
            return self._error(400, "Query is too long. Max query length is 400 characters.")
        topic = body.get("topic", "general")
        if topic not in ("general", "news", "finance"):
            return self._error(400, f"Invalid topic: {topic}")
        depth = body.get("search_depth", "basic")
        if depth not in ("basic", "advanced", "fast", "ultra-fast"):
            return self._error(400, f"Invalid search_depth: {depth}")
        try:
            max_results = int(body.get("max_results", 5))
        except (TypeError, ValueError):
            return self._error(400, "max_results must be an integer")
        if not 0 <= max_results <= 20:
            return self._error(400, "max_results must be between 0 and 20")
        max_age = None
        if body.get("time_range") is not None:
            if body["time_range"] not in _TAVILY_RANGES:
                return self._error(400, f"Invalid time_range: {body['time_range']}")
            max_age = timedelta(days=_TAVILY_RANGES[body["time_range"]])
        elif body.get("days") is not None and topic == "news":
            max_age = timedelta(days=int(body["days"]))
        try:
            start = date.fromisoformat(body["start_date"]) if body.get("start_date") else None
            end = date.fromisoformat(body["end_date"]) if body.get("end_date") else None
        except (TypeError, ValueError):
            return self._error(400, "start_date and end_date must be YYYY-MM-DD")
        hits = self.match(query, max_age=max_age, start=start, end=end)[:max_results]
        top = max((s for _, s in hits), default=1)
        results = []
        for art, score in hits:
            item = {"title": art.title, "url": art.url, "content": art.content,
                    "score": round(0.5 + 0.49 * score / top, 4), "raw_content": None}
            if topic == "news":
                item["published_date"] = _rfc2822(self.published(art))
            results.append(item)
        images: list[Any] = []
        if body.get("include_images"):
            for art, _ in hits:
                if art.image:
                    url, desc = art.image
                    images.append({"url": url, "description": desc} if body.get("include_image_descriptions") else url)
        answer = None
        if body.get("include_answer"):
            answer = (f"共找到{len(hits)}篇相关报道：" + "；".join(a.title for a, _ in hits[:3])) if hits else "未找到相关报道。"
        return Reply(200, json={
            "query": echo_query if echo_query is not None else query, "follow_up_questions": None,
            "answer": answer, "images": images, "results": results, "response_time": 0.12,
            "request_id": str(uuid.uuid4()),
        })


# ---------------------------------------------------------------------------------------------
# Bocha: POST /v1/ai-search and /v1/web-search

_BOCHA_FRESHNESS = {"oneday": 1, "oneweek": 7, "onemonth": 30, "oneyear": 365, "nolimit": None}
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.\.(\d{4}-\d{2}-\d{2}))?$")


class FakeBochaServer(FakeSearchServer):
    """/v1/ai-search (messages with JSON-string contents: webpage, image, video/douyin, modal
    cards, answer, follow-ups) and /v1/web-search (Bing-compatible data.webPages / data.images)."""

    AI = "/v1/ai-search"
    WEB = "/v1/web-search"
    paths = (AI, WEB)
    default_key = FAKE_BOCHA_KEY
    env_names = ("BOCHA_WEB_SEARCH_API_KEY", "BOCHA_BASE_URL")

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        return Reply(status, json={"code": status, "msg": message, "log_id": uuid.uuid4().hex[:16]},
                     headers=headers or {})

    def body_error(self, code: int) -> Reply:
        return Reply(200, json={"code": code, "msg": "服务繁忙，请稍后再试", "log_id": uuid.uuid4().hex[:16]})

    def wrong_shape(self, path: str) -> Any:
        if path == self.WEB:
            return {"code": 200, "log_id": "x", "msg": None, "data": ["not", "an", "object"]}
        return {"code": 200, "log_id": "x", "conversation_id": "c", "messages": {"role": "assistant"}}

    def _window(self, freshness: Any) -> tuple[timedelta | None, date | None, date | None] | None:
        if freshness in (None, ""):
            return None, None, None
        text = str(freshness)
        if text.lower() in _BOCHA_FRESHNESS:
            days = _BOCHA_FRESHNESS[text.lower()]
            return (timedelta(days=days) if days else None), None, None
        m = _RANGE.match(text)
        if not m:
            return None
        try:
            start = date.fromisoformat(m.group(1))
            end = date.fromisoformat(m.group(2) or m.group(1))
        except ValueError:
            return None
        return None, start, end

    def answer(self, path: str, body: dict, echo_query: str | None = None) -> Reply:
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return self._error(400, "query 不能为空")
        window = self._window(body.get("freshness"))
        if window is None:
            return self._error(400, f"freshness 取值无效: {body.get('freshness')}")
        try:
            count = int(body.get("count", 10))
        except (TypeError, ValueError):
            return self._error(400, "count 必须是整数")
        if not 1 <= count <= 50:
            return self._error(400, "count 取值范围 1-50")
        max_age, start, end = window
        hits = [a for a, _ in self.match(query, max_age=max_age, start=start, end=end)][:count]
        if path == self.WEB:
            return Reply(200, json=self._web_payload(query, hits, bool(body.get("summary"))))
        if body.get("stream"):
            return self._error(400, "this fake serves stream=false only")
        return Reply(200, json=self._ai_payload(query, hits, bool(body.get("answer", True))))

    def _webpage(self, i: int, art: FakeArticle, summary: bool = True) -> dict[str, Any]:
        when = self.published(art)
        page = {"id": f"https://api.bochaai.com/v1/#WebPages.{i}", "name": art.title, "url": art.url,
                "displayUrl": art.url, "snippet": art.content[:60], "siteName": art.site,
                "siteIcon": f"https://th.bochaai.com/favicon?domain_url={art.url}",
                "datePublished": when.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="seconds"),
                "dateLastCrawled": _iso(when + timedelta(hours=1)), "cachedPageUrl": None, "language": None,
                "isFamilyFriendly": None, "isNavigational": None}
        if summary:
            page["summary"] = art.content
        return page

    def _image(self, art: FakeArticle) -> dict[str, Any]:
        url, desc = art.image  # type: ignore[misc]
        return {"webSearchUrl": None, "name": desc, "thumbnailUrl": url + "?thumb=1",
                "datePublished": _iso(self.published(art)), "contentUrl": url, "hostPageUrl": art.url,
                "contentSize": None, "encodingFormat": "jpeg", "hostPageDisplayUrl": art.url,
                "width": 1280, "height": 720, "thumbnail": {"width": 320, "height": 180}}

    def _video(self, art: FakeArticle) -> tuple[str, dict[str, Any]]:
        v = art.video or {}
        when = self.published(art)
        if v.get("kind") == "douyin":
            return "douyin", {
                "type": "short_video", "description": v["description"], "width": 540, "height": 960,
                "definition": "540p", "duration": 42, "size": 1234567,
                "creator": {"name": v["creator"], "avatar_url": None, "followers_count": 5200},
                "interactions": {"read_count": v["reads"], "digg_count": v["digg"], "share_count": v["shares"],
                                 "comment_count": v["comments"]},
                "publish_time": int(when.timestamp()),
                "article_url": art.url.replace(".html", "-video.html"),
                "content_url": "https://video.example.cn/play/" + str(abs(hash(art.url)) % 10**8),
                "cover_images": [{"height": 1920, "width": 1080, "url": "https://img.example.cn/cover.jpg"}],
            }
        return "video", {
            "webSearchUrl": None, "name": v["name"], "description": v["description"],
            "thumbnailUrl": "https://img.example.cn/video-thumb.jpg", "publisher": [{"name": v["publisher"]}],
            "creator": {"name": v["publisher"]}, "contentUrl": "https://video.example.cn/v/" + art.url[-20:],
            "hostPageUrl": art.url.replace(".html", "-video.html"), "encodingFormat": "mp4",
            "width": 1280, "height": 720, "duration": v["duration"], "viewCount": v["views"],
            "datePublished": _iso(when),
        }

    def _ai_payload(self, query: str, hits: list[FakeArticle], answer: bool) -> dict[str, Any]:
        def msg(mtype: str, ctype: str, content: Any) -> dict[str, Any]:
            return {"role": "assistant", "type": mtype, "content_type": ctype,
                    "content": content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)}

        messages = [msg("source", "webpage", {"webSearchUrl": f"https://bochaai.com/search?q={query}",
                                              "value": [self._webpage(i, a) for i, a in enumerate(hits)],
                                              "someResultsRemoved": False})]
        for art in hits:
            if art.image:
                messages.append(msg("source", "image", self._image(art)))
        for art in hits:
            if art.video:
                ctype, obj = self._video(art)
                messages.append(msg("source", ctype, obj))
        for keyword, card in CARDS:
            if keyword in query:
                messages.append(msg("source", "baike_pro", [card]))
        if answer:
            text = ("据公开报道，" + "；".join(a.title for a in hits[:3]) + "。") if hits else "暂未找到相关信息。"
            messages.append(msg("answer", "text", text))
            messages.append(msg("follow_up", "text", [f"{query}的原因是什么？", f"{query}的影响有哪些？"]))
        return {"code": 200, "log_id": uuid.uuid4().hex[:16], "conversation_id": uuid.uuid4().hex,
                "messages": messages}

    def _web_payload(self, query: str, hits: list[FakeArticle], summary: bool) -> dict[str, Any]:
        images = [self._image(a) for a in hits if a.image]
        data: dict[str, Any] = {
            "_type": "SearchResponse", "queryContext": {"originalQuery": query},
            "webPages": {"webSearchUrl": f"https://bochaai.com/search?q={query}", "totalEstimatedMatches": len(hits),
                         "value": [self._webpage(i, a, summary) for i, a in enumerate(hits)],
                         "someResultsRemoved": False},
            "images": {"id": None, "readLink": None, "webSearchUrl": None, "value": images,
                       "isFamilyFriendly": None},
            "videos": None,
        }
        return {"code": 200, "log_id": uuid.uuid4().hex[:16], "msg": None, "data": data}


# ---------------------------------------------------------------------------------------------
# Fixtures (import them into a test module: `from tests.fakes.search_servers import fake_tavily`)

@pytest.fixture
def fake_tavily() -> Iterator[FakeTavilyServer]:
    """A started FakeTavilyServer with key FAKE_TAVILY_KEY; `.env` points settings at it."""
    with FakeTavilyServer() as srv:
        yield srv


@pytest.fixture
def fake_bocha() -> Iterator[FakeBochaServer]:
    """A started FakeBochaServer with key FAKE_BOCHA_KEY; `.env` points settings at it."""
    with FakeBochaServer() as srv:
        yield srv
