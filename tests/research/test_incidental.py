"""A topic word used in passing by another subject's posts does not make them about the topic.

The corpus: a university's posts (hot, on every platform), a quarter of them written by 毕业多年的老校友
-- they hold 毕业 but are about the university -- and fewer, colder posts that are about graduating.
An analysis of 毕业 lists and cites the graduation posts only, counts only them, and its hot list
is theirs; a subject the topic is really about (周杰伦's concerts among many other concerts) is kept.
"""
from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from core.analysis import start_analysis
from core.corpus.importers import import_records
from core.corpus.search import search_posts
from core.infra.config import load_settings
from core.report import latest_report
from core.research.corpus_tools import CorpusSearchProvider
from core.research.scope import build_scope, matching_counts
from core.runtime import build_handlers
from core.supervisor import Supervisor
from core.work.jobs import COMPLETED
from tests.conftest import fast_config

pytestmark = pytest.mark.timeout(180)

PLATFORMS = ("weibo", "douyin", "news", "zhihu", "bilibili", "tieba")
PERSONS = ("在校生", "学生家长", "隔壁学校的同学", "毕业多年的老校友")
THINGS = ("宿舍管理新规", "樱花季预约", "图书馆开放时间", "情况通报", "食堂涨价", "保研名额公示", "校园开放政策")
OPINIONS = ("让人失望", "处理得很及时", "必须给个说法", "值得肯定", "拖了太久才回应")

GRADUATION = (
    "终于毕业了，和室友拍了最后一组毕业照",
    "毕业答辩通过了，论文改了八遍，晚上请导师吃饭",
    "毕业季的晚会上大家都哭了，四年一眨眼就过去",
    "毕业典礼上校长念到我的名字，爸妈在台下拍照",
    "毕业前最后一次聚餐，约好十年后再见",
    "毕业旅行订好了，先去大理再去西双版纳",
    "毕业设计展明天开幕，熬了三个通宵总算布置好",
    "毕业就失业？投了五十份简历只有两个面试",
    "毕业快乐！学士服借来只穿了半天",
    "毕业证和学位证都拿到了，宿舍也清空了",
    "毕业那天把书都捐给了学弟学妹",
    "毕业一周年，还是会梦见考试周",
)


def corpus() -> list[dict]:
    frames = ("作为{p}，武汉大学这次的{t}{o}", "{p}吐槽：武汉大学的{t}{o}", "武汉大学{t}，{p}觉得{o}")
    uni = []
    for i, (person, thing, opinion) in enumerate(itertools.product(PERSONS, THINGS, OPINIONS)):
        uni.append({"platform": PLATFORMS[i % len(PLATFORMS)], "post_id": f"uni{i}", "likes": 5000 + i * 10,
                    "shares": 300, "content": frames[i % 3].format(p=person, t=thing, o=opinion)})
    # replies in the university's threads: about the university, whatever words they use
    uni += [{"platform": u["platform"], "post_id": f"unic{i}", "parent_id": u["post_id"], "likes": 800,
             "content": "同为毕业多年的老校友，确实过分了"} for i, u in enumerate(uni[:6])]
    grad = [{"platform": PLATFORMS[i % 3], "post_id": f"grad{i}", "likes": 3 + i, "content": text}
            for i, text in enumerate(GRADUATION)]
    grad.append({"platform": "weibo", "post_id": "gradc0", "parent_id": "grad0", "likes": 1,
                 "content": "毕业快乐，师兄前程似锦"})
    return uni + grad


def incidental(doc_id: str) -> bool:
    return doc_id.split(":", 1)[1].startswith("uni")


def test_the_topic_term_in_another_subjects_posts_is_incidental(db):
    import_records(db, corpus(), source="test")
    scope = build_scope(db, "毕业")
    assert scope.incidental == {"zx武汉大学"}  # the other subject's name
    total, by_platform = matching_counts(db, scope)
    assert total == len(GRADUATION) + 1  # the 35 posts and 6 replies of 老校友 are not counted
    provider = CorpusSearchProvider(db, scope=scope)
    # a reply is about its thread: 老校友's replies under the university's posts are left out
    assert [d.doc_id for d in provider.run_tool("get_comments_for_topic", "毕业")] == ["weibo:gradc0"]
    for tool, params in (("search_hot_content", {"time_period": "all"}), ("search_topic_globally", {}),
                         ("search_topic_on_platform", {"platform": "weibo"}), ("get_comments_for_topic", {})):
        found = [d.doc_id for d in provider.run_tool(tool, "毕业", **params)]
        assert not any(incidental(d) for d in found), (tool, found)
    hot = [d.doc_id for d in provider.run_tool("search_hot_content", "毕业", time_period="all", limit=5)]
    assert len(hot) == 5 and all(d.split(":")[1].startswith("grad") for d in hot)
    # without a scope the query's own terms decide, as before
    assert any(incidental(d.doc_id) for d in search_posts(db, "毕业", limit=50))


def test_a_subject_the_topic_is_really_about_is_kept(db):
    # 周杰伦's concert posts share 演唱会 with many more concert posts, but talk about other things
    others = [{"platform": "weibo", "post_id": f"c{i}", "likes": 9000,
              "content": f"演唱会抢票就是一场骗局：{t}，黄牛加价{i}倍"}
              for i, t in enumerate(["开售一秒就没了", "票务平台系统卡死", "内部票根本不公开", "退票要扣手续费"] * 8)]
    jay = [{"platform": "weibo", "post_id": f"jay{i}", "likes": 5, "content": text} for i, text in enumerate((
        "周杰伦演唱会唱了晴天，全场大合唱", "周杰伦新歌不爱我就拉倒越听越好听", "周杰伦郑州演唱会看台票转让",
        "听周杰伦的稻香长大的一代人", "周杰伦演唱会最后一首是告白气球", "周杰伦又在社交平台晒娃了",
        "周杰伦常州演唱会安可唱了七里香", "周杰伦的歌词十几年了还是听不懂"))]
    import_records(db, others + jay, source="test")
    scope = build_scope(db, "周杰伦")
    assert not scope.incidental
    assert matching_counts(db, scope)[0] == len(jay)


@pytest.fixture
def sup(db, events, monkeypatch):
    monkeypatch.setenv("SHOAL_MIN_SOURCES", "5")
    import_records(db, corpus(), source="test")
    s = Supervisor(db, events, fast_config(max_workers=4), handlers=build_handlers())
    s.settings = load_settings()
    s.start()
    yield s
    s.shutdown(5)


def test_an_analysis_lists_and_cites_the_posts_about_the_topic(sup, db):
    run_id = start_analysis(sup, sup.settings, "毕业", paragraphs=2, reflections=0, offline=True)
    assert sup.wait_run(run_id, 120) == COMPLETED
    report = latest_report(db, run_id, completed=True)
    doc = json.loads(Path(report.json_path).read_text(encoding="utf-8"))
    listed = [s["doc_id"] for s in doc["sources"]]
    assert listed and not any(incidental(d) for d in listed), listed
    numbers = {int(n) for sec in doc["sections"] for n in re.findall(r"\[(\d+)\]", sec.get("markdown") or "")}
    cited = [s["doc_id"] for s in doc["sources"] if s["n"] in numbers]
    assert cited and not any(incidental(d) for d in cited), cited


def test_an_incidental_word_counts_as_a_word_of_its_own_and_in_the_thread():
    from core.research.relevance import TopicScope

    scope = TopicScope("家长", ("zx家长",), {"zx家长": 3.0}, 0.5, frozenset({"zx学生家长"}), frozenset({"zx学生"}))
    assert scope.admits({"zx家长", "zx孩子"})
    assert not scope.admits({"zx家长", "zx学生"})                          # names the other subject
    assert scope.admits({"zx家长", "zx大学", "zx学生", "zx大学生"})          # 学生 only within 大学生
    assert not scope.admits({"zx学生", "zx家长", "zx学生家长"})              # the topic's own words do not hide it
    assert not scope.admits({"zx家长", "zx孩子"}, thread=("zx学生", "zx食堂"))  # a reply in its thread
