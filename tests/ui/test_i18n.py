"""Both languages, everywhere: the catalogues agree, every key the code uses exists, and every page
renders in Chinese and English with no raw key and (in Chinese) no English left over."""
from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.i18n import LANGUAGES, Msg, catalogue, pick_language, text_language, tr
from tests.pagetest import fresh_runtime  # noqa: F401 - autouse fixture
from tests.support.screen import english_leaks, untranslated_keys

ROOT = Path(__file__).resolve().parents[2]
PAGE_FILES = [ROOT / "Home.py", *sorted(p for p in (ROOT / "pages").glob("*.py") if p.name != "0_Start.py")]
SOURCES = [p for d in ("core", "ui", "pages") for p in (ROOT / d).rglob("*.py")] + [ROOT / "Home.py"]
# a literal key in t("…"), tr(lang, "…"), Msg("…") or status_label-free catalogue lookups
_KEY_USE = re.compile(r"""\b(?:t|tr|Msg)\(\s*(?:[\w.]+,\s*)?["']([a-z_]+(?:\.[a-z0-9_]+)+)["']""")


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_catalogues_have_the_same_keys_and_fields():
    zh, en = catalogue("zh"), catalogue("en")
    assert sorted(set(zh) ^ set(en)) == []
    assert {k: (fields(zh[k]), fields(en[k])) for k in zh if fields(zh[k]) != fields(en[k])} == {}


def test_no_chinese_in_the_english_catalogue():
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert [k for k, v in catalogue("en").items() if cjk.search(v)] == []


def test_every_key_the_code_uses_exists():
    used = {m.group(1): p.relative_to(ROOT) for p in SOURCES for m in _KEY_USE.finditer(p.read_text("utf-8"))}
    assert used, "the scan found no keys at all: the pattern is wrong"
    missing = {k: str(p) for k, p in used.items() if k not in catalogue("en") or k not in catalogue("zh")}
    assert missing == {}


def test_a_missing_key_or_field_is_visible_not_a_crash():
    assert tr("zh", "no.such_key") == "⟦no.such_key⟧"
    assert tr("en", "common.time_zone") == "⟦common.time_zone⟧"  # its {zone} was not given
    assert Msg("common.time_zone", {"zone": "UTC"}).render("zh") == "时间为 UTC"


def test_language_choice_order():
    assert pick_language("en", "zh", "zh-CN") == "en"  # the reader's own choice wins
    assert pick_language(None, "zh", "en-US") == "zh"  # then the setting
    assert pick_language(None, "auto", "zh-TW") == "zh"  # then the browser
    assert pick_language(None, "auto", "de-DE") == "en"
    assert pick_language(None, "auto", None) == "en"


def test_topic_language():
    assert text_language("武汉大学舆情") == "zh"
    assert text_language("新能源汽车 price war") == "zh"
    assert text_language("EV price war in China") == "en"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("path", PAGE_FILES, ids=lambda p: p.name)
def test_every_page_in_both_languages(path, lang):
    at = AppTest.from_file(str(path), default_timeout=30)
    at.session_state["shoal_lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert untranslated_keys(at) == []
    if lang == "zh":
        assert english_leaks(at) == []
