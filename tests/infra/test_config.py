"""Settings: precedence, BettaFish names, validation, masking and the atomic .env writer."""
from __future__ import annotations

import os
import stat

import pytest

from core.infra import config
from core.infra.config import (
    EDITABLE_KEYS,
    LLM_ROLES,
    SPECS,
    SettingError,
    load_settings,
    validate_updates,
    write_env_file,
)

SECRET_KEYS = [k for k, s in SPECS.items() if s.secret]


def _env_file(tmp_path, text: str):
    path = tmp_path / "settings.env"
    path.write_text(text, encoding="utf-8")
    return path


# --- precedence -------------------------------------------------------------------------------

def test_defaults_when_nothing_is_set(tmp_path):
    s = load_settings(secrets={}, env={}, env_file=tmp_path / "missing.env")
    for key, spec in SPECS.items():
        assert s[key] == spec.default, key
        assert s.source(key) == "default", key
    assert s.errors == {}


def test_precedence_secrets_over_environment_over_env_file_over_default(tmp_path):
    env_file = _env_file(tmp_path, "SHOAL_PARAGRAPHS=3\nSHOAL_REFLECTIONS=1\nFORUM_HOST_EVERY=7\n"
                                   "QUERY_ENGINE_MODEL_NAME=from-file\n")
    env = {"SHOAL_PARAGRAPHS": "4", "SHOAL_REFLECTIONS": "3", "QUERY_ENGINE_MODEL_NAME": "from-env"}
    secrets = {"SHOAL_PARAGRAPHS": "6", "QUERY_ENGINE_MODEL_NAME": "from-secrets"}
    s = load_settings(secrets=secrets, env=env, env_file=env_file)

    assert (s["SHOAL_PARAGRAPHS"], s.source("SHOAL_PARAGRAPHS")) == (6, "secrets")
    assert (s["QUERY_ENGINE_MODEL_NAME"], s.source("QUERY_ENGINE_MODEL_NAME")) == ("from-secrets", "secrets")
    assert (s["SHOAL_REFLECTIONS"], s.source("SHOAL_REFLECTIONS")) == (3, "environment")
    assert (s["FORUM_HOST_EVERY"], s.source("FORUM_HOST_EVERY")) == (7, ".env")
    assert (s["SHOAL_MAX_WORKERS"], s.source("SHOAL_MAX_WORKERS")) == (SPECS["SHOAL_MAX_WORKERS"].default, "default")


def test_environment_defaults_to_os_environ(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOAL_PARAGRAPHS", "9")
    s = load_settings(env_file=tmp_path / "missing.env")
    assert s["SHOAL_PARAGRAPHS"] == 9
    assert s.source("SHOAL_PARAGRAPHS") == "environment"


def test_env_file_defaults_to_shoal_env_file(isolated_env):
    (isolated_env / ".env").write_text("SHOAL_PARAGRAPHS=2\n", encoding="utf-8")
    s = load_settings(env={})
    assert s["SHOAL_PARAGRAPHS"] == 2
    assert s.env_file == isolated_env / ".env"


def test_secrets_sections_like_st_secrets(tmp_path):
    secrets = {
        "llm": {"QUERY_ENGINE_API_KEY": "sk-section-key-123456", "QUERY_ENGINE_MODEL_NAME": "deepseek-chat"},
        "search": {"TAVILY_API_KEY": "tvly-section-abcdef"},
        "database": {"DATABASE_URL": "mysql+pymysql://u:pw@db.example.com:3306/shoal"},
        "other": {"NOT_A_SETTING": "x", "nested": {"SHOAL_PARAGRAPHS": "11"}},
        "SHOAL_REFLECTIONS": 4,  # TOML ints arrive as ints
        "SHOAL_AUTO_RESUME": False,  # and booleans as booleans
    }
    s = load_settings(secrets=secrets, env={"QUERY_ENGINE_MODEL_NAME": "env-model"}, env_file=tmp_path / "no.env")
    assert s["QUERY_ENGINE_API_KEY"] == "sk-section-key-123456"
    assert s["QUERY_ENGINE_MODEL_NAME"] == "deepseek-chat"
    assert s.source("QUERY_ENGINE_MODEL_NAME") == "secrets"
    assert s["TAVILY_API_KEY"] == "tvly-section-abcdef"
    assert s["DATABASE_URL"] == "mysql+pymysql://u:pw@db.example.com:3306/shoal"
    assert s["SHOAL_REFLECTIONS"] == 4
    assert s["SHOAL_AUTO_RESUME"] is False
    # Only one level of sections: deeper nesting is not a setting.
    assert s["SHOAL_PARAGRAPHS"] == SPECS["SHOAL_PARAGRAPHS"].default
    assert s.errors == {}


def test_top_level_secret_wins_over_section(tmp_path):
    for secrets in ({"SHOAL_PARAGRAPHS": "2", "limits": {"SHOAL_PARAGRAPHS": "8"}},
                    {"limits": {"SHOAL_PARAGRAPHS": "8"}, "SHOAL_PARAGRAPHS": "2"}):
        s = load_settings(secrets=secrets, env={}, env_file=tmp_path / "no.env")
        assert s["SHOAL_PARAGRAPHS"] == 2


def test_unknown_keys_are_ignored(tmp_path):
    env_file = _env_file(tmp_path, "SOMETHING_ELSE=1\n")
    s = load_settings(secrets={"RANDOM": "x"}, env={"PATH": "/bin"}, env_file=env_file)
    assert "SOMETHING_ELSE" not in s.values and "RANDOM" not in s.values and "PATH" not in s.values


# --- BettaFish-compatible names ------------------------------------------------------------------

@pytest.mark.parametrize("role", LLM_ROLES)
def test_bettafish_llm_key_names(role, tmp_path):
    for suffix in ("API_KEY", "BASE_URL", "MODEL_NAME"):
        assert f"{role}_{suffix}" in SPECS
    assert SPECS[f"{role}_API_KEY"].secret
    env = {f"{role}_API_KEY": "k-123456", f"{role}_BASE_URL": "https://api.example.com/v1",
           f"{role}_MODEL_NAME": "m1"}
    s = load_settings(secrets={}, env=env, env_file=tmp_path / "no.env")
    assert s.llm_role(role) == {"api_key": "k-123456", "base_url": "https://api.example.com/v1", "model": "m1"}


def test_bettafish_roles_and_other_names():
    assert {"QUERY_ENGINE", "MEDIA_ENGINE", "INSIGHT_ENGINE", "REPORT_ENGINE"} <= set(LLM_ROLES)
    for key in ("TAVILY_API_KEY", "BOCHA_WEB_SEARCH_API_KEY", "DATABASE_URL"):
        assert key in SPECS
        assert SPECS[key].secret, key
        assert key in EDITABLE_KEYS


# --- invalid values --------------------------------------------------------------------------------

@pytest.mark.parametrize("key,raw,words", [
    ("SHOAL_PARAGRAPHS", "five", "integer"),
    ("SHOAL_PARAGRAPHS", "2.5", "integer"),
    ("SHOAL_PARAGRAPHS", "0", "at least"),
    ("SHOAL_PARAGRAPHS", "99", "at most"),
    ("LLM_TIMEOUT", "soon", "number"),
    ("LLM_TIMEOUT", "-1", "at least"),
    ("QUERY_ENGINE_BASE_URL", "api.example.com/v1", "http"),
    ("QUERY_ENGINE_BASE_URL", "ftp://api.example.com", "http"),
    ("SHOAL_MODE", "turbo", "one of"),
    ("SHOAL_LOG_LEVEL", "LOUD", "one of"),
    ("SHOAL_AUTO_RESUME", "maybe", "true or false"),
    ("SHOAL_LOG_ROTATION", "big", "size"),
    ("SHOAL_LOG_RETENTION", "forever", "duration"),
])
def test_invalid_value_names_key_and_falls_back_to_default(key, raw, words, tmp_path):
    s = load_settings(secrets={}, env={key: raw}, env_file=tmp_path / "no.env")
    assert s[key] == SPECS[key].default
    assert s.source(key) == "default"
    assert key in s.errors
    message = s.errors[key]
    assert key in message
    assert words in message
    assert "environment" in message  # says where the bad value came from
    assert "default" in message
    # Other keys are unaffected.
    assert s.errors.keys() == {key}


def test_valid_values_are_typed(tmp_path):
    env = {"SHOAL_PARAGRAPHS": " 7 ", "LLM_TIMEOUT": "30.5", "SHOAL_MODE": "OFFLINE", "SHOAL_AUTO_RESUME": "no",
           "SHOAL_LOG_LEVEL": "debug", "SHOAL_LOG_ROTATION": "5 MB", "SHOAL_LOG_RETENTION": "3 days"}
    s = load_settings(secrets={}, env=env, env_file=tmp_path / "no.env")
    assert s.errors == {}
    assert s["SHOAL_PARAGRAPHS"] == 7
    assert s["LLM_TIMEOUT"] == 30.5
    assert s["SHOAL_MODE"] == "offline"
    assert s["SHOAL_AUTO_RESUME"] is False
    assert s["SHOAL_LOG_LEVEL"] == "DEBUG"


@pytest.mark.parametrize("raw", ["notaurl", "oracle://u:hunter2pw@h/db", "postgresql+asyncpg://u:hunter2pw@h/db",
                                 "postgresql+psycopg://u:hunter2pw@h", "mysql://u:hunter2pw@h/db",
                                 "mysql+pymysql://u:hunter2pw@/db"])
def test_malformed_database_url_is_not_replaced_by_sqlite(raw, tmp_path):
    s = load_settings(secrets={}, env={"DATABASE_URL": raw}, env_file=tmp_path / "no.env")
    assert "DATABASE_URL" in s.errors
    assert "DATABASE_URL" in s.errors["DATABASE_URL"]
    assert "hunter2pw" not in s.errors["DATABASE_URL"]
    assert "using the default" not in s.errors["DATABASE_URL"]
    # The database gets the bad URL (and reports it), never the SQLite fallback.
    assert s.database_url == raw
    assert not s.database_url.startswith("sqlite")


def test_empty_database_url_means_sqlite_under_data_dir(tmp_path):
    s = load_settings(secrets={}, env={"SHOAL_DATA_DIR": str(tmp_path / "d")}, env_file=tmp_path / "no.env")
    assert s.database_url == f"sqlite:///{tmp_path / 'd' / 'shoal.db'}"
    s = load_settings(secrets={}, env={"DATABASE_URL": "mysql+pymysql://u:p@h:3306/db"}, env_file=tmp_path / "no")
    assert s.database_url == "mysql+pymysql://u:p@h:3306/db"


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_error_for_a_secret_never_contains_its_value(key, tmp_path):
    # A newline is invalid for every kind; DATABASE_URL also rejects this as a URL.
    value = "s3cr3t-Value-XYZ\nsecond-line"
    for source in ("secrets", "env", "file"):
        kwargs = dict(secrets={}, env={}, env_file=tmp_path / "no.env")
        if source == "secrets":
            kwargs["secrets"] = {key: value}
        elif source == "env":
            kwargs["env"] = {key: value}
        else:
            kwargs["env_file"] = _env_file(tmp_path, f'{key}="s3cr3t-Value-XYZ\\nsecond-line"\n')
        s = load_settings(**kwargs)
        assert key in s.errors, (key, source)
        assert "s3cr3t" not in s.errors[key]
        assert "second-line" not in s.errors[key]
        assert "s3cr3t" not in repr(s)


def test_bad_database_url_password_is_a_secret_value(tmp_path):
    s = load_settings(secrets={}, env={"DATABASE_URL": "oracle://u:pgpassword1@h/db"}, env_file=tmp_path / "n")
    assert "pgpassword1" in s.secret_values()


# --- masking and secrets -----------------------------------------------------------------------------

def test_masked_never_returns_a_secret(tmp_path):
    secrets = {k: f"VALUE-{i}-zz9" for i, k in enumerate(SECRET_KEYS) if k != "DATABASE_URL"}
    secrets["DATABASE_URL"] = "mysql+pymysql://user:dbpass-zz9@h:3306/db"
    s = load_settings(secrets=secrets, env={}, env_file=tmp_path / "no.env")
    assert s.errors == {}
    for key in SECRET_KEYS:
        shown = s.masked(key)
        assert "zz9" not in shown, key
        assert shown == "set (from secrets)", key
    s2 = load_settings(secrets={}, env={}, env_file=tmp_path / "no.env")
    assert all(s2.masked(k) == "not set" for k in SECRET_KEYS)
    # Non-secrets are shown as they are.
    assert s.masked("SHOAL_PARAGRAPHS") == str(SPECS["SHOAL_PARAGRAPHS"].default)


def test_secret_values_include_every_secret_and_the_database_password(tmp_path):
    env = {"QUERY_ENGINE_API_KEY": "sk-query-1234567", "TAVILY_API_KEY": "tvly-abcdefgh",
           "SHOAL_ADMIN_PASSWORD": "adminpw-1", "DATABASE_URL": "mysql+pymysql://user:db-Pass_w0rd@h:3306/db",
           "QUERY_ENGINE_MODEL_NAME": "not-a-secret"}
    s = load_settings(secrets={}, env=env, env_file=tmp_path / "no.env")
    values = s.secret_values()
    for v in ("sk-query-1234567", "tvly-abcdefgh", "adminpw-1", "db-Pass_w0rd"):
        assert v in values
    assert "not-a-secret" not in values


# --- llm_configured ------------------------------------------------------------------------------------

@pytest.mark.parametrize("env,expected", [
    ({}, False),
    ({"QUERY_ENGINE_MODEL_NAME": "m"}, False),
    ({"QUERY_ENGINE_API_KEY": "k", "QUERY_ENGINE_BASE_URL": "https://a.example.com"}, False),
    ({"QUERY_ENGINE_MODEL_NAME": "m", "QUERY_ENGINE_BASE_URL": "http://localhost:11434/v1"}, True),
    ({"QUERY_ENGINE_MODEL_NAME": "m", "QUERY_ENGINE_API_KEY": "k"}, True),
    ({"QUERY_ENGINE_MODEL_NAME": "m", "QUERY_ENGINE_API_KEY": "k", "SHOAL_MODE": "offline"}, False),
    ({"QUERY_ENGINE_MODEL_NAME": "m", "QUERY_ENGINE_API_KEY": "k", "SHOAL_MODE": "llm"}, True),
    ({"MEDIA_ENGINE_MODEL_NAME": "m", "MEDIA_ENGINE_API_KEY": "k"}, False),  # another role
])
def test_llm_configured(env, expected, tmp_path):
    s = load_settings(secrets={}, env=env, env_file=tmp_path / "no.env")
    assert s.llm_configured("QUERY_ENGINE") is expected


# --- write_env_file ---------------------------------------------------------------------------------------

ORIGINAL = """# Shoal settings
# keep this comment
SHOAL_PARAGRAPHS=3
UNKNOWN_THING=keep me   # trailing comment
export SHOAL_REFLECTIONS=1

not a key value line
QUERY_ENGINE_MODEL_NAME='old-model'
"""


def test_write_updates_in_place_keeps_other_lines_and_appends_new(tmp_path):
    path = _env_file(tmp_path, ORIGINAL)
    write_env_file({"SHOAL_PARAGRAPHS": 8, "QUERY_ENGINE_MODEL_NAME": "new-model", "TAVILY_API_KEY": "tvly-new"},
                   path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Shoal settings"
    assert lines[1] == "# keep this comment"
    assert lines[2].startswith("SHOAL_PARAGRAPHS=") and "8" in lines[2]  # same place
    assert lines[3] == "UNKNOWN_THING=keep me   # trailing comment"
    assert lines[4] == "export SHOAL_REFLECTIONS=1"
    assert lines[5] == ""
    assert lines[6] == "not a key value line"
    assert lines[7].startswith("QUERY_ENGINE_MODEL_NAME=") and "new-model" in lines[7]
    assert lines[8].startswith("TAVILY_API_KEY=")  # new keys at the end
    assert len(lines) == 9
    s = load_settings(secrets={}, env={}, env_file=path)
    assert s["SHOAL_PARAGRAPHS"] == 8
    assert s["SHOAL_REFLECTIONS"] == 1
    assert s["QUERY_ENGINE_MODEL_NAME"] == "new-model"
    assert s["TAVILY_API_KEY"] == "tvly-new"
    assert s.source("TAVILY_API_KEY") == ".env"


def test_write_removes_keys(tmp_path):
    path = _env_file(tmp_path, ORIGINAL)
    write_env_file({}, path, remove=["SHOAL_PARAGRAPHS", "SHOAL_REFLECTIONS"])
    text = path.read_text(encoding="utf-8")
    assert "SHOAL_PARAGRAPHS" not in text
    assert "SHOAL_REFLECTIONS" not in text
    assert "UNKNOWN_THING=keep me" in text and "# keep this comment" in text
    s = load_settings(secrets={}, env={}, env_file=path)
    assert s.source("SHOAL_PARAGRAPHS") == "default"


def test_write_replaces_duplicates_so_the_new_value_wins(tmp_path):
    path = _env_file(tmp_path, "SHOAL_PARAGRAPHS=3\nOTHER=1\nSHOAL_PARAGRAPHS=4\n")
    write_env_file({"SHOAL_PARAGRAPHS": 9}, path)
    assert load_settings(secrets={}, env={}, env_file=path)["SHOAL_PARAGRAPHS"] == 9
    assert path.read_text(encoding="utf-8").count("SHOAL_PARAGRAPHS") == 1


def test_write_creates_missing_file_with_mode_0600(tmp_path):
    path = tmp_path / "sub" / ".env"
    write_env_file({"SHOAL_ADMIN_PASSWORD": "pw-1234"}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    write_env_file({"SHOAL_ADMIN_PASSWORD": "pw-5678"}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_settings(secrets={}, env={}, env_file=path)["SHOAL_ADMIN_PASSWORD"] == "pw-5678"


@pytest.mark.parametrize("value", [
    "two words", 'with "double" quotes', "it's single", "hash#inside", "space # then hash", "#leading",
    "back\\slash", 'mix \\" both', "dollar $HOME and ${HOME}", "emoji 🐟 中文", "=equals=", "trailing\\",
])
def test_written_values_round_trip(value, tmp_path):
    path = _env_file(tmp_path, "# header\n")
    write_env_file({"SHOAL_ADMIN_PASSWORD": value, "QUERY_ENGINE_MODEL_NAME": value}, path)
    s = load_settings(secrets={}, env={}, env_file=path)
    assert s.errors == {}
    assert s["SHOAL_ADMIN_PASSWORD"] == value
    assert s["QUERY_ENGINE_MODEL_NAME"] == value
    # Writing again (in place) still round-trips.
    write_env_file({"SHOAL_ADMIN_PASSWORD": value + " x"}, path)
    assert load_settings(secrets={}, env={}, env_file=path)["SHOAL_ADMIN_PASSWORD"] == value + " x"


def test_write_booleans(tmp_path):
    path = tmp_path / ".env"
    write_env_file({"SHOAL_AUTO_RESUME": False}, path)
    assert load_settings(secrets={}, env={}, env_file=path)["SHOAL_AUTO_RESUME"] is False
    write_env_file({"SHOAL_AUTO_RESUME": True}, path)
    assert load_settings(secrets={}, env={}, env_file=path)["SHOAL_AUTO_RESUME"] is True


@pytest.mark.parametrize("updates,remove,key", [
    ({"NOT_A_SETTING": "x"}, (), "NOT_A_SETTING"),
    ({"SHOAL_LOG_DIR": "/tmp/x"}, (), "SHOAL_LOG_DIR"),  # declared but not editable
    ({"SHOAL_DATA_DIR": "/tmp/x"}, (), "SHOAL_DATA_DIR"),
    ({"PATH": "/evil"}, (), "PATH"),
    ({}, ("PATH",), "PATH"),
    ({"SHOAL_PARAGRAPHS": "lots"}, (), "SHOAL_PARAGRAPHS"),
    ({"SHOAL_PARAGRAPHS": 1000}, (), "SHOAL_PARAGRAPHS"),
    ({"QUERY_ENGINE_BASE_URL": "not a url"}, (), "QUERY_ENGINE_BASE_URL"),
    ({"SHOAL_MODE": "fast"}, (), "SHOAL_MODE"),
    ({"DATABASE_URL": "oracle://u:p@h/db"}, (), "DATABASE_URL"),
    ({"QUERY_ENGINE_MODEL_NAME": "a\nSHOAL_MODE=llm"}, (), "QUERY_ENGINE_MODEL_NAME"),  # no line injection
])
def test_write_refuses_bad_keys_and_values_and_writes_nothing(updates, remove, key, tmp_path):
    path = _env_file(tmp_path, ORIGINAL)
    before = path.read_bytes()
    with pytest.raises(SettingError) as info:
        # A valid update alongside must not be written either.
        write_env_file({"SHOAL_REFLECTIONS": 2, **updates}, path, remove=remove)
    assert key in str(info.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.env"]


def test_validate_updates():
    assert validate_updates({"SHOAL_PARAGRAPHS": "4", "SHOAL_MODE": "offline"}) == {}
    errors = validate_updates({"SHOAL_PARAGRAPHS": "x", "SHOAL_LOG_DIR": "y", "SHOAL_MODE": "auto"})
    assert set(errors) == {"SHOAL_PARAGRAPHS", "SHOAL_LOG_DIR"}


def test_write_error_for_a_secret_does_not_echo_it(tmp_path):
    path = tmp_path / ".env"
    with pytest.raises(SettingError) as info:
        write_env_file({"TAVILY_API_KEY": "tvly-leak-123\nX=1"}, path)
    assert "tvly-leak-123" not in str(info.value)
    with pytest.raises(SettingError) as info:
        write_env_file({"DATABASE_URL": "mysql://user:leakpass99@h/db"}, path)
    assert "leakpass99" not in str(info.value)
    assert not path.exists()


def test_write_is_atomic_when_replace_fails(tmp_path, monkeypatch):
    path = _env_file(tmp_path, ORIGINAL)
    before = path.read_bytes()
    calls = []

    def failing_replace(src, dst):
        calls.append((str(src), str(dst)))
        assert os.path.exists(src)  # the new content was fully written to a temp file first
        assert os.path.dirname(os.path.abspath(src)) == str(tmp_path)  # same folder: rename is atomic
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(config.os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_env_file({"SHOAL_PARAGRAPHS": 5}, path)
    assert calls and calls[0][1] == str(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.env"]  # no temp file left


def test_write_uses_temp_file_and_replace(tmp_path, monkeypatch):
    path = _env_file(tmp_path, ORIGINAL)
    real_replace = os.replace
    seen = []

    def spy(src, dst):
        seen.append((src, dst, open(src, encoding="utf-8").read(), path.read_text(encoding="utf-8")))
        return real_replace(src, dst)

    monkeypatch.setattr(config.os, "replace", spy)
    write_env_file({"SHOAL_PARAGRAPHS": 5}, path)
    assert len(seen) == 1
    src, dst, new_text, old_text_at_replace = seen[0]
    assert str(dst) == str(path) and str(src) != str(path)
    assert old_text_at_replace == ORIGINAL  # the real file was untouched until the rename
    assert 'SHOAL_PARAGRAPHS="5"' in new_text or "SHOAL_PARAGRAPHS=5" in new_text
    assert not os.path.exists(src)
