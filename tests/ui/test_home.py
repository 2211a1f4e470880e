"""Home as a person sees it (issue 13): both languages in every main state, what an ended run says and
where it leads, the first start, and a status that never goes stale."""
from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.i18n import Msg
from core.infra.models import Job, Run, utcnow
from core.work.jobs import JobSpec, encode_message
from tests.conftest import wait_for
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture
from tests.support.screen import english_leaks, untranslated_keys
from ui.runtime import get_runtime

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "新能源汽车价格战"
LANGS = ("en", "zh")


def home(lang: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
    at.session_state["shoal_lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def assert_translated(at: AppTest, lang: str, *allowed: str) -> None:
    assert untranslated_keys(at) == []
    if lang == "zh":
        assert english_leaks(at, allowed=(TOPIC, *allowed)) == []


def add_run(run_id: str, status: str, jobs: list[tuple], *, params: dict | None = None, error: str | None = None,
            minutes_ago: int = 0, kind: str = "analysis") -> None:
    """A run and its jobs as the ledger leaves them: (name, kind, status, message, error) per job. A
    running job is held by a live lease elsewhere, so this process's supervisor leaves it alone."""
    now = utcnow() - timedelta(minutes=minutes_ago)
    ended = status not in ("queued", "running", "cancelling")
    with get_runtime().db.session() as s:
        s.add(Run(id=run_id, kind=kind, topic=TOPIC, status=status, trace_id="t" + run_id, mode="offline",
                  params={"engines": ["query", "media", "insight"], **(params or {})}, error=error, created_at=now,
                  started_at=now, finished_at=now + timedelta(seconds=42) if ended else None))
        s.flush()
        for name, kind, job_status, message, job_error in jobs:
            s.add(Job(id=f"{run_id}-{name}", run_id=run_id, kind=kind, name=name, status=job_status,
                      message=encode_message(message), error=job_error, trace_id="t", created_at=now, checkpoint={},
                      progress=1.0 if job_status == "completed" else 0.4,
                      lease_owner="elsewhere" if job_status == "running" else None,
                      lease_expires_at=utcnow() + timedelta(hours=1) if job_status == "running" else None))


def done(name: str, kind: str | None = None) -> tuple:
    return (name, kind or name, "completed", Msg("job.msg_completed"), None)


def some_posts(n: int = 3) -> None:
    from core.corpus.importers import import_records

    import_records(get_runtime().db, [{"platform": "weibo", "post_id": f"p{i}", "content": f"{TOPIC}第{i}条"}
                                      for i in range(n)])


def page_links(at: AppTest) -> list[tuple[str, str]]:
    """(label, query string) of each st.page_link."""
    return [(e.proto.label, e.proto.query_string) for e in at.get("page_link")]


# ---------------------------------------------------------------------------------------- first start

@pytest.mark.parametrize("lang", LANGS)
def test_first_start_with_an_empty_corpus_offers_the_one_button(lang):
    at = home(lang)
    button = {"en": "Generate demo data", "zh": "生成演示数据"}[lang]
    assert [b.label for b in at.button if b.label == button] == [button]
    assert [e.proto.page for e in at.get("page_link")] == ["Data"]
    assert values(at.caption).count({"en": "No runs yet.", "zh": "还没有分析任务。"}[lang]) == 2
    assert_translated(at, lang)


def test_the_demo_button_starts_the_data_job_and_links_to_its_progress(monkeypatch):
    """The button hands the work to the Data page's job (core.corpus.data_jobs, stood in for here:
    this test needs only its contract, start_demo_data(supervisor, settings) -> run id)."""
    import sys
    import types

    calls = []
    fake = types.ModuleType("core.corpus.data_jobs")
    fake.start_demo_data = lambda supervisor, settings: calls.append((supervisor, settings)) or "d3m0d3m0d3m0"
    monkeypatch.setitem(sys.modules, "core.corpus.data_jobs", fake)
    at = home("zh")
    next(b for b in at.button if b.label == "生成演示数据").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(calls) == 1 and calls[0][0] is get_runtime().supervisor
    assert any("d3m0d3m0d3m0" in s for s in values(at.success)), values(at.success)
    assert [e.proto.page for e in at.get("page_link")] == ["Data"]
    assert_translated(at, "zh", "d3m0d3m0d3m0")


def test_the_demo_button_needs_control(monkeypatch):
    from tests.pagetest import REMOTE, visit_as

    visit_as(monkeypatch, REMOTE)
    at = home("en")
    assert next(b for b in at.button if b.label == "Generate demo data").disabled


def test_the_demo_panel_goes_once_the_corpus_has_posts():
    some_posts()
    at = home("en")
    assert not [b for b in at.button if b.label == "Generate demo data"]


def test_the_offline_box_shows_the_effective_mode(monkeypatch):
    # no LLM role configured: the run would be offline whatever SHOAL_MODE says, and the box says so
    at = home("en")
    assert next(c for c in at.checkbox if c.label.startswith("Offline analysis")).value is True
    assert any("offline analysis" in c for c in values(at.caption))
    rt = get_runtime()
    monkeypatch.setattr(type(rt.settings), "llm_configured", lambda self, role: True)
    at.run()
    assert next(c for c in at.checkbox if c.label.startswith("Offline analysis")).value is False
    assert any("Mode: **LLM**" in c for c in values(at.caption))
    rt.settings.values["SHOAL_MODE"] = "offline"  # configured, but offline by setting: the box follows
    at = home("en")
    assert next(c for c in at.checkbox if c.label.startswith("Offline analysis")).value is True
    assert any("SHOAL_MODE=offline" in c for c in values(at.caption))


# ---------------------------------------------------------------------------------------- each state

@pytest.mark.parametrize("lang", LANGS)
def test_a_running_run(lang):
    some_posts()
    add_run("a1b2c3d4e5f1", "running", [done("coverage"), ("query", "query", "running",
                                                                Msg("job.report_waiting", {"jobs": "host-2"}), None)])
    at = home(lang)
    line = [m for m in values(at.markdown) if "a1b2c3d4e5f1" in m]
    assert len(line) == 1 and {"en": "running", "zh": "运行中"}[lang] in line[0] and TOPIC in line[0]
    assert not at.success and not at.error  # nothing has ended yet
    progress = [str(p.proto) for p in at.get("progress")]
    assert any({"en": "report: waiting for host-2", "zh": "报告：等待 host-2"}[lang] in p for p in progress), progress
    assert_translated(at, lang)


@pytest.mark.parametrize("lang", LANGS)
def test_a_completed_run_leads_to_its_report_engines_and_forum(lang):
    some_posts()
    add_run("a1b2c3d4e5f2", "completed", [done("coverage"), done("query"), done("media"), done("insight"),
                                           done("report")])
    at = home(lang)
    assert len(at.success) == 1 and {"en": "completed", "zh": "已完成"}[lang] in at.success[0].value
    links = page_links(at)
    assert [q for _, q in links] == ["run=a1b2c3d4e5f2"] * 5
    assert [label for label, _ in links] == {
        "en": ["Report", "Query engine", "Media engine", "Insight engine", "Forum"],
        "zh": ["报告", "Query 引擎", "Media 引擎", "Insight 引擎", "论坛"]}[lang]
    assert [e.proto.page for e in at.get("page_link")] == ["Report", "Query_Engine", "Media_Engine", "Insight_Engine",
                                                          "Forum"]
    assert_translated(at, lang)


@pytest.mark.parametrize("lang", LANGS)
def test_an_insufficient_run_says_how_much_matched_and_how_to_get_more(lang):
    some_posts(4)
    coverage = {"matching_posts": 4, "by_platform": {"weibo": 4}, "web_results": 0, "threshold": 20,
                "sufficient": False, "corpus_total": 4, "web_searched": False, "web_errors": []}
    add_run("a1b2c3d4e5f3", "insufficient_data", [done("coverage")], params={"coverage": coverage},
            error="Not enough data to analyse: ...")
    at = home(lang)
    warnings = values(at.warning)
    said = {"en": "4 of the 4 posts in the local corpus match the topic", "zh": "本地语料库 4 条中有 4 条与主题相关"}[lang]
    assert any(said in w and "SHOAL_MIN_SOURCES" in w for w in warnings), warnings
    assert [b.label for b in at.button if b.label == {"en": "Write a report anyway", "zh": "仍然生成报告"}[lang]]
    assert_translated(at, lang)


@pytest.mark.parametrize("lang", LANGS)
def test_a_failed_run_says_why(lang):
    some_posts()
    add_run("a1b2c3d4e5f4", "failed", [done("coverage"),
                                        ("query", "query", "failed",
                                         Msg("job.msg_failed", {"error": "RuntimeError: the index is corrupt"}),
                                         "RuntimeError: the index is corrupt"),
                                        ("report", "report", "cancelled", Msg("job.msg_skipped_upstream"), "skipped")],
            error="jobs: cancelled, completed, failed")
    at = home(lang)
    errors = values(at.error)
    assert len(errors) == 1 and "RuntimeError: the index is corrupt" in errors[0] and "**query**" in errors[0]
    assert {"en": "failed", "zh": "失败"}[lang] in errors[0]
    assert_translated(at, lang, "RuntimeError: the index is corrupt")


@pytest.mark.parametrize("lang", LANGS)
def test_a_completed_degraded_run_says_what_fell_back_and_the_fix(lang):
    some_posts()
    degraded = [{"reason": "llm_unauthorized", "engine": "query", "role": "QUERY_ENGINE", "count": 9}]
    add_run("a1b2c3d4e5f5", "completed_degraded", [done("coverage"), done("query"), done("report")],
            params={"degraded": degraded}, error="degraded: llm_unauthorized")
    at = home(lang)
    warnings = values(at.warning)
    fix = {"en": "The QUERY_ENGINE key was rejected", "zh": "QUERY_ENGINE 的密钥被拒绝"}[lang]
    assert any(fix in w and "QUERY_ENGINE_API_KEY" in w for w in warnings), warnings
    assert len(page_links(at)) == 5
    assert_translated(at, lang)


@pytest.mark.parametrize("lang", LANGS)
def test_a_cancelled_run_says_what_each_engine_had_done(lang):
    some_posts()
    add_run("a1b2c3d4e5f6", "cancelled", [done("coverage"),
                                           ("media", "media", "cancelled", Msg("job.msg_cancelled_all", {"total": 12}),
                                            None)])
    at = home(lang)
    said = {"en": "cancelled after finishing all 12 paragraphs", "zh": "已取消（全部 12 段均已完成）"}[lang]
    assert any(said in i for i in values(at.info)), values(at.info)
    assert_translated(at, lang)


def test_a_link_opens_its_run_on_the_report_and_engine_pages():
    some_posts()
    add_run("a1b2c3d4e5f7", "completed", [done("coverage")], minutes_ago=5)
    add_run("a1b2c3d4e5f8", "completed", [done("coverage")])  # the newest: what the pickers show first
    for page, key in (("5_Report.py", "report_run"), ("1_Query_Engine.py", "query_run")):
        at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=30)
        at.query_params["run"] = "a1b2c3d4e5f7"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.session_state[key] == "a1b2c3d4e5f7", page
        assert "run" not in at.query_params  # used once: the reader's own choice holds afterwards


# ---------------------------------------------------------------------------------------- status is true

def test_recent_runs_change_within_one_refresh_when_a_run_finishes():
    """With Home open, a run finishes: one more refresh shows it in the current run and in Recent runs,
    and its job's message says how it ended."""
    rt = get_runtime()
    some_posts()
    gate = threading.Event()

    def gated(ctx):
        ctx.heartbeat(progress=0.5, message=Msg("job.report_waiting", {"jobs": "the gate"}))
        while not gate.is_set():
            ctx.sleep(0.02)
        return {"ok": True}

    rt.supervisor.handlers.register("gate", gated)
    run_id = rt.supervisor.submit_run([JobSpec(kind="gate", name="gate")], kind="analysis", topic=TOPIC)
    try:
        from core.work.runs import get_run, job_summaries

        wait_for(lambda: get_run(rt.db, run_id).status == "running"
                 and job_summaries(rt.db, run_id)[0].message != "", what="the run to start")
        at = home("en")

        def recent_status() -> str:
            frame = next(d.value for d in at.dataframe if {"run", "status"} <= set(d.value.columns))
            return dict(zip(frame["run"], frame["status"]))[run_id]

        assert recent_status() == "running"
        assert any("report: waiting for the gate" in str(p.proto) for p in at.get("progress"))
    finally:
        gate.set()
    assert rt.supervisor.wait_run(run_id, 30) == "completed"
    at.run()
    assert not at.exception
    assert recent_status() == "completed"
    current = [m for m in values(at.markdown) if run_id in m]
    assert len(current) == 1 and "completed" in current[0]
    progress = [str(p.proto) for p in at.get("progress")]
    assert any('text: "completed"' in p for p in progress) and not any("waiting" in p for p in progress), progress


def _runs_fragment():
    from ui.home_view import runs_body
    from ui.runtime import get_runtime

    runs_body(get_runtime())


def test_the_live_fragment_redraws_the_current_run_and_recent_runs_together():
    """What the 2-second refresh redraws (the fragment alone, as the browser reruns it) holds both."""
    some_posts()
    # a probe run: a script outside the app (from_function) has no pages to link to
    add_run("a1b2c3d4e5f9", "completed", [done("coverage")], kind="probe")
    at = AppTest.from_function(_runs_fragment, default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [h.value for h in at.subheader] == ["Current run", "Recent runs"]
    frame = next(d.value for d in at.dataframe if {"run", "status"} <= set(d.value.columns))
    assert list(frame["run"]) == ["a1b2c3d4e5f9"] and list(frame["status"]) == ["completed"]
