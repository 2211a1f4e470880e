"""Monitor › Runs & jobs shows what the chosen run costs beside what it finds: its LLM calls, tokens,
cost and latency, and each engine's sentiment and platform mix paragraph by paragraph (Vega-Lite
charts read back from the page)."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

from core.infra.models import Job, LlmCall, Run, utcnow
from core.work.checkpoints import store_items
from ui.monitor import TAB_RUNS
from ui.runtime import get_runtime, reload_runtime
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture
from tests.ui.test_monitor_page import PAGE, TIMEOUT, chart_titled, metrics

RUN = "r-opinion"


def monitor(at: AppTest | None = None) -> AppTest:
    at = at if at is not None else AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.session_state["monitor_tab"] = TAB_RUNS
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def doc(n: int, platform: str, sentiment: float) -> dict:
    return {"doc_id": f"d{n}", "title": f"t{n}", "content": f"c{n}", "platform": platform, "sentiment": sentiment}


def seed(tmp_path, monkeypatch) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"house-model": {"input": 1.0, "output": 2.0}}), encoding="utf-8")
    monkeypatch.setenv("SHOAL_PRICE_TABLE", str(prices))
    reload_runtime()
    t = utcnow() - timedelta(minutes=5)
    # paragraph 1 retrieved a negative weibo post and a positive zhihu answer; paragraph 2 adds two
    # negative weibo posts and a neutral news article
    docs = [doc(1, "weibo", 0.02), doc(2, "zhihu", 0.98), doc(3, "weibo", 0.02), doc(4, "weibo", 0.02),
            doc(5, "news", 0.5)]
    cp = {"structure": [{"index": 0, "title": "概览"}, {"index": 1, "title": "风险"}],
          "paragraphs": {"0": {"summary": "s", "sources": [1, 2]}, "1": {"summary": "s", "sources": [3, 4, 5]}},
          "sources_stored": 5}
    db = get_runtime().db
    with db.session() as s:
        s.add(Run(id=RUN, kind="analysis", topic="价格战", status="completed", trace_id="tr", created_at=t,
                  started_at=t, finished_at=t + timedelta(seconds=30)))
        s.flush()
        s.add(Job(id=f"{RUN}-query", run_id=RUN, kind="query", name="query", status="completed", trace_id="tr.q",
                  created_at=t, started_at=t, finished_at=t + timedelta(seconds=20), checkpoint=cp, depends_on=[],
                  params={}, attempt=1))
        store_items(s, f"{RUN}-query", {"sources": list(enumerate(docs, 1))})
        s.execute(insert(LlmCall), [dict(ts=t, run_id=RUN, role="QUERY_ENGINE", model="house-model", trace_id="tr.q",
                                         input_tokens=1000, output_tokens=500, latency_ms=float(ms), status="ok")
                                    for ms in (1000, 2000, 3000)])


def test_the_runs_tab_charts_each_engines_opinion_beside_the_runs_cost_and_latency(tmp_path, monkeypatch):
    seed(tmp_path, monkeypatch)
    at = monitor()
    assert "What it costs, what it finds" in values(at.subheader)
    m = metrics(at)
    assert m["LLM calls"] == "3" and m["Tokens"] == "4,500" and m["Cost"] == "$0.0060"
    assert m["p95 latency"] == "2.9 s"
    assert any(v.startswith("**query** · 2 paragraph(s) · 5 sources, 5 scored · negative 60%")
               for v in values(at.markdown)), values(at.markdown)
    spec, [data] = chart_titled(at, "Sentiment mix · query")
    assert spec["mark"]["type"] == "area" and spec["encoding"]["color"]["field"] == "sentiment"
    after = {(r.step, r.key): round(r.share, 3) for r in data.itertuples()}
    assert (after[(1, "negative")], after[(1, "positive")], after[(1, "neutral")]) == (0.5, 0.5, 0.0)
    assert (after[(2, "negative")], after[(2, "positive")], after[(2, "neutral")]) == (0.6, 0.2, 0.2)
    _, [platforms] = chart_titled(at, "Platform mix · query")
    last = {r.platform: round(r.share, 3) for r in platforms.itertuples() if r.step == 2}
    assert last == {"weibo": 0.6, "zhihu": 0.2, "news": 0.2}


def test_a_run_without_written_paragraphs_says_so_and_still_shows_its_cost():
    db = get_runtime().db
    with db.session() as s:
        s.add(Run(id="r-empty", kind="analysis", topic="x", status="running", trace_id="t", created_at=utcnow()))
    at = monitor()
    assert "No engine has written a paragraph yet: no opinion to show." in values(at.caption)
    assert metrics(at)["LLM calls"] == "0" and metrics(at)["p95 latency"] == "—"
    assert not [s for s in values(at.subheader) if s.startswith("Sentiment")]
