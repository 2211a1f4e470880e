"""The local corpus: Chinese full-text search, the Insight tools and the corpus search provider,
each on SQLite (FTS5) and on a real MariaDB (FULLTEXT in boolean mode) through the `db` fixture."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from core.corpus import search as corpus
from core.corpus.search import CorpusSlice, corpus_summary, ensure_search_index, query_terms, search_posts
from core.research.corpus_tools import (
    INSIGHT_TOOLS,
    CorpusSearchProvider,
    get_comments_for_topic,
    search_hot_content,
    search_topic_by_date,
    search_topic_globally,
    search_topic_on_platform,
)
from core.corpus.importers import import_records
from core.infra.models import Post

# The newest post is more than a year before today, so anything measured from the wall clock would
# find nothing: the time windows must count back from the newest post.
NEWEST = datetime(2024, 3, 10, 12, 0, 0)


def _at(**delta) -> str:
    return (NEWEST - timedelta(**delta)).strftime("%Y-%m-%d %H:%M:%S")


# hotness = likes + 5·comments + 10·shares + 0.1·views
CORPUS = [
    dict(platform="weibo", id="w1", title="清华大学发布新能源汽车研究报告", content="清华大学研究团队发布新能源汽车电池报告，续航提升明显",
         author="科技日报", likes=100, publish_time=_at(), url="https://weibo.com/w1", sentiment=0.8),  # 100
    dict(platform="douyin", id="d1", content="大学生就业形势分析：今年毕业生求职压力大", likes=10, comments=20,
         publish_time=_at(hours=1)),  # 110
    dict(platform="bilibili", id="b1", content="这款电动车续航很强，汽车测评视频", views=2000, publish_time=_at(days=2)),  # 200
    dict(platform="xhs", id="x1", content="周末在家做红烧肉的教程", shares=15, publish_time=_at(days=3)),  # 150
    dict(platform="zhihu", id="z1", content="大学里学汽车工程专业的就业前景怎么样", likes=1, publish_time=_at(days=5)),  # 1
    dict(platform="weibo", id="wc1", kind="comment", parent_id="w1", content="汽车价格太贵了，买不起", likes=3,
         publish_time=_at(minutes=30)),  # 3
    dict(platform="douyin", id="dc1", kind="comment", parent_id="d1", content="大学生找工作真难", likes=2,
         publish_time=_at(hours=2)),  # 2
    dict(platform="weibo", id="old", content="旧闻：汽车行业年度回顾", likes=100000, publish_time=_at(days=40)),
]


@pytest.fixture
def corpus_db(db):
    report = import_records(db, CORPUS)
    assert (report.imported, report.error_count) == (len(CORPUS), 0), report.as_dict()
    return db


def ids(docs) -> list[str]:
    return [d.doc_id for d in docs]


def test_two_character_chinese_words_are_found(corpus_db):
    assert set(ids(search_posts(corpus_db, "大学"))) == {"weibo:w1", "douyin:d1", "zhihu:z1", "douyin:dc1"}
    assert set(ids(search_posts(corpus_db, "汽车"))) == {"weibo:w1", "bilibili:b1", "zhihu:z1", "weibo:wc1",
                                                        "weibo:old"}
    assert ids(search_posts(corpus_db, "红烧肉")) == ["xhs:x1"]
    assert search_posts(corpus_db, "火箭发射") == []


def test_posts_matching_more_words_rank_first_and_the_floor_drops_one_common_word(corpus_db):
    docs = search_posts(corpus_db, "大学 汽车")
    assert set(ids(docs[:2])) == {"weibo:w1", "zhihu:z1"}  # both words: the highest BM25
    # 汽车 is in 5 posts, 大学 in 4: a post holding only the commoner word carries less than half of the
    # query's idf weight and falls below the relevance floor; one holding only 大学 stays.
    assert set(ids(docs[2:])) == {"douyin:d1", "douyin:dc1"}
    assert {"bilibili:b1", "weibo:wc1"} <= set(ids(search_posts(corpus_db, "大学 汽车", floor=0.3)))
    # A long topic: the one post covering most of it, and nothing that shares one word of it.
    docs = search_posts(corpus_db, "清华大学新能源汽车电池续航报告发布会的最新消息")
    assert ids(docs) == ["weibo:w1"]


def test_covering_more_query_words_beats_repeating_one(db):
    # On raw bm25 / InnoDB relevance "many" (one rare word six times) outscores "both" (each word once,
    # 回收 being common): the ranking must put the post that covers the whole query first.
    import_records(db, [
        {"platform": "weibo", "id": "many", "content": "电池 电池 电池 电池 电池 电池"},
        {"platform": "weibo", "id": "both", "content": "电池回收技术"},
        {"platform": "weibo", "id": "f1", "content": "废品回收站"},
        {"platform": "weibo", "id": "f2", "content": "旧衣回收箱"},
        {"platform": "weibo", "id": "f3", "content": "今天天气很好"},
        {"platform": "weibo", "id": "f4", "content": "周末去爬山"},
    ])
    assert ids(search_posts(db, "电池 回收"))[:2] == ["weibo:both", "weibo:many"]


def test_documents_carry_what_reports_cite(corpus_db):
    doc = search_posts(corpus_db, "清华大学")[0]
    assert doc.doc_id == "weibo:w1" and doc.source == "corpus" and doc.platform == "weibo" and doc.kind == "post"
    assert doc.title == "清华大学发布新能源汽车研究报告" and "电池报告" in doc.content
    assert (doc.url, doc.author, doc.likes, doc.published) == ("https://weibo.com/w1", "科技日报", 100, NEWEST)
    assert doc.sentiment == pytest.approx(0.8) and doc.extras["corpus_source"] == "import"
    comment = search_posts(corpus_db, "太贵")[0]
    assert (comment.doc_id, comment.kind, comment.extras["parent_id"]) == ("weibo:wc1", "comment", "w1")
    assert comment.title.startswith("汽车价格太贵")  # no title: the start of the content


def test_filters_by_platform_kind_and_date(corpus_db):
    assert set(ids(search_posts(corpus_db, "汽车", platforms=["weibo"]))) == {"weibo:w1", "weibo:wc1", "weibo:old"}
    assert ids(search_posts(corpus_db, "汽车", platforms="微博", kinds="comment")) == ["weibo:wc1"]
    assert set(ids(search_posts(corpus_db, "汽车", kinds=["post"]))) == {"weibo:w1", "bilibili:b1", "zhihu:z1",
                                                                       "weibo:old"}
    in_march = search_posts(corpus_db, "汽车", start="2024-03-05", end="2024-03-08")
    assert set(ids(in_march)) == {"zhihu:z1", "bilibili:b1"}  # the 5th and the 8th, both ends inclusive
    assert set(ids(search_posts(corpus_db, "汽车", start=NEWEST - timedelta(hours=1)))) == {"weibo:wc1", "weibo:w1"}
    assert ids(search_posts(corpus_db, "汽车", end=NEWEST - timedelta(days=40))) == ["weibo:old"]  # inclusive


def test_hot_and_time_orders(corpus_db):
    assert ids(search_posts(corpus_db, "汽车", order="hot")) == ["weibo:old", "bilibili:b1", "weibo:w1", "weibo:wc1",
                                                                 "zhihu:z1"]
    assert ids(search_posts(corpus_db, "汽车", order="time")) == ["weibo:w1", "weibo:wc1", "bilibili:b1", "zhihu:z1",
                                                                  "weibo:old"]
    assert len(search_posts(corpus_db, "汽车", limit=2)) == 2
    with pytest.raises(ValueError):
        search_posts(corpus_db, "汽车", order="random")


NASTY = ["", "   ", "！？。，、……", '"', "'", '"汽车', "汽车\"", "AND OR NOT", "NEAR(汽车 大学)", "content_seg:汽车",
         "汽车*", "^汽车", "+汽车 -大学 ~车 <a >b (c) @3", "\x00\x01\x02汽车\x1b[31m", "'; DROP TABLE posts; --",
         "🚗🚗🚗", "汽车" * 25_000, "x" * 50_000, "\ud800", "a_b-c.d", "%_%"]


@pytest.mark.parametrize("order", ["relevance", "hot"])
def test_nasty_queries_do_not_raise(corpus_db, order):
    for q in NASTY:
        search_posts(corpus_db, q, order=order)  # must not raise
    for q in ("", "   ", "！？。，、……", '"', "🚗🚗🚗"):
        assert search_posts(corpus_db, q, order=order) == []
    # Operators and control characters are stripped, the words survive.
    assert "weibo:wc1" in ids(search_posts(corpus_db, "\x00\x01\x02汽车\x1b", order=order))
    assert "weibo:w1" in ids(search_posts(corpus_db, "+汽车 -大学", order=order))
    assert len(query_terms("汽车 大学 " + " ".join(f"词{i}" for i in range(100)))) == corpus.MAX_QUERY_TOKENS
    with corpus_db.session() as s:  # nothing was dropped
        assert s.query(Post).count() == len(CORPUS)


def test_hot_content_is_the_topics_hot_posts_counted_back_from_the_newest_post(corpus_db):
    # The hottest posts of the week about 汽车 -- not xhs:x1 (150) or douyin:d1 (110), hotter but off topic.
    week = search_hot_content(corpus_db, "汽车", "week", limit=50)
    assert ids(week) == ["bilibili:b1", "weibo:w1", "weibo:wc1", "zhihu:z1"]
    assert ids(search_hot_content(corpus_db, "汽车", "24h")) == ["weibo:w1", "weibo:wc1"]
    assert ids(search_hot_content(corpus_db, "汽车", "year", limit=2)) == ["weibo:old", "bilibili:b1"]
    weibo = CorpusSlice("weibo", platforms=("weibo",))
    assert ids(search_hot_content(corpus_db, "汽车", "week", where=weibo)) == ["weibo:w1", "weibo:wc1"]
    assert search_hot_content(corpus_db, "", "week") == []  # no topic, no hot list
    with pytest.raises(ValueError, match="time_period"):
        search_hot_content(corpus_db, "汽车", "fortnight")


def test_the_topic_tools(corpus_db):
    assert set(ids(search_topic_globally(corpus_db, "就业"))) == {"douyin:d1", "zhihu:z1"}
    assert set(ids(search_topic_by_date(corpus_db, "汽车", "2024-03-07", "2024-03-10"))) == {"weibo:w1", "weibo:wc1",
                                                                                            "bilibili:b1"}
    assert ids(search_topic_by_date(corpus_db, "汽车", "2024-01-30", "2024-01-30")) == ["weibo:old"]
    for bad in ("2024/03/01", "yesterday", "2024-13-01", "", None):
        with pytest.raises(ValueError, match="start_date"):
            search_topic_by_date(corpus_db, "汽车", bad, "2024-03-10")
    with pytest.raises(ValueError, match="after"):
        search_topic_by_date(corpus_db, "汽车", "2024-03-10", "2024-03-01")
    assert ids(get_comments_for_topic(corpus_db, "汽车")) == ["weibo:wc1"]
    assert ids(get_comments_for_topic(corpus_db, "大学")) == ["douyin:dc1"]
    assert ids(search_topic_on_platform(corpus_db, "zhihu", "汽车")) == ["zhihu:z1"]
    assert ids(search_topic_on_platform(corpus_db, "weibo", "汽车", "2024-01-01", "2024-02-28")) == ["weibo:old"]
    with pytest.raises(ValueError, match="platform"):
        search_topic_on_platform(corpus_db, "myspace", "汽车")


def test_provider_runs_the_insight_tools_and_maps_the_query_and_media_tools(corpus_db):
    provider = CorpusSearchProvider(corpus_db)
    assert provider.name == "corpus"
    assert [t.name for t in provider.tools] == ["search_topic_globally", "search_hot_content", "search_topic_by_date",
                                                "get_comments_for_topic", "search_topic_on_platform"]
    assert provider.tools == INSIGHT_TOOLS and all(t.description for t in provider.tools)
    assert ids(provider.run_tool("search_hot_content", "汽车", time_period="24h")) == ["weibo:w1", "weibo:wc1"]
    assert ids(provider.run_tool("search_topic_on_platform", "汽车", platform="bilibili")) == ["bilibili:b1"]
    assert ids(provider.run_tool("get_comments_for_topic", "汽车")) == ["weibo:wc1"]
    assert ids(provider.run_tool("search_topic_by_date", "汽车", start_date="2024-01-30", end_date="2024-01-30")) == \
        ["weibo:old"]
    everything = set(ids(search_topic_globally(corpus_db, "汽车")))
    for tool in ("basic_search_news", "deep_search_news", "comprehensive_search", "web_search_only",
                 "search_for_structured_data", "search_images_for_news", "no_such_tool"):
        assert set(ids(provider.run_tool(tool, "汽车"))) == everything, tool
    day = {"weibo:w1", "weibo:wc1"}  # within 24 h of the newest post
    week = day | {"bilibili:b1", "zhihu:z1"}
    assert set(ids(provider.run_tool("search_news_last_24_hours", "汽车"))) == day
    assert set(ids(provider.run_tool("search_last_24_hours", "汽车"))) == day
    assert set(ids(provider.run_tool("search_news_last_week", "汽车"))) == week
    assert set(ids(provider.run_tool("search_last_week", "汽车"))) == week
    assert ids(provider.run_tool("search_news_by_date", "汽车", start_date="2024-03-05", end_date="2024-03-05")) == \
        ["zhihu:z1"]
    assert len(provider.run_tool("deep_search_news", "汽车", max_results=2)) == 2


def test_a_search_waits_out_a_dropped_database_connection_but_not_a_real_error(corpus_db, monkeypatch):
    # A DB outage of a few seconds (the server restarting) made an engine's corpus search fail and the
    # run end degraded (tests/test_db_outage.py, once on PostgreSQL); it is retried like the writes.
    import core.research.corpus_tools as tools
    from sqlalchemy.exc import OperationalError

    real, calls = tools.search_topic_globally, []

    def dropped_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("SELECT ...", {}, Exception("server closed the connection unexpectedly"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tools, "search_topic_globally", dropped_once)
    provider = CorpusSearchProvider(corpus_db)
    assert set(ids(provider.run_tool("search_topic_globally", "汽车"))) == set(ids(real(corpus_db, "汽车")))
    assert len(calls) == 2
    with pytest.raises(ValueError, match="platform"):  # not transient: raised at once, no retry
        provider.run_tool("search_topic_on_platform", "汽车", platform="myspace")


def test_the_engine_slice_applies_to_every_tool(corpus_db):
    video = CorpusSearchProvider(corpus_db, where=CorpusSlice("video", platforms=("bilibili", "douyin"), posts_only=True))
    assert set(ids(video.run_tool("comprehensive_search", "大学"))) == {"douyin:d1"}  # not the comment dc1
    assert ids(video.run_tool("search_hot_content", "汽车", time_period="week")) == ["bilibili:b1"]
    assert video.run_tool("search_topic_on_platform", "汽车", platform="weibo") == []
    assert set(ids(video.run_tool("search_last_week", "汽车"))) == {"bilibili:b1"}
    # Insight's kind of slice: some platforms' posts, and every comment wherever it was posted.
    social = CorpusSearchProvider(corpus_db, where=CorpusSlice("social", platforms=("weibo",), comments_anywhere=True))
    assert set(ids(social.run_tool("search_topic_globally", "大学"))) == {"weibo:w1", "douyin:dc1"}
    assert ids(social.run_tool("search_topic_on_platform", "大学", platform="douyin")) == ["douyin:dc1"]


def test_index_is_idempotent_and_backfills_rows_written_without_segments(db):
    ensure_search_index(db)
    ensure_search_index(db, force=True)
    with db.session() as s:  # e.g. a post written by hand, without content_seg
        s.add(Post(platform="tieba", post_id="t1", content="二手汽车交易经验分享", publish_time=NEWEST))
    assert search_posts(db, "二手") == []
    ensure_search_index(db, force=True)
    assert ids(search_posts(db, "二手 汽车")) == ["tieba:t1"]
    if db.backend == "sqlite":
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH 'zx二手'")).scalar() == 1
    elif db.backend == "postgresql":
        with db.engine.connect() as conn:
            # jieba's words as they are, in the built-in 'simple' configuration, under a GIN index.
            index = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_posts_content_tsv'")).scalar()
            assert "USING gin (content_tsv)" in index
            words = conn.execute(text("SELECT CAST(content_tsv AS TEXT) FROM posts WHERE post_id = 't1'")).scalar()
            assert "'zx二手'" in words and "'zx汽车'" in words
            match = "SELECT COUNT(*) FROM posts WHERE content_tsv @@ phraseto_tsquery('simple', :w)"
            assert conn.execute(text(match), {"w": "zx二手"}).scalar() == 1
            assert conn.execute(text(match), {"w": "zx二"}).scalar() == 0  # a word, not a substring
    else:
        with db.engine.connect() as conn:
            # Why the prefix: InnoDB drops tokens shorter than innodb_ft_min_token_size (3), i.e. 大学, 汽车.
            assert conn.execute(text("SELECT @@innodb_ft_min_token_size")).scalar() >= 3
            index_type = conn.execute(text(
                "SELECT INDEX_TYPE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = 'posts' AND COLUMN_NAME = 'content_seg'")).scalar()
            assert index_type == "FULLTEXT"
            assert conn.execute(text(
                "SELECT COUNT(*) FROM posts WHERE MATCH(content_seg) AGAINST ('二手' IN BOOLEAN MODE)")).scalar() == 0
            assert conn.execute(text(
                "SELECT COUNT(*) FROM posts WHERE MATCH(content_seg) AGAINST ('zx二手' IN BOOLEAN MODE)")).scalar() == 1


def test_a_word_in_every_post_still_matches(db):
    import_records(db, [{"platform": "weibo", "content": f"汽车 第{i}条"} for i in range(3)])
    assert len(search_posts(db, "汽车")) == 3  # bm25 / InnoDB relevance is ~0 here, the rows still match


def test_corpus_summary(corpus_db):
    summary = corpus_summary(corpus_db)
    assert summary["total"] == len(CORPUS)
    assert summary["by_platform"] == {"weibo": 3, "douyin": 2, "bilibili": 1, "xhs": 1, "zhihu": 1}
    assert summary["by_kind"] == {"post": 6, "comment": 2} and summary["by_source"] == {"import": 8}
    assert summary["newest_post"] == "2024-03-10 12:00:00" and summary["first_post"] == "2024-01-30 12:00:00"
    assert summary["span_days"] == 40.0 and summary["undated"] == 0
    assert corpus.corpus_stats(corpus_db).total == len(CORPUS)


def test_empty_corpus(db):
    assert search_posts(db, "汽车") == [] and search_hot_content(db, "汽车", "week") == []
    assert corpus_summary(db)["total"] == 0 and corpus_summary(db)["newest_post"] is None
    assert CorpusSearchProvider(db).run_tool("search_last_week", "汽车") == []


def test_a_post_sharing_one_word_of_a_long_topic_is_left_out_even_when_little_else_matches(db):
    from core.corpus.importers import import_records

    on_topic = [{"platform": "weibo", "post_id": f"on{i}", "content": f"新能源汽车价格战第{i}轮，车企纷纷降价"}
                for i in range(6)]
    off_topic = [{"platform": "weibo", "post_id": "off", "content": "演唱会门票价格太贵了，黄牛加价"}]
    import_records(db, on_topic + off_topic)
    found = [d.doc_id for d in search_posts(db, "新能源汽车价格战", limit=20)]
    assert "weibo:off" not in found and len(found) == 6
    # A post holding 1 of 4 rare words is not about the query, even when it is the only match: no
    # weaker matches fill the list any more (they were how off-topic posts got into reports).
    assert search_posts(db, "黄牛 预售 退票 实名", limit=20) == []


def _two_topics(db):
    """A corpus where the other topic is much bigger and much hotter than ours."""
    from core.corpus.importers import import_records

    ours = [{"platform": "weibo", "post_id": f"jay{i}", "content": f"周杰伦新歌第{i}首，旋律还是熟悉的味道",
             "likes": 1 + i} for i in range(5)]
    ours += [{"platform": "weibo", "post_id": f"jayc{i}", "content": f"周杰伦的演唱会门票第{i}次秒空", "likes": 2}
             for i in range(3)]
    theirs = [{"platform": "weibo", "post_id": f"ev{i}", "content": f"新能源汽车价格战又降价{i}千元，演唱会赞助也停了",
               "likes": 100_000 + i, "shares": 5000} for i in range(40)]
    import_records(db, ours + theirs)


def test_in_a_two_topic_corpus_the_other_topics_hot_posts_never_win(db):
    from core.research.scope import build_scope

    _two_topics(db)
    scope = build_scope(db, "周杰伦演唱会")
    provider = CorpusSearchProvider(db, scope=scope)
    for tool, params in (("search_hot_content", {"time_period": "year"}), ("search_topic_globally", {}),
                         ("get_comments_for_topic", {}), ("search_topic_on_platform", {"platform": "weibo"})):
        # the query adds a word of the other topic: the scope still keeps only posts about ours
        found = ids(provider.run_tool(tool, "周杰伦 价格战", **params))
        assert all(d.startswith("weibo:jay") for d in found), (tool, found)
    hot = ids(provider.run_tool("search_hot_content", "周杰伦演唱会", time_period="all"))
    assert hot and all(d.startswith("weibo:jay") for d in hot)


def test_the_topic_scope_strips_analyst_filler_and_expands_with_words_that_co_occur(db):
    from core.corpus.importers import import_records
    from core.research.scope import build_scope, matching_counts, topic_terms

    import_records(db, [{"platform": "weibo", "post_id": f"w{i}", "content": f"武汉大学樱花季预约第{i}天，武大校园人很多"}
                        for i in range(10)]
                   + [{"platform": "weibo", "post_id": f"a{i}", "content": f"武大樱花开了，校园第{i}景"} for i in range(2)]
                   + [{"platform": "weibo", "post_id": f"c{i}", "content": f"大学食堂第{i}次涨价，学生不满"} for i in range(8)])
    assert [t[2:] for t in topic_terms("武汉大学舆情")] == [t[2:] for t in topic_terms("武汉大学")]
    scope = build_scope(db, "武汉大学舆情")
    words = {t[2:] for t in scope.expansions}
    assert {"武大", "校园"} <= words and "大学" not in words
    # posts naming only 武大 + 校园 (two expansion words) are about the topic; the 大学 posts are not
    total, by_platform = matching_counts(db, scope)
    assert (total, by_platform) == (12, {"weibo": 12})
    assert not any(d.doc_id.startswith("weibo:c") for d in search_posts(db, "武汉大学 食堂", scope=scope, limit=50))


def test_news_is_a_platform_the_planner_and_the_tools_agree_on(db):
    # The offline planner names the platforms its overview found; 'news' must be searchable by the
    # platform tool instead of failing with "unknown platform 'news'".
    from core.corpus.importers import import_records

    import_records(db, [{"platform": "news", "post_id": "n1", "content": "多家车企跟进降价，新能源汽车价格战白热化"},
                        {"platform": "新闻", "post_id": "n2", "content": "新能源汽车价格战：工信部规范竞争秩序"}])
    assert set(ids(search_topic_on_platform(db, "news", "新能源汽车价格战"))) == {"news:n1", "news:n2"}
    assert ids(CorpusSearchProvider(db).run_tool("search_topic_on_platform", "新能源汽车价格战", platform="新闻"))


def test_one_expansion_word_needs_real_support_from_the_topic_words():
    from core.research.relevance import TopicScope

    scope = TopicScope("同济大学", ("zx同济", "zx大学", "zx同济大学"), {"zx同济": 4.0, "zx大学": 1.0, "zx同济大学": 4.0},
                       0.5, frozenset({"zx上海", "zx校庆"}))
    assert scope.admits({"zx同济", "zx大学", "zx同济大学"})            # the topic itself
    assert scope.admits({"zx上海", "zx校庆"})                           # two expansion words
    assert scope.admits({"zx同济", "zx上海"})                           # one, beside 4/9 of the topic's weight
    assert not scope.admits({"zx大学", "zx上海", "zx交通"})              # one, beside a common word (1/9)
    assert not scope.admits({"zx上海"})


def test_index_stats_follow_imports(db):
    from core.corpus.search import index_stats
    from core.corpus.importers import import_records

    import_records(db, [{"platform": "weibo", "post_id": "a", "content": "汽车"}])
    first = index_stats(db)
    assert first.n_docs == 1 and first.avgdl == pytest.approx(1.0)
    assert index_stats(db) == first  # unchanged corpus: the cached mean length is reused
    import_records(db, [{"platform": "weibo", "post_id": "b", "content": "汽车 电池 回收"}])
    second = index_stats(db)
    assert second.n_docs == 2 and second.version != first.version and second.avgdl > first.avgdl
