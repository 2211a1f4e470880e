"""Provider presets (core.llm.presets): a valid base URL and a model for every role, never a key."""
from __future__ import annotations

from core.infra.config import LLM_ROLES, SPECS, keys_follow_urls, load_settings, parse_value
from core.llm.presets import BY_ID, PRESETS, matching_preset, preset_values


def test_the_common_providers_are_there():
    names = " ".join(p.name for p in PRESETS)
    for provider in ("DeepSeek", "Qwen", "DashScope", "Kimi", "Moonshot", "GLM", "Zhipu", "OpenAI", "Ollama",
                     "llama.cpp"):
        assert provider in names
    assert {p.id for p in PRESETS if p.local} == {"ollama", "llamacpp"}


def test_every_preset_fills_a_valid_url_and_a_model_for_every_role_and_no_key():
    for preset in PRESETS:
        for role in LLM_ROLES:
            values = preset_values(preset.id, role)
            assert set(values) == {f"{role}_BASE_URL", f"{role}_MODEL_NAME"}
            for key, value in values.items():
                assert value and parse_value(SPECS[key], value) == value
    assert matching_preset("https://api.deepseek.com/v1/") is BY_ID["deepseek"]
    assert matching_preset("https://example.org/v1") is None


def test_applying_a_preset_to_a_role_with_a_key_clears_that_key(tmp_path):
    env = tmp_path / ".env"
    env.write_text('QUERY_ENGINE_API_KEY="sk-deepseek-0001"\nQUERY_ENGINE_BASE_URL="https://api.deepseek.com/v1"\n',
                   "utf-8")
    settings = load_settings(secrets={}, env={}, env_file=env)
    assert keys_follow_urls(settings, preset_values("deepseek", "QUERY_ENGINE")).clear == []  # same host
    assert keys_follow_urls(settings, preset_values("kimi", "QUERY_ENGINE")).clear == ["QUERY_ENGINE_API_KEY"]
