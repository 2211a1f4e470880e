"""Tavily-compatible news search for the Query engine (see core/research/web_search.py)."""
from __future__ import annotations

from typing import Any, Mapping

import httpx

from core.corpus.documents import Document
from core.research.web_provider import (QUERY_TOOLS, SearchInputError, SearchResponse, _CONTENT_MAX, _WebProvider,
                                        _float, _host, _max_results, _normalise_base, _str, _validate_date)
from core.text.dates import parse_time


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
