"""The app's pages in the sidebar, named in the reader's language.

Streamlit names pages found in pages/ after their file names, in English only; st.navigation lets
the entry script give each page a title, so Home.py builds the menu here on every run. The URLs
stay what they were (/Query_Engine, /Report …): links, bookmarks and tests keep working.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.i18n import t

ROOT = Path(__file__).resolve().parents[1]
# (script relative to the project, catalogue key, icon); the first is the default page
PAGES: tuple[tuple[str, str, str], ...] = (
    ("pages/0_Start.py", "nav.home", "🐟"),
    ("pages/1_Query_Engine.py", "nav.query", "🔎"),
    ("pages/2_Media_Engine.py", "nav.media", "🖼️"),
    ("pages/3_Insight_Engine.py", "nav.insight", "🗄️"),
    ("pages/4_Forum.py", "nav.forum", "💬"),
    ("pages/5_Report.py", "nav.report", "📄"),
    ("pages/6_Monitor.py", "nav.monitor", "📈"),
    ("pages/7_Data.py", "nav.data", "🗃️"),
    ("pages/8_Settings.py", "nav.settings", "⚙️"),
)


def url_path(script: str) -> str:
    """`pages/5_Report.py` → `Report`, as Streamlit named it when it found the file itself."""
    stem = Path(script).stem
    return stem.split("_", 1)[1] if stem[:1].isdigit() and "_" in stem else ""


def run() -> None:
    # the default page (Home) is served at "/"; the others keep the paths Streamlit gave their files
    pages = [st.Page(str(ROOT / script), title=t(key), icon=icon, default=True) if i == 0 else
             st.Page(str(ROOT / script), title=t(key), icon=icon, url_path=url_path(script))
             for i, (script, key, icon) in enumerate(PAGES)]
    st.navigation(pages).run()
