"""The Data page's reads: pages of posts ranked exactly as the engines' search ranks them, paged in the
search layer, and per-day counts in the reader's zone."""
from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from core.corpus import browse
from core.corpus.browse import browse_posts, posts_by_platform, posts_per_day
from core.corpus.importers import import_records
from core.corpus.search import search_posts


def corpus(n: int = 45) -> list[dict]:
    return [{"platform": ("weibo", "douyin", "zhihu")[i % 3], "post_id": f"p{i}", "likes": i,
             "content": (f"新能源汽车价格战第{i}轮，车企降价" if i % 4 else f"今天的天气不错，第{i}天"),
             "publish_time": f"2025-03-{1 + i % 9:02d} {i % 24:02d}:{i % 60:02d}:00"} for i in range(n)]


def test_search_pages_follow_the_engines_ranking_and_load_one_page(db, monkeypatch):
    import_records(db, corpus())
    ranked = [d.doc_id for d in search_posts(db, "新能源汽车 价格战", limit=1000)]
    assert len(ranked) > 20
    loaded: list[int] = []
    real = browse.fetch_documents
    monkeypatch.setattr(browse, "fetch_documents", lambda db_, rows: loaded.append(len(rows)) or real(db_, rows))
    pages = [browse_posts(db, "新能源汽车 价格战", page=p, page_size=10) for p in (1, 2, 3, 4)]
    assert [d.doc_id for pg in pages for d in pg.posts] == ranked
    assert loaded == [10, 10, 10, len(ranked) - 30]  # only one page's posts read in full each time
    first = pages[0]
    assert (first.total, first.pages, first.page, first.first) == (len(ranked), 4, 1, 1)
    scores = [d.score for pg in pages for d in pg.posts]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    assert [d.score for d in search_posts(db, "新能源汽车 价格战", limit=5)] == scores[:5]


def test_platform_filter_blank_query_and_page_past_the_end(db):
    import_records(db, corpus())
    page = browse_posts(db, "新能源汽车", platforms=["微博"], page=1, page_size=100)
    assert page.total and {d.platform for d in page.posts} == {"weibo"}
    everything = browse_posts(db, "", page=1, page_size=20)
    assert everything.total == 45 and everything.pages == 3 and all(d.score == 0 for d in everything.posts)
    times = [d.published for d in everything.posts]
    assert times == sorted(times, reverse=True)  # newest first
    last = browse_posts(db, "", page=99, page_size=20)
    assert last.page == 3 and len(last.posts) == 5 and last.first == 41
    assert browse_posts(db, "完全无关的词语", page=1).total == 0
    assert browse_posts(db, "", platforms="douyin", page=1, page_size=10).total == 15


@pytest.mark.parametrize("zone,day", [
    ("UTC", date(2025, 3, 1)),
    ("Asia/Shanghai", date(2025, 3, 2)),         # 18:29 UTC is 02:29 the next day
    ("Asia/Kolkata", date(2025, 3, 1)),          # 23:59 on the same day (+05:30)
    ("America/New_York", date(2025, 3, 1)),      # 13:29
])
def test_days_are_counted_in_the_reader_zone(db, zone, day):
    import_records(db, [{"platform": "weibo", "post_id": "a", "content": "一条", "publish_time": "2025-03-01T18:29:00Z"},
                        {"platform": "weibo", "post_id": "b", "content": "两条", "publish_time": "2025-03-01T18:30:00Z"},
                        {"platform": "douyin", "post_id": "c", "content": "三条"}])
    counts = posts_per_day(db, ZoneInfo(zone))
    assert sum(n for _, _, n in counts) == 2  # the undated post is not drawn
    first = next(d for d, p, n in counts)
    assert first == day
    if zone == "Asia/Kolkata":  # 18:30 UTC is midnight there: the next day
        assert counts == [(date(2025, 3, 1), "weibo", 1), (date(2025, 3, 2), "weibo", 1)]
    assert posts_by_platform(db) == {"weibo": 2, "douyin": 1}
    assert posts_per_day(db, ZoneInfo("UTC")) == [(date(2025, 3, 1), "weibo", 2)]
