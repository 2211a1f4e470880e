"""Importers: CSV / JSONL / JSON files and a MindSpider/MediaCrawler database (MariaDB or PostgreSQL)
into the corpus, on SQLite and on real MariaDB and PostgreSQL servers."""
from __future__ import annotations

import io
import json
import sqlite3
from datetime import datetime

import pymysql
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from core.corpus.search import search_posts
from core.corpus.importers import (
    import_records,
    parse_count,
    parse_sentiment,
    stable_post_id,
)
from core.corpus.import_files import import_file
from core.corpus.mindspider import import_mindspider, url_problem
from core.infra.redact import MASK, scrub_url_text
from core.text.dates import parse_time
from core.infra.models import Post


def posts(db) -> dict[tuple[str, str], Post]:
    with db.session() as s:
        return {(p.platform, p.post_id): p for p in s.scalars(select(Post))}


@pytest.mark.parametrize("raw, expected", [
    ("1.2万", 12_000), ("3k", 3_000), ("3K", 3_000), ("1,234", 1_234), ("10万+", 100_000), ("2亿", 200_000_000),
    ("1.5w", 15_000), (" 42 ", 42), (7, 7), (7.0, 7), ("", 0), (None, 0), ("-", 0),
])
def test_parse_count(raw, expected):
    assert parse_count(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "1.2.3", "-5", "inf", "万"])
def test_parse_count_rejects(raw):
    with pytest.raises(ValueError):
        parse_count(raw)


@pytest.mark.parametrize("raw, expected", [
    ("2024-03-10T12:30:00", datetime(2024, 3, 10, 12, 30)),
    ("2024-03-10T12:30:00Z", datetime(2024, 3, 10, 12, 30)),
    ("2024-03-10T20:30:00+08:00", datetime(2024, 3, 10, 12, 30)),
    ("2024-03-10 12:30:00", datetime(2024, 3, 10, 12, 30)),
    ("2024-03-10", datetime(2024, 3, 10)),
    ("2024/3/1 08:05", datetime(2024, 3, 1, 8, 5)),
    ("2024年3月1日 08:05", datetime(2024, 3, 1, 8, 5)),
    (1710073800, datetime(2024, 3, 10, 12, 30)),  # epoch seconds
    ("1710073800000", datetime(2024, 3, 10, 12, 30)),  # epoch milliseconds
    (1710073800000, datetime(2024, 3, 10, 12, 30)),
    ("", None),
])
def test_parse_time(raw, expected):
    assert parse_time(raw) == expected


@pytest.mark.parametrize("raw", ["yesterday", "2024-02-30", "99999999999999999999", "12:30"])
def test_parse_time_rejects(raw):
    with pytest.raises(ValueError):
        parse_time(raw)


def test_parse_sentiment():
    assert [parse_sentiment(v) for v in ("positive", "负面", "neutral", "0.25", 1, "7", "great")] == \
        [1.0, 0.0, 0.5, 0.25, 1.0, None, None]


CSV = (
    "\ufeffplatform,id,title,content,author,publish_time,likes,comments,shares,views,url,keyword,city\n"
    "weibo,w1,新能源,比亚迪发布新款汽车，续航更长,车评人,2024-03-10 12:00:00,1.2万,3k,\"1,234\",,https://weibo.com/w1,新能源,深圳\n"
    "weibo,w2,,,nobody,2024-03-10 12:00:00,1,,,,,,\n"  # line 3: no content
    "douyin,d1,,大学生毕业季,学生,2024-03-09,abc,,,,,,\n"  # line 4: bad count
    "douyin,d2,,大学食堂测评,学生,last tuesday,,,,,,,\n"  # line 5: bad time
    ",,,没有平台也没有编号的帖子：汽车,,1709900000000,,,,,,,\n"  # line 6: good; default platform, hashed id
    "xhs,x1,,多了一列,a,2024-03-01,1,2,3,4,u,k,c,EXTRA\n"  # line 7: too many values
    ",,,,,,,,,,,,\n"  # line 8: blank: skipped
    "bilibili,b1,测评,\"汽车测评，\n第二行\",up主,2024-03-08T10:00:00+08:00,5,6,7,80000,,,\n"  # lines 9-10: good, multi-line
)


def test_csv_import_reports_broken_rows_and_keeps_the_good_ones(db, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text(CSV, encoding="utf-8")
    report = import_file(db, path, source="import")
    assert [row for row, _ in report.error_texts()] == [3, 4, 5, 7]  # file lines: the header is line 1
    messages = dict(report.error_texts())
    assert "content" in messages[3] and "likes" in messages[4] and "publish_time" in messages[5]
    assert "values" in messages[7]
    assert (report.imported, report.updated, report.skipped, report.error_count) == (3, 0, 1, 4)
    stored = posts(db)
    assert set(stored) == {("weibo", "w1"), ("unknown", stable_post_id("unknown", "没有平台也没有编号的帖子：汽车")),
                           ("bilibili", "b1")}
    w1 = stored[("weibo", "w1")]
    assert (w1.likes, w1.comments, w1.shares, w1.views) == (12_000, 3_000, 1_234, 0)
    assert (w1.title, w1.author, w1.url, w1.keyword, w1.kind) == ("新能源", "车评人", "https://weibo.com/w1", "新能源",
                                                                  "post")
    assert w1.extras == {"city": "深圳"} and w1.publish_time == datetime(2024, 3, 10, 12)
    assert w1.content_seg and "zx汽车" in w1.content_seg.split()
    b1 = stored[("bilibili", "b1")]
    assert b1.content == "汽车测评，\n第二行" and b1.publish_time == datetime(2024, 3, 8, 2) and b1.views == 80_000
    assert set(d.doc_id for d in search_posts(db, "汽车")) == {
        "weibo:w1", "bilibili:b1", f"unknown:{stable_post_id('unknown', '没有平台也没有编号的帖子：汽车')}"}


def test_reimport_is_idempotent_and_updates_change_the_index(db, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text(CSV, encoding="utf-8")
    first = import_file(db, path)
    again = import_file(db, path)
    assert (again.imported, again.updated, again.skipped) == (0, 0, first.skipped + first.imported)
    assert len(posts(db)) == 3
    changed = CSV.replace("比亚迪发布新款汽车，续航更长", "比亚迪发布新款手机").replace(",1.2万,", ",2万,")
    path.write_text(changed, encoding="utf-8")
    third = import_file(db, path)
    assert (third.imported, third.updated) == (0, 1) and len(posts(db)) == 3
    assert posts(db)[("weibo", "w1")].likes == 20_000
    assert "weibo:w1" in {d.doc_id for d in search_posts(db, "手机")}
    assert "weibo:w1" not in {d.doc_id for d in search_posts(db, "汽车")}  # the old words left the index


def test_jsonl_import_row_errors_by_line(db, tmp_path):
    lines = [
        json.dumps({"platform": "zhihu", "id": "z1", "text": "汽车行业怎么看", "likes": "5", "topic_id": 42,
                    "tags": ["车", "行业"]}, ensure_ascii=False),
        "{not json",
        "",
        json.dumps(["a", "list"]),
        json.dumps({"platform": "tieba", "content": "贴吧里聊汽车", "publish_time": 1709900000}, ensure_ascii=False),
        json.dumps({"platform": "weibo", "id": "c9", "content": "评论内容汽车", "kind": "comment", "parent_id": "w1",
                    "sentiment": "negative"}, ensure_ascii=False),
    ]
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_file(db, path)
    assert [row for row, _ in report.error_texts()] == [2, 4] and report.imported == 3
    assert "JSON" in dict(report.error_texts())[2]
    stored = posts(db)
    assert stored[("zhihu", "z1")].extras == {"topic_id": 42, "tags": ["车", "行业"]}
    assert stored[("weibo", "c9")].kind == "comment" and stored[("weibo", "c9")].sentiment == 0.0
    tieba = [p for (plat, _), p in stored.items() if plat == "tieba"][0]
    assert tieba.publish_time == datetime(2024, 3, 8, 12, 13, 20)
    again = import_file(db, path)  # the tieba post has no id: its hashed id is stable
    assert again.imported == 0 and len(posts(db)) == 3


def test_json_list_from_an_upload_object(db):
    data = [{"platform": "快手", "content": "快手上的汽车视频", "views": "3.5万"}, "oops", {"content": "  ", "likes": 1},
            {"content": None}]
    upload = io.BytesIO(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    upload.name = "upload.json"
    report = import_file(db, upload)
    assert (report.imported, report.skipped) == (1, 1) and [row for row, _ in report.error_texts()] == [2, 3]
    (post,) = posts(db).values()
    assert (post.platform, post.views) == ("kuaishou", 35_000)


def test_gb18030_csv_and_unsupported_or_garbage_files(db, tmp_path):
    gbk = tmp_path / "excel.csv"
    gbk.write_bytes("content,platform\n国产汽车销量上涨,weibo\n".encode("gb18030"))
    assert import_file(db, gbk).imported == 1
    cases = {
        "image.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
        "random.jsonl": bytes((i * 7919) % 256 for i in range(5000)),
        "empty.csv": b"",
        "nocontent.csv": "标题,作者\n汽车,某人\n".encode(),
        "broken.json": b'[{"content": "a"',
        "sheet.xlsx": b"PK\x03\x04 not really",
    }
    for name, payload in cases.items():
        (tmp_path / name).write_bytes(payload)
        report = import_file(db, tmp_path / name)
        assert report.imported == 0 and [row for row, _ in report.errors] == [0], (name, report.error_texts())
    assert "content" in import_file(db, tmp_path / "nocontent.csv").error_texts()[0][1]
    assert import_file(db, tmp_path / "missing.csv").error_texts()[0][0] == 0
    assert len(posts(db)) == 1


def test_records_extras_defaults_and_duplicates_in_one_batch(db):
    report = import_records(db, [
        {"content": "同一条帖子", "id": "p1", "likes": 1, "mood": "happy", "score": 0.5},
        {"content": "同一条帖子（修改后）", "id": "p1", "likes": 2},
        {"text": "另一条", "platform": "WEIBO"},
    ], default_platform="news", source="demo")
    assert (report.imported, report.updated, report.error_count) == (2, 1, 0)
    stored = posts(db)
    assert stored[("news", "p1")].content == "同一条帖子（修改后）" and stored[("news", "p1")].likes == 2
    assert stored[("news", "p1")].source == "demo"
    other = [p for (plat, _), p in stored.items() if plat == "weibo"]
    assert len(other) == 1 and other[0].content == "另一条"


def test_many_rows_are_batched(db, monkeypatch):
    import core.corpus.importers as importers

    monkeypatch.setattr(importers, "BATCH_SIZE", 7)
    records = [{"platform": "weibo", "id": str(i), "content": f"第{i}条关于汽车的帖子"} for i in range(30)]
    records[12]["likes"] = "many"
    report = import_records(db, records)
    assert (report.imported, report.error_texts()) == (29, [(13, "likes: cannot read 'many' as a count")])
    assert len(search_posts(db, "汽车", limit=100)) == 29


# ----------------------------------------------------------------------------- MindSpider / MediaCrawler

MINDSPIDER_DDL = [
    """CREATE TABLE weibo_note (id INT AUTO_INCREMENT PRIMARY KEY, user_id VARCHAR(64), nickname VARCHAR(64),
        avatar VARCHAR(255), ip_location VARCHAR(32), add_ts BIGINT NOT NULL, last_modify_ts BIGINT NOT NULL,
        note_id VARCHAR(64) NOT NULL, content LONGTEXT, create_time BIGINT NOT NULL,
        create_date_time VARCHAR(32) NOT NULL, liked_count VARCHAR(16), comments_count VARCHAR(16),
        shared_count VARCHAR(16), note_url VARCHAR(512), source_keyword VARCHAR(255) DEFAULT '')""",
    """CREATE TABLE weibo_note_comment (id INT AUTO_INCREMENT PRIMARY KEY, nickname VARCHAR(64), add_ts BIGINT NOT NULL,
        last_modify_ts BIGINT NOT NULL, comment_id VARCHAR(64) NOT NULL, note_id VARCHAR(64) NOT NULL,
        content LONGTEXT, create_time BIGINT NOT NULL, create_date_time VARCHAR(32) NOT NULL,
        comment_like_count VARCHAR(16) NOT NULL, sub_comment_count VARCHAR(16) NOT NULL,
        parent_comment_id VARCHAR(64))""",
    """CREATE TABLE bilibili_video (id INT AUTO_INCREMENT PRIMARY KEY, nickname VARCHAR(64), add_ts BIGINT NOT NULL,
        last_modify_ts BIGINT NOT NULL, video_id VARCHAR(64) NOT NULL, video_type VARCHAR(16) NOT NULL,
        title VARCHAR(500), `desc` LONGTEXT, create_time BIGINT NOT NULL, liked_count VARCHAR(16),
        video_play_count VARCHAR(16), video_danmaku VARCHAR(16), video_comment VARCHAR(16), video_url VARCHAR(512),
        source_keyword VARCHAR(255))""",
    # Schema drift: xhs_note with `time` in ms, no share_count, an extra column.
    """CREATE TABLE xhs_note (id INT AUTO_INCREMENT PRIMARY KEY, user_id VARCHAR(64) NOT NULL, nickname VARCHAR(64),
        add_ts BIGINT NOT NULL, last_modify_ts BIGINT NOT NULL, note_id VARCHAR(64) NOT NULL, type VARCHAR(16),
        title VARCHAR(255), `desc` LONGTEXT, time BIGINT NOT NULL, liked_count VARCHAR(16),
        collected_count VARCHAR(16), comment_count VARCHAR(16), note_url VARCHAR(255), tag_list LONGTEXT)""",
    """CREATE TABLE zhihu_content (id INT AUTO_INCREMENT PRIMARY KEY, content_id VARCHAR(64) NOT NULL,
        content_type VARCHAR(16) NOT NULL, content_text LONGTEXT, content_url VARCHAR(255) NOT NULL,
        title VARCHAR(255) NOT NULL, `desc` LONGTEXT, created_time VARCHAR(32) NOT NULL,
        voteup_count INT NOT NULL DEFAULT 0, comment_count INT NOT NULL DEFAULT 0, source_keyword VARCHAR(64),
        user_nickname VARCHAR(64) NOT NULL, add_ts BIGINT NOT NULL, last_modify_ts BIGINT NOT NULL)""",
]
MINDSPIDER_ROWS = [
    ("INSERT INTO weibo_note (nickname, avatar, ip_location, add_ts, last_modify_ts, note_id, content, create_time, "
     "create_date_time, liked_count, comments_count, shared_count, note_url, source_keyword) VALUES "
     "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", [
         ("新浪汽车", "https://a/1.jpg", "北京", 1, 1, "5001", "新能源汽车下乡活动启动", 1710072000,
          "2024-03-10 20:00:00", "1.2万", "300", "45", "https://weibo.com/5001", "新能源汽车"),
         ("路人", "", "上海", 1, 1, "5002", "大学食堂涨价了", 1709985600, "2024-03-09 20:00:00", "赞", "", "",
          "", "大学"),
     ]),
    ("INSERT INTO weibo_note_comment (nickname, add_ts, last_modify_ts, comment_id, note_id, content, create_time, "
     "create_date_time, comment_like_count, sub_comment_count, parent_comment_id) VALUES "
     "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", [
         ("评论者", 1, 1, "5001", "5001", "汽车下乡真不错", 1710075600, "2024-03-10 21:00:00", "12", "0", "0"),
     ]),
    ("INSERT INTO bilibili_video (nickname, add_ts, last_modify_ts, video_id, video_type, title, `desc`, create_time, "
     "liked_count, video_play_count, video_danmaku, video_comment, video_url, source_keyword) VALUES "
     "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", [
         ("UP主", 1, 1, "BV1xx", "video", "汽车测评", "这台电动汽车续航实测", 1709900000, "3.4万", "120万", "999",
          "800", "https://www.bilibili.com/video/BV1xx", "汽车"),
         ("UP主", 1, 1, "BV1yy", "video", "只有标题的视频：大学开学", None, 1709800000, "1", "2", "0", "0", "", ""),
     ]),
    ("INSERT INTO xhs_note (user_id, nickname, add_ts, last_modify_ts, note_id, type, title, `desc`, time, "
     "liked_count, collected_count, comment_count, note_url, tag_list) VALUES "
     "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", [
         ("u1", "小红薯", 1, 1, "6601", "normal", "通勤好物", "分享我的新能源汽车通勤体验", 1710000000000, "10万+",
          "20", "30", "https://www.xiaohongshu.com/explore/6601", "汽车,通勤"),
     ]),
    ("INSERT INTO zhihu_content (content_id, content_type, content_text, content_url, title, `desc`, created_time, "
     "voteup_count, comment_count, source_keyword, user_nickname, add_ts, last_modify_ts) VALUES "
     "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", [
         ("777", "answer", "大学选专业要看就业", "https://www.zhihu.com/answer/777", "如何选专业", "", "1709000000",
          250, 12, "大学", "答主", 1, 1),
     ]),
]


def _postgres_ddl(ddl: str) -> str:
    """The MySQL DDL above as BettaFish's PostgreSQL schema has it: SERIAL ids, TEXT, and Weibo's
    note and comment ids as BIGINT (MediaCrawler's SQLAlchemy models)."""
    ddl = ddl.replace("INT AUTO_INCREMENT PRIMARY KEY", "SERIAL PRIMARY KEY").replace("LONGTEXT", "TEXT")
    if ddl.startswith("CREATE TABLE weibo_note"):
        ddl = ddl.replace("note_id VARCHAR(64)", "note_id BIGINT").replace("comment_id VARCHAR(64)", "comment_id BIGINT")
    return ddl.replace("`", '"')


@pytest.fixture(params=[pytest.param("mysql", marks=pytest.mark.mysql),
                        pytest.param("postgresql", marks=pytest.mark.postgres)])
def mindspider_url(request):
    """A MindSpider database on a real server: MariaDB, or PostgreSQL (BettaFish's newer default),
    given by the URL form a BettaFish config has (postgresql://, no driver named)."""
    if request.param == "mysql":
        url = request.getfixturevalue("mariadb_server").fresh_database()
        u = make_url(url)
        conn = pymysql.connect(host=u.host, port=u.port, user=u.username, password=u.password, database=u.database,
                               charset="utf8mb4", autocommit=True)
        with conn, conn.cursor() as cur:
            for ddl in MINDSPIDER_DDL:
                cur.execute(ddl + " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
            for sql, rows in MINDSPIDER_ROWS:
                cur.executemany(sql, rows)
        return url
    import psycopg

    u = make_url(request.getfixturevalue("postgres_server").fresh_database())
    with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database,
                         autocommit=True) as conn, conn.cursor() as cur:
        for ddl in MINDSPIDER_DDL:
            cur.execute(_postgres_ddl(ddl))
        for sql, rows in MINDSPIDER_ROWS:
            cur.executemany(sql.replace("`", '"'), rows)  # a str into a BIGINT column: PostgreSQL casts it
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def test_mindspider_import_from_a_real_database(db, mindspider_url):
    report = import_mindspider(db, mindspider_url)
    assert (report.imported, report.error_count) == (7, 0), report.as_dict()
    assert any(n.startswith("douyin_aweme: not in the database") for n in report.note_texts())
    assert "weibo_note: 2 rows" in report.note_texts() and "bilibili_video: 2 rows" in report.note_texts()
    assert "weibo_note：2 行" in report.note_texts("zh")
    stored = posts(db)
    note = stored[("weibo", "5001")]
    assert (note.content, note.author, note.likes, note.comments, note.shares) == ("新能源汽车下乡活动启动", "新浪汽车",
                                                                                   12_000, 300, 45)
    assert (note.url, note.keyword, note.source, note.kind) == ("https://weibo.com/5001", "新能源汽车", "mindspider",
                                                                "post")
    assert note.publish_time == datetime(2024, 3, 10, 12) and note.extras["ip_location"] == "北京"
    assert "avatar" not in note.extras and note.extras["mindspider_table"] == "weibo_note"
    assert stored[("weibo", "5002")].likes == 0  # Weibo shows "赞" for zero likes
    comment = stored[("weibo", "c5001")]  # comment ids may equal post ids: kept apart
    assert (comment.kind, comment.parent_id, comment.likes) == ("comment", "5001", 12)
    video = stored[("bilibili", "BV1xx")]
    assert (video.title, video.content, video.views, video.likes, video.comments) == (
        "汽车测评", "这台电动汽车续航实测", 1_200_000, 34_000, 800)
    assert stored[("bilibili", "BV1yy")].content == "只有标题的视频：大学开学"
    xhs = stored[("xhs", "6601")]
    assert xhs.publish_time == datetime(2024, 3, 9, 16) and xhs.likes == 100_000 and xhs.extras["tag_list"] == \
        "汽车,通勤"
    zhihu = stored[("zhihu", "777")]
    assert (zhihu.title, zhihu.content, zhihu.likes, zhihu.url) == ("如何选专业", "大学选专业要看就业", 250,
                                                                    "https://www.zhihu.com/answer/777")
    assert {d.doc_id for d in search_posts(db, "汽车")} == {"weibo:5001", "weibo:c5001", "bilibili:BV1xx", "xhs:6601"}
    assert {d.doc_id for d in search_posts(db, "大学")} == {"weibo:5002", "bilibili:BV1yy", "zhihu:777"}
    again = import_mindspider(db, mindspider_url, limit_per_table=1)
    assert (again.imported, again.updated, again.skipped) == (0, 0, 5) and len(posts(db)) == 7


def test_mindspider_unreachable_or_unusable_sources_report_errors(db, tmp_path):
    report = import_mindspider(db, "mysql+pymysql://u:secret@127.0.0.1:1/nope")
    assert report.imported == 0 and report.error_texts()[0][0] == 0 and "secret" not in report.error_texts()[0][1]
    report = import_mindspider(db, "postgresql://u:secret@127.0.0.1:1/nope")
    assert report.imported == 0 and report.error_texts()[0][0] == 0 and "secret" not in report.error_texts()[0][1]
    report = import_mindspider(db, "not a url")
    assert report.imported == 0 and report.error_texts()[0][0] == 0
    missing = tmp_path / "missing.db"
    report = import_mindspider(db, f"sqlite:///{missing}")
    assert "no SQLite database" in report.error_texts()[0][1] and not missing.exists()
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE unrelated (x)").connection.close()
    report = import_mindspider(db, f"sqlite:///{other}")
    assert report.imported == 0 and "no MindSpider" in report.error_texts()[0][1] and len(report.notes) == 14


@pytest.mark.parametrize("url, says", [
    ("", "Enter the URL"),
    ("   ", "Enter the URL"),
    ("oracle://u:p@h/db", "not a MySQL or PostgreSQL URL"),
    ("mysql+pymysql://u:p@h:port/db", "malformed"),
])
def test_a_typed_mindspider_url_is_checked_before_connecting(url, says):
    assert says in url_problem(url)


def test_a_well_formed_mysql_url_passes_the_check():
    assert url_problem("mysql+pymysql://user:s3cret@127.0.0.1:3306/mindspider") is None
    assert url_problem("mariadb+pymysql://user@host/db") is None
    assert url_problem("postgresql://user:s3cret@127.0.0.1:5432/mindspider") is None
    assert url_problem("postgresql+asyncpg://user@host/mindspider") is None  # BettaFish's own form


def test_an_error_quoting_the_typed_url_never_shows_its_password():
    url = "mysql+pymysql://user:hunter2-secret@db.example:3306/ms"
    shown = scrub_url_text(f"(2003) Can't connect: {url} refused, password hunter2-secret", url)
    assert "hunter2-secret" not in shown and MASK in shown
    assert "db.example" in shown  # the rest of the message stays useful


def test_an_import_reports_why_in_the_readers_language_and_its_stored_result_keeps_it(db, tmp_path):
    from core.corpus.importers import ImportReport, note_msg
    from core.i18n import Msg

    path = tmp_path / "posts.csv"
    path.write_text("content,likes,publish_time\n第一条,5,2025-03-01\n,3,\n第三条,很多,2025-03-02\n"
                    "第四条,1,明天下午\n", encoding="utf-8")
    report = import_file(db, path)
    assert report.imported == 1 and [row for row, _ in report.errors] == [3, 4, 5]
    assert all(isinstance(msg, Msg) for _, msg in report.errors)
    en, zh = dict(report.error_texts("en")), dict(report.error_texts("zh"))
    assert en[3] == "no content: each row needs a non-empty 'content' or 'text'" and zh[3].startswith("没有内容")
    assert en[4] == "likes: cannot read '很多' as a count" and zh[4] == "likes：无法把 '很多' 读作数量"
    assert en[5].startswith("publish_time: cannot read") and zh[5].startswith("publish_time：无法读作时间")
    # a data job stores the report as JSON: the page shows it later in whichever language its reader has
    report.notes.append(note_msg("table_rows", table="weibo_note", n=2))
    stored = json.loads(json.dumps(report.as_dict(messages=True), ensure_ascii=False))
    assert stored["errors"] == [list(e) for e in report.error_texts("en")]  # the command line's text, unchanged
    assert stored["notes"] == ["weibo_note: 2 rows"]
    again = ImportReport.from_dict(stored)
    assert again.errors == report.errors and dict(again.error_texts("zh")) == zh
    assert again.note_texts("zh") == ["weibo_note：2 行"]
    # a result stored before the messages were: its texts, as they were
    old = ImportReport.from_dict({"imported": 1, "error_count": 1, "errors": [[3, "no content"]],
                                  "notes": ["x: 1 rows"]})
    assert old.error_texts("zh") == [(3, "no content")] and old.note_texts("zh") == ["x: 1 rows"]
    # a file that cannot be read at all: one error at row 0, in either language
    (tmp_path / "empty.csv").write_bytes(b"")
    [(row, msg)] = import_file(db, tmp_path / "empty.csv").errors
    assert row == 0 and msg.render("en") == "the file is empty" and msg.render("zh") == "文件是空的"


def test_a_reports_scrubbed_copy_hides_a_password_in_its_errors_arguments():
    from core.corpus.importers import ImportReport, error_msg, note_msg

    url = "mysql+pymysql://shoal:s3cret-pw@db.example:3306/mindspider"
    report = ImportReport(source="mindspider")
    report.add_error(0, error_msg("mindspider_stopped", table="weibo_note", error=f"connection to {url} lost"))
    report.add_error(7, error_msg("table_row", table="weibo_note", row=7,
                                  error=error_msg("text", text=f"bad value from {url}")))
    report.notes.append(note_msg("text", text=f"read from {url}"))
    clean = report.scrubbed(lambda text: scrub_url_text(text, url))
    shown = json.dumps(clean.as_dict(messages=True), ensure_ascii=False) + str(clean.error_texts("zh"))
    assert "s3cret-pw" not in shown and MASK in shown
    assert "s3cret-pw" in report.error_texts()[0][1], "the original is left as it was"
