"""The budget on the pages (ui/budget_fields.py): Home's cap fields reach the run's params; the badge
on Home, the engine pages and Monitor's run view shows the spend, orange at 80 %, red once reached."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.infra.models import Event, LlmCall
from core.llm.run_budget import BUDGET_REACHED, BUDGET_WARNING
from core.work.runs import get_run, list_runs
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture
from tests.support.screen import english_leaks, untranslated_keys
from tests.ui.test_home import TOPIC, add_run, done, home, some_posts
from ui.runtime import get_runtime

ROOT = Path(__file__).resolve().parents[2]
LANGS = ("en", "zh")


def spend(run_id: str, tokens: int, *events: str) -> None:
    with get_runtime().db.session() as s:
        s.add(LlmCall(run_id=run_id, role="QUERY_ENGINE", provider="p", model="qwen2.5:3b", node="FirstSummaryNode",
                      input_tokens=tokens, output_tokens=0, latency_ms=1.0, retries=0, status="ok"))
        for type_ in events:
            s.add(Event(run_id=run_id, source="budget", type=type_, payload={}))


def test_the_caps_typed_on_home_are_the_runs():
    some_posts()
    at = home("en")
    tokens = next(n for n in at.number_input if n.label == "Token cap")
    cost = next(n for n in at.number_input if n.label == "Cost cap (USD)")
    assert tokens.value == 0 and cost.value == 0.0  # the settings' defaults: no cap
    tokens.set_value(40_000)
    cost.set_value(1.25)
    next(w for w in at.text_input if w.label == "Topic").input(TOPIC)
    next(b for b in at.form_submit_button if b.label == "Start").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [run] = [r for r in list_runs(get_runtime().db) if r.kind == "analysis"]
    assert get_run(get_runtime().db, run.id).params["budget"] == {"max_tokens": 40_000, "max_cost_usd": 1.25}


def test_the_field_defaults_come_from_the_settings(monkeypatch):
    monkeypatch.setenv("SHOAL_RUN_MAX_TOKENS", "120000")
    from ui.runtime import reload_runtime

    reload_runtime()
    at = home("en")
    assert next(n for n in at.number_input if n.label == "Token cap").value == 120_000


@pytest.mark.parametrize("lang", LANGS)
def test_the_badge_follows_the_spend_on_home(lang):
    some_posts()
    add_run("b0d9e7a1c2f3", "running", [done("coverage")], params={"budget": {"max_tokens": 10_000,
                                                                             "max_cost_usd": 0}})
    spend("b0d9e7a1c2f3", 4_000)
    at = home(lang)
    assert any({"en": "Budget: 4,000 of 10,000 tokens", "zh": "预算：4,000 / 10,000 token"}[lang] in c
               for c in values(at.caption)), values(at.caption)
    spend("b0d9e7a1c2f3", 4_500, BUDGET_WARNING)
    at.run()
    assert any({"en": "80 % spent", "zh": "已用 80 %"}[lang] in w and "8,500" in w for w in values(at.warning))
    spend("b0d9e7a1c2f3", 2_000, BUDGET_REACHED)
    at.run()
    assert any({"en": "Budget reached", "zh": "预算已用尽"}[lang] in e and "10,500" in e for e in values(at.error))
    assert untranslated_keys(at) == []
    if lang == "zh":
        assert english_leaks(at, allowed=(TOPIC, "token")) == []


def test_a_run_without_caps_shows_no_badge():
    some_posts()
    add_run("b0d9e7a1c2f4", "running", [done("coverage")])
    at = home("en")
    assert not [c for c in values(at.caption) if c.startswith("🟢")]


def test_the_engine_page_and_monitor_show_the_badge():
    some_posts()
    add_run("b0d9e7a1c2f5", "completed_degraded", [done("coverage"), done("query")],
            params={"budget": {"max_tokens": 1_000, "max_cost_usd": 0.5},
                    "degraded": [{"reason": "budget_reached", "engine": "run", "count": 2, "written": 2,
                                  "planned": 5}]})
    spend("b0d9e7a1c2f5", 1_100, BUDGET_WARNING, BUDGET_REACHED)
    for page in ("1_Query_Engine.py", "6_Monitor.py"):
        at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=30)
        at.session_state["shoal_lang"] = "en"
        at.session_state["monitor_tab"] = "runs"  # Monitor's run view
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        errors = values(at.error)
        assert any("Budget reached" in e and "1,100 of 1,000 tokens" in e and "qwen2.5:3b" in e for e in errors), \
            (page, errors)  # the cost cap cannot see an unpriced model: the badge names it
        assert any("after 2 of 5 paragraphs" in w for w in values(at.warning)), (page, values(at.warning))
