"""The forum's log monitor: engine log lines in, forum messages out, and a host that moderates.

ForumMonitor tails logs/query.log, media.log and insight.log with one LogTail each, so a tick
costs what was appended since the last one (at most LogTail.MAX_READ per file), never the file's
size. Each file feeds a SummaryParser bound to the run id, so other runs' records in the same
files are ignored. Every summary record becomes an agent message (database, event, forum.log).

A record that core.forum.post_message refuses as a duplicate (another engine's message copied,
or an exact repeat of the same engine's) is counted in `skipped`, not in `posted`, and does not
count towards the host's cadence.

After every `host_every` agent messages the host is asked to speak, on a one-thread executor:
the monitor never waits on it. A host that fails logs a warning and posts nothing.

`state()` / `restore()` carry the byte offsets (minus a held-back partial line), the inodes,
the parsers' mid-block state and the per-source count of posted messages. On restore, messages
posted after the last checkpoint (a crash between posting and checkpointing) are counted in the
database and skipped, so a resumed monitor neither loses nor duplicates a message (should a
duplicate skipped after the checkpoint shift that count, the record re-read is an exact repeat of
its own stored message, which post_message refuses).

The "forum" job (run_forum_job) runs one monitor per run until its engines have ended.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from loguru import logger
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from core.forum import MessageView, _view, latest_host_speech, post_message
from core.discussion.log_parse import ParsedSummary, SummaryParser
from core.work.jobs import TERMINAL_STATES
from core.infra.logtail import LogTail
from core.infra.models import ForumMessage, Job, Run

__all__ = ["ForumMonitor", "run_forum_job", "ENGINE_LOGS", "ENGINE_KINDS", "FRESH_LOOKBACK"]

ENGINE_LOGS = (("query.log", "QUERY"), ("media.log", "MEDIA"), ("insight.log", "INSIGHT"))
ENGINE_KINDS = ("query", "media", "insight")
AGENT_SOURCES = tuple(src for _, src in ENGINE_LOGS)
# A fresh monitor starts this many bytes before each file's end: records this run's engines wrote
# before the monitor job was claimed are still seen, and the cost stays bounded by the window.
FRESH_LOOKBACK = 1 << 20
POLL_SECONDS = 0.5
HOST_DRAIN_SECONDS = 180.0


class ForumMonitor:
    def __init__(self, db, events, run_id: str, log_dir, *, host: Any = None, host_every: int = 5,
                 on_host_error: Callable[[BaseException], None] | None = None, topic: str | None = None):
        self.db = db
        self.events = events
        self.run_id = run_id
        self.log_dir = Path(log_dir)
        self.host = host
        self.host_every = max(1, int(host_every))
        self.on_host_error = on_host_error
        self._topic = topic
        self.tails = {src: LogTail(self.log_dir / name) for name, src in ENGINE_LOGS}
        self.parsers = {src: SummaryParser(src, run_id) for _, src in ENGINE_LOGS}
        self.posted = {src: 0 for src in AGENT_SOURCES}   # agent messages posted, per source
        self.skipped = {src: 0 for src in AGENT_SOURCES}  # records refused as duplicates, per source
        self._skip = {src: 0 for src in AGENT_SOURCES}    # already in the database (posted before a crash)
        self._queue: deque[ParsedSummary] = deque()       # parsed, not yet posted (a database error)
        self._recent: deque[MessageView] = deque(maxlen=self.host_every)
        self._since_host = 0
        self.host_messages = 0
        self.host_errors = 0
        self._previous: str | None = None
        self._previous_loaded = False
        self._executor: ThreadPoolExecutor | None = None
        self._futures: list[Future] = []
        self._lock = threading.Lock()

    @property
    def agent_messages(self) -> int:
        return sum(self.posted.values())

    # -- positioning ---------------------------------------------------------------------------
    def seek_end(self, lookback: int = 0) -> None:
        """Start from what is written from now on (or `lookback` bytes before each file's end)."""
        for tail in self.tails.values():
            if lookback > 0:
                tail.seek_back(lookback)
            else:
                tail.seek_end()

    def state(self) -> dict:
        files = {}
        for src, tail in self.tails.items():
            files[src] = {"offset": max(0, tail.offset - len(tail.pending)), "inode": tail.inode,
                          "skip_partial": bool(tail._skip_partial), "parser": self.parsers[src].snapshot()}
        return {"files": files, "posted": dict(self.posted), "skipped": dict(self.skipped),
                "since_host": self._since_host,
                "host_messages": self.host_messages, "queue": [asdict(r) for r in self._queue]}

    def restore(self, state: dict | None) -> None:
        if not state:
            return
        for src, f in (state.get("files") or {}).items():
            if src not in self.tails:
                continue
            tail = self.tails[src]
            tail.offset, tail.inode, tail.pending = int(f.get("offset", 0)), f.get("inode"), b""
            tail._skip_partial = bool(f.get("skip_partial", False))
            self.parsers[src].restore(f.get("parser"))
        self.posted = {src: int((state.get("posted") or {}).get(src, 0)) for src in AGENT_SOURCES}
        self.skipped = {src: int((state.get("skipped") or {}).get(src, 0)) for src in AGENT_SOURCES}
        self._since_host = int(state.get("since_host", 0))
        self.host_messages = int(state.get("host_messages", 0))
        self._queue = deque(ParsedSummary(**r) for r in state.get("queue") or [])
        # Messages posted after that checkpoint are in the database already: skip as many, per source.
        with self.db.session() as s:
            rows = s.execute(select(ForumMessage.source, func.count())
                             .where(ForumMessage.run_id == self.run_id, ForumMessage.type == "agent")
                             .group_by(ForumMessage.source)).all()
            recent = s.scalars(select(ForumMessage).where(ForumMessage.run_id == self.run_id,
                                                          ForumMessage.type == "agent")
                               .order_by(ForumMessage.id.desc()).limit(self.host_every)).all()
            recent_views = [_view(m) for m in reversed(recent)]
        in_db = dict(rows)
        for src in AGENT_SOURCES:
            self._skip[src] = max(0, int(in_db.get(src, 0)) - self.posted[src])
        self._recent.clear()
        self._recent.extend(recent_views)

    # -- the tick ------------------------------------------------------------------------------
    def tick(self) -> list[MessageView]:
        """Read what was appended to each engine log and post its summary records. Never waits on the host."""
        for src, tail in self.tails.items():
            parser = self.parsers[src]
            for line in tail.read_lines():
                self._queue.extend(parser.feed(line))
        return self._post_queue()

    def finish(self) -> list[MessageView]:
        """End of the run: blocks still open in the parsers are salvaged and posted."""
        for parser in self.parsers.values():
            self._queue.extend(parser.flush())
        return self._post_queue()

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def _post_queue(self) -> list[MessageView]:
        out: list[MessageView] = []
        while self._queue:
            rec = self._queue[0]
            if self._skip.get(rec.source, 0) > 0:  # posted before the crash that this resume recovers from
                self._skip[rec.source] -= 1
                self.posted[rec.source] += 1
                self._queue.popleft()
                self._count_for_host(None)
                continue
            view = post_message(self.db, self.events, self.run_id, type="agent", source=rec.source,
                                content=rec.content, paragraph=rec.paragraph, log_dir=self.log_dir)
            self._queue.popleft()  # only once it is stored: a database error leaves it for the next tick
            if view is None:  # a duplicate: recorded as skipped by post_message
                self.skipped[rec.source] += 1
                continue
            self.posted[rec.source] += 1
            out.append(view)
            self._count_for_host(view)
        return out

    # -- the host ------------------------------------------------------------------------------
    def _count_for_host(self, view: MessageView | None) -> None:
        if view is not None:
            self._recent.append(view)
        self._since_host += 1
        if self._since_host >= self.host_every:
            self._since_host = 0
            if self.host is not None:
                self._schedule_host(list(self._recent)[-self.host_every:])

    def _schedule_host(self, messages: list[MessageView]) -> None:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shoal-forum-host")
            self._futures = [f for f in self._futures if not f.done()]
            self._futures.append(self._executor.submit(self._speak, messages))

    def _topic_of_run(self) -> str:
        if self._topic is None:
            with self.db.session() as s:
                self._topic = s.scalar(select(Run.topic).where(Run.id == self.run_id)) or ""
        return self._topic

    def _speak(self, messages: list[MessageView]) -> MessageView | None:
        try:
            if not self._previous_loaded:
                self._previous = latest_host_speech(self.db, self.run_id)
                self._previous_loaded = True
            text = self.host.speak(self._topic_of_run(), messages, self._previous)
            if not isinstance(text, str) or not text.strip():
                return None
            view = post_message(self.db, self.events, self.run_id, type="host", source="HOST", content=text,
                                log_dir=self.log_dir)
        except Exception as exc:  # noqa: BLE001 - a failing host never breaks the monitor
            self.host_errors += 1
            logger.warning("forum host failed for run {}: {}: {}", self.run_id, exc.__class__.__name__, exc)
            if self.on_host_error is not None:
                try:
                    self.on_host_error(exc)
                except Exception:  # noqa: BLE001
                    pass
            return None
        self._previous = view.content
        self.host_messages += 1
        return view

    @property
    def host_pending(self) -> int:
        with self._lock:
            return sum(1 for f in self._futures if not f.done())

    def drain(self, timeout: float | None = None) -> bool:
        """Wait (at most `timeout` s) for scheduled host speeches; True when none is left."""
        with self._lock:
            futures = list(self._futures)
        if futures:
            wait(futures, timeout=timeout)
        return self.host_pending == 0

    def close(self, wait_host: bool = False) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait_host, cancel_futures=not wait_host)


# ---------------------------------------------------------------------------------------------
# The "forum" job

def _engines_done(db, run_id: str) -> bool:
    with db.session() as s:
        statuses = list(s.scalars(select(Job.status).where(Job.run_id == run_id, Job.kind.in_(ENGINE_KINDS))))
    return all(st in TERMINAL_STATES for st in statuses)


def _make_host(settings, db, events, offline: bool):
    try:
        from core.discussion.host import make_host  # provided by core/discussion/host.py; optional until it exists
    except ImportError:
        return None
    try:
        return make_host(settings, db, events, offline=offline)
    except Exception as exc:  # noqa: BLE001 - the forum works without a host
        logger.warning("forum host unavailable: {}: {}", exc.__class__.__name__, exc)
        return None


def run_forum_job(ctx) -> dict:
    """Monitor a run's engine logs until every engine job has ended.

    Fresh start (no checkpoint): each file is read from FRESH_LOOKBACK bytes before its current
    end, not from offset 0 — old runs' records are not re-read (and the run-id filter drops any in
    the window), while this run's first records, written before this job was claimed, are kept.
    The monitor job starts with the engines, so nothing of this run is missed. The position is
    checkpointed at once, and after every tick that posted something; a resumed job continues
    from there. The job ends when the engines are terminal, a tick after that found nothing new,
    and the host's pending speeches are done (bounded by HOST_DRAIN_SECONDS)."""
    settings, db, events = ctx.settings, ctx.db, ctx.events
    host = _make_host(settings, db, events, offline=bool(ctx.run_params.get("offline", False)))
    monitor = ForumMonitor(db, events, ctx.run_id, settings.log_dir, host=host,
                           host_every=settings["FORUM_HOST_EVERY"], topic=ctx.topic or None)
    try:
        if ctx.checkpoint.get("monitor"):
            monitor.restore(ctx.checkpoint["monitor"])
        else:
            monitor.seek_end(FRESH_LOOKBACK)
            ctx.save_checkpoint(monitor=monitor.state())
        while True:
            ctx.check_cancelled()
            engines_done = _engines_done(db, ctx.run_id)  # before the tick: lines written until then are read
            try:
                posted = monitor.tick()
            except SQLAlchemyError as exc:
                ctx.log.warning("forum monitor could not post (will retry): {}", exc.__class__.__name__)
                ctx.heartbeat(message="database unavailable; retrying")
                ctx.sleep(2.0)
                continue
            if posted:
                ctx.save_checkpoint(monitor=monitor.state())
            dups = sum(monitor.skipped.values())
            ctx.heartbeat(message=f"{monitor.agent_messages} agent and {monitor.host_messages} host messages"
                          + (f", {dups} duplicates skipped" if dups else ""))
            if engines_done and not posted and not monitor.backlog:
                break
            ctx.sleep(POLL_SECONDS)
        if monitor.finish():
            ctx.save_checkpoint(monitor=monitor.state())
        deadline = time.monotonic() + HOST_DRAIN_SECONDS
        while not monitor.drain(timeout=0.25):
            ctx.check_cancelled()
            ctx.heartbeat(message="waiting for the host's last speech")
            if time.monotonic() > deadline:
                ctx.log.warning("forum host did not finish within {:.0f} s; ending without it", HOST_DRAIN_SECONDS)
                break
        ctx.save_checkpoint(monitor=monitor.state())
        return {"agent_messages": monitor.agent_messages, "host_messages": monitor.host_messages}
    finally:
        monitor.close()
