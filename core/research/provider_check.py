"""Test connection for a web search provider (Tavily, Bocha): one minimal search, once, in seconds.

`check_search_provider("tavily", base_url, api_key)` sends the smallest search the provider
offers (one result), with a short timeout and no retries, and answers with a
core.llm.endpoint_check.CheckResult: how many results came back, or what is wrong in plain words.
The key never appears in the result (the providers scrub their own messages; this module again).
"""
from __future__ import annotations

import time

from core.i18n import Msg
from core.infra.retry import RetryPolicy
from core.llm.endpoint_check import (CHECK_TIMEOUT, CheckResult, connection_failure, host_of, scrub,
                                     status_failure)
from core.research.bocha import BochaProvider
from core.research.tavily import TavilyProvider
from core.research.web_provider import SearchAuthError, SearchBadResponse, SearchError, SearchInputError

PROVIDERS = {"tavily": (TavilyProvider, "basic_search_news", "Tavily"),
             "bocha": (BochaProvider, "web_search_only", "Bocha")}
_QUERY = "news"


def _once(timeout: float) -> RetryPolicy:
    return RetryPolicy("check", max_attempts=1, max_seconds=max(timeout, 0.1), initial_wait=0.0, max_wait=0.0)


def check_search_provider(provider: str, base_url: str, api_key: str, *, timeout: float = CHECK_TIMEOUT) -> CheckResult:
    """One search of one result at `base_url` with `api_key`, within `timeout` seconds."""
    cls, tool, name = PROVIDERS[provider]
    url = (base_url or "").strip()
    key = (api_key or "").strip()
    if not url:
        return CheckResult(False, Msg("config.check_no_url"), kind="no_url")
    if not key:
        return CheckResult(False, Msg("config.check_no_key", {"provider": name}), kind="no_key")
    started = time.monotonic()
    try:
        with cls(key, url, timeout=timeout, policy=_once(timeout)) as search:
            response = search.search(tool, _QUERY, max_results=1)
    except SearchInputError as exc:
        return CheckResult(False, Msg("config.check_failed"), detail=scrub(exc, [key]), kind="failed")
    except SearchError as exc:
        return _failure(exc, name, url, key, timeout, started)
    seconds = round(time.monotonic() - started, 2)
    return CheckResult(True, Msg("config.check_search_ok", {"provider": name, "host": host_of(url),
                                                            "seconds": f"{seconds:.1f}",
                                                            "count": len(response.documents)}),
                       seconds=seconds, kind="ok")


def _failure(exc: SearchError, name: str, url: str, key: str, timeout: float, started: float) -> CheckResult:
    seconds = round(time.monotonic() - started, 2)
    detail = scrub(exc, [key])
    status = exc.status
    if isinstance(exc, SearchAuthError):
        kind, msg = status_failure(status if status in (401, 403) else 401, url)
    elif isinstance(exc, SearchBadResponse):
        kind, msg = "bad_response", Msg("config.check_bad_response", {"host": host_of(url), "provider": name})
    elif status:
        kind, msg = status_failure(status, url)
    elif getattr(exc, "kind", None) in ("timeout", "connection") or exc.__cause__ is not None:
        kind, msg = connection_failure(exc, url, timeout)
        if kind == "connection" and exc.kind == "timeout":
            kind, msg = "timeout", Msg("config.check_timeout", {"host": host_of(url), "seconds": f"{timeout:g}"})
    else:
        kind, msg = "failed", Msg("config.check_failed")
    return CheckResult(False, msg, detail=detail, status=status, kind=kind, seconds=seconds)
