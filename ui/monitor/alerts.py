"""Monitor tab 9, Alerts: firing and pending alerts, their history, and the rules (edited behind the
admin password)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.console.alerts import OPS, SEVERITIES, ActiveAlert, rules_from_data, save_rules
from core.infra.models import utcnow
from core.runtime import Runtime

from ui.monitor.common import _epoch_text, _table
from ui.widgets import admin_unlocked, fmt_duration

RULE_COLUMNS = ["name", "metric", "op", "threshold", "for_seconds", "severity", "description", "enabled"]
KNOWN_METRICS = ("cpu_percent", "memory_percent", "disk_percent", "process_rss_bytes", "process_threads",
                 "llm_calls", "llm_error_rate_pct", "llm_p95_latency_ms", "stalled_jobs", "telemetry_dropped",
                 "telemetry_buffered")


# ---------------------------------------------------------------------------------------- 9 alerts


def rules_path(rt: Runtime) -> Path:
    """Where edited rules are saved: SHOAL_ALERT_RULES, or alert_rules.json in the data folder."""
    return rt.settings.path("SHOAL_ALERT_RULES") if rt.settings.get("SHOAL_ALERT_RULES") \
        else rt.settings.data_dir / "alert_rules.json"


def _rule_records(edited: pd.DataFrame) -> list[dict]:
    """The editor's rows as plain dicts for core.console.alerts.rules_from_data (which validates them)."""
    out = []
    for row in edited.to_dict("records"):
        clean = {}
        for k, v in row.items():
            if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
                continue
            if hasattr(v, "item"):  # numpy scalars -> Python
                v = v.item()
            clean[k] = v.strip() if isinstance(v, str) else v
        if not any(v not in ("", None) for v in clean.values()):
            continue  # a blank row added and left empty
        out.append(clean)
    return out


def firing_frame(firing: list[ActiveAlert]) -> pd.DataFrame:
    """One row per firing alert: since when, for how long, value and condition."""
    now = utcnow().timestamp()
    return pd.DataFrame([{"alert": a.rule, "severity": a.severity, "since (UTC)": _epoch_text(a.since),
                          "for": fmt_duration(max(0.0, now - a.since)) if a.since else "—", "value": str(a.value),
                          "condition": f"{a.metric} {a.op} {a.threshold:g}", "description": a.description}
                         for a in firing])


def show_alerts(rt: Runtime, key: str) -> None:
    if rt.alerts is None:
        st.info("Alerts are not evaluated in this process.")
        return
    engine = rt.alerts
    firing = engine.firing()
    st.subheader("Firing")
    if firing:
        _table(firing_frame(firing))
    else:
        st.caption("No alert is firing.")
    pending = engine.pending()
    if pending:
        st.caption("Holding, not yet for long enough: " + ", ".join(
            f"{name} since {_epoch_text(since)} UTC" for name, since in pending.items()))
    e1, e2 = st.columns([1, 3])
    if e1.button("Evaluate now", key=f"{key}_alerts_eval"):
        engine.tick(rt.db if rt.db.ok else None, resources=rt.resources, telemetry=rt.telemetry)
        st.rerun()
    e2.caption(f"Evaluated every {rt.settings.get('SHOAL_ALERT_SECONDS', 15):g} s by the supervisor; "
               f"last {_epoch_text(engine.last_evaluated)} UTC.")
    if engine.last_metrics:
        with st.expander("Current metrics"):
            metrics = {k: v for k, v in engine.last_metrics.items() if k != "problems"}
            _table(pd.DataFrame([{"metric": k, "value": str(v)} for k, v in sorted(metrics.items())]))
            for problem in engine.last_metrics.get("problems") or []:
                st.caption(f"could not read: {problem}")

    st.subheader("History")
    history = engine.history()
    if history:
        _table(pd.DataFrame([{"time (UTC)": _epoch_text(c.at), "alert": c.rule, "state": c.state,
                              "severity": c.severity, "value": str(c.value), "message": c.message}
                             for c in reversed(history)]))
    else:
        st.caption("No alert has fired or cleared since this process started.")

    st.subheader("Rules")
    path = rules_path(rt)
    unlocked = admin_unlocked(rt, f"{key}_alerts")
    version = st.session_state.get(f"{key}_rules_version", 0)
    rules = pd.DataFrame([r.as_dict() for r in engine.rules], columns=RULE_COLUMNS)
    edited = st.data_editor(
        rules, key=f"{key}_rules_{version}", num_rows="dynamic", hide_index=True, disabled=not unlocked,
        column_config={
            "op": st.column_config.SelectboxColumn("op", options=list(OPS), required=True),
            "severity": st.column_config.SelectboxColumn("severity", options=list(SEVERITIES), required=True),
            "threshold": st.column_config.NumberColumn("threshold", required=True),
            "for_seconds": st.column_config.NumberColumn("for (s)", min_value=0),
            "enabled": st.column_config.CheckboxColumn("enabled"),
        })
    st.caption("Metrics: " + ", ".join(f"`{m}`" for m in KNOWN_METRICS) + f". Saved to `{path}`.")
    if st.button("Save rules", key=f"{key}_rules_save", disabled=not unlocked):
        new_rules, problems = rules_from_data(_rule_records(edited))
        if problems:
            st.error("Not saved: " + "; ".join(problems))
            return
        try:
            save_rules(path, new_rules)
        except OSError as exc:
            st.error(f"Not saved: {path} cannot be written ({exc.strerror or exc}).")
            return
        cleared = engine.set_rules(new_rules)
        st.session_state[f"{key}_rules_version"] = version + 1  # the next run edits the saved rules afresh
        st.success(f"Saved {len(new_rules)} rule(s) to {path}; they apply now"
                   + (f" ({len(cleared)} firing alert(s) cleared)." if cleared else "."))
