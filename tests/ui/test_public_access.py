"""Safe by default in public (issue 12): every control action, through AppTest, for a visitor on
localhost and for one elsewhere, with and without the admin password; a base URL that changes
loses its key; runs per session are limited; the server-path import is opt-in.

AppTest sends no request, so the visitor is set with tests.pagetest.visit_as (fresh_runtime makes
it LOCAL); one test keeps the real st.context reader to show that no request means not local.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui.access
from core.work.runs import jobs_of, list_runs
from core.work.probe import probe_jobs
from ui.runtime import get_runtime, reload_runtime
from tests.pagetest import READ_REQUEST, REMOTE, fresh_runtime, values, visit_as  # noqa: F401 - fresh_runtime is autouse
from tests.test_report import make_run

ROOT = Path(__file__).resolve().parents[2]
PAGE = {name: ROOT / "pages" / f"{name}.py" for name in
        ("1_Query_Engine", "4_Forum", "5_Report", "6_Monitor", "7_Data", "8_Settings")}
PAGE["Home"] = ROOT / "Home.py"
TIMEOUT = 60
PASSWORD = "open-sesame-42"
EXPLAINED = "no admin password is set"


def render(name: str, at: AppTest | None = None, **state) -> AppTest:
    at = at or AppTest.from_file(str(PAGE[name]), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def explained(at: AppTest) -> bool:
    return any(EXPLAINED in i.value and "SHOAL_ADMIN_PASSWORD" in i.value for i in at.info)


def labels(at: AppTest) -> set[str]:
    return {b.label for b in at.button} | {b.label for b in at.form_submit_button}


@pytest.fixture
def remote(monkeypatch):
    visit_as(monkeypatch, REMOTE)


@pytest.fixture
def password(monkeypatch):
    monkeypatch.setenv("SHOAL_ADMIN_PASSWORD", PASSWORD)
    reload_runtime()


def env_file() -> Path:
    return Path(os.environ["SHOAL_ENV_FILE"])


def start_on_home(at: AppTest, topic: str) -> AppTest:
    [topic_box] = [w for w in at.text_input if w.label == "Topic"]
    topic_box.input(topic)
    at.checkbox[0].check()  # offline: no LLM, no search
    next(b for b in at.form_submit_button if b.label == "Start").click()
    return render("Home", at)


# ---------------------------------------------------------------------------------------- who has control


def test_no_request_at_all_is_not_a_local_visitor(monkeypatch):
    """The real st.context reader: AppTest sends no request, which must not count as localhost."""
    monkeypatch.setattr(ui.access, "request_visitor", READ_REQUEST)
    at = render("8_Settings")
    assert not at.form and explained(at)


def test_settings_are_off_for_a_remote_visitor_without_a_password(remote):
    at = render("8_Settings")
    assert not at.form and explained(at)
    assert not [w for w in at.text_input if "Admin password" in w.label]


def test_settings_ask_a_remote_visitor_for_the_password(remote, password):
    at = render("8_Settings")
    assert not at.form and not explained(at)
    at.text_input(key="settings_pw").input("wrong")
    render("8_Settings", at)
    assert not at.form and values(at.error) == ["Wrong admin password."]
    at.text_input(key="settings_pw").input(PASSWORD)
    render("8_Settings", at)
    assert len(at.form) == 1 and not at.error


def test_a_local_visitor_without_a_password_has_control():
    at = render("8_Settings")
    assert len(at.form) == 1 and not explained(at)


def test_retry_connecting_is_a_control_action(monkeypatch):
    """With the database down, the page offers to rebuild the runtime: to a visitor with control only."""
    monkeypatch.setenv("DATABASE_URL", "mysql+pymysql://shoal:x@127.0.0.1:1/shoal")  # nothing listens on port 1
    reload_runtime()
    assert not get_runtime().db.ok
    assert "Retry connecting" in labels(render("Home"))
    visit_as(monkeypatch, REMOTE)
    assert "Retry connecting" not in labels(render("Home"))


def test_home_start_is_off_for_a_remote_visitor(remote):
    at = render("Home")
    assert next(b for b in at.form_submit_button if b.label == "Start").disabled and explained(at)
    assert list_runs(get_runtime().db) == []


def test_home_start_waits_for_the_password(remote, password):
    at = render("Home")
    assert next(b for b in at.form_submit_button if b.label == "Start").disabled and not explained(at)
    at.text_input(key="start_pw").input(PASSWORD)
    render("Home", at)
    assert not next(b for b in at.form_submit_button if b.label == "Start").disabled  # unlocked for the session
    start_on_home(at, "公开部署测试")
    assert any("queued" in s for s in values(at.success)), values(at.success)
    [run] = list_runs(get_runtime().db)
    get_runtime().supervisor.wait_run(run.id, 60)


def test_monitor_cancel_resume_and_self_test_are_off_for_a_remote_visitor(remote):
    rt = get_runtime()
    run_id = rt.supervisor.submit_run(probe_jobs(1, 1, 0.01), kind="probe", topic="remote probe")
    assert rt.supervisor.wait_run(run_id, 30) == "completed"
    at = render("6_Monitor", monitor_tab="Runs & jobs")
    assert at.selectbox(key="monitor_run").value == run_id
    assert not {"Cancel run", "Resume run"} & labels(at) and explained(at)
    assert next(b for b in at.button if b.label == "Start self-test").disabled


def test_alert_rules_are_off_for_a_remote_visitor(remote):
    at = render("6_Monitor", monitor_tab="Alerts")
    assert at.button(key="monitor_rules_save").disabled and explained(at)


def test_data_imports_are_off_for_a_remote_visitor(remote):
    at = render("7_Data")
    assert not {"Generate demo data", "Import file", "Import"} & labels(at)
    assert not at.file_uploader and explained(at)


def test_data_imports_open_with_the_password_for_a_remote_visitor(remote, password):
    at = render("7_Data")
    assert not at.file_uploader
    at.text_input(key="data_pw").input(PASSWORD)
    render("7_Data", at)
    assert at.button(key="demo_generate").label == "Generate demo data" and at.file_uploader


def test_forum_import_is_off_for_a_remote_visitor(remote):
    at = render("4_Forum")
    assert "Import" not in labels(at) and not at.file_uploader and explained(at)


def test_report_generation_is_off_for_a_remote_visitor(remote):
    make_run(get_runtime().db)
    at = render("5_Report")
    assert next(b for b in at.button if b.label == "Generate").disabled and explained(at)


def test_engine_stop_and_rerun_are_off_for_a_remote_visitor(remote):
    make_run(get_runtime().db)
    at = render("1_Query_Engine")
    assert at.button(key="query_rerun").disabled and at.button(key="query_stop").disabled and explained(at)


def test_engine_rerun_waits_for_the_password(remote, password):
    rt = get_runtime()
    run_id = make_run(rt.db)
    before = len(jobs_of(rt.db, run_id))
    at = render("1_Query_Engine")
    assert at.button(key="query_rerun").disabled
    at.text_input(key="query_controls_pw").input(PASSWORD)
    render("1_Query_Engine", at)
    assert not at.button(key="query_rerun").disabled
    at.button(key="query_rerun").click()
    render("1_Query_Engine", at)
    assert len(jobs_of(rt.db, run_id)) == before + 1
    rt.supervisor.wait_run(run_id, 60)


def test_monitor_self_test_waits_for_the_password(remote, password):
    at = render("6_Monitor", monitor_tab="Runs & jobs")
    assert next(b for b in at.button if b.label == "Start self-test").disabled
    at.text_input(key="probe_pw").input(PASSWORD)
    render("6_Monitor", at)
    next(b for b in at.button if b.label == "Start self-test").click()
    render("6_Monitor", at)
    [run] = list_runs(get_runtime().db)
    assert run.kind == "probe" and get_runtime().supervisor.wait_run(run.id, 60) == "completed"


# ---------------------------------------------------------------------------------------- base URL and key


def _settings_with_key():
    env_file().write_text('QUERY_ENGINE_API_KEY="sk-owner-key-0001"\nQUERY_ENGINE_BASE_URL="https://api.owner.example/v1"\n',
                          encoding="utf-8")
    reload_runtime()
    return render("8_Settings")


def save(at: AppTest) -> AppTest:
    next(b for b in at.form_submit_button if b.label == "Save to .env").click()
    return render("8_Settings", at)


def test_changing_a_base_url_clears_its_key():
    at = _settings_with_key()
    at.text_input(key="set_QUERY_ENGINE_BASE_URL").input("https://collector.attacker.example/v1")
    save(at)
    assert not at.error, values(at.error)
    text = env_file().read_text(encoding="utf-8")
    assert "sk-owner-key-0001" not in text and "collector.attacker.example" in text
    settings = get_runtime().settings
    assert settings["QUERY_ENGINE_API_KEY"] == "" and settings["QUERY_ENGINE_BASE_URL"].startswith("https://collector")
    assert any("QUERY_ENGINE_API_KEY was cleared because QUERY_ENGINE_BASE_URL changed" in s for s in values(at.success))
    assert at.text_input(key="set_QUERY_ENGINE_API_KEY").label == "API key · `QUERY_ENGINE_API_KEY` — not set"


def test_a_key_entered_again_with_the_new_base_url_is_kept():
    at = _settings_with_key()
    at.text_input(key="set_QUERY_ENGINE_BASE_URL").input("https://api.other.example/v1")
    at.text_input(key="set_QUERY_ENGINE_API_KEY").input("sk-other-key-0002")
    save(at)
    assert not at.error, values(at.error)
    settings = get_runtime().settings
    assert settings["QUERY_ENGINE_API_KEY"] == "sk-other-key-0002"
    assert settings["QUERY_ENGINE_BASE_URL"] == "https://api.other.example/v1"


def test_a_base_url_cannot_move_away_from_a_key_set_in_the_environment(monkeypatch):
    monkeypatch.setenv("QUERY_ENGINE_API_KEY", "sk-env-key-0003")
    reload_runtime()
    at = render("8_Settings")
    at.text_input(key="set_QUERY_ENGINE_BASE_URL").input("https://collector.attacker.example/v1")
    save(at)
    assert any("QUERY_ENGINE_BASE_URL cannot change here" in e for e in values(at.error)), values(at.error)
    assert not env_file().exists() and get_runtime().settings["QUERY_ENGINE_BASE_URL"] == ""


# ---------------------------------------------------------------------------------------- run limit


def test_runs_started_per_session_are_limited(monkeypatch):
    monkeypatch.setenv("SHOAL_RUNS_PER_SESSION_PER_HOUR", "2")
    reload_runtime()
    rt = get_runtime()
    at = render("Home")
    start_on_home(at, "")  # a refused topic does not count against the limit
    assert at.error and not list_runs(rt.db)
    for i in range(2):
        start_on_home(at, f"限流测试{i}")
        assert not at.error, values(at.error)
    assert len(list_runs(rt.db)) == 2
    start_on_home(at, "限流测试3")
    assert len(list_runs(rt.db)) == 2
    assert any("SHOAL_RUNS_PER_SESSION_PER_HOUR" in e and "Try again in about" in e for e in values(at.error)), \
        values(at.error)
    # Another session has its own count.
    other = start_on_home(render("Home"), "限流测试4")
    assert not other.error and len(list_runs(rt.db)) == 3
    for run in list_runs(rt.db):
        rt.supervisor.wait_run(run.id, 60)
