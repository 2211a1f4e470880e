"""`python -m core plan TOPIC` and `python -m core run TOPIC --plan FILE`: review the engines' paragraphs from
the command line, edit the file, run with it (in this process: main() is the same entry point)."""
from __future__ import annotations

import json

import pytest

from core.cli import main as cli_main
from core.corpus.importers import import_records
from core.runtime import build_runtime
from core.work.runs import get_job
from tests.research.test_engine import TOPIC, corpus_records

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def corpus(isolated_env):
    rt = build_runtime(start_supervisor=False, console_log=False)
    try:
        assert import_records(rt.db, corpus_records(), source="test").imported == 11
    finally:
        rt.close()


def test_plan_prints_the_paragraphs_and_run_uses_the_edited_file(corpus, isolated_env, capsys):
    assert cli_main(["plan", TOPIC, "--offline", "--engines", "query,insight", "--paragraphs", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("query (offline, ") and "\ninsight (offline, " in text and "  2. " in text

    assert cli_main(["plan", TOPIC, "--offline", "--engines", "query,insight", "--paragraphs", "2", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["topic"] == TOPIC and sorted(plan["engines"]) == ["insight", "query"]
    assert [len(v) for v in plan["engines"].values()] == [2, 2]
    assert plan["planned_by"]["query"]["mode"] == "offline" and plan["planned_by"]["query"]["sources"] > 0
    plan["engines"]["query"][0]["title"] = "官方回应与车企表态"
    plan["engines"]["query"].append({"title": "经销商的处境", "brief": "库存与客流"})
    path = isolated_env / "plan.json"
    path.write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")

    assert cli_main(["run", TOPIC, "--offline", "--engines", "query,insight", "--paragraphs", "2",
                     "--reflections", "0", "--plan", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "completed" and summary["engines"]["query"]["paragraphs"] == 3
    rt = build_runtime(start_supervisor=False, console_log=False)
    try:
        structure = get_job(rt.db, f"{summary['run_id']}-query").checkpoint["structure"]
        insight = get_job(rt.db, f"{summary['run_id']}-insight").checkpoint["structure"]
    finally:
        rt.close()
    assert [(p["title"], p["brief"]) for p in structure] == [(p["title"], p["brief"]) for p in plan["engines"]["query"]]
    assert [p["title"] for p in insight] == [p["title"] for p in plan["engines"]["insight"]]


def test_run_refuses_a_bad_plan_file_before_starting(isolated_env, capsys):
    bad = isolated_env / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert cli_main(["run", TOPIC, "--offline", "--plan", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "run: the plan file" in err and "is not JSON" in err
    assert cli_main(["run", TOPIC, "--offline", "--plan", str(isolated_env / "missing.json")]) == 2
    assert "cannot read the plan file" in capsys.readouterr().err


def test_run_refuses_a_plan_with_an_untitled_paragraph(corpus, isolated_env, capsys):
    untitled = isolated_env / "untitled.json"
    untitled.write_text(json.dumps({"engines": {"query": [{"title": "", "brief": "只有意图"}]}}), encoding="utf-8")
    assert cli_main(["run", TOPIC, "--offline", "--engines", "query", "--plan", str(untitled)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "query: paragraph 1 has an intent but no title" in captured.err
