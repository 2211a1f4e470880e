"""A link `Monitor?trace=<id>` (a report's provenance links, issue 15 part 5) opens the Monitor page on
its Traces tab with that trace, through Streamlit's AppTest on the cached runtime."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from ui.monitor import TAB_OVERVIEW, TAB_TRACES
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture
from tests.ui.test_monitor_page import (OTHER_TRACE, PAGE, PRICED, TIMEOUT, TRACE, UNPRICED, all_known_data,
                                        frame_with)


def open_link(trace: str) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params["trace"] = trace
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_trace_link_opens_the_traces_tab_on_that_trace():
    all_known_data()
    # a paragraph's trace is a child of its job's: the link shows that job's records only
    at = open_link(f"{TRACE}.query")
    assert at.session_state["monitor_tab"] == TAB_TRACES
    assert at.text_input(key="monitor_trace").value == f"{TRACE}.query"
    calls = frame_with(at, "role", "model", "latency_ms", "trace_id")
    assert len(calls) == 100 and set(calls["model"]) == {PRICED}
    assert "trace" not in at.query_params  # used once: the reader's own choices hold afterwards
    at.run()
    assert at.text_input(key="monitor_trace").value == f"{TRACE}.query"
    # not the selected run's trace: a link to another trace opens that one
    at = open_link(OTHER_TRACE)
    calls = frame_with(at, "role", "model", "latency_ms", "trace_id")
    assert len(calls) == 20 and set(calls["model"]) == {UNPRICED}


def test_a_link_without_a_trace_id_opens_the_page_as_usual():
    all_known_data()
    at = open_link('x"><script>')
    assert at.session_state["monitor_tab"] == TAB_OVERVIEW
    assert "trace" not in at.query_params
    assert not any("script" in v for v in values(at.markdown))
