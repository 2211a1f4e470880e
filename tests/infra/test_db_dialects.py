"""What differs between the backends and must not show: columns added to an existing table, NUL
characters, PostgreSQL's own types, indexes and URLs, and Chinese search whatever its locale."""
from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import inspect, select, text

from core.corpus.importers import import_records
from core.corpus.search import search_posts
from core.infra.db import open_database
from core.infra.models import Event, ForumMessage, Post, Run, utcnow


def _columns(database, table: str) -> set[str]:
    return {c["name"] for c in inspect(database.engine).get_columns(table)}


def test_columns_added_to_a_model_reach_an_existing_table_once_even_when_processes_race(db_url, db):
    """forum_messages.round and .llm_call_id came after the table first shipped: a database from
    before them gets them at the next start, its rows kept, however many processes start at once."""
    if db.backend == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        pytest.skip("this SQLite cannot DROP COLUMN to make the old table")
    with db.session() as s:
        s.add(ForumMessage(run_id="r1", type="agent", sender="Query Engine", source="QUERY", content="旧消息"))
    with db.engine.begin() as conn:  # the table as it first shipped
        for column in ("round", "llm_call_id"):
            conn.execute(text(f"ALTER TABLE forum_messages DROP COLUMN {column}"))
    assert not {"round", "llm_call_id"} & _columns(db, "forum_messages")
    db.dispose()

    barrier, errors, lock = threading.Barrier(4), [], threading.Lock()

    def start():
        barrier.wait()
        database = open_database(db_url)
        with lock:
            errors.append(database.error)
        database.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [""] * 4
    again = open_database(db_url)
    try:
        assert {"round", "llm_call_id"} <= _columns(again, "forum_messages")
        with again.session() as s:
            (old,) = s.scalars(select(ForumMessage)).all()
            assert (old.content, old.round, old.llm_call_id) == ("旧消息", None, None)
            s.add(ForumMessage(run_id="r1", type="agent", sender="Media Engine", source="MEDIA", content="新消息",
                               round=2, llm_call_id=2**40))
        with again.session() as s:
            assert s.scalar(select(ForumMessage.llm_call_id).where(ForumMessage.round == 2)) == 2**40
    finally:
        again.dispose()


def test_a_nul_character_never_fails_a_write(db):
    """PostgreSQL cannot store NUL in text or JSONB: there it is dropped, elsewhere it is kept; a
    literal backslash-u0000 written as text is data, kept everywhere."""
    with db.session() as s:
        s.add(Post(platform="weibo", post_id="nul\x00id", title="标\x00题", content="正文\x00结束",
                   extras={"raw": "x\x00y", "literal": "\\u0000", "both": "\\\x00"}))
        s.add(Event(type="probe", ts=utcnow(), source="t", trace_id="", payload={"text": "a\x00b", "n": [1, "\x00"]}))
    with db.session() as s:
        post = s.scalar(select(Post))
        payload = s.scalar(select(Event.payload))
    nul = "" if db.backend == "postgresql" else "\x00"
    assert (post.post_id, post.title, post.content) == (f"nul{nul}id", f"标{nul}题", f"正文{nul}结束")
    assert post.extras == {"raw": f"x{nul}y", "literal": "\\u0000", "both": f"\\{nul}"}
    assert payload == {"text": f"a{nul}b", "n": [1, nul]}


@pytest.fixture
def pg_url(postgres_server):
    return postgres_server.fresh_database()


@pytest.mark.postgres
def test_postgres_schema_types_and_a_bare_url(pg_url):
    """A bare postgresql:// URL goes through psycopg; JSON columns are JSONB, times keep microseconds
    without a zone, and the 17-character run state fits."""
    bare = pg_url.replace("postgresql+psycopg://", "postgresql://")
    database = open_database(bare)
    try:
        assert database.ok, database.error
        assert database.backend == "postgresql" and database.engine.dialect.driver == "psycopg"
        with database.engine.connect() as conn:
            types = dict(conn.execute(text(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'runs'")).all())
            width = conn.scalar(text("SELECT character_maximum_length FROM information_schema.columns "
                                     "WHERE table_name = 'runs' AND column_name = 'status'"))
        assert types["params"] == types["settings"] == "jsonb"
        assert types["created_at"] == "timestamp without time zone" and width == 32
        with database.session() as s:
            s.add(Run(id="r1", topic="武汉大学", status="insufficient_data", params={"问": ["答"]}))
        with database.session() as s:
            run = s.get(Run, "r1")
            assert (run.status, run.params) == ("insufficient_data", {"问": ["答"]})
    finally:
        database.dispose()


@pytest.mark.postgres
def test_postgres_serves_a_trace_prefix_from_an_index(pg_url):
    """Trace ids are looked up with LIKE 'prefix%': in a UTF-8 locale only a varchar_pattern_ops
    index can serve that, and that is the index each traced table has."""
    database = open_database(pg_url)
    try:
        with database.session() as s:
            s.add_all([Run(id=f"r{i}", topic="t", trace_id=f"{i:04x}cafe") for i in range(200)])
        with database.engine.begin() as conn:
            conn.execute(text("ANALYZE runs"))
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(r[0] for r in conn.execute(text(
                "EXPLAIN SELECT id FROM runs WHERE trace_id LIKE :p ESCAPE '\\'"), {"p": "000a%"}))
        assert "ix_runs_trace" in plan, plan
        with database.session() as s:
            assert s.scalars(select(Run.id).where(Run.trace_id.like("000a%"))).all() == ["r10"]
    finally:
        database.dispose()


SEARCH_POSTS = [
    {"platform": "weibo", "post_id": "1", "content": "武汉大学樱花季，人山人海"},
    {"platform": "weibo", "post_id": "2", "content": "大学生就业形势分析"},
    {"platform": "zhihu", "post_id": "3", "content": "新能源汽车价格战Ⅳ²，车主维权"},
    {"platform": "bilibili", "post_id": "4", "title": "Café 测评", "content": "ÆØÅ 汽车 İstanbul ①号线"},
]
SEARCHES = ["武汉大学", "大学", "大学生", "汽车 价格战", "维权", "café", "İstanbul", "①号线", "Ⅳ²", "樱花 汽车"]


@pytest.mark.postgres
@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
def test_chinese_search_on_postgres_finds_what_sqlite_finds_in_any_locale(postgres_server, tmp_path, locale):
    """The tsvector holds jieba's words whatever the database's locale thinks a letter is: every
    search returns the same posts, in the same order, as on SQLite's FTS5."""
    database = open_database(postgres_server.fresh_database(locale=locale))
    reference = open_database(f"sqlite:///{tmp_path / 'ref.db'}")
    try:
        for target in (database, reference):
            import_records(target, SEARCH_POSTS)
        with database.engine.connect() as conn:
            assert conn.scalar(text("SELECT datctype FROM pg_database WHERE datname = current_database()")) == locale
        found = {q: [d.doc_id for d in search_posts(database, q)] for q in SEARCHES}
        assert found == {q: [d.doc_id for d in search_posts(reference, q)] for q in SEARCHES}
        assert found["武汉大学"] == ["weibo:1"] and found["汽车 价格战"][0] == "zhihu:3"
        assert all(found[q] for q in SEARCHES)
    finally:
        database.dispose()
        reference.dispose()
