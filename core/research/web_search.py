"""Web search for the Query and Media engines: Tavily-compatible and Bocha-compatible providers.

Both providers have the shape the engines use for every search source (the local corpus has it
too, in core/corpus/search.py):

    provider.name                       "tavily" | "bocha" | "corpus"
    provider.tools                      tuple[ToolSpec, ...] the reasoner may choose from
    provider.run_tool(tool, query, **params) -> list[Document]

`search(...)` returns the same documents plus what the API said around them (an AI answer,
follow-up questions, how many items were unusable).

Query engine (Tavily, POST {base}/search, `Authorization: Bearer <key>`; the key is not sent in the
body) — all news searches (topic "news", so results carry `published_date`):
    basic_search_news          standard search, 7 results
    deep_search_news           advanced depth, 20 results, with Tavily's advanced answer
    search_news_last_24_hours  time_range "day"
    search_news_last_week      time_range "week"
    search_images_for_news     results plus images with descriptions (kind "image" documents)
    search_news_by_date        start_date / end_date, 'YYYY-MM-DD', validated

Media engine (Bocha, `Authorization: Bearer <key>`):
    comprehensive_search        POST {base}/v1/ai-search, answer on: web pages, images, videos, modal cards
    web_search_only             POST {base}/v1/web-search (plain web search, no AI answer)
    search_for_structured_data  ai-search, 5 results, answer on: meant to hit modal cards
    search_last_24_hours        ai-search, freshness "oneDay"
    search_last_week            ai-search, freshness "oneWeek"

Failures are `SearchError`s with messages that never contain the key:
    SearchAuthError     401/403 (Bocha also says 403 for an exhausted balance); never retried
    SearchBadResponse   a 2xx that is not JSON or not the shape the API documents; not retried
    SearchUnavailable   timeouts, connection errors, 429 and 5xx that outlasted the SEARCH policy
    SearchInputError    unknown tool, empty query, bad dates; nothing was sent
An empty result list is a normal answer. Every search — successful or not — is one line in
logs/knowledge_query.log (provider, tool, query, params, status, result count, ms, attempts).

Dates are naive UTC (the project's convention, see core/infra/models.py).
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import httpx

from core.corpus.documents import Document
from core.infra.http_errors import (ProviderAuthError, ProviderBadResponse, ProviderError, ProviderUnavailable,
                                    TransientStatus)
from core.infra.logs import engine_logger
from core.research.reasoning import ToolSpec
from core.infra.redact import redact, register_secrets
from core.infra.retry import SEARCH, RetryPolicy, classify, retrying
from core.text.dates import parse_date, parse_time

__all__ = [
    "SearchError", "SearchAuthError", "SearchBadResponse", "SearchUnavailable", "SearchInputError",
    "SearchResponse", "TavilyProvider", "BochaProvider", "QUERY_TOOLS", "MEDIA_TOOLS",
    "web_provider_for", "MAX_QUERY_CHARS", "LOG_TEXT_MAX",
]

MAX_QUERY_CHARS = 400  # Tavily rejects longer queries with a 400; a search query is never that long on purpose
LOG_TEXT_MAX = 500     # longest text written to knowledge_query.log per field
_DETAIL_MAX = 300      # longest server text quoted in an error message
_CONTENT_MAX = 8000    # longest content kept per document

log = engine_logger("knowledge_query")


# ---------------------------------------------------------------------------------------------
# Errors

class SearchError(ProviderError):
    """A search failed. The message is safe to show and log: the API key is never in it.
    The families (unavailable, auth, bad response) are core.infra.http_errors', shared with the LLM
    client; ``status_label`` is what logs/knowledge_query.log records."""

    status_label = "error"

    def __init__(self, message: str, *, provider: str = "", tool: str = "", status: int | None = None,
                 attempts: int = 0, kind: str | None = None):
        super().__init__(message, provider=provider, status=status, kind=kind, attempts=attempts)
        self.tool = tool


class SearchAuthError(SearchError, ProviderAuthError):
    """401/403: the key is missing, wrong, or (Bocha) out of balance. Retrying cannot help."""
    status_label = "auth_error"


class SearchBadResponse(SearchError, ProviderBadResponse):
    """The API answered, but not with the JSON it documents (garbage, HTML, wrong shape)."""
    status_label = "bad_response"


class SearchUnavailable(SearchError, ProviderUnavailable):
    """Timeouts, dropped connections, 429 or 5xx outlasted the retry policy."""
    status_label = "unavailable"


class SearchInputError(SearchError, ValueError):
    """The request was not sent: unknown tool, empty query, malformed or inverted dates."""
    status_label = "invalid"
    default_kind = "invalid"


# ---------------------------------------------------------------------------------------------
# Results

@dataclass
class SearchResponse:
    provider: str
    tool: str
    query: str  # the query as sent (cleaned, clipped)
    documents: list[Document] = field(default_factory=list)
    answer: str | None = None        # the API's own AI summary, when it gave one (not a citable source)
    follow_ups: list[str] = field(default_factory=list)
    skipped: int = 0                 # items in the response too malformed to become documents
    elapsed_ms: int = 0
    attempts: int = 1


# ---------------------------------------------------------------------------------------------
# Tools

QUERY_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("basic_search_news", "Standard, fast news search on the query; the default when unsure."),
    ToolSpec("deep_search_news", "Most thorough news search (advanced depth, up to 20 results) for background "
                                 "and full context of an event."),
    ToolSpec("search_news_last_24_hours", "News published in the last 24 hours: breaking events, latest turns."),
    ToolSpec("search_news_last_week", "News published in the last 7 days: the week's main coverage."),
    ToolSpec("search_images_for_news", "News results plus related images with descriptions."),
    ToolSpec("search_news_by_date", "News published between start_date and end_date (both 'YYYY-MM-DD', "
                                    "inclusive): a specific historical period.",
             params=("start_date", "end_date")),
)

MEDIA_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("comprehensive_search", "Full multimodal search: web pages, images, videos and structured cards, "
                                     "with an AI summary; the default when unsure."),
    ToolSpec("web_search_only", "Plain web page search (links, summaries, dates), no AI summary; fastest."),
    ToolSpec("search_for_structured_data", "Queries that may hit structured cards (encyclopedia, weather, stocks, "
                                           "prices, medical, trains): few results, cards first."),
    ToolSpec("search_last_24_hours", "Web and media content from the last 24 hours."),
    ToolSpec("search_last_week", "Web and media content from the last 7 days."),
)


# ---------------------------------------------------------------------------------------------
# Helpers

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _clean_query(query: Any) -> str:
    text = _CONTROL.sub(" ", str(query if query is not None else ""))
    text = re.sub(r"\s+", " ", text).strip()
    return text[:MAX_QUERY_CHARS].rstrip()


def _clip(text: Any, limit: int = LOG_TEXT_MAX) -> str:
    s = str(text)
    return s if len(s) <= limit else s[:limit] + f"…(+{len(s) - limit} chars)"


def _str(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return 0.0
    return f if f == f else 0.0  # NaN → 0


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _validate_date(name: str, value: Any) -> str:
    try:
        return parse_date(value, name).isoformat()
    except ValueError as exc:
        raise SearchInputError(str(exc)) from None


def _flatten_text(obj: Any, limit: int = 2000) -> str:
    """The readable strings inside a structured card, for a document's content."""
    parts: list[str] = []
    size = 0

    def walk(o: Any) -> None:
        nonlocal size
        if size >= limit:
            return
        if isinstance(o, str):
            s = o.strip()
            if s and not s.startswith(("http://", "https://", "{")) and s not in parts:
                parts.append(s)
                size += len(s) + 1
        elif isinstance(o, Mapping):
            for v in o.values():
                walk(v)
        elif isinstance(o, (list, tuple)):
            for v in o:
                walk(v)
        elif isinstance(o, (int, float)) and not isinstance(o, bool):
            pass  # bare numbers without their labels read as noise

    walk(obj)
    return "\n".join(parts)[:limit]


def _normalise_base(base_url: str, endpoints: Iterable[str]) -> str:
    """Accept a base URL or, as BettaFish's settings had it, the full endpoint URL."""
    base = (base_url or "").strip().rstrip("/")
    for suffix in endpoints:
        if base.endswith(suffix):
            return base[: -len(suffix)].rstrip("/")
    return base


# ---------------------------------------------------------------------------------------------
# The shared HTTP + retry + logging part

class _WebProvider:
    name = "web"
    tools: tuple[ToolSpec, ...] = ()
    source = "web"
    _key_setting = "API key"

    def __init__(self, api_key: str, base_url: str, timeout: float = 20.0, client: httpx.Client | None = None,
                 *, policy: RetryPolicy = SEARCH, sleep: Callable[[float], None] | None = None):
        if not api_key or not str(api_key).strip():
            raise SearchInputError(f"{self.name}: no API key given ({self._key_setting})", provider=self.name)
        self._api_key = str(api_key).strip()
        register_secrets([self._api_key])  # masked in every log line of the process, whatever its shape
        self.base_url = base_url
        self.timeout = float(timeout)
        self._policy = policy
        self._sleep = sleep
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=httpx.Timeout(self.timeout), follow_redirects=False)
        self._headers = {"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json",
                         "Accept": "application/json", "User-Agent": "shoal-search/1"}
        self._tool_names = {t.name for t in self.tools}
        self._closed = threading.Event()

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={self.base_url!r}, timeout={self.timeout})"

    # lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        if self._own_client and not self._closed.is_set():
            self._closed.set()
            self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # public API ------------------------------------------------------------------------------
    def run_tool(self, tool: str, query: str, **params: Any) -> list[Document]:
        """Documents for one tool call. Raises SearchError (see the module doc)."""
        return self.search(tool, query, **params).documents

    def search(self, tool: str, query: str, *, run_id: str | None = None, job_id: str | None = None,
               **params: Any) -> SearchResponse:
        started = time.monotonic()
        q = _clean_query(query)
        try:
            if tool not in self._tool_names:
                raise SearchInputError(f"{self.name}: unknown tool {_clip(repr(tool), 80)}; "
                                       f"available: {', '.join(t.name for t in self.tools)}")
            if not q:
                raise SearchInputError(f"{self.name}: empty search query")
            response = self._search(tool, q, params, run_id, job_id)
        except SearchError as exc:
            exc.provider = exc.provider or self.name
            exc.tool = exc.tool or tool
            self._log(tool, q or _clean_query(query), params, exc.status_label, 0, started, exc.attempts or 0,
                      error=str(exc))
            raise
        response.elapsed_ms = int((time.monotonic() - started) * 1000)
        self._log(tool, q, params, "ok", len(response.documents), started, response.attempts,
                  skipped=response.skipped)
        return response

    # to implement ----------------------------------------------------------------------------
    def _search(self, tool: str, query: str, params: dict, run_id: str | None, job_id: str | None) -> SearchResponse:
        raise NotImplementedError

    def _check_body(self, payload: Any, response: httpx.Response) -> None:
        """Provider-specific status inside a 200 body."""

    # HTTP ------------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        return redact(str(text).replace(self._api_key, "[REDACTED]"))

    def _detail(self, response: httpx.Response) -> str:
        try:
            text = response.text
        except Exception:  # undecodable body
            return ""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, Mapping):
            for key in ("detail", "msg", "message", "error"):
                value = data.get(key)
                if isinstance(value, Mapping):
                    value = value.get("error") or value.get("message") or json.dumps(value, ensure_ascii=False)
                if value:
                    text = str(value)
                    break
        return _clip(self._scrub(" ".join(text.split())), _DETAIL_MAX)

    def _post(self, url: str, body: dict, tool: str, run_id: str | None, job_id: str | None) -> tuple[Any, int]:
        """POST under the SEARCH policy; the decoded JSON and the number of attempts."""
        controller = retrying(self._policy, op=f"{self.name}.{tool}", run_id=run_id, job_id=job_id,
                              sleep=self._sleep)
        payload: Any = None
        try:
            for attempt in controller:
                with attempt:
                    response = self._client.post(url, json=body, headers=self._headers)
                    payload = self._decode(response, tool)
        except SearchError as exc:
            exc.attempts = controller.statistics.get("attempt_number", 1)
            raise
        except Exception as exc:
            attempts = controller.statistics.get("attempt_number", 1)
            kind = classify(exc)
            what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
            if kind is not None:
                raise SearchUnavailable(
                    self._scrub(f"{self.name} search unavailable after {attempts} attempt(s) ({kind}): {_clip(what, 300)}"),
                    provider=self.name, tool=tool, status=status, attempts=attempts, kind=kind) from exc
            raise SearchError(self._scrub(f"{self.name} search failed: {_clip(what, 300)}"),
                              provider=self.name, tool=tool, status=status, attempts=attempts) from exc
        return payload, controller.statistics.get("attempt_number", 1)

    def _decode(self, response: httpx.Response, tool: str) -> Any:
        status = response.status_code
        if status in (401, 403):
            raise SearchAuthError(
                f"{self.name} rejected the API key (HTTP {status}): {self._detail(response) or 'no detail'}; "
                f"check {self._key_setting}", provider=self.name, tool=tool, status=status)
        if status >= 400:
            try:
                response.raise_for_status()
            except httpx.HTTPStatusError as exc:
                if classify(exc):
                    raise  # 408/429/5xx: core.infra.retry retries it, honouring Retry-After
            raise SearchError(f"{self.name} refused the search (HTTP {status}): {self._detail(response) or 'no detail'}",
                              provider=self.name, tool=tool, status=status)
        ctype = response.headers.get("content-type", "")
        try:
            payload = json.loads(response.content or b"")
        except (ValueError, UnicodeDecodeError):
            snippet = _clip(self._scrub(" ".join(response.text.split())) if response.content else "(empty body)", 120)
            raise SearchBadResponse(
                f"{self.name} answered HTTP {status} with a body that is not JSON ({ctype or 'no content type'}): "
                f"{snippet!r}", provider=self.name, tool=tool, status=status) from None
        if not isinstance(payload, Mapping):
            raise SearchBadResponse(f"{self.name} answered with JSON {type(payload).__name__}, expected an object",
                                    provider=self.name, tool=tool, status=status)
        self._check_body(payload, response)
        return payload

    # logging ---------------------------------------------------------------------------------
    def _log(self, tool: str, query: str, params: Mapping, status: str, count: int, started: float, attempts: int,
             error: str = "", skipped: int = 0) -> None:
        record = {
            "provider": self.name, "tool": tool, "query": _clip(query),
            "params": {k: _clip(v, 100) for k, v in params.items() if k not in ("run_id", "job_id")},
            "status": status, "results": count, "ms": int((time.monotonic() - started) * 1000),
            "attempts": attempts,
        }
        if skipped:
            record["skipped"] = skipped
        if error:
            record["error"] = _clip(error)
        line = self._scrub(json.dumps(record, ensure_ascii=False))
        level = "INFO" if status == "ok" else "WARNING"
        log.log(level, "search {}", line)

    def _bad_shape(self, tool: str, what: str) -> SearchBadResponse:
        return SearchBadResponse(f"{self.name} response has an unexpected shape: {what}", provider=self.name,
                                 tool=tool, status=200)


def _max_results(params: Mapping, default: int, upper: int) -> int:
    raw = params.get("max_results", params.get("count"))
    if raw is None:
        return default
    try:
        n = int(raw)
    except (TypeError, ValueError):
        raise SearchInputError(f"max_results must be a whole number, got {_clip(repr(raw), 40)}") from None
    return max(1, min(upper, n))


# ---------------------------------------------------------------------------------------------
# Tavily

class TavilyProvider(_WebProvider):
    """Tavily-compatible news search for the Query engine."""

    name = "tavily"
    source = "tavily"
    tools = QUERY_TOOLS
    _key_setting = "TAVILY_API_KEY"

    # tool → (request fields, default max_results)
    _PLANS: dict[str, tuple[dict[str, Any], int]] = {
        "basic_search_news": ({"search_depth": "basic", "include_answer": False}, 7),
        "deep_search_news": ({"search_depth": "advanced", "include_answer": "advanced"}, 20),
        "search_news_last_24_hours": ({"time_range": "day"}, 10),
        "search_news_last_week": ({"time_range": "week"}, 10),
        "search_images_for_news": ({"include_images": True, "include_image_descriptions": True}, 5),
        "search_news_by_date": ({}, 15),
    }

    def __init__(self, api_key: str, base_url: str = "https://api.tavily.com", timeout: float = 20.0,
                 client: httpx.Client | None = None, **kw: Any):
        super().__init__(api_key, _normalise_base(base_url, ("/search",)) or "https://api.tavily.com",
                         timeout, client, **kw)

    def build_request(self, tool: str, query: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON body for a tool call (validated; nothing is sent)."""
        fields, default_n = self._PLANS[tool]
        body: dict[str, Any] = {"query": query, "topic": "news", "search_depth": "basic",
                                "max_results": _max_results(params, default_n, 20)}
        body.update(fields)
        if tool == "search_news_by_date":
            start = _validate_date("start_date", params.get("start_date"))
            end = _validate_date("end_date", params.get("end_date"))
            if start > end:
                raise SearchInputError(f"start_date {start} is after end_date {end}")
            body["start_date"], body["end_date"] = start, end
        return body

    def _search(self, tool, query, params, run_id, job_id) -> SearchResponse:
        body = self.build_request(tool, query, params)
        payload, attempts = self._post(f"{self.base_url}/search", body, tool, run_id, job_id)
        return self._parse(tool, query, payload, attempts)

    def _parse(self, tool: str, query: str, payload: Mapping, attempts: int) -> SearchResponse:
        results = payload.get("results")
        if not isinstance(results, list):
            raise self._bad_shape(tool, f"'results' is {type(results).__name__}, expected a list "
                                        f"(keys: {', '.join(sorted(map(str, payload))[:10]) or 'none'})")
        images = payload.get("images") or []
        if not isinstance(images, list):
            raise self._bad_shape(tool, f"'images' is {type(images).__name__}, expected a list")
        out = SearchResponse(self.name, tool, query, attempts=attempts)
        answer = payload.get("answer")
        out.answer = answer.strip() if isinstance(answer, str) and answer.strip() else None
        follow = payload.get("follow_up_questions")
        out.follow_ups = [str(x) for x in follow if x] if isinstance(follow, list) else []
        seen: set[str] = set()
        for rank, item in enumerate(results):
            doc = self._result_doc(item, rank) if isinstance(item, Mapping) else None
            if doc is None:
                out.skipped += 1
                continue
            if doc.doc_id in seen:
                continue
            seen.add(doc.doc_id)
            out.documents.append(doc)
        for rank, item in enumerate(images):
            doc = self._image_doc(item, rank, query)
            if doc is None:
                out.skipped += 1
                continue
            if doc.doc_id in seen:
                continue
            seen.add(doc.doc_id)
            out.documents.append(doc)
        return out

    def _result_doc(self, item: Mapping, rank: int) -> Document | None:
        url, title = _str(item.get("url")), _str(item.get("title"))
        content = _str(item.get("content")) or _str(item.get("raw_content"))
        if not (url or title or content):
            return None
        raw_date = item.get("published_date")
        return Document(
            title=title or _host(url) or url, content=content[:_CONTENT_MAX], url=url,
            published=parse_time(raw_date, lenient=True), platform="news", source=self.source, kind="news",
            score=_float(item.get("score")),
            extras={"site": _host(url), "rank": rank, **({"published_raw": raw_date} if raw_date else {})},
        )

    def _image_doc(self, item: Any, rank: int, query: str) -> Document | None:
        if isinstance(item, str):
            url, description = item.strip(), ""
        elif isinstance(item, Mapping):
            url, description = _str(item.get("url")), _str(item.get("description"))
        else:
            return None
        if not url:
            return None
        title = description[:80] if description else f"图片：{query[:60]}"
        return Document(title=title, content=description, url=url, platform="web", source=self.source,
                        kind="image", extras={"site": _host(url), "rank": rank, "image_for": query})


# ---------------------------------------------------------------------------------------------
# Bocha

class BochaProvider(_WebProvider):
    """Bocha-compatible multimodal search for the Media engine."""

    name = "bocha"
    source = "bocha"
    tools = MEDIA_TOOLS
    _key_setting = "BOCHA_WEB_SEARCH_API_KEY"

    AI_SEARCH = "/v1/ai-search"
    WEB_SEARCH = "/v1/web-search"

    # tool → (endpoint, request fields, default count)
    _PLANS: dict[str, tuple[str, dict[str, Any], int]] = {
        "comprehensive_search": (AI_SEARCH, {"freshness": "noLimit", "answer": True}, 10),
        "web_search_only": (WEB_SEARCH, {"freshness": "noLimit", "summary": True}, 15),
        "search_for_structured_data": (AI_SEARCH, {"freshness": "noLimit", "answer": True}, 5),
        "search_last_24_hours": (AI_SEARCH, {"freshness": "oneDay", "answer": False}, 10),
        "search_last_week": (AI_SEARCH, {"freshness": "oneWeek", "answer": False}, 10),
    }

    def __init__(self, api_key: str, base_url: str = "https://api.bochaai.com", timeout: float = 20.0,
                 client: httpx.Client | None = None, **kw: Any):
        base = _normalise_base(base_url, (self.AI_SEARCH, self.WEB_SEARCH, "/v1"))
        super().__init__(api_key, base or "https://api.bochaai.com", timeout, client, **kw)

    def build_request(self, tool: str, query: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """(endpoint path, JSON body) for a tool call."""
        path, fields, default_n = self._PLANS[tool]
        body: dict[str, Any] = {"query": query, **fields, "count": _max_results(params, default_n, 50)}
        if path == self.AI_SEARCH:
            body["stream"] = False
        return path, body

    def _search(self, tool, query, params, run_id, job_id) -> SearchResponse:
        path, body = self.build_request(tool, query, params)
        payload, attempts = self._post(f"{self.base_url}{path}", body, tool, run_id, job_id)
        out = SearchResponse(self.name, tool, query, attempts=attempts)
        if path == self.WEB_SEARCH:
            self._parse_web(tool, payload, out)
        else:
            self._parse_ai(tool, payload, out)
        return out

    def _check_body(self, payload: Any, response: httpx.Response) -> None:
        code = payload.get("code")
        if code in (None, 200, "200", 0, "0"):
            return
        try:
            status = int(code)
        except (TypeError, ValueError):
            raise SearchBadResponse(f"bocha answered with an unreadable status code {_clip(repr(code), 40)}",
                                    provider=self.name, status=response.status_code) from None
        detail = _clip(self._scrub(_str(payload.get("msg") or payload.get("message")) or "no detail"), _DETAIL_MAX)
        if status in (401, 403):
            raise SearchAuthError(f"bocha rejected the API key (code {status}): {detail}; check {self._key_setting}",
                                  provider=self.name, status=status)
        if status == 429 or 500 <= status <= 599 or status == 408:
            raise TransientStatus(status, f"bocha answered code {status}: {detail}", response.headers)
        raise SearchError(f"bocha refused the search (code {status}): {detail}", provider=self.name, status=status)

    # web-search: {"code":200,"data":{"webPages":{"value":[...]},"images":{"value":[...]},"videos":...}}
    def _parse_web(self, tool: str, payload: Mapping, out: SearchResponse) -> None:
        data = payload.get("data")
        if not isinstance(data, Mapping):
            raise self._bad_shape(tool, f"'data' is {type(data).__name__}, expected an object")
        seen: set[str] = set()
        for section, mapper in (("webPages", self._webpage_doc), ("images", self._image_doc),
                                ("videos", self._video_doc)):
            block = data.get(section)
            if block is None:
                continue
            values = block.get("value") if isinstance(block, Mapping) else None
            if not isinstance(values, list):
                raise self._bad_shape(tool, f"'data.{section}.value' is not a list")
            for rank, item in enumerate(values):
                self._add(out, seen, mapper(item, rank) if isinstance(item, Mapping) else None)

    # ai-search: {"code":200,"conversation_id":…,"messages":[{"role","type","content_type","content"}]}
    def _parse_ai(self, tool: str, payload: Mapping, out: SearchResponse) -> None:
        messages = payload.get("messages")
        if not isinstance(messages, list):
            raise self._bad_shape(tool, f"'messages' is {type(messages).__name__}, expected a list")
        seen: set[str] = set()
        for msg in messages:
            if not isinstance(msg, Mapping):
                out.skipped += 1
                continue
            if msg.get("role", "assistant") != "assistant":
                continue
            mtype, ctype, raw = _str(msg.get("type")), _str(msg.get("content_type")), msg.get("content")
            content = _json_content(raw)
            if mtype == "answer":
                text = raw if isinstance(raw, str) else _flatten_text(content)
                out.answer = ((out.answer or "") + text).strip() or None
                continue
            if mtype == "follow_up":
                items = content if isinstance(content, list) else [raw]
                out.follow_ups += [str(x).strip() for x in items if isinstance(x, str) and x.strip()]
                continue
            if mtype and mtype != "source":
                continue
            if content is None:
                out.skipped += 1
                continue
            if ctype == "webpage":
                mapper = self._webpage_doc
            elif ctype == "image":
                mapper = self._image_doc
            elif ctype == "video":
                mapper = self._video_doc
            elif ctype == "douyin" or (isinstance(content, Mapping) and content.get("type") == "short_video"):
                mapper = self._short_video_doc
            else:
                mapper = lambda item, rank, _t=ctype or "card": self._card_doc(item, rank, _t)  # noqa: E731
            for rank, item in enumerate(_items(content)):
                self._add(out, seen, mapper(item, rank) if isinstance(item, Mapping) else None)

    @staticmethod
    def _add(out: SearchResponse, seen: set[str], doc: Document | None) -> None:
        if doc is None:
            out.skipped += 1
        elif doc.doc_id not in seen:
            seen.add(doc.doc_id)
            out.documents.append(doc)

    # mappers ---------------------------------------------------------------------------------
    def _dated(self, item: Mapping) -> tuple[datetime | None, dict[str, Any]]:
        published = parse_time(item.get("datePublished"), lenient=True)
        if published is not None:
            return published, {}
        crawled = parse_time(item.get("dateLastCrawled"), lenient=True)
        return crawled, ({"date_is_crawl_time": True} if crawled else {})

    def _webpage_doc(self, item: Mapping, rank: int) -> Document | None:
        url, title = _str(item.get("url")), _str(item.get("name"))
        content = _str(item.get("summary")) or _str(item.get("snippet"))
        if not (url or title or content):
            return None
        published, extra = self._dated(item)
        site = _str(item.get("siteName"))
        return Document(title=title or site or _host(url), content=content[:_CONTENT_MAX], url=url,
                        published=published, platform=site or "web", source=self.source, kind="web",
                        extras={"site": site or _host(url), "rank": rank, **extra})

    def _image_doc(self, item: Mapping, rank: int) -> Document | None:
        url = _str(item.get("contentUrl")) or _str(item.get("thumbnailUrl"))
        if not url:
            return None
        name = _str(item.get("name"))
        published, extra = self._dated(item)
        host_page = _str(item.get("hostPageUrl"))
        return Document(title=name or f"图片：{_host(host_page) or _host(url)}", content=name, url=url,
                        published=published, platform=_str(item.get("siteName")) or "web", source=self.source,
                        kind="image",
                        extras={"host_page_url": host_page, "thumbnail_url": _str(item.get("thumbnailUrl")),
                                "width": _int(item.get("width")), "height": _int(item.get("height")),
                                "rank": rank, **extra})

    def _video_doc(self, item: Mapping, rank: int) -> Document | None:
        url = _str(item.get("hostPageUrl")) or _str(item.get("contentUrl"))
        name, description = _str(item.get("name")), _str(item.get("description"))
        if not (url or name or description):
            return None
        publisher = item.get("publisher")
        pub_name = ""
        if isinstance(publisher, list) and publisher and isinstance(publisher[0], Mapping):
            pub_name = _str(publisher[0].get("name"))
        creator = item.get("creator")
        published, extra = self._dated(item)
        return Document(title=name or description[:60] or _host(url), content=description or name, url=url,
                        published=published, platform=_str(item.get("siteName")) or pub_name or "web",
                        author=_str(creator.get("name")) if isinstance(creator, Mapping) else "",
                        views=_int(item.get("viewCount")), source=self.source, kind="video",
                        extras={"content_url": _str(item.get("contentUrl")),
                                "thumbnail_url": _str(item.get("thumbnailUrl")),
                                "duration": _str(item.get("duration")), "rank": rank, **extra})

    def _short_video_doc(self, item: Mapping, rank: int) -> Document | None:
        url = _str(item.get("article_url")) or _str(item.get("content_url"))
        description = _str(item.get("description"))
        if not (url or description):
            return None
        creator = item.get("creator") if isinstance(item.get("creator"), Mapping) else {}
        inter = item.get("interactions") if isinstance(item.get("interactions"), Mapping) else {}
        covers = item.get("cover_images")
        cover = covers[0].get("url") if isinstance(covers, list) and covers and isinstance(covers[0], Mapping) else ""
        return Document(title=description[:60] or "短视频", content=description, url=url,
                        published=parse_time(item.get("publish_time"), lenient=True), platform="douyin",
                        author=_str(creator.get("name")), likes=_int(inter.get("digg_count")),
                        comments=_int(inter.get("comment_count")), shares=_int(inter.get("share_count")),
                        views=_int(inter.get("read_count")), source=self.source, kind="video",
                        extras={"content_url": _str(item.get("content_url")), "cover_url": _str(cover),
                                "duration": _int(item.get("duration")), "rank": rank})

    def _card_doc(self, item: Mapping, rank: int, card_type: str) -> Document | None:
        """A "modal card": structured data (encyclopedia, weather, medical, stocks…) with a page."""
        name, url, site = _str(item.get("name")), _str(item.get("url")), _str(item.get("siteName"))
        content = _str(item.get("summary")) or _str(item.get("snippet"))
        card = item.get("modelCard")
        if not content and card is not None:
            content = _flatten_text(card)
        if not content and not name:
            content = _flatten_text(item)
        if not (name or content):
            return None
        published, extra = self._dated(item)
        return Document(title=name or f"{card_type} 卡片", content=content[:_CONTENT_MAX], url=url,
                        published=published, platform=site or "web", source=self.source, kind="web",
                        extras={"card_type": card_type, "modal_card": True, "site": site or _host(url),
                                "rank": rank, **extra})


def _json_content(raw: Any) -> Any:
    """Bocha sends message content as a JSON-encoded string; tolerate an already decoded value."""
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None
    return raw


def _items(content: Any) -> list[Any]:
    """Items of a source message: {"value": [...]}, a list, or a single object."""
    if isinstance(content, Mapping):
        value = content.get("value")
        if isinstance(value, list):
            return value
        return [content] if content else []
    if isinstance(content, list):
        return content
    return [content]


# ---------------------------------------------------------------------------------------------
# Selection

def web_provider_for(engine: str, settings: Any, *, offline: bool = False,
                     client: httpx.Client | None = None) -> TavilyProvider | BochaProvider | None:
    """The web provider an engine uses: Tavily for "query" when TAVILY_API_KEY is set, Bocha for
    "media" when BOCHA_WEB_SEARCH_API_KEY is set; None otherwise (and always when `offline`, and
    for "insight"), in which case the engine searches the local corpus."""
    if offline:
        return None
    get = settings.get if hasattr(settings, "get") else (lambda k, d=None: getattr(settings, k, d))
    timeout = _float(get("SEARCH_TIMEOUT", 20.0)) or 20.0
    engine = (engine or "").strip().lower()
    if engine == "query":
        key = _str(get("TAVILY_API_KEY", ""))
        if key:
            return TavilyProvider(key, _str(get("TAVILY_BASE_URL", "")) or "https://api.tavily.com", timeout, client)
    elif engine == "media":
        key = _str(get("BOCHA_WEB_SEARCH_API_KEY", ""))
        if key:
            return BochaProvider(key, _str(get("BOCHA_BASE_URL", "")) or "https://api.bochaai.com", timeout, client)
    return None
