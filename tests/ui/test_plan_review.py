"""The plan review (ui/plan_review.py): each engine's planned paragraphs in an editable table, then a start
with the edited plan or without one; and the same on Home, where the run really starts with it."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.work.runs import get_run, list_runs
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture
from tests.support.screen import english_leaks, untranslated_keys
from ui.runtime import get_runtime

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "新能源汽车价格战"


def review_app():
    """The component alone, on a plan of two engines (one of which could not plan)."""
    import streamlit as st

    from core.research.plan import EnginePlan, RunPlan
    from core.research.reasoning import Paragraph
    from ui import plan_review

    if not st.session_state.get("seeded"):
        plan_review.keep(RunPlan("新能源汽车价格战", (
            EnginePlan("query", (Paragraph(0, "事件概览", "发生了什么"), Paragraph(1, "官方回应", "车企和监管的表态")),
                       "offline", "corpus", 5),
            EnginePlan("media", (), "llm", "bocha", 0, error="the LLM timed out"))))
        st.session_state["seeded"] = True
    decision = plan_review.panel(can_start=st.session_state.get("can_start", True))
    if decision is not None:
        st.session_state["decision"] = decision


def app(lang: str = "en") -> AppTest:
    at = AppTest.from_function(review_app, default_timeout=30)
    at.session_state["shoal_lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def edit(at: AppTest, engine: str, edited=None, added=(), deleted=()) -> None:
    """What the browser's editor sends: the edits to the table, keyed by row position."""
    [editor] = [e for e in at.data_editor if e.key.startswith(f"plan_review_{engine}_")]
    at.session_state[editor.key] = {"edited_rows": edited or {}, "added_rows": list(added),
                                    "deleted_rows": list(deleted)}


def test_the_review_speaks_chinese():
    at = app("zh")
    assert untranslated_keys(at) == []
    assert english_leaks(at, allowed=(TOPIC, "the LLM timed out")) == []
    assert "**「新能源汽车价格战」的段落规划**" in values(at.markdown)


def test_the_tables_show_each_engines_plan_and_why_one_has_none():
    at = app()
    [table] = at.data_editor
    assert table.editing_mode == "dynamic"
    assert table.value.to_dict("list") == {"title": ["事件概览", "官方回应"], "intent": ["发生了什么", "车企和监管的表态"]}
    assert any("could not plan (the LLM timed out)" in w for w in values(at.warning))
    assert any("offline analyst from 5 sources (local corpus)" in c for c in values(at.caption))


def test_an_edited_title_reaches_the_decision():
    at = app()
    edit(at, "query", edited={0: {"title": "老车主维权"}}, added=[{"title": "二手车保值率", "intent": "残值变化"}])
    button(at, "Start with this plan").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    plan = at.session_state["decision"].plan
    assert [e.engine for e in plan.engines] == ["query"]  # media plans itself
    (query,) = plan.engines
    assert [(p.index, p.title, p.brief) for p in query.paragraphs] == [
        (0, "老车主维权", "发生了什么"), (1, "官方回应", "车企和监管的表态"), (2, "二手车保值率", "残值变化")]


def test_a_removed_row_and_an_untitled_row():
    at = app()
    edit(at, "query", deleted=[0])
    button(at, "Start with this plan").click().run()
    assert [p.title for p in at.session_state["decision"].plan.engines[0].paragraphs] == ["官方回应"]

    at = app("zh")
    edit(at, "query", edited={1: {"title": ""}})
    button(at, "按此规划开始").click().run()
    assert "decision" not in at.session_state
    assert values(at.error) == ["query：第 2 段有意图但没有标题；请填写标题或删除该行。"]


def test_skip_starts_without_a_plan_and_discard_closes_the_review():
    at = app()
    button(at, "Start without the plan").click().run()
    assert at.session_state["decision"].plan is None

    at = app()
    button(at, "Discard the plan").click().run()
    assert not at.data_editor and "decision" not in at.session_state


def test_without_control_nothing_can_start():
    at = AppTest.from_function(review_app, default_timeout=30)
    at.session_state["can_start"] = False
    at.run()
    assert button(at, "Start with this plan").disabled and button(at, "Start without the plan").disabled


# ---------------------------------------------------------------------------------------- on Home

def some_posts() -> None:
    from tests.research.test_engine import corpus_records
    from core.corpus.importers import import_records

    import_records(get_runtime().db, corpus_records())


# English only: in Chinese, AppTest hands Home's engine picker (options shown through format_func, with
# full-width brackets) back empty on a form submit, for Start as for the review; a browser does not.
@pytest.mark.parametrize("lang", ["en"])
def test_home_reviews_the_plan_and_starts_the_run_with_the_edit(lang):
    some_posts()
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)
    at.session_state["shoal_lang"] = lang
    at.run()
    label = {"en": ("Topic", "Review the plan first", "Start with this plan"),
             "zh": ("主题", "先审阅段落规划", "按此规划开始")}[lang]
    next(w for w in at.text_input if w.label == label[0]).input(TOPIC)
    next(c for c in at.checkbox if "Offline" in c.label or "离线" in c.label).check()
    next(b for b in at.form_submit_button if b.label == label[1]).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.key.split("_")[2] for e in at.data_editor] == ["query", "media", "insight"], values(at.error)
    assert not list_runs(get_runtime().db, limit=5)  # reviewing starts nothing
    assert untranslated_keys(at) == []
    if lang == "zh":
        assert english_leaks(at, allowed=(TOPIC,)) == []
    planned = at.data_editor[0].value["title"].tolist()
    edit(at, "query", edited={0: {"title": "老车主的维权诉求"}})
    button(at, label[2]).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not at.data_editor  # the review closed once the run started
    (run,) = list_runs(get_runtime().db, limit=5)
    params = get_run(get_runtime().db, run.id).params
    assert params["engines"] == ["query", "media", "insight"] and params["offline"] is True
    assert [p["title"] for p in params["plan"]["query"]] == ["老车主的维权诉求", *planned[1:]]
    assert [len(params["plan"][e]) for e in ("media", "insight")] == [params["paragraphs"]] * 2


def test_home_start_never_waits_for_a_review():
    some_posts()
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)
    at.run()
    next(w for w in at.text_input if w.label == "Topic").input(TOPIC)
    next(b for b in at.form_submit_button if b.label == "Start").click().run()
    assert not at.exception and not at.data_editor
    (run,) = list_runs(get_runtime().db, limit=5)
    assert "plan" not in get_run(get_runtime().db, run.id).params
