"""The database connection: SQLite under data/ by default, MySQL/MariaDB through pymysql, PostgreSQL
through psycopg (3).

`open_database` never raises for a bad URL or an unreachable server: it returns a Database
whose `.error` says what is wrong, so the app opens degraded instead of with a traceback.
"""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from loguru import logger
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.schema import CreateColumn

from core.infra.config import SettingError, validate_database_url
from core.infra.models import Base
from core.infra.redact import mask_url, redact


class DatabaseUnavailable(RuntimeError):
    """The database cannot be used; the message is safe to show (no password)."""


@dataclass
class PoolOptions:
    size: int = 5
    max_overflow: int = 10
    recycle: int = 1800
    timeout: int = 10
    connect_timeout: int = 5


def _json_dumps(obj) -> str:
    """JSON columns as UTF-8 text: Chinese stays 3 bytes a character instead of a 6-byte \\uXXXX
    escape (checkpoints, events and sources are mostly Chinese text; issue 11)."""
    return json.dumps(obj, ensure_ascii=False)


# A \u0000 escape that is not itself an escaped backslash followed by "u0000".
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _json_dumps_pg(obj) -> str:
    """As _json_dumps, without NUL characters: PostgreSQL's JSONB cannot hold \\u0000 (nor can its
    text columns hold a NUL byte), while MySQL and SQLite store it. A NUL carries nothing a reader
    needs (it comes from a scraped page or a model's output), so it is dropped rather than failing
    the whole write."""
    out = json.dumps(obj, ensure_ascii=False)
    return _JSON_NUL.sub(r"\1", out) if "\\u0000" in out else out


def engine_url(url: str):
    """The SQLAlchemy URL to connect with: a bare postgresql:// means psycopg (3), the driver Shoal
    ships, not SQLAlchemy's default psycopg2."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _build_engine(url: str, pool: PoolOptions) -> Engine:
    parsed = engine_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # No pool_pre_ping: a SQLite "connection" is a file handle that cannot drop, so the ping was a
        # wasted SELECT 1 on every checkout (2.1 s of an offline run, issue 11). MySQL keeps it.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               json_serializer=_json_dumps)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # busy_timeout first: every statement after it waits for a lock instead of failing.
            cur.execute("PRAGMA busy_timeout=30000")
            # WAL lets pages read while the supervisor writes. Switching needs an exclusive lock and
            # does not always wait for it: when several processes open a new file at once, one of
            # them switches and the mode persists in the file, so the others may skip it.
            try:
                cur.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                pass
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if backend == "postgresql":
        return _build_postgres_engine(parsed, pool)
    query = dict(parsed.query)
    query.setdefault("charset", "utf8mb4")
    parsed = parsed.set(query=query)
    engine = create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_recycle=pool.recycle,
        pool_timeout=pool.timeout,
        connect_args={"connect_timeout": pool.connect_timeout, "read_timeout": 60, "write_timeout": 60},
        isolation_level="READ COMMITTED",
        json_serializer=_json_dumps,
    )

    @event.listens_for(engine, "do_connect")
    def _bounded_handshake(dialect, _record, cargs, cparams):
        # pymysql waits read_timeout (60 s) for the server's greeting, so a port that accepts TCP but
        # never speaks MySQL would freeze start-up for a minute: bound the handshake by connect_timeout,
        # then restore the query read timeout (pymysql applies it again on the next read).
        conn = dialect.loaded_dbapi.connect(*cargs, **{**cparams, "read_timeout": pool.connect_timeout})
        conn._read_timeout = cparams.get("read_timeout")
        return conn

    return engine


def _build_postgres_engine(parsed, pool: PoolOptions) -> Engine:
    """PostgreSQL through psycopg 3. READ COMMITTED is PostgreSQL's default and what the claims and
    leases assume on MySQL too (a compare-and-set UPDATE re-reads the row it waited for). psycopg has
    no socket read timeout like pymysql's: TCP keepalives find a dead server or network instead
    (about a minute), and connect_timeout bounds the handshake."""
    from core.infra.pg import register_nul_free_strings

    engine = create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_recycle=pool.recycle,
        pool_timeout=pool.timeout,
        connect_args={"connect_timeout": pool.connect_timeout, "application_name": "shoal", "keepalives": 1,
                      "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3},
        isolation_level="READ COMMITTED",
        json_serializer=_json_dumps_pg,
    )
    event.listen(engine, "connect", lambda dbapi_conn, _record: register_nul_free_strings(dbapi_conn))
    return engine


_CREATE_RACES = ("already exists", "Duplicate key name", "pg_type_typname_nsp_index", "pg_class_relname_nsp_index")


class Database:
    def __init__(self, url: str, engine: Engine | None, error: str = ""):
        self.url = url
        self.engine = engine
        self.error = error
        self._sessionmaker = sessionmaker(engine, expire_on_commit=False) if engine is not None else None
        self._lock = threading.Lock()

    @property
    def ok(self) -> bool:
        return self.engine is not None and not self.error

    @property
    def backend(self) -> str:
        try:
            return make_url(self.url).get_backend_name()
        except ArgumentError:
            return "unknown"

    @property
    def display_url(self) -> str:
        return mask_url(self.url)

    def require(self) -> Engine:
        if not self.ok:
            raise DatabaseUnavailable(self.error or "database not configured")
        return self.engine  # type: ignore[return-value]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on error."""
        self.require()
        with self._sessionmaker() as s:  # type: ignore[misc]
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def ping(self) -> float:
        """Round trip in milliseconds; raises DatabaseUnavailable with a clear message."""
        engine = self.require()
        t0 = time.perf_counter()
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"database {self.display_url} unreachable: {explain(exc)}") from None
        return (time.perf_counter() - t0) * 1000

    def storage_full(self, min_free_bytes: int = 64 * 1024) -> str:
        """For a SQLite file: a sentence saying its disk is full (under ``min_free_bytes`` free), else
        "". A full disk makes every write fail while reads still work, so nothing else notices: jobs
        cannot even record that they failed. A server database reports its own storage errors."""
        try:
            url = make_url(self.url)
        except ArgumentError:
            return ""
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return ""
        folder = Path(url.database).resolve().parent
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            return ""
        if free >= min_free_bytes:
            return ""
        return f"the data folder {folder} is full ({free:,} bytes free), so nothing more can be saved"

    def create_schema(self) -> None:
        engine = self.require()
        for attempt in range(6):
            try:
                Base.metadata.create_all(engine)
                self._add_nullable_columns()
                self._widen_run_status()
                create_missing_indexes(engine)
                return
            except SQLAlchemyError as exc:
                # Another process (the app beside a worker, a second replica) created a table or index
                # between our check and our CREATE: look again instead of reporting the database broken.
                # PostgreSQL may report that race as a unique violation in its own catalogue.
                if attempt == 5 or not any(s in str(exc) for s in _CREATE_RACES):
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _add_nullable_columns(self) -> None:
        """Nullable columns a model gained after its table first shipped (forum_messages.round,
        .llm_call_id): create_all makes new tables only, so an existing table gets them here."""
        engine = self.require()
        insp = inspect(engine)
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in insp.get_columns(table.name)}
            for col in table.columns:
                if col.name in have or not col.nullable or col.primary_key:
                    continue
                ddl = CreateColumn(col).compile(dialect=engine.dialect)
                # PostgreSQL (and MariaDB) can skip a column another process added meanwhile; MySQL
                # and SQLite cannot, and say "duplicate column" instead.
                exists = "IF NOT EXISTS " if self.backend == "postgresql" else ""
                try:
                    with engine.begin() as conn:
                        conn.execute(text(f"ALTER TABLE {engine.dialect.identifier_preparer.quote(table.name)} "
                                          f"ADD COLUMN {exists}{ddl}"))
                except OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc).lower():
                        raise

    def _widen_run_status(self) -> None:
        """runs.status was VARCHAR(16) before the 'insufficient_data' state (17 characters): widen an
        existing MySQL table once. SQLite does not enforce VARCHAR lengths; PostgreSQL came later, with
        the wide column from its first table."""
        if self.backend not in ("mysql", "mariadb"):
            return
        with self.require().begin() as conn:
            width = conn.scalar(text(
                "SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = 'runs' AND COLUMN_NAME = 'status'"))
            if width is not None and int(width) < 32:
                conn.execute(text("ALTER TABLE runs MODIFY status VARCHAR(32) NOT NULL DEFAULT 'queued'"))

    def dispose(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def create_missing_indexes(engine: Engine) -> list[str]:
    """Create the models' indexes that an existing database lacks; return their names.

    create_all indexes only the tables it creates, so indexes added to a model later (runs by
    creation time, the trace ids) reach an existing SQLite file or MySQL schema here, once. Each
    index is created with checkfirst, and an index meant for the other backend (Index.ddl_if) is
    skipped; a concurrent creator's "already exists" is left to create_schema's retry."""
    insp = inspect(engine)
    created = []
    for table in Base.metadata.sorted_tables:
        have = {ix["name"] for ix in insp.get_indexes(table.name)}
        for index in sorted(table.indexes, key=lambda ix: ix.name or ""):
            if index.name in have:
                continue
            with engine.begin() as conn:
                if not engine.dialect.has_index(conn, table.name, index.name):
                    index.create(conn)
                    if engine.dialect.has_index(conn, table.name, index.name):
                        created.append(index.name)
                        have.add(index.name)
    if created:
        logger.info("created {} missing index(es): {}", len(created), ", ".join(created))
    return created


def explain(exc: BaseException) -> str:
    """One line a person can act on, without the SQL or the password."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):  # pymysql: (code, message)
        msg = f"MySQL error {args[0]}: {args[1]}"
    else:
        msg = str(orig).splitlines()[0] if str(orig) else orig.__class__.__name__
    return redact(msg)[:300]


def open_database(url: str, pool: PoolOptions | None = None, create: bool = True) -> Database:
    """Connect, create the schema if needed, and report problems instead of raising."""
    pool = pool or PoolOptions()
    try:
        validate_database_url(url)
    except SettingError as exc:
        return Database(url, None, str(exc))
    try:
        engine = _build_engine(url, pool)
    except (ArgumentError, ImportError, OSError) as exc:
        return Database(url, None, f"DATABASE_URL cannot be used: {explain(exc)}")
    db = Database(url, engine)
    try:
        db.ping()
        if create:
            db.create_schema()
    except DatabaseUnavailable as exc:
        db.error = str(exc)
    except SQLAlchemyError as exc:
        db.error = f"database {db.display_url}: {explain(exc)}"
    if db.error:
        logger.error("database unavailable: {}", db.error)
    return db
