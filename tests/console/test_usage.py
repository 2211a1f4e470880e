"""Usage, cost, latency and errors on known data; price tables with typos; empty databases."""
from __future__ import annotations

import json
import math
from datetime import datetime

import pandas as pd
import pytest
from sqlalchemy import insert

from core.infra.db import Database
from core.infra.events import EventLog
from core.infra.models import LlmCall
from core.llm import price_source
from core.llm.pricing import MAINTAINED_SOURCE, UNPRICED, load_price_table
from core.console.usage import (
    errors_by_kind,
    error_timeline,
    latency_table,
    llm_calls_frame,
    percentiles,
    retries_by_kind,
    retry_events_frame,
    run_usage,
    usage_by_model,
    usage_table,
)

PRICES = {"gpt-4o": {"input": 2.5, "output": 10}}


def call(ts, role="QUERY", model="gpt-4o", run_id="r1", tin=1000, tout=100, latency=100.0, ttft=None, status="ok",
         kind=None, retries=0, trace="t1"):
    return {"ts": ts, "run_id": run_id, "role": role, "model": model, "input_tokens": tin, "output_tokens": tout,
            "latency_ms": latency, "ttft_ms": ttft, "status": status, "error_kind": kind, "retries": retries,
            "trace_id": trace, "provider": "p", "node": "n"}


KNOWN = [
    call(datetime(2025, 1, 6, 9), tin=1000, tout=100),                 # Monday, week of Jan 6
    call(datetime(2025, 1, 6, 17), tin=3000, tout=300, retries=2),
    call(datetime(2025, 1, 7, 8), tin=2000, tout=200),
    call(datetime(2025, 2, 3, 8), tin=500, tout=50, run_id="r2"),
    call(datetime(2025, 1, 6, 10), role="INSIGHT", model="local-llm", tin=700, tout=70, status="error",
         kind="timeout", retries=1),
]


def _insert(db, rows):
    with db.session() as s:
        s.execute(insert(LlmCall), rows)


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows)


def cost(tin, tout):
    return (tin * 2.5 + tout * 10) / 1e6


# --- price tables ------------------------------------------------------------------------------

def test_maintained_prices_are_marked_and_unknown_models_are_unpriced_never_zero():
    table = load_price_table()
    rows = {r["model"]: r for r in table.rows(["gpt-4o", "no-such-model"])}
    assert rows["gpt-4o"]["source"].startswith(f"{MAINTAINED_SOURCE} {price_source.PINNED_VERSION} (openai")
    assert rows["no-such-model"]["source"] == UNPRICED and rows["no-such-model"]["input_per_m"] is None
    assert table.cost("no-such-model", 10**6, 10**6) is None
    assert table.cost("", 1, 1) is None and table.cost(None, 1, 1) is None
    assert table.cost("gpt-4o", 10**6, 0) == 2.5  # genai-prices 0.2.3: OpenAI's list price


def test_price_table_matching_is_exact_case_insensitive_or_without_provider_prefix():
    table = load_price_table(PRICES, include_defaults=False)
    assert table.cost("gpt-4o", 10**6, 10**6) == 12.5
    assert table.cost("GPT-4o", 10**6, 0) == 2.5
    assert table.cost("openai/gpt-4o", 0, 10**6) == 10
    assert table.cost("gpt-4o-mini", 1, 1) is None  # no prefix matching


def test_malformed_price_entries_are_reported_and_leave_the_model_unpriced():
    table = load_price_table({
        "gpt-4o": {"inptu": 2.5, "output": 10},          # typo, overrides a default: unpriced, not the default
        "neg": {"input": -1, "output": 1},
        "text": {"input": "cheap", "output": 1},
        "flag": {"input": True, "output": 1},
        "half": {"input": 1},
        "nan": {"input": float("nan"), "output": 1},
        "pair": [1, 2, 3],
        "scalar": 5,
        "ok-string": {"input": "0.5", "output": "1.5"},
        "ok-pair": [1, 2],
    })
    bad = ["gpt-4o", "neg", "text", "flag", "half", "nan", "pair", "scalar"]
    assert len(table.problems) == len(bad)
    for model in bad:
        assert table.cost(model, 10, 10) is None, model
        assert any(f"'{model}'" in p for p in table.problems), model
    assert "inptu" in " ".join(table.problems)
    assert table.cost("ok-string", 10**6, 10**6) == 2.0
    assert table.cost("ok-pair", 10**6, 10**6) == 3.0
    assert table.cost("gpt-4o-mini", 10**6, 0) == 0.15  # other models keep genai-prices' price


def test_price_table_files_json_toml_missing_and_broken(tmp_path):
    j = tmp_path / "prices.json"
    j.write_text(json.dumps({"models": {"m1": {"input_per_m": 1, "output_per_m": 2}}}))
    assert load_price_table(j, include_defaults=False).cost("m1", 10**6, 10**6) == 3.0
    t = tmp_path / "prices.toml"
    t.write_text('[models."m2"]\ninput = 0.5\noutput = 1\n')
    assert load_price_table(t, include_defaults=False).cost("m2", 2 * 10**6, 0) == 1.0
    missing = load_price_table(tmp_path / "nope.json")
    assert missing.problems and "not found" in missing.problems[0] and missing.cost("gpt-4o", 1, 1) is not None
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "not valid JSON" in load_price_table(broken).problems[0]
    assert load_price_table([1, 2]).problems  # not a mapping: reported, no crash
    saved = tmp_path / "saved.json"
    load_price_table({"m3": [1, 2]}).save(saved)
    assert load_price_table(saved, include_defaults=False).cost("m3", 10**6, 10**6) == 3.0


# --- aggregations on known data -----------------------------------------------------------------

def test_usage_by_day_week_month_with_cost_and_unpriced():
    prices = load_price_table(PRICES, include_defaults=False)
    frame = _frame(KNOWN)
    day = usage_table(frame, prices, period="day")
    q = day[(day.role == "QUERY")].set_index("period")
    assert list(q.index) == [pd.Timestamp("2025-01-06"), pd.Timestamp("2025-01-07"), pd.Timestamp("2025-02-03")]
    assert q.loc["2025-01-06", "calls"] == 2 and q.loc["2025-01-06", "input_tokens"] == 4000
    assert q.loc["2025-01-06", "output_tokens"] == 400 and q.loc["2025-01-06", "retries"] == 2
    assert q.loc["2025-01-06", "cost_usd"] == pytest.approx(cost(4000, 400))
    assert q.loc["2025-01-06", "cost_label"] == f"${cost(4000, 400):,.4f}"

    week = usage_table(frame, prices, period="week")
    qw = week[week.role == "QUERY"].set_index("period")
    assert qw.loc["2025-01-06", "calls"] == 3 and qw.loc["2025-01-06", "total_tokens"] == 6600
    assert qw.loc["2025-02-03", "calls"] == 1

    month = usage_table(frame, prices, period="month")
    qm = month[month.role == "QUERY"].set_index("period")
    assert qm.loc["2025-01-01", "calls"] == 3 and qm.loc["2025-02-01", "calls"] == 1
    assert qm.loc["2025-01-01", "cost_usd"] == pytest.approx(cost(6000, 600))

    unpriced = month[month.model == "local-llm"].iloc[0]
    assert math.isnan(unpriced["cost_usd"]) and unpriced["cost_label"] == UNPRICED
    assert unpriced["errors"] == 1 and unpriced["unpriced_calls"] == 1

    by_role = usage_table(frame, prices, period="all", by=("role",))
    assert set(by_role.columns) >= {"role", "calls", "cost_usd"} and "period" not in by_role.columns
    assert by_role.set_index("role").loc["QUERY", "calls"] == 4
    mixed = usage_table(frame, prices, period="all", by=())
    assert mixed.iloc[0]["calls"] == 5 and mixed.iloc[0]["cost_label"].endswith("+ unpriced")


def test_percentiles_are_exact_on_known_data():
    assert percentiles(range(1, 101)) == {0.5: 50.5, 0.95: pytest.approx(95.05), 0.99: pytest.approx(99.01)}
    assert percentiles([]) == {0.5: None, 0.95: None, 0.99: None}
    assert percentiles([7.0]) == {0.5: 7.0, 0.95: 7.0, 0.99: 7.0}
    rows = [call(datetime(2025, 1, 1), latency=float(i), ttft=float(i * 10) if i <= 4 else None) for i in range(1, 101)]
    rows += [call(datetime(2025, 1, 1), role="HOST", model="m", latency=5.0)]
    table = latency_table(_frame(rows)).set_index("role")
    q = table.loc["QUERY"]
    assert q["calls"] == 100 and q["p50_ms"] == 50.5
    assert q["p95_ms"] == pytest.approx(95.05) and q["p99_ms"] == pytest.approx(99.01)
    assert q["mean_ms"] == 50.5 and q["max_ms"] == 100
    # TTFT 10, 20, 30, 40 only (the rest did not stream)
    assert q["ttft_calls"] == 4 and q["ttft_p50_ms"] == 25.0
    assert q["ttft_p95_ms"] == pytest.approx(38.5) and q["ttft_p99_ms"] == pytest.approx(39.7)
    h = table.loc["HOST"]
    assert h["p99_ms"] == 5.0 and h["ttft_calls"] == 0 and pd.isna(h["ttft_p50_ms"])


def test_error_rate_and_errors_by_kind_over_time_buckets():
    rows = [call(datetime(2025, 1, 1, 10, m), status="ok") for m in range(8)]
    rows += [call(datetime(2025, 1, 1, 10, 30), status="error", kind="rate_limit", retries=3),
             call(datetime(2025, 1, 1, 10, 40), status="error", kind="timeout", retries=1),
             call(datetime(2025, 1, 1, 11, 5), status="error", kind="parse"),
             call(datetime(2025, 1, 1, 11, 6), status="error", kind=None)]
    f = _frame(rows)
    tl = error_timeline(f, "hour").set_index("bucket")
    assert tl.loc["2025-01-01 10:00", "calls"] == 10 and tl.loc["2025-01-01 10:00", "errors"] == 2
    assert tl.loc["2025-01-01 10:00", "error_pct"] == 20.0 and tl.loc["2025-01-01 10:00", "retries"] == 4
    assert tl.loc["2025-01-01 11:00", "error_pct"] == 100.0
    fine = error_timeline(f, "15min")
    assert list(fine["calls"]) == [8, 2, 2]  # 10:00, 10:30 (10:30 and 10:40), 11:00
    kinds = errors_by_kind(f, "hour")
    got = {(str(r.bucket), r.error_kind): r.errors for r in kinds.itertuples()}
    assert got == {("2025-01-01 10:00:00", "rate_limit"): 1, ("2025-01-01 10:00:00", "timeout"): 1,
                   ("2025-01-01 11:00:00", "parse"): 1, ("2025-01-01 11:00:00", "unknown"): 1}


def test_empty_frames_give_empty_tables_with_columns():
    empty = pd.DataFrame()
    for table in (usage_table(empty), latency_table(empty), error_timeline(empty), errors_by_kind(empty),
                  retries_by_kind(pd.DataFrame())):
        assert table.empty and len(table.columns) > 0
    no_errors = errors_by_kind(_frame([call(datetime(2025, 1, 1))]))
    assert no_errors.empty


# --- with a database ------------------------------------------------------------------------------

def test_calls_frame_run_usage_and_retries_from_the_database(db):
    _insert(db, KNOWN + [call(datetime(2025, 1, 8), run_id="r3", model="mystery")])
    prices = load_price_table(PRICES, include_defaults=False)
    frame = llm_calls_frame(db)
    assert len(frame) == 6 and not frame.attrs.get("error")
    assert len(llm_calls_frame(db, run_id="r1", role="QUERY")) == 3
    assert len(llm_calls_frame(db, since=datetime(2025, 1, 7), until=datetime(2025, 2, 1))) == 2
    assert len(llm_calls_frame(db, trace_prefix="t")) == 6 and llm_calls_frame(db, trace_prefix="x").empty
    legacy = usage_by_model(frame)  # the engine pages' view still works
    assert set(legacy.role) == {"QUERY", "INSIGHT"}

    r1 = run_usage(db, "r1", prices)
    assert r1["calls"] == 4 and r1["errors"] == 1 and r1["input_tokens"] == 6700 and r1["retries"] == 3
    assert r1["cost"] is None and r1["unpriced_models"] == ["local-llm"]
    assert r1["priced_cost"] == pytest.approx(cost(6000, 600)) and "local-llm" in r1["note"]
    assert r1["cost_label"].endswith("+ unpriced")
    r2 = run_usage(db, "r2", prices)
    assert r2["cost"] == pytest.approx(cost(500, 50)) and r2["unpriced_models"] == []
    r3 = run_usage(db, "r3", prices)
    assert r3["cost"] is None and r3["cost_label"] == UNPRICED
    none = run_usage(db, "no-calls", prices)
    assert none["calls"] == 0 and none["cost"] == 0.0 and "no LLM calls" in none["note"] and none["error"] is None

    events = EventLog(db)
    for kind in ("rate_limit", "rate_limit", "timeout"):
        events.emit("retry", run_id="r1", source="retry", payload={"policy": "llm", "op": "chat", "kind": kind,
                                                                    "attempt": 1})
    events.emit("retry.gave_up", run_id="r1", source="retry", payload={"policy": "llm", "kind": "timeout"})
    retries = retry_events_frame(db)
    assert len(retries) == 4
    by_kind = retries_by_kind(retries, "day").set_index("kind")
    assert by_kind.loc["rate_limit", "retries"] == 2
    assert by_kind.loc["timeout", "retries"] == 1 and by_kind.loc["timeout", "gave_up"] == 1


def test_empty_database_and_database_down_never_raise(db):
    frame = llm_calls_frame(db)
    assert frame.empty and list(frame.columns)[:3] == ["ts", "run_id", "role"]
    assert usage_table(frame).empty and latency_table(frame).empty
    assert retry_events_frame(db).empty
    down = Database("sqlite:///nowhere.db", None, "database down for the test")
    broken = llm_calls_frame(down)
    assert broken.empty and "database down" in broken.attrs["error"]
    assert "database down" in retry_events_frame(down).attrs["error"]
    usage = run_usage(down, "r1")
    assert usage["error"] and usage["cost"] is None and usage["cost_label"] == UNPRICED
