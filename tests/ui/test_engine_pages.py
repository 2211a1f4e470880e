"""The three engine pages (issue 3 item 6) through Streamlit's AppTest, on the cached runtime.

Every test builds the process's runtime from its own isolated environment (as tests/ui/test_pages.py
does) and runs analyses through that runtime's supervisor, so the pages read what really ran.
The live panels are fragments with run_every; AppTest never fires those timers, so their bodies
(`render_state`, `render_console`) are also tested directly, including incremental reading.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.analysis import start_analysis
from core.corpus.importers import import_records
from core.infra.logtail import LogTail
from core.research.results import stored_sources
from core.work.runs import get_job, get_run, jobs_of
from tests.conftest import wait_for
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.search_servers import FakeTavilyServer
from tests.research.test_engine import corpus_records, llm_responder
from ui.runtime import get_runtime, reload_runtime
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
PAGES = {"query": ROOT / "pages" / "1_Query_Engine.py", "media": ROOT / "pages" / "2_Media_Engine.py",
         "insight": ROOT / "pages" / "3_Insight_Engine.py"}
TIMEOUT = 60
TOPIC = "新能源汽车价格战"


def page(engine: str) -> AppTest:
    at = AppTest.from_file(str(PAGES[engine]), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def fill_corpus() -> None:
    report = import_records(get_runtime().db, corpus_records(), source="test")
    assert report.imported == 11, report.as_dict()


def offline_run(engines=None, paragraphs: int = 2, reflections: int = 1) -> str:
    rt = get_runtime()
    assert rt.supervisor is not None, rt.problems
    run_id = start_analysis(rt.supervisor, rt.settings, TOPIC, engines, paragraphs=paragraphs,
                            reflections=reflections, offline=True)
    assert rt.supervisor.wait_run(run_id, 120) == "completed"
    return run_id


# ---------------------------------------------------------------------------------------- no run


@pytest.mark.parametrize("engine", list(PAGES))
def test_without_a_run_the_page_says_so_and_invents_nothing(engine):
    at = page(engine)
    assert any("No analysis has run yet" in i and "Home" in i for i in values(at.info)), values(at.info)
    assert not [s for s in at.selectbox if s.key != "shoal_lang_picker"]  # (the sidebar's language picker aside)
    assert not at.dataframe and not at.code and not at.get("progress")
    assert not [b for b in at.button if b.label in ("Stop", "Re-run", "Start")]


# ---------------------------------------------------------------------------------------- a completed run


def test_each_engine_page_shows_a_completed_offline_run():
    fill_corpus()
    run_id = offline_run()
    rt = get_runtime()
    jobs = {j.kind: j for j in jobs_of(rt.db, run_id) if j.kind in PAGES}  # (other kinds, e.g. the forum, aside)
    assert set(jobs) == {"query", "media", "insight"}
    for engine, job in jobs.items():
        at = page(engine)
        # the run in its picker
        picker = at.selectbox(key=f"{engine}_run")
        assert picker.value == run_id and run_id in picker.format_func(picker.value)
        md = values(at.markdown)
        # the job state: a completed badge on this engine's job
        state = [m for m in md if f"**{job.name}**" in m]
        assert len(state) == 1 and ":green-badge[completed]" in state[0], md
        assert len(at.get("progress")) == 1
        # the paragraph table: two paragraphs, done
        [table] = [df.value for df in at.dataframe if "paragraph" in df.value.columns]
        titles = [p["title"] for p in job.checkpoint["structure"]]
        assert len(table) == 2 and list(table["paragraph"]) == titles and set(table["stage"]) == {"done"}
        done = job.checkpoint["paragraphs"]
        assert list(table["reflections"]) == [done[str(p["index"])]["reflections_done"]
                                              for p in job.checkpoint["structure"]]
        assert list(table["sources"]) == [len(done[str(p["index"])]["sources"]) for p in job.checkpoint["structure"]]
        # the report, labelled as offline analysis, with the paragraph titles
        report = [m for m in md if "离线分析" in m]
        assert report, md
        assert all(any(t in m for m in report) for t in titles), (titles, report)
        # the sources table
        [sources] = [df.value for df in at.dataframe if "url" in df.value.columns]
        stored = [r.to_dict() for r in stored_sources(rt.db, job.id, job.checkpoint)]
        assert len(sources) == len(stored) > 0
        assert [u or "" for u in sources["url"]] == [d.get("url") or "" for d in stored]
        assert any(str(u).startswith("https://example.test/") for u in sources["url"])
        # the live console: this engine's log lines of this run
        [console] = values(at.code)
        assert "FirstSummaryNode" in console and run_id in console
        assert all(run_id in line for line in console.splitlines())
        # LLM usage: none, offline
        assert "No LLM calls by this engine in this run (offline analysis)." in values(at.caption)
        assert not at.error and not at.warning, (values(at.error), values(at.warning))


# ---------------------------------------------------------------------------------------- fragment bodies


def state_script(engine: str, run_id: str, job_id: str):
    from ui.engine_page import render_state

    render_state(engine, run_id, job_id)


def console_script(engine: str, run):
    from ui.engine_page import render_console

    render_console(engine, run)


def test_render_state_and_render_console_directly(monkeypatch):
    fill_corpus()
    run_id = offline_run(engines="query,insight")
    rt = get_runtime()
    run = get_run(rt.db, run_id)
    job = next(j for j in jobs_of(rt.db, run_id) if j.kind == "query")

    at = AppTest.from_function(state_script, default_timeout=TIMEOUT,
                               kwargs={"engine": "query", "run_id": run_id, "job_id": job.id}).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(":green-badge[completed]" in m and "**query**" in m for m in values(at.markdown))
    [table] = [df.value for df in at.dataframe if "paragraph" in df.value.columns]
    assert len(table) == 2
    assert any("离线分析" in m for m in values(at.markdown))
    [sources] = [df.value for df in at.dataframe if "url" in df.value.columns]
    assert len(sources) > 0

    gone = AppTest.from_function(state_script, default_timeout=TIMEOUT,
                                 kwargs={"engine": "query", "run_id": run_id, "job_id": "nope"}).run()
    assert not gone.exception and values(gone.caption) == ["The job is gone."] and not gone.dataframe

    log = rt.settings.log_dir / "query.log"
    at = AppTest.from_function(console_script, default_timeout=TIMEOUT, kwargs={"engine": "query", "run": run}).run()
    assert not at.exception, [e.value for e in at.exception]
    [first] = values(at.code)
    first_lines = first.splitlines()
    assert any("[FirstSummaryNode]" in line for line in first_lines)
    assert all(run_id in line for line in first_lines)
    # the insight engine's lines of the same run are in another file, not in this console
    assert not any('"engine": "insight"' in line for line in first_lines)
    state = at.session_state["console_query"]
    assert state["run_id"] == run_id and state["tail"].offset == log.stat().st_size

    # One line of this run and one of another run appended: only the first shows, once, and the
    # console reads just the appended bytes (from the offset where it stopped), not the file again.
    size_before = log.stat().st_size
    reads = []
    real_read = LogTail.read_lines

    def spy(self, *args, **kwargs):
        start = self.offset
        lines = real_read(self, *args, **kwargs)
        reads.append((start, len(lines)))
        return lines

    monkeypatch.setattr(LogTail, "read_lines", spy)
    record = json.dumps({"engine": "query", "run_id": run_id, "marker": "appended-ours"}, ensure_ascii=False)
    other = json.dumps({"engine": "query", "run_id": "someotherrun", "marker": "appended-theirs"})
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"2025-01-01 00:00:00.000 | INFO | - | query | test - [TestNode] 清理后的输出: {record}\n")
        fh.write(f"2025-01-01 00:00:00.000 | INFO | - | query | test - [TestNode] 清理后的输出: {other}\n")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [second] = values(at.code)
    second_lines = second.splitlines()
    assert second_lines[:len(first_lines)] == first_lines  # nothing read twice
    assert len(second_lines) == len(first_lines) + 1 and "appended-ours" in second_lines[-1]
    assert "appended-theirs" not in second
    assert reads == [(size_before, 2)]
    assert at.session_state["console_query"]["tail"].offset == log.stat().st_size

    # A run with no lines in this engine's log says so instead of showing other runs' lines.
    at = AppTest.from_function(console_script, default_timeout=TIMEOUT, kwargs={"engine": "media", "run": run}).run()
    assert not at.exception and not at.code
    assert "No log lines for this run yet (media.log)." in values(at.caption)


def test_the_live_panel_reads_an_unchanged_job_once_and_a_changed_one_again(monkeypatch):
    """Every poll reads the job's light row; its checkpoint, result and sources only when the job's
    stamp (status, attempt, checkpoint writes) moved since the last poll. What shows stays the same."""
    import ui.engine_page as engine_page
    from sqlalchemy import update

    from core.infra.models import Job

    fill_corpus()
    run_id = offline_run(engines="query")
    rt = get_runtime()
    job = get_job(rt.db, f"{run_id}-query")
    heavy = []
    real_load = engine_page.load_engine_progress

    def counting(*args, **kwargs):
        heavy.append(args[1])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(engine_page, "load_engine_progress", counting)
    at = AppTest.from_function(state_script, default_timeout=TIMEOUT,
                               kwargs={"engine": "query", "run_id": run_id, "job_id": job.id}).run()
    assert not at.exception, [e.value for e in at.exception]

    def shown():
        [table] = [df.value for df in at.dataframe if "paragraph" in df.value.columns]
        [sources] = [df.value for df in at.dataframe if "url" in df.value.columns]
        return (list(table["paragraph"]), list(table["stage"]), len(sources),
                [m for m in values(at.markdown) if "**query**" in m], [m for m in values(at.markdown) if "离线分析" in m])

    first = shown()
    assert heavy == [job.id] and first[2] > 0 and first[3] and first[4]
    at.run()  # the fragment's next poll: nothing changed
    assert not at.exception, [e.value for e in at.exception]
    assert heavy == [job.id], "an unchanged job's checkpoint, result and sources were read again"
    assert shown() == first and len(at.get("progress")) == 1

    # The job's checkpoint is written again (a renamed paragraph): the next poll reads it and shows it.
    cp = dict(job.checkpoint, structure=[dict(job.checkpoint["structure"][0], title="改过的标题")]
              + job.checkpoint["structure"][1:])
    with rt.db.session() as s:
        s.execute(update(Job).where(Job.id == job.id).values(checkpoint=cp, checkpoint_seq=Job.checkpoint_seq + 1))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert heavy == [job.id, job.id]
    assert shown()[0][0] == "改过的标题" and shown()[1:] == first[1:]
    at.run()
    assert heavy == [job.id, job.id]


# ---------------------------------------------------------------------------------------- controls


def test_rerun_queues_a_second_job_of_the_engine_in_the_same_run():
    fill_corpus()
    run_id = offline_run(engines="media", paragraphs=1, reflections=0)
    rt = get_runtime()
    at = page("media")
    stop, rerun = at.button(key="media_stop"), at.button(key="media_rerun")
    assert stop.disabled and not rerun.disabled and rerun.label == "Re-run"
    rerun.click().run()
    assert not at.exception, [e.value for e in at.exception]
    names = [j.name for j in jobs_of(rt.db, run_id) if j.kind == "media"]
    assert names == ["media", "media#2"]
    assert rt.supervisor.wait_run(run_id, 120) == "completed"
    second = get_job(rt.db, f"{run_id}-media#2")
    assert second.status == "completed" and len(second.result["paragraphs"]) == 1
    at.run()
    assert not at.exception
    # the page now follows the newest job of this engine
    assert any("**media#2**" in m and ":green-badge[completed]" in m for m in values(at.markdown))


def test_stop_cancels_a_running_job(monkeypatch):
    with FakeOpenAI(responder=llm_responder, latency=0.5) as fake, FakeTavilyServer() as tavily:
        for key, value in {**fake.env("QUERY_ENGINE"), **tavily.env}.items():
            monkeypatch.setenv(key, value)
        reload_runtime()
        rt = get_runtime()
        assert rt.settings.llm_configured("QUERY_ENGINE")
        run_id = start_analysis(rt.supervisor, rt.settings, TOPIC, "query", paragraphs=8, reflections=3)
        job_id = f"{run_id}-query"
        assert get_run(rt.db, run_id).mode == "llm"
        wait_for(lambda: get_job(rt.db, job_id).status == "running" and fake.requests, what="a running LLM job")
        at = page("query")
        assert any(":blue-badge[running]" in m and "**query**" in m for m in values(at.markdown))
        stop, rerun = at.button(key="query_stop"), at.button(key="query_rerun")
        assert not stop.disabled and rerun.disabled
        stop.click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert get_job(rt.db, job_id).status == "cancelled"
        # The run then ends (no hang) as stopped by a person: the automatic report steps aside.
        final = rt.supervisor.wait_run(run_id, 30)
        assert final == "cancelled", [(j.name, j.status, j.error) for j in jobs_of(rt.db, run_id)]
        assert get_job(rt.db, job_id).status == "cancelled"  # and the stopped engine stays stopped
        assert len(fake.requests) < 2 + 8 * (2 + 2 * 3)  # stopped well before the end
        at.run()
        assert not at.exception
        assert any(":violet-badge[cancelled]" in m and "**query**" in m for m in values(at.markdown))
        assert at.button(key="query_stop").disabled and not at.button(key="query_rerun").disabled
        # an LLM-mode run lists its calls instead of "no LLM calls"
        assert not [c for c in values(at.caption) if c.startswith("No LLM calls")]
        assert any("model" in df.value.columns for df in at.dataframe)


def test_an_engine_not_in_the_run_can_be_started_from_its_page():
    fill_corpus()
    run_id = offline_run(engines="insight", paragraphs=1, reflections=0)
    rt = get_runtime()
    at = page("query")
    assert at.selectbox(key="query_run").value == run_id
    assert "This engine was not part of this run. Start it above to add it." in values(at.caption)
    assert not at.dataframe and not at.code  # nothing invented for an engine that did not run
    start = at.button(key="query_rerun")
    assert start.label == "Start" and not start.disabled and at.button(key="query_stop").disabled
    start.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert sorted(j.name for j in jobs_of(rt.db, run_id) if j.kind in PAGES) == ["insight", "query"]
    assert rt.supervisor.wait_run(run_id, 120) == "completed"
    assert get_job(rt.db, f"{run_id}-query").status == "completed"
    at.run()
    assert not at.exception
    assert "This engine was not part of this run. Start it above to add it." not in values(at.caption)
    assert any(":green-badge[completed]" in m and "**query**" in m for m in values(at.markdown))


# ---------------------------------------------------------------------------------------- status, endings, media


def test_the_panel_reruns_the_page_when_the_run_moved_on_and_shows_the_state_it_read():
    """The header's status comes from the panel's own read: a page built while the run was still
    'running' (the stale picker and buttons of the bug) is rerun by the panel, whose header says
    what the database says, as the picker and the job row then do."""
    fill_corpus()
    run_id = offline_run(engines="insight", paragraphs=1, reflections=0)
    job_id = f"{run_id}-insight"
    at = AppTest.from_function(stale_page_script, default_timeout=TIMEOUT,
                               kwargs={"run_id": run_id, "job_id": job_id}).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["builds"] == 2  # built once with the old status, then rerun by the panel
    md = values(at.markdown)
    assert any(run_id in m and ":green-badge[completed]" in m for m in md), md
    assert not any(":blue-badge[running]" in m for m in md)
    assert any("**insight**" in m and ":green-badge[completed]" in m for m in md)


def stale_page_script(run_id: str, job_id: str):
    import streamlit as st

    from core.work.runs import get_run
    from ui.engine_page import render_state
    from ui.runtime import get_runtime

    st.session_state["builds"] = st.session_state.get("builds", 0) + 1
    fresh = get_run(get_runtime().db, run_id).status
    seen = ("running", job_id) if st.session_state["builds"] == 1 else (fresh, job_id)
    render_state("insight", run_id, job_id, seen)


def test_stale_compares_the_run_status_and_the_engines_newest_job():
    from ui.engine_page import stale

    fill_corpus()
    run_id = offline_run(engines="query", paragraphs=1, reflections=0)
    rt = get_runtime()
    run = get_run(rt.db, run_id)
    assert not stale(rt.db, run, "query", ("completed", f"{run_id}-query"))
    assert stale(rt.db, run, "query", ("running", f"{run_id}-query"))
    assert stale(rt.db, run, "query", ("completed", "an-older-job"))
    assert not stale(rt.db, run, "query", None)


def cancel_after_the_fact(run_id: str, job_id: str, keep_paragraphs: int | None = None) -> None:
    """Mark a finished engine job (and its run) cancelled, as a Stop that came after the last paragraph
    does; with `keep_paragraphs`, only that many paragraphs are marked done."""
    from sqlalchemy import update

    from core.infra.models import Job, Run

    rt = get_runtime()
    job = get_job(rt.db, job_id)
    cp = job.checkpoint
    if keep_paragraphs is not None:
        paras = dict(cp["paragraphs"])
        for i, p in enumerate(cp["structure"]):
            if i >= keep_paragraphs:
                paras[str(p["index"])] = dict(paras[str(p["index"])], done=False)
        cp = dict(cp, paragraphs=paras)
    with rt.db.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(status="cancelled", checkpoint=cp,
                                                              checkpoint_seq=Job.checkpoint_seq + 1))
        s.execute(update(Run).where(Run.id == run_id).values(status="cancelled"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_cancelled_engine_says_plainly_whether_it_finished_its_paragraphs(lang):
    fill_corpus()
    run_id = offline_run(engines="insight", paragraphs=2, reflections=0)
    cancel_after_the_fact(run_id, f"{run_id}-insight")
    at = lang_page("insight", lang)
    all_done = {"zh": "已停止，但此前已完成全部 2 个段落", "en": "Stopped after it had finished all 2 paragraphs"}[lang]
    assert any(all_done in i for i in values(at.info)), values(at.info)
    assert any(":violet-badge[" in m and run_id in m for m in values(at.markdown))
    cancel_after_the_fact(run_id, f"{run_id}-insight", keep_paragraphs=1)
    at.run()
    partial = {"zh": "已在完成 1/2 个段落后停止", "en": "Stopped after 1 of 2 paragraphs"}[lang]
    assert any(partial in w for w in values(at.warning)) and not any(all_done in i for i in values(at.info))


def lang_page(engine: str, lang: str) -> AppTest:
    from tests.support.screen import english_leaks, untranslated_keys

    at = AppTest.from_file(str(PAGES[engine]), default_timeout=TIMEOUT)
    at.session_state["shoal_lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert untranslated_keys(at) == []
    if lang == "zh":
        assert english_leaks(at, allowed=(TOPIC,)) == []
    return at


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_completed_run_in_both_languages(lang):
    fill_corpus()
    run_id = offline_run(engines="query", paragraphs=2, reflections=0)
    at = lang_page("query", lang)
    done = {"zh": "已完成", "en": "completed"}[lang]
    assert any(run_id in m and f":green-badge[{done}]" in m for m in values(at.markdown))
    [table] = [df.value for df in at.dataframe if "paragraph" in df.value.columns]
    assert set(table["stage"]) == {{"zh": "已完成", "en": "done"}[lang]}
    assert at.subheader[0].value == {"zh": "实时控制台", "en": "Live console"}[lang]
    tabs = [tab.label for tab in at.tabs]
    assert tabs[:2] == ({"zh": ["段落（2）", "报告"], "en": ["Paragraphs (2)", "Report"]}[lang])


def test_the_media_gallery_is_lazy_provider_urls_with_their_source_links_and_drops_script_urls():
    from core.research.results import MediaPreview
    from ui.media_gallery import gallery_html

    html = gallery_html([
        (1, MediaPreview("image", "https://img.example.cn/a.jpg?w=1&h=2", "https://news.example.cn/p.html",
                         '标题 "<script>alert(1)</script>')),
        (2, MediaPreview("video", "javascript:alert(2)", "https://v.example.cn/page", "坏的缩略图")),
        (3, MediaPreview("video", "https://img.example.cn/v.jpg", "javascript:alert(3)", "坏的链接")),
    ], video_label="视频")
    assert 'src="https://img.example.cn/a.jpg?w=1&amp;h=2"' in html and 'loading="lazy"' in html
    assert 'referrerpolicy="no-referrer"' in html
    assert html.count('href="https://news.example.cn/p.html"') == 2  # the thumbnail and its title link
    assert "javascript:" not in html and "<script>" not in html and "&lt;script&gt;" in html
    assert "坏的缩略图" not in html and "坏的链接" not in html
    assert 'rel="noopener noreferrer nofollow"' in html
    assert gallery_html([(1, MediaPreview("image", "data:image/png;base64,AA", "https://a.cn", "x"))]) == ""


def test_the_media_engine_shows_the_providers_thumbnails(monkeypatch):
    from tests.fakes.search_servers import ARTICLES, FakeBochaServer

    with FakeOpenAI(responder=llm_responder) as fake, FakeBochaServer() as bocha:
        for key, value in {**fake.env("MEDIA_ENGINE"), **bocha.env}.items():
            monkeypatch.setenv(key, value)
        reload_runtime()
        rt = get_runtime()
        run_id = start_analysis(rt.supervisor, rt.settings, TOPIC, "media", paragraphs=1, reflections=0)
        assert rt.supervisor.wait_run(run_id, 120) in ("completed", "completed_degraded")
        at = page("media")
        assert any(t.label.startswith("Images and video (") for t in at.tabs), [t.label for t in at.tabs]
        [gallery] = [h.proto.body for h in at.get("html")]
        thumbs = [u for u in ("https://img.example.cn/cover.jpg", "https://img.example.cn/video-thumb.jpg")
                  if u in gallery] + [a.image[0] + "?thumb=1" for a in ARTICLES if a.image and a.image[0] in gallery]
        assert thumbs and 'loading="lazy"' in gallery and 'target="_blank"' in gallery
        # the page never fetched them: the fake search server saw only API calls
        assert {r.path for r in bocha.requests} <= set(FakeBochaServer.paths), {r.path for r in bocha.requests}


def test_a_running_engine_in_chinese_then_stopped(monkeypatch):
    """The running state in Chinese (test_stop_cancels_a_running_job walks it in English)."""
    with FakeOpenAI(responder=llm_responder, latency=0.5) as fake, FakeTavilyServer() as tavily:
        for key, value in {**fake.env("QUERY_ENGINE"), **tavily.env}.items():
            monkeypatch.setenv(key, value)
        reload_runtime()
        rt = get_runtime()
        run_id = start_analysis(rt.supervisor, rt.settings, TOPIC, "query", paragraphs=8, reflections=3)
        job_id = f"{run_id}-query"
        wait_for(lambda: get_job(rt.db, job_id).status == "running" and fake.requests, what="a running LLM job")
        at = lang_page("query", "zh")
        assert any(":blue-badge[运行中]" in m and "**query**" in m for m in values(at.markdown))
        assert any("模式：**LLM**" in m and run_id in m for m in values(at.markdown))
        stop = at.button(key="query_stop")
        assert stop.label == "停止" and not stop.disabled and at.button(key="query_rerun").label == "重新运行"
        stop.click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert rt.supervisor.wait_run(run_id, 30) == "cancelled"
        at.run()
        assert any(":violet-badge[已取消]" in m and "**query**" in m for m in values(at.markdown))
