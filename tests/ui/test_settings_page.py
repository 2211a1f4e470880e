"""The Settings page as a person sees it, in Chinese and in English: the form in tabs with typed
widgets, an invalid value shown at its field, a preset applied, a connection test that answers
and one that fails. Real HTTP against the fakes in tests/fakes; the key never reaches the page."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.infra.config import LLM_ROLES, SPECS
from ui.runtime import get_runtime, reload_runtime
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.search_servers import FakeBochaServer, FakeTavilyServer
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture
from tests.support.screen import english_leaks, shown, untranslated_keys

PAGE = Path(__file__).resolve().parents[2] / "pages" / "8_Settings.py"
LANGS = ("zh", "en")
KEY = "sk-settings-page-0123456789"
SAVED = {"zh": "已保存", "en": "Saved"}


def env_file() -> Path:
    return Path(os.environ["SHOAL_ENV_FILE"])


def page(lang: str) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["shoal_lang"] = lang
    return run(at)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, key: str) -> AppTest:
    [button] = [b for b in at.form_submit_button if b.key == key]
    button.click()
    return run(at)


def screen_ok(at: AppTest, lang: str, allowed: tuple[str, ...] = ()) -> None:
    assert untranslated_keys(at) == []
    if lang == "zh":
        assert english_leaks(at, allowed=allowed) == []


def nodes(at: AppTest) -> list:
    return [n for n in at if getattr(n, "type", "") not in ("", "block")]


def after(at: AppTest, key: str):
    """The element drawn right after a widget or button."""
    items = nodes(at)
    i = next(i for i, n in enumerate(items) if getattr(n, "key", None) == key)
    return items[i + 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("lang", LANGS)
def test_the_form_in_tabs_with_typed_widgets(lang):
    at = page(lang)
    screen_ok(at, lang)
    assert len(at.form) == 1
    labels = [t.label for t in at.tabs]  # depth first: the role tabs sit inside the first group's tab
    group_tabs = labels[:1] + labels[1 + len(LLM_ROLES):]
    expected = {"zh": ["LLM 角色", "搜索", "数据库", "限额", "任务调度", "日志", "存储", "控制台", "显示", "访问控制"],
                "en": ["LLM roles", "Search", "Database", "Limits", "Supervisor", "Logging", "Storage", "Console",
                       "Display", "Access"]}[lang]
    assert group_tabs == expected
    role_tabs = labels[1:1 + len(LLM_ROLES)]
    assert len(role_tabs) == len(LLM_ROLES) and ("论坛主持人" in role_tabs) == (lang == "zh")
    # Typed widgets with the spec's bounds.
    paragraphs = at.number_input(key="set_SHOAL_PARAGRAPHS")
    assert (paragraphs.value, paragraphs.min, paragraphs.max, paragraphs.step) == (5, 1, 12, 1)
    floor = at.number_input(key="set_SHOAL_RELEVANCE_FLOOR")
    assert (floor.value, floor.min, floor.max) == (0.5, 0.05, 1.0)
    assert at.toggle(key="set_SHOAL_AUTO_RESUME").value is True
    assert at.selectbox(key="set_SHOAL_MODE").options == ["auto", "offline", "llm"]
    # Labels and help in the reader's language, the key beside them.
    workers = at.number_input(key="set_SHOAL_MAX_WORKERS")
    assert "`SHOAL_MAX_WORKERS`" in workers.label
    assert workers.help == SPECS["SHOAL_MAX_WORKERS"].help_msg.render(lang)
    assert ("工作线程数" in workers.label) == (lang == "zh")
    assert len([b for b in at.form_submit_button if b.key.startswith("test_")]) == len(LLM_ROLES) + 2


@pytest.mark.parametrize("lang", LANGS)
def test_an_invalid_value_is_shown_at_its_field_and_nothing_is_saved(lang):
    at = page(lang)
    at.text_input(key="set_QUERY_ENGINE_BASE_URL").input("api.example.com/v1")
    at.text_input(key="set_SHOAL_LOG_ROTATION").input("huge")
    at.toggle(key="set_SHOAL_AUTO_RESUME").set_value(False)  # a valid change, held back with the rest
    click(at, "settings_save")
    errors = values(at.error)
    assert len(errors) == 2, errors
    url_error, size_error = after(at, "set_QUERY_ENGINE_BASE_URL"), after(at, "set_SHOAL_LOG_ROTATION")
    assert url_error.type == size_error.type == "error"
    assert "QUERY_ENGINE_BASE_URL" in url_error.value and "SHOAL_LOG_ROTATION" in size_error.value
    words = {"zh": ("必须是 http(s) 地址", "必须是大小"), "en": ("must be an http(s) URL", "must be a size")}[lang]
    assert words[0] in url_error.value and words[1] in size_error.value
    assert at.text_input(key="set_QUERY_ENGINE_BASE_URL").value == "api.example.com/v1"  # kept as typed
    assert at.text_input(key="set_SHOAL_LOG_ROTATION").value == "huge"
    [summary] = values(at.warning)
    assert {"zh": ("日志", "LLM 角色 › Query 引擎"), "en": ("Logging", "LLM roles › Query engine")}[lang][0] in summary
    assert {"zh": ("日志", "LLM 角色 › Query 引擎"), "en": ("Logging", "LLM roles › Query engine")}[lang][1] in summary
    assert not at.success
    assert not env_file().exists()
    screen_ok(at, lang, allowed=("api.example.com/v1", "huge"))
    # Fixed, it saves, and the errors go.
    at.text_input(key="set_QUERY_ENGINE_BASE_URL").input("https://api.example.com/v1")
    at.text_input(key="set_SHOAL_LOG_ROTATION").input("50 MB")
    at.number_input(key="set_SHOAL_PARAGRAPHS").set_value(6)
    click(at, "settings_save")
    assert not at.error and not at.warning, values(at.error)
    assert values(at.success)[0].startswith(SAVED[lang])
    settings = get_runtime().settings
    assert (settings["SHOAL_PARAGRAPHS"], settings["SHOAL_AUTO_RESUME"]) == (6, False)
    assert settings["SHOAL_LOG_ROTATION"] == "50 MB"
    assert settings["QUERY_ENGINE_BASE_URL"] == "https://api.example.com/v1"


@pytest.mark.parametrize("lang", LANGS)
def test_a_preset_fills_url_and_model_and_the_old_key_does_not_follow(lang):
    env_file().write_text(f'QUERY_ENGINE_API_KEY="{KEY}"\nQUERY_ENGINE_BASE_URL="https://api.deepseek.com/v1"\n',
                          encoding="utf-8")
    reload_runtime()
    at = page(lang)
    at.selectbox(key="preset_QUERY_ENGINE").select("kimi")
    click(at, "apply_QUERY_ENGINE")
    assert at.text_input(key="set_QUERY_ENGINE_BASE_URL").value == "https://api.moonshot.cn/v1"
    assert at.text_input(key="set_QUERY_ENGINE_MODEL_NAME").value == "kimi-k2-0905-preview"
    assert at.text_input(key="set_QUERY_ENGINE_API_KEY").value == ""  # a preset never fills a key
    assert at.text_input(key="set_MEDIA_ENGINE_BASE_URL").value == ""  # nor another role
    [notice] = values(at.info)
    assert "Kimi (Moonshot)" in notice and (("已在下方填入" in notice) == (lang == "zh"))
    assert KEY in env_file().read_text(encoding="utf-8")  # nothing saved yet
    screen_ok(at, lang, allowed=("Kimi (Moonshot)",))
    click(at, "settings_save")
    assert not at.error, values(at.error)
    settings = get_runtime().settings
    assert settings["QUERY_ENGINE_BASE_URL"] == "https://api.moonshot.cn/v1"
    assert settings["QUERY_ENGINE_MODEL_NAME"] == "kimi-k2-0905-preview"
    assert settings["QUERY_ENGINE_API_KEY"] == "" and KEY not in env_file().read_text(encoding="utf-8")
    [flash] = values(at.success)
    assert "QUERY_ENGINE_API_KEY" in flash and ("已更改" in flash) == (lang == "zh")
    assert KEY not in "\n".join(shown(at))


@pytest.mark.parametrize("lang", LANGS)
def test_an_llm_connection_test_lists_the_models_then_says_what_failed(lang):
    with FakeOpenAI(api_key=KEY) as llm:
        llm.listed_models = ["fake-model", "fake-model-pro"]
        at = page(lang)
        at.text_input(key="set_QUERY_ENGINE_BASE_URL").input(llm.url)  # typed, not saved
        at.text_input(key="set_QUERY_ENGINE_API_KEY").input(KEY)
        at.text_input(key="set_QUERY_ENGINE_MODEL_NAME").input("fake-model")
        click(at, "test_QUERY_ENGINE")
        answer = after(at, "test_QUERY_ENGINE")
        assert answer.type == "success" and llm.provider in answer.value
        assert ("已连接" in answer.value) == (lang == "zh")
        assert any("`fake-model-pro`" in c for c in values(at.caption))
        screen_ok(at, lang, allowed=(llm.url,))
        assert not env_file().exists()  # a test saves nothing
        # A wrong key: the provider's refusal in plain words, and no key anywhere on the page.
        at.text_input(key="set_QUERY_ENGINE_API_KEY").input("sk-wrong-key-000000001")
        click(at, "test_QUERY_ENGINE")
    answer = after(at, "test_QUERY_ENGINE")
    assert answer.type == "error"
    assert {"zh": "拒绝了密钥", "en": "rejected the key"}[lang] in answer.value
    assert any("Incorrect API key provided" in c for c in values(at.caption))
    screen_ok(at, lang)
    text = "\n".join(shown(at))
    assert KEY not in text and "sk-wrong-key-000000001" not in text
    # Nothing listening at the URL.
    url = f"http://127.0.0.1:{free_port()}/v1"
    at.text_input(key="set_QUERY_ENGINE_BASE_URL").input(url)
    click(at, "test_QUERY_ENGINE")
    answer = after(at, "test_QUERY_ENGINE")
    assert answer.type == "error" and url in answer.value
    assert {"zh": "连接被拒绝", "en": "connection refused"}[lang] in answer.value


def test_a_saved_key_is_not_sent_to_a_url_typed_in_the_form():
    """Testing a new base URL without typing its key sends no key (a key stays with its host)."""
    with FakeOpenAI(api_key=KEY) as llm:
        env_file().write_text(f'FORUM_HOST_API_KEY="{KEY}"\nFORUM_HOST_BASE_URL="https://api.owner.example/v1"\n',
                              encoding="utf-8")
        reload_runtime()
        at = page("en")
        at.text_input(key="set_FORUM_HOST_BASE_URL").input(llm.url)
        click(at, "test_FORUM_HOST")
        assert after(at, "test_FORUM_HOST").type == "error"  # the fake wanted the key: it was not sent
        assert any("The saved key was not sent" in c for c in values(at.caption))
        # Back at the saved URL, the saved key is used.
        at.text_input(key="set_FORUM_HOST_BASE_URL").input("https://api.owner.example/v1")
        env_file().write_text(f'FORUM_HOST_API_KEY="{KEY}"\nFORUM_HOST_BASE_URL="{llm.url}"\n', encoding="utf-8")
        reload_runtime()
        at = page("en")
        click(at, "test_FORUM_HOST")
        assert after(at, "test_FORUM_HOST").type == "success"


@pytest.mark.parametrize("lang", LANGS)
def test_search_connection_tests(lang):
    with FakeTavilyServer() as tavily, FakeBochaServer() as bocha:
        env_file().write_text(f'TAVILY_API_KEY="{tavily.api_key}"\nTAVILY_BASE_URL="{tavily.url}"\n', encoding="utf-8")
        reload_runtime()
        at = page(lang)
        click(at, "test_tavily")  # the saved key and URL
        answer = after(at, "test_tavily")
        assert answer.type == "success" and "Tavily" in answer.value
        at.text_input(key="set_BOCHA_BASE_URL").input(bocha.url)
        at.text_input(key="set_BOCHA_WEB_SEARCH_API_KEY").input("sk-not-the-bocha-key-01")
        click(at, "test_bocha")
        assert len(tavily.requests) == 1 and len(bocha.requests) == 1
    answer = after(at, "test_bocha")
    assert answer.type == "error" and {"zh": "拒绝了密钥", "en": "rejected the key"}[lang] in answer.value
    assert after(at, "test_tavily").type == "success"  # the other answer stays
    screen_ok(at, lang)
    text = "\n".join(shown(at))
    assert tavily.api_key not in text and "sk-not-the-bocha-key-01" not in text


@pytest.mark.parametrize("lang", LANGS)
def test_a_saved_value_that_cannot_be_used_is_said_at_its_field(lang, monkeypatch):
    monkeypatch.setenv("SHOAL_PARAGRAPHS", "lots")
    reload_runtime()
    at = page(lang)
    assert at.number_input(key="set_SHOAL_PARAGRAPHS").value == 5  # the default stands in
    note = after(at, "set_SHOAL_PARAGRAPHS")
    assert note.type == "caption" and "SHOAL_PARAGRAPHS" in note.value
    assert {"zh": "必须是整数", "en": "must be an integer"}[lang] in note.value
