"""Where /metrics is served: by the app's runtime once per process when SHOAL_METRICS_PORT is set (a
rebuilt runtime takes the endpoint over, never binds it twice), by `python -m core worker
--metrics-port N`, and once on stdout by `python -m core metrics`. All scraped over real HTTP and read
with prometheus_client's parser."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.console import metrics_server
from core.infra.models import Run
from tests.conftest import wait_for
from tests.support.prom import Page, scrape

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_endpoint():
    metrics_server.stop()
    yield
    metrics_server.stop()


def test_the_app_runtime_serves_once_per_process_and_a_rebuilt_runtime_takes_it_over(monkeypatch, tmp_path,
                                                                                     no_endpoint):
    from core.runtime import build_runtime

    port = free_port()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'rt.db'}")
    monkeypatch.setenv("SHOAL_METRICS_PORT", str(port))
    url = f"http://127.0.0.1:{port}/metrics"
    first = build_runtime(console_log=False)
    try:
        assert metrics_server.endpoint() is not None and metrics_server.endpoint().port == port
        with first.db.session() as s:
            s.add(Run(id="r1", status="completed", trace_id="r1"))
        page = scrape(url)
        assert page.get("shoal_database_up") == 1 and page.get("shoal_runs", status="completed") == 1
        assert "shoal_alerts_firing" in page.families and page.samples("shoal_alerts_firing")  # the app's rules
    finally:
        first.close(timeout=5)
    page = scrape(url)  # between the close and the next build (Settings › reload): still answering
    assert page.get("shoal_up") == 1 and page.get("shoal_database_up") == 0
    ep = metrics_server.endpoint()
    second = build_runtime(console_log=False)  # what reload_runtime does: the same port, no second bind
    try:
        assert not [p for p in second.problem_texts if "metrics" in p], second.problem_texts
        assert metrics_server.endpoint() is ep and ep.collector.source is second
        page = scrape(url)
        assert page.get("shoal_database_up") == 1 and page.get("shoal_runs", status="completed") == 1
    finally:
        second.close(timeout=5)


def test_a_changed_port_moves_the_endpoint_and_zero_turns_it_off(monkeypatch, tmp_path, no_endpoint):
    from core.runtime import build_runtime

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'rt.db'}")
    old, new = free_port(), free_port()
    for port in (old, new):
        monkeypatch.setenv("SHOAL_METRICS_PORT", str(port))
        rt = build_runtime(console_log=False)
        try:
            assert metrics_server.endpoint().port == port and not [p for p in rt.problem_texts if "metrics" in p]
            assert scrape(f"http://127.0.0.1:{port}/metrics").get("shoal_database_up") == 1
        finally:
            rt.close(timeout=5)
    with pytest.raises(OSError):  # URLError is an OSError: nothing listens on the old port any more
        scrape(f"http://127.0.0.1:{old}/metrics", timeout=5)
    monkeypatch.setenv("SHOAL_METRICS_PORT", "0")
    rt = build_runtime(console_log=False)
    try:
        assert metrics_server.endpoint() is None
        with pytest.raises(OSError):
            scrape(f"http://127.0.0.1:{new}/metrics", timeout=5)
    finally:
        rt.close(timeout=5)


def test_a_command_runtime_does_not_serve_and_a_taken_port_is_a_problem_not_a_crash(monkeypatch, tmp_path,
                                                                                  no_endpoint):
    from core.runtime import build_runtime

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'rt.db'}")
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        monkeypatch.setenv("SHOAL_METRICS_PORT", str(taken.getsockname()[1]))
        cli = build_runtime(console_log=False, own_runs_only=True)  # `run`, `report`: not the app
        try:
            assert metrics_server.endpoint() is None
        finally:
            cli.close(timeout=5)
        app = build_runtime(console_log=False)
        try:
            assert app.ok and any("metrics port" in p for p in app.problem_texts), app.problem_texts
            assert metrics_server.endpoint() is None
        finally:
            app.close(timeout=5)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = os.environ.copy()  # SHOAL_DATA_DIR / SHOAL_LOG_DIR / SHOAL_ENV_FILE from isolated_env
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}", **extra)
    return env


def test_the_metrics_command_prints_the_page_once(tmp_path):
    out = subprocess.run([sys.executable, "-m", "core", "metrics", "--cpu-seconds", "0.2"], cwd=ROOT,
                         env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    page = Page(out.stdout)
    assert page.get("shoal_up") == 1 and page.get("shoal_database_up") == 1
    assert 0 <= page.get("shoal_cpu_percent") <= 100  # measured over 0.2 s, so it has a value
    assert page.families["shoal_llm_latency_seconds"] == "histogram"
    assert page.get("shoal_llm_calls_total", role="QUERY_ENGINE", model="offline", status="ok") == 0


@pytest.mark.timeout(180)
def test_a_worker_serves_metrics_over_http(tmp_path):
    from core.infra.db import open_database
    from core.infra.models import LlmCall

    db = open_database(f"sqlite:///{tmp_path / 'cli.db'}")
    with db.session() as s:
        s.add(LlmCall(role="QUERY_ENGINE", model="house-model", input_tokens=1_000_000, output_tokens=0,
                      latency_ms=5, status="ok", trace_id=""))
    db.dispose()
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"house-model": {"input": 3.0, "output": 6.0}}), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "core", "worker", "--metrics-port", "0"], cwd=ROOT,
                            env=_env(tmp_path, SHOAL_SAMPLE_SECONDS="0.5", SHOAL_SHUTDOWN_TIMEOUT="3",
                                     SHOAL_PRICE_TABLE=str(prices)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        started = json.loads(line) if line.startswith("{") else {}
        assert started.get("status") == "started" and started.get("metrics_port"), line + proc.stderr.read()
        url = f"http://127.0.0.1:{started['metrics_port']}/metrics"
        page = scrape(url)
        assert page.get("shoal_up") == 1 and page.get("shoal_database_up") == 1
        assert page.get("shoal_runs", status="running") == 0 and page.get("process_cpu_seconds_total") > 0
        assert page.get("shoal_llm_cost_usd_total", model="house-model") == pytest.approx(3.0)  # the app's prices
        # The worker samples resources itself: CPU appears once one interval has passed.
        wait_for(lambda: scrape(url).samples("shoal_cpu_percent"), what="a CPU figure over an interval")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["status"] == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_the_grafana_dashboard_asks_only_for_families_the_page_has(db):
    import re

    from core.console.metrics import histograms_from_database, prometheus_text

    dash = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dash["__inputs"][0]["pluginId"] == "prometheus"  # Grafana asks for the data source on import
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs and all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in dash["panels"] for t in p["targets"])
    page = Page(prometheus_text(db, histograms=histograms_from_database(db)))
    known = set(page.families) | {name for name, _ in page.series} | {f + "_total" for f in page.families}
    used = {m for e in exprs for m in re.findall(r"\b((?:shoal|process)_[a-z_]+)\b", e)} - {"shoal_process"}
    assert {"shoal_llm_latency_seconds_bucket", "shoal_llm_ttft_seconds_bucket", "shoal_retries_total",
            "shoal_llm_cost_usd_total", "process_cpu_seconds_total"} <= used
    assert not sorted(used - known), f"the dashboard queries families the page does not have: {sorted(used - known)}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in dash["panels"])


def test_the_prometheus_example_scrapes_the_app_and_a_worker():
    yaml = pytest.importorskip("yaml")
    conf = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = [j for j in conf["scrape_configs"] if j["job_name"] == "shoal"]
    assert job["metrics_path"] == "/metrics"
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {"localhost:9464", "localhost:9465"}
    labels = {k for sc in job["static_configs"] for k in sc.get("labels", {})}
    assert not labels & {"role", "model", "status", "kind", "policy"}  # would clash with Shoal's own labels
