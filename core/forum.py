"""The forum: agents' paragraph summaries and the host's moderation, per run.

Shoal's engines post each paragraph summary straight here (``Forum.post_summary``), whatever the
log level: nothing goes through a log file and back. BettaFish engine logs come in through
core.discussion (the import, and the optional live tail), and post the same way.

A message (``ForumMessage``) has a type (agent | host | human | system), a source (QUERY | MEDIA |
INSIGHT | HOST | HUMAN | SYSTEM) and sender, its content and time, the paragraph, the trace id of the
work that wrote it, the forum ``round`` and the ``llm_call_id`` of the llm_calls row of the call
that produced it (None offline, and for imported or host-offline messages); the readers join that
row, so each message carries its call's tokens, cost and latency (zero without a call). Messages are stored in
the database (the source of truth), announced as events, and appended to logs/forum.log in
BettaFish's line format, `[HH:MM:SS] [SOURCE] content`, with newlines escaped as `\\n` so one
message is one line. Callers read them back as ForumMessage, never as rows or dicts.

Rounds and the host: with ``host_every`` = N (FORUM_HOST_EVERY), the run's agent messages 1..N
are round 1, N+1..2N round 2, and so on; the post that completes round k adds a short "host" job
to the run (core.discussion.host_job) that speaks about that round's N messages, and its speech
carries round k. The host runs as its own job rather than inline in the poster's thread: an LLM
host takes seconds, and no engine paragraph should wait on it; a job holds a worker slot only while
it speaks (nothing polls), survives a restart like any job, and is cancelled with its run. Host
jobs chain (round k depends on round k-1), so each speech follows the one before it; they are
added before the post that triggers them returns, so once a run's engines have ended, every host
job the run will have exists.

The analyst can post too (``Forum.post_human``: the Forum page's chat input, `python -m core forum
post`): a "human" message, source HUMAN, sender "Analyst", only to an analysis run that has not
ended. It is never de-duplicated and never counts towards a round; the host answers it in its next
speech, and the engines read it (``forum_guidance``) into their next summary and reflection.

Agent messages are de-duplicated per run: a message whose text near-duplicates one that ANOTHER
engine already posted in the run (Jaccard similarity of character shingles, core.text.dedup, at
least DUPLICATE_SIMILARITY), or that repeats exactly (after normalisation: citation marks and
whitespace removed) one the SAME engine posted, is not stored, announced or logged: an event
`forum.duplicate_skipped` records the skip with the id of the earlier message, and the post
returns None (nor does it count towards a round). An engine's own revision of a paragraph (a
reflection summary close to its first summary) is not a duplicate. The comparison reads only the
run's last DEDUP_WINDOW agent messages (their ids; a message's text is read and shingled once per
process), so a post costs the same however long the run's transcript is.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from loguru import logger
from sqlalchemy import func, select

from core.discussion.call_meter import MISSING_CALL, NO_CALL, CallMeter, call_meters
from core.infra.db import Database
from core.infra.events import EventLog
from core.infra.models import ForumMessage as ForumRow
from core.infra.models import utcnow
from core.infra.redact import redact
from core.infra.tracing import current_trace_id
from core.i18n import Msg
from core.research.names import ENGINE_NAMES
from core.research.reasoning import ForumGuidance
from core.text.dedup import jaccard, normalise, shingles
from core.work.jobs import JobSpec

SOURCES = ("QUERY", "MEDIA", "INSIGHT", "HOST", "HUMAN", "SYSTEM")
TYPES = ("agent", "host", "human", "system")
SENDERS = {**{n.source: n.sender for n in ENGINE_NAMES.values()}, "HOST": "Forum Host", "HUMAN": "Analyst",
           "SYSTEM": "System"}
MAX_CONTENT = 20_000
DUPLICATE_SIMILARITY = 0.8   # Jaccard of 3-character shingles at or above which another engine's message is a copy
DEDUP_WINDOW = 200           # the run's most recent agent messages a new one is compared with
DEDUP_MIN_CHARS = 20         # shorter normalised texts are duplicates only when identical
HOST_KIND = "host"           # the job kind of one host speech (core.discussion.host_job registers it)
MAX_HUMAN_CHARS = 2000       # of one analyst's message
GUIDANCE_HUMAN = 3           # the analyst's latest messages an engine reads into its next prompts

_forum_log_lock = threading.Lock()


@dataclass(frozen=True)
class ForumMessage:
    """One stored forum message, as every reader gets it."""
    id: int
    run_id: str
    type: str                       # agent | host | human | system
    sender: str
    source: str                     # QUERY | MEDIA | INSIGHT | HOST | HUMAN | SYSTEM
    content: str
    paragraph: int | None
    trace_id: str
    timestamp: datetime
    round: int | None = None        # the forum round (see the module's note); None for imports
    llm_call_id: int | None = None  # the llm_calls row of the call that wrote it; None offline
    # Metering: the call that wrote it (its llm_calls row, joined by the readers); zero without a call
    # (offline, imports). cost_usd is None when the call's model is unpriced (or its row is gone).
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    latency_ms: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict:
        d = asdict(self)
        d["timestamp"] = self.timestamp.isoformat()
        return d


def as_message(m: ForumRow, call: CallMeter | None = None) -> ForumMessage:
    """A stored row as the ForumMessage every reader gets (core.discussion.rounds reads pages with it),
    with the metering of its call (``call_meters``; none given: zeros, or unknown cost if it names a call)."""
    c = call if call is not None else (NO_CALL if m.llm_call_id is None else MISSING_CALL)
    return ForumMessage(m.id, m.run_id, m.type, m.sender, m.source, m.content, m.paragraph, m.trace_id, m.timestamp,
                        m.round, m.llm_call_id, c.input_tokens, c.output_tokens, c.cost_usd, c.latency_ms)


def metered(s, rows, prices=None) -> list[ForumMessage]:
    """Rows as ForumMessages with their calls' metering (one read of llm_calls for all of them)."""
    meters = call_meters(s, rows, prices)
    return [as_message(r, meters.get(r.llm_call_id) if r.llm_call_id is not None else None) for r in rows]



def round_of(ordinal: int, every: int) -> int:
    """The round of a run's ``ordinal``-th agent message (1-based) when the host speaks every ``every``."""
    return (max(1, ordinal) - 1) // max(1, every) + 1


def forum_line(source: str, content: str, ts: datetime | None = None) -> str:
    """One message in BettaFish's forum.log format."""
    ts = ts or datetime.now()
    escaped = content.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f"[{ts:%H:%M:%S}] [{source}] {escaped}"


_forum_log_failed: set[Path] = set()


def append_forum_log(log_dir: Path, line: str) -> None:
    """Append one line to forum.log. The database is the record: a full or unwritable log folder
    costs the file copy (said once per folder), never the message or the job that posted it."""
    with _forum_log_lock:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            with open(log_dir / "forum.log", "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as exc:
            if log_dir not in _forum_log_failed:
                _forum_log_failed.add(log_dir)
                logger.warning("forum.log in {} was not written ({}); the forum is kept in the database",
                               log_dir, exc.strerror or exc)
            return
        _forum_log_failed.discard(log_dir)


# --- de-duplication of agent messages ----------------------------------------------------------

class _Seen:
    """Normalised text and shingles of recent agent messages, by message id, per database and run: a
    message is read from the database and shingled once per process, not once per post."""

    MAX_RUNS = 32

    def __init__(self):
        # per Database object (ids are unique only within one database), its runs, most recent last
        self._dbs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.lock = threading.RLock()   # also serialises check-then-insert within the process

    def recent(self, db: Database, s, run_id: str) -> list[tuple[int, str, str, frozenset]]:
        """(id, source, normalised text, shingles) of the run's last DEDUP_WINDOW agent messages, newest first."""
        ids = s.execute(select(ForumRow.id, ForumRow.source)
                        .where(ForumRow.run_id == run_id, ForumRow.type == "agent")
                        .order_by(ForumRow.id.desc()).limit(DEDUP_WINDOW)).all()
        runs = self._dbs.setdefault(db, OrderedDict())
        known = runs.setdefault(run_id, {})
        runs.move_to_end(run_id)
        while len(runs) > self.MAX_RUNS:
            runs.popitem(last=False)
        missing = [i for i, _ in ids if i not in known]
        if missing:
            for mid, src, content in s.execute(select(ForumRow.id, ForumRow.source, ForumRow.content)
                                               .where(ForumRow.id.in_(missing))):
                known[mid] = (src, normalise(content), frozenset(shingles(content)))
        window = {i for i, _ in ids}
        for stale in [i for i in known if i not in window]:
            del known[stale]
        return [(i, *known[i]) for i, _ in ids if i in known]


_seen = _Seen()


def find_duplicate(recent, source: str, content: str) -> tuple[int, str, float] | None:
    """(id, source, similarity) of the earlier message ``content`` duplicates, or None.

    ``recent``: (id, source, normalised text, shingles) of earlier messages, newest first. Another
    engine's message is a duplicate when the texts are near-duplicates (similarity at least
    DUPLICATE_SIMILARITY; identical for texts under DEDUP_MIN_CHARS); the same engine's only when
    the normalised texts are identical."""
    norm = normalise(content)
    if not norm:
        return None
    sh = shingles(content)
    for mid, src, other_norm, other_sh in recent:
        if other_norm == norm:
            return mid, src, 1.0
        if src == source or len(norm) < DEDUP_MIN_CHARS or len(other_norm) < DEDUP_MIN_CHARS:
            continue
        small, large = sorted((len(sh), len(other_sh)))
        if large and small / large < DUPLICATE_SIMILARITY:  # Jaccard <= |small| / |large|: cannot reach it
            continue
        sim = jaccard(sh, set(other_sh))
        if sim >= DUPLICATE_SIMILARITY:
            return mid, src, sim
    return None


def post_message(db: Database, events: EventLog | None, run_id: str, *, type: str, source: str, content: str,
                 sender: str | None = None, paragraph: int | None = None, log_dir: Path | None = None,
                 timestamp: datetime | None = None, trace_id: str | None = None, dedup: bool = True,
                 round_no: int | None = None, llm_call_id: int | None = None) -> ForumMessage | None:
    """Store one forum message, announce it as an event, and append it to forum.log (with ``log_dir``).

    An agent message that duplicates an earlier one of the run (see the module's note) is not
    posted: the event `forum.duplicate_skipped` records it and None is returned. ``dedup=False``
    posts it whatever it repeats (an import keeps every message of its folder). No host is
    scheduled from here: Forum.post_summary does that."""
    return _post(db, events, run_id, type=type, source=source, content=content, sender=sender, paragraph=paragraph,
                 log_dir=log_dir, timestamp=timestamp, trace_id=trace_id, dedup=dedup, round_no=round_no,
                 llm_call_id=llm_call_id)[0]


def _post(db: Database, events: EventLog | None, run_id: str, *, type: str, source: str, content: str,
          sender: str | None, paragraph: int | None, log_dir: Path | None, timestamp: datetime | None,
          trace_id: str | None, dedup: bool, round_no: int | None, llm_call_id: int | None,
          host_every: int | None = None, stored=None, metering: bool = True) -> tuple[ForumMessage | None, int]:
    """(the message or None, its ordinal among the run's agent messages when ``host_every`` is given, else 0).
    ``stored(message, ordinal)`` is called once the message is committed, before forum.log and its metering;
    ``metering=False``: the message is returned without reading its call's metering."""
    if type not in TYPES:
        raise ValueError(f"forum message type must be one of {TYPES}")
    if source not in SOURCES:
        raise ValueError(f"forum message source must be one of {SOURCES}")
    content = redact(content.strip())[:MAX_CONTENT]
    ts = timestamp or utcnow()
    trace = trace_id if trace_id is not None else current_trace_id()
    row = ForumRow(run_id=run_id, type=type, sender=sender or SENDERS[source], source=source, content=content,
                   paragraph=paragraph, trace_id=trace, timestamp=ts, round=round_no, llm_call_id=llm_call_id)
    ordinal = 0
    if type == "agent" and (dedup or host_every):
        # the lock serialises check-then-insert, and the ordinals of the run's agent messages, in this process
        with _seen.lock, db.session() as s:
            dup = find_duplicate(_seen.recent(db, s, run_id), source, content) if dedup else None
            if dup is not None:
                if events is not None:
                    events.emit("forum.duplicate_skipped", run_id=run_id, source="forum", trace_id=trace, session=s,
                                payload={"source": source, "duplicate_of": dup[0], "duplicate_source": dup[1],
                                         "similarity": round(dup[2], 3), "paragraph": paragraph,
                                         "chars": len(content)})
                return None, 0
            s.add(row)
            s.flush()
            if host_every:  # a count over the run's agent messages: a few hundred at most, on ix_forum_run
                ordinal = s.scalar(select(func.count()).select_from(ForumRow).where(
                    ForumRow.run_id == run_id, ForumRow.type == "agent", ForumRow.id <= row.id)) or 1
                row.round = round_of(ordinal, host_every)
            view = _announce(s, events, row)
    else:
        with db.session() as s:
            s.add(row)
            s.flush()
            view = _announce(s, events, row)
    if stored is not None:
        stored(view, ordinal)
    if log_dir is not None:  # once stored
        append_forum_log(log_dir, forum_line(source, content, datetime.now()))
    if metering and row.llm_call_id is not None:  # its call's metering, read outside the de-duplication lock
        with db.session() as s:
            view = metered(s, [row])[0]
    return view, ordinal


def _announce(s, events: EventLog | None, row: ForumRow) -> ForumMessage:
    s.flush()
    if events is not None:
        payload = {"message_id": row.id, "type": row.type, "source": row.source, "paragraph": row.paragraph,
                   "chars": len(row.content)}
        if row.round is not None:
            payload["round"] = row.round
        if row.llm_call_id is not None:
            payload["llm_call_id"] = row.llm_call_id
        events.emit("forum.message", run_id=row.run_id, source="forum", trace_id=row.trace_id, session=s,
                    payload=payload)
    return as_message(row)


class Forum:
    """Where engines (and the BettaFish live tail) post: one per process or job, for any run.

    ``jobs`` is what adds a run's host jobs (the supervisor: ``add_jobs(run_id, [JobSpec])``);
    without it no host is scheduled (tests, imports). ``host_every`` is FORUM_HOST_EVERY."""

    def __init__(self, db: Database, events: EventLog | None, log_dir: Path | None, *, host_every: int = 5,
                 jobs=None):
        self.db = db
        self.events = events
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.host_every = max(1, int(host_every))
        self.jobs = jobs

    def post_summary(self, run_id: str, *, source: str, content: str, paragraph: int | None = None,
                     llm_call_id: int | None = None, sender: str | None = None,
                     trace_id: str | None = None, metering: bool = True) -> ForumMessage | None:
        """Post an engine's paragraph summary (an agent message); None when it was a duplicate.

        The post that completes a round (every ``host_every``-th agent message of the run) adds
        that round's host job before it returns, as soon as the message is stored. ``metering=False``
        (a poster that drops the message): its call's tokens and cost are not read back."""
        def host(view: ForumMessage, ordinal: int) -> None:
            if ordinal and ordinal % self.host_every == 0:
                self._schedule_host(run_id, ordinal // self.host_every, view.id)

        return _post(self.db, self.events, run_id, type="agent", source=source, content=content, sender=sender,
                     paragraph=paragraph, log_dir=self.log_dir, timestamp=None, trace_id=trace_id, dedup=True,
                     round_no=None, llm_call_id=llm_call_id, host_every=self.host_every, stored=host,
                     metering=metering)[0]

    def post_host(self, run_id: str, content: str, *, round_no: int | None,
                  llm_call_id: int | None = None) -> ForumMessage | None:
        """The host's speech for a round."""
        return post_message(self.db, self.events, run_id, type="host", source="HOST", content=content,
                            log_dir=self.log_dir, round_no=round_no, llm_call_id=llm_call_id)

    def post_human(self, run_id: str, text: str) -> ForumMessage:
        """The analyst's message to a run that has not ended. Raises HumanPostError (nothing stored)
        when the text is empty or too long, or the run is unknown, not an analysis, or over."""
        content = (text or "").strip()
        if not content:
            raise HumanPostError(Msg("forum_human.empty"), "the message is empty")
        if len(content) > MAX_HUMAN_CHARS:
            raise HumanPostError(Msg("forum_human.too_long", {"n": len(content), "max": MAX_HUMAN_CHARS}),
                                 f"the message has {len(content)} characters; at most {MAX_HUMAN_CHARS}")
        from core.work.runs import get_run
        from core.work.states import RunState

        run = get_run(self.db, run_id)
        if run is None or run.kind != "analysis":
            raise HumanPostError(Msg("forum_human.unknown_run", {"run_id": run_id}),
                                 f"no analysis run {run_id!r}")
        if run.status not in (RunState.QUEUED, RunState.RUNNING):
            status = Msg(f"status.{run.status}")  # rendered in the reader's language
            raise HumanPostError(Msg("forum_human.run_ended", {"run_id": run_id, "status": status}),
                                 f"run {run_id} is {run.status}: the forum takes messages only while it runs")
        view = post_message(self.db, self.events, run_id, type="human", source="HUMAN", content=content,
                            log_dir=self.log_dir, dedup=False)
        assert view is not None  # a human message is never de-duplicated away
        return view

    def _schedule_host(self, run_id: str, round_no: int, upto: int) -> None:
        """Add the host jobs of every round up to ``round_no`` not added yet, in round order.

        Engines post from their own threads, each through its own Forum: the post completing round 2
        can get here before the one completing round 1. Adding round 1's job first (with the id of
        its last message) keeps host-2's dependency on host-1, which add_jobs would drop if host-1
        did not exist yet, so the speeches stay in round order."""
        if self.jobs is None:
            return
        with _scheduled.lock:
            try:
                key = (str(self.db.url), run_id)
                done = _scheduled.rounds.get(key)
                if done is None:
                    done = _host_rounds_added(self.db, run_id)
                if round_no <= done:
                    return
                specs = [JobSpec(kind=HOST_KIND, name=host_job_name(k),
                                 params={"round": k, "every": self.host_every,
                                         "upto": upto if k == round_no else _nth_agent_id(self.db, run_id,
                                                                                          k * self.host_every)},
                                 depends_on=(host_job_name(k - 1),) if k > 1 else ())
                         for k in range(done + 1, round_no + 1)]
                self.jobs.add_jobs(run_id, specs)
                _scheduled.remember(key, round_no)
            except Exception as exc:  # noqa: BLE001 - a post never fails for want of a host
                logger.warning("forum: the host of run {} round {} could not be scheduled: {}: {}", run_id,
                               round_no, exc.__class__.__name__, exc)


class HumanPostError(ValueError):
    """Why the analyst's message was not posted: ``msg`` for a page (in the reader's language), the
    English text as the exception's."""

    def __init__(self, msg: Msg, text: str):
        super().__init__(text)
        self.msg = msg


class _ScheduledRounds:
    """The last round whose host job this process added, per (database, run) (bounded, most recent runs)."""

    def __init__(self, maxlen: int = 256):
        self.lock = threading.Lock()
        self.rounds: OrderedDict[tuple[str, str], int] = OrderedDict()
        self.maxlen = maxlen

    def remember(self, key: tuple[str, str], round_no: int) -> None:
        self.rounds[key] = round_no
        self.rounds.move_to_end(key)
        while len(self.rounds) > self.maxlen:
            self.rounds.popitem(last=False)


_scheduled = _ScheduledRounds()


def _host_rounds_added(db: Database, run_id: str) -> int:
    """The highest round with a host job in the run (a process that did not add them, e.g. after a restart)."""
    from core.infra.models import Job

    with db.session() as s:
        names = s.scalars(select(Job.name).where(Job.run_id == run_id, Job.kind == HOST_KIND)).all()
    rounds = [int(n.split("-", 1)[1].split("#", 1)[0]) for n in names if n.split("-", 1)[-1].split("#", 1)[0].isdigit()]
    return max(rounds, default=0)


def _nth_agent_id(db: Database, run_id: str, n: int) -> int:
    """The id of the run's ``n``-th agent message (1-based): the last message of a round."""
    with db.session() as s:
        return int(s.scalar(select(ForumRow.id).where(ForumRow.run_id == run_id, ForumRow.type == "agent")
                            .order_by(ForumRow.id).offset(n - 1).limit(1)))


def host_job_name(round_no: int) -> str:
    return f"{HOST_KIND}-{round_no}"


def round_messages(db: Database, run_id: str, upto: int, n: int, prices=None) -> list[ForumMessage]:
    """The host's input for a round: the run's last ``n`` agent messages up to message ``upto``, oldest first."""
    with db.session() as s:
        rows = s.scalars(select(ForumRow).where(ForumRow.run_id == run_id, ForumRow.type == "agent",
                                                ForumRow.id <= upto)
                         .order_by(ForumRow.id.desc()).limit(n)).all()
        return metered(s, list(reversed(rows)), prices)


@dataclass(frozen=True)
class HostRound:
    """What a round's host job reads, in one transaction (core.discussion.host_job)."""
    spoken: int | None                  # the id of the round's speech when the host has spoken already
    messages: list[ForumMessage]        # the round's agent messages, then the analyst's not yet answered
    previous: str | None                # the host's latest speech


def host_round(db: Database, run_id: str, round_no: int, upto: int, n: int) -> HostRound:
    """round_messages (without metering: the host reads the texts), humans_since_host(before_round=
    ``round_no``) and latest_host_speech at once; only ``spoken`` when the round has its speech."""
    host = (ForumRow.run_id == run_id, ForumRow.type == "host")
    with db.session() as s:
        spoken = s.scalar(select(ForumRow.id).where(*host, ForumRow.round == round_no).limit(1))
        if spoken is not None:
            return HostRound(spoken, [], None)
        agents = s.scalars(select(ForumRow).where(ForumRow.run_id == run_id, ForumRow.type == "agent",
                                                  ForumRow.id <= upto).order_by(ForumRow.id.desc()).limit(n)).all()
        answered = s.scalar(select(func.max(ForumRow.id)).where(*host, ForumRow.round < round_no)) or 0
        humans = s.scalars(select(ForumRow).where(ForumRow.run_id == run_id, ForumRow.type == "human",
                                                  ForumRow.id > answered)
                           .order_by(ForumRow.id.desc()).limit(GUIDANCE_HUMAN)).all()
        previous = s.scalar(select(ForumRow.content).where(*host).order_by(ForumRow.id.desc()).limit(1))
        return HostRound(None, [as_message(m) for m in [*reversed(agents), *reversed(humans)]], previous)


def speech_of_round(db: Database, run_id: str, round_no: int, prices=None) -> ForumMessage | None:
    """The host's speech for round ``round_no``, if it has spoken."""
    with db.session() as s:
        row = s.scalars(select(ForumRow).where(ForumRow.run_id == run_id, ForumRow.type == "host",
                                               ForumRow.round == round_no).limit(1)).first()
        return metered(s, [row], prices)[0] if row is not None else None


def transcript(db: Database, run_id: str, *, after_id: int = 0, sources: tuple[str, ...] | None = None,
               limit: int = 1000, prices=None) -> list[ForumMessage]:
    """A run's messages after `after_id`, oldest first: O(new messages) for a polling page. Each
    carries its call's metering, priced with ``prices`` (None: genai-prices')."""
    stmt = select(ForumRow).where(ForumRow.run_id == run_id, ForumRow.id > after_id)
    if sources:
        stmt = stmt.where(ForumRow.source.in_(sources))
    with db.session() as s:
        return metered(s, list(s.scalars(stmt.order_by(ForumRow.id).limit(limit))), prices)


def transcript_tail(db: Database, run_id: str, n: int, prices=None) -> list[ForumMessage]:
    """The newest `n` messages of a run, oldest first: a page's first view, without reading it all."""
    with db.session() as s:
        rows = s.scalars(select(ForumRow).where(ForumRow.run_id == run_id)
                         .order_by(ForumRow.id.desc()).limit(n)).all()
        return metered(s, list(reversed(rows)), prices)


def agents_since_last_host(db: Database, run_id: str) -> int:
    """Agent messages posted after the host last spoke (the host's cadence, for a page)."""
    with db.session() as s:
        last_host = s.scalar(select(func.max(ForumRow.id)).where(ForumRow.run_id == run_id,
                                                                   ForumRow.type == "host")) or 0
        return s.scalar(select(func.count()).select_from(ForumRow).where(
            ForumRow.run_id == run_id, ForumRow.type == "agent", ForumRow.id > last_host)) or 0


def latest_host_speech(db: Database, run_id: str) -> str | None:
    with db.session() as s:
        return s.scalar(select(ForumRow.content).where(ForumRow.run_id == run_id, ForumRow.type == "host")
                        .order_by(ForumRow.id.desc()).limit(1))


def human_messages(db: Database, run_id: str, *, after_id: int = 0, limit: int = GUIDANCE_HUMAN) -> list[ForumMessage]:
    """The run's latest ``limit`` analyst messages after message ``after_id``, oldest first."""
    with db.session() as s:
        return _human_messages(s, run_id, after_id, limit)


def _human_messages(s, run_id: str, after_id: int = 0, limit: int = GUIDANCE_HUMAN) -> list[ForumMessage]:
    rows = s.scalars(select(ForumRow).where(ForumRow.run_id == run_id, ForumRow.type == "human",
                                            ForumRow.id > after_id)
                     .order_by(ForumRow.id.desc()).limit(limit)).all()
    return [as_message(m) for m in reversed(rows)]


def humans_since_host(db: Database, run_id: str, before_round: int | None = None) -> list[ForumMessage]:
    """The analyst's messages the host has not answered yet: those after its speech for round
    ``before_round`` (the latest speech when None; all of them before the first), oldest first."""
    with db.session() as s:
        stmt = select(func.max(ForumRow.id)).where(ForumRow.run_id == run_id, ForumRow.type == "host")
        if before_round is not None:
            stmt = stmt.where(ForumRow.round < before_round)
        last = s.scalar(stmt) or 0
    return human_messages(db, run_id, after_id=last, limit=GUIDANCE_HUMAN)


def forum_guidance(db: Database, run_id: str) -> ForumGuidance:
    """What an engine reads from the forum before a summary or reflection: the host's latest speech
    and the analyst's latest messages (one read: an engine asks four times per paragraph)."""
    with db.session() as s:
        host = s.execute(select(ForumRow.id, ForumRow.content).where(ForumRow.run_id == run_id, ForumRow.type == "host")
                         .order_by(ForumRow.id.desc()).limit(1)).first()
        human = _human_messages(s, run_id)
    return ForumGuidance(host_speech=host.content if host else None, human=tuple(m.content for m in human),
                         ids=((host.id,) if host else ()) + tuple(m.id for m in human))


def message_counts(db: Database, run_id: str) -> dict[str, int]:
    """Messages of a run by type: {"agent": n, "host": n, "human": n, "system": n}."""
    with db.session() as s:
        rows = s.execute(select(ForumRow.type, func.count()).where(ForumRow.run_id == run_id)
                         .group_by(ForumRow.type)).all()
    counts = {"agent": 0, "host": 0, "human": 0, "system": 0}
    counts.update({t: n for t, n in rows})
    return counts


def counts_by_source(db: Database, run_id: str) -> dict[str, int]:
    with db.session() as s:
        rows = s.execute(select(ForumRow.source, func.count()).where(ForumRow.run_id == run_id)
                         .group_by(ForumRow.source)).all()
    return {src: n for src, n in rows}


def runs_with_messages(db: Database, limit: int = 50) -> list[tuple[str, int]]:
    """Run ids that have a forum transcript (including imported BettaFish logs), newest first."""
    with db.session() as s:
        rows = s.execute(select(ForumRow.run_id, func.count(), func.max(ForumRow.id))
                         .group_by(ForumRow.run_id).order_by(func.max(ForumRow.id).desc()).limit(limit)).all()
    return [(r, n) for r, n, _ in rows]
