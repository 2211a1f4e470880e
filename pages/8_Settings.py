"""Settings: edit whitelisted keys in .env. Secrets are masked and never shown back."""
import streamlit as st

from core.infra.config import (EDITABLE_KEYS, SPECS, SettingError, keys_follow_urls, validate_updates,
                               write_env_file)
from ui.monitor.budgets import show_budgets
from ui.runtime import reload_runtime
from ui.widgets import admin_unlocked, page_setup

rt = page_setup("Settings", "⚙️")
st.title("⚙️ Settings")
settings = rt.settings
st.caption(f"Precedence: Streamlit secrets > environment > `.env` ({settings.env_file}) > defaults. "
           "Saving writes `.env`; a key set in secrets or the environment keeps that value.")

if flash := st.session_state.pop("settings_flash", None):
    st.success(flash)

if not admin_unlocked(rt, "settings"):
    st.stop()

show_budgets(rt)  # what SHOAL_LLM_CONCURRENCY and <ROLE>_CONCURRENCY give each endpoint now

groups: dict[str, list] = {}
for spec in SPECS.values():
    if spec.key in EDITABLE_KEYS:
        groups.setdefault(spec.group, []).append(spec)

with st.form("settings_form"):
    proposed: dict[str, str] = {}
    clear: list[str] = []
    for group, specs in groups.items():
        st.subheader(group)
        for spec in specs:
            source = settings.source(spec.key)
            overridden = source in ("secrets", "environment")
            help_text = spec.help + (f" (currently from {source}; .env cannot override it)" if overridden else "")
            if spec.secret:
                c1, c2 = st.columns([4, 1])
                typed = c1.text_input(f"{spec.key} — {settings.masked(spec.key)}", value="", type="password",
                                      key=f"set_{spec.key}", help=help_text,
                                      placeholder="leave empty to keep the current value")
                if c2.checkbox("clear", key=f"clear_{spec.key}", disabled=not settings.get(spec.key)):
                    clear.append(spec.key)
                if typed:
                    proposed[spec.key] = typed
            elif spec.kind == "bool":
                value = st.checkbox(spec.key, value=bool(settings[spec.key]), key=f"set_{spec.key}", help=help_text)
                if value != settings[spec.key]:
                    proposed[spec.key] = "true" if value else "false"
            elif spec.kind == "choice":
                value = st.selectbox(spec.key, spec.choices, index=spec.choices.index(settings[spec.key]),
                                     key=f"set_{spec.key}", help=help_text)
                if value != settings[spec.key]:
                    proposed[spec.key] = value
            else:
                current = "" if settings[spec.key] is None else str(settings[spec.key])
                value = st.text_input(spec.key, value=current, key=f"set_{spec.key}", help=help_text)
                if value.strip() != current:
                    proposed[spec.key] = value.strip()
    saved = st.form_submit_button("Save to .env", type="primary")

if saved:
    errors = validate_updates(proposed)
    rebinding = keys_follow_urls(settings, proposed, clear)  # a changed base URL does not keep its key
    errors.update(rebinding.errors)
    clear += rebinding.clear
    if errors:
        for key, message in errors.items():
            st.error(message)
        st.caption("Nothing was saved; fix the values above and save again.")
    elif not proposed and not clear:
        st.info("No changes.")
    else:
        try:
            write_env_file(proposed, settings.env_file, remove=clear)
        except (SettingError, OSError) as exc:
            st.error(f"Could not write {settings.env_file}: {exc}")
        else:
            changed = sorted(set(proposed) | set(clear))
            for key in changed:  # a typed secret must not live on in widget state and go back to the browser
                if SPECS[key].secret:
                    st.session_state.pop(f"set_{key}", None)
                    st.session_state.pop(f"clear_{key}", None)
            st.session_state["settings_flash"] = (f"Saved {len(changed)} setting(s): {', '.join(changed)}. "
                                                  "Restarted the runtime." + "".join(f" {n}" for n in rebinding.notes))
            reload_runtime()
            st.rerun()
