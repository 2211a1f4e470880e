"""Shoal's metrics as a real Prometheus sees them (Debian's `prometheus` package, which scripts/test.sh
installs when root): the scrape example in deploy/ is a valid configuration, the /metrics page passes
`promtool check metrics` (Prometheus's own naming and format lint), and a Prometheus server started
here scrapes a worker's endpoint and answers queries over its series, histograms included."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from core.console import metrics_server
from core.infra.models import LlmCall, Run
from core.llm.instruments import observe_call
from tests.conftest import wait_for
from tests.console.test_metrics_server import free_port
from tests.support import end_process, skip_or_fail

ROOT = Path(__file__).resolve().parents[2]


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        skip_or_fail(f"{name} not found (Debian package prometheus)")
    return found


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The app runtime serving /metrics on a free port, with a run and two recorded LLM calls."""
    from core.runtime import build_runtime

    metrics_server.stop()
    port = free_port()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prom.db'}")
    monkeypatch.setenv("SHOAL_METRICS_PORT", str(port))
    rt = build_runtime(console_log=False)
    with rt.db.session() as s:
        s.add(Run(id="r-prom", status="completed", trace_id="r-prom"))
        s.add(LlmCall(run_id="r-prom", role="QUERY_ENGINE", model="gpt-4o-mini", provider="api.openai.com",
                      node="FirstSearchNode", input_tokens=120, output_tokens=40, latency_ms=850.0, ttft_ms=300.0))
        s.add(LlmCall(run_id="r-prom", role="QUERY_ENGINE", model="gpt-4o-mini", provider="api.openai.com",
                      node="FirstSummaryNode", input_tokens=900, output_tokens=300, latency_ms=2400.0,
                      status="error", error_kind="parse"))
    # what the client does when it records a call; a role of this test's own, as the histograms are the process's
    observe_call("PROM_TEST", "gpt-4o-mini", 850.0, 300.0)
    observe_call("PROM_TEST", "gpt-4o-mini", 2400.0, None)
    try:
        yield port
    finally:
        rt.close(timeout=5)
        metrics_server.stop()


def test_the_scrape_example_is_a_valid_prometheus_configuration():
    promtool = _binary("promtool")
    out = subprocess.run([promtool, "check", "config", str(ROOT / "deploy" / "prometheus.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_metrics_page_passes_promtools_lint(served):
    promtool = _binary("promtool")
    page = urllib.request.urlopen(f"http://127.0.0.1:{served}/metrics", timeout=30).read()
    assert b"shoal_up 1.0" in page
    out = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True, timeout=60)
    # promtool prints one line per problem (e.g. a gauge named *_count) and exits non-zero
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), \
        (out.stdout + out.stderr).decode("utf-8", "replace")


def _query(base: str, expr: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_a_real_prometheus_scrapes_the_endpoint_and_answers_queries(served, tmp_path):
    prometheus = _binary("prometheus")
    web = free_port()
    config = tmp_path / "prometheus.yml"
    # The deploy/ example with this test's port and a one-second interval.
    text = (ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8")
    text = text.replace("scrape_interval: 15s", "scrape_interval: 1s").replace("scrape_timeout: 10s",
                                                                               "scrape_timeout: 1s")
    text = text.replace('"localhost:9464"', f'"127.0.0.1:{served}"')
    config.write_text(text, encoding="utf-8")
    for rules in (ROOT / "deploy").glob("*.yml"):  # rule_files are read relative to the configuration
        if rules.name != "prometheus.yml":
            shutil.copy(rules, tmp_path / rules.name)
    proc = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{web}"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
    base = f"http://127.0.0.1:{web}"

    def answers(expr: str) -> list[dict]:
        try:
            return _query(base, expr)
        except OSError:
            return []  # not listening yet

    try:
        wait_for(lambda: proc.poll() is not None or answers('up{job="shoal",shoal_process="app"} == 1'),
                 timeout=120, what="Prometheus to scrape the app's endpoint")
        assert proc.poll() is None, (tmp_path / "prometheus.log").read_text(errors="replace")[-3000:]
        [up] = answers('shoal_up{shoal_process="app"}')
        assert up["value"][1] == "1"
        # the worker target in the example is not running: Prometheus says so, the app's target is up
        wait_for(lambda: answers('up{job="shoal",shoal_process="worker"} == 0'), timeout=60,
                 what="Prometheus to report the worker target down")
        # the example alert rules were loaded with the configuration
        with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=10) as resp:
            groups = json.loads(resp.read())["data"]["groups"]
        assert "ShoalRunMostlyNegative" in {r["name"] for g in groups for r in g["rules"]}, groups
        runs = answers('shoal_runs{status="completed"}')
        assert [r["value"][1] for r in runs] == ["1"]
        # the latency histogram's buckets aggregate in PromQL: half the calls took at most 2.5 s
        wait_for(lambda: answers('histogram_quantile(0.5, sum by (le) (shoal_llm_latency_seconds_bucket{role="PROM_TEST"}))'),
                 timeout=60, what="the latency histogram in Prometheus")
        [median] = answers('histogram_quantile(0.5, sum by (le) (shoal_llm_latency_seconds_bucket{role="PROM_TEST"}))')
        assert 0 < float(median["value"][1]) <= 2.5, median
    finally:
        end_process(proc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
