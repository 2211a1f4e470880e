"""Which mapping keys name secrets: credentials are masked, token counts are figures and stay."""
from __future__ import annotations

import pytest

from core.console.telemetry import _clean as telemetry_clean
from core.infra.redact import MASK, is_secret_key, redact_obj

COUNTS = ["input_tokens", "output_tokens", "total_tokens", "prompt_tokens", "completion_tokens", "max_tokens",
          "tokens", "token_count", "tokensPerSecond", "usage.total_tokens", "keywords", "tokenizer"]
SECRETS = ["api_key", "API_KEY", "apiKey", "x-api-key", "QUERY_ENGINE_API_KEY", "token", "TOKEN", "GITHUB_TOKEN",
           "access_token", "refresh_token", "X-Auth-Token", "sessionToken", "authtoken", "authorization",
           "Authorization", "password", "db_password", "mypassword", "passwd", "secret", "client_secret",
           "aws_secret_access_key"]


@pytest.mark.parametrize("key", COUNTS)
def test_count_keys_are_not_secrets(key):
    assert not is_secret_key(key)


@pytest.mark.parametrize("key", SECRETS)
def test_secret_keys_are_secrets(key):
    assert is_secret_key(key)


def test_an_llm_call_payload_keeps_its_token_counts_and_loses_its_credentials():
    payload = {"role": "QUERY_ENGINE", "model": "m", "input_tokens": 1234, "output_tokens": 56, "total_tokens": 1290,
               "api_key": "plain-looking-key-123", "headers": {"Authorization": "Bearer abcdefghijklmnop"},
               "access_token": "opaque-value-xyz", "note": "sent with sk-abcdefgh12345678"}
    out = redact_obj(payload)
    assert (out["input_tokens"], out["output_tokens"], out["total_tokens"]) == (1234, 56, 1290)
    assert out["api_key"] == MASK and out["access_token"] == MASK and out["headers"]["Authorization"] == MASK
    assert "sk-abcdefgh12345678" not in out["note"]


def test_telemetry_keeps_token_counts_too():
    out = telemetry_clean({"input_tokens": 7, "output_tokens": 3, "token": "opaque-value-xyz"})
    assert out == {"input_tokens": 7, "output_tokens": 3, "token": MASK}


def test_a_secret_inside_a_count_named_value_is_still_masked_by_its_shape():
    assert "sk-abcdefgh12345678" not in str(redact_obj({"input_tokens": "sk-abcdefgh12345678"}))


def test_llm_call_events_keep_token_counts_in_the_event_log(events):
    events.emit("llm.call", payload={"input_tokens": 321, "output_tokens": 12, "api_key": "plain-looking-key-123"},
                wait=True)
    (e,), _ = events.since(0)
    assert e.payload["input_tokens"] == 321 and e.payload["output_tokens"] == 12
    assert e.payload["api_key"] == MASK
