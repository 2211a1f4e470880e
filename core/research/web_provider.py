"""What the web search providers share: their errors, results, tools, the HTTP + retry + logging
part, and small readers of API values. The providers are core/research/tavily.py and
core/research/bocha.py; core/research/web_search.py is the face the engines use (see its doc).

`timeout` (SEARCH_TIMEOUT) bounds each attempt as a whole (core.infra.deadline): connect, the
response headers and the full body. An attempt past it is cut and fails as a 'timeout', retried by
the SEARCH policy like any other; httpx's own timeout bounds only each read.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import httpx

from core.corpus.documents import Document
from core.infra.http_errors import ProviderAuthError, ProviderBadResponse, ProviderError, ProviderUnavailable
from core.infra.deadline import Cut, cut_response, run_bounded
from core.infra.logs import engine_logger
from core.research.reasoning import ToolSpec
from core.infra.redact import redact, register_secrets
from core.infra.retry import SEARCH, RetryPolicy, classify, retrying
from core.text.dates import parse_date

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

_client_lock = threading.Lock()
_client: httpx.Client | None = None


def _shared_client() -> httpx.Client:
    """The process's one connection pool for web searches. Building a client (its TLS context) costs
    0.1-0.3 s of CPU; a provider is made per engine job and per coverage check, on the run's critical
    path. The timeout is each provider's, sent with each request."""
    global _client
    with _client_lock:
        if _client is None or _client.is_closed:
            _client = httpx.Client(follow_redirects=False)
        return _client


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
        self._own_client = False  # a given client is the caller's; ours is the process's pool (_shared_client)
        self._client = client or _shared_client()
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
                    payload = run_bounded(lambda cut: self._request(url, body, tool, cut), self.timeout,
                                          what=f"{self.name} search", setting="SEARCH_TIMEOUT")
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

    def _request(self, url: str, body: dict, tool: str, cut: Cut) -> Any:
        """One POST, read in chunks so that a cut at SEARCH_TIMEOUT stops it."""
        with self._client.stream("POST", url, json=body, headers=self._headers,
                                 timeout=httpx.Timeout(self.timeout)) as response:
            cut.on_cut(lambda: cut_response(response))
            data = bytearray()
            try:
                for chunk in response.iter_bytes():  # decoded (gzip...)
                    cut.raise_if_cut()
                    data += chunk
                    cut.received = len(data)
            finally:
                cut.release()  # the connection goes back to the pool: a late cut must not touch it
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return self._decode(httpx.Response(response.status_code, headers=headers, content=bytes(data),
                                           request=response.request), tool)

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
