"""The Report page through AppTest: reports of a run, generate and cancel, the live panel by cursor,
the partial banner, the preview (no raw untrusted HTML), downloads, history."""
from __future__ import annotations

import base64
import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from core import report as rep
from core.analysis import start_analysis
from core.corpus.importers import import_records
from core.infra.clock import as_zone, server_zone
from core.work.jobs import COMPLETED, FAILED, RUNNING
from core.reporting.sanitise import ALLOWED_TAGS as PREVIEW_TAGS  # the one sanitiser's allow-list
from ui.report_view import PREVIEW_CSS
from ui.runtime import get_runtime, reload_runtime
from tests.research.test_engine import corpus_records
from tests.test_report import add_forum, make_run, standard_engines
from tests.pagetest import LOCAL, values, visit_as
from tests.support.screen import english_leaks, untranslated_keys

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "pages" / "5_Report.py"
TIMEOUT = 30
TOPIC = "新能源汽车价格战"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def fresh_runtime(isolated_env, monkeypatch):
    """A runtime built from this test's environment (its own SQLite file), closed when the test ends."""
    monkeypatch.setattr(rep, "WAIT_POLL", 0.05)
    visit_as(monkeypatch, LOCAL)  # AppTest sends no request: without this the page sees a remote visitor
    reload_runtime()
    yield
    reload_runtime()


def render(at: AppTest | None = None) -> AppTest:
    at = (AppTest.from_file(str(PAGE), default_timeout=TIMEOUT) if at is None else at).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def html_bodies(at: AppTest) -> list[str]:
    return [e.proto.body for e in at.get("html")]


def images(at: AppTest) -> list[str]:
    """The SVG of every st.image on the page (they are data: URIs)."""
    out = []
    for e in at.get("image"):
        for img in e.proto.imgs:
            assert img.url.startswith("data:image/svg+xml;base64,"), img.url[:60]
            out.append(base64.b64decode(img.url.split(",", 1)[1]).decode("utf-8"))
    return out


def progress_values(at: AppTest) -> list[int]:
    return [e.proto.value for e in at.get("progress")]


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def offline_run(records: list[dict] | None = None, topic: str = TOPIC) -> str:
    """A real offline analysis through the cached runtime's supervisor; it requests its own report."""
    rt = get_runtime()
    assert rt.supervisor is not None, rt.problems
    import_records(rt.db, records or corpus_records(), source="test")
    # the test corpus is below SHOAL_MIN_SOURCES: the analyst asks for the report anyway
    run_id = start_analysis(rt.supervisor, rt.settings, topic, offline=True, paragraphs=2, reflections=0,
                            force_report=True)
    assert rt.supervisor.wait_run(run_id, 120) == COMPLETED
    return run_id


def running_engines() -> dict:
    """Three engines still running (no lease: nobody takes them over); query has one finished paragraph."""
    engines = standard_engines()
    q_status, q_result, q_docs = engines["query"]
    checkpoint = {"structure": [{"index": 0, "title": "事件概览"}, {"index": 1, "title": "后续走向与展望"}],
                  "paragraphs": {"0": {"summary": "- 比亚迪宣布全系降价，价格战愈演愈烈 [1]", "sources": [1]}}}
    engines["query"] = (RUNNING, None, q_docs, checkpoint)
    engines["media"] = (RUNNING, None, engines["media"][2])
    return engines


class Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.problems: list[str] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name.startswith("on") or name in ("src", "srcdoc", "style", "action", "formaction"):
                self.problems.append(f"<{tag} {name}>")
            if name == "href" and not ((value or "").startswith(("#", "http://", "https://")) or
                                       re.fullmatch(r"/Monitor\?trace=[A-Za-z0-9._-]{4,80}", value or "")):
                # the only relative link: the app's trace view (a report's provenance links)
                self.problems.append(f"<{tag} href={value!r}>")

    def handle_data(self, data):
        self.text += data


def parsed(body: str) -> Tags:
    assert body.startswith(PREVIEW_CSS)
    p = Tags()
    p.feed(body[len(PREVIEW_CSS):])
    p.close()
    return p


# ---------------------------------------------------------------------------------------- empty


def test_without_runs_the_page_says_how_a_report_appears():
    at = render()
    assert at.title[0].value == "📄 Report"
    [info] = [i.value for i in at.info if "No analysis has run yet" in i.value]
    assert "Home" in info
    assert not at.download_button and not at.get("html") and not at.get("progress")
    assert not [b for b in at.button if b.label in ("Generate", "Cancel")]
    assert not at.error and not at.exception


# ---------------------------------------------------------------------------------------- completed


def test_a_completed_run_shows_its_report_with_preview_and_downloads(monkeypatch):
    deferred = {}
    real_add = MediaFileManager.add_deferred

    def capture(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        deferred[file_name] = (data_callable, mimetype)
        return real_add(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", capture)
    run_id = offline_run()
    rt = get_runtime()
    (view,) = rep.list_reports(rt.db, run_id)
    assert view.status == "completed", view.error
    doc = json.loads(Path(view.json_path).read_text(encoding="utf-8"))

    at = render()
    assert at.selectbox(key="report_run").value == run_id
    assert at.selectbox(key="report_pick").value == view.id
    table = next(df.value for df in at.dataframe if "stage" in df.value.columns and "run" not in df.value.columns)
    assert list(table["report"]) == [view.id] and list(table["status"]) == ["completed"]
    assert list(table["stage"]) == ["done"] and list(table["progress"]) == [1.0]
    # the live panel: status, stage done, progress 100 %, the report's events
    assert progress_values(at) == [100]
    assert any("completed" in m and "stage **done**" in m for m in values(at.markdown)), values(at.markdown)
    events = next(df.value for df in at.dataframe if "event" in df.value.columns)
    assert events["event"].iloc[0] == "report.completed" and "report.queued" in set(events["event"])
    # no missing inputs: no warning, the partial box starts unticked
    assert not at.warning and at.checkbox(key=f"report_partial_{run_id}").value is False

    # the preview: sanitised HTML with the title and every section heading, charts as images
    bodies = html_bodies(at)
    assert len(bodies) == 2
    preview = "\n".join(bodies)
    assert doc["report"]["title"] in preview and view.title == doc["report"]["title"]
    for s in doc["sections"]:
        assert f"{s['index']}. {s['title']}" in preview
    assert 'href="#src-1"' in preview and 'id="src-1"' in preview
    svgs = images(at)
    assert len(svgs) == 4 and all(s.startswith("<svg") and "<script" not in s for s in svgs)
    # the claims check: its count at the top of the preview and in a caption
    counts = doc["claims_count"]
    assert f"{counts['total']} 条论断，{counts['supported']} 条有来源支持" in bodies[0]
    [claims] = [c for c in values(at.caption) if "Claims check:" in c]
    assert f"{counts['total']} claims" in claims and (counts["unsupported"] == 0) == claims.startswith("✅")
    # the Markdown tab: the file, without HTML
    md = [m for m in at.markdown if m.value.startswith("# ")]
    assert len(md) == 1 and md[0].value.startswith(f"# {doc['report']['title']}") and md[0].proto.allow_html is False

    # downloads: four buttons, the files' names and types, read only when clicked
    assert [b.label for b in at.download_button] == ["Download HTML", "Download Markdown", "Download JSON",
                                                     "Download PDF"]
    # named <topic>-<date>-report.<ext> (the date the report was written, in the page's zone)
    day = as_zone(view.created_at, server_zone()).strftime("%Y-%m-%d")
    names = {f"{TOPIC}-{day}-report.{ext}": mime for ext, mime in (("html", "text/html"), ("md", "text/markdown"),
                                                                  ("json", "application/json"))}
    assert {n: deferred[n][1] for n in names} == names
    assert deferred[f"{TOPIC}-{day}-report.json"][0]() == Path(view.json_path).read_bytes()
    # the PDF is drawn from the JSON document when clicked (tests/reporting/test_report_pdf.py reads its text)
    pdf_call, pdf_mime = deferred[f"{TOPIC}-{day}-report.pdf"]
    assert pdf_mime == "application/pdf" and pdf_call().startswith(b"%PDF-")

    # history across runs
    across = next(df.value for df in at.dataframe if "run" in df.value.columns)
    assert list(across["run"]) == [run_id] and list(across["topic"]) == [TOPIC]

    # a file that disappeared: a clear message, no button for it, no crash
    Path(view.md_path).unlink()
    render(at)
    assert [w for w in values(at.warning) if "Markdown" in w and "missing" in w], values(at.warning)
    assert [b.label for b in at.download_button] == ["Download HTML", "Download JSON", "Download PDF"]

    # the preview is drawn from the JSON document, never from the HTML file: without the HTML file it
    # still shows, and what the document says is what the page shows
    Path(view.html_path).unlink()
    doc["report"]["title"] = "来自 JSON 文档的标题"
    Path(view.json_path).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    render(at)
    bodies = html_bodies(at)
    assert len(bodies) == 2 and "来自 JSON 文档的标题" in bodies[0] and len(images(at)) == 4
    # a JSON file that cannot be read: a clear message instead of a preview
    Path(view.json_path).write_text("{not json", encoding="utf-8")
    render(at)
    assert not html_bodies(at) and [w for w in values(at.warning) if "JSON" in w and "previewed" in w]


def test_generate_adds_a_report_that_completes():
    rt = get_runtime()
    run_id = make_run(rt.db)  # engines completed, written directly: no automatic report
    add_forum(rt.db, run_id)
    at = render()
    assert "This run has no report yet. Generate one above." in values(at.caption)
    at.selectbox(key="report_type").set_value("crisis_response")
    button(at, "Generate").click()
    render(at)
    (view,) = rep.list_reports(rt.db, run_id)
    assert not view.partial
    assert [s for s in values(at.success) if view.id in s and "queued" in s], values(at.success)
    assert at.selectbox(key="report_pick").value == view.id
    assert rep.wait_report(rt.db, view.id, 60).status == "completed"
    render(at)
    table = next(df.value for df in at.dataframe if "stage" in df.value.columns and "run" not in df.value.columns)
    assert list(table["report"]) == [view.id] and list(table["status"]) == ["completed"]
    assert list(table["type"]) == ["Crisis response"]  # the type's name in the reader's language
    assert progress_values(at) == [100] and len(at.download_button) == 4
    # a second one: a new row on top, selected
    button(at, "Generate").click()
    render(at)
    views = rep.list_reports(rt.db, run_id)
    assert len(views) == 2 and at.selectbox(key="report_pick").value == views[0].id != view.id
    assert rep.wait_report(rt.db, views[0].id, 60).status == "completed"
    render(at)
    table = next(df.value for df in at.dataframe if "stage" in df.value.columns and "run" not in df.value.columns)
    assert list(table["report"]) == [views[0].id, view.id] and set(table["status"]) == {"completed"}


def test_cancel_a_report_that_waits_for_running_engines():
    rt = get_runtime()
    run_id = make_run(rt.db, engines=running_engines(), run_status="running")
    at = render()
    [warning] = [w for w in values(at.warning) if "Not every engine of this run has completed" in w]
    # what is missing, in the reader's language (the report itself follows the topic's)
    assert r"Query engine\: still running" in warning and r"Media engine\: still running" in warning
    assert "Insight" not in warning
    partial_box = at.checkbox(key=f"report_partial_{run_id}")
    assert partial_box.value is True  # offered when inputs are missing
    partial_box.uncheck()
    render(at)
    button(at, "Generate").click()
    render(at)
    (view,) = rep.list_reports(rt.db, run_id)
    assert view.partial is False and view.status in ("pending", "running")
    # a second full report while one waits: refused, and the page says why
    button(at, "Generate").click()
    render(at)
    assert [e for e in values(at.error) if "Could not generate a report" in e and "already" in e], values(at.error)
    assert len(rep.list_reports(rt.db, run_id)) == 1
    # it waits, live: stage "waiting" and a report.waiting event naming the engines
    end = time.monotonic() + 30
    while time.monotonic() < end and rep.get_report(rt.db, view.id).status != "running":
        time.sleep(0.05)
    render(at)
    assert at.selectbox(key="report_pick").value == view.id
    assert not at.download_button and not at.get("html")
    assert "The preview and downloads appear here when the report is completed." in values(at.caption)
    cancel = button(at, "Cancel")
    assert not cancel.disabled
    cancel.click()
    render(at)
    assert rep.get_report(rt.db, view.id).status == "cancelled"
    assert [s for s in values(at.success) if view.id in s and "cancelled" in s], values(at.success)
    assert any("cancelled" in m and "stage **waiting**" in m for m in values(at.markdown)), values(at.markdown)
    assert button(at, "Cancel").disabled
    events = next(df.value for df in at.dataframe if "event" in df.value.columns)
    assert events["event"].iloc[0] == "report.cancelled" and "report.waiting" in set(events["event"])


def test_a_partial_report_names_what_is_missing():
    rt = get_runtime()
    run_id = make_run(rt.db, engines=running_engines(), run_status="running")
    add_forum(rt.db, run_id)
    at = render()
    assert at.checkbox(key=f"report_partial_{run_id}").value is True
    button(at, "Generate").click()
    render(at)
    (view,) = rep.list_reports(rt.db, run_id)
    assert view.partial is True
    assert rep.wait_report(rt.db, view.id, 60).status == "completed"
    render(at)
    assert "A partial report: its banner says what was missing when it was written." in values(at.caption)
    head = html_bodies(at)[0]
    assert 'id="partial-banner"' in head and "部分报告" in head
    assert "Query 引擎：仍在运行，共 2 段中完成了 1 段，已采用这 1 段" in head and "Media 引擎：仍在运行" in head
    assert "Insight 引擎" not in head.split('id="partial-banner"')[1].split("</div>")[0]
    table = next(df.value for df in at.dataframe if "stage" in df.value.columns and "run" not in df.value.columns)
    assert list(table["partial"]) == [True]


# ---------------------------------------------------------------------------------------- live panel


def live_script(run_id: str, report_id: str):
    from ui.report_view import render_live

    render_live("k", run_id, report_id)


def test_the_live_body_reads_only_new_report_events_after_its_cursor(monkeypatch):
    import ui.report_view as view_mod

    rt = get_runtime()
    run_id = make_run(rt.db)
    rid = rep.request_report(rt.supervisor, rt.db, run_id)
    assert rep.wait_report(rt.db, rid, 60).status == "completed"
    at = AppTest.from_function(live_script, default_timeout=TIMEOUT, kwargs={"run_id": run_id, "report_id": rid})
    render(at)
    feed = at.session_state["k"]
    first = feed.cursor
    assert feed.report_id == rid and first > 0 and feed.buffer[-1].type == "report.completed"
    assert progress_values(at) == [100]
    n_first = len(feed.buffer)

    calls = []
    real = rep.report_events

    def counting(events, run, cursor=0, **kwargs):
        out = real(events, run, cursor, **kwargs)
        calls.append((run, cursor, kwargs.get("report_id"), len(out[0])))
        return out

    monkeypatch.setattr(view_mod.rep, "report_events", counting)
    render(at)
    assert calls == [(run_id, first, rid, 0)]  # one read, from the cursor, nothing new

    # a second report of the run, other events of the run, then new events of this report
    other = rep.request_report(rt.supervisor, rt.db, run_id)
    rt.events.emit("job.progress", run_id=run_id, source="test", payload={"report_id": rid})
    new = [rt.events.emit("report.stage", run_id=run_id, source="report", payload={"report_id": rid, "stage": s},
                           wait=True) for s in ("assemble", "render")]
    calls.clear()
    render(at)
    feed = at.session_state["k"]
    assert len(calls) == 1 and calls[0][1] == first and calls[0][3] == 2
    assert [e.id for e in list(feed.buffer)[-2:]] == new and len(feed.buffer) == n_first + 2
    assert all(e.payload["report_id"] == rid for e in feed.buffer)
    shown = next(df.value for df in at.dataframe if "event" in df.value.columns)
    assert list(shown["id"])[:2] == new[::-1] and "stage=render" in shown["detail"].iloc[0]
    assert f"cursor {feed.cursor}" in at.caption[-1].value
    assert rep.wait_report(rt.db, other, 60).status == "completed"

    # a burst larger than the buffer: the cursor follows, the buffer stays bounded
    with rt.db.session() as s:
        last = [rt.events.emit("report.section", run_id=run_id, source="report", session=s,
                               payload={"report_id": rid, "done": n}) for n in range(250)][-1]
    render(at)
    feed = at.session_state["k"]
    assert feed.cursor >= last and len(feed.buffer) == feed.maxlen == 200 and feed.buffer[-1].id == last


# ---------------------------------------------------------------------------------------- untrusted


def test_html_in_posts_never_reaches_the_page_as_html():
    records = corpus_records()
    for i in range(3):
        records.append({"platform": "weibo", "post_id": f"xss{i}", "title": f"价格战 {XSS_SCRIPT}",
                        "content": f"新能源汽车价格战 {XSS_SCRIPT} 老车主不满 {XSS_IMG} 降价 第{i}条",
                        "author": f"攻击者{XSS_IMG}", "publish_time": f"2025-03-0{i + 2} 12:00:00",
                        "likes": 9000 + i, "comments": 500, "shares": 200, "url": "javascript:alert(1)",
                        "keyword": "新能源汽车"})
    run_id = offline_run(records)
    rt = get_runtime()
    (view,) = rep.list_reports(rt.db, run_id)
    assert view.status == "completed", view.error
    html_file = Path(view.html_path).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_file  # the payload made it into the report, as text

    at = render()
    bodies = html_bodies(at)
    assert len(bodies) == 2
    escaped = 0
    for body in bodies:
        p = parsed(body)
        assert not p.problems, p.problems
        assert set(p.tags) <= PREVIEW_TAGS, set(p.tags) - PREVIEW_TAGS
        low = body.lower()
        for bad in ("<script", "<img", "href=\"javascript:"):
            assert bad not in low, (bad, low[max(0, low.find(bad) - 200):low.find(bad) + 100])
        escaped += p.text.count(XSS_SCRIPT) + p.text.count(XSS_IMG)
    assert escaped > 0  # shown as text
    for svg in images(at):
        assert "<script" not in svg.lower() and "onerror" not in svg.lower() and "<img" not in svg.lower()
    for m in at.markdown:
        assert m.proto.allow_html is False
    md = next(m.value for m in at.markdown if m.value.startswith("# "))
    assert "<script" not in md.lower() and "<img" not in md.lower()


def test_generate_and_cancel_are_locked_behind_the_admin_password(monkeypatch):
    monkeypatch.setenv("SHOAL_ADMIN_PASSWORD", "open-sesame-42")
    reload_runtime()
    rt = get_runtime()
    make_run(rt.db)
    at = render()
    assert button(at, "Generate").disabled
    assert "Generating and cancelling reports needs the admin password." in values(at.caption)
    at.text_input(key="report_pw").input("open-sesame-42")
    render(at)
    assert not button(at, "Generate").disabled


# ---------------------------------------------------------------------------------------- both languages


def check_screen(at: AppTest, lang: str, *data: str) -> None:
    assert untranslated_keys(at) == []
    if lang == "zh":
        assert english_leaks(at, allowed=tuple(d for d in data if d)) == []


def page_in(lang: str) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.session_state["shoal_lang"] = lang
    return render(at)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_page_in_both_languages_in_every_state(lang):
    """None, writing, done, partial, failed: every text from the catalogue, in the reader's language;
    the report itself keeps the language it was written in, named above its preview."""
    rt = get_runtime()
    words = {"zh": ("还没有任何分析", "生成", "本次运行的报告", "报告语言：中文"),
             "en": ("No analysis has run yet", "Generate", "Reports of this run", "Written in 中文")}[lang]
    at = page_in(lang)  # none
    assert words[0] in at.info[0].value
    check_screen(at, lang)

    # done: a Chinese topic's report, read in either language
    done = make_run(rt.db)
    add_forum(rt.db, done)
    rid = rep.request_report(rt.supervisor, rt.db, done)
    assert rep.wait_report(rt.db, rid, 60).status == "completed"
    at = page_in(lang)
    assert button(at, words[1]) and words[2] in [s.value for s in at.subheader]
    assert any(c.startswith(words[3]) for c in values(at.caption)), values(at.caption)
    assert len(at.download_button) == 4 and len(html_bodies(at)) == 2
    check_screen(at, lang, TOPIC, rid, done)

    # writing: a full report waiting for running engines (its job's message is shown as it is given)
    waiting = make_run(rt.db, engines=running_engines(), run_status="running")
    wid = rep.request_report(rt.supervisor, rt.db, waiting)
    at = page_in(lang)
    assert at.selectbox(key="report_pick").value == wid and not at.download_button
    assert ("等待引擎" if lang == "zh" else "waiting") in at.progress[0].proto.text
    assert ("报告完成后" if lang == "zh" else "The preview and downloads appear") in " ".join(values(at.caption))
    job = rep.report_job_id(rt.db, wid)
    from core.work.runs import get_job
    message = get_job(rt.db, job).message if job else ""
    check_screen(at, lang, TOPIC, wid, waiting, message if isinstance(message, str) else "")
    rep.cancel_report(rt.supervisor, wid, timeout=5)

    # partial: written from what is there; the page lists what is missing in the reader's language
    pid = rep.request_report(rt.supervisor, rt.db, waiting, partial=True, language="en")
    assert rep.wait_report(rt.db, pid, 60).status == "completed"
    at = page_in(lang)
    warning = next(w for w in values(at.warning) if "Query" in w)
    assert ("Query 引擎：仍在运行" if lang == "zh" else r"Query engine\: still running") in warning
    head = html_bodies(at)[0]
    assert "Partial report" in head
    assert "Query engine: still running; used the 1 of 2 paragraphs it had finished" in head
    english = "Written in English, as chosen" if lang == "en" else "报告语言：English（按所选）"
    assert any(c.startswith(english) for c in values(at.caption)), values(at.caption)
    check_screen(at, lang, TOPIC, pid, waiting)

    # failed: an engine failed, so the automatic report was not written
    engines = standard_engines()
    engines["media"] = (FAILED, None, [])
    failed = make_run(rt.db, engines=engines, run_status="running")
    fid = rep.request_report(rt.supervisor, rt.db, failed)
    assert rep.wait_report(rt.db, fid, 60).status == "error"
    at = page_in(lang)
    assert at.error and ("报告未能生成" if lang == "zh" else "The report was not written") in at.error[0].value
    check_screen(at, lang, TOPIC, fid, failed)


def test_the_live_panel_shows_what_the_report_job_says_while_it_writes():
    rt = get_runtime()
    run_id = make_run(rt.db, engines=running_engines(), run_status="running")
    rid = rep.request_report(rt.supervisor, rt.db, run_id)  # waits for the running engines
    from sqlalchemy import update
    from core.infra.models import Job
    with rt.db.session() as s:
        s.execute(update(Job).where(Job.id == rep.report_job_id(rt.db, rid))
                  .values(message="report: waiting for query"))
    at = AppTest.from_function(live_script, default_timeout=TIMEOUT, kwargs={"run_id": run_id, "report_id": rid})
    render(at)
    assert "Now: report\\: waiting for query" in values(at.caption), values(at.caption)
    assert button(at, "Cancel")
