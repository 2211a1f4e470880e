"""Prices from genai-prices' bundled data, the price file winning, cached input at the cached rate,
unknown models unpriced, and the cached tokens a provider reports recorded with each call."""
from __future__ import annotations

import json
import re
import socket
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from core.console.usage import run_usage, usage_table
from core.infra.db import open_database
from core.infra.models import LlmCall
from core.llm import price_source
from core.llm.pricing import MAINTAINED_SOURCE, UNPRICED, cached_tokens_of, load_price_table
from tests.fakes.openai_server import FakeOpenAI, FakeReply
from tests.llm.test_llm import make_client

ROOT = Path(__file__).resolve().parents[2]
M = 10**6


@pytest.fixture
def db(tmp_path):
    database = open_database(f"sqlite:///{tmp_path / 'prices.db'}")
    assert database.ok, database.error
    yield database
    database.dispose()


def test_known_models_are_priced_from_genai_prices_with_their_cached_rate():
    table = load_price_table()
    gpt = table.price("gpt-4o")
    assert (gpt.input_per_m, gpt.output_per_m, gpt.cached_input_per_m) == (2.5, 10.0, 1.25)
    assert gpt.kind == MAINTAINED_SOURCE and gpt.source.startswith(f"genai-prices {price_source.PINNED_VERSION} (openai")
    # genai-prices' own matching: a dated name, a vendor prefix, a first-party maker found by name
    assert table.price("gpt-4o-2024-08-06").input_per_m == 2.5
    assert table.price("openai/gpt-4o").input_per_m == 2.5
    glm = table.price("glm-4.5")
    assert glm is not None and "zai" in glm.source
    for model in ("deepseek-chat", "deepseek-reasoner", "kimi-k2-0905-preview", "moonshot-v1-8k", "glm-4-plus",
                  "gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "gemini-2.5-pro", "gemini-2.5-flash"):
        assert table.is_priced(model), model


def test_the_price_file_wins_over_genai_prices(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"gpt-4o": {"input": 1, "output": 2, "cached_input": 0.5}, "qwen-plus": [0.4, 1.2]}))
    table = load_price_table(path)
    p = table.price("gpt-4o")
    assert (p.input_per_m, p.output_per_m, p.cached_input_per_m, p.kind) == (1.0, 2.0, 0.5, "file")
    assert table.cost("qwen-plus", M, M) == pytest.approx(1.6)   # genai-prices has no qwen-plus: the file prices it
    assert table.cost("gpt-4o-mini", M, 0) == 0.15               # not in the file: genai-prices
    src = table.sources()
    assert src["file"] == str(path) and src["file_mtime"] is not None
    assert src["maintained"]["name"] == "genai-prices" and src["maintained"]["version"] == price_source.PINNED_VERSION
    assert src["maintained"]["date"] == price_source.PINNED_ON


def test_a_malformed_cached_rate_leaves_the_model_unpriced():
    table = load_price_table({"gpt-4o": {"input": 1, "output": 2, "cached_input": "half"}})
    assert table.cost("gpt-4o", M, M) is None and "cached_input 'half'" in table.problems[0]


def test_cached_input_is_priced_at_the_cached_rate():
    table = load_price_table()
    # gpt-4o: 1M prompt tokens of which 400k from the cache, 100k output
    expected = (600_000 * 2.5 + 400_000 * 1.25 + 100_000 * 10) / M
    assert table.cost("gpt-4o", M, 100_000, 400_000) == pytest.approx(expected)
    assert table.cost("gpt-4o", M, 0, 5 * M) == pytest.approx(1.25)  # never more cached than prompt tokens
    no_rate = load_price_table({"m": {"input": 2, "output": 4}}, include_defaults=False)
    assert no_rate.cost("m", M, 0, M) == 2.0  # no cached rate listed: the input rate


def test_unknown_models_are_unpriced_never_zero(db):
    table = load_price_table()
    for model in ("qwen-plus-local", "llama3:8b", "mystery-llm-9"):
        assert table.price(model) is None and table.cost(model, M, M) is None
    with db.session() as s:
        s.execute(insert(LlmCall), [
            {"run_id": "r", "role": "QUERY_ENGINE", "model": "mystery-llm-9", "input_tokens": 10, "output_tokens": 5},
            {"run_id": "r", "role": "QUERY_ENGINE", "model": "gpt-4o", "input_tokens": M, "output_tokens": 0,
             "cached_input_tokens": M, "ts": datetime(2026, 12, 1, 12)}])
    u = run_usage(db, "r", table)
    assert u["cost"] is None and u["unpriced_models"] == ["mystery-llm-9"]
    assert u["priced_cost"] == pytest.approx(1.25) and u["cost_label"] == "$1.2500 + unpriced"
    assert table.rows(["mystery-llm-9"]) == [{"model": "mystery-llm-9", "input_per_m": None,
                                              "cached_input_per_m": None, "output_per_m": None, "source": UNPRICED}]


def test_each_call_is_priced_at_its_time_deepseek_off_peak():
    table = load_price_table()
    peak, off = datetime(2026, 12, 1, 8, 0), datetime(2026, 12, 1, 20, 0)  # UTC: 00:30-16:30 is DeepSeek's standard
    assert table.price("deepseek-chat", peak).input_per_m == 2 * table.price("deepseek-chat", off).input_per_m
    assert table.price("deepseek-chat").input_per_m == table.price("deepseek-chat", peak).input_per_m  # list price
    import pandas as pd
    frame = pd.DataFrame([{"ts": t, "role": "Q", "model": "deepseek-chat", "input_tokens": M, "output_tokens": 0,
                           "cached_input_tokens": 0} for t in (peak, off)])
    total = usage_table(frame, table, period="all", by=())
    expected = table.cost("deepseek-chat", M, 0, at=peak) + table.cost("deepseek-chat", M, 0, at=off)
    assert total["cost_usd"].iloc[0] == pytest.approx(expected)
    assert total["cached_input_tokens"].iloc[0] == 0


def test_cached_tokens_are_read_from_each_providers_usage_shape():
    assert cached_tokens_of({"prompt_tokens": 100, "prompt_tokens_details": {"cached_tokens": 60}}) == 60
    assert cached_tokens_of({"prompt_tokens": 100, "prompt_cache_hit_tokens": 70, "prompt_cache_miss_tokens": 30}) == 70
    assert cached_tokens_of({"prompt_tokens": 100, "cached_tokens": 20}) == 20          # Kimi
    assert cached_tokens_of({"prompt_tokens": 100, "prompt_tokens_details": None}) == 0
    assert cached_tokens_of(None) == 0 and cached_tokens_of({"cached_tokens": True}) == 0


def test_the_client_records_the_cached_tokens_the_server_reports(db):
    with FakeOpenAI() as srv, make_client(srv, db) as llm:
        srv.script(FakeReply.text("好的", prompt_tokens=500, cached_tokens=384), FakeReply.text("好的"))
        first = llm.complete("系统", "问题", node="N1")
        second = llm.complete("系统", "问题", node="N2")
    assert (first.input_tokens, first.cached_input_tokens) == (500, 384) and second.cached_input_tokens == 0
    with db.session() as s:
        stored = s.execute(select(LlmCall.node, LlmCall.cached_input_tokens).order_by(LlmCall.id)).all()
    assert [tuple(r) for r in stored] == [("N1", 384), ("N2", None)]


def test_an_older_llm_calls_table_gains_the_cached_column(tmp_path):
    path = tmp_path / "old.db"
    import sqlite3
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE llm_calls (id INTEGER PRIMARY KEY, ts DATETIME, run_id VARCHAR(32), job_id VARCHAR(32),"
                " trace_id VARCHAR(64), role VARCHAR(32), provider VARCHAR(128), model VARCHAR(128), node VARCHAR(64),"
                " input_tokens INTEGER, output_tokens INTEGER, latency_ms FLOAT, ttft_ms FLOAT, queued_ms FLOAT,"
                " retries INTEGER, status VARCHAR(16), error_kind VARCHAR(32))")
    con.commit()
    con.close()
    database = open_database(f"sqlite:///{path}")
    try:
        assert database.ok, database.error
        with database.session() as s:
            s.add(LlmCall(role="Q", model="gpt-4o", input_tokens=10, output_tokens=1, cached_input_tokens=8))
        with database.session() as s:
            assert s.scalar(select(LlmCall.cached_input_tokens)) == 8
    finally:
        database.dispose()


def test_prices_load_offline_and_never_fetch(monkeypatch):
    """The bundled data only: no socket is opened, and genai-prices' global snapshot (which its
    UpdatePrices would swap) is never what Shoal reads."""
    def no_network(*a, **kw):
        raise AssertionError("a price lookup tried the network")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    fresh = price_source._Source()
    assert fresh.rates("gpt-4o").input_per_m == 2.5 and fresh.error is None
    from genai_prices import data_snapshot
    from genai_prices.data import providers
    monkeypatch.setattr(data_snapshot, "_custom_snapshot", data_snapshot.DataSnapshot(providers=providers[:1],
                                                                                      from_auto_update=True))
    assert price_source._Source().rates("gpt-4o").input_per_m == 2.5  # not the swapped snapshot


def test_the_pinned_version_is_the_one_named():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    assert pins["genai-prices"] == price_source.PINNED_VERSION == price_source.describe()["version"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", price_source.PINNED_ON)


def test_without_genai_prices_nothing_is_priced_but_the_file(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "genai_prices.data", None)  # the import fails
    broken = price_source._Source()
    monkeypatch.setattr(price_source, "SOURCE", broken)
    assert broken.rates("gpt-4o") is None and "cannot be loaded" in broken.error
    table = load_price_table({"m": [1, 2]})
    assert table.cost("gpt-4o", M, M) is None and table.cost("m", M, M) == 3.0
    assert table.sources()["maintained"]["version"] is None and table.sources()["maintained"]["error"]
