"""One error family for HTTP providers: LLM and search errors share core.infra.http_errors."""
from __future__ import annotations

import pytest

from core.infra.http_errors import (ProviderAuthError, ProviderBadResponse, ProviderError, ProviderRejected,
                                    ProviderUnavailable, TransientStatus)
from core.infra.retry import classify
from core.llm.client import LlmAuthError, LlmBadRequest, LlmError, LlmJsonError, LlmNotConfigured, LlmUnavailable
from core.research.web_search import (SearchAuthError, SearchBadResponse, SearchError, SearchInputError,
                                      SearchUnavailable)


@pytest.mark.parametrize("llm, search, family", [
    (LlmUnavailable, SearchUnavailable, ProviderUnavailable),
    (LlmAuthError, SearchAuthError, ProviderAuthError),
    (LlmJsonError, SearchBadResponse, ProviderBadResponse),
])
def test_llm_and_search_errors_are_one_family(llm, search, family):
    a = llm("x", role="QUERY_ENGINE", provider="api.example", status=503, attempts=3)
    b = search("y", provider="tavily", tool="basic_search_news", status=503, attempts=3)
    for err in (a, b):
        assert isinstance(err, family) and isinstance(err, ProviderError)
        assert err.status == 503 and err.attempts == 3 and err.transient is (family is ProviderUnavailable)
    assert a.provider == "api.example" and a.role == "QUERY_ENGINE" and b.provider == "tavily"
    assert isinstance(LlmBadRequest("z"), ProviderRejected)


def test_kinds_stay_what_the_records_say():
    assert LlmUnavailable("x").kind == "connection" and LlmUnavailable("x", kind="rate_limit").kind == "rate_limit"
    assert LlmAuthError("x").kind == "auth" and LlmJsonError("x").kind == "parse"
    assert LlmNotConfigured("x").kind == "config" and LlmError("x").kind == "error"
    assert not LlmNotConfigured("x").transient and not SearchInputError("x").transient
    assert isinstance(SearchInputError("x"), ValueError) and SearchInputError("x").kind == "invalid"
    assert SearchError("x").status_label == "error" and SearchUnavailable("x").status_label == "unavailable"


@pytest.mark.parametrize("status, kind", [(429, "rate_limit"), (502, "server_error"), (503, "server_error")])
def test_a_status_inside_a_body_is_retried_like_that_status(status, kind):
    assert classify(TransientStatus(status, f"code {status}", headers={"retry-after": "1"})) == kind


def test_provider_errors_themselves_are_not_retried_again():
    # they are raised after the retries; an outer retry loop must not multiply them
    assert classify(LlmUnavailable("x", status=503)) is None
    assert classify(SearchUnavailable("x", status=503)) is None
