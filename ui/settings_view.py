"""The Settings form: one tab per group (a sub-tab per LLM role), typed widgets with the bounds of
core.infra.config's SettingSpec, each error right under its field, presets and a connection test
per LLM role and per search provider (ui/settings_actions.py holds what the buttons do).

Every widget keeps its value in session state under `set_<KEY>` (seeded from the saved settings),
so a failed save, a preset or a test leaves what the reader typed in place. Secrets are never put
back into a widget: a secret field is empty and its label says only whether the key is set.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.i18n import Msg
from core.infra.config import EDITABLE_KEYS, LLM_ROLES, SPECS, Settings, SettingSpec, source_msg
from core.llm.endpoint_check import CHECK_TIMEOUT, CheckResult
from core.llm.presets import PRESETS
from core.runtime import Runtime
from ui.i18n import show, t
from ui.settings_actions import (CHECKS, ERRORS, FLASH, NOTICES, apply_preset, check_llm, check_search, save,
                                 widget_key)

GROUPS = ("LLM", "Search", "Database", "Limits", "Supervisor", "Logging", "Storage", "Console", "Display", "Access")
SEARCH_PROVIDERS = (("tavily", "TAVILY_API_KEY", "TAVILY_BASE_URL"),
                    ("bocha", "BOCHA_WEB_SEARCH_API_KEY", "BOCHA_BASE_URL"))


def source_label(source: str) -> str:
    return show(source_msg(source))


def show_flash() -> None:
    """What the last save did (kept across the restart that followed it), shown once."""
    flash = st.session_state.pop(FLASH, None)
    if not flash:
        return
    kind, msgs = flash
    text = " ".join(show(m) for m in msgs)
    {"success": st.success, "info": st.info, "error": st.error}.get(kind, st.info)(text)


def render_settings(rt: Runtime) -> None:
    settings = rt.settings
    errors: dict[str, Msg] = st.session_state.get(ERRORS, {})
    specs = [s for s in SPECS.values() if s.key in EDITABLE_KEYS]
    with st.form("settings_form"):
        tabs = st.tabs([t(f"settings.group_{g.lower()}") for g in GROUPS])
        for group, tab in zip(GROUPS, tabs):
            with tab:
                if group == "LLM":
                    _llm_tabs(settings, errors)
                elif group == "Search":
                    _search_tab(settings, errors)
                else:
                    for spec in specs:
                        if spec.group == group:
                            field(spec, settings, errors)
        if errors:
            st.warning(t("settings.not_saved", n=len(errors), where=", ".join(dict.fromkeys(
                tab_of(SPECS[k]) for k in errors if k in SPECS))))
        st.form_submit_button(t("settings.save"), type="primary", on_click=save, key="settings_save")


def tab_of(spec: SettingSpec) -> str:
    """Where a setting's field is: its group's tab, and its role's tab inside it."""
    where = t(f"settings.group_{spec.group.lower()}")
    return f"{where} › {t(f'config.role_{spec.role.lower()}')}" if spec.role else where


def _llm_tabs(settings: Settings, errors: dict[str, Msg]) -> None:
    roles = st.tabs([t(f"config.role_{role.lower()}") for role in LLM_ROLES])
    for role, tab in zip(LLM_ROLES, roles):
        with tab:
            c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
            c1.selectbox(t("settings.preset"), [p.id for p in PRESETS], index=None, key=f"preset_{role}",
                         placeholder=t("settings.preset_pick"), help=t("settings.preset_help"),
                         format_func=_preset_name)
            c2.form_submit_button(t("settings.preset_apply"), key=f"apply_{role}", on_click=apply_preset,
                                  args=(role,))
            if notice := st.session_state.get(NOTICES, {}).get(role):
                st.info(show(notice))
            for suffix in ("API_KEY", "BASE_URL", "MODEL_NAME", "CONCURRENCY"):
                field(SPECS[f"{role}_{suffix}"], settings, errors)
            _test_button(role, check_llm)


def _search_tab(settings: Settings, errors: dict[str, Msg]) -> None:
    for provider, key_key, url_key in SEARCH_PROVIDERS:
        st.subheader(t(f"settings.search_{provider}"))
        field(SPECS[key_key], settings, errors)
        field(SPECS[url_key], settings, errors)
        _test_button(provider, check_search)
    st.divider()
    field(SPECS["SEARCH_TIMEOUT"], settings, errors)


def _preset_name(preset_id: str) -> str:
    preset = next(p for p in PRESETS if p.id == preset_id)
    return t("settings.preset_local", name=preset.name) if preset.local else preset.name


def _test_button(target: str, action) -> None:
    st.form_submit_button(t("settings.test_connection"), key=f"test_{target}", on_click=action, args=(target,),
                          help=t("settings.test_help", seconds=f"{CHECK_TIMEOUT:g}"))
    result = st.session_state.get(CHECKS, {}).get(target)
    if result is not None:
        show_check(*result)


def show_check(result: CheckResult, held_back: bool = False) -> None:
    (st.success if result.ok else st.error)(show(result.msg))
    for note in result.notes:
        st.caption(show(note))
    if result.models:
        shown = ", ".join(f"`{m}`" for m in result.models[:40]) + (" …" if len(result.models) > 40 else "")
        st.caption(t("settings.models_list", models=shown))
    if result.detail:
        st.caption(t("settings.provider_said", detail=f"`{result.detail.replace('`', '')}`"))
    if held_back:
        st.caption(t("settings.key_held_back"))


def label_of(spec: SettingSpec, settings: Settings) -> str:
    label = f"{show(spec.label_msg)} · `{spec.key}`"
    if spec.secret:
        state = (t("settings.secret_set", source=source_label(settings.source(spec.key)))
                 if settings.get(spec.key) else t("settings.secret_not_set"))
        label += f" — {state}"
    return label


def help_of(spec: SettingSpec, settings: Settings) -> str:
    text = show(spec.help_msg)
    source = settings.source(spec.key)
    if source in ("secrets", "environment"):
        text += " " + t("settings.overridden", source=source_label(source))
    return text


def initial_value(spec: SettingSpec, settings: Settings) -> Any:
    """What a widget starts with: the saved value (a secret's field starts empty)."""
    value = settings.get(spec.key)
    if spec.secret:
        return ""
    if spec.kind in ("int", "float", "bool", "choice"):
        return value
    return "" if value is None else str(value)


def step_of(spec: SettingSpec) -> int | float:
    if spec.kind == "int":
        return 1
    span = (spec.maximum or 0) - (spec.minimum or 0)
    return 0.05 if span <= 1 else 0.5 if (spec.minimum or 0) < 1 else 1.0


def field(spec: SettingSpec, settings: Settings, errors: dict[str, Msg]) -> None:
    """One setting's widget, typed by its spec, and its error right under it."""
    key = widget_key(spec.key)
    if key not in st.session_state:
        st.session_state[key] = initial_value(spec, settings)
    label, help_text = label_of(spec, settings), help_of(spec, settings)
    if spec.secret:
        c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
        c1.text_input(label, type="password", key=key, help=help_text, placeholder=t("settings.secret_placeholder"))
        c2.checkbox(t("settings.clear"), key=f"clear_{spec.key}", disabled=not settings.get(spec.key))
    elif spec.kind == "bool":
        st.toggle(label, key=key, help=help_text)
    elif spec.kind == "choice":
        st.selectbox(label, spec.choices, key=key, help=help_text)
    elif spec.kind == "int":
        st.number_input(label, min_value=int(spec.minimum), max_value=int(spec.maximum), step=1, key=key,
                        help=help_text)
    elif spec.kind == "float":
        st.number_input(label, min_value=float(spec.minimum), max_value=float(spec.maximum), step=step_of(spec),
                        key=key, help=help_text, format="%g")
    else:
        st.text_input(label, key=key, help=help_text)
    if spec.key in errors:
        st.error(show(errors[spec.key]))
    elif spec.key in settings.error_msgs:  # the saved value is unusable: the field shows the default instead
        st.caption(f"⚠️ {show(settings.error_msgs[spec.key])}")
