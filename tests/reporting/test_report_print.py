"""The HTML report prints well (core/reporting/templates/report.css, @media print): the rules are there,
and headless Chromium (Debian's /usr/bin/chromium through Playwright, skipped when missing) applies
them: with print media the contents box is hidden, figures and tables are not cut, charts fit the
page, link URLs are written out; page.pdf() prints the report without its contents box."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pypdf
import pytest

from core import report as rep
from tests.support.streamlit_server import chromium_browser
from tests.test_report import add_forum, make_run, quick_polls, run_report, sqlite_db, supervisors  # noqa: F401

pytestmark = pytest.mark.timeout(180)
CSS = (Path(rep.TEMPLATES_DIR) / "report.css").read_text(encoding="utf-8")


def print_block(css: str) -> str:
    """The body of the @media print block (braces balanced)."""
    start = css.index("@media print")
    i, depth = css.index("{", start), 0
    for j in range(i, len(css)):
        depth += {"{": 1, "}": -1}.get(css[j], 0)
        if depth == 0:
            return css[i + 1:j]
    raise AssertionError("unbalanced @media print block")


def test_the_stylesheet_has_the_print_rules():
    block = re.sub(r"/\*.*?\*/", "", print_block(CSS), flags=re.S)
    squashed = " ".join(block.split())
    assert re.search(r"@page \{[^}]*margin: \d+mm", squashed)
    assert re.search(r"nav\.toc[^{]*\{ display: none", squashed)
    avoid = next(rule for rule in squashed.split("}") if "break-inside: avoid" in rule)
    assert "figure.chart-box" in avoid and "table" in avoid
    assert 'a[href^="http"]::after { content: " (" attr(href) ")"' in squashed
    assert re.search(r"svg\.chart[^{]*\{ width: 100% !important; max-width: 100% !important", squashed)


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


def written_html(db, supervisors) -> str:
    run_id = make_run(db)
    add_forum(db, run_id)
    _, doc, html_text, _ = run_report(db, supervisors, run_id)
    assert doc["charts"], "the report should have charts to print"
    # one body link to the web, as a section could carry one
    assert '<div class="body">' in html_text
    return html_text.replace('<div class="body">', '<div class="body"><p class="probe-link">'
                             '<a href="https://example.test/page">官网</a></p>', 1)


def test_chromium_prints_without_the_chrome_and_within_the_page(sqlite_db, supervisors, browser, tmp_path):
    html_text = written_html(sqlite_db, supervisors)
    path = tmp_path / "report.html"
    path.write_text(html_text, encoding="utf-8")
    context = browser.new_context(viewport={"width": 1400, "height": 900}, java_script_enabled=True)
    try:
        page = context.new_page()
        page.goto(path.as_uri())
        page.emulate_media(media="screen")
        assert page.eval_on_selector("nav.toc", "e => getComputedStyle(e).display") != "none"
        page.emulate_media(media="print")
        assert page.eval_on_selector("nav.toc", "e => getComputedStyle(e).display") == "none"
        assert page.eval_on_selector("figure.chart-box", "e => getComputedStyle(e).breakInside") == "avoid"
        assert page.eval_on_selector("table.prov-table", "e => getComputedStyle(e).breakInside") == "avoid"
        after = page.eval_on_selector(".probe-link a", "e => getComputedStyle(e, '::after').content")
        assert "https://example.test/page" in after
        # charts no wider than their container (the page's text width when printed)
        widths = page.eval_on_selector_all(
            "figure.chart-box svg.chart",
            "els => els.map(e => [e.getBoundingClientRect().width, e.parentElement.clientWidth])")
        assert widths and all(w <= parent + 0.5 for w, parent in widths)

        data = page.pdf(format="A4")  # Chromium prints with print media
        page.emulate_media(media="screen")
        screen = page.pdf(format="A4")  # the same page printed with the screen's rules, for contrast
    finally:
        context.close()
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = "".join("".join(p.extract_text().split()) for p in reader.pages)
    screen_text = "".join("".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(screen)).pages)
    assert "新能源汽车价格战" in text          # the report is there, in Chinese
    assert "目录" in screen_text and "目录" not in text  # the contents box (nav.toc, "目录") is not
    assert "1/" in text and f"/{len(reader.pages)}" in text  # page numbers from @page
