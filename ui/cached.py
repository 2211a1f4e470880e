"""Cached reads for read-mostly panels: the corpus figures (Home, Data) and the LLM call rows the
Monitor's usage and latency tabs aggregate.

Each cache is keyed by the database URL and by a cheap "has anything new arrived" marker (the
newest row id, one primary-key lookup), so a new import or a new LLM call shows on the next
refresh, and a change that adds no row (an import updating posts) within the TTL. A read that
fails is not cached (the error frame or exception reaches the page as before).
"""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import streamlit as st
from sqlalchemy import func, select

from core.corpus.search import CorpusStats, corpus_stats, corpus_summary
from core.console.usage import llm_calls_frame, retry_events_frame
from core.infra.db import Database
from core.infra.models import Event, LlmCall, Post, utcnow
from core.runtime import Runtime

if TYPE_CHECKING:  # pandas loads where a frame is built (core.console.usage), not with Home's imports
    import pandas as pd

CORPUS_TTL_S = 10
USAGE_TTL_S = 10
# TTLs in seconds, not "10s": Streamlit parses a duration string with pandas, which Home does not need.
_TTL = CORPUS_TTL_S


def _newest_id(db: Database, model) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.max(model.id))) or 0)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=16)
def _corpus_stats(_db: Database, url: str, newest: int) -> CorpusStats:
    return corpus_stats(_db)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=16)
def _corpus_summary(_db: Database, url: str, newest: int) -> dict:
    return corpus_summary(_db)


def cached_corpus_stats(rt: Runtime) -> CorpusStats:
    """core.corpus.search.corpus_stats, recomputed at most every CORPUS_TTL_S seconds unless posts were added."""
    return _corpus_stats(rt.db, rt.db.url, _newest_id(rt.db, Post))


def cached_corpus_summary(rt: Runtime) -> dict:
    """core.corpus.search.corpus_summary, cached like cached_corpus_stats."""
    return _corpus_summary(rt.db, rt.db.url, _newest_id(rt.db, Post))


def clear_corpus_cache() -> None:
    """After an import or demo generation on this page: show the new figures at once."""
    _corpus_stats.clear()
    _corpus_summary.clear()


class _Uncached(Exception):
    """Carries a frame that must not be cached (it holds a read error)."""

    def __init__(self, frame: pd.DataFrame):
        super().__init__(frame.attrs.get("error"))
        self.frame = frame


@st.cache_data(ttl=USAGE_TTL_S, show_spinner=False, max_entries=32)
def _llm_calls(_db: Database, url: str, window_s: float | None, limit: int, newest: int) -> pd.DataFrame:
    since = utcnow() - timedelta(seconds=window_s) if window_s else None
    frame = llm_calls_frame(_db, since=since, limit=limit)
    if frame.attrs.get("error"):
        raise _Uncached(frame)
    return frame


@st.cache_data(ttl=USAGE_TTL_S, show_spinner=False, max_entries=32)
def _retry_events(_db: Database, url: str, window_s: float | None, newest: int) -> pd.DataFrame:
    since = utcnow() - timedelta(seconds=window_s) if window_s else None
    frame = retry_events_frame(_db, since=since)
    if frame.attrs.get("error"):
        raise _Uncached(frame)
    return frame


def _window_seconds(window) -> float | None:
    return window.total_seconds() if window is not None else None


def cached_llm_calls(rt: Runtime, window, limit: int) -> pd.DataFrame:
    """core.console.usage.llm_calls_frame over a time window (a timedelta, or None for all), newest
    first; recomputed when a call was recorded or after USAGE_TTL_S seconds."""
    try:
        return _llm_calls(rt.db, rt.db.url, _window_seconds(window), limit, _newest_id(rt.db, LlmCall))
    except _Uncached as exc:
        return exc.frame
    except Exception:  # noqa: BLE001 - the marker could not be read: let the frame say why
        return llm_calls_frame(rt.db, since=utcnow() - window if window else None, limit=limit)


def cached_retry_events(rt: Runtime, window) -> pd.DataFrame:
    """core.console.usage.retry_events_frame over a time window, cached like cached_llm_calls (keyed by
    the newest event id)."""
    try:
        return _retry_events(rt.db, rt.db.url, _window_seconds(window), _newest_id(rt.db, Event))
    except _Uncached as exc:
        return exc.frame
    except Exception:  # noqa: BLE001
        return retry_events_frame(rt.db, since=utcnow() - window if window else None)
