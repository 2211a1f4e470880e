"""The entry script's menu: every page, named in the reader's language, at the URLs it always had."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.i18n import tr
from tests.pagetest import fresh_runtime  # noqa: F401 - autouse fixture
from ui.navigation import PAGES, url_path

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_file_is_in_the_menu_once():
    assert sorted(script for script, _, _ in PAGES) == sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))


def test_urls_stay_what_streamlit_gave_the_files():
    assert [url_path(s) for s, _, _ in PAGES] == ["Start", "Query_Engine", "Media_Engine", "Insight_Engine", "Forum",
                                                  "Report", "Monitor", "Data", "Settings"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_entry_script_opens_home_and_names_pages_in_the_readers_language(lang):
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
    at.session_state["shoal_lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Shoal" in at.title[0].value  # the default page is Home
    at.switch_page("pages/5_Report.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert tr(lang, "report.page_title") in at.title[0].value  # the Report page, in the same language
