"""The /metrics page, scraped over real HTTP and read with prometheus_client's parser: the figures are
right on known data, every family is there (at zero when nothing happened), the LLM latency and time to
first token are histograms with buckets, and a source that fails never breaks a scrape."""
from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import insert

from core.console import metrics_server
from core.console.alerts import DEFAULT_RULES, AlertEngine, AlertRule
from core.console.metrics import (ERROR_KINDS, OFFLINE_MODEL, histograms_from_database, known_pairs,
                                  prometheus_text)
from core.infra import retry
from core.infra.config import LLM_ROLES, load_settings
from core.infra.db import Database
from core.infra.models import Job, LlmCall, Run
from core.llm import instruments
from core.llm.pricing import load_price_table
from core.work.states import JobState, RunState
from tests.support.prom import Page, scrape

README = Path(__file__).resolve().parents[2] / "README.md"
ODD = 'my "local"\\model\nv2'  # a label value that needs every escape of the format


@pytest.fixture
def serve():
    """serve(source) → a Page-returning scrape() of a real /metrics endpoint on a free port."""
    metrics_server.stop()

    def start(source):
        ep = metrics_server.serve_runtime(source, 0, addr="127.0.0.1")
        return lambda: scrape(ep.url)

    yield start
    metrics_server.stop()


def _source(db=None, **kw):
    return SimpleNamespace(db=db, resources=kw.get("resources"), telemetry=kw.get("telemetry"),
                           alerts=kw.get("alerts"), prices=kw.get("prices"), settings=kw.get("settings"))


def _seed(db, model: str = "gpt-4o"):
    now = datetime(2025, 1, 1, 10)
    with db.session() as s:
        for rid, status in (("r1", "completed"), ("r2", "failed"), ("r3", "completed")):
            s.add(Run(id=rid, status=status, trace_id=rid))
        s.flush()
        s.add(Job(id="j1", run_id="r1", kind="query", status="completed"))
        s.add(Job(id="j2", run_id="r2", kind="query", status="running", stalled=True))
        s.add(Job(id="j3", run_id="r1", kind="media", status="failed", stalled=True))  # ended: not stalled now
        calls = [{"ts": now, "role": "QUERY", "model": model, "input_tokens": 1000, "output_tokens": 100,
                  "latency_ms": lat, "ttft_ms": lat / 10, "status": "ok", "retries": 1, "trace_id": ""}
                 for lat in (100, 200, 300)]
        calls.append({"ts": now, "role": "QUERY", "model": model, "input_tokens": 0, "output_tokens": 0,
                      "latency_ms": 1000, "status": "error", "error_kind": "timeout", "retries": 4, "trace_id": ""})
        calls.append({"ts": now, "role": "INSIGHT", "model": ODD, "input_tokens": 50,
                      "output_tokens": 5, "latency_ms": 40, "status": "ok", "trace_id": ""})
        s.execute(insert(LlmCall), calls)


def test_the_page_on_known_data_over_http(db, monkeypatch, serve):
    _seed(db)
    monkeypatch.setattr(retry, "_counts", Counter({("llm", "rate_limit"): 3, ("search", "timeout"): 1}))
    alerts = AlertEngine([AlertRule("cpu_high", "cpu_percent", ">", 85, 0, "warning"),
                          AlertRule("mem_high", "memory_percent", ">", 90, 0, "critical")])
    alerts.evaluate(0, {"cpu_percent": 99, "memory_percent": 10})
    telemetry = SimpleNamespace(stats=lambda: SimpleNamespace(written=10, dropped=2, buffered=1))
    resources = SimpleNamespace(latest=lambda: {"cpu_percent": 99.0, "memory_percent": 40.5, "process_threads": 12,
                                                "net_sent_bps": None})
    prices = load_price_table({"gpt-4o": {"input": 2.5, "output": 10}}, include_defaults=False)
    s = serve(_source(db, resources=resources, telemetry=telemetry, alerts=alerts, prices=prices))()
    assert s.get("shoal_up") == 1 and s.get("shoal_database_up") == 1
    assert s.get("shoal_runs", status="completed") == 2 and s.get("shoal_runs", status="failed") == 1
    assert s.get("shoal_runs", status="running") == 0  # every state has a series
    assert s.get("shoal_jobs", status="running") == 1 and s.get("shoal_jobs_stalled") == 1
    q = {"role": "QUERY", "model": "gpt-4o"}
    assert s.get("shoal_llm_calls_total", status="ok", **q) == 3
    assert s.get("shoal_llm_calls_total", status="error", **q) == 1
    assert s.get("shoal_llm_tokens_total", direction="input", **q) == 3000
    assert s.get("shoal_llm_tokens_total", direction="output", **q) == 300
    assert s.get("shoal_llm_errors_total", kind="timeout", **q) == 1
    assert s.get("shoal_llm_errors_total", kind="parse", **q) == 0
    assert s.get("shoal_llm_retries_total", **q) == 7
    assert s.get("shoal_llm_cost_usd_total", model="gpt-4o") == pytest.approx((3000 * 2.5 + 300 * 10) / 1e6)
    assert not s.has("shoal_llm_cost_usd_total", model=ODD)  # unpriced: no cost series, never 0
    assert s.get("shoal_llm_unpriced_calls_total", model=ODD) == 1
    assert s.get("shoal_llm_calls_total", role="INSIGHT", model=ODD, status="ok") == 1  # escaped and back
    assert s.get("shoal_retries_total", policy="llm", kind="rate_limit") == 3
    assert s.get("shoal_retries_total", policy="llm", kind="timeout") == 0  # seeded at zero
    assert s.get("shoal_telemetry_written_total") == 10 and s.get("shoal_telemetry_dropped_total") == 2
    assert s.get("shoal_telemetry_buffered") == 1
    assert s.get("shoal_alerts_firing", alert="cpu_high", severity="warning") == 1
    assert s.get("shoal_alerts_firing", alert="mem_high", severity="critical") == 0
    assert s.get("shoal_alerts_firing_rules") == 1
    assert s.get("shoal_cpu_percent") == 99 and s.get("shoal_memory_percent") == 40.5
    assert s.get("shoal_process_threads") == 12
    assert "shoal_network_sent_bytes_per_second" in s.families  # the family is there...
    assert not s.samples("shoal_network_sent_bytes_per_second")  # ...without a made-up 0 before a rate exists
    assert all(v == 0 for v in s.samples("shoal_scrape_error").values())
    assert s.families["shoal_llm_calls"] == "counter" and s.families["shoal_runs"] == "gauge"
    assert s.families["shoal_llm_latency_seconds"] == "histogram"
    assert s.get("process_cpu_seconds_total") > 0  # CPU as a counter: rate() measures it over any interval


def test_latency_and_time_to_first_token_are_histograms_with_buckets(db, serve):
    model = f"m-{uuid.uuid4().hex[:8]}"  # the process's histograms are shared: a model of this test's own
    for lat, ttft in ((100, 10), (200, 20), (300, 30), (1000, None)):
        instruments.observe_call("QUERY", model, lat, ttft)
    s = serve(_source(db))()
    q = {"role": "QUERY", "model": model}
    assert s.get("shoal_llm_latency_seconds_bucket", le="0.1", **q) == 1
    assert s.get("shoal_llm_latency_seconds_bucket", le="0.25", **q) == 2
    assert s.get("shoal_llm_latency_seconds_bucket", le="0.5", **q) == 3
    assert s.get("shoal_llm_latency_seconds_bucket", le="1.0", **q) == 4
    assert s.get("shoal_llm_latency_seconds_bucket", le="+Inf", **q) == 4
    assert s.get("shoal_llm_latency_seconds_count", **q) == 4
    assert s.get("shoal_llm_latency_seconds_sum", **q) == pytest.approx(1.6)
    buckets = [float(dict(k)["le"]) for k in s.samples("shoal_llm_latency_seconds_bucket") if dict(k)["model"] == model]
    assert buckets == sorted(buckets) and len(buckets) == len(instruments.LATENCY_BUCKETS) + 1
    assert s.get("shoal_llm_ttft_seconds_bucket", le="0.05", **q) == 3
    assert s.get("shoal_llm_ttft_seconds_count", **q) == 3  # the call without a first token is not counted
    assert s.get("shoal_llm_ttft_seconds_sum", **q) == pytest.approx(0.06)


def test_the_one_shot_page_reads_the_histograms_from_the_recorded_calls(db):
    _seed(db, model="gpt-x")
    s = Page(prometheus_text(db, histograms=histograms_from_database(db), process=False))
    q = {"role": "QUERY", "model": "gpt-x"}
    assert s.get("shoal_llm_latency_seconds_count", **q) == 4
    assert s.get("shoal_llm_latency_seconds_bucket", le="0.25", **q) == 2
    assert s.get("shoal_llm_latency_seconds_sum", **q) == pytest.approx(1.6)
    assert s.get("shoal_llm_ttft_seconds_count", **q) == 3
    assert s.get("shoal_llm_ttft_seconds_count", role="INSIGHT", model=ODD) == 0  # did not stream
    assert not any(n.startswith("process_") for n in s.families)


def _readme_families() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Operations console and metrics"):]
    section = section[:section.index("\n## ", 4)]
    return set(re.findall(r"`(shoal_[a-z_]+)", section))


def _present(page: Page, name: str) -> bool:
    return name in page.families or (name.endswith("_total") and name[:-6] in page.families)


def test_every_family_the_readme_lists_is_present_at_zero_on_an_empty_offline_database(db, monkeypatch, serve):
    monkeypatch.setattr(retry, "_counts", Counter())
    settings = load_settings(env={"SHOAL_MODE": "offline"}, env_file=Path("/nonexistent/.env"))
    resources = SimpleNamespace(latest=lambda: {"cpu_percent": 3.0, "memory_percent": 20.0})
    s = serve(_source(db, settings=settings, alerts=AlertEngine(list(DEFAULT_RULES)), resources=resources))()
    listed = _readme_families()
    assert {"shoal_retries_total", "shoal_telemetry_dropped_total", "shoal_alerts_firing",
            "shoal_llm_latency_seconds", "shoal_llm_ttft_seconds", "shoal_llm_calls_total"} <= listed
    missing = sorted(n for n in listed if not _present(s, n))
    assert not missing, f"README lists families the page does not have: {missing}"
    assert all(v == 0 for v in s.samples("shoal_runs").values()) and len(s.samples("shoal_runs")) == len(RunState)
    assert len(s.samples("shoal_jobs")) == len(JobState) and s.get("shoal_jobs_stalled") == 0
    # An offline run has called no model: each role still has its LLM series, at zero.
    for role in LLM_ROLES:
        q = {"role": role, "model": OFFLINE_MODEL}
        assert s.get("shoal_llm_calls_total", status="ok", **q) == 0
        assert s.get("shoal_llm_tokens_total", direction="output", **q) == 0
        assert s.get("shoal_llm_errors_total", kind="parse", **q) == 0
        assert s.get("shoal_llm_retries_total", **q) == 0
        assert s.get("shoal_llm_latency_seconds_count", **q) == 0
        assert s.get("shoal_llm_ttft_seconds_bucket", le="+Inf", **q) == 0
    assert len(s.samples("shoal_llm_errors_total")) == len(LLM_ROLES) * len(ERROR_KINDS)
    assert s.get("shoal_retries_total", policy="search", kind="timeout") == 0
    assert s.get("shoal_telemetry_dropped_total") == 0 and s.get("shoal_alerts_firing_rules") == 0
    assert {dict(k)["alert"] for k in s.samples("shoal_alerts_firing")} == {r.name for r in DEFAULT_RULES}
    assert set(s.samples("shoal_alerts_firing").values()) == {0}
    assert s.get("shoal_database_up") == 1 and s.get("shoal_cpu_percent") == 3


def test_a_configured_role_is_seeded_with_its_model_and_replaces_offline_once_it_has_called(db):
    settings = load_settings(env={"QUERY_ENGINE_MODEL_NAME": "deepseek-chat",
                                  "QUERY_ENGINE_BASE_URL": "http://127.0.0.1:9/v1"}, env_file=Path("/nonexistent/.env"))
    assert ("QUERY_ENGINE", "deepseek-chat") in known_pairs(settings)
    assert ("MEDIA_ENGINE", OFFLINE_MODEL) in known_pairs(settings)
    with db.session() as s:
        s.add(LlmCall(role="MEDIA_ENGINE", model="qwen-plus", latency_ms=5, status="ok", trace_id=""))
    page = Page(prometheus_text(db, settings=settings, histograms=instruments.new_histograms(), process=False))
    assert page.get("shoal_llm_calls_total", role="QUERY_ENGINE", model="deepseek-chat", status="ok") == 0
    assert page.get("shoal_llm_calls_total", role="MEDIA_ENGINE", model="qwen-plus", status="ok") == 1
    assert not page.has("shoal_llm_calls_total", role="MEDIA_ENGINE", model=OFFLINE_MODEL, status="ok")
    assert not page.has("shoal_llm_unpriced_calls_total", model=OFFLINE_MODEL)  # the offline analyst is free


def test_a_database_outage_and_a_failing_source_never_break_a_scrape(serve):
    down = Database("sqlite://", None, "down")
    boom = SimpleNamespace(stats=lambda: 1 / 0)
    scrape_now = serve(_source(down, telemetry=boom, alerts=AlertEngine([])))
    s = scrape_now()
    assert s.get("shoal_up") == 1 and s.get("shoal_database_up") == 0
    assert s.get("shoal_scrape_error", source="database") == 1 and s.get("shoal_scrape_error", source="telemetry") == 1
    assert s.get("shoal_scrape_error", source="retries") == 0 and s.get("shoal_alerts_firing_rules") == 0
    assert "shoal_runs" in s.families and not s.samples("shoal_runs")  # present, no made-up zeros
    assert "shoal_telemetry_dropped" in s.families and not s.samples("shoal_telemetry_dropped_total")
    assert s.samples("shoal_retries_total")  # the process's own figures are still there

    class Broken:  # a database that is configured but fails mid-scrape (server gone)
        ok = True

        def session(self):
            raise ConnectionError("server has gone away")

    metrics_server.serve_runtime(_source(Broken()), 0)  # the same endpoint, another source
    s = scrape_now()
    assert s.get("shoal_database_up") == 0 and s.get("shoal_scrape_error", source="database") == 1
    assert s.get("shoal_scrape_error", source="telemetry") == 0
    metrics_server.serve_runtime(None, 0)
    s = scrape_now()
    assert s.get("shoal_up") == 1 and s.get("shoal_database_up") == 0


def test_the_llm_client_observes_every_call_it_records_in_the_histograms(db, serve):
    from core.llm.client import LlmClient, LlmError
    from core.llm.limits import ProviderLimiter
    from tests.fakes.openai_server import FakeOpenAI, FakeReply

    model = f"fake-{uuid.uuid4().hex[:8]}"
    fast = retry.RetryPolicy("llm", max_attempts=1, max_seconds=30.0, initial_wait=0.0, max_wait=0.0)
    replies = iter([FakeReply(content="hello"), FakeReply(status=400, error_message="bad request")])
    with FakeOpenAI(lambda _req: next(replies), model=model) as srv:
        settings = load_settings(env=srv.env("QUERY_ENGINE", model=model), env_file=Path("/nonexistent/.env"))
        llm = LlmClient("QUERY_ENGINE", settings, db=db, limiter=ProviderLimiter(4), policy=fast)
        llm.complete("s", "a reply")
        with pytest.raises(LlmError):
            llm.complete("s", "a rejected request")
    s = serve(_source(db))()
    q = {"role": "QUERY_ENGINE", "model": model}
    assert s.get("shoal_llm_latency_seconds_count", **q) == 2  # the failed call too
    assert s.get("shoal_llm_ttft_seconds_count", **q) == 1  # only the streamed reply had a first token
    assert s.get("shoal_llm_calls_total", status="ok", **q) == 1  # the database-backed side agrees
    assert s.get("shoal_llm_calls_total", status="error", **q) == 1


def test_a_process_without_alert_rules_counts_no_alert_and_invents_no_rule(db):
    s = Page(prometheus_text(db, histograms=instruments.new_histograms(), process=False))
    assert s.get("shoal_alerts_firing_rules") == 0
    assert "shoal_alerts_firing" in s.families and not s.samples("shoal_alerts_firing")
