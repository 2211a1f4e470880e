"""What every page test shares: a runtime built from the test's own environment, and element values.

Pages get the runtime from a Streamlit cache_resource shared by the whole test process, so each
test rebuilds it (its own SQLite file, logs and .env from tests/conftest.py's isolated_env) and
closes it afterwards. Import `fresh_runtime` into a page-test module to use it there.

AppTest sends no request, so pages would see a visitor that is not local and turn control actions
off; fresh_runtime makes every page test a local visitor unless the test calls visit_as(REMOTE).
"""
from __future__ import annotations

import pytest

import ui.access
from core.infra.access import Visitor
from ui.runtime import reload_runtime

READ_REQUEST = ui.access.request_visitor  # the real st.context reader, kept before any test replaces it
LOCAL = Visitor(has_request=True, host="localhost:8501", origin="http://localhost:8501")
REMOTE = Visitor(has_request=True, host="shoal-demo.streamlit.app", client_ip="203.0.113.7",
                 origin="https://shoal-demo.streamlit.app")


def visit_as(monkeypatch, visitor: Visitor) -> None:
    """Pages see this visitor's request (what st.context gives in a real session)."""
    monkeypatch.setattr(ui.access, "request_visitor", lambda: visitor)


@pytest.fixture(autouse=True)
def fresh_runtime(isolated_env, monkeypatch):
    visit_as(monkeypatch, LOCAL)
    reload_runtime()
    yield
    reload_runtime()


def values(elements) -> list[str]:
    return [str(e.value) for e in elements]
