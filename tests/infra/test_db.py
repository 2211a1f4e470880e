"""The database on both backends: schema, text and time fidelity, JSON, bad URLs, pools, sessions."""
from __future__ import annotations

import socket
import threading
from datetime import datetime

import pytest
from sqlalchemy import inspect, select, text

from core.infra.db import PoolOptions, open_database
from core.infra.redact import MASK, mask_url, redact, url_password
from core.infra.models import Base, Job, Post, Run, utcnow


def test_schema_is_created_automatically(db):
    tables = set(inspect(db.engine).get_table_names())
    expected = set(Base.metadata.tables)
    assert expected  # the models declare tables at all
    assert {"runs", "jobs", "events", "posts"} <= expected
    assert expected <= tables, expected - tables
    with db.session() as s:
        assert s.scalar(select(Run).limit(1)) is None  # usable and empty


def test_open_is_idempotent_on_an_existing_schema(db_url, db):
    with db.session() as s:
        s.add(Run(id="keepme", topic="t"))
    again = open_database(db_url)
    try:
        assert again.ok, again.error
        with again.session() as s:
            assert s.get(Run, "keepme") is not None  # create_all did not drop anything
    finally:
        again.dispose()


def test_concurrent_first_start_creates_the_schema_once(db_url):
    """The app and a worker (or two replicas) starting together on an empty database both come up."""
    barrier = threading.Barrier(6)
    errors: list[str] = []

    def start():
        barrier.wait()
        database = open_database(db_url)
        errors.append(database.error)
        database.dispose()

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(errors) == 6
    assert [e for e in errors if e] == []
    database = open_database(db_url)
    try:
        assert set(Base.metadata.tables) <= set(inspect(database.engine).get_table_names())
    finally:
        database.dispose()


def test_sqlite_file_and_folder_are_created(tmp_path):
    path = tmp_path / "deep" / "folder" / "shoal.db"
    database = open_database(f"sqlite:///{path}")
    try:
        assert database.ok, database.error
        assert database.backend == "sqlite"
        assert path.is_file()
    finally:
        database.dispose()


def test_chinese_emoji_and_long_text_round_trip(db):
    content = ("舆情分析🐟" * 20_000)[:100_000]
    assert len(content) == 100_000
    title = "武汉大学樱花季 🌸 人山人海 😂👍🏽 — “引号” 𠮷"
    with db.session() as s:
        s.add(Post(platform="weibo", post_id="p1", title=title, content=content, author="小明😀",
                   keyword="樱花", url="https://weibo.com/1/中文"))
    with db.session() as s:
        post = s.scalar(select(Post).where(Post.post_id == "p1"))
        assert post.title == title
        assert post.content == content
        assert len(post.content) == 100_000
        assert post.author == "小明😀"
        assert post.keyword == "樱花"
        # Searching by a Chinese value works too.
        assert s.scalar(select(Post.post_id).where(Post.keyword == "樱花")) == "p1"


def test_datetime_keeps_microseconds(db):
    stamp = datetime(2024, 5, 17, 13, 45, 12, 123456)
    later = datetime(2024, 5, 17, 13, 45, 12, 123457)
    with db.session() as s:
        s.add(Run(id="r1", topic="t", created_at=stamp))
        s.flush()  # no relationship() between the models: insert the parent first
        s.add(Job(id="j1", run_id="r1", kind="probe", lease_expires_at=stamp, heartbeat_at=later))
    with db.session() as s:  # a fresh session: values come from the database, not the identity map
        job = s.get(Job, "j1")
        assert job.lease_expires_at == stamp
        assert job.lease_expires_at.microsecond == 123456
        assert job.heartbeat_at == later
        assert s.get(Run, "r1").created_at == stamp
        # Lease logic compares times in SQL: a one-microsecond difference must be visible there.
        assert s.scalar(select(Job.id).where(Job.lease_expires_at < later)) == "j1"
        assert s.scalar(select(Job.id).where(Job.heartbeat_at > stamp)) == "j1"
        assert s.scalar(select(Job.id).where(Job.lease_expires_at > stamp)) is None


def test_default_timestamps_are_naive_utc_with_microseconds(db):
    before = utcnow()
    with db.session() as s:
        s.add(Run(id="r2", topic="t"))
    after = utcnow()
    with db.session() as s:
        created = s.get(Run, "r2").created_at
    assert created.tzinfo is None
    assert before <= created <= after


def test_json_columns_round_trip(db):
    params = {"topic": "新能源汽车", "emoji": "🚗", "n": 3, "ratio": 0.25, "flag": True, "none": None,
              "list": [1, "二", {"deep": [True, False]}], "nested": {"a": {"b": {"c": "d"}}}}
    checkpoint = {"paragraph": 2, "node": "reflect", "done": ["p0", "p1"]}
    with db.session() as s:
        s.add(Run(id="r3", topic="t", params=params))
        s.flush()
        s.add(Job(id="j3", run_id="r3", kind="query", params={}, depends_on=["a", "b"], checkpoint=checkpoint))
    with db.session() as s:
        assert s.get(Run, "r3").params == params
        job = s.get(Job, "j3")
        assert job.checkpoint == checkpoint
        assert job.depends_on == ["a", "b"]
        assert job.params == {}
        assert job.result is None
    with db.session() as s:  # an update of a JSON column is persisted
        job = s.get(Job, "j3")
        job.checkpoint = {**checkpoint, "paragraph": 3}
    with db.session() as s:
        assert s.get(Job, "j3").checkpoint["paragraph"] == 3


def test_session_commits_on_success_and_rolls_back_on_error(db):
    with db.session() as s:
        s.add(Run(id="kept", topic="t"))
    with pytest.raises(RuntimeError, match="boom"):
        with db.session() as s:
            s.add(Run(id="lost", topic="t"))
            s.flush()  # the row reached the database inside the transaction
            raise RuntimeError("boom")
    with db.session() as s:
        assert s.get(Run, "kept") is not None
        assert s.get(Run, "lost") is None
    # The connection is healthy after the rollback.
    assert db.ping() >= 0


@pytest.mark.parametrize("url,words", [
    ("notaurl", "not a valid"),
    ("oracle://x/y", "postgresql"),  # an unsupported backend: the message names the supported ones
    ("mssql+pyodbc://u:mssecret77@h/db", "mysql"),
    ("postgresql+psycopg2://u:pgsecret77@h/db", "psycopg"),
    ("postgresql+asyncpg://u:pgsecret77@h/db", "postgresql+psycopg://"),
    ("postgresql+psycopg://u:pgsecret77@h", "database name"),
    ("mysql://u:mysqlsecret77@h/db", "pymysql"),
    ("mysql+mysqldb://u:mysqlsecret77@h/db", "pymysql"),
    ("mysql+pymysql://u:mysqlsecret77@h", "database name"),
    ("", "not a valid"),
])
def test_malformed_url_gives_clear_error(url, words):
    database = open_database(url)
    assert database.ok is False
    assert database.engine is None
    assert "DATABASE_URL" in database.error
    assert words in database.error
    assert "secret77" not in database.error
    with pytest.raises(Exception) as info:
        database.require()
    assert "secret77" not in str(info.value)
    assert "secret77" not in database.display_url


def test_unreachable_mysql_fails_fast_without_password(monkeypatch):
    import pymysql

    attempts = []
    real_connect = pymysql.connect

    def counting_connect(*args, **kwargs):
        attempts.append(kwargs)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(pymysql, "connect", counting_connect)
    database = open_database("mysql+pymysql://u:secretpw@127.0.0.1:1/db", PoolOptions())
    # fast: one refused connection, no retry loop and no waiting out a timeout
    assert len(attempts) == 1
    assert database.ok is False
    assert "secretpw" not in database.error
    assert "unreachable" in database.error
    assert "can't connect" in database.error.lower()
    assert "127.0.0.1" in database.error
    database.dispose()


# Without the bounded handshake pymysql waits its 60 s read timeout for the greeting and then also reports
# "timed out": the difference is a hang past this marker's timeout (far from the 2 s connect_timeout
# plus any plausible load) versus a finish.
@pytest.mark.timeout(30)
def test_mysql_port_that_never_answers_fails_within_connect_timeout():
    """A TCP port that accepts but never speaks MySQL (wrong port, hung server) must not hang start-up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        database = open_database(f"mysql+pymysql://u:silentpw99@127.0.0.1:{port}/db", PoolOptions(connect_timeout=2))
    finally:
        listener.close()
    assert database.ok is False
    assert "unreachable" in database.error and "timed out" in database.error
    assert "silentpw99" not in database.error
    database.dispose()


@pytest.mark.mysql
def test_mysql_query_timeout_is_not_the_connect_timeout(mariadb_server):
    database = open_database(mariadb_server.fresh_database(), PoolOptions(connect_timeout=1))
    try:
        assert database.ok, database.error
        with database.engine.connect() as conn:
            # A query may run longer than the connect timeout.
            assert conn.execute(text("SELECT SLEEP(1.6)")).scalar() == 0
    finally:
        database.dispose()


def test_mask_url_hides_password():
    assert mask_url("mysql+pymysql://u:pw123456@h:3306/db") == f"mysql+pymysql://u:{MASK}@h:3306/db"
    assert url_password("mysql+pymysql://u:pw123456@h:3306/db") == "pw123456"
    # an unencoded @ in the password: all of it is hidden, by the masker and by the log redaction
    for shown in (mask_url("mysql+pymysql://u:p@ss!w0rd@h/db"), redact("url mysql+pymysql://u:p@ss!w0rd@h/db here")):
        assert "ss!w0rd" not in shown and "h/db" in shown, shown
    assert url_password("mysql+pymysql://u:p@ss!w0rd@h/db") == "p@ss!w0rd"
    assert mask_url("sqlite:///data/shoal.db") == "sqlite:///data/shoal.db" and url_password("sqlite:///x") == ""
    assert mask_url("notaurl") == "notaurl" and mask_url(None) == ""


def test_pool_options(db_url, db):
    pool = db.engine.pool
    # A dropped server connection is detected before use on MySQL; a SQLite file cannot drop, so no ping.
    assert pool._pre_ping is (db.backend != "sqlite")
    if db.backend == "sqlite":
        return
    assert db.backend in ("mysql", "mariadb", "postgresql")
    assert pool.size() == PoolOptions().size
    custom = open_database(db_url, PoolOptions(size=3, max_overflow=2, recycle=77, timeout=4, connect_timeout=3))
    try:
        assert custom.ok, custom.error
        p = custom.engine.pool
        assert p.size() == 3
        assert p._max_overflow == 2
        assert p._recycle == 77
        assert p._timeout == 4
        assert p._pre_ping is True
        # Connections speak utf8mb4 / UTF8 (Chinese and emoji need it) and got the connect timeout.
        with custom.engine.connect() as conn:
            if db.backend == "postgresql":
                assert conn.connection.dbapi_connection.info.get_parameters()["connect_timeout"] == "3"
                assert conn.execute(text("SHOW client_encoding")).scalar() == "UTF8"
                assert conn.execute(text("SHOW transaction_isolation")).scalar() == "read committed"
                return
            assert conn.connection.dbapi_connection.connect_timeout == 3
            assert conn.execute(text("SELECT @@character_set_connection")).scalar() == "utf8mb4"
    finally:
        custom.dispose()


@pytest.mark.mysql
def test_mysql_tables_are_utf8mb4_innodb(mariadb_server):
    url = mariadb_server.fresh_database()
    database = open_database(url)
    try:
        assert database.ok, database.error
        with database.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT table_name, engine, table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE()")).all()
        assert {r[0] for r in rows} >= set(Base.metadata.tables)
        for name, engine, collation in rows:
            assert engine == "InnoDB", name
            assert collation.startswith("utf8mb4"), (name, collation)
    finally:
        database.dispose()


@pytest.mark.mysql
def test_mysql_wrong_password_is_clear(mariadb_server):
    from sqlalchemy.engine import make_url

    url = make_url(mariadb_server.fresh_database()).set(password="wrong-pass-4321")
    database = open_database(url.render_as_string(hide_password=False))
    try:
        assert database.ok is False
        assert "wrong-pass-4321" not in database.error
        assert "Access denied" in database.error
    finally:
        database.dispose()


# ---------------------------------------------------------------------------------------- indexes


NEW_INDEXES = {"runs": ["ix_runs_created", "ix_runs_kind_created", "ix_runs_trace"], "jobs": ["ix_jobs_run_created", "ix_jobs_trace"],
               "events": ["ix_events_trace"], "llm_calls": ["ix_llm_calls_trace"]}


def _index_names(database, table: str) -> set[str]:
    return {ix["name"] for ix in inspect(database.engine).get_indexes(table)}


def test_indexes_added_to_the_models_reach_an_existing_database(db_url, db):
    """A database created before the polled-query and trace indexes gets them at the next start, and
    only once; the rows in it are kept."""
    from core.infra.db import create_missing_indexes

    with db.session() as s:
        s.add(Run(id="old", topic="t", trace_id="ab12cd34"))
    with db.engine.begin() as conn:  # as the schema was before these indexes
        conn.execute(text("CREATE INDEX ix_jobs_run ON jobs (run_id)"))  # (MySQL's foreign key needs one)
        for table, names in NEW_INDEXES.items():
            for name in names:
                conn.execute(text(f"DROP INDEX {name}" if db.backend in ("sqlite", "postgresql")
                                  else f"DROP INDEX {name} ON {table}"))
    for table, names in NEW_INDEXES.items():
        assert not set(names) & _index_names(db, table)
    again = open_database(db_url)
    try:
        assert again.ok, again.error
        for table, names in NEW_INDEXES.items():
            assert set(names) <= _index_names(again, table), table
        assert create_missing_indexes(again.engine) == []  # idempotent: nothing left to create
        with again.session() as s:
            assert s.get(Run, "old").trace_id == "ab12cd34"
    finally:
        again.dispose()


def _plans(database, fn) -> list[str]:
    """Run `fn`, capturing its SELECTs, and return SQLite's query plan for each (one string per SELECT)."""
    from sqlalchemy import event

    captured: list[tuple[str, tuple]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            captured.append((statement, tuple(parameters)))

    event.listen(database.engine, "before_cursor_execute", grab)
    try:
        fn()
    finally:
        event.remove(database.engine, "before_cursor_execute", grab)
    assert captured, "the function ran no SELECT"
    out = []
    with database.engine.connect() as conn:
        for statement, parameters in captured:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            out.append(" | ".join(r[-1] for r in rows))
    return out


def test_polled_reads_are_served_by_indexes_on_sqlite(tmp_path):
    """What the pages poll (the newest runs, a run's jobs, status counts, a trace by prefix) reads an
    index, never the whole table nor a sort of it."""
    from core.console.traces import trace_bundle
    from core.work.runs import get_job, job_summaries, list_runs, status_counts

    database = open_database(f"sqlite:///{tmp_path / 'plans.db'}")
    try:
        with database.session() as s:
            for i in range(30):
                s.add(Run(id=f"r{i:02d}", topic="t", kind="analysis" if i % 2 else "probe", trace_id=f"{i:02d}abcdef"))
        with database.session() as s:
            for i in range(30):
                s.add(Job(id=f"j{i:02d}", run_id=f"r{i:02d}", kind="query", trace_id=f"{i:02d}abcdef01"))
        plans = {
            "list_runs": _plans(database, lambda: list_runs(database, limit=10)),
            "list_runs(kind)": _plans(database, lambda: list_runs(database, limit=50, kind="analysis")),
            "job_summaries": _plans(database, lambda: job_summaries(database, "r03")),
            "get_job": _plans(database, lambda: get_job(database, "j03")),
            "status_counts": _plans(database, lambda: status_counts(database, ("queued", "running"))),
        }
        for name, plan in plans.items():
            assert len(plan) == 1, (name, plan)
            assert "INDEX" in plan[0] and "TEMP B-TREE" not in plan[0].replace("GROUP BY", ""), (name, plan)
        assert "ix_runs_created" in plans["list_runs"][0]
        assert "ix_runs_kind_created" in plans["list_runs(kind)"][0]
        assert "ix_jobs_run_created" in plans["job_summaries"][0]
        assert "ix_runs_status_created" in plans["status_counts"][0]

        bundle_plans = _plans(database, lambda: trace_bundle(database, "03abcd", None))
        assert len(bundle_plans) == 7
        for table, plan in zip(("runs", "jobs", "events", "llm_calls", "telemetry_events", "forum_messages",
                                "reports"), bundle_plans):
            assert f"INDEX ix_{table}_trace (trace_id>? AND trace_id<?)" in plan, plan
        bundle = trace_bundle(database, "03ABCD", None)  # as before: the prefix match ignores case
        assert list(bundle["runs"]["id"]) == ["r03"] and list(bundle["jobs"]["id"]) == ["j03"]
    finally:
        database.dispose()


def test_run_and_job_listings_are_light_and_newest_first(db):
    """list_runs gives the newest first (of one kind when asked); job_summaries leaves the checkpoint
    and result out, get_job and jobs_of bring them."""
    from datetime import timedelta

    from core.work.runs import get_job, job_summaries, jobs_of, list_runs

    t0 = utcnow()
    with db.session() as s:
        for i in range(6):
            s.add(Run(id=f"r{i}", topic=f"t{i}", kind="analysis" if i % 2 else "probe",
                      created_at=t0 + timedelta(seconds=i)))
    with db.session() as s:
        s.add(Job(id="j1", run_id="r5", kind="query", name="query", checkpoint={"big": "x" * 1000},
                  result={"report_md": "r"}, created_at=t0))
        s.add(Job(id="j2", run_id="r5", kind="media", name="media", created_at=t0 + timedelta(seconds=1)))
    assert [r.id for r in list_runs(db, limit=3)] == ["r5", "r4", "r3"]
    assert [r.id for r in list_runs(db, limit=2, kind="analysis")] == ["r5", "r3"]
    summaries = job_summaries(db, "r5")
    assert [j.id for j in summaries] == ["j1", "j2"]
    assert not hasattr(summaries[0], "checkpoint") and not hasattr(summaries[0], "result")
    full = get_job(db, "j1")
    assert full.checkpoint == {"big": "x" * 1000} and full.result == {"report_md": "r"}
    assert [j.checkpoint for j in jobs_of(db, "r5")] == [{"big": "x" * 1000}, {}]
    assert get_job(db, "nope") is None


def test_json_columns_keep_chinese_as_utf8_text_not_escapes(db):
    from core.infra.models import Event, utcnow

    with db.session() as s:
        s.add(Event(type="t", ts=utcnow(), source="t", trace_id="", payload={"text": "新能源汽车价格战"}))
    with db.engine.connect() as conn:  # as text: PostgreSQL's driver would parse a JSONB column itself
        raw = conn.execute(text("SELECT CAST(payload AS TEXT) FROM events" if db.backend == "postgresql"
                                else "SELECT payload FROM events")).scalar()
    assert "新能源汽车价格战" in raw and "\\u" not in raw
    with db.session() as s:
        assert s.scalar(select(Event.payload)) == {"text": "新能源汽车价格战"}
