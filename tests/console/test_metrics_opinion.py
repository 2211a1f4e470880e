"""Opinion telemetry for Prometheus and the alert rule: the gauges labelled by run and engine, bounded
(the newest runs only, platforms beyond the top few as "other"), read with prometheus_client's parser;
the negative-share rule fires on a mostly negative run and clears when the run's mix turns."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.console import opinion
from core.console.alerts import OPINION_RULE, AlertEngine, collect_metrics, default_rules
from core.console.metrics import prometheus_text
from core.infra.config import load_settings
from core.infra.db import Database
from core.infra.models import Job, Run
from core.llm import instruments
from core.work.checkpoints import store_items
from tests.support.prom import Page

NOW = datetime(2026, 12, 4, 10, 0, 0)
NEG, POS = 0.02, 0.98


def page(db) -> Page:
    return Page(prometheus_text(db, histograms=instruments.new_histograms(), process=False))


def add_engine(db, run_id: str, kind: str, docs: list[dict], *, created: datetime = NOW, status: str = "running",
               finished: datetime | None = None) -> None:
    cp = {"structure": [{"index": 0, "title": "p"}],
          "paragraphs": {"0": {"summary": "s", "sources": list(range(1, len(docs) + 1))}},
          "sources_stored": len(docs)}
    with db.session() as s:
        if s.get(Run, run_id) is None:
            s.add(Run(id=run_id, kind="analysis", topic="t", status=status, created_at=created, finished_at=finished))
            s.flush()
        s.add(Job(id=f"{run_id}-{kind}", run_id=run_id, kind=kind, status="running", checkpoint=cp, attempt=1))
        store_items(s, f"{run_id}-{kind}", {"sources": list(enumerate(docs, 1))})


def docs(spec: list[tuple[str, float]]) -> list[dict]:
    return [{"doc_id": f"d{i}", "title": f"t{i}", "content": f"c{i}", "platform": p, "sentiment": v}
            for i, (p, v) in enumerate(spec, 1)]


def test_the_gauges_carry_each_engines_mix_for_the_newest_runs_only(db):
    platforms = ["weibo", "weibo", "weibo", "zhihu", "zhihu", "news", "xhs", "tieba", "douyin", "bilibili"]
    add_engine(db, "new", "query", docs([(p, NEG if i < 6 else POS) for i, p in enumerate(platforms)]))
    add_engine(db, "new", "insight", docs([("weibo", 0.5)] * 4))
    for i in range(opinion.RECENT_RUNS + 1):  # older runs: only the newest RECENT_RUNS are labelled
        add_engine(db, f"old{i}", "media", docs([("douyin", POS)]), created=NOW - timedelta(hours=i + 1))
    s = page(db)
    q = {"run": "new", "engine": "query"}
    assert s.get("shoal_opinion_share", sentiment="negative", **q) == pytest.approx(0.6)
    assert s.get("shoal_opinion_share", sentiment="positive", **q) == pytest.approx(0.4)
    assert s.get("shoal_opinion_share", sentiment="neutral", **q) == 0
    assert s.get("shoal_opinion_sources", kind="retrieved", **q) == 10 and s.get("shoal_opinion_sources",
                                                                                  kind="scored", **q) == 10
    assert s.get("shoal_opinion_share", run="new", engine="insight", sentiment="neutral") == 1.0
    named = {dict(k)["platform"]: v for k, v in s.samples("shoal_platform_share").items()
             if dict(k)["run"] == "new" and dict(k)["engine"] == "query"}
    assert len(named) == opinion.TOP_PLATFORMS + 1 and named["other"] == pytest.approx(0.3)
    assert named["weibo"] == pytest.approx(0.3) and sum(named.values()) == pytest.approx(1.0)
    runs = {dict(k)["run"] for k in s.samples("shoal_opinion_share")}
    assert runs == {"new", *(f"old{i}" for i in range(opinion.RECENT_RUNS - 1))}  # bounded
    assert s.families["shoal_opinion_share"] == "gauge" and s.get("shoal_scrape_error", source="opinion") == 0


def test_the_families_are_present_without_samples_when_there_is_nothing_or_no_database(db):
    s = page(db)
    for name in ("shoal_opinion_share", "shoal_opinion_sources", "shoal_platform_share"):
        assert name in s.families and not s.samples(name)
    down = Page(prometheus_text(Database("sqlite://", None, "down"), histograms=instruments.new_histograms(),
                                process=False))
    assert "shoal_opinion_share" in down.families and not down.samples("shoal_opinion_share")
    assert down.get("shoal_database_up") == 0


def test_a_failing_opinion_read_is_its_own_scrape_error(db, monkeypatch):
    monkeypatch.setattr(opinion, "recent_opinions", lambda *a, **k: 1 / 0)
    s = page(db)
    assert s.get("shoal_scrape_error", source="opinion") == 1 and s.get("shoal_scrape_error", source="database") == 0
    assert "shoal_platform_share" in s.families and s.get("shoal_database_up") == 1


def test_the_negative_share_rule_fires_on_a_mostly_negative_run_and_clears_when_it_turns(db):
    add_engine(db, "r", "insight", docs([("weibo", NEG)] * 8 + [("weibo", POS)] * 4))
    m = collect_metrics(db, now=NOW)
    assert m["opinion_negative_share_pct"] == pytest.approx(100 * 8 / 12, abs=1e-3)
    assert m["opinion_negative_run"] == "r"
    engine = AlertEngine(default_rules(load_settings(env={}, env_file=Path("/nonexistent/.env"))))
    [fired] = engine.tick(db, now=NOW)
    assert (fired.rule, fired.state, fired.threshold) == (OPINION_RULE, "firing", 60)
    assert [a.rule for a in engine.firing()] == [OPINION_RULE]
    # the engine retrieves more, mostly positive: the run's mix turns and the alert clears
    more = docs([("weibo", NEG)] * 8 + [("weibo", POS)] * 12)
    with db.session() as s:
        job = s.get(Job, "r-insight")
        store_items(s, job.id, {"sources": list(enumerate(more, 1))[12:]})
        job.checkpoint = {**job.checkpoint, "sources_stored": 20,
                          "paragraphs": {"0": {"summary": "s", "sources": list(range(1, 21))}}}
    [cleared] = engine.tick(db, now=NOW + timedelta(seconds=15))
    assert (cleared.rule, cleared.state) == (OPINION_RULE, "cleared") and cleared.value == pytest.approx(40.0)
    assert engine.firing() == []


def test_the_threshold_comes_from_the_settings_and_zero_turns_the_rule_off(db):
    add_engine(db, "r", "query", docs([("weibo", NEG)] * 7 + [("weibo", POS)] * 3))
    strict = load_settings(env={"SHOAL_OPINION_NEGATIVE_PCT": "80"}, env_file=Path("/nonexistent/.env"))
    [rule] = [r for r in default_rules(strict) if r.name == OPINION_RULE]
    assert rule.threshold == 80 and rule.enabled
    assert AlertEngine(default_rules(strict)).tick(db, now=NOW) == []  # 70 % is not above 80 %
    off = load_settings(env={"SHOAL_OPINION_NEGATIVE_PCT": "0"}, env_file=Path("/nonexistent/.env"))
    assert not [r for r in default_rules(off) if r.name == OPINION_RULE][0].enabled
    assert AlertEngine(default_rules(off)).tick(db, now=NOW) == []
    assert [c.rule for c in AlertEngine(default_rules(None)).tick(db, now=NOW)] == [OPINION_RULE]


def test_too_few_scored_sources_raise_no_alert(db):
    add_engine(db, "small", "query", docs([("weibo", NEG)] * (opinion.MIN_SCORED - 1)))
    assert collect_metrics(db, now=NOW)["opinion_negative_share_pct"] is None
    assert AlertEngine().tick(db, now=NOW) == []
    assert collect_metrics(SimpleNamespace(session=lambda: 1 / 0), now=NOW)["opinion_negative_share_pct"] is None


# ---------------------------------------------------------------------------------------- deploy/alerts.yml

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_prometheus_rule_names_only_families_the_page_has(db):
    import re

    yaml = pytest.importorskip("yaml")
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text(encoding="utf-8"))
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {m for e in exprs for m in re.findall(r"\b(shoal_[a-z_]+)\b", e)}
    assert used == {"shoal_opinion_share", "shoal_opinion_sources"}
    assert used <= set(page(db).families)
    conf = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    assert conf["rule_files"] == ["alerts.yml"]


def test_the_example_prometheus_rule_fires_and_resolves_under_promtool(tmp_path):
    """promtool's rule unit tests: a run whose query engine is 70 % negative over 20 scored sources
    fires after a minute; one with too few scored sources never does; the alert resolves when the
    share falls."""
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    labels = 'run="r1",engine="query",shoal_process="app"'
    few = 'run="r2",engine="media",shoal_process="app"'
    (tmp_path / "test.yml").write_text(f"""
rule_files: [{ROOT / "deploy" / "alerts.yml"}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'shoal_opinion_share{{{labels},sentiment="negative"}}'
        values: '0.7 0.7 0.7 0.7 0.3 0.3'
      - series: 'shoal_opinion_sources{{{labels},kind="scored"}}'
        values: '20 20 20 20 20 20'
      - series: 'shoal_opinion_share{{{few},sentiment="negative"}}'
        values: '0.9 0.9 0.9 0.9 0.9 0.9'
      - series: 'shoal_opinion_sources{{{few},kind="scored"}}'
        values: '5 5 5 5 5 5'
    alert_rule_test:
      - eval_time: 0m
        alertname: ShoalRunMostlyNegative
        exp_alerts: []
      - eval_time: 2m
        alertname: ShoalRunMostlyNegative
        exp_alerts:
          - exp_labels: {{run: r1, engine: query, severity: warning}}
            exp_annotations:
              summary: "Run r1: the query engine's sources are 70% negative"
              description: "Open the run on Monitor › Runs & jobs to see its sentiment and platform mix paragraph by paragraph."
      - eval_time: 5m
        alertname: ShoalRunMostlyNegative
        exp_alerts: []
""", encoding="utf-8")
    done = subprocess.run([promtool, "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
