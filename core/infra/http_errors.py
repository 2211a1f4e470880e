"""The one error hierarchy of HTTP providers: LLM endpoints (core/llm/client.py) and web search APIs
(core/research/web_search.py).

    ProviderError            a call to a provider failed; message safe to show (never the key)
      ProviderUnavailable    timeouts, dropped connections, 429, 5xx, after the retries (transient)
      ProviderAuthError      401/403: the key is missing, wrong or out of balance; never retried
      ProviderRejected       the provider refused the request itself (400/404/422, unknown model...)
      ProviderBadResponse    the provider answered, but not with what it documents

Every error carries ``provider``, ``status`` (the HTTP or body status, when there was one), ``kind``
(what went wrong, e.g. 'timeout', 'rate_limit', 'auth') and ``attempts``; ``transient`` says whether
trying again later may help. The LLM and search errors (LlmUnavailable, SearchAuthError, ...) are
subclasses of these, so a caller may catch either family or both.

``TransientStatus`` is raised inside an attempt, never to callers: a reply whose body says what an
HTTP status would (Bocha's ``code`` 429, a 200 that is no chat completion), shaped with
``status_code`` and ``headers`` so core.infra.retry.classify retries it like that status.
"""
from __future__ import annotations

from typing import Any

__all__ = ["ProviderError", "ProviderUnavailable", "ProviderAuthError", "ProviderRejected",
           "ProviderBadResponse", "TransientStatus"]


class ProviderError(RuntimeError):
    """A call to an HTTP provider did not give a usable answer."""

    default_kind = "error"
    transient = False   # whether the same call may succeed later

    def __init__(self, message: str, *, provider: str = "", status: int | None = None, kind: str | None = None,
                 attempts: int = 0):
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.kind = kind or self.default_kind
        self.attempts = attempts


class ProviderUnavailable(ProviderError):
    """Timeouts, connection failures, 429 and 5xx that outlasted the retry policy."""
    default_kind = "connection"
    transient = True


class ProviderAuthError(ProviderError):
    """The provider refused the credentials (401/403)."""
    default_kind = "auth"


class ProviderRejected(ProviderError):
    """The provider refused the request as such (400/404/422...): sending it again cannot help."""
    default_kind = "bad_request"


class ProviderBadResponse(ProviderError):
    """An answer that is not what the provider documents (not JSON, wrong shape)."""
    default_kind = "bad_response"


class TransientStatus(Exception):
    """Inside an attempt: a reply that stands for HTTP ``status_code`` (retried as that status)."""

    def __init__(self, status_code: int, message: str, headers: Any = None):
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers
