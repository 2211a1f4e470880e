"""The sidebar's language switch: it changes every text at once and holds for the session."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.pagetest import fresh_runtime  # noqa: F401 - autouse fixture


def page() -> None:
    import streamlit as st

    from ui.i18n import lang, t
    from ui.widgets import page_setup

    page_setup("switch")
    st.title(t("common.language"))
    st.caption(lang())


def test_switching_language_changes_the_page_and_is_kept(monkeypatch):
    at = AppTest.from_function(page, default_timeout=30).run()
    assert at.title[0].value == "Language" and at.main.caption[-1].value == "en"  # no browser locale: English
    at.sidebar.radio(key="shoal_lang_picker").set_value("zh").run()
    assert at.title[0].value == "语言" and at.main.caption[-1].value == "zh"
    assert at.sidebar.radio(key="shoal_lang_picker").label == "语言"
    at.run()  # a later rerun (another page, a refresh) keeps the reader's choice
    assert at.title[0].value == "语言"


def test_the_setting_decides_until_the_reader_chooses(monkeypatch):
    monkeypatch.setenv("SHOAL_LANGUAGE", "zh")
    from ui.runtime import reload_runtime

    reload_runtime()
    at = AppTest.from_function(page, default_timeout=30).run()
    assert at.title[0].value == "语言"
    at.sidebar.radio(key="shoal_lang_picker").set_value("en").run()
    assert at.title[0].value == "Language"


def test_times_are_shown_in_the_configured_zone(monkeypatch):
    monkeypatch.setenv("SHOAL_TIMEZONE", "Asia/Shanghai")
    from ui.runtime import reload_runtime

    reload_runtime()

    def clock_page() -> None:
        from datetime import datetime

        import streamlit as st

        from ui.i18n import fmt_time
        from ui.widgets import page_setup

        page_setup("clock")
        st.markdown(fmt_time(datetime(2026, 12, 4, 1, 30)))  # stored times are naive UTC

    at = AppTest.from_function(clock_page, default_timeout=30).run()
    assert at.markdown[-1].value == "2026-12-04 09:30:00"
    assert "Asia/Shanghai (UTC+08:00)" in at.sidebar.caption[-1].value
