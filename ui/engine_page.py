"""The shared body of the three engine pages (one design, three configurations)."""
from __future__ import annotations

import streamlit as st

from core.jobs import HANDLERS

from .widgets import mode_caption, not_available, page_setup

DESCRIPTIONS = {
    "query": ("Query engine", "🔎", "News and web search through a Tavily-compatible API, or the local corpus offline."),
    "media": ("Media engine", "🎞️", "Multimodal web search (pages, images, video) through a Bocha-compatible API, "
              "or the local corpus offline."),
    "insight": ("Insight engine", "🧠", "Your own social-media database: hot content, topic search, comments, "
                "sentiment and keyword expansion."),
}


def show(engine: str) -> None:
    title, icon, description = DESCRIPTIONS[engine]
    rt = page_setup(title, icon)
    st.title(f"{icon} {title}")
    st.caption(description + " " + mode_caption(rt))
    if engine not in HANDLERS:
        not_available(title, "This engine arrives in the next release. Its page will show its state, paragraph "
                      "progress, a live console, its report as it forms, its sources and its LLM usage.")
        return
