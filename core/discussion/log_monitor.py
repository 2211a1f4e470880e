"""The BettaFish live tail: a BettaFish logs folder followed while an analysis runs.

Shoal's own engines post to the forum directly (core.forum); this module is only for BettaFish's
engine logs. Off by default: with FORUM_BETTAFISH_LOG_DIR set, each analysis run has a
"bettafish_tail" job that follows that folder's insight.log, media.log and query.log until the
run's engines have ended, and posts every summary-node record BettaFish writes meanwhile into the
run's forum, through core.forum.Forum like Shoal's engines (sender "BettaFish Query Engine", …):
de-duplication, forum.log and the host's rounds apply alike. The whole folder, history included,
is what `python -m core forum import` is for.

BettaFishTail reads each file with one LogTail, so a tick costs what was appended since the last
one (at most LogTail.MAX_READ per file), never the file's size; one core.discussion.log_parse
SummaryParser per file turns lines into records (both BettaFish line shapes, errors skipped).

`state()` / `restore()` carry the byte offsets (minus a held-back partial line), the inodes and
the parsers' mid-block state. Records posted after the last checkpoint (a crash between posting
and checkpointing) are read again on resume; each is an exact repeat of its own stored message,
which the forum refuses (counted in `skipped`), so nothing is lost or posted twice.

The job is the one forum job that polls, and only when the analyst turned it on: following a
folder another program writes is its work, not a wait.
"""
from __future__ import annotations

from collections import deque
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from core.discussion.log_parse import LOG_FILES, ParsedSummary, SummaryParser
from core.forum import SENDERS, Forum, ForumMessage
from core.i18n import Msg
from core.infra.logtail import LogTail
from core.infra.models import Job
from core.work.jobs import TERMINAL_STATES, JobContext, JobSpec

__all__ = ["BettaFishTail", "run_tail_job", "tail_job", "TAIL_KIND", "ENGINE_KINDS"]

TAIL_KIND = "bettafish_tail"
ENGINE_KINDS = ("query", "media", "insight")
TAIL_FILES = tuple(sorted(LOG_FILES, key=lambda f: ENGINE_KINDS.index(f[0].split(".")[0])))  # query, media, insight
AGENT_SOURCES = tuple(src for _, src in TAIL_FILES)
POLL_SECONDS = 0.5


def sender_of(source: str) -> str:
    return f"BettaFish {SENDERS[source]}"


class BettaFishTail:
    def __init__(self, forum: Forum, run_id: str, folder):
        self.forum = forum
        self.run_id = run_id
        self.folder = Path(folder)
        self.tails = {src: LogTail(self.folder / name) for name, src in TAIL_FILES}
        self.parsers = {src: SummaryParser(src) for _, src in TAIL_FILES}
        self.posted = dict.fromkeys(AGENT_SOURCES, 0)   # agent messages posted, per source
        self.skipped = dict.fromkeys(AGENT_SOURCES, 0)  # records refused as duplicates, per source
        self._queue: deque[ParsedSummary] = deque()     # parsed, not yet posted (a database error)

    @property
    def agent_messages(self) -> int:
        return sum(self.posted.values())

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def seek_end(self) -> None:
        """Follow what is written from now on."""
        for tail in self.tails.values():
            tail.seek_end()

    def state(self) -> dict:
        files = {}
        for src, tail in self.tails.items():
            files[src] = {"offset": max(0, tail.offset - len(tail.pending)), "inode": tail.inode,
                          "parser": self.parsers[src].snapshot()}
        return {"files": files, "posted": dict(self.posted), "skipped": dict(self.skipped),
                "queue": [asdict(r) for r in self._queue]}

    def restore(self, state: dict | None) -> None:
        if not state:
            return
        for src, f in (state.get("files") or {}).items():
            if src in self.tails:
                tail = self.tails[src]
                tail.offset, tail.inode, tail.pending = int(f.get("offset", 0)), f.get("inode"), b""
                self.parsers[src].restore(f.get("parser"))
        self.posted = {src: int((state.get("posted") or {}).get(src, 0)) for src in AGENT_SOURCES}
        self.skipped = {src: int((state.get("skipped") or {}).get(src, 0)) for src in AGENT_SOURCES}
        self._queue = deque(ParsedSummary(**r) for r in state.get("queue") or [])

    def tick(self) -> list[ForumMessage]:
        """Read what was appended to each log and post its summary records."""
        for src, tail in self.tails.items():
            parser = self.parsers[src]
            for line in tail.read_lines():
                self._queue.extend(parser.feed(line))
        return self._post_queue()

    def finish(self) -> list[ForumMessage]:
        """The end: blocks still open in the parsers are salvaged and posted."""
        for parser in self.parsers.values():
            self._queue.extend(parser.flush())
        return self._post_queue()

    def _post_queue(self) -> list[ForumMessage]:
        out: list[ForumMessage] = []
        while self._queue:
            rec = self._queue[0]
            view = self.forum.post_summary(self.run_id, source=rec.source, content=rec.content,
                                           paragraph=rec.paragraph, sender=sender_of(rec.source))
            self._queue.popleft()  # only once it is stored: a database error leaves it for the next tick
            if view is None:
                self.skipped[rec.source] += 1
                continue
            self.posted[rec.source] += 1
            out.append(view)
        return out


# ---------------------------------------------------------------------------------------------
# The job

def tail_job(folder: str, after: tuple[str, ...] = ()) -> JobSpec:
    """The job an analysis run gets when FORUM_BETTAFISH_LOG_DIR is set."""
    return JobSpec(kind=TAIL_KIND, name="bettafish", params={"folder": str(folder)}, depends_on=after)


def _engines_done(db, run_id: str) -> bool:
    with db.session() as s:
        statuses = list(s.scalars(select(Job.status).where(Job.run_id == run_id, Job.kind.in_(ENGINE_KINDS))))
    return all(st in TERMINAL_STATES for st in statuses)


def run_tail_job(ctx: JobContext) -> dict:
    """Follow the folder until every engine job of the run has ended and a tick after that found nothing new."""
    settings = ctx.settings
    forum = Forum(ctx.db, ctx.events, settings.log_dir, host_every=settings["FORUM_HOST_EVERY"], jobs=ctx.runs)
    tail = BettaFishTail(forum, ctx.run_id, ctx.params["folder"])
    if ctx.checkpoint.get("tail"):
        tail.restore(ctx.checkpoint["tail"])
    else:
        tail.seek_end()
        ctx.save_checkpoint(tail=tail.state())
    while True:
        ctx.check_cancelled()
        engines_done = _engines_done(ctx.db, ctx.run_id)  # before the tick: lines written until then are read
        try:
            posted = tail.tick()
        except SQLAlchemyError as exc:
            ctx.log.warning("BettaFish tail could not post (will retry): {}", exc.__class__.__name__)
            ctx.heartbeat(message=Msg("job.tail_db_retry"))
            ctx.sleep(2.0)
            continue
        if posted:
            ctx.save_checkpoint(tail=tail.state())
        ctx.heartbeat(message=Msg("job.tail_messages", {"n": tail.agent_messages, "folder": str(tail.folder)}))
        if engines_done and not posted and not tail.backlog:
            break
        ctx.sleep(POLL_SECONDS)
    tail.finish()
    ctx.save_checkpoint(tail=tail.state())
    return {"agent_messages": tail.agent_messages, "skipped": sum(tail.skipped.values()), "folder": str(tail.folder)}

