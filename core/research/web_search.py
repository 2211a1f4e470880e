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

This module is the face the engines use; the code lives in core/research/web_provider.py (errors,
results, tools, the shared HTTP + retry + logging part), tavily.py and bocha.py.
"""
from __future__ import annotations

from typing import Any

import httpx

from core.research.bocha import BochaProvider
from core.research.tavily import TavilyProvider
from core.research.web_provider import (LOG_TEXT_MAX, MAX_QUERY_CHARS, MEDIA_TOOLS, QUERY_TOOLS, SearchAuthError,
                                        SearchBadResponse, SearchError, SearchInputError, SearchResponse,
                                        SearchUnavailable, _float, _str)

__all__ = [
    "SearchError", "SearchAuthError", "SearchBadResponse", "SearchUnavailable", "SearchInputError",
    "SearchResponse", "TavilyProvider", "BochaProvider", "QUERY_TOOLS", "MEDIA_TOOLS",
    "web_provider_for", "MAX_QUERY_CHARS", "LOG_TEXT_MAX",
]


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
