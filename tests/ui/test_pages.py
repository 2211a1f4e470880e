"""Every page through Streamlit's AppTest: renders, tells the truth, degrades instead of crashing.

Pages share one runtime per process (`ui.runtime.get_runtime`, an `st.cache_resource`), so the
autouse fixture below rebuilds it around each test: each test's isolated SHOAL_* directories and
DATABASE_URL then take effect, and no supervisor thread outlives its test.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.infra.models import Post
from core.work.probe import probe_jobs
from core.work.runs import get_run, jobs_of, list_runs
from ui.runtime import get_runtime, reload_runtime
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "Home.py"
# pages/0_Start.py is Home's page: it runs through Home.py's menu (its links name the other pages as the
# entry script sees them), so it is tested as Home.py
PAGES = {p.name: p for p in sorted((ROOT / "pages").glob("*.py")) if p.name != "0_Start.py"}
TITLES = {
    "Home.py": "Shoal",
    "1_Query_Engine.py": "Query engine",
    "2_Media_Engine.py": "Media engine",
    "3_Insight_Engine.py": "Insight engine",
    "4_Forum.py": "Forum",
    "5_Report.py": "Report",
    "6_Monitor.py": "Monitor",
    "7_Data.py": "Data",
    "8_Settings.py": "Settings",
}
ENGINE_KINDS = ("query", "media", "insight")
TIMEOUT = 30


def page(name: str) -> AppTest:
    path = HOME if name == "Home.py" else PAGES[name]
    return AppTest.from_file(str(path), default_timeout=TIMEOUT)


def render(name: str) -> AppTest:
    at = page(name).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> list[str]:
    """Everything a user could read or the browser receives: element protos and widget values."""
    out = []
    for node in at:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for attr in ("value", "label", "help", "placeholder", "body"):
            try:
                v = getattr(node, attr)
            except Exception:  # noqa: BLE001 - not every node has every attribute
                continue
            if v is not None and not callable(v):
                out.append(str(v))
    return out


def page_text(at: AppTest) -> str:
    return "\n".join(texts(at))


def recent_runs_frame(at: AppTest):
    """Home's Recent runs table (the live events table may come after it)."""
    return next(d.value for d in at.dataframe if {"run", "problems"} <= set(d.value.columns))


def probe_run(topic: str = "pages probe") -> str:
    rt = get_runtime()
    assert rt.supervisor is not None, rt.problems
    run_id = rt.supervisor.submit_run(probe_jobs(2, 2, 0.01), kind="probe", topic=topic)
    assert rt.supervisor.wait_run(run_id, 30) == "completed"
    return run_id


# ---------------------------------------------------------------------------------------- every page


def test_page_list_is_complete():
    # DESIGN §3: one file per page; a page added later must also be added to TITLES (and so be tested).
    assert set(PAGES) == set(TITLES) - {"Home.py"}


@pytest.mark.parametrize("name", ["Home.py", *PAGES])
def test_every_page_renders_with_its_title(name):
    at = render(name)
    assert len(at.title) == 1
    assert TITLES[name] in at.title[0].value
    assert not at.error, values(at.error)  # a healthy default install shows no error anywhere


# ---------------------------------------------------------------------------------------- Home


def test_home_offers_every_engine_and_start_is_enabled():
    # the composition root registers every engine's handler: no page asks whether one exists
    at = render("Home.py")
    start = [b for b in at.button if b.label == "Start"]
    assert len(start) == 1 and not start[0].disabled
    engines = [m for m in at.multiselect if m.label == "Engines"]
    assert len(engines) == 1 and engines[0].value == list(ENGINE_KINDS)


def test_home_shows_health_checks():
    at = render("Home.py")
    md = values(at.markdown)
    database = [m for m in md if "**database**" in m]
    assert len(database) == 1 and "ok" in database[0] and "sqlite" in database[0], md
    for check in ("settings", "logs", "disk", "llm", "search"):
        assert any(f"**{check}**" in m for m in md), (check, md)
    assert any(c.startswith("Supervisor ") and "jobs running" in c for c in values(at.caption))


def test_home_shows_a_completed_probe_run_in_current_and_recent_runs():
    at = render("Home.py")
    assert values(at.caption).count("No runs yet.") == 2  # current run and recent runs
    run_id = probe_run("home probe topic")
    at.run()
    assert not at.exception
    current = [m for m in values(at.markdown) if run_id in m]
    assert len(current) == 1 and "completed" in current[0] and "home probe topic" in current[0], values(at.markdown)
    jobs = [m for m in values(at.markdown) if m.startswith("**probe-")]
    assert len(jobs) == 2 and all("completed" in m for m in jobs)
    assert len(at.get("progress")) == 2
    assert "No runs yet." not in values(at.caption)
    recent = recent_runs_frame(at)
    assert list(recent["run"]) == [run_id] and list(recent["status"]) == ["completed"]


def test_home_says_why_a_run_is_degraded_and_how_to_fix_it():
    from datetime import timedelta

    from core.infra.models import Run, utcnow

    rt = get_runtime()
    degraded = [{"reason": "llm_unauthorized", "engine": "query", "role": "QUERY_ENGINE", "count": 9},
                {"reason": "search_failed", "engine": "media", "count": 2}]
    now = utcnow()
    with rt.db.session() as s:
        s.add(Run(id="rfailed000001", kind="analysis", topic="报告失败", status="report_failed", trace_id="t",
                  error="RuntimeError: the disk is full", params={}, created_at=now - timedelta(minutes=1),
                  finished_at=now))
        s.add(Run(id="rdegraded0001", kind="analysis", topic="降级", status="completed_degraded", trace_id="t",
                  error="degraded: llm_unauthorized, search_failed", params={"degraded": degraded},
                  created_at=now, finished_at=now))
    at = render("Home.py")
    warnings = values(at.warning)
    assert any("The QUERY_ENGINE key was rejected" in w and "QUERY_ENGINE_API_KEY" in w and "Settings" in w
               and "BOCHA_WEB_SEARCH_API_KEY" in w for w in warnings), warnings
    recent = recent_runs_frame(at)
    problems = dict(zip(recent["run"], recent["problems"]))
    assert problems["rdegraded0001"] == "LLM key rejected (query), search failed (media)"
    assert problems["rfailed000001"] == "report failed"

    at = page("5_Report.py")
    at.session_state["report_run"] = "rfailed000001"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("the disk is full" in w and "python -m core report rfailed000001" in w for w in values(at.warning))
    assert not next(b for b in at.button if b.label == "Generate").disabled  # the retry


# ---------------------------------------------------------------------------------------- Monitor
# The Monitor page opens one tab at a time (st.tabs with on_change="rerun"): the overview first,
# another by its label in session state. tests/ui/test_monitor_page.py covers every tab.


def monitor(tab: str | None = None) -> AppTest:
    at = page("6_Monitor.py")
    if tab is not None:
        at.session_state["monitor_tab"] = tab
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["monitor_tab"] == (tab or "overview")  # the open tab's id, whatever the language
    return at


def test_monitor_without_runs_says_so():
    at = monitor()
    assert at.metric[0].label == "Supervisor" and at.metric[0].value == "running"
    assert not [s for s in at.selectbox if s.key == "monitor_run"]
    at = monitor("runs")
    assert "No runs yet." in values(at.caption)
    assert not [s for s in at.selectbox if s.key == "monitor_run"]
    assert not [b for b in at.button if b.label in ("Cancel run", "Resume run")]


def test_monitor_lists_a_run_with_its_jobs_and_controls():
    run_id = probe_run("monitor probe")
    at = monitor("runs")
    picker = at.selectbox(key="monitor_run")
    assert picker.value == run_id
    assert any(run_id in m and "completed" in m for m in values(at.markdown))
    jobs = [df.value for df in at.dataframe if "attempt" in df.value.columns]
    assert len(jobs) == 1
    assert sorted(jobs[0]["job"]) == ["probe-1", "probe-2"] and set(jobs[0]["status"]) == {"completed"}
    buttons = {b.label: b for b in at.button}
    assert "Cancel run" in buttons and "Resume run" in buttons
    assert buttons["Cancel run"].disabled  # a completed run cannot be cancelled
    assert buttons["Resume run"].disabled  # ... nor resumed


def test_monitor_cancels_and_resumes_the_selected_run():
    rt = get_runtime()
    run_id = rt.supervisor.submit_run(probe_jobs(1, 400, 0.05), kind="probe", topic="long probe")
    deadline = time.monotonic() + 15
    while get_run(rt.db, run_id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    at = monitor("runs")
    assert at.selectbox(key="monitor_run").value == run_id
    cancel = next(b for b in at.button if b.label == "Cancel run")
    assert not cancel.disabled and next(b for b in at.button if b.label == "Resume run").disabled
    cancel.click().run()
    assert not at.exception
    assert get_run(rt.db, run_id).status == "cancelled"
    assert any(run_id in m and "cancelled" in m for m in values(at.markdown))
    resume = next(b for b in at.button if b.label == "Resume run")
    assert not resume.disabled and next(b for b in at.button if b.label == "Cancel run").disabled
    resume.click().run()
    assert not at.exception
    assert get_run(rt.db, run_id).status in ("queued", "running")
    assert rt.supervisor.cancel_run(run_id) == "cancelled"


def test_monitor_self_test_queues_a_probe_run():
    at = monitor("runs")
    rt = get_runtime()
    assert list_runs(rt.db) == []
    at.number_input[0].set_value(1)
    at.number_input[1].set_value(1)
    at.number_input[2].set_value(0.0)
    [start] = [b for b in at.button if b.label == "Start self-test"]
    start.click().run()
    assert not at.exception
    runs = list_runs(rt.db)
    assert len(runs) == 1 and runs[0].kind == "probe"
    assert [j.name for j in jobs_of(rt.db, runs[0].id)] == ["probe-1"]
    assert any(runs[0].id in s and "queued" in s for s in values(at.success)), values(at.success)
    assert rt.supervisor.wait_run(runs[0].id, 30) == "completed"


# ---------------------------------------------------------------------------------------- Data


def test_data_page_counts_posts():
    at = render("7_Data.py")
    assert at.metric[0].label == "Posts in the corpus" and at.metric[0].value == "0"
    assert "The corpus is empty." in values(at.caption)
    with get_runtime().db.session() as s:
        s.add_all([Post(platform="weibo", post_id="1", content="一", source="import"),
                   Post(platform="weibo", post_id="2", content="二", source="import")])
    at.run()
    assert not at.exception
    assert at.metric[0].value == "2"
    table = at.dataframe[0].value
    assert list(table["posts"]) == [2] and list(table["platform"]) == ["weibo"]


# ---------------------------------------------------------------------------------------- live events


def event_feed_script():
    from ui.widgets import render_event_feed

    render_event_feed("k")


def feed_app() -> AppTest:
    return AppTest.from_function(event_feed_script, default_timeout=TIMEOUT)


def test_event_feed_shows_new_events_and_keeps_its_cursor_in_session_state():
    rt = get_runtime()
    at = feed_app().run()
    assert not at.exception
    feed = at.session_state["k"]
    start = feed.cursor
    assert start == rt.events.latest_id()
    ids = [rt.events.emit("test.ping", source="test", payload={"n": n}, wait=True) for n in range(3)]
    assert ids == sorted(ids) and ids[0] > start
    at.run()
    assert not at.exception
    feed = at.session_state["k"]
    assert feed.cursor == rt.events.latest_id() >= ids[-1]
    shown = at.dataframe[0].value
    assert set(ids) <= set(shown["id"]) and list(shown["id"])[0] == feed.cursor  # newest first
    assert sorted(shown.loc[shown["type"] == "test.ping", "detail"]) == ["n=0", "n=1", "n=2"]
    assert f"cursor {feed.cursor}" in at.caption[-1].value


def test_event_feed_reads_only_new_events_with_a_long_history(monkeypatch):
    rt = get_runtime()
    with rt.db.session() as s:
        for n in range(1000):
            rt.events.emit("test.old", source="test", payload={"n": n}, session=s)
    newest = rt.events.latest_id()
    at = feed_app().run()
    assert not at.exception
    feed = at.session_state["k"]
    assert feed.cursor == newest
    assert len(feed.buffer) == 20  # a short backlog, not the whole history

    calls = []
    real_since = rt.events.since

    def counting_since(cursor=0, **kwargs):
        out = real_since(cursor, **kwargs)
        calls.append((cursor, len(out[0])))
        return out

    monkeypatch.setattr(rt.events, "since", counting_since)
    polls = feed.polls
    at.run()
    assert not at.exception
    feed = at.session_state["k"]
    assert calls == [(newest, 0)]  # one read, from the cursor, returning nothing
    assert feed.polls == polls + 1 and feed.cursor == newest

    # A burst larger than the buffer: the cursor follows it and the buffer stays bounded.
    with rt.db.session() as s:
        last = [rt.events.emit("test.burst", source="test", payload={"n": n}, session=s) for n in range(300)][-1]
    calls.clear()
    at.run()
    assert not at.exception
    feed = at.session_state["k"]
    assert calls == [(newest, 300)]
    assert feed.cursor == last and len(feed.buffer) == feed.maxlen == 200
    assert feed.buffer[-1].id == last and feed.buffer[0].id == last - 199
    assert len(at.dataframe[0].value) == 200


def test_event_feed_without_database_says_so(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "notaurl")
    at = feed_app().run()
    assert not at.exception
    assert "No events: the database is unavailable." in values(at.caption)
    assert "k" not in at.session_state


# ---------------------------------------------------------------------------------------- Settings

SECRET = "sk-test-SECRETVALUE123"


def env_file() -> Path:
    return Path(os.environ["SHOAL_ENV_FILE"])


def settings_page() -> AppTest:
    return render("8_Settings.py")


def save(at: AppTest) -> AppTest:
    [button] = [b for b in at.form_submit_button if b.key == "settings_save"]
    assert button.label == "Save to .env"
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_settings_lists_bettafish_compatible_keys():
    at = settings_page()
    keys = {w.key for kind in (at.text_input, at.number_input, at.selectbox, at.toggle) for w in kind}
    for key in ("QUERY_ENGINE_API_KEY", "QUERY_ENGINE_BASE_URL", "QUERY_ENGINE_MODEL_NAME",
                "MEDIA_ENGINE_API_KEY", "INSIGHT_ENGINE_API_KEY", "REPORT_ENGINE_API_KEY", "FORUM_HOST_API_KEY",
                "KEYWORD_OPTIMIZER_API_KEY", "TAVILY_API_KEY", "BOCHA_WEB_SEARCH_API_KEY", "DATABASE_URL",
                "SHOAL_MAX_WORKERS", "SHOAL_MODE", "SHOAL_AUTO_RESUME"):
        assert f"set_{key}" in keys, key
    # Where the process lives is not editable from the page.
    assert "set_SHOAL_DATA_DIR" not in keys and "set_SHOAL_LOG_DIR" not in keys
    secret_input = at.text_input(key="set_QUERY_ENGINE_API_KEY")
    assert secret_input.label == "API key · `QUERY_ENGINE_API_KEY` — not set" and secret_input.value == ""


def widget_and_next(at: AppTest, key: str):
    """A widget and the element drawn right after it (where its error belongs)."""
    nodes = [n for n in at if getattr(n, "type", "") not in ("", "block")]
    i = next(i for i, n in enumerate(nodes) if getattr(n, "key", None) == key)
    return nodes[i], nodes[i + 1]


@pytest.mark.parametrize("existing", [None, 'SHOAL_PARAGRAPHS="3"\n# keep me\n'])
def test_settings_rejects_an_invalid_value_and_writes_nothing(existing):
    if existing is not None:
        env_file().write_text(existing, encoding="utf-8")
    at = settings_page()
    at.text_input(key="set_SHOAL_LOG_ROTATION").input("abc")
    at.number_input(key="set_SHOAL_MAX_WORKERS").set_value(4)  # a valid change beside it is not saved either
    save(at)
    errors = values(at.error)
    assert len(errors) == 1 and "SHOAL_LOG_ROTATION" in errors[0] and "size" in errors[0], errors
    field, after = widget_and_next(at, "set_SHOAL_LOG_ROTATION")
    assert field.value == "abc" and after.type == "error" and after.value == errors[0]  # at the field, kept
    assert at.number_input(key="set_SHOAL_MAX_WORKERS").value == 4
    assert not at.success
    if existing is None:
        assert not env_file().exists()
    else:
        assert env_file().read_text(encoding="utf-8") == existing


def test_settings_saves_a_valid_value_and_restarts_the_runtime():
    assert get_runtime().settings["SHOAL_MAX_WORKERS"] == 8
    at = settings_page()
    at.number_input(key="set_SHOAL_MAX_WORKERS").set_value(4)
    save(at)
    assert not at.error, values(at.error)
    assert env_file().read_text(encoding="utf-8") == 'SHOAL_MAX_WORKERS="4"\n'
    assert [s.value for s in at.success] == ["Saved 1 setting(s): SHOAL_MAX_WORKERS. Restarted the runtime."]
    rt = get_runtime()
    assert rt.settings["SHOAL_MAX_WORKERS"] == 4 and rt.settings.source("SHOAL_MAX_WORKERS") == ".env"
    assert rt.supervisor is not None and rt.supervisor.status().max_workers == 4
    assert at.number_input(key="set_SHOAL_MAX_WORKERS").value == 4
    # The flash is shown once.
    at.run()
    assert not at.success


def test_settings_saves_a_secret_and_never_shows_it_back():
    at = settings_page()
    at.text_input(key="set_QUERY_ENGINE_API_KEY").input(SECRET)
    save(at)
    assert not at.error, values(at.error)
    assert f'QUERY_ENGINE_API_KEY="{SECRET}"' in env_file().read_text(encoding="utf-8")
    assert any("QUERY_ENGINE_API_KEY" in s.value for s in at.success)
    assert at.text_input(key="set_QUERY_ENGINE_API_KEY").label == "API key · `QUERY_ENGINE_API_KEY` — set (from .env)"
    assert at.text_input(key="set_QUERY_ENGINE_API_KEY").value == ""
    assert get_runtime().settings["QUERY_ENGINE_API_KEY"] == SECRET
    assert SECRET not in page_text(at)
    for name in ["Home.py", *PAGES]:  # nowhere else either
        assert SECRET not in page_text(render(name)), name


def test_settings_form_is_locked_behind_the_admin_password(monkeypatch):
    monkeypatch.setenv("SHOAL_ADMIN_PASSWORD", "open-sesame-42")
    at = settings_page()
    assert not at.form and not at.form_submit_button
    [pw] = at.text_input
    assert "Admin password" in pw.label
    pw.input("wrong").run()
    assert not at.exception and not at.form
    assert values(at.error) == ["Wrong admin password."]
    at.text_input[0].input("open-sesame-42").run()
    assert not at.exception and not at.error
    assert len(at.form) == 1 and at.number_input(key="set_SHOAL_MAX_WORKERS").value == 8
    # The session stays unlocked; the password field goes away and the password is not echoed anywhere.
    at.run()
    assert not at.exception and len(at.form) == 1
    assert not [w for w in at.text_input if w.key == "settings_pw"]
    assert (at.text_input(key="set_SHOAL_ADMIN_PASSWORD").label
            == "Admin password · `SHOAL_ADMIN_PASSWORD` — set (from the environment)")
    assert "open-sesame-42" not in page_text(at)


# ---------------------------------------------------------------------------------------- degraded


@pytest.mark.parametrize("url,needle", [("mysql+pymysql://u:pw@127.0.0.1:1/db", "127.0.0.1"),
                                        ("notaurl", "not a valid SQLAlchemy URL")])
def test_every_page_opens_degraded_with_one_clear_error(monkeypatch, url, needle):
    monkeypatch.setenv("DATABASE_URL", url)
    for name in ["Home.py", *PAGES]:
        at = render(name)
        assert TITLES[name] in at.title[0].value
        errors = values(at.error)
        assert len(errors) == 1, (name, errors)
        assert "DATABASE_URL" in errors[0] or "database" in errors[0], (name, errors)
        assert needle in errors[0], (name, errors)
        text = page_text(at)
        assert ":pw@" not in text and not re.search(r"\bpw\b", text), name
        assert not [w.value for w in at.warning if needle in w.value], name  # said once, not twice
        assert [b for b in at.button if b.label == "Retry connecting"], name


def test_every_page_opens_with_one_clear_message_for_a_wrong_setting(monkeypatch):
    monkeypatch.setenv("SHOAL_MAX_WORKERS", "abc")
    for name in ["Home.py", *PAGES]:
        at = render(name)
        assert TITLES[name] in at.title[0].value
        errors = values(at.error)
        assert len(errors) == 1 and "SHOAL_MAX_WORKERS must be an integer" in errors[0], (name, errors)
        assert not [w.value for w in at.warning if "SHOAL_MAX_WORKERS" in w.value], name
    assert get_runtime().supervisor.status().max_workers == 8  # the default stands in


def test_the_runtime_problem_banner_is_in_the_readers_language(monkeypatch, tmp_path):
    from tests.support.screen import english_leaks

    monkeypatch.setenv("SHOAL_MAX_WORKERS", "abc")
    (tmp_path / "rules.json").write_text("{not json", encoding="utf-8")
    monkeypatch.setenv("SHOAL_ALERT_RULES", str(tmp_path / "rules.json"))
    reload_runtime()
    for name in ["Home.py", "6_Monitor.py"]:
        at = page(name)
        at.session_state["shoal_lang"] = "zh"
        at.run()
        errors = values(at.error)
        assert any("SHOAL_MAX_WORKERS" in e and "整数" in e for e in errors), (name, errors)
        assert any(e.startswith("告警规则：") for e in errors), (name, errors)
        assert english_leaks(at) == [], name
    assert any("alert rules: " in p for p in get_runtime().problem_texts)  # the command line's English


def test_home_says_when_the_data_does_not_cover_the_topic_and_offers_to_write_anyway(monkeypatch):
    from core.analysis import start_analysis
    from core.corpus.importers import import_records

    monkeypatch.setenv("SHOAL_MIN_SOURCES", "20")
    rt = get_runtime()
    rt.settings.values["SHOAL_MIN_SOURCES"] = 20
    import_records(rt.db, [{"platform": "weibo", "post_id": f"j{i}", "content": f"周杰伦新歌第{i}首"} for i in range(4)])
    run_id = start_analysis(rt.supervisor, rt.settings, "周杰伦新歌", paragraphs=1, reflections=0, offline=True)
    assert rt.supervisor.wait_run(run_id, 60) == "insufficient_data"
    at = render("Home.py")
    assert any("Coverage: 4 posts about the topic (weibo 4)" in c and "needed 20" in c for c in values(at.caption)), \
        values(at.caption)
    assert any("4 of the 4 posts in the local corpus match the topic" in w.value for w in at.warning), \
        values(at.warning)  # in the reader's language (English here; tests/ui/test_home.py reads it in Chinese)
    anyway = [b for b in at.button if b.label == "Write a report anyway"]
    assert len(anyway) == 1
    anyway[0].click().run()
    assert not at.exception
    assert get_run(rt.db, run_id).params["force_report"] is True
