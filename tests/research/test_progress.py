"""The typed view of an engine job's progress (core.research.results.EngineProgress), built from
what a real offline engine run wrote: its checkpoint, its result and its stored sources."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from core.analysis import start_analysis
from core.infra.config import load_settings
from core.infra.models import Job
from core.research.results import EngineProgress, load_engine_progress, stored_sources
from core.work.jobs import COMPLETED
from core.work.runs import get_job, get_job_summary
from tests.research.test_engine import TOPIC, corpus, make_sup  # noqa: F401 - corpus is a fixture

pytestmark = pytest.mark.timeout(180)


def test_engine_progress_reads_a_real_checkpoint_result_and_sources(corpus, events, monkeypatch):
    settings = load_settings()
    sup = make_sup(corpus, events, settings)
    try:
        run_id = start_analysis(sup, settings, TOPIC, engines="query", paragraphs=2, reflections=1, offline=True)
        assert sup.wait_run(run_id, 120) == COMPLETED
    finally:
        sup.shutdown(5)
    job = get_job(corpus, f"{run_id}-query")
    cp, result = job.checkpoint, job.result

    view = load_engine_progress(corpus, job.id, "query")
    assert [(p.index, p.title) for p in view.paragraphs] == [(p["index"], p["title"]) for p in cp["structure"]]
    states = [cp["paragraphs"][str(p["index"])] for p in cp["structure"]]
    assert [p.summary for p in view.paragraphs] == [s["summary"] for s in states] and all(states)
    assert [p.reflections for p in view.paragraphs] == [s["reflections_done"] for s in states]
    assert [p.n_sources for p in view.paragraphs] == [len(s["sources"]) for s in states]
    assert [p.stage for p in view.paragraphs] == ["done", "done"]
    assert view.report_md == result["report_md"] and "离线分析" in view.report_md
    stored = stored_sources(corpus, job.id, cp)
    assert len(view.sources) == result["n_sources"] == len(stored) > 0
    assert [(s.n, s.document.doc_id) for s in view.sources] == [(s.n, s.document.doc_id) for s in stored]
    # the stamp it was read at is the job's: every checkpoint write counted. Saves queued while a
    # write is in flight become one write (core.research.write_behind), so how many writes a run
    # makes depends on timing; at least one (the last state) always is.
    summary = get_job_summary(corpus, job.id)
    assert view.stamp == summary.stamp == (COMPLETED, 1, summary.checkpoint_seq) and summary.checkpoint_seq >= 1
    assert load_engine_progress(corpus, "no-such-job") is None

    # The same checkpoint as it stood mid-run: no result yet, the second paragraph summarised but
    # not reflected on, a third not yet searched, a failed search.
    mid = dict(cp, search_errors=["tavily(x): timeout"], report_md=None)
    mid["paragraphs"] = {"0": states[0], "1": dict(states[1], done=False)}
    mid["structure"] = cp["structure"] + [{"index": 2, "title": "第三段", "brief": ""}]
    early = EngineProgress.from_job(mid, None, "query", stored[:1], stamp=("running", 1, 3))
    assert [p.stage for p in early.paragraphs] == ["done", "summarised", "searching"]
    assert early.paragraphs[2] == EngineProgress.from_job(mid, None).paragraphs[2]
    assert (early.paragraphs[2].summary, early.paragraphs[2].n_sources) == ("", 0)
    assert early.report_md == "" and early.search_errors == ("tavily(x): timeout",)
    assert len(early.sources) == 1 and early.stamp == ("running", 1, 3)
    # a result's search errors and report win over the checkpoint's; junk in either is tolerated
    assert EngineProgress.from_job({"report_md": "cp", "search_errors": ["a"]},
                                   {"report_md": "done", "search_errors": ["b"]}).report_md == "done"
    junk = EngineProgress.from_job({"structure": [1, {"title": 5}], "paragraphs": []}, "junk")
    assert [(p.index, p.title, p.stage) for p in junk.paragraphs] == [(0, "5", "searching")]

    # Read again with the view of an earlier read (fewer sources, an older stamp): the same view,
    # and of the stored sources only those numbered above the kept ones are read; a view from another
    # attempt is not trusted.
    import core.work.checkpoints as checkpoints

    reads, real_read = [], checkpoints.read_items
    monkeypatch.setattr(checkpoints, "read_items", lambda *a, **k: reads.append(k) or real_read(*a, **k))
    earlier = EngineProgress(view.paragraphs[:1], "", (), view.sources[:1], (job.status, 1, 1))
    assert load_engine_progress(corpus, job.id, "query", known=earlier) == view
    assert reads == [{"upto": len(stored), "after": 1}]
    other_attempt = EngineProgress(sources=view.sources[:1], stamp=(job.status, 2, 1))
    assert load_engine_progress(corpus, job.id, "query", known=other_attempt) == view
    assert reads[-1] == {"upto": len(stored), "after": 0}
    assert stored_sources(corpus, job.id, cp, after=len(stored)) == [] and len(reads) == 2

    # A checkpoint write counts in the stamp; a status change with the same checkpoint does too.
    with corpus.session() as s:
        s.execute(update(Job).where(Job.id == job.id).values(checkpoint_seq=Job.checkpoint_seq + 1))
    assert get_job_summary(corpus, job.id).stamp != view.stamp
