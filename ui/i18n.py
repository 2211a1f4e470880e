"""The reader's language and clock, for pages: `t("common.language")`, `show(msg)`, `fmt_time(ts)`.

The language is the reader's choice in the sidebar (kept for the session and in the `lang` query
parameter, so a reload keeps it), else SHOAL_LANGUAGE, else the browser's locale (core.i18n.pick_language).
The catalogues live in core/i18n; nothing here holds a string of its own.
"""
from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

import streamlit as st

from core.i18n import LANGUAGE_NAMES, LANGUAGES, Msg, normalise, pick_language, tr
from core.infra.clock import display_zone, fmt_clock, zone_name

SESSION_KEY = "shoal_lang"
_WIDGET_KEY = "shoal_lang_picker"


def _context(attr: str) -> str | None:
    try:
        return getattr(st.context, attr, None)
    except Exception:  # noqa: BLE001 - outside a session (a bare script, AppTest without a request)
        return None


def _setting(key: str, default: str) -> str:
    from ui.runtime import get_runtime  # the runtime builds lazily; the catalogue must work without it

    try:
        return str(get_runtime().settings[key])
    except Exception:  # noqa: BLE001 - a broken runtime still shows pages, in the default language
        return default


def lang() -> str:
    """`zh` or `en` for this reader now."""
    override = st.session_state.get(SESSION_KEY)
    if override is None:
        try:
            override = st.query_params.get("lang")
        except Exception:  # noqa: BLE001
            override = None
    return pick_language(override if override in LANGUAGES else None, _setting("SHOAL_LANGUAGE", "auto"),
                         _context("locale"))


def t(key: str, /, **args: Any) -> str:
    return tr(lang(), key, **args)


def show(msg: Msg | str | None) -> str:
    """A core message in the reader's language (plain strings pass through: data, not UI text)."""
    if msg is None:
        return ""
    return msg.render(lang()) if isinstance(msg, Msg) else msg


def status_label(status: str) -> str:
    """A run or job status in words (`已完成`); the raw value stays in tables' ids and the CLI."""
    text = tr(lang(), f"status.{status}")
    return status if text.startswith("⟦") else text


def _choose() -> None:
    chosen = st.session_state.get(_WIDGET_KEY)
    if chosen in LANGUAGES:
        st.session_state[SESSION_KEY] = chosen
        try:
            st.query_params["lang"] = chosen
        except Exception:  # noqa: BLE001 - query parameters are a convenience
            pass


def language_picker() -> None:
    """The sidebar's language switch; the choice holds for this session (and a reload of its URL)."""
    current = lang()
    st.session_state[_WIDGET_KEY] = current  # the widget shows the language in force, whatever set it
    # a two-option radio, not a selectbox: pages' own pickers stay the only selectboxes on them
    st.sidebar.radio(tr(current, "common.language"), LANGUAGES, key=_WIDGET_KEY, horizontal=True,
                     format_func=LANGUAGE_NAMES.get, on_change=_choose)


def zone() -> tzinfo:
    return display_zone(_setting("SHOAL_TIMEZONE", "local"), _context("timezone"))


def fmt_time(ts: datetime | None, with_date: bool = True) -> str:
    """A stored time in the reader's zone (the zone is named once per page: `zone_caption`)."""
    return fmt_clock(ts, zone(), with_date)


def zone_caption() -> str:
    return t("common.time_zone", zone=zone_name(zone()))


__all__ = ["lang", "t", "show", "status_label", "language_picker", "fmt_time", "zone", "zone_caption", "normalise"]
