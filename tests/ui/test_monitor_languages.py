"""The Monitor page as a reader sees it (issue 13): every tab with data in it, in Chinese and in English,
with no raw catalogue key, no English left on the Chinese page (texts, column headers, chart titles
and axes), all times on one clock (the display zone, named), and a log line's whole message reachable.

Data is the same known set as tests/ui/test_monitor_page.py's, through its helpers.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from streamlit.testing.v1 import AppTest

from core.console.alerts import AlertRule
from core.i18n import tr
from core.infra.models import LlmCall, utcnow
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture
from tests.support.screen import NAMES, english_leaks, untranslated_keys
from tests.ui.test_monitor_page import (PAGE, PRICED, RUN, TIMEOUT, TRACE, all_known_data, append_log, charts,
                                        frame_with, insert_rows, log_line, monitor)
from ui.monitor import TAB_ALERTS, TAB_LOGS, TAB_OVERVIEW, TAB_RESOURCES, TAB_RUNS, TAB_USAGE, TABS
from ui.runtime import get_runtime, reload_runtime

TOPIC = "新能源汽车价格战"
# Data the tests put on the page (not UI text): the topic, a log message, a firing rule's description.
DATA = (TOPIC, "searched the web for the topic", "the queue is deep")


def in_language(lang: str, tab: str, at: AppTest | None = None) -> AppTest:
    at = at if at is not None else AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.session_state["shoal_lang"] = lang
    return monitor(tab, at)


def others_table(columns) -> bool:
    """A table drawn by another helper's component: ui.widgets' jobs table and event feed, the budgets panel."""
    return {"heartbeat"} <= set(columns) or {"run", "job", "detail"} <= set(columns) or "endpoint" in columns


def headers(at: AppTest) -> list[dict[str, str]]:
    """Per dataframe of this page: raw column name -> the header shown (its column_config label, else
    the raw name); hidden columns left out."""
    out = []
    for df in at.dataframe:
        if others_table(df.value.columns):
            continue
        config = json.loads(df.proto.columns or "{}")
        out.append({str(c): (config.get(str(c)) or {}).get("label") or str(c) for c in df.value.columns
                    if not (config.get(str(c)) or {}).get("hidden")})
    return out


def english(text: str) -> bool:
    """Text with two or more English words and no Chinese (the screen scan's rule)."""
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return False
    words = [w for w in text.replace("_", " ").split() if w.isalpha() and len(w) >= 3 and w.lower() not in NAMES]
    return len(words) >= 1


def chart_texts(at: AppTest) -> list[str]:
    """Chart titles, axis and legend titles, and tooltip titles of every chart on the page."""
    out = []
    for spec, _ in charts(at):
        out.append(str(spec.get("title", "")))
        for channel in spec.get("encoding", {}).values():
            for enc in channel if isinstance(channel, list) else [channel]:
                if isinstance(enc, dict) and isinstance(enc.get("title"), str):
                    out.append(enc["title"])
    return [t for t in out if t]


def full_data() -> None:
    all_known_data()
    rt = get_runtime()
    for _ in range(2):
        rt.resources.sample_once()
    rule = AlertRule("test_queue_deep", "queue_depth", ">", 10, 0, "warning", "the queue is deep")
    rt.alerts.set_rules(rt.alerts.rules + [rule])
    rt.alerts.evaluate(None, {"queue_depth": 42})


# ---------------------------------------------------------------------------------------- both languages


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_tab_with_data_in_both_languages(lang):
    full_data()
    at = None
    problems = {}
    for tab in TABS:
        at = in_language(lang, tab, at)
        assert at.session_state["monitor_tab"] == tab
        assert [t.label for t in at.tabs] == [tr(lang, f"monitor.tab_{i}") for i in TABS]
        assert untranslated_keys(at) == [], tab
        assert not at.error, (tab, values(at.error))
        assert at.dataframe or tab == TAB_RESOURCES, tab  # every tab has data in it (resources: charts)
        shown = [h for table in headers(at) for h in table.values()]
        assert all("⟦" not in h for h in shown), (tab, shown)
        assert all("⟦" not in c for c in chart_texts(at)), tab
        if lang == "zh":
            problems[tab] = (english_leaks(at, allowed=DATA),
                             [h for h in shown if english(h)], [c for c in chart_texts(at) if english(c)])
    assert {tab: p for tab, p in problems.items() if any(p)} == {}
    if lang == "zh":
        at = in_language(lang, TAB_USAGE, at)
        assert "中文" not in at.title[0].value and "运维监控" in at.title[0].value
        assert "未定价" in {m.label: m.value for m in at.metric}[tr("zh", "monitor.cost")]


@pytest.mark.parametrize("state", ["empty", "no database"])
def test_every_tab_in_chinese_when_empty_or_without_a_database(state, monkeypatch):
    if state == "no database":
        monkeypatch.setenv("DATABASE_URL", "notaurl")
        reload_runtime()
    at = None
    for tab in TABS:
        at = in_language("zh", tab, at)
        assert untranslated_keys(at) == [], tab
        leaks = [t for t in english_leaks(at)
                 if "DATABASE_URL" not in t and "notaurl" not in t]  # the page banner: the runtime's own problem
        assert leaks == [], tab
    if state == "no database":
        monitor(TAB_USAGE, at)
        assert [i for i in values(at.info) if i.startswith("LLM 用量需要数据库")], values(at.info)


def test_switching_the_language_keeps_the_open_tab():
    at = in_language("en", TAB_ALERTS)
    assert [t.label for t in at.tabs][-1] == "Alerts"
    at = in_language("zh", TAB_ALERTS, at)  # what the sidebar picker does: the session's language changes
    assert at.session_state["monitor_tab"] == TAB_ALERTS and at.subheader[0].value == "触发中"


def test_alert_history_is_worded_in_the_readers_language():
    rt = get_runtime()
    rules = rt.alerts.rules
    rt.alerts.set_rules(rules + [AlertRule("test_queue_deep", "queue_depth", ">", 10, 0, "critical", "deep")])
    rt.alerts.evaluate(None, {"queue_depth": 42})
    rt.alerts.set_rules(rules)  # the rule removed: its alert clears, and says why
    at = in_language("zh", TAB_ALERTS)
    history = frame_with(at, "alert", "state", "message")
    assert list(history["state"]) == ["解除", "触发"]
    assert list(history["message"]) == ["test_queue_deep 已解除：规则已删除或修改", "test_queue_deep：queue_depth > 10（当前 42）"]
    at = in_language("en", TAB_ALERTS, at)
    assert list(frame_with(at, "alert", "state", "message")["message"]) == [
        "test_queue_deep cleared: rule removed or changed", "test_queue_deep: queue_depth > 10 (now 42)"]


@pytest.mark.parametrize("name", ["Runs & jobs", "任务与作业"])
def test_a_tab_named_in_either_language_opens_it(name):
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.session_state["monitor_tab"] = name  # an older session, or a link, that kept the tab's name
    at.run()
    assert not at.exception and at.session_state["monitor_tab"] == TAB_RUNS


def test_a_default_rule_is_described_in_chinese_and_saved_as_it_was(isolated_env):
    at = in_language("zh", TAB_ALERTS)
    [editor] = at.data_editor
    assert editor.value.set_index("name").loc["cpu_high", "description"] == "CPU 使用率超过 85 % 持续 5 分钟"
    at.session_state[editor.key] = {"edited_rows": {0: {"threshold": 70.0}}, "added_rows": [], "deleted_rows": []}
    at.button(key="monitor_rules_save").click().run()
    assert not at.exception and at.success
    saved = {r["name"]: r for r in json.loads((get_runtime().settings.data_dir / "alert_rules.json")
                                              .read_text(encoding="utf-8"))["rules"]}
    assert saved["cpu_high"]["description"] == "CPU above 85 % for 5 minutes"  # the stored text stays as written
    assert saved["cpu_high"]["threshold"] == 70


# ---------------------------------------------------------------------------------------- one clock


@pytest.fixture
def shanghai(monkeypatch):
    monkeypatch.setenv("SHOAL_TIMEZONE", "Asia/Shanghai")
    reload_runtime()


KNOWN_UTC = datetime(2026, 12, 4, 1, 0, 0)  # naive UTC, as stored
KNOWN_LOCAL = datetime(2026, 12, 4, 9, 0, 0)  # the same moment in Shanghai


def test_tables_and_charts_show_stored_times_in_the_display_zone(shanghai):
    all_known_data()
    insert_rows(LlmCall, [dict(ts=KNOWN_UTC, run_id=RUN, job_id=f"{RUN}-query", trace_id=f"{TRACE}.query",
                               role="QUERY_ENGINE", model=PRICED, input_tokens=1, output_tokens=1, latency_ms=1.0,
                               ttft_ms=None, retries=0, status="ok", error_kind=None)])
    # A table: the trace's LLM calls, with their stored time.
    at = monitor("traces")
    calls = frame_with(at, "role", "model", "latency_ms", "trace_id")
    assert KNOWN_LOCAL in list(calls["ts"]) and KNOWN_UTC not in list(calls["ts"])
    [label] = [h["ts"] for h in headers(at) if "latency_ms" in h]
    assert "Asia/Shanghai" in label
    assert any("Asia/Shanghai (UTC+08:00)" in c for c in values(at.caption))  # the zone is named on the page
    # A chart: failed calls per hour on the latency tab (an hour's bucket starts on the hour, local).
    at = monitor("latency", at)
    at.radio(key="monitor_latency_window").set_value("all").run()
    spec, [data] = [(s, d) for s, d in charts(at) if s.get("title") == "Failed calls (%)"][0]
    assert "Asia/Shanghai" in spec["encoding"]["x"]["title"]
    assert KNOWN_LOCAL in list(data["bucket"]) and KNOWN_UTC not in list(data["bucket"])


def test_the_runs_timeline_and_resources_are_on_the_display_clock(shanghai):
    all_known_data()
    rt = get_runtime()
    rt.resources.sample_once()
    at = monitor(TAB_RUNS)
    spec, [bars] = [(s, d) for s, d in charts(at) if str(s.get("title", "")).startswith("Timeline of run")][0]
    assert "Asia/Shanghai" in spec["encoding"]["x"]["title"]
    now_local = (datetime.now(timezone.utc) + timedelta(hours=8)).replace(tzinfo=None)
    assert (abs(bars["start"] - now_local) < timedelta(minutes=10)).all()  # not 8 h behind
    at = monitor(TAB_RESOURCES, at)
    spec, [use] = [(s, d) for s, d in charts(at) if s.get("title") == "System use (%)"][0]
    assert spec["encoding"]["x"]["title"] == "time in Asia/Shanghai (UTC+08:00)"
    sample_utc = datetime.fromtimestamp(rt.resources.samples()[-1]["ts"], timezone.utc).replace(tzinfo=None)
    assert abs(use["time"].max() - (sample_utc + timedelta(hours=8))) < timedelta(seconds=1)


def test_log_times_are_converted_from_the_servers_clock(shanghai, monkeypatch):
    import ui.monitor.logs as logs

    monkeypatch.setattr(logs, "server_zone", lambda: timezone.utc)  # the log files were written on a UTC server
    stamp = KNOWN_UTC.strftime("%Y-%m-%d %H:%M:%S.000")
    append_log(f"{stamp} | INFO     | -                | app     | tests.monitor:fn:1 - at a known time\n")
    at = monitor(TAB_LOGS)
    shown = frame_with(at, "time", "level", "engine", "message")
    assert list(shown.loc[shown["message"] == "at a known time", "time"]) == [KNOWN_LOCAL]


# ---------------------------------------------------------------------------------------- logs


def test_a_long_log_message_is_reachable_whole():
    long = "the provider answered: " + " ".join(f"word{n}" for n in range(400)) + " END"
    append_log(log_line("a short line"))
    append_log(log_line(long, level="WARNING"))
    at = monitor(TAB_LOGS)
    [table] = [df for df in at.dataframe if "message" in df.value.columns]
    config = json.loads(table.proto.columns)
    assert config["message"]["width"] == "large" and list(table.proto.column_order)[:4] == [
        "time", "level", "engine", "message"]
    seq = dict(zip(table.value["message"], table.value["seq"]))
    assert table.value["message"].str.len().max() > 3000  # the table holds the whole text, not a cut one
    for message in (long, "a short line"):
        at.selectbox(key="monitor_log_line").set_value(int(seq[message])).run()
        assert not at.exception
        assert [c.value for c in at.code] == [message]  # whole, however long
