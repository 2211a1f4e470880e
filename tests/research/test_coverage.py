"""Coverage before writing: a topic the data does not cover ends insufficient_data, with no report
unless the analyst asks for one, which then opens with a coverage banner."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.analysis import analyse_anyway, start_analysis
from core.infra.config import load_settings
from core.corpus.importers import import_records
from core.work.jobs import COMPLETED, INSUFFICIENT_DATA
from core.report import latest_report, list_reports, wait_report
from core.research.coverage import Coverage
from core.work.runs import get_run, jobs_of
from core.supervisor import Supervisor
from core.runtime import build_handlers
from tests.conftest import fast_config, wait_for

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]


def records():
    on = [{"platform": p, "post_id": f"jay{i}", "content": f"周杰伦演唱会第{i}场，全场大合唱晴天", "likes": i}
          for i, p in enumerate(["weibo", "weibo", "douyin", "zhihu", "tieba"])]
    off = [{"platform": "weibo", "post_id": f"ev{i}", "content": f"新能源汽车价格战第{i}轮，海南车展降价", "likes": 9000}
           for i in range(30)]
    return on + off


@pytest.fixture
def sup(db, events, monkeypatch):
    monkeypatch.setenv("SHOAL_MIN_SOURCES", "20")
    import_records(db, records(), source="test")
    settings = load_settings()
    s = Supervisor(db, events, fast_config(max_workers=4), handlers=build_handlers())
    s.settings = settings
    s.start()
    yield s
    s.shutdown(5)


def test_coverage_counts_matching_posts_per_platform_and_says_what_to_do():
    c = Coverage(5, {"weibo": 2, "douyin": 1}, threshold=20, corpus_total=35)
    assert not c.sufficient and c.as_dict()["sufficient"] is False
    assert Coverage.from_dict(c.as_dict()) == c
    assert "5" in c.message(True) and "20" in c.message(True) and "import" in c.message(True)
    assert "SHOAL_MIN_SOURCES" in c.message(False) and "TAVILY_API_KEY" in c.message(False)
    assert Coverage(20, threshold=20).sufficient


def test_an_uncovered_topic_ends_insufficient_data_without_a_report(sup, db):
    run_id = start_analysis(sup, sup.settings, "台风摩羯登陆海南", paragraphs=2, reflections=0, offline=True)
    assert sup.wait_run(run_id, 60) == INSUFFICIENT_DATA
    run = get_run(db, run_id)
    cov = run.params["coverage"]
    # 海南 alone (in the car posts) is far below half of the topic's weight: nothing matches
    assert (cov["matching_posts"], cov["sufficient"], cov["threshold"]) == (0, False, 20)
    assert "0 条与主题相关" in run.error
    assert list_reports(db, run_id) == [] and latest_report(db, run_id) is None
    wait_for(lambda: all(j.status in ("completed", "cancelled") for j in jobs_of(db, run_id)), what="jobs settle")
    assert {j.kind: j.status for j in jobs_of(db, run_id)} == {
        "coverage": COMPLETED, "query": "cancelled", "media": "cancelled", "insight": "cancelled"}


def test_a_thinly_covered_topic_stops_but_can_be_written_anyway_with_a_banner(sup, db):
    run_id = start_analysis(sup, sup.settings, "周杰伦演唱会", paragraphs=2, reflections=0, offline=True)
    assert sup.wait_run(run_id, 60) == INSUFFICIENT_DATA
    wait_for(lambda: all(j.status in ("completed", "cancelled") for j in jobs_of(db, run_id)), what="jobs settle")
    cov = get_run(db, run_id).params["coverage"]
    assert cov["matching_posts"] == 5 and cov["by_platform"] == {"weibo": 2, "douyin": 1, "zhihu": 1, "tieba": 1}
    report_id = analyse_anyway(sup, run_id)
    view = wait_report(db, report_id, 120)
    assert view.status == "completed"
    assert sup.wait_run(run_id, 60) == COMPLETED and get_run(db, run_id).params["force_report"] is True
    doc = json.loads(Path(view.json_path).read_text(encoding="utf-8"))
    assert doc["report"]["topic"] == "周杰伦演唱会"
    assert "数据覆盖不足" in Path(view.html_path).read_text(encoding="utf-8")


def test_force_report_at_start_writes_the_report(sup, db):
    run_id = start_analysis(sup, sup.settings, "周杰伦演唱会", paragraphs=2, reflections=0, offline=True,
                            force_report=True)
    assert sup.wait_run(run_id, 120) == COMPLETED
    assert latest_report(db, run_id, completed=True) is not None


def test_nothing_to_write_from_is_refused_even_when_asked(sup, db):
    run_id = start_analysis(sup, sup.settings, "量子计算机商用突破", paragraphs=2, reflections=0, offline=True,
                            force_report=True)
    assert sup.wait_run(run_id, 60) == INSUFFICIENT_DATA
    with pytest.raises(ValueError, match="nothing"):
        analyse_anyway(sup, run_id)


def test_run_command_reports_coverage_and_exits_non_zero(tmp_path):
    env = {k: v for k, v in os.environ.items()}
    env.update(SHOAL_MIN_SOURCES="20", PYTHONPATH=str(ROOT))
    data = tmp_path / "posts.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records()), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "core", "data", "import", str(data)], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=150)
    proc = subprocess.run([sys.executable, "-m", "core", "run", "台风摩羯登陆海南", "--offline", "--json",
                           "--paragraphs", "2", "--reflections", "0"], cwd=ROOT, env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=150)
    assert proc.returncode == 4, proc.stderr  # core.work.outcomes.EXIT_INSUFFICIENT_DATA
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "insufficient_data" and out["report"] is None
    assert out["coverage"]["matching_posts"] == 0 and out["coverage"]["sufficient"] is False
    assert "SHOAL_MIN_SOURCES" in out["message"] or "少于" in out["message"]
