"""Where a user sees a CSV's broken rows: `python -m core data import` and the Data page both list
the unterminated quote at its line, and the rows after it are imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.pagetest import fresh_runtime  # noqa: F401 - an autouse fixture

ROOT = Path(__file__).resolve().parents[2]
CSV = ("content,platform,likes\n"
       "第一条帖子,weibo,1\n"
       "\"引号没有闭合的一行,weibo,2\n"   # line 3
       "第三条帖子,douyin,3\n"
       "第四条帖子,xhs,很多\n"            # line 5: a bad count
       "第五条帖子,zhihu,5\n")


def test_cli_import_lists_the_unterminated_quote_and_keeps_the_rows_after_it(isolated_env):
    path = isolated_env / "posts.csv"
    path.write_text(CSV, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "core", "data", "import", str(path)], cwd=ROOT,
                          env=os.environ.copy(), capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert (report["imported"], report["error_count"]) == (3, 2)
    [(quote_line, quote_msg), (count_line, count_msg)] = report["errors"]
    assert quote_line == 3 and "unterminated quote" in quote_msg
    assert count_line == 5 and "likes" in count_msg


def test_data_page_lists_the_unterminated_quote_and_keeps_the_rows_after_it():
    at = AppTest.from_file(str(ROOT / "pages" / "7_Data.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    at.file_uploader(key="data_upload").set_value(("posts.csv", CSV.encode(), "text/csv"))
    at.run()
    at.button(key="data_import_file").click().run()
    assert not at.exception, [e.value for e in at.exception]
    # the import is a supervisor job: wait for it, then look again
    from core.corpus.data_jobs import latest_data_run
    from ui.runtime import get_runtime

    rt = get_runtime()
    run = latest_data_run(rt.db)
    assert rt.supervisor.wait_run(run.id, 60) == "completed"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [warning] = [w.value for w in at.warning]
    assert "3 imported" in warning and "2 errors" in warning
    [errors] = [df.value for df in at.dataframe if "error" in df.value.columns]
    assert list(errors["row"]) == [3, 5] and "unterminated quote" in errors["error"][0]
