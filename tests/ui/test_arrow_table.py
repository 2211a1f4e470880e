"""Home's tables as Arrow tables (ui.widgets.arrow_table): what st.dataframe shows from them, column by
column, and that making and sending one loads no pandas (checked in a fresh interpreter)."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow as pa

from ui.widgets import arrow_table

ROOT = Path(__file__).resolve().parents[2]


def test_columns_keep_the_first_rows_order_and_their_types():
    table = arrow_table([{"编号": 7, "话题": "新能源汽车价格战", "份额": 0.5, "完成": True},
                         {"编号": 8, "话题": "武汉大学舆情", "份额": 1.25, "完成": False}])
    assert table.column_names == ["编号", "话题", "份额", "完成"]
    assert [f.type for f in table.schema] == [pa.int64(), pa.string(), pa.float64(), pa.bool_()]
    assert table.to_pylist()[1] == {"编号": 8, "话题": "武汉大学舆情", "份额": 1.25, "完成": False}


def test_empty_cells_stay_empty_and_mixed_or_other_values_become_text():
    table = arrow_table([{"n": 1, "mixed": 1, "when": date(2026, 12, 4), "f": float("nan"), "s": None},
                         {"n": None, "mixed": "two", "when": None, "f": 2.0, "s": "x"}])
    assert [f.type for f in table.schema] == [pa.int64(), pa.string(), pa.string(), pa.float64(), pa.string()]
    assert table.to_pylist() == [{"n": 1, "mixed": "1", "when": "2026-12-04", "f": None, "s": None},
                                 {"n": None, "mixed": "two", "when": None, "f": 2.0, "s": "x"}]


def test_no_rows_is_an_empty_table():
    assert arrow_table([]).num_rows == 0


def test_a_table_made_and_shown_loads_no_pandas():
    """What Home's recent runs and event feed do on a cold start; pyarrow's own constructors and
    st.dataframe's lazy-loading check would import pandas (0.5 s of the first page)."""
    code = """
import json, sys
import streamlit as st
from core.console.usage import cost_label
from ui.widgets import arrow_table
st.dataframe(arrow_table([{"run": "a1", "n": 1}, {"run": "b2", "n": None}]), hide_index=True, lazy=False)
labels = [cost_label(0.5), cost_label(None), cost_label(float("nan"))]
print(json.dumps(["pandas" in sys.modules, labels]))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    loaded, labels = json.loads(out.stdout.strip().splitlines()[-1])
    assert labels == ["$0.5000", "unpriced", "unpriced"]
    assert loaded is False
