"""Large packages load where they are used, not on every first page: importing what Home.py imports
(streamlit, the runtime, the widgets) and the runtime itself loads neither openai, nor pandas, numpy
or jieba (the runtime's warm-up thread loads jieba and numpy; the LLM client and the data pages
import openai and pandas when they run), nor prometheus_client (only a runtime serving /metrics, a port
set, loads it). Checked in a fresh interpreter, by `sys.modules`."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAZY = ("openai", "pandas", "numpy", "jieba", "pyarrow", "altair", "prometheus_client")


def loaded_after(code: str) -> list[str]:
    probe = code + f"\nimport json, sys\nprint(json.dumps(sorted(m for m in {LAZY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_runtime_imports_no_large_package_it_does_not_use():
    assert loaded_after("import core.runtime") == []


def test_home_pages_imports_load_no_large_package():
    # Home.py (the menu) and Home's page (pages/0_Start.py) are thin: its panels (ui.home_view) import
    # core.analysis, the runtime and the widgets
    trees = [ast.parse((ROOT / f).read_text(encoding="utf-8")) for f in ("Home.py", "pages/0_Start.py")]
    imports = "\n".join(ast.unparse(n) for tree in trees for n in tree.body
                        if isinstance(n, (ast.Import, ast.ImportFrom)))
    assert "ui.navigation" in imports and "ui.home_view" in imports and "ui.widgets" in imports
    assert "core.analysis" in (ROOT / "ui" / "home_view.py").read_text(encoding="utf-8")
    assert loaded_after(imports) == []


def test_the_probe_sees_a_package_that_is_imported():
    assert loaded_after("import core.text.sentiment as s\ns.score(\"今天很开心\")") == ["jieba", "numpy"]


def test_the_report_engine_loads_with_the_first_report_not_with_home():
    # core.report (Jinja, Markdown, the report's text tools) is registered by kind; Home lists the custom
    # templates without their Markdown parser (core.reporting.custom_templates) and imported by
    # the first report job (core.runtime._run_report_job) or report request (core.analysis)
    code = ("import core.runtime, ui.home_view, sys\n"
            "print('core.report' in sys.modules, 'jinja2' in sys.modules, 'markdown_it' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["False", "False", "False"]
    from core.reporting.inputs import KIND
    from core.runtime import REPORT_KIND, _run_report_job, build_handlers

    assert REPORT_KIND == KIND and build_handlers()[KIND].fn is _run_report_job


def test_the_monitor_threads_tasks_load_no_pandas():
    """The alert tick, resource sampling, health checks and stall detection run on the monitor thread,
    beside the analyses: importing pandas there (0.3 s holding the interpreter, 5 s after start) held
    up every analysis thread of the first run. Each task runs once, with LLM calls to take percentiles of."""
    code = """
import os, tempfile
tmp = tempfile.mkdtemp()
os.environ.update(SHOAL_DATA_DIR=tmp + "/data", SHOAL_LOG_DIR=tmp + "/logs", SHOAL_ENV_FILE=tmp + "/.env")
from core.infra.config import load_settings
from core.infra.models import LlmCall
from core.runtime import build_runtime
rt = build_runtime(settings=load_settings(env=dict(os.environ)), console_log=False)
with rt.db.session() as s:
    s.add_all([LlmCall(role="QUERY_ENGINE", model="m", latency_ms=100.0 + i, status="ok") for i in range(20)])
tasks = sorted(rt.monitor.status())
assert {"alerts", "health", "resources", "stalls"} <= set(tasks), tasks
assert all(rt.monitor.run_task(name) for name in tasks)
rt.close()
"""
    assert "pandas" not in loaded_after(code)
