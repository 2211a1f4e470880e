"""The Data page as a reader sees it, in both languages: empty, with posts (charts, browser, search,
paging), a demo job running and then finished, and an import with broken rows."""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from core.corpus import data_jobs
from core.corpus.data_jobs import DEMO_KIND, latest_data_run
from core.corpus.importers import import_records
from core.corpus.search import search_posts
from core.i18n import LANGUAGES, Msg, tr
from core.work.jobs import HandlerInfo
from core.work.states import RunState
from tests.conftest import wait_for
from tests.pagetest import fresh_runtime  # noqa: F401 - autouse fixture
from tests.support.screen import english_leaks, untranslated_keys
from ui.runtime import get_runtime

PAGE = Path(__file__).resolve().parents[2] / "pages" / "7_Data.py"
CSV = ("content,platform,likes\n"
       "第一条帖子,weibo,1\n"
       "\"引号没有闭合的一行,weibo,2\n"   # line 3
       "第三条帖子,douyin,3\n"
       "第四条帖子,xhs,很多\n"            # line 5: a bad count
       "第五条帖子,zhihu,5\n")


def open_page(lang: str, at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["shoal_lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def clean(at: AppTest, lang: str, allowed: tuple[str, ...] = ()) -> None:
    assert untranslated_keys(at) == []
    if lang == "zh":
        assert english_leaks(at, allowed=allowed) == []


def charts(at: AppTest) -> list[tuple[dict, list]]:
    out = []
    for el in at.get("vega_lite_chart"):
        spec = json.loads(el.proto.spec)
        out.append((spec, [dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data) for d in el.proto.datasets]))
    return out


def table_with(at: AppTest, column: str):
    found = [df.value for df in at.dataframe if column in df.value.columns]
    assert len(found) == 1, [list(df.value.columns) for df in at.dataframe]
    return found[0]


def seed_posts(n: int = 45) -> None:
    import_records(get_runtime().db, [
        {"platform": ("weibo", "douyin", "zhihu")[i % 3], "post_id": f"p{i}", "likes": i, "author": f"作者{i}",
         "url": f"https://example.com/p{i}",
         "content": f"新能源汽车价格战第{i}轮，车企降价" if i % 4 else f"今天的天气不错，第{i}天",
         "publish_time": f"2025-03-{1 + i % 9:02d}T20:{i % 60:02d}:00Z"} for i in range(n)])


@pytest.mark.parametrize("lang", LANGUAGES)
def test_an_empty_corpus_leads_to_the_demo_button(lang):
    at = open_page(lang)
    clean(at, lang)
    assert at.metric[0].label == tr(lang, "data.metric_total") and at.metric[0].value == "0"
    assert any(tr(lang, "data.empty") == c.value for c in at.caption)
    assert [i for i in at.info if i.value.startswith(tr(lang, "data.first_start", posts=3000, topics=1)[:8])]
    assert at.button(key="demo_generate").label == tr(lang, "data.demo_generate")
    assert not at.tabs and not charts(at)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_posts_are_charted_and_browsed_searched_and_paged(lang, monkeypatch):
    monkeypatch.setenv("SHOAL_TIMEZONE", "Asia/Shanghai")
    from ui.runtime import reload_runtime

    reload_runtime()
    seed_posts()
    at = open_page(lang)
    clean(at, lang, allowed=("Asia/Shanghai (UTC+08:00)",))
    assert at.metric[0].value == "45"
    assert [t.label for t in at.tabs] == [tr(lang, k) for k in ("data.tab_overview", "data.tab_browse", "data.tab_add")]

    (platform_spec, [platforms]), (time_spec, [days]) = charts(at)
    assert platform_spec["title"] == tr(lang, "data.chart_platforms")
    assert dict(zip(platforms["platform"], platforms["posts"])) == {"weibo": 15, "douyin": 15, "zhihu": 15}
    assert time_spec["title"] == tr(lang, "data.chart_over_time", zone="Asia/Shanghai (UTC+08:00)")
    # 20:xx UTC is 04:xx the next day in Shanghai: 1-9 March UTC are drawn on 2-10 March
    assert sorted(set(days["period"])) == [f"2025-03-{d:02d}" for d in range(2, 11)]
    assert days["posts"].sum() == 45

    posts = table_with(at, "text")  # newest first, 20 a page
    assert len(posts) == 20 and list(posts["rank"]) == list(range(1, 21)) and "score" not in posts
    assert posts["time"].iloc[0].startswith("2025-03-10 04:")
    assert set(posts.columns) >= {"platform", "time", "author", "text", "link"}
    assert at.number_input(key="data_page").label == tr(lang, "data.page_of", pages=3)

    at.button(key="data_next").click()
    open_page(lang, at)
    assert at.number_input(key="data_page").value == 2
    assert list(table_with(at, "text")["rank"]) == list(range(21, 41))

    at.selectbox(key="data_page_size").set_value(10)
    at.text_input(key="data_q").input("新能源汽车 价格战")
    open_page(lang, at)
    clean(at, lang, allowed=("Asia/Shanghai (UTC+08:00)",))
    found = table_with(at, "score")
    expected = search_posts(get_runtime().db, "新能源汽车 价格战", limit=100)
    assert at.number_input(key="data_page").value == 1  # a new search starts at its first page
    assert list(found["link"]) == [d.url for d in expected[:10]]
    assert list(found["score"]) == pytest.approx([d.score for d in expected[:10]])
    assert any(tr(lang, "data.order_relevance") in c.value for c in at.caption)

    at.button(key="data_next").click()
    open_page(lang, at)
    assert list(table_with(at, "score")["link"]) == [d.url for d in expected[10:20]]

    at.selectbox(key="data_platform").set_value("douyin")
    open_page(lang, at)
    assert set(table_with(at, "score")["platform"]) == {"douyin"}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_demo_job_shows_its_live_progress_also_after_leaving_and_then_its_report(lang, monkeypatch):
    rt = get_runtime()
    started, release = threading.Event(), threading.Event()
    real = rt.handlers[DEMO_KIND]

    def held(ctx):
        data_jobs._say(ctx, Msg("data.job_demo_progress", {"rows": 500, "total": 1000}), 0.4)
        started.set()
        release.wait(60)
        return real.fn(ctx)

    monkeypatch.setitem(rt.handlers, DEMO_KIND, HandlerInfo(DEMO_KIND, held))
    try:
        at = open_page(lang)
        at.number_input(key="demo_posts").set_value(120)
        at.button(key="demo_generate").click()
        open_page(lang, at)
        assert started.wait(30)
        run = latest_data_run(rt.db)
        wait_for(lambda: data_jobs.data_job(rt.db, run.id).progress >= 0.4, what="the progress written")

        # another visit (a new session: the page was left) shows the same job, live
        again = open_page(lang)
        for page in (at, again):
            open_page(lang, page)
            clean(page, lang)
            [bar] = page.get("progress")
            assert bar.proto.value == 40
            assert bar.proto.text == tr(lang, "data.job_demo_progress", rows=500, total=1000)
            assert any(tr(lang, "data.job_keeps_running") == c.value for c in page.caption)
            assert page.button(key="demo_generate").disabled  # one data job at a time
    finally:
        release.set()
    assert rt.supervisor.wait_run(run.id, 60) == RunState.COMPLETED
    open_page(lang, at)
    clean(at, lang)
    expected = data_jobs.data_job(rt.db, run.id).result["report"]["imported"]
    assert expected > 120 and at.metric[0].value == f"{expected:,}"
    [done] = at.success
    assert done.value.startswith(f"**{tr(lang, 'data.what_demo')}**")
    assert f"{expected:,}" in done.value and not at.get("progress")
    at.button(key="data_dismiss_job").click()
    open_page(lang, at)
    assert not at.success


@pytest.mark.parametrize("lang", LANGUAGES)
def test_an_upload_is_saved_to_disk_imported_by_a_job_and_its_broken_rows_listed(lang):
    rt = get_runtime()
    at = open_page(lang)
    assert any(tr(lang, "data.upload_limit", mb=200) == c.value for c in at.caption)
    at.file_uploader(key="data_upload").set_value(("posts.csv", CSV.encode(), "text/csv"))
    open_page(lang, at)
    at.button(key="data_import_file").click()
    open_page(lang, at)
    run = latest_data_run(rt.db)
    assert run is not None and run.topic == "posts.csv"
    assert not at.file_uploader(key="data_upload_1").value  # the uploader starts empty again
    assert rt.supervisor.wait_run(run.id, 60) == RunState.COMPLETED
    open_page(lang, at)
    clean(at, lang, allowed=("posts.csv",))
    assert at.metric[0].value == "3"
    [warning] = [w.value for w in at.warning]
    assert "posts.csv" in warning and tr(lang, "data.report_partial", line="")[1:] in warning
    errors = table_with(at, "error")
    assert list(errors["row"]) == [3, 5] and errors["error"][0] == tr(lang, "import_error.unterminated_quote", start=3)
    if lang == "zh":  # the reasons are in the reader's language too, not only the sentences around them
        assert all(re.search(r"[\u4e00-\u9fff]", e) for e in errors["error"]), list(errors["error"])
    assert not list(data_jobs.upload_dir(rt.settings).iterdir())  # the copy on disk is gone once read


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_running_data_job_can_be_cancelled_from_the_page(lang, monkeypatch):
    rt = get_runtime()
    started = threading.Event()

    def endless(ctx):
        data_jobs._say(ctx, Msg("data.job_generating", {"posts": 3000}), 0.1)
        started.set()
        while True:
            ctx.sleep(0.05)  # raises once the job is cancelled

    monkeypatch.setitem(rt.handlers, DEMO_KIND, HandlerInfo(DEMO_KIND, endless))
    at = open_page(lang)
    at.button(key="demo_generate").click()
    open_page(lang, at)
    assert started.wait(30)
    run = latest_data_run(rt.db)
    open_page(lang, at)
    cancel = at.button(key=f"data_job_cancel_{run.id}")
    assert cancel.label == tr(lang, "data.job_cancel")
    cancel.click()
    open_page(lang, at)
    assert wait_for(lambda: rt.supervisor.wait_run(run.id, 1) == RunState.CANCELLED, what="the run cancelled")
    open_page(lang, at)
    clean(at, lang)
    assert [i.value for i in at.info if tr(lang, "data.what_demo") in i.value]
    assert not at.get("progress") and not at.button(key="demo_generate").disabled
