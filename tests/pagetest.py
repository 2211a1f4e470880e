"""What every page test shares: a runtime built from the test's own environment, and element values.

Pages get the runtime from a Streamlit cache_resource shared by the whole test process, so each
test rebuilds it (its own SQLite file, logs and .env from tests/conftest.py's isolated_env) and
closes it afterwards. Import `fresh_runtime` into a page-test module to use it there.
"""
from __future__ import annotations

import pytest

from ui.runtime import reload_runtime


@pytest.fixture(autouse=True)
def fresh_runtime(isolated_env):
    reload_runtime()
    yield
    reload_runtime()


def values(elements) -> list[str]:
    return [str(e.value) for e in elements]
