"""The LLM budgets panel (ui/monitor/budgets.py) as the user sees it: Monitor › Overview and Settings.

The runtime is built from the test's environment (tests/pagetest.py); calls "in flight" are slots
held in the runtime's own limiter, so what the page must show is known exactly.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.llm.limits import reset_default_limiter
from ui.runtime import get_runtime, reload_runtime
from tests.fakes.openai_server import FakeOpenAI
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture
from tests.support.screen import english_leaks, untranslated_keys

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 90


@pytest.fixture
def endpoints(monkeypatch):
    """Engines and host on one fake endpoint (limit 8), the report on another whose provider allows 3."""
    with FakeOpenAI() as shared, FakeOpenAI() as report:
        for key, value in {**shared.env("QUERY_ENGINE", "MEDIA_ENGINE", "INSIGHT_ENGINE", "FORUM_HOST"),
                           **report.env("REPORT_ENGINE"), "SHOAL_LLM_CONCURRENCY": "8",
                           "REPORT_ENGINE_CONCURRENCY": "3"}.items():
            monkeypatch.setenv(key, value)
        reset_default_limiter()
        reload_runtime()
        yield shared, report
    reset_default_limiter()


def overview_script():
    from ui.monitor import render_overview
    from ui.runtime import get_runtime

    render_overview(get_runtime(), "k")


def budget_table(at: AppTest):
    found = [df.value for df in at.dataframe if {"endpoint", "budget now", "in flight"} <= set(df.value.columns)]
    assert len(found) == 1, [list(df.value.columns) for df in at.dataframe]
    return found[0].set_index("endpoint")


def test_overview_shows_each_endpoints_budget_and_the_calls_in_flight(endpoints):
    shared, report = endpoints
    limiter = get_runtime().supervisor.limits
    at = AppTest.from_function(overview_script, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    table = budget_table(at)
    row = table.loc[shared.provider]
    assert row["roles"] == "QUERY_ENGINE, MEDIA_ENGINE, INSIGHT_ENGINE, FORUM_HOST"
    assert (row["limit"], row["budget now"], row["reserved"], row["shared"], row["in flight"]) == (8, 8, 4, 4, 0)
    assert row["limit from"] == "SHOAL_LLM_CONCURRENCY"
    other = table.loc[report.provider]
    assert (other["roles"], other["limit"], other["limit from"]) == ("REPORT_ENGINE", 3, "REPORT_ENGINE_CONCURRENCY")

    for _ in range(3):  # three query-engine calls and one host call in flight
        assert limiter.acquire(shared.provider, timeout=0, role="QUERY_ENGINE")
    assert limiter.acquire(shared.provider, timeout=0, role="FORUM_HOST")
    try:
        at.run()
        assert not at.exception
        row = budget_table(at).loc[shared.provider]
        assert (row["in flight"], row["in flight per role"], row["calls"]) == (4, "QUERY_ENGINE 3, FORUM_HOST 1", 4)
        assert not [w for w in values(at.warning) if "429" in w]
        # A 429: the budget is cut and the page says so.
        with limiter.slot(shared.provider, timeout=0, role="MEDIA_ENGINE") as slot:
            slot.throttled()
        at.run()
        row = budget_table(at).loc[shared.provider]
        assert (row["budget now"], row["429s"]) == (4, 1)
        assert [w for w in values(at.warning) if w.startswith(f"{shared.provider} answered HTTP 429")]
    finally:
        for _ in range(3):
            limiter.release(shared.provider, role="QUERY_ENGINE")
        limiter.release(shared.provider, role="FORUM_HOST")


def test_settings_page_shows_the_budget_of_every_configured_endpoint_before_any_call(endpoints):
    shared, report = endpoints
    at = AppTest.from_file(str(ROOT / "pages" / "8_Settings.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    table = budget_table(at)
    assert set(table.index) >= {shared.provider, report.provider}
    assert (table.loc[shared.provider, "limit"], table.loc[shared.provider, "calls"]) == (8, 0)
    assert table.loc[report.provider, "limit"] == 3
    # The per-role limit is a setting on the page.
    assert at.number_input(key="set_REPORT_ENGINE_CONCURRENCY").value == 3


def test_the_panel_in_chinese(endpoints):
    shared, _ = endpoints
    limiter = get_runtime().supervisor.limits
    at = AppTest.from_file(str(ROOT / "pages" / "8_Settings.py"), default_timeout=TIMEOUT)
    at.session_state["shoal_lang"] = "zh"
    with limiter.slot(shared.provider, timeout=0, role="MEDIA_ENGINE") as slot:
        slot.throttled()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "LLM 并发额度" in values(at.subheader)
    [df] = [df for df in at.dataframe if "budget now" in df.value.columns]  # the data keeps its column names
    shown = {c: v.get("label") for c, v in json.loads(df.proto.columns).items()}  # the reader sees them translated
    assert (shown["budget now"], shown["in flight per role"], shown["429s"]) == ("当前额度", "各角色进行中", "429 次数")
    assert [w for w in values(at.warning) if w.startswith(f"{shared.provider} 返回 HTTP 429")]
    assert english_leaks(at) == [] and untranslated_keys(at) == []


def test_without_any_llm_the_panel_says_so():
    reset_default_limiter()  # no endpoint called earlier in this process
    reload_runtime()
    at = AppTest.from_function(overview_script, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert not [df for df in at.dataframe if "budget now" in df.value.columns]
    assert "No LLM endpoint is configured or called yet (offline runs make no LLM calls)." in values(at.caption)
