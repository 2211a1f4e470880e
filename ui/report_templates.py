"""Users' report templates on the pages: the Report page's panel (upload a Markdown template, list,
remove) and the names the report-type lists show for templates (Report page and Home).

The templates themselves (parsing, validation, storage) are core/reporting/custom_templates.py; a
template's key (`tpl_…`) is a report type like the six built-in ones. Adding or removing a template is
a control action: it needs the same unlock as Generate.
"""
from __future__ import annotations

import streamlit as st

from core.i18n import tr
from core.reporting.custom_templates import TemplateError, add_template, list_templates, remove_template, type_names
from core.runtime import Runtime

from .i18n import show as show_msg, t

NAMES_KEY = "report_template_names"   # session state: key → name, read by the type labels
FLASH_KEY = "report_template_flash"
ACCEPTED = ["md", "markdown", "txt"]


def template_names(rt: Runtime) -> dict[str, str]:
    """key → name of every stored template (and kept for `custom_label` in this session)."""
    try:
        names = type_names(rt.db)
    except Exception:  # noqa: BLE001 - a database hiccup leaves the lists with the built-in types
        names = {}
    st.session_state[NAMES_KEY] = names
    return names


def custom_label(key: str, language: str) -> str | None:
    """A template's key in words (`周报（自定义模板）`), or None when it is not a known template."""
    name = st.session_state.get(NAMES_KEY, {}).get(key)
    return tr(language, "report_extras.template_type", name=name) if name else None


def home_choices(rt: Runtime) -> dict[str, str]:
    """Label → key of each template, for Home's report-type list."""
    return {t("report_extras.template_type", name=name): key for key, name in template_names(rt).items()}


def templates_panel(rt: Runtime, unlocked: bool) -> None:
    import pandas as pd  # here, not at import: Home imports this module for the type names (tests/test_lazy_imports.py)

    with st.expander(t("report_extras.templates_heading")):
        flash = st.session_state.pop(FLASH_KEY, None)
        if flash:
            st.success(flash)
        st.caption(t("report_extras.templates_intro"))
        views = list_templates(rt.db)
        if views:
            st.dataframe(pd.DataFrame([{"key": v.key, "name": v.name, "sections": " · ".join(v.sections)}
                                       for v in views]), hide_index=True, width="stretch")
        else:
            st.caption(t("report_extras.none_yet"))
        st.caption(t("report_extras.list_caption", n=len(views)))
        with st.form("report_template_add", clear_on_submit=True):
            upload = st.file_uploader(t("report_extras.upload_label"), type=ACCEPTED, key="report_template_file")
            name = st.text_input(t("report_extras.name_label"), help=t("report_extras.name_help"),
                                 key="report_template_name")
            submitted = st.form_submit_button(t("report_extras.add_button"), disabled=not unlocked)
        if submitted and unlocked and upload is not None:
            try:
                view, replaced = add_template(rt.db, upload.getvalue(), name=name.strip() or None,
                                              filename=upload.name)
            except TemplateError as exc:
                st.error(t("report_extras.invalid", error=show_msg(exc.msg)))
            else:
                st.session_state[FLASH_KEY] = t("report_extras.replaced" if replaced else "report_extras.added",
                                                name=view.name, n=len(view.sections), key=view.key)
                st.rerun()
        if views:
            c1, c2 = st.columns([3, 1])
            labels = {v.key: f"{v.name} ({v.key})" for v in views}
            key = c1.selectbox(t("report_extras.remove_label"), list(labels), format_func=labels.get,
                               key="report_template_remove")
            if c2.button(t("report_extras.remove_button"), key="report_template_remove_go", disabled=not unlocked):
                if remove_template(rt.db, key):
                    st.session_state[FLASH_KEY] = t("report_extras.removed", key=key)
                st.rerun()
