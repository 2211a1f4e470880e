"""Text core produces for later display is a typed Msg, shown in the reader's language (issue 13): run
problems (core.work.outcomes), coverage notices (core.research.coverage), health checks
(core.console.health) and job messages, which say how a job ended once it has (core.work.ledger)."""
from __future__ import annotations

import re

import pytest

from core.console.health import check_llm, check_settings, run_checks
from core.i18n import Msg
from core.infra.config import load_settings
from core.research.coverage import Coverage
from core.work import outcomes
from core.work.jobs import JobSpec, decode_message, encode_message, ended_message
from core.work.runs import get_job_summary, job_summaries
from core.work.states import JobState, RunState
from tests.conftest import wait_for

CJK = re.compile(r"[\u4e00-\u9fff]")


def both(msg: Msg) -> tuple[str, str]:
    en, zh = msg.render("en"), msg.render("zh")
    assert "⟦" not in en and "⟦" not in zh, (en, zh)
    assert not CJK.search(en) and CJK.search(zh), (en, zh)
    return en, zh


# ---------------------------------------------------------------------------------------- outcomes

@pytest.mark.parametrize("reason", outcomes.REASONS)
def test_every_problem_reads_in_both_languages_with_its_fix(reason):
    en, zh = both(outcomes.describe_msg({"reason": reason, "engine": "query", "role": "QUERY_ENGINE", "count": 3}))
    assert en == outcomes.describe({"reason": reason, "engine": "query", "role": "QUERY_ENGINE", "count": 3})
    assert reason not in en and reason not in zh  # plain words, not the code
    if reason.startswith("llm_") and reason != "llm_failed":
        assert "QUERY_ENGINE" in zh  # the setting to fix is named in either language


def test_a_failed_report_says_the_engines_work_is_intact_in_both_languages():
    [msg] = outcomes.problem_msgs(RunState.REPORT_FAILED, {}, "OSError: disk full", "abc123")
    en, zh = both(msg)
    assert "disk full" in en and "disk full" in zh
    assert "python -m core report abc123" in en and "python -m core report abc123" in zh
    assert outcomes.run_problems(RunState.REPORT_FAILED, {}, "OSError: disk full", "abc123") == [en]


def test_counts_read_naturally():
    one = outcomes.describe_msg({"reason": "llm_unauthorized", "engine": "media", "count": 1})
    assert "1 call of the Media engine" in one.render("en") and "1 次调用" in one.render("zh")
    assert "failed once" in outcomes.describe({"reason": "search_failed", "engine": "media", "count": 1})


# ---------------------------------------------------------------------------------------- coverage

def test_coverage_notice_and_banner_in_both_languages():
    c = Coverage(5, {"weibo": 3, "douyin": 2}, threshold=20, corpus_total=35, web_searched=True, web_results=0,
                 web_errors=("tavily: HTTP 401",))
    en, zh = both(c.notice())
    assert "5 of the 35 posts" in en and "(weibo 3, douyin 2)" in en and "tavily: HTTP 401" in en
    assert "本地语料库 35 条中有 5 条" in zh and "（weibo 3、douyin 2）" in zh and "tavily: HTTP 401" in zh
    assert "20" in en and "20" in zh and c.message(False) == en and c.message("zh") == zh == c.message(True)
    banner_en, banner_zh = both(c.banner_msg())
    assert banner_en.startswith("Insufficient coverage") and banner_zh.startswith("数据覆盖不足")
    assert c.banner("en") == banner_en and c.banner(True) == banner_zh


def test_coverage_without_platforms_or_web_says_only_what_it_has():
    en = Coverage(0, threshold=20, corpus_total=0).message("en")
    assert "0 of the 0 posts in the local corpus match the topic, fewer" in en and "web" not in en.split("fewer")[0]


# ---------------------------------------------------------------------------------------- health

def test_health_checks_carry_their_text_in_both_languages(db):
    settings = load_settings()
    for r in run_checks(settings, db):
        assert r.msg is not None and r.detail == r.msg.render("en")
        both(r.msg)
        assert "⟦" not in r.label.render("zh") and "⟦" not in r.label.render("en")
        assert "msg" not in r.as_dict()  # doctor --json keeps its shape
    settings.values["SHOAL_MODE"] = "offline"
    assert "SHOAL_MODE=offline" in check_llm(settings).msg.render("zh")
    settings.errors["SHOAL_MAX_WORKERS"] = "SHOAL_MAX_WORKERS must be an integer"
    bad = check_settings(settings)
    assert bad.detail == "SHOAL_MAX_WORKERS must be an integer" and "设置有误" in bad.msg.render("zh")


# ---------------------------------------------------------------------------------------- job messages

def test_a_job_message_is_stored_as_a_msg_and_read_back_as_one():
    msg = Msg("job.msg_skipped_run_ended", {"status": Msg("status.insufficient_data")})
    assert decode_message(encode_message(msg)) == msg
    assert decode_message(encode_message("plain text, an older row")) == "plain text, an older row"
    assert decode_message('{"key": broken') == '{"key": broken'
    assert decode_message(None) == ""
    assert msg.render("en") == "not run: the run ended (insufficient data)"


def test_how_a_job_ended_in_every_terminal_state():
    plan = {"structure": [{"index": i} for i in range(3)],
            "paragraphs": {str(i): {"summary": "s"} for i in range(3)}}
    half = {**plan, "paragraphs": {"0": {"summary": "s"}, "1": {"summary": ""}}}
    cases = [
        (ended_message(JobState.COMPLETED), "completed"),
        (ended_message(JobState.FAILED, error="RuntimeError: boom"), "failed: RuntimeError: boom"),
        (ended_message(JobState.FAILED, reason="gave up after 3 attempts"),
         "failed: interrupted 3 times, so it was given up"),
        (ended_message(JobState.CANCELLED, checkpoint=plan), "cancelled after finishing all 3 paragraphs"),
        (ended_message(JobState.CANCELLED, checkpoint=half), "cancelled after 1 of 3 paragraphs"),
        (ended_message(JobState.CANCELLED, reason="user"), "cancelled"),
        (ended_message(JobState.CANCELLED, reason="an upstream job did not complete"),
         "not run: a job it needed failed or was cancelled"),
        (ended_message(JobState.CANCELLED, reason="cancel timeout: the job did not stop in time; abandoned"),
         "cancelled: it did not stop in time and was abandoned"),
        (ended_message(JobState.CANCELLED, reason=RunState.INSUFFICIENT_DATA),
         "not run: the run ended (insufficient data)"),
        (ended_message(JobState.INTERRUPTED), "interrupted: its process stopped; it can resume from its checkpoint"),
    ]
    for msg, english in cases:
        assert msg.render("en") == english
        both(msg)


def test_a_finished_job_says_how_it_finished_not_what_it_was_doing(make_supervisor, db):
    sup = make_supervisor()
    run_id = sup.submit_run(JobSpec(kind="probe", name=f"p{i}", params={"steps": 2, "step_seconds": 0.01})
                            for i in range(2))
    assert sup.wait_run(run_id, 30) == RunState.COMPLETED
    assert [j.message for j in job_summaries(db, run_id)] == [Msg("job.msg_completed")] * 2

    failing = sup.submit_run([JobSpec(kind="probe", name="bad", params={"steps": 3, "fail_at": 1,
                                                                        "step_seconds": 0.01}, max_attempts=1),
                              JobSpec(kind="probe", name="after", depends_on=("bad",))])
    assert sup.wait_run(failing, 30) == RunState.FAILED
    by_name = {j.name: j for j in job_summaries(db, failing)}
    bad, after = by_name["bad"], by_name["after"]
    assert bad.message.key == "job.msg_failed" and "probe asked to fail at step 1" in bad.message.render("zh")
    assert after.message == Msg("job.msg_skipped_upstream")

    slow = sup.submit_run([JobSpec(kind="probe", name="slow", params={"steps": 10_000, "step_seconds": 0.01})])
    job_id = f"{slow}-slow"
    wait_for(lambda: (j := get_job_summary(db, job_id)) and j.message != "" and j.status == JobState.RUNNING,
             what="the probe to heartbeat")
    assert get_job_summary(db, job_id).message.key == "job.probe_step"  # what it is doing, while it does
    assert sup.cancel_run(slow) == RunState.CANCELLED
    job = get_job_summary(db, job_id)
    assert job.status == JobState.CANCELLED and job.message == Msg("job.msg_cancelled")
    assert job.as_dict()["message"] == "cancelled"  # the English form, for the command line
