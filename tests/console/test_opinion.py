"""Opinion telemetry (core.console.opinion): each engine's sentiment and platform mix after each
written paragraph, from a constructed checkpoint with known sources and from a real offline run; the
negative share the alert rule reads, over the runs open or ended in the window."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from core.console import opinion
from core.console.opinion import OTHER, engine_series, fold_platforms, negative_share, recent_opinions, run_opinion
from core.infra.models import ForumMessage as ForumRow
from core.infra.models import Job, Run
from core.text.sentiment import label_of
from core.work.checkpoints import store_items
from tests.research.test_engine import TOPIC, corpus, make_sup  # noqa: F401 - corpus is a fixture

NOW = datetime(2026, 12, 4, 10, 0, 0)
NEG, POS = 0.02, 0.98   # probabilities the scorer's labels put firmly negative / positive


def doc(n: int, platform: str, sentiment: float | None, text: str | None = None) -> dict:
    return {"doc_id": f"d{n}", "title": f"t{n}" if text is None else "", "content": f"c{n}" if text is None else text,
            "platform": platform,
            "sentiment": sentiment, "kind": "post"}


def checkpoint(paragraphs: dict[int, list[int]], planned: int = 3, written: set[int] | None = None) -> dict:
    written = set(paragraphs) if written is None else written
    return {"structure": [{"index": i, "title": f"第{i + 1}段"} for i in range(planned)],
            "paragraphs": {str(i): {"summary": "总结" if i in written else "", "sources": nums}
                           for i, nums in paragraphs.items()},
            "sources_stored": 6}


def add_run(db, run_id: str, docs: list[dict], cp: dict, *, kind: str = "query", status: str = "running",
            created: datetime = NOW, finished: datetime | None = None) -> None:
    with db.session() as s:
        if s.get(Run, run_id) is None:
            s.add(Run(id=run_id, kind="analysis", topic="价格战", status=status, created_at=created,
                      finished_at=finished))
            s.flush()
        s.add(Job(id=f"{run_id}-{kind}", run_id=run_id, kind=kind, status="running", checkpoint=cp, attempt=1))
        store_items(s, f"{run_id}-{kind}", {"sources": list(enumerate(docs, 1))})


DOCS = [doc(1, "weibo", NEG), doc(2, "weibo", POS), doc(3, "zhihu", NEG), doc(4, "news", 0.5),
        doc(5, "douyin", NEG), doc(6, "", None, text="   ")]


def test_the_mix_after_each_written_paragraph_counts_each_source_once(db):
    assert label_of(NEG) == "negative" and label_of(POS) == "positive" and label_of(0.5) == "neutral"
    # paragraph 0 retrieved 1, 2; paragraph 1 (not written yet) 3; paragraph 2 retrieved 2, 4, 5, 6
    add_run(db, "r1", DOCS, checkpoint({0: [1, 2], 1: [3], 2: [2, 4, 5, 6]}, written={0, 2}))
    with db.session() as s:
        s.add(ForumRow(run_id="r1", type="agent", sender="Query Engine", source="QUERY", content="x", paragraph=2,
                       trace_id="", timestamp=NOW + timedelta(seconds=30)))
    [query] = run_opinion(db, "r1").engines
    first, second = query.points
    assert (first.step, first.paragraph, first.title, first.sources, first.scored) == (1, 0, "第1段", 2, 2)
    assert (first.positive, first.neutral, first.negative) == (0.5, 0.0, 0.5)
    assert first.platforms == (("weibo", 1.0),) and first.at is None
    # after paragraph 2: sources 1, 2, 4, 5, 6 (2 once); 6 has no text and is not scored
    assert (second.step, second.paragraph, second.sources, second.scored) == (2, 2, 5, 4)
    assert (second.positive, second.neutral, second.negative) == (0.25, 0.25, 0.5)
    assert dict(second.platforms) == {"weibo": 0.4, "news": 0.2, "douyin": 0.2, "unknown": 0.2}
    assert second.at == NOW + timedelta(seconds=30)
    assert run_opinion(db, "r1").negative_share() == (0.5, 4)
    assert run_opinion(db, "r1").negative_share(min_scored=5) == (None, 4)


def test_platforms_beyond_the_top_few_fold_into_other():
    shares = [("weibo", 0.3), ("zhihu", 0.2), ("news", 0.2), ("xhs", 0.1), ("tieba", 0.1), ("douyin", 0.1)]
    folded = fold_platforms(shares, top=3)
    assert [p for p, _ in folded] == ["weibo", "news", "zhihu", OTHER]
    assert dict(folded)[OTHER] == pytest.approx(0.3) and sum(v for _, v in folded) == pytest.approx(1.0)
    assert fold_platforms(shares[:2], top=3) == (("weibo", 0.3), ("zhihu", 0.2))


def test_an_engine_without_a_written_paragraph_has_no_point_and_junk_is_tolerated():
    assert engine_series("query", {"structure": [{"index": 0}], "paragraphs": {}}, []) == ()
    assert engine_series("query", None, []) == ()
    cp = {"structure": ["junk", {"title": 5}, {"index": "x"}], "paragraphs": {"1": {"summary": "s", "sources": [1, "2", True, 99]}}}
    [p] = engine_series("query", cp, [("negative", "weibo"), (None, "zhihu")])
    assert (p.sources, p.scored, p.negative) == (2, 1, 1.0)  # 99 is not a stored source, True is no number


def test_sources_are_scored_once_and_new_ones_read_after_the_known(db, monkeypatch):
    add_run(db, "r2", DOCS[:3], checkpoint({0: [1, 2, 3]}) | {"sources_stored": 3})
    import core.research.results as results

    reads, real = [], results.stored_sources
    monkeypatch.setattr(results, "stored_sources", lambda *a, **k: reads.append(k.get("after")) or real(*a, **k))
    run_opinion(db, "r2")
    run_opinion(db, "r2")
    assert reads == [0, 3]  # the second read asks only for sources after the three it knows


def test_the_negative_share_alert_metric_reads_open_and_recently_ended_runs(db):
    negative = [doc(i, "weibo", NEG) for i in range(1, 11)] + [doc(11, "weibo", POS)]
    cp = checkpoint({0: list(range(1, 12))}) | {"sources_stored": 11}
    add_run(db, "open", negative, cp, status="running")
    add_run(db, "ended", [doc(i, "news", POS) for i in range(1, 12)], cp, status="completed",
            created=NOW - timedelta(minutes=1), finished=NOW - timedelta(seconds=30))
    share, run_id = negative_share(db, now=NOW)
    assert run_id == "open" and share == pytest.approx(100 * 10 / 11)
    assert negative_share(db, now=NOW, min_scored=12) == (None, None)  # too few scored sources to say
    with db.session() as s:
        s.get(Run, "open").status = "completed"
        s.get(Run, "open").finished_at = NOW - timedelta(hours=1)  # ended long ago: out of the window
    assert negative_share(db, now=NOW) == (0.0, "ended")
    assert [r.run_id for r in recent_opinions(db, k=1)] == ["open"]
    assert negative_share(db, now=NOW + timedelta(hours=1)) == (None, None)


def test_a_real_offline_run_gives_a_point_per_paragraph_per_engine(corpus, events):
    from core.analysis import start_analysis
    from core.infra.config import load_settings
    from core.work.jobs import COMPLETED

    settings = load_settings()
    sup = make_sup(corpus, events, settings)
    try:
        run_id = start_analysis(sup, settings, TOPIC, engines="query,insight", paragraphs=2, reflections=0,
                                offline=True)
        assert sup.wait_run(run_id, 120) == COMPLETED
    finally:
        sup.shutdown(5)
    opinion._scores.jobs.clear()
    ran = run_opinion(corpus, run_id)
    assert [e.engine for e in ran.engines] == ["query", "insight"]
    for e in ran.engines:
        assert [p.step for p in e.points] == [1, 2]
        last = e.latest
        assert last.sources > 0 and last.scored > 0
        assert last.positive + last.neutral + last.negative == pytest.approx(1.0)
        assert sum(v for _, v in last.platforms) == pytest.approx(1.0)
        assert e.points[0].sources <= last.sources  # cumulative
        assert all(p.at is not None for p in e.points)  # each paragraph's summary is in the forum
    # the host's per-engine figures (core.discussion.engine_sentiment) come from the same scorer and sources
    from core.discussion.engine_sentiment import EngineSentiment

    host = EngineSentiment(corpus)(run_id)
    for e, source in zip(ran.engines, ("QUERY", "INSIGHT")):  # every source was retrieved by a paragraph
        last, theirs = e.latest, host[source]
        assert last.scored == theirs.scored
        assert (last.positive, last.neutral, last.negative) == tuple(theirs.share(k) for k in opinion.SENTIMENTS)
