"""Test connection for one LLM role: the endpoint's model list, or what is wrong in plain words.

`check_llm_endpoint(base_url, api_key, model)` asks the OpenAI-compatible endpoint for its models
(`GET <base_url>/models`, the cheapest call every such server has), once, bounded by a short
timeout and without retries, so the Settings page answers in seconds. The answer is a CheckResult
whose `msg` is a core.i18n.Msg (rendered in the reader's language) and whose `detail` is the
server's own words, redacted: the key never appears in the result, a log line or an exception.

The same result type serves the web search providers (core.research.provider_check).
"""
from __future__ import annotations

import errno
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import urlsplit

import httpx
import openai

from core.i18n import Msg
from core.infra.deadline import Cut, run_bounded
from core.infra.redact import redact, register_secrets

CHECK_TIMEOUT = 10.0  # seconds; the Settings page's test answers within this
PLACEHOLDER_KEY = "not-needed"  # a local server (Ollama, llama.cpp) takes any key; the SDK insists on one
_DETAIL_MAX = 200
_MODELS_MAX = 200


@dataclass(frozen=True)
class CheckResult:
    """What a connection test found. Holds no secret: safe to keep in session state and to show."""

    ok: bool
    msg: Msg
    notes: tuple[Msg, ...] = ()
    models: tuple[str, ...] = ()
    detail: str = ""  # the server's own words (redacted), shown as they are
    seconds: float = 0.0
    status: int | None = None
    kind: str = ""  # ok | no_url | no_key | auth | forbidden | not_found | rate_limit | server_error |
    #                 http_error | refused | no_host | tls | timeout | connection | bad_response | failed
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def host_of(url: str) -> str:
    try:
        parts = urlsplit(url)
        return parts.netloc.rsplit("@", 1)[-1] or url
    except ValueError:
        return url


def scrub(text: Any, secrets: Iterable[str] = ()) -> str:
    """A server's or library's words, safe to show: known secrets masked, one line, clipped."""
    out = str(text or "")
    for secret in secrets:
        if secret:
            out = out.replace(secret, "[REDACTED]")
    out = redact(" ".join(out.split()))
    return out if len(out) <= _DETAIL_MAX else out[:_DETAIL_MAX] + "…"


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def connection_failure(exc: BaseException, url: str, timeout: float) -> tuple[str, Msg]:
    """(kind, message) for an exception raised before any HTTP answer came back."""
    host = host_of(url)
    chain = _causes(exc)
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, (TimeoutError, socket.timeout, httpx.TimeoutException, openai.APITimeoutError))
           for e in chain) or "timed out" in text:
        return "timeout", Msg("config.check_timeout", {"host": host, "seconds": f"{timeout:g}"})
    if any(isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED for e in chain) \
            or "connection refused" in text or "errno 111" in text:
        return "refused", Msg("config.check_refused", {"url": url})
    if any(isinstance(e, socket.gaierror) for e in chain) or "name or service not known" in text \
            or "nodename nor servname" in text or "temporary failure in name resolution" in text \
            or "getaddrinfo" in text:
        return "no_host", Msg("config.check_no_host", {"host": host})
    if any(isinstance(e, ssl.SSLError) for e in chain) or "ssl" in text or "certificate" in text:
        return "tls", Msg("config.check_tls", {"host": host})
    return "connection", Msg("config.check_connection", {"host": host})


def status_failure(status: int, url: str) -> tuple[str, Msg]:
    """(kind, message) for an HTTP error status."""
    host = host_of(url)
    if status == 401:
        return "auth", Msg("config.check_key_rejected", {"host": host, "status": status})
    if status == 403:
        return "forbidden", Msg("config.check_forbidden", {"host": host})
    if status in (404, 405):
        return "not_found", Msg("config.check_not_found", {"host": host})
    if status == 429:
        return "rate_limit", Msg("config.check_rate_limited", {"host": host})
    if status >= 500:
        return "server_error", Msg("config.check_server_error", {"host": host, "status": status})
    return "http_error", Msg("config.check_http_error", {"host": host, "status": status})


def _api_detail(exc: openai.APIStatusError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner.get("msg") or inner.get("detail") or "")
        return str(inner)
    return str(getattr(exc, "message", "") or "")


def check_llm_endpoint(base_url: str, api_key: str = "", model: str = "", *,
                       timeout: float = CHECK_TIMEOUT) -> CheckResult:
    """List the models at an OpenAI-compatible base URL with this key, once, within `timeout` seconds."""
    url = (base_url or "").strip().rstrip("/")
    key = (api_key or "").strip()
    model = (model or "").strip()
    if not url:
        return CheckResult(False, Msg("config.check_no_url"), kind="no_url")
    register_secrets([key])  # a key typed for the test is masked in any log line too, like a saved one
    started = time.monotonic()
    def list_models(cut: Cut) -> tuple[str, ...]:
        client = openai.OpenAI(api_key=key or PLACEHOLDER_KEY, base_url=url, max_retries=0,
                               timeout=httpx.Timeout(timeout))
        cut.on_cut(client.close)
        try:
            page = client.models.list()
            return tuple(sorted({str(getattr(m, "id", "")) for m in page.data if getattr(m, "id", None)}))
        finally:
            client.close()

    try:  # httpx bounds each read; the whole answer (a server trickling bytes) is bounded here
        models = run_bounded(list_models, timeout, what="LLM connection test")
    except openai.APIStatusError as exc:
        kind, msg = status_failure(exc.status_code, url)
        return CheckResult(False, msg, detail=scrub(_api_detail(exc), [key]), status=exc.status_code, kind=kind,
                           seconds=_since(started))
    except (openai.APIConnectionError, httpx.HTTPError, OSError) as exc:
        kind, msg = connection_failure(exc, url, timeout)
        return CheckResult(False, msg, detail=scrub(_words(exc), [key]), kind=kind, seconds=_since(started))
    except Exception as exc:  # noqa: BLE001 - a body that is not a model list (an HTML page, a proxy's answer)
        return CheckResult(False, Msg("config.check_bad_response", {"host": host_of(url), "provider": "OpenAI"}),
                           detail=scrub(_words(exc), [key]), kind="bad_response", seconds=_since(started))
    seconds = _since(started)
    notes: list[Msg] = []
    if not model:
        notes.append(Msg("config.check_no_model"))
    elif model in models:
        notes.append(Msg("config.check_model_found", {"model": model}))
    elif models:
        notes.append(Msg("config.check_model_missing", {"model": model}))
    return CheckResult(True, Msg("config.check_ok_models", {"host": host_of(url), "seconds": f"{seconds:.1f}",
                                                            "count": len(models)}),
                       notes=tuple(notes), models=models[:_MODELS_MAX], seconds=seconds, kind="ok")


def _words(exc: BaseException) -> str:
    return "; ".join(dict.fromkeys(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                                   for e in _causes(exc)))


def _since(started: float) -> float:
    return round(time.monotonic() - started, 2)
