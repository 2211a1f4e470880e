"""What the Settings page's buttons do: save, apply a preset, test a connection. Each is a button
callback: it runs before the page is drawn again, so the page then shows each error under its
field, a preset's values in their fields, a test's answer under its button.

The values used are the form's (typed, not yet saved), falling back to the saved ones. A saved
key is never sent to a base URL other than the saved one (the rule of
core.infra.config.keys_follow_urls): a test against a new URL uses only a key typed with it.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.i18n import Msg
from core.infra.config import EDITABLE_KEYS, LLM_ROLES, SPECS, URL_KEYS, SettingError, Settings, keys_follow_urls, \
    parse_value, update_errors, write_env_file
from core.llm.endpoint_check import CheckResult, check_llm_endpoint
from core.llm.presets import BY_ID
from core.research.provider_check import check_search_provider
from ui.access import has_control
from ui.runtime import get_runtime, reload_runtime

ERRORS = "settings_errors"    # key → Msg, from the last save
FLASH = "settings_flash"      # (kind, [Msg]) of the last save, shown once
CHECKS = "settings_checks"    # role or provider → (CheckResult, key held back)
NOTICES = "settings_notices"  # role → Msg of the preset just applied
SEARCH_KEYS = {"tavily": ("TAVILY_BASE_URL", "TAVILY_API_KEY"),
               "bocha": ("BOCHA_BASE_URL", "BOCHA_WEB_SEARCH_API_KEY")}


def widget_key(key: str) -> str:
    return f"set_{key}"


def _typed(key: str, settings: Settings) -> Any:
    """The form's value of a setting, else the saved one."""
    return st.session_state.get(widget_key(key), settings.get(key))


def proposed_changes(settings: Settings) -> tuple[dict[str, str], list[str]]:
    """(updates, keys to clear) the form asks for, compared with the saved settings."""
    proposed: dict[str, str] = {}
    clear: list[str] = []
    for key, spec in SPECS.items():
        if key not in EDITABLE_KEYS or widget_key(key) not in st.session_state:
            continue
        value = st.session_state[widget_key(key)]
        if spec.secret:
            if st.session_state.get(f"clear_{key}") and settings.get(key):
                clear.append(key)
            if value:
                proposed[key] = str(value)
        elif spec.kind == "bool":
            if bool(value) != settings[key]:
                proposed[key] = "true" if value else "false"
        elif spec.kind in ("int", "float", "choice"):
            if value is not None and value != settings[key]:
                proposed[key] = str(value)
        else:
            text = str(value or "").strip()
            if text != ("" if settings[key] is None else str(settings[key])):
                proposed[key] = text
    return proposed, clear


def save() -> None:
    rt = get_runtime()
    if not has_control(rt):  # the form shows only to a session with control; a forged click does nothing
        return
    settings = rt.settings
    proposed, clear = proposed_changes(settings)
    errors: dict[str, Msg] = {k: e.msg for k, e in update_errors(proposed).items()}
    rebinding = keys_follow_urls(settings, proposed, clear)  # a changed base URL does not keep its key
    errors.update(rebinding.errors)
    st.session_state[ERRORS] = errors
    if errors:
        return
    clear += rebinding.clear
    if not proposed and not clear:
        st.session_state[FLASH] = ("info", [Msg("settings.no_changes")])
        return
    try:
        write_env_file(proposed, settings.env_file, remove=clear)
    except (SettingError, OSError) as exc:
        st.session_state[FLASH] = ("error", [Msg("settings.write_failed", {"path": str(settings.env_file),
                                                                             "error": str(exc)})])
        return
    changed = sorted(set(proposed) | set(clear))
    for key in changed:  # a typed secret must not live on in widget state and go back to the browser
        if SPECS[key].secret:
            st.session_state.pop(widget_key(key), None)
            st.session_state.pop(f"clear_{key}", None)
    for target, (url_key, api_key) in _targets().items():  # a test of the old URL or key no longer holds
        if api_key in changed or url_key in changed:
            st.session_state.get(CHECKS, {}).pop(target, None)
    st.session_state.pop(NOTICES, None)  # the preset notices asked for a save: done
    st.session_state[FLASH] = ("success", [Msg("settings.saved", {"n": len(changed), "keys": ", ".join(changed)}),
                                           *rebinding.notes])
    reload_runtime()


def _targets() -> dict[str, tuple[str, str]]:
    """Each connection test's target (an LLM role, a search provider) → (its URL key, its API key)."""
    return {**{url_key.removesuffix("_BASE_URL"): (url_key, api_key) for url_key, api_key in URL_KEYS.items()
               if url_key.removesuffix("_BASE_URL") in LLM_ROLES}, **SEARCH_KEYS}


def apply_preset(role: str) -> None:
    preset = BY_ID.get(st.session_state.get(f"preset_{role}") or "")
    if preset is None:
        return
    for key, value in preset.values(role).items():
        st.session_state[widget_key(key)] = value
    st.session_state.setdefault(NOTICES, {})[role] = Msg("settings.preset_applied", {"preset": preset.name})
    st.session_state.get(CHECKS, {}).pop(role, None)


def _endpoint(url_key: str, api_key: str, settings: Settings) -> tuple[str, str, bool]:
    """(base URL, key, whether the saved key was held back) to test with."""
    url = str(_typed(url_key, settings) or "").strip()
    typed_key = str(st.session_state.get(widget_key(api_key)) or "").strip()
    saved_key = str(settings.get(api_key) or "")
    if typed_key:
        return url, typed_key, False
    if st.session_state.get(f"clear_{api_key}"):
        return url, "", False
    moved = url.rstrip("/") != str(settings.get(url_key) or "").strip().rstrip("/")
    return url, ("" if moved else saved_key), bool(moved and saved_key)


def _invalid_url(url_key: str, url: str) -> CheckResult | None:
    try:
        parse_value(SPECS[url_key], url)
    except SettingError as exc:
        return CheckResult(False, exc.msg, kind="invalid")
    return None


def check_llm(role: str) -> None:
    rt = get_runtime()
    if not has_control(rt):
        return
    url, key, held_back = _endpoint(f"{role}_BASE_URL", f"{role}_API_KEY", rt.settings)
    model = str(_typed(f"{role}_MODEL_NAME", rt.settings) or "")
    result = _invalid_url(f"{role}_BASE_URL", url) or check_llm_endpoint(url, key, model)
    st.session_state.setdefault(CHECKS, {})[role] = (result, held_back)


def check_search(provider: str) -> None:
    rt = get_runtime()
    if not has_control(rt):
        return
    url_key, api_key = SEARCH_KEYS[provider]
    url, key, held_back = _endpoint(url_key, api_key, rt.settings)
    result = _invalid_url(url_key, url) or check_search_provider(provider, url, key)
    st.session_state.setdefault(CHECKS, {})[provider] = (result, held_back)
