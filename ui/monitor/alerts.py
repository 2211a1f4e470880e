"""Monitor tab 9, Alerts: firing and pending alerts, their history, and the rules (edited behind the
admin password)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.console.alerts import (DEFAULT_RULES, FIRING, OPINION_RULE, OPS, SEVERITIES, ActiveAlert, AlertChange,
                                 rules_from_data, save_rules)
from core.infra.models import utcnow
from core.runtime import Runtime

from ui.i18n import t
from ui.monitor.common import _epoch_text, _table, col_label
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
        if isinstance(clean.get("description"), str) and isinstance(clean.get("name"), str):
            clean["description"] = _stored_description(clean["name"], clean["description"])
        out.append(clean)
    return out


DEFAULT_DESCRIPTIONS = {r.name: r.description for r in DEFAULT_RULES}
REASONS = {"rule disabled": "monitor.alert_reason_disabled", "rule removed or changed": "monitor.alert_reason_changed"}


def _fmt(value) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def rule_description(name: str, description: str) -> str:
    """A default rule's description in the reader's language; one an operator wrote stays as written."""
    if description and DEFAULT_DESCRIPTIONS.get(name) == description:
        return t("opinion.rule_negative_high") if name == OPINION_RULE else t(f"monitor.rule_{name}")
    return description


def _stored_description(name: str, shown: str) -> str:
    """The editor shows a default rule's description translated; saving it unchanged keeps the original."""
    return DEFAULT_DESCRIPTIONS[name] if name in DEFAULT_DESCRIPTIONS and shown == rule_description(
        name, DEFAULT_DESCRIPTIONS[name]) else shown


def severity_name(severity: str) -> str:
    return t(f"monitor.severity_{severity}") if severity in SEVERITIES else severity


def change_message(c: AlertChange) -> str:
    """What happened to an alert, in words (core's `message` is the log line, in English)."""
    cond = f"{c.metric} {c.op} {_fmt(c.threshold)}"
    if c.state == FIRING:
        held = t("monitor.alert_held", seconds=f"{c.at - c.since:.0f}") if c.at - c.since >= 1 else ""
        return t("monitor.alert_fired_message", rule=c.rule, cond=cond, held=held, value=_fmt(c.value))
    if c.reason:
        reason = t(REASONS[c.reason]) if c.reason in REASONS else c.reason
        return t("monitor.alert_cleared_reason", rule=c.rule, reason=reason)
    return t("monitor.alert_cleared_message", rule=c.rule, cond=cond, value=_fmt(c.value))


def firing_frame(firing: list[ActiveAlert]) -> pd.DataFrame:
    """One row per firing alert: since when, for how long, value and condition."""
    now = utcnow().timestamp()
    return pd.DataFrame([{"alert": a.rule, "severity": severity_name(a.severity), "since": _epoch_text(a.since),
                          "for": fmt_duration(max(0.0, now - a.since)) if a.since else "—", "value": str(a.value),
                          "condition": f"{a.metric} {a.op} {a.threshold:g}",
                          "description": rule_description(a.rule, a.description)} for a in firing],
                        columns=["alert", "severity", "since", "for", "value", "condition", "description"])


def show_alerts(rt: Runtime, key: str) -> None:
    if rt.alerts is None:
        st.info(t("monitor.alerts_off"))
        return
    engine = rt.alerts
    firing = engine.firing()
    st.subheader(t("monitor.firing"))
    if firing:
        _table(firing_frame(firing))
    else:
        st.caption(t("monitor.no_alert_firing"))
    pending = engine.pending()
    if pending:
        st.caption(t("monitor.alerts_pending", alerts=", ".join(
            t("monitor.alert_since", name=name, since=_epoch_text(since)) for name, since in pending.items())))
    e1, e2 = st.columns([1, 3])
    if e1.button(t("monitor.evaluate_now"), key=f"{key}_alerts_eval"):
        engine.tick(rt.db if rt.db.ok else None, resources=rt.resources, telemetry=rt.telemetry)
        st.rerun()
    e2.caption(t("monitor.alerts_evaluated", seconds=f"{rt.settings.get('SHOAL_ALERT_SECONDS', 15):g}",
                 last=_epoch_text(engine.last_evaluated)))
    if engine.last_metrics:
        with st.expander(t("monitor.current_metrics")):
            metrics = {k: v for k, v in engine.last_metrics.items() if k != "problems"}
            _table(pd.DataFrame([{"metric": k, "value": str(v)} for k, v in sorted(metrics.items())]))
            for problem in engine.last_metrics.get("problems") or []:
                st.caption(t("monitor.metric_unreadable", problem=problem))

    st.subheader(t("monitor.history"))
    history = engine.history()
    if history:
        _table(pd.DataFrame([{"time": _epoch_text(c.at), "alert": c.rule, "state": t(f"monitor.alert_{c.state}"),
                              "severity": severity_name(c.severity), "value": str(c.value),
                              "message": change_message(c)} for c in reversed(history)]))
    else:
        st.caption(t("monitor.no_alert_history"))

    st.subheader(t("monitor.rules"))
    path = rules_path(rt)
    unlocked = admin_unlocked(rt, f"{key}_alerts")
    version = st.session_state.get(f"{key}_rules_version", 0)
    rules = pd.DataFrame([{**r.as_dict(), "description": rule_description(r.name, r.description)}
                          for r in engine.rules], columns=RULE_COLUMNS)
    edited = st.data_editor(
        rules, key=f"{key}_rules_{version}", num_rows="dynamic", hide_index=True, disabled=not unlocked,
        column_config={
            "name": st.column_config.TextColumn(col_label("name")),
            "metric": st.column_config.TextColumn(col_label("metric")),
            "op": st.column_config.SelectboxColumn(col_label("op"), options=list(OPS), required=True),
            "severity": st.column_config.SelectboxColumn(col_label("severity"), options=list(SEVERITIES),
                                                         required=True),
            "threshold": st.column_config.NumberColumn(col_label("threshold"), required=True),
            "for_seconds": st.column_config.NumberColumn(col_label("for_seconds"), min_value=0),
            "description": st.column_config.TextColumn(col_label("description"), width="large"),
            "enabled": st.column_config.CheckboxColumn(col_label("enabled")),
        })
    st.caption(t("monitor.rule_metrics", metrics=", ".join(f"`{m}`" for m in KNOWN_METRICS), path=str(path)))
    if st.button(t("monitor.save_rules"), key=f"{key}_rules_save", disabled=not unlocked):
        new_rules, problems = rules_from_data(_rule_records(edited))
        if problems:
            st.error(t("monitor.rules_not_saved", problems="; ".join(problems)))
            return
        try:
            save_rules(path, new_rules)
        except OSError as exc:
            st.error(t("monitor.rules_not_written", path=str(path), error=str(exc.strerror or exc)))
            return
        cleared = engine.set_rules(new_rules)
        st.session_state[f"{key}_rules_version"] = version + 1  # the next run edits the saved rules afresh
        st.success(t("monitor.rules_saved", n=len(new_rules), path=str(path))
                   + (" " + t("monitor.rules_cleared", n=len(cleared)) if cleared else ""))
