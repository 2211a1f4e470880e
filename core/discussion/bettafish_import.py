"""A BettaFish logs folder replayed into a forum transcript, and stored as a run (kind "forum_import").

The engine logs (insight.log, media.log, query.log) are read by core.discussion.log_parse's
SummaryParser. Nothing here is live: the live tail is core.discussion.log_monitor.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time as dtime, timezone, tzinfo
from pathlib import Path

from loguru import logger

from core.discussion.forum_log import FORUM_LOG, dated_messages, file_day, log_msg, parse_forum_log
from core.discussion.log_parse import LOG_FILES, ParsedSummary, SummaryParser, looks_binary
from core.forum import forum_line, post_message
from core.i18n import Msg

__all__ = ["ForumImport", "parse_bettafish_folder", "store_forum_import"]


@dataclass
class ForumImport:
    """A folder read: its messages, and what was wrong, as Msgs (pages show them in the reader's
    language; ``warning_texts`` and ``error_text`` give them in one, English for the command line)."""
    folder: str
    messages: list[ParsedSummary] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)  # file name -> messages found in it
    warnings: list[Msg] = field(default_factory=list)
    error: Msg | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.messages)

    def warning_texts(self, lang: str = "en") -> list[str]:
        return [w.render(lang) for w in self.warnings]

    def error_text(self, lang: str = "en") -> str | None:
        return self.error.render(lang) if self.error is not None else None

    def lines(self) -> list[str]:
        """The transcript in forum.log format, one message per line, with each message's own clock."""
        return [forum_line(m.source, m.content, _clock_dt(m.clock)) for m in self.messages]

    def as_dict(self) -> dict:
        return {"folder": self.folder, "files": dict(self.files), "warnings": self.warning_texts(),
                "error": self.error_text(), "messages": [asdict(m) for m in self.messages]}


def _clock_dt(clock: str | None, day: str | None = None) -> datetime:
    try:
        t = datetime.strptime(clock or "00:00:00", "%H:%M:%S").time()
    except ValueError:
        t = dtime(0, 0, 0)
    try:
        d = date.fromisoformat(day) if day else date.today()
    except ValueError:
        d = date.today()
    return datetime.combine(d, t)


def _parse_file(path: Path, source: str, warnings: list[Msg]) -> list[ParsedSummary]:
    name = path.name
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
            if looks_binary(head):
                warnings.append(log_msg("binary", name=name))
                return []
            fh.seek(0)
            parser = SummaryParser(source)
            out: list[ParsedSummary] = []
            for raw in fh:
                out += parser.feed(raw.decode("utf-8", "replace").rstrip("\r\n"))
            out += parser.flush()
    except OSError as exc:
        warnings.append(log_msg("unreadable", name=name, error=str(exc.strerror or exc)))
        return []
    st = parser.stats
    if not out:
        warnings.append(log_msg("no_summaries", name=name))
    for key, stat in (("error_records", "errors"), ("interrupted", "interrupted"), ("unparseable", "unparseable")):
        if st[stat]:
            warnings.append(log_msg(key, name=name, n=st[stat]))
    return out


def parse_bettafish_folder(path) -> ForumImport:
    """Replay BettaFish logs into a transcript: a logs folder (insight.log, media.log, query.log,
    forum.log; any subset), or one of those files.

    The engines' messages come from their engine logs (which keep paragraphs and numbers); forum.log
    adds the host's speeches, or gives every message when no engine log is there. Messages are
    ordered by their dated time (core.discussion.forum_log.resolve_days: a log that runs past
    midnight stays in order), ties in file order. Never raises for bad input: a missing or empty
    folder, binary junk or only error lines give an empty transcript with `error` and `warnings`
    saying why."""
    folder = Path(path) if path is not None else Path("")
    result = ForumImport(str(folder))
    try:
        if not folder.exists():
            result.error = log_msg("folder_missing", folder=str(folder))
            return result
        if folder.is_dir():
            present = [(folder / name, source) for name, source in LOG_FILES if (folder / name).is_file()]
            forum_log = folder / FORUM_LOG if (folder / FORUM_LOG).is_file() else None
        elif folder.name.lower().endswith(".log"):
            engine = dict(LOG_FILES).get(folder.name.lower())
            present = [(folder, engine)] if engine else []
            forum_log = None if engine else folder
        else:
            result.error = log_msg("not_a_folder", folder=str(folder))
            return result
    except OSError as exc:
        result.error = log_msg("folder_unreadable", folder=str(folder), error=str(exc.strerror or exc))
        return result
    if not present and forum_log is None:
        result.error = log_msg("no_logs", folder=str(folder))
        return result
    tagged: list[tuple[datetime, int, ParsedSummary]] = []
    parsed = [(file_path, _parse_file(file_path, source, result.warnings)) for file_path, source in present]
    forum = parse_forum_log(forum_log, result.warnings) if forum_log is not None else []
    # Files of one run: one without dates starts on the first day another names (an engine log's
    # loguru header, else forum.log), else it ends on the day it was last written.
    first_day = min((m.date for _, msgs in parsed for m in msgs if m.date), default=None) or \
        (forum[0].date if forum else None)
    for file_path, msgs in parsed:
        msgs = dated_messages(msgs, date.fromisoformat(first_day) if first_day else file_day(file_path),
                              fallback_first=first_day is not None)
        result.files[file_path.name] = len(msgs)
        tagged += _timed(msgs, len(tagged))
    if forum_log is not None:
        if tagged:  # the engines' own logs gave their messages (with paragraphs kept): forum.log adds the host
            forum = [m for m in forum if m.source == "HOST"]
        result.files[forum_log.name] = len(forum)
        tagged += _timed(forum, len(tagged))
    tagged.sort(key=lambda t: (t[0], t[1]))
    result.messages = [m for _, _, m in tagged]
    if not result.messages:  # the warnings say why
        result.error = log_msg("no_messages", folder=str(folder))
    return result


def _timed(msgs: list[ParsedSummary], start: int) -> list[tuple[datetime, int, ParsedSummary]]:
    """(when, file order, message); a message without a clock sorts with the one before it."""
    out, last = [], datetime.min
    for i, m in enumerate(msgs):
        if m.clock:
            last = _clock_dt(m.clock, m.date)
        out.append((last, start + i, m))
    return out


def _as_utc(local: datetime, zone: tzinfo) -> datetime:
    """A log's wall-clock time in ``zone`` as the naive UTC Shoal stores."""
    return local.replace(tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None)


def store_forum_import(db, events, result: ForumImport, label: str, zone: tzinfo) -> str:
    """Store an import as a completed run (kind "forum_import") with all its messages; returns the run id.

    BettaFish writes its logs' times on its machine's clock, without a zone; Shoal stores UTC. They
    are read as times in ``zone`` (the pages pass the zone they show times in, so an imported message
    shows the time its log line has) and the zone is kept in the run's parameters (``log_zone``)."""
    import secrets

    from core.infra.clock import zone_name
    from core.infra.models import Run, utcnow
    from core.infra.tracing import new_trace_id

    run_id = secrets.token_hex(6)
    trace = new_trace_id()
    now = utcnow()
    with db.session() as s:
        s.add(Run(id=run_id, kind="forum_import", topic=(label or result.folder)[:2000], status="completed",
                  mode="offline", params={"source": "bettafish", "folder": result.folder, "files": result.files,
                                          "log_zone": zone_name(zone),
                                          "messages": len(result.messages), "warnings": result.warning_texts()[:20]},
                  trace_id=trace, created_at=now, started_at=now, finished_at=now))
    # An import is a record of what BettaFish's engines said: every message of the folder is kept,
    # repeats included (dedup=False), so the run holds exactly the messages the folder has.
    stored = 0
    for m in result.messages:
        kind = {"HOST": "host", "HUMAN": "human"}.get(m.source, "agent")  # forum.log's host speeches stay the host's
        stored += post_message(db, events, run_id, type=kind, source=m.source, content=m.content, paragraph=m.paragraph,
                               timestamp=_as_utc(_clock_dt(m.clock, m.date), zone) if m.clock else None,
                               trace_id=trace, dedup=False) is not None
    if events is not None:
        events.emit("forum.imported", run_id=run_id, source="forum", trace_id=trace,
                    payload={"messages": stored, "found": len(result.messages), "files": result.files})
    logger.info("imported {} of {} BettaFish forum messages from {} as run {}", stored, len(result.messages),
                result.folder, run_id)
    return run_id
