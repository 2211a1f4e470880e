"""Per-run LLM totals on Home and on each engine page: an unknown model is 'unpriced', never $0."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.infra.models import Job, LlmCall, Run, utcnow
from ui.runtime import get_runtime, reload_runtime
from tests.pagetest import fresh_runtime  # noqa: F401 - fresh_runtime is an autouse fixture

ROOT = Path(__file__).resolve().parents[2]


def _run_with_calls():
    rt = get_runtime()
    with rt.db.session() as s:
        s.add(Run(id="r-usage", kind="analysis", topic="价格战", status="completed", mode="llm", params={},
                  trace_id="t1", created_at=utcnow(), started_at=utcnow(), finished_at=utcnow()))
        s.flush()
        s.add(Job(id="r-usage-media", run_id="r-usage", kind="media", name="media", status="completed", checkpoint={},
                  result={"paragraphs": []}, trace_id="t1.m"))
        for model, tokens in (("gpt-4o-mini", 1000), ("my-local-model", 500)):
            s.add(LlmCall(run_id="r-usage", role="QUERY_ENGINE", model=model, node="FirstSummaryNode",
                          input_tokens=tokens, output_tokens=tokens // 2, latency_ms=100.0, status="ok", trace_id="t1"))
        s.add(LlmCall(run_id="r-usage", role="MEDIA_ENGINE", model="gpt-4o-mini", input_tokens=10, output_tokens=5,
                      latency_ms=50.0, status="error", error_kind="timeout", trace_id="t1"))
    return rt


def _captions(at):
    return [c.value for c in at.caption]


def test_home_shows_the_current_runs_totals_with_unpriced_models_named():
    _run_with_calls()
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    assert not at.exception
    line = next(c for c in _captions(at) if c.startswith("LLM usage"))
    assert "3 calls" in line and "1 errors" in line and "1,510 in" in line
    assert "unpriced" in line and "my-local-model" in line and "$0.0000" not in line


def test_the_engine_page_shows_only_its_roles_totals():
    _run_with_calls()
    at = AppTest.from_file(str(ROOT / "pages" / "2_Media_Engine.py"), default_timeout=60).run()
    assert not at.exception
    line = next(c for c in _captions(at) if c.startswith("LLM usage"))
    assert "1 calls" in line and "10 in" in line and "unpriced" not in line
