"""Bocha-compatible multimodal search for the Media engine (see core/research/web_search.py)."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

import httpx

from core.corpus.documents import Document
from core.infra.http_errors import TransientStatus
from core.research.web_provider import (MEDIA_TOOLS, SearchAuthError, SearchBadResponse, SearchError,
                                        SearchResponse, _CONTENT_MAX, _DETAIL_MAX, _WebProvider, _clip,
                                        _flatten_text, _host, _int, _max_results, _normalise_base, _str)
from core.text.dates import parse_time


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
