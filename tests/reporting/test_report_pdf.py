"""The report as PDF (fpdf2 + an embedded CJK font), read back with a PDF text extractor (pypdf)."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pypdf
import pytest

from core.reporting import pdf as report_pdf
from core.reporting.pdf import NoCjkFont, export_pdf, find_cjk_font, render_pdf
from core.reporting.types import ReportDocument
from core.infra.db import open_database
from tests.support import skip_or_fail
from tests.test_report import add_forum, make_run, quick_polls, run_report, supervisors  # noqa: F401

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cjk_font() -> Path:
    try:
        return find_cjk_font()
    except NoCjkFont as exc:
        skip_or_fail(str(exc))


@pytest.fixture
def url_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'pdf.db'}"
    database = open_database(url)
    assert database.ok, database.error
    yield url, database
    database.dispose()


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def squash(text: str) -> str:
    return "".join(text.split())  # the PDF wraps lines where the page ends


def written_report(db, supervisors) -> tuple[ReportDocument, object]:
    run_id = make_run(db)
    add_forum(db, run_id)
    view, _, _, _ = run_report(db, supervisors, run_id, report_type="crisis_response")
    return ReportDocument.from_json(Path(view.json_path).read_text(encoding="utf-8")), view


def test_the_pdf_carries_the_chinese_title_paragraphs_and_headings_in_order(url_db, supervisors, cjk_font):
    _, db = url_db
    doc, _ = written_report(db, supervisors)
    assert doc.zh
    data = render_pdf(doc)
    assert data.startswith(b"%PDF-")
    text = squash(pdf_text(data))
    assert squash(doc.title) in text and "新能源汽车价格战" in doc.title
    headings = [squash(f"{s.index}. {s.title}") for s in doc.sections]
    positions = [text.find(h) for h in headings]
    assert -1 not in positions, (headings, text[:800])
    assert positions == sorted(positions)
    # a paragraph of body text comes back as written: the first line of the first section's Markdown
    first_line = next(line for line in doc.sections[0].markdown.splitlines() if line.strip())
    assert squash(first_line.replace("**", ""))[:30] in text
    assert "来源" in text and squash(doc.sources[0]["title"])[:10] in text
    fonts = {f for page in pypdf.PdfReader(io.BytesIO(data)).pages for f in page["/Resources"]["/Font"].values()}
    assert fonts  # the CJK font is embedded (subset), not left to the reader
    info = pypdf.PdfReader(io.BytesIO(data)).metadata
    assert info.title == doc.title


def test_untrusted_images_and_internal_links_never_break_or_fetch(url_db, supervisors, cjk_font, monkeypatch):
    _, db = url_db
    doc, _ = written_report(db, supervisors)
    fetched: list[str] = []
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: fetched.append(a) or (_ for _ in ()).throw(OSError))
    sec = replace(doc.sections[0], markdown="图片 ![x](https://example.test/p.png) 与链接 [官网](https://example.test/a) "
                                            "引用 [1]，表情 🔥😭 以及 ⚠ 提示。\n\n| 平台 | 数 |\n|---|---|\n| 微博 | 12 |")
    doc = replace(doc, sections=[sec, *doc.sections[1:]])
    text = squash(pdf_text(render_pdf(doc)))
    assert fetched == []
    # the renderer gives an image as its alt text and a link with its URL; the citation stays; a
    # character no font has (🔥) is dropped, ⚠ (and 😭) come from the fallback font
    assert "图片x与链接官网(https://example.test/a)引用[1]，表情" in text
    assert "以及⚠提示。" in text and "🔥" not in text
    assert "微博12" in text


def test_a_missing_font_is_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv(report_pdf.FONT_ENV, str(tmp_path / "nope.ttf"))
    with pytest.raises(NoCjkFont, match="not a file"):
        find_cjk_font()
    monkeypatch.delenv(report_pdf.FONT_ENV)
    monkeypatch.setattr(report_pdf, "FONT_CANDIDATES", ())
    with pytest.raises(NoCjkFont, match="fonts-wqy-microhei"):
        find_cjk_font()


def test_export_and_the_command_line(url_db, supervisors, cjk_font, tmp_path):
    url, db = url_db
    doc, view = written_report(db, supervisors)
    out = export_pdf(view.json_path, tmp_path / "out" / "r.pdf")
    assert out.is_file() and not list(out.parent.glob(".*tmp"))
    assert squash(doc.title) in squash(pdf_text(out.read_bytes()))
    env = {**__import__("os").environ, "DATABASE_URL": url}
    proc = subprocess.run([sys.executable, "-m", "core", "report", "pdf", view.run_id], cwd=ROOT, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=90)
    assert proc.returncode == 0, proc.stderr
    made = Path(json.loads(proc.stdout)["pdf_path"])
    assert made == Path(view.html_path).with_suffix(".pdf") and made.is_file()
    assert squash(doc.title) in squash(pdf_text(made.read_bytes()))
    bad = subprocess.run([sys.executable, "-m", "core", "report", "pdf", "000000000000"], cwd=ROOT, env=env,
                         capture_output=True, text=True, encoding="utf-8", timeout=90)
    assert bad.returncode == 1 and "no completed report" in bad.stderr
