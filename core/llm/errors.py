"""The LLM client's errors (core/llm/client.py raises them): the LLM side of core.infra.http_errors."""
from __future__ import annotations

from typing import Any, Sequence

from core.infra.http_errors import (ProviderAuthError, ProviderBadResponse, ProviderError, ProviderRejected,
                                    ProviderUnavailable, TransientStatus)


class LlmError(ProviderError):
    """A call that did not produce a usable reply. The message is safe to show: no key, no prompt.

    kind: what the LlmCall row records as error_kind ('timeout', 'connection', 'rate_limit',
    'server_error', 'auth', 'bad_request', 'parse', 'breaker', 'config', 'error'). The families
    (unavailable, auth, rejected, bad response) are core.infra.http_errors', shared with web search.
    """

    def __init__(self, message: str, *, role: str = "", kind: str | None = None, status: int | None = None,
                 attempts: int = 0, provider: str = ""):
        super().__init__(message, provider=provider, status=status, kind=kind, attempts=attempts)
        self.role = role
        self.latency_ms: float = 0.0
        self.retries: int = max(0, attempts - 1)
        # Tokens of attempts cut at LLM_TIMEOUT mid-reply (estimated): spent although no reply came.
        self.input_tokens: int = 0
        self.output_tokens: int = 0


class LlmNotConfigured(LlmError):
    default_kind = "config"


class LlmUnavailable(LlmError, ProviderUnavailable):
    """Timeouts, connection failures, dropped streams, 429 and 5xx, after the retries."""
    default_kind = "connection"


class LlmAuthError(LlmError, ProviderAuthError):
    """The endpoint refused the key (401/403); never retried."""
    default_kind = "auth"


class LlmBadRequest(LlmError, ProviderRejected):
    """The endpoint refused the request (400/404/422: unknown model, context too long...)."""
    default_kind = "bad_request"


class LlmJsonError(LlmError, ProviderBadResponse):
    """No usable JSON after every ask. `problems` lists what was wrong each time; `excerpt` is
    the start of the last reply (redacted)."""
    default_kind = "parse"

    def __init__(self, message: str, *, problems: Sequence[str] = (), excerpt: str = "", **kw: Any):
        super().__init__(message, **kw)
        self.problems = list(problems)
        self.excerpt = excerpt


class LlmCircuitOpen(LlmError):
    """The role's circuit breaker is open for this run (core.llm.breaker): no request was made."""
    default_kind = "breaker"


# Failures our own code raises inside an attempt, shaped so that core.infra.retry.classify retries them.
class _StreamIncomplete(ConnectionError):
    """The stream ended before sending anything: a dropped connection by another name."""


def _bad_response(message: str) -> TransientStatus:
    """A 200 whose body is not a chat completion (broken JSON, no choices): like a bad gateway."""
    return TransientStatus(502, message)
