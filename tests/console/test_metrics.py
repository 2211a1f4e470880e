"""Prometheus text exposition: every line parses per the format, and the figures are right."""
from __future__ import annotations

import math
import re
from collections import Counter
from datetime import datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import insert

from core.infra import retry
from core.console.alerts import AlertEngine, AlertRule
from core.infra.db import Database
from core.console.metrics import Exposition, prometheus_text
from core.infra.models import Job, LlmCall, Run
from core.llm.pricing import load_price_table

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "summary", "histogram", "untyped"}


def _value(text: str) -> float:
    if text in ("NaN", "+Inf", "-Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?)", text):
        raise AssertionError(f"bad value {text!r}")
    return float(text)


def _labels(text: str, pos: int) -> tuple[dict, int]:
    """Parse `{name="value",...}` starting at text[pos] == '{'; returns (labels, index after '}')."""
    assert text[pos] == "{"
    pos += 1
    labels: dict[str, str] = {}
    while True:
        if text[pos] == "}":
            return labels, pos + 1
        m = LABEL_NAME.match(text, pos)
        assert m, f"bad label name at {text[pos:]!r}"
        name = m.group()
        pos = m.end()
        assert text[pos:pos + 2] == '="', f"expected =\" after {name} in {text!r}"
        pos += 2
        value = []
        while text[pos] != '"':
            if text[pos] == "\\":
                esc = text[pos + 1]
                assert esc in '\\"n', f"bad escape \\{esc} in {text!r}"
                value.append({"\\": "\\", '"': '"', "n": "\n"}[esc])
                pos += 2
            else:
                assert text[pos] != "\n"
                value.append(text[pos])
                pos += 1
        pos += 1
        assert name not in labels, f"label {name} twice"
        labels[name] = "".join(value)
        if text[pos] == ",":
            pos += 1
        else:
            assert text[pos] == "}", f"expected , or }} in {text!r}"


def parse_exposition(text: str) -> dict:
    """A strict validator of the text format: returns {series: value} with series = (name, labels)."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helps: set[str] = set()
    series: dict[tuple, float] = {}
    family_order: list[str] = []
    for raw in text.split("\n")[:-1]:
        if not raw:
            continue
        if raw.startswith("#"):
            parts = raw.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                assert NAME.fullmatch(parts[2]), raw
                if parts[1] == "TYPE":
                    assert parts[3] in TYPES, raw
                    assert parts[2] not in types, f"TYPE twice for {parts[2]}"
                    assert not any(k[0] == parts[2] or k[0].startswith(parts[2] + "_") and k[0] in
                                   (parts[2] + "_sum", parts[2] + "_count") for k in series), "TYPE after samples"
                    types[parts[2]] = parts[3]
                    family_order.append(parts[2])
                else:
                    assert parts[2] not in helps, f"HELP twice for {parts[2]}"
                    helps.add(parts[2])
            continue
        m = NAME.match(raw)
        assert m, f"bad metric name in {raw!r}"
        name, pos = m.group(), m.end()
        labels: dict = {}
        if pos < len(raw) and raw[pos] == "{":
            labels, pos = _labels(raw, pos)
        assert raw[pos] == " ", f"expected a space in {raw!r}"
        rest = raw[pos + 1:].split(" ")
        assert 1 <= len(rest) <= 2, raw
        value = _value(rest[0])
        if len(rest) == 2:
            int(rest[1])  # timestamp
        family = name
        for suffix in ("_sum", "_count"):
            if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "summary":
                family = name[: -len(suffix)]
        assert family in types, f"sample {name} without TYPE"
        assert family == family_order[-1], f"samples of {family} are not together"
        if types[family] == "summary" and name == family:
            assert "quantile" in labels
        key = (name, tuple(sorted(labels.items())))
        assert key not in series, f"duplicate series {key}"
        series[key] = value
    return series


def get(series: dict, name: str, **labels) -> float:
    return series[(name, tuple(sorted(labels.items())))]


def test_the_validator_rejects_what_the_format_forbids():
    good = '# HELP a_total x\n# TYPE a_total counter\na_total{l="q\\"\\\\\\n"} 1\n'
    assert get(parse_exposition(good), "a_total", l='q"\\\n') == 1
    for bad in ('a 1\n', '# TYPE a gauge\na{l="x} 1\n', '# TYPE a gauge\na{1l="x"} 1\n',
                '# TYPE a gauge\na one\n', '# TYPE a gauge\na{l="\\t"} 1\n', '# TYPE a gauge\na 1\na 2\n',
                '# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n'):
        with pytest.raises((AssertionError, IndexError)):
            parse_exposition(bad)


def test_label_values_are_escaped():
    ex = Exposition()
    f = ex.family("odd", "gauge", "help with \\ and\nnewline")
    ex.sample(f, 1, {"v": 'back\\slash "quote"\nnewline'})
    ex.sample(f, float("nan"), {"v": "nan"})
    ex.sample(f, float("inf"), {"v": "inf"})
    text = ex.render()
    assert '# HELP shoal_odd help with \\\\ and\\nnewline' in text
    series = parse_exposition(text)
    assert get(series, "shoal_odd", v='back\\slash "quote"\nnewline') == 1
    assert math.isnan(get(series, "shoal_odd", v="nan")) and get(series, "shoal_odd", v="inf") == math.inf
    with pytest.raises(ValueError):
        ex.family("bad-name", "gauge", "x")


def _seed(db):
    now = datetime(2025, 1, 1, 10)
    with db.session() as s:
        for rid, status in (("r1", "completed"), ("r2", "failed"), ("r3", "completed")):
            s.add(Run(id=rid, status=status, trace_id=rid))
        s.flush()
        s.add(Job(id="j1", run_id="r1", kind="query", status="completed"))
        s.add(Job(id="j2", run_id="r2", kind="query", status="running", stalled=True))
        calls = [{"ts": now, "role": "QUERY", "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100,
                  "latency_ms": lat, "ttft_ms": lat / 10, "status": "ok", "trace_id": ""} for lat in (100, 200, 300)]
        calls.append({"ts": now, "role": "QUERY", "model": "gpt-4o", "input_tokens": 0, "output_tokens": 0,
                      "latency_ms": 1000, "status": "error", "error_kind": "timeout", "trace_id": ""})
        calls.append({"ts": now, "role": "INSIGHT", "model": 'my "local"\\model', "input_tokens": 50,
                      "output_tokens": 5, "latency_ms": 40, "status": "ok", "trace_id": ""})
        s.execute(insert(LlmCall), calls)


def test_the_page_on_known_data(db, monkeypatch):
    _seed(db)
    monkeypatch.setattr(retry, "_counts", Counter({("llm", "rate_limit"): 3, ("search", "timeout"): 1}))
    alerts = AlertEngine([AlertRule("cpu_high", "cpu_percent", ">", 85, 0, "warning")])
    alerts.evaluate(0, {"cpu_percent": 99})
    telemetry = SimpleNamespace(stats=lambda: SimpleNamespace(written=10, dropped=2, buffered=1))
    resources = SimpleNamespace(latest=lambda: {"cpu_percent": 99.0, "memory_percent": 40.5, "process_threads": 12,
                                                "net_sent_bps": None})
    text = prometheus_text(db, resources=resources, telemetry=telemetry, alerts=alerts,
                           prices=load_price_table({"gpt-4o": {"input": 2.5, "output": 10}}, include_defaults=False))
    s = parse_exposition(text)
    assert get(s, "shoal_up") == 1 and get(s, "shoal_database_up") == 1
    assert get(s, "shoal_runs", status="completed") == 2 and get(s, "shoal_runs", status="failed") == 1
    assert get(s, "shoal_jobs", status="running") == 1 and get(s, "shoal_jobs_stalled") == 1
    q = {"role": "QUERY", "model": "gpt-4o"}
    assert get(s, "shoal_llm_calls_total", status="ok", **q) == 3
    assert get(s, "shoal_llm_calls_total", status="error", **q) == 1
    assert get(s, "shoal_llm_tokens_total", direction="input", **q) == 3000
    assert get(s, "shoal_llm_tokens_total", direction="output", **q) == 300
    assert get(s, "shoal_llm_errors_total", kind="timeout", **q) == 1
    assert get(s, "shoal_llm_cost_usd_total", model="gpt-4o") == pytest.approx((3000 * 2.5 + 300 * 10) / 1e6)
    odd = 'my "local"\\model'
    assert ("shoal_llm_cost_usd_total", (("model", odd),)) not in s  # unpriced: no cost series, never 0
    assert get(s, "shoal_llm_unpriced_calls_total", model=odd) == 1
    assert get(s, "shoal_llm_latency_seconds", quantile="0.5", **q) == pytest.approx(0.25)  # 100, 200, 300, 1000 ms
    assert get(s, "shoal_llm_latency_seconds", quantile="0.99", **q) == pytest.approx(0.979)
    assert get(s, "shoal_llm_latency_seconds_sum", **q) == pytest.approx(1.6)
    assert get(s, "shoal_llm_latency_seconds_count", **q) == 4
    assert get(s, "shoal_llm_ttft_seconds", quantile="0.5", **q) == pytest.approx(0.02)
    assert get(s, "shoal_llm_ttft_seconds_count", **q) == 3
    assert ("shoal_llm_ttft_seconds_count", (("model", odd), ("role", "INSIGHT"))) not in s  # did not stream
    assert get(s, "shoal_retries_total", policy="llm", kind="rate_limit") == 3
    assert get(s, "shoal_telemetry_written_total") == 10 and get(s, "shoal_telemetry_dropped_total") == 2
    assert get(s, "shoal_telemetry_buffered") == 1
    assert get(s, "shoal_alerts_firing", alert="cpu_high", severity="warning") == 1
    assert get(s, "shoal_alerts_firing_count") == 1
    assert get(s, "shoal_cpu_percent") == 99 and get(s, "shoal_memory_percent") == 40.5
    assert get(s, "shoal_process_threads") == 12
    assert "shoal_network_sent_bytes_per_second" not in text  # unknown yet: no sample, no family
    assert "# TYPE shoal_llm_latency_seconds summary" in text and "# TYPE shoal_llm_calls_total counter" in text


def test_an_empty_database_and_one_that_is_down(db, monkeypatch):
    monkeypatch.setattr(retry, "_counts", Counter())
    s = parse_exposition(prometheus_text(db))
    assert get(s, "shoal_up") == 1 and get(s, "shoal_database_up") == 1 and get(s, "shoal_jobs_stalled") == 0
    assert not any(name.startswith("shoal_llm") for name, _ in s)
    down = prometheus_text(Database("sqlite://", None, "down"), alerts=AlertEngine([]))
    s = parse_exposition(down)
    assert get(s, "shoal_database_up") == 0 and get(s, "shoal_alerts_firing_count") == 0
    assert "# database not read" in down
    assert parse_exposition(prometheus_text()) == {("shoal_up", ()): 1}
