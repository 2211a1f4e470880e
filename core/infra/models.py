"""SQLAlchemy 2 models: the database is the source of truth for everything durable.

Types are chosen to behave the same on SQLite, MySQL/MariaDB and PostgreSQL: DATETIME(6) on MySQL
keeps microseconds (lease and cursor logic compare times; PostgreSQL's TIMESTAMP has them by
default), LONGTEXT holds long posts and reports (PostgreSQL's TEXT has no small limit), and every
MySQL table is utf8mb4 so Chinese text and emoji survive (a PostgreSQL database is UTF-8).
JSON columns are JSONB on PostgreSQL: like MySQL's JSON it is stored parsed (keys in its own order,
which nothing here relies on) and can be compared, which the plain json type cannot.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UtcDateTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
# SQLite only auto-increments INTEGER PRIMARY KEY; BIGINT elsewhere.
BigId = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")
Json = JSON().with_variant(mysql.JSON(), "mysql", "mariadb").with_variant(postgresql.JSONB(), "postgresql")

MYSQL_TABLE_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def utcnow() -> datetime:
    """Naive UTC: both backends store it the same way, and comparisons need no tz handling."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def from_epoch(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"
    # Pages list the newest runs (all, or of one kind) every few seconds: both orders come from an index.
    __table_args__ = (Index("ix_runs_status_created", "status", "created_at"),
                      Index("ix_runs_created", "created_at", "id"),
                      Index("ix_runs_kind_created", "kind", "created_at", "id"), MYSQL_TABLE_ARGS)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="analysis")
    topic: Mapped[str] = mapped_column(LongText, default="")
    status: Mapped[str] = mapped_column(String(32), default="queued")  # RUN_STATES: 'insufficient_data' is 17
    mode: Mapped[str] = mapped_column(String(16), default="offline")
    params: Mapped[dict] = mapped_column(Json, default=dict)
    trace_id: Mapped[str] = mapped_column(String(64), default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The settings its jobs execute with, secrets by reference only (core.work.run_settings)
    settings: Mapped[dict | None] = mapped_column(Json, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the worker that submitted it


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_lease", "status", "lease_expires_at"),
        # a run's jobs in order (pages poll it); replaces ix_jobs_run (run_id), which older files keep
        Index("ix_jobs_run_created", "run_id", "created_at", "id"),
        Index("ix_jobs_owner", "lease_owner"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    depends_on: Mapped[list] = mapped_column(Json, default=list)
    params: Mapped[dict] = mapped_column(Json, default=dict)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    checkpoint: Mapped[dict] = mapped_column(Json, default=dict)
    # how many times the checkpoint was written (core.work.ledger): a poller that saw this value (and
    # the same status and attempt) need not read the checkpoint again. NULL in rows from before it.
    checkpoint_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    result: Mapped[dict | None] = mapped_column(Json, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    stalled: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    trace_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Worker(Base):
    """One row per supervisor process: its liveness lets a restart spot dead owners at once."""

    __tablename__ = "workers"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_run_id", "run_id", "id"), Index("ix_events_type", "type", "id"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source: Mapped[str] = mapped_column(String(32), default="system")
    type: Mapped[str] = mapped_column(String(64))
    trace_id: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict] = mapped_column(Json, default=dict)


class ForumMessage(Base):
    __tablename__ = "forum_messages"
    __table_args__ = (Index("ix_forum_run", "run_id", "id"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16))  # agent | host | system
    sender: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # QUERY | MEDIA | INSIGHT | HOST | SYSTEM
    content: Mapped[str] = mapped_column(LongText)
    paragraph: Mapped[int | None] = mapped_column(Integer, nullable=True)
    trace_id: Mapped[str] = mapped_column(String(64), default="")
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # the forum round (core.forum): added after the table first shipped, hence nullable
    round: Mapped[int | None] = mapped_column(Integer, nullable=True)
    llm_call_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # the llm_calls row that wrote it


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_run", "run_id"), MYSQL_TABLE_ARGS)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    stage: Mapped[str] = mapped_column(String(32), default="waiting")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    report_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    partial: Mapped[bool] = mapped_column(Boolean, default=False)
    title: Mapped[str] = mapped_column(Text, default="")
    html_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    md_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    json_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    trace_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ReportTemplate(Base):
    """A user's report template (core/reporting/custom_templates.py): its Markdown source, re-read on use."""
    __tablename__ = "report_templates"
    __table_args__ = (UniqueConstraint("name", name="uq_report_templates_name"), MYSQL_TABLE_ARGS)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(LongText)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LlmCall(Base):
    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_ts", "ts"), Index("ix_llm_run", "run_id"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    trace_id: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(128), default="")
    model: Mapped[str] = mapped_column(String(128), default="")
    node: Mapped[str] = mapped_column(String(64), default="")
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # of input_tokens, those the provider served from its prompt cache (billed at the cached rate;
    # None: not reported). Nullable, so Database.create_schema adds it to an older table.
    cached_input_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # True: the token counts are estimated (core.llm.replies.estimate_tokens: the server sent no usable
    # usage, or the call failed mid-reply); None: a row from before the column
    tokens_estimated: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    # of latency_ms, the time the call waited for a slot of its endpoint's budget (None: not measured)
    queued_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="ok")
    error_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)


class TelemetryEvent(Base):
    __tablename__ = "telemetry_events"
    __table_args__ = (Index("ix_tel_ts", "ts"), Index("ix_tel_type", "type", "ts"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(32), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    trace_id: Mapped[str] = mapped_column(String(64), default="")
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payload: Mapped[dict] = mapped_column(Json, default=dict)


class Post(Base):
    """The unified local corpus: posts and comments from every platform."""

    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("platform", "post_id", name="uq_posts_platform_post"),
        Index("ix_posts_time", "publish_time"),
        Index("ix_posts_keyword", "keyword"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(32), default="unknown")
    # Binary collation on MySQL: platform ids differ by case alone (Bilibili's BV ids), as on SQLite.
    post_id: Mapped[str] = mapped_column(String(128).with_variant(mysql.VARCHAR(128, collation="utf8mb4_bin"),
                                                                  "mysql", "mariadb"))
    kind: Mapped[str] = mapped_column(String(16), default="post")  # post | comment
    parent_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    title: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(LongText, default="")
    content_seg: Mapped[str] = mapped_column(LongText, default="")  # jieba-segmented, for full-text search
    author: Mapped[str] = mapped_column(String(255), default="")
    publish_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    likes: Mapped[int] = mapped_column(BigInteger, default=0)
    comments: Mapped[int] = mapped_column(BigInteger, default=0)
    shares: Mapped[int] = mapped_column(BigInteger, default=0)
    views: Mapped[int] = mapped_column(BigInteger, default=0)
    url: Mapped[str] = mapped_column(Text, default="")
    keyword: Mapped[str] = mapped_column(String(255), default="")
    sentiment: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str] = mapped_column(String(32), default="import")  # demo | import | mindspider
    extras: Mapped[dict] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# Trace ids are searched by prefix (core.console.traces, the telemetry and usage filters: `LIKE 'ab12%'`).
# MySQL's case-insensitive collation serves such a LIKE from a plain index. SQLite's LIKE is
# case-insensitive too, so it uses an index only when the index is NOCASE (the "LIKE optimization").
# PostgreSQL serves a prefix LIKE from a btree index only in the C collation or with the
# varchar_pattern_ops operator class, whatever the database's locale: that is its index. One name,
# one index per backend; created for existing databases by Database.create_missing_indexes.
TRACED = (Run, Job, Event, LlmCall, TelemetryEvent, ForumMessage, Report)
for _model in TRACED:
    _col = _model.__table__.c.trace_id
    _name = f"ix_{_model.__tablename__}_trace"
    Index(_name, _col).ddl_if(dialect=("mysql", "mariadb"))
    Index(_name, _col.collate("NOCASE")).ddl_if(dialect="sqlite")
    Index(_name, _col, postgresql_ops={"trace_id": "varchar_pattern_ops"}).ddl_if(dialect="postgresql")
del _model, _col, _name


class JobItem(Base):
    """Append-only lists that belong to a job's checkpoint (an engine's sources), one row per item,
    written once in the transaction of the checkpoint that first holds it: a checkpoint stays small
    instead of repeating every source on every node (core.work.checkpoints)."""

    __tablename__ = "job_items"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    list: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 1-based position
    data: Mapped[dict] = mapped_column(Json, default=dict)
