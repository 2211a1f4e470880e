"""Real headless Chromium (Debian's /usr/bin/chromium through Playwright):

1. a generated report opened from disk renders its sections, citations and charts, with no console
   error and no network request but the file itself;
2. an XSS corpus placed in posts, forum messages and LLM output never runs script in the report,
   with its CSP and without it (the sanitiser alone);
3. the guided flow end to end against `streamlit run Home.py`: first start → demo data → an offline
   analysis → Home's links to the report (and its download name) and the forum → the language
   switch. Each step's screenshot is kept under tests/artifacts/guided_flow/.
"""
from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from core import report as rep
from core.infra.config import load_settings
from core.infra.db import open_database
from core.infra.events import EventLog
from core.supervisor import Supervisor
from core.runtime import build_handlers
from tests.conftest import fast_config
from tests.fakes.openai_server import FakeOpenAI
from tests.support.streamlit_server import StreamlitServer, chromium_browser, wait_for_streamlit_idle
from tests.test_report import add_forum, llm_settings, make_run, xss_engines, xss_forum, xss_payloads

pytestmark = [pytest.mark.e2e]

MS = 1000
# Payloads that would leave a trace in window.__xss (or fetch something) if any of them ran.
SENTINEL_PAYLOADS = [
    "<script>window.__xss.push('script')</script>",
    "<img src=x onerror=\"window.__xss.push('img')\">",
    "<svg onload=\"window.__xss.push('svg')\"><circle r=5></circle></svg>",
    "<body onload=\"window.__xss.push('body')\">",
    "<details open ontoggle=\"window.__xss.push('details')\">x</details>",
    "<a id=xss href=\"javascript:window.__xss.push('href')\">link</a>",
    "<iframe srcdoc=\"<script>parent.__xss.push('srcdoc')</script>\"></iframe>",
    "<style>@import 'https://evil.example/x.css';</style>",
    "[md link](javascript:window.__xss.push('md'))",
    "![pixel](https://evil.example/pixel.png)",
    "<object data=\"data:text/html,<script>parent.__xss.push('object')</script>\"></object>",
]
INIT_SCRIPT = """
window.__xss = [];
for (const name of ['alert', 'confirm', 'prompt', 'print']) {
  window[name] = (...args) => { window.__xss.push(name + ':' + args.join(',')); };
}
"""
DANGEROUS_DOM = """() => {
  const out = [];
  for (const el of document.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    if (['script', 'iframe', 'object', 'embed', 'img', 'base', 'form', 'link', 'frame'].includes(tag)) out.push(tag);
    for (const a of el.attributes) {
      const v = a.value.replace(/\\s/g, '').toLowerCase();
      if (a.name.startsWith('on')) out.push(tag + ' ' + a.name);
      const url = ['href', 'src', 'xlink:href', 'action', 'data'].includes(a.name);
      if (url && /^(javascript|data|vbscript):/.test(v)) out.push(tag + ' ' + a.name);
    }
  }
  return out;
}"""


@pytest.fixture
def report_db(tmp_path, monkeypatch):
    monkeypatch.setattr(rep, "WAIT_POLL", 0.05)
    database = open_database(f"sqlite:///{tmp_path / 'e2e.db'}")
    assert database.ok, database.error
    started: list[Supervisor] = []

    def supervisor(settings=None) -> Supervisor:
        sup = Supervisor(database, EventLog(database), fast_config(), handlers=build_handlers())
        sup.settings = settings or load_settings()
        sup.start()
        started.append(sup)
        return sup

    yield database, supervisor
    for sup in started:
        sup.shutdown(timeout=3)
    database.dispose()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module; each test opens fresh contexts in it."""
    with chromium_browser() as chromium:
        yield chromium


@contextmanager
def chromium_page(browser, artifacts: Path, context_options: dict | None = None, log_text=lambda: ""):
    """A page in a fresh context, its console errors, requests and dialogs recorded; on failure a
    screenshot and (for the app) the Streamlit log tail go into the assertion message."""
    context = browser.new_context(**(context_options or {}))
    page = context.new_page()
    page.set_default_timeout(30 * MS)
    rec = {"console": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: rec["console"].append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda exc: rec["console"].append(f"pageerror: {exc}"))
    page.on("request", lambda r: rec["requests"].append(r.url))

    def on_dialog(dialog):
        rec["dialogs"].append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield page, rec
    except Exception as exc:
        shot = artifacts / "failure.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        tail = log_text()
        raise AssertionError(f"{type(exc).__name__}: {exc}\n(screenshot: {shot})"
                             + (f"\nstreamlit log:\n{tail}" if tail else "")) from exc
    finally:
        context.close()


# ---------------------------------------------------------------------------------------- 1


@pytest.mark.timeout(120)
def test_a_generated_report_renders_its_sections_citations_and_charts(browser, report_db, tmp_path):
    db, supervisor = report_db
    run_id = make_run(db)
    add_forum(db, run_id)
    view = rep.wait_report(db, rep.request_report(supervisor(), db, run_id), 60)
    assert view.status == "completed", view.error
    doc = json.loads(Path(view.json_path).read_text(encoding="utf-8"))
    url = Path(view.html_path).as_uri()

    began = time.monotonic()
    with chromium_page(browser, tmp_path) as (page, rec):
        page.goto(url, wait_until="load")
        assert page.title() == doc["report"]["title"]
        assert page.locator("h1").inner_text() == doc["report"]["title"]
        # sections: every heading of the JSON, visible, in order
        headings = page.locator("section.sec > h2").all_inner_texts()
        assert [h.strip() for h in headings] == [f"{s['index']}. {s['title']}" for s in doc["sections"]]
        for s in doc["sections"]:
            assert page.locator(f"#sec-{s['key']} h2").is_visible()
        # citations: every #src-n link resolves to exactly one source entry, and following one lands on it
        hrefs = page.eval_on_selector_all('a[href^="#src-"]', "els => els.map(e => e.getAttribute('href'))")
        assert len(hrefs) >= 6
        numbers = {s["n"] for s in doc["sources"]}
        for href in set(hrefs):
            assert int(href[len("#src-"):]) in numbers, href
            assert page.locator(href).count() == 1 and page.locator(href).evaluate("e => e.tagName") == "LI"
        assert page.locator("ol.sources > li").count() == len(doc["sources"])
        last = max(set(hrefs), key=lambda h: int(h[5:]))
        page.locator(f'a[href="{last}"]').first.click()
        assert page.evaluate("location.hash") == last
        # (a scrolled-to element may sit a fraction of a pixel above the top: seen -0.22 with sub-pixel layout)
        page.wait_for_function("h => { const r = document.querySelector(h).getBoundingClientRect();"
                               " return r.top > -1 && r.top < window.innerHeight; }", arg=last)
        # charts: one inline <svg> per chart, laid out with a real size and drawn marks
        boxes = page.eval_on_selector_all(
            "figure.chart-box svg",
            "els => els.map(e => { const r = e.getBoundingClientRect(); return [e.closest('figure').id,"
            " r.width, r.height, e.querySelectorAll('rect, path, circle, polyline').length]; })")
        assert sorted(b[0] for b in boxes) == sorted(f"chart-{c['key']}" for c in doc["charts"])
        for key, width, height, marks in boxes:
            assert width > 100 and height > 40 and marks > 0, (key, width, height, marks)
        # printing keeps the charts
        page.emulate_media(media="print")
        assert all(w > 0 for w in page.eval_on_selector_all(
            "svg.chart", "els => els.map(e => e.getBoundingClientRect().width)"))
        assert not rec["console"], rec["console"]
        assert not rec["dialogs"]
        assert {u.split("#")[0] for u in rec["requests"]} == {url}, rec["requests"]
    print(f"report in chromium: {time.monotonic() - began:.1f} s")


# ---------------------------------------------------------------------------------------- 2


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["offline", "llm"])
def test_an_xss_corpus_in_posts_and_forum_never_runs_script(browser, report_db, tmp_path, mode):
    db, supervisor = report_db
    payloads = xss_payloads() + SENTINEL_PAYLOADS
    run_id = make_run(db, topic=f"价格战 {SENTINEL_PAYLOADS[1]}", engines=xss_engines(payloads),
                      params={"offline": mode == "offline"})
    xss_forum(db, run_id, payloads)
    body = "\n".join(f"{p} [1]" if i % 2 else f"- {p}" for i, p in enumerate(payloads))

    def respond(req):
        if '"sections"' in req.user:
            return {"title": payloads[0] + SENTINEL_PAYLOADS[0], "sections": [{"key": "facts", "title": payloads[4]}]}
        if '"report_type"' in req.user:
            return {"report_type": "crisis_response", "reason": SENTINEL_PAYLOADS[2]}
        return body

    with FakeOpenAI(responder=respond) as fake:
        sup = supervisor(llm_settings(fake) if mode == "llm" else None)
        view = rep.wait_report(db, rep.request_report(sup, db, run_id, report_type="crisis_response"), 90)
    assert view.status == "completed", view.error
    url = Path(view.html_path).as_uri()
    html_text = Path(view.html_path).read_text(encoding="utf-8")
    assert "window.__xss.push" in html_text  # the payloads are in the report, as text

    # With the report's CSP, and with CSP bypassed: the sanitiser alone must hold.
    for options in ({}, {"bypass_csp": True}):
        with chromium_page(browser, tmp_path, options) as (page, rec):
            page.add_init_script(INIT_SCRIPT)
            page.goto(url, wait_until="load")
            assert page.evaluate("Array.isArray(window.__xss)")  # the sentinel is in place
            assert page.eval_on_selector_all("section.sec", "els => els.length") >= 1
            assert "window.__xss.push" in page.locator("body").inner_text()  # shown as text
            assert page.evaluate(DANGEROUS_DOM) == []
            # hover, focus and click everything a reader could (links only when local): nothing may run
            page.evaluate("""() => {
              for (const el of document.querySelectorAll('body *')) {
                for (const type of ['mouseover', 'mouseenter', 'focus', 'toggle']) el.dispatchEvent(new Event(type));
              }
              for (const a of document.querySelectorAll('a[href^="#"]')) a.click();
            }""")
            for link in page.locator('a[href^="#src-"]').all()[:5]:
                link.click()  # a real click too, through Playwright
            page.wait_for_timeout(500)  # onerror/onload/ontoggle would have fired by now
            assert page.evaluate("window.__xss") == [], options
            assert rec["dialogs"] == [], options
            assert not rec["console"], (options, rec["console"])
            assert {u.split("#")[0] for u in rec["requests"]} == {url}, (options, rec["requests"])


# ---------------------------------------------------------------------------------------- 3


def poll(what: str, predicate, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # kept by CI, ignored by git


def snapper(name: str):
    """snap(page, step): a full-page screenshot of each step under tests/artifacts/<name>/, for a person
    to look at after CI (DESIGN: tested as a person sees it)."""
    folder = ARTIFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    count = iter(range(1, 100))

    def snap(page, step: str) -> None:
        page.screenshot(path=str(folder / f"{next(count):02d}-{step}.png"), full_page=True)

    return snap


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_guided_flow_end_to_end_in_a_real_browser(browser, tmp_path):
    """A new user's first session: an empty corpus leads to the one button that fills it; start an
    analysis; watch it end; follow Home's links to its report (download named <topic>-<date>-report)
    and forum; switch to Chinese and keep it across pages."""
    from playwright.sync_api import expect

    from core.work.jobs import COMPLETED
    from core.work.states import RunState
    from core.work.runs import get_run, list_runs

    data, logs = tmp_path / "data", tmp_path / "logs"
    env = {"SHOAL_DATA_DIR": str(data), "SHOAL_LOG_DIR": str(logs), "SHOAL_ENV_FILE": str(tmp_path / ".env")}
    snap = snapper("guided_flow")
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    server = StreamlitServer("Home.py", env=env, log_path=tmp_path / "streamlit.log", startup_timeout=90).start()
    timings["server"] = time.monotonic() - t0
    db = None
    try:
        with chromium_page(browser, tmp_path, {"viewport": {"width": 1400, "height": 1000}},
                           log_text=lambda: server.log_text(4000)) as (page, rec):
            # First start: Home says the corpus is empty and offers the one button that fixes it
            t = time.monotonic()
            page.goto(server.url, wait_until="domcontentloaded")
            wait_for_streamlit_idle(page, timeout=90)
            expect(page.get_by_text("First start: the local corpus is empty.")).to_be_visible()
            snap(page, "first-start")
            page.get_by_role("button", name="Generate demo data").click()
            expect(page.get_by_text(re.compile(r"Demo data is being generated"))).to_be_visible(timeout=30 * MS)
            db = open_database(f"sqlite:///{data / 'shoal.db'}")
            (demo,) = list_runs(db, limit=5, kind="data")
            poll("the demo data job", lambda: get_run(db, demo.id).status in RunState.FINAL, 180)
            assert get_run(db, demo.id).status == COMPLETED
            page.get_by_role("link", name=re.compile("Data page")).click()  # its progress, now finished
            wait_for_streamlit_idle(page, timeout=60)
            expect(page.get_by_text("Posts in the corpus")).to_be_visible(timeout=30 * MS)
            snap(page, "data-after-demo")
            timings["demo data"] = time.monotonic() - t

            # Home: start an offline analysis of a demo topic, and watch it
            t = time.monotonic()
            page.goto(server.url, wait_until="domcontentloaded")
            wait_for_streamlit_idle(page, timeout=60)
            expect(page.get_by_text("First start: the local corpus is empty.")).to_have_count(0)
            page.get_by_label("Topic").fill("新能源汽车价格战")
            page.get_by_label("Paragraphs").fill("2")
            page.get_by_label("Reflections").fill("0")
            offline = page.get_by_role("checkbox", name=re.compile("Offline analysis"))
            expect(offline).to_be_checked()  # no LLM is configured: the box says what the run will be
            page.get_by_role("button", name="Start").click()
            queued = page.get_by_text(re.compile(r"Run \w+ queued"))
            expect(queued).to_be_visible(timeout=30 * MS)
            run_id = re.search(r"Run (\w+) queued", queued.inner_text()).group(1)
            snap(page, "started")
            assert [r.id for r in list_runs(db, limit=5, kind="analysis")] == [run_id]
            assert get_run(db, run_id).params["offline"] is True and get_run(db, run_id).params["paragraphs"] == 2
            poll("the run to end", lambda: get_run(db, run_id).status in RunState.FINAL, 200)
            assert get_run(db, run_id).status == COMPLETED
            report = rep.latest_report(db, run_id)
            assert report is not None and report.status == "completed", report
            # the page, left open, tells what happened and where to go next, without a reload
            expect(page.get_by_text(re.compile("The analysis completed in"))).to_be_visible(timeout=30 * MS)
            for name in ("Report", "Query engine", "Media engine", "Insight engine", "Forum"):
                expect(page.get_by_test_id("stMain").get_by_role("link", name=name, exact=True)).to_have_attribute(
                    "href", re.compile(rf"run={run_id}"))
            snap(page, "ended-with-links")
            timings["analysis"] = time.monotonic() - t

            # Home's Report link: the run's report, its preview, charts and a download named for people
            t = time.monotonic()
            page.get_by_test_id("stMain").get_by_role("link", name="Report", exact=True).click()
            wait_for_streamlit_idle(page, timeout=60)
            preview = page.get_by_test_id("stHtml")
            expect(preview.first).to_contain_text(report.title, timeout=30 * MS)
            doc = json.loads(Path(report.json_path).read_text(encoding="utf-8"))
            body = preview.nth(1)
            for s in doc["sections"]:
                expect(body.locator(f"#sec-{s['key']} h2")).to_contain_text(s["title"])
            assert body.locator('a[href^="#src-"]').count() >= 1
            assert preview.first.locator(".tiles").evaluate("e => getComputedStyle(e).display") == "flex"
            assert preview.locator("script, img, svg, iframe").count() == 0
            charts = page.get_by_test_id("stImage").locator("img")
            expect(charts).to_have_count(len(doc["charts"]))
            for i in range(len(doc["charts"])):
                assert charts.nth(i).evaluate("e => e.complete && e.naturalWidth > 0"), i
            for label in ("Download HTML", "Download Markdown", "Download JSON"):
                expect(page.get_by_role("button", name=label)).to_be_visible()
            with page.expect_download() as download:
                page.get_by_role("button", name="Download JSON").click()
            topic = get_run(db, run_id).topic  # <topic>-<date>-report.json (core.infra.filenames.download_name)
            assert re.fullmatch(re.escape(topic) + r"-\d{4}-\d{2}-\d{2}-report\.json",
                                download.value.suggested_filename), download.value.suggested_filename
            assert Path(download.value.path()).read_bytes() == Path(report.json_path).read_bytes()
            snap(page, "report")
            timings["report"] = time.monotonic() - t

            # back on Home, the Forum link opens this run's transcript at its newest round
            t = time.monotonic()
            page.goto(server.url, wait_until="domcontentloaded")
            wait_for_streamlit_idle(page, timeout=60)
            page.get_by_test_id("stMain").get_by_role("link", name="Forum", exact=True).click()
            wait_for_streamlit_idle(page, timeout=60)
            expect(page.get_by_text(f"run {run_id}", exact=False).first).to_be_visible(timeout=30 * MS)
            expect(page.get_by_test_id("stChatMessage").first).to_be_visible(timeout=30 * MS)
            expect(page.get_by_text("Round", exact=False).first).to_be_visible()
            snap(page, "forum")
            timings["forum"] = time.monotonic() - t

            # the language switch: the page and the sidebar's page names turn Chinese, and stay so on
            # the next page the reader opens from the menu
            t = time.monotonic()
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_text("中文", exact=True).click()
            wait_for_streamlit_idle(page, timeout=60)
            expect(page.get_by_test_id("stSidebarNav")).to_contain_text("论坛", timeout=30 * MS)
            expect(page.locator("h1").first).to_contain_text("论坛")
            snap(page, "forum-zh")
            page.get_by_test_id("stSidebarNav").get_by_text("报告", exact=True).click()
            wait_for_streamlit_idle(page, timeout=60)
            expect(page.locator("h1").first).to_contain_text("报告", timeout=30 * MS)
            expect(page.get_by_role("button", name="Download JSON")).to_have_count(0)  # its labels are Chinese too
            snap(page, "report-zh")
            assert not [c for c in rec["console"] if "pageerror" in c], rec["console"]
            timings["language"] = time.monotonic() - t
    finally:
        if db is not None:
            db.dispose()
        server.stop()
    timings["total"] = time.monotonic() - t0
    print("guided flow: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
