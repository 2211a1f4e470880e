"""Settings' words in both languages: every setting has a label and a help text in the catalogues
(the English one is the only copy of the English help), and a SettingError carries a Msg the page
renders in the reader's language while str() stays English for the CLI and doctor."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.i18n import catalogue, tr
from core.infra.config import (EDITABLE_KEYS, LLM_ROLES, SPECS, SettingError, keys_follow_urls, load_settings,
                               parse_value, update_errors, validate_updates)

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_setting_has_a_label_and_help_in_both_languages(lang):
    words = catalogue(lang)
    for spec in SPECS.values():
        for msg in (spec.label_msg, spec.help_msg):
            assert msg.key in words, (lang, spec.key, msg.key)
            text = msg.render(lang)
            assert "⟦" not in text and text.strip(), (lang, spec.key, text)
            if lang == "zh":
                assert CJK.search(text), (spec.key, text)


def test_role_texts_name_their_role():
    assert "Forum host" in SPECS["FORUM_HOST_BASE_URL"].help_msg.render("en")
    assert "论坛主持人" in SPECS["FORUM_HOST_BASE_URL"].help_msg.render("zh")
    names = {SPECS[f"{role}_API_KEY"].help_msg.render("zh") for role in LLM_ROLES}
    assert len(names) == len(LLM_ROLES)  # each role's help names that role
    for role in LLM_ROLES:
        assert SPECS[f"{role}_MODEL_NAME"].label_msg.render("zh") == "模型"


def test_help_text_has_one_english_copy():
    """The help text lives in the catalogue only: config.py does not repeat it."""
    source = (Path(__file__).resolve().parents[2] / "core/infra/config.py").read_text("utf-8")
    for spec in SPECS.values():
        help_en = spec.help
        assert help_en == tr("en", spec.help_msg.key, **{k: v.render("en") for k, v in spec.help_msg.args.items()})
        if len(help_en) > 30:
            assert help_en[:30] not in source, spec.key


@pytest.mark.parametrize("key,raw,en,zh", [
    ("SHOAL_MAX_WORKERS", "abc", "SHOAL_MAX_WORKERS must be an integer, got 'abc'", "SHOAL_MAX_WORKERS 必须是整数"),
    ("SHOAL_PARAGRAPHS", "99", "SHOAL_PARAGRAPHS must be at most 12, got 99", "不能大于 12"),
    ("QUERY_ENGINE_BASE_URL", "api.x/v1", "must be an http(s) URL", "必须是 http(s) 地址"),
    ("SHOAL_TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'", "未知时区"),
    ("DATABASE_URL", "oracle://u:p@h/db", "Shoal supports sqlite, mysql", "Shoal 支持 sqlite"),
])
def test_a_setting_error_is_english_for_the_cli_and_translated_for_the_page(key, raw, en, zh):
    with pytest.raises(SettingError) as info:
        parse_value(SPECS[key], raw)
    assert en in str(info.value) and en in info.value.msg.render("en")
    assert zh in info.value.msg.render("zh")


def test_a_secret_value_is_never_in_the_error():
    with pytest.raises(SettingError) as info:
        parse_value(SPECS["DATABASE_URL"], "mysql://user:leakpass99@h/db")
    assert "leakpass99" not in str(info.value) and "leakpass99" not in repr(info.value.msg)


def test_update_errors_give_messages_and_validate_updates_their_english():
    errors = update_errors({"SHOAL_PARAGRAPHS": "x", "SHOAL_LOG_DIR": "y", "SHOAL_MODE": "auto"})
    assert set(errors) == {"SHOAL_PARAGRAPHS", "SHOAL_LOG_DIR"}
    assert errors["SHOAL_LOG_DIR"].msg.render("zh") == "SHOAL_LOG_DIR 不是 Shoal 可修改的设置"
    assert validate_updates({"SHOAL_LOG_DIR": "y"}) == {"SHOAL_LOG_DIR": "SHOAL_LOG_DIR is not a setting Shoal edits"}
    assert "SHOAL_LOG_DIR" not in EDITABLE_KEYS


def test_a_cleared_key_note_in_both_languages(tmp_path):
    env = tmp_path / ".env"
    env.write_text('QUERY_ENGINE_API_KEY="sk-a-0001"\nQUERY_ENGINE_BASE_URL="https://api.a.com/v1"\n', "utf-8")
    s = load_settings(secrets={}, env={}, env_file=env)
    [note] = keys_follow_urls(s, {"QUERY_ENGINE_BASE_URL": "https://api.b.com/v1"}).notes
    assert note.render("en").startswith("QUERY_ENGINE_API_KEY was cleared because QUERY_ENGINE_BASE_URL changed")
    assert "已更改" in note.render("zh") and "sk-a-0001" not in repr(note)


def test_a_loaded_value_that_cannot_be_used_has_a_message_for_the_page(tmp_path):
    s = load_settings(secrets={}, env={"SHOAL_MAX_WORKERS": "abc"}, env_file=tmp_path / "no.env")
    assert s.errors["SHOAL_MAX_WORKERS"].startswith("SHOAL_MAX_WORKERS must be an integer")  # the CLI's, unchanged
    zh = s.error_msgs["SHOAL_MAX_WORKERS"].render("zh")
    assert "必须是整数" in zh and "环境变量" in zh and "默认值" in zh
    assert s.error_msgs["SHOAL_MAX_WORKERS"].render("en").endswith("(from the environment); using the default")
    s = load_settings(secrets={}, env={"DATABASE_URL": "mysql+pymysql://u:hunter2pw@/"}, env_file=tmp_path / "no.env")
    text = s.error_msgs["DATABASE_URL"].render("zh")
    assert "DATABASE_URL" in text and "hunter2pw" not in text and "默认值" not in text
