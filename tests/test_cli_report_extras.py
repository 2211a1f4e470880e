"""`python -m core report template add|list|remove` and `report RUN --type TEMPLATE --pdf`, as a user runs them."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest

from core.infra.db import open_database
from core.reporting.pdf import NoCjkFont, find_cjk_font
from tests.support import skip_or_fail
from tests.test_report import add_forum, make_run

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env={**os.environ, "DATABASE_URL": url},
                          capture_output=True, text=True, encoding="utf-8", timeout=180)


def test_templates_from_the_command_line_and_a_report_with_one_as_pdf(tmp_path):
    try:
        find_cjk_font()
    except NoCjkFont as exc:
        skip_or_fail(str(exc))
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    good = tmp_path / "weekly.md"
    good.write_text("# 周报\n## 声量与平台\n各平台的声量。\n## 情绪\n## 建议\n", encoding="utf-8")
    bad = tmp_path / "bad.md"
    bad.write_bytes("## 概览\n".encode("gbk"))
    none = tmp_path / "none.md"
    none.write_text("no headings", encoding="utf-8")

    added = cli("report", "template", "add", str(good), url=url)
    assert added.returncode == 0, added.stderr
    view = json.loads(added.stdout)
    assert view["name"] == "周报" and view["sections"] == ["声量与平台", "情绪", "建议"] and not view["replaced"]
    refused = cli("report", "template", "add", str(bad), url=url)
    assert refused.returncode == 2 and "not UTF-8" in refused.stderr
    refused = cli("report", "template", "add", str(none), url=url)
    assert refused.returncode == 2 and "no headings" in refused.stderr
    listed = cli("report", "template", "list", "--json", url=url)
    assert [v["key"] for v in json.loads(listed.stdout)] == [view["key"]]

    db = open_database(url)
    try:
        run_id = make_run(db)
        add_forum(db, run_id)
    finally:
        db.dispose()
    made = cli("report", run_id, "--type", "周报", "--pdf", url=url)  # the template by its name
    assert made.returncode == 0, made.stderr[-2000:]
    out = json.loads(made.stdout)
    assert out["status"] == "completed" and out["report_type"] == view["key"]
    pdf = Path(out["pdf_path"])
    assert pdf == Path(out["html_path"]).with_suffix(".pdf")
    text = "".join("".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    positions = [text.find(h) for h in ("1.声量与平台", "2.情绪", "3.建议")]
    assert -1 not in positions and positions == sorted(positions), text[:600]

    unknown = cli("report", run_id, "--type", "tpl_00000000", url=url)
    assert unknown.returncode == 2 and "no report template" in unknown.stderr
    removed = cli("report", "template", "remove", view["key"], url=url)
    assert removed.returncode == 0 and json.loads(cli("report", "template", "list", "--json", url=url).stdout) == []
    assert cli("report", "template", "remove", view["key"], url=url).returncode == 1
