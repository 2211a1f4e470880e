"""Monitor › Usage names where its prices come from and of when, in both languages (AppTest): the price
file's path and change time when there is one, genai-prices' version and data date, and a model
nobody prices stays unpriced."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import pytest
from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

from core.infra.models import LlmCall, utcnow
from core.llm import price_source
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture
from tests.support.screen import english_leaks, untranslated_keys
from tests.ui.test_monitor_page import PAGE, TIMEOUT, frame_with
from ui.monitor import TAB_USAGE
from ui.runtime import get_runtime, reload_runtime

MODELS = ("deepseek-chat", "local-mystery-7b")


def open_usage(lang: str) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.session_state["shoal_lang"] = lang
    at.session_state["monitor_tab"] = TAB_USAGE
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def some_calls() -> None:
    rows = [{"ts": utcnow(), "run_id": "r1", "role": "QUERY_ENGINE", "model": m, "input_tokens": 1000,
             "output_tokens": 100, "cached_input_tokens": 600, "status": "ok"} for m in MODELS]
    with get_runtime().db.engine.begin() as conn:
        conn.execute(insert(LlmCall), rows)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_price_source_and_its_date_are_named(lang):
    some_calls()
    at = open_usage(lang)
    assert not untranslated_keys(at)
    captions = " ".join(values(at.caption))
    version, date = price_source.PINNED_VERSION, price_source.PINNED_ON
    assert f"genai-prices {version}" in captions and date in captions
    assert ("No price file" if lang == "en" else "没有价格文件") in captions
    shown = frame_with(at, "model", "input_per_m", "cached_input_per_m", "source").set_index("model")
    assert shown.loc["deepseek-chat", "source"].startswith(f"genai-prices {version}")
    assert shown.loc["deepseek-chat", "cached_input_per_m"] < shown.loc["deepseek-chat", "input_per_m"]
    assert shown.loc["local-mystery-7b", "source"] == ("unpriced" if lang == "en" else "未定价")
    assert shown["input_per_m"].isna().loc["local-mystery-7b"]
    usage = frame_with(at, "role", "model", "cached_input_tokens", "cost").set_index("model")
    assert usage.loc["local-mystery-7b", "cost"] == ("unpriced" if lang == "en" else "未定价")
    assert usage.loc["deepseek-chat", "cached_input_tokens"] == 600
    if lang == "zh":
        assert not english_leaks(at, allowed=MODELS), english_leaks(at, allowed=MODELS)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_price_file_is_named_with_its_change_time_and_wins(lang, isolated_env, monkeypatch):
    path = isolated_env / "my-prices.json"
    path.write_text(json.dumps({"deepseek-chat": {"input": 9, "output": 9}}), encoding="utf-8")
    changed = datetime(2026, 11, 20, 8, 30, tzinfo=timezone.utc)
    os.utime(path, (changed.timestamp(), changed.timestamp()))
    monkeypatch.setenv("SHOAL_PRICE_TABLE", str(path))
    monkeypatch.setenv("SHOAL_TIMEZONE", "UTC")
    reload_runtime()
    some_calls()
    at = open_usage(lang)
    assert not untranslated_keys(at)
    captions = " ".join(values(at.caption))
    assert str(path) in captions and "2026-11-20 08:30" in captions
    assert f"genai-prices {price_source.PINNED_VERSION}" in captions  # the other models' source
    shown = frame_with(at, "model", "input_per_m", "source").set_index("model")
    assert shown.loc["deepseek-chat", "input_per_m"] == 9 and shown.loc["deepseek-chat", "source"] == str(path)
    if lang == "zh":
        assert not english_leaks(at, allowed=MODELS + (str(path),)), english_leaks(at, allowed=MODELS + (str(path),))
