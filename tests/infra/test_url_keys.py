"""A key is only sent to the host it was entered for: a settings edit that changes a base URL
clears that URL's stored key, unless the key is entered again in the same edit."""
from __future__ import annotations

from core.infra.config import URL_KEYS, keys_follow_urls, load_settings, write_env_file


def _settings(tmp_path, env_text: str, env: dict | None = None):
    path = tmp_path / ".env"
    path.write_text(env_text, encoding="utf-8")
    return load_settings(secrets={}, env=env or {}, env_file=path), path


def test_every_role_and_search_provider_pairs_its_url_with_its_key():
    assert URL_KEYS["QUERY_ENGINE_BASE_URL"] == "QUERY_ENGINE_API_KEY"
    assert URL_KEYS["REPORT_ENGINE_BASE_URL"] == "REPORT_ENGINE_API_KEY"
    assert URL_KEYS["TAVILY_BASE_URL"] == "TAVILY_API_KEY"
    assert URL_KEYS["BOCHA_BASE_URL"] == "BOCHA_WEB_SEARCH_API_KEY"


def test_a_new_base_url_clears_the_stored_key(tmp_path):
    s, path = _settings(tmp_path, 'QUERY_ENGINE_API_KEY="sk-owner-0001"\nQUERY_ENGINE_BASE_URL="https://api.a.com/v1"\n')
    updates = {"QUERY_ENGINE_BASE_URL": "https://attacker.example/v1"}
    plan = keys_follow_urls(s, updates)
    assert plan.clear == ["QUERY_ENGINE_API_KEY"] and not plan.errors
    assert "QUERY_ENGINE_API_KEY" in plan.notes[0].render("en") and "QUERY_ENGINE_API_KEY" in plan.notes[0].render("zh")
    write_env_file(updates, path, remove=plan.clear)
    after = load_settings(secrets={}, env={}, env_file=path)
    assert after["QUERY_ENGINE_BASE_URL"] == "https://attacker.example/v1" and after["QUERY_ENGINE_API_KEY"] == ""


def test_a_key_entered_again_with_the_url_is_kept(tmp_path):
    s, _ = _settings(tmp_path, 'QUERY_ENGINE_API_KEY="sk-owner-0001"\nQUERY_ENGINE_BASE_URL="https://api.a.com/v1"\n')
    plan = keys_follow_urls(s, {"QUERY_ENGINE_BASE_URL": "https://api.b.com/v1", "QUERY_ENGINE_API_KEY": "sk-b-0002"})
    assert plan.clear == [] and not plan.errors


def test_emptying_the_url_or_changing_a_default_url_clears_too(tmp_path):
    s, _ = _settings(tmp_path, 'MEDIA_ENGINE_API_KEY="k-1234"\nMEDIA_ENGINE_BASE_URL="https://api.a.com/v1"\n'
                               'TAVILY_API_KEY="tvly-1234"\n')
    plan = keys_follow_urls(s, {"MEDIA_ENGINE_BASE_URL": "", "TAVILY_BASE_URL": "https://tavily.attacker.example"})
    assert sorted(plan.clear) == ["MEDIA_ENGINE_API_KEY", "TAVILY_API_KEY"]


def test_an_unchanged_url_or_a_role_without_a_key_clears_nothing(tmp_path):
    s, _ = _settings(tmp_path, 'QUERY_ENGINE_API_KEY="sk-owner-0001"\nQUERY_ENGINE_BASE_URL="https://api.a.com/v1"\n')
    assert keys_follow_urls(s, {"QUERY_ENGINE_BASE_URL": "https://api.a.com/v1"}).clear == []
    assert keys_follow_urls(s, {"MEDIA_ENGINE_BASE_URL": "https://api.b.com/v1"}).clear == []
    assert keys_follow_urls(s, {"QUERY_ENGINE_MODEL_NAME": "m2"}).clear == []


def test_a_key_from_the_environment_cannot_follow_a_url_edited_in_env_file(tmp_path):
    """.env cannot clear (or override) a key set in the environment or secrets: the edit is refused."""
    s, _ = _settings(tmp_path, 'QUERY_ENGINE_BASE_URL="https://api.a.com/v1"\n',
                     env={"QUERY_ENGINE_API_KEY": "sk-env-0001"})
    for updates in ({"QUERY_ENGINE_BASE_URL": "https://attacker.example/v1"},
                    {"QUERY_ENGINE_BASE_URL": "https://attacker.example/v1", "QUERY_ENGINE_API_KEY": "sk-x-0002"}):
        plan = keys_follow_urls(s, updates)
        assert plan.clear == [] and "QUERY_ENGINE_BASE_URL" in plan.errors
        assert "environment" in plan.errors["QUERY_ENGINE_BASE_URL"].render("en")
        assert "环境变量" in plan.errors["QUERY_ENGINE_BASE_URL"].render("zh")
        assert "sk-env-0001" not in repr(plan.errors["QUERY_ENGINE_BASE_URL"])
