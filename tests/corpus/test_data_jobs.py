"""Demo data and imports as supervisor jobs: progress as they go, the report as their result, the
upload copy removed once read, a cancel that keeps the batches written."""
from __future__ import annotations

import io
import threading

import pytest

from core.corpus import data_jobs
from core.corpus.data_jobs import (DEMO_KIND, IMPORT_KIND, DataJobResult, data_job, latest_data_run, progress_message, save_upload,
                                   start_demo_data, start_import)
from core.corpus.demo import generate_demo_records
from core.corpus.search import corpus_summary
from core.i18n import Msg
from core.infra.config import load_settings
from core.work.jobs import HandlerInfo
from core.work.runs import get_run
from tests.conftest import wait_for
from core.work.states import JobState, RunState

CSV = ("content,platform,likes\n"
       "第一条帖子,weibo,1\n"
       "\"引号没有闭合的一行,weibo,2\n"   # line 3
       "第三条帖子,douyin,3\n"
       "第四条帖子,xhs,很多\n"            # line 5: a bad count
       "第五条帖子,zhihu,5\n")


@pytest.fixture
def settings(isolated_env):
    return load_settings()


def test_demo_job_imports_the_demo_corpus_with_progress(db, make_supervisor, settings):
    sup = make_supervisor()
    run_id = start_demo_data(sup, settings, seed=7, posts=600)
    assert sup.wait_run(run_id, 60) == RunState.COMPLETED
    assert latest_data_run(db).id == run_id and latest_data_run(db).kind == "data"
    job = data_job(db, run_id)
    expected = len(generate_demo_records(seed=7, posts=600))
    assert job.kind == DEMO_KIND and job.progress == 1.0
    assert job.result["what"] == "demo" and job.result["report"]["imported"] == expected
    assert corpus_summary(db)["demo"] == expected
    done = progress_message(job)
    assert isinstance(done, Msg) and done.key == "data.job_done" and done.args["imported"] == expected


def test_an_uploaded_file_is_imported_by_a_job_with_its_errors_by_line_and_then_deleted(db, make_supervisor,
                                                                                     settings):
    path = save_upload(io.BytesIO(CSV.encode()), settings, "../posts.csv")
    assert path.parent == data_jobs.upload_dir(settings) and path.name.endswith("-posts.csv")
    assert path.read_text(encoding="utf-8") == CSV
    sup = make_supervisor()
    run_id = start_import(sup, settings, path, name="posts.csv")
    assert sup.wait_run(run_id, 60) == RunState.COMPLETED
    result = DataJobResult.of(data_job(db, run_id))  # the stored result, typed again for the page
    assert (result.what, result.name) == ("import", "posts.csv")
    report = result.report
    assert (report.imported, report.error_count) == (3, 2)
    assert [row for row, _ in report.error_texts()] == [3, 5] and "unterminated quote" in report.error_texts()[0][1]
    assert not path.exists()  # the copy is gone once read
    assert not list(data_jobs.upload_dir(settings).iterdir())


def test_a_large_json_list_is_refused_with_the_way_out(db, make_supervisor, settings, monkeypatch):
    monkeypatch.setattr(data_jobs, "MAX_JSON_BYTES", 100)
    path = save_upload(io.BytesIO(('[' + ','.join('{"content": "一条帖子"}' for _ in range(20)) + ']').encode()),
                       settings, "posts.json")
    sup = make_supervisor()
    run_id = start_import(sup, settings, path, name="posts.json")
    assert sup.wait_run(run_id, 60) == RunState.COMPLETED
    report = data_job(db, run_id).result["report"]
    assert report["imported"] == 0 and report["errors"][0][0] == 0 and "JSONL" in report["errors"][0][1]


def test_a_cancelled_import_keeps_the_batches_written(db, make_supervisor, settings, job_handlers, monkeypatch):
    monkeypatch.setattr("core.corpus.importers.BATCH_SIZE", 100)
    first_batch, release = threading.Event(), threading.Event()
    real_say = data_jobs._say

    def say(ctx, msg, progress=None):
        real_say(ctx, msg, progress)
        if msg.key == "data.job_import_progress" and msg.args["rows"] >= 100:
            first_batch.set()
            release.wait(30)

    monkeypatch.setattr(data_jobs, "_say", say)
    # large enough that the reader's read-ahead (64 KiB sample, 8 KiB buffer) is a fraction of it
    rows = "content,platform\n" + "".join(f"第{i}条帖子{'内容' * 50},weibo\n" for i in range(2000))
    path = save_upload(io.BytesIO(rows.encode()), settings, "many.csv")
    sup = make_supervisor()
    run_id = start_import(sup, settings, path, name="many.csv")
    try:
        assert first_batch.wait(30)
        job = wait_for(lambda: (j := data_job(db, run_id)).progress > 0 and j, what="the progress written")
        assert job.status == JobState.RUNNING and 0 < job.progress < 1
        assert progress_message(job).key == "data.job_import_progress"
        cancel = threading.Thread(target=sup.cancel_run, args=(run_id, 10))
        cancel.start()
        wait_for(lambda: get_run(db, run_id).status == RunState.CANCELLING, what="the cancel requested")
    finally:
        release.set()
    cancel.join(30)
    assert sup.wait_run(run_id, 30) == RunState.CANCELLED
    assert 100 <= corpus_summary(db)["total"] < 2000
    assert not path.exists()


def test_the_import_job_says_when_its_file_is_gone(db, make_supervisor, settings, tmp_path):
    sup = make_supervisor()
    run_id = start_import(sup, settings, tmp_path / "nothing.csv", name="nothing.csv")
    assert sup.wait_run(run_id, 30) == RunState.COMPLETED
    report = data_job(db, run_id).result["report"]
    assert report["error_count"] == 1 and "upload it again" in report["errors"][0][1]


def test_the_app_registers_both_data_jobs():
    from core.runtime import build_handlers

    handlers = build_handlers()
    assert isinstance(handlers[DEMO_KIND], HandlerInfo) and isinstance(handlers[IMPORT_KIND], HandlerInfo)
