"""The Forum page's components: run choice, the live transcript, downloads, BettaFish import.

Forum content comes from the web and from LLMs, so it is untrusted: it is rendered with
st.markdown and never with unsafe_allow_html. The live transcript keeps a cursor per run in
session state and reads only messages after it, into a bounded buffer.
"""
from __future__ import annotations

import json
import tempfile
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

import streamlit as st

from core.discussion.log_parse import parse_bettafish_folder, store_forum_import
from core.infra.db import Database
from core.forum import (
    SENDERS,
    SOURCES,
    ForumMessage,
    agents_since_last_host,
    counts_by_source,
    forum_line,
    runs_with_messages,
    transcript,
    transcript_tail,
)
from core.work.runs import RunView, get_run, list_runs
from core.runtime import Runtime

from .access import SERVER_PATH_OFF, server_path_import_allowed
from .runtime import get_runtime
from .widgets import admin_unlocked, badge, fmt_time

AVATARS = {"QUERY": "🔎", "MEDIA": "🎞️", "INSIGHT": "🧠", "HOST": "🎙️", "SYSTEM": "⚙️"}
BUFFER = 500  # messages kept per session and shown; the downloads hold the whole transcript
BATCH = 1000  # rows per read
IMPORT_FILES = ("insight.log", "media.log", "query.log")
MAX_WARNINGS_SHOWN = 20


# ---------------------------------------------------------------------------------------- state


@dataclass
class TranscriptFeed:
    """One run's cursor and bounded buffer, plus tallies kept up to date from the same reads."""
    run_id: str
    maxlen: int = BUFFER
    cursor: int = 0
    buffer: deque = field(default_factory=deque)
    counts: dict = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    agents_since_host: int = 0
    polls: int = 0

    def __post_init__(self):
        self.buffer = deque(self.buffer, maxlen=self.maxlen)

    def poll(self, db: Database) -> int:
        """Read the messages after the cursor (all of them, in batches); keep the newest `maxlen`.

        The first poll starts from the tallies and the newest `maxlen` messages, so opening a long
        transcript never reads it whole; later polls read only what is new."""
        self.polls += 1
        new = 0
        if self.polls == 1 and self.cursor == 0:
            tail = transcript_tail(db, self.run_id, self.maxlen)
            if tail:
                self.counts.update(counts_by_source(db, self.run_id))
                self.agents_since_host = agents_since_last_host(db, self.run_id)
                self.buffer.extend(tail)
                self.cursor = tail[-1].id
                new = len(tail)
        while True:
            batch = transcript(db, self.run_id, after_id=self.cursor, limit=BATCH)
            for m in batch:
                self.counts[m.source] = self.counts.get(m.source, 0) + 1
                if m.type == "host":
                    self.agents_since_host = 0
                elif m.type == "agent":
                    self.agents_since_host += 1
            if batch:
                self.cursor = batch[-1].id
                self.buffer.extend(batch)
                new += len(batch)
            if len(batch) < BATCH:
                return new

    def shown(self, sources: tuple[str, ...] | None = None) -> list[ForumMessage]:
        return [m for m in self.buffer if not sources or m.source in sources]


def feed_for(key: str, run_id: str) -> TranscriptFeed:
    feed = st.session_state.get(key)
    if not isinstance(feed, TranscriptFeed) or feed.run_id != run_id:
        feed = TranscriptFeed(run_id=run_id)
        st.session_state[key] = feed
    return feed


# ---------------------------------------------------------------------------------------- runs


def current_run(db: Database) -> RunView | None:
    """The run the page follows: the latest analysis, else the latest run that has a transcript."""
    latest = list_runs(db, limit=1, kind="analysis")
    if latest:
        return latest[0]
    with_messages = runs_with_messages(db, limit=1)
    return get_run(db, with_messages[0][0]) if with_messages else None


def run_choices(db: Database) -> dict[str, str]:
    """Run id → label: runs with a transcript (imports included) and analysis runs, newest first."""
    counts = dict(runs_with_messages(db, limit=100))
    runs: dict[str, RunView | None] = {r.id: r for r in list_runs(db, limit=100)}
    ids = [*counts, *(i for i, r in runs.items() if r.kind == "analysis" and i not in counts)]
    for run_id in ids:
        if run_id not in runs:
            runs[run_id] = get_run(db, run_id)
    ids.sort(key=lambda i: runs[i].created_at if runs[i] else datetime.min, reverse=True)
    choices: dict[str, str] = {}
    for run_id in ids:
        r, n = runs[run_id], counts.get(run_id, 0)
        what = f"{r.kind} · {r.status} · {fmt_time(r.created_at)} · {r.topic[:40]}" if r else "run"
        choices[run_id] = f"{run_id} · {what} · {n} message{'s' if n != 1 else ''}"
    return choices


def pick_run(rt: Runtime) -> tuple[RunView | None, str | None, bool]:
    """The follow toggle and, when off, a picker. Returns (run, run_id, following)."""
    follow = st.toggle("Follow the current run", value=True, key="forum_follow",
                       help="Show the latest analysis as it happens; turn off to open any past run or import.")
    if follow:
        run = current_run(rt.db)
        return run, (run.id if run else None), True
    choices = run_choices(rt.db)
    if not choices:
        return None, None, False
    if st.session_state.get("forum_run") not in choices:
        st.session_state.pop("forum_run", None)
    run_id = st.selectbox("Run", options=list(choices), format_func=choices.get, key="forum_run")
    return get_run(rt.db, run_id), run_id, False


# ---------------------------------------------------------------------------------------- transcript


def message_header(m: ForumMessage) -> str:
    parts = [f"**{m.sender or SENDERS.get(m.source, m.source)}**", m.timestamp.strftime("%H:%M:%S"), m.source]
    if m.paragraph is not None:
        parts.append(f"paragraph {m.paragraph + 1}")
    if m.round is not None:
        parts.append(f"round {m.round}")
    return " · ".join(parts)


def safe_markdown(text: str) -> str:
    """Untrusted text for st.markdown: HTML stays text (no unsafe_allow_html); `$` is not LaTeX."""
    return text.replace("$", "\\$")


def show_message(m: ForumMessage) -> None:
    with st.chat_message(m.sender or SENDERS.get(m.source, m.source), avatar=AVATARS.get(m.source, "💬")):
        st.caption(message_header(m))
        st.markdown(safe_markdown(m.content))


def render_transcript(key: str, run_id: str, sources: tuple[str, ...] | None = None, host_every: int = 5,
                      live_host: bool = True, follow: bool = False) -> None:
    """Body of the live panel: reads only messages after the cursor, then counts, cadence, the chat."""
    rt = get_runtime()
    if not rt.db.ok:
        st.caption("No transcript: the database is unavailable.")
        return
    if follow:
        now = current_run(rt.db)
        if now is not None and now.id != run_id:
            st.rerun()  # a new analysis started: the whole page follows it
    feed = feed_for(key, run_id)
    feed.poll(rt.db)
    cols = st.columns(len(SOURCES) + 1)
    cols[0].metric("Messages", sum(feed.counts.values()))
    for col, source in zip(cols[1:], SOURCES):
        col.metric(f"{AVATARS[source]} {source}", feed.counts.get(source, 0))
    if live_host:
        due = host_every - feed.agents_since_host
        st.caption(f"Host cadence: the host speaks after every {host_every} agent messages (FORUM_HOST_EVERY) · "
                   + (f"next host speech after {due} more agent message{'s' if due != 1 else ''}" if due > 0
                      else "a host speech is due now"))
    shown = feed.shown(sources)
    if not shown:
        st.caption("No messages yet: agents post a summary as they finish each paragraph."
                   if not any(feed.counts.values()) else "No messages from the selected sources.")
    for m in shown:
        show_message(m)
    total = sum(feed.counts.values())
    st.caption(f"cursor {feed.cursor} · {len(shown)} shown"
               + (f" · only the latest {feed.maxlen} are kept here; the downloads hold all {total}"
                  if total > len(feed.buffer) else ""))


@st.fragment(run_every=2)
def live_transcript(key: str, run_id: str, sources: tuple[str, ...] | None = None, host_every: int = 5,
                    live_host: bool = True, follow: bool = False) -> None:
    render_transcript(key, run_id, sources, host_every, live_host, follow)


def show_transcript(key: str, run_id: str, *, host_every: int = 5, live_host: bool = True,
                    follow: bool = False) -> None:
    """Source filter, downloads, and the live transcript of one run."""
    chosen = st.multiselect("Sources", options=list(SOURCES), default=list(SOURCES), key=f"{key}_sources",
                            format_func=lambda s: f"{AVATARS[s]} {s}")
    rt = get_runtime()
    download_buttons(rt.db, run_id, key)
    live_transcript(key, run_id, tuple(chosen), host_every, live_host, follow)


# ---------------------------------------------------------------------------------------- downloads


def all_messages(db: Database, run_id: str):
    cursor = 0
    while True:
        batch = transcript(db, run_id, after_id=cursor, limit=BATCH)
        yield from batch
        if len(batch) < BATCH:
            return
        cursor = batch[-1].id


def forum_log_text(db: Database, run_id: str) -> str:
    """The whole transcript in BettaFish's forum.log format, one message per line."""
    return "".join(forum_line(m.source, m.content, m.timestamp) + "\n" for m in all_messages(db, run_id))


def transcript_json(db: Database, run_id: str) -> str:
    return json.dumps({"run_id": run_id, "messages": [m.as_dict() for m in all_messages(db, run_id)]},
                      ensure_ascii=False, indent=2)


def download_buttons(db: Database, run_id: str, key: str) -> None:
    """Built only when clicked (deferred data), so a long transcript costs nothing per rerun."""
    c1, c2, _ = st.columns([1, 1, 3])
    c1.download_button("Download forum.log", data=partial(forum_log_text, db, run_id), file_name=f"forum-{run_id}.log",
                       mime="text/plain", key=f"{key}_dl_log", on_click="ignore")
    c2.download_button("Download JSON", data=partial(transcript_json, db, run_id), file_name=f"forum-{run_id}.json",
                       mime="application/json", key=f"{key}_dl_json", on_click="ignore")


# ---------------------------------------------------------------------------------------- import


def saved_uploads(files, folder: Path) -> tuple[list[str], list[str]]:
    """Write uploaded engine logs into `folder` under their BettaFish names; others are refused."""
    saved, refused = [], []
    for f in files or []:
        name = Path(f.name).name.lower()
        if name in IMPORT_FILES and name not in saved:
            (folder / name).write_bytes(f.getvalue())
            saved.append(name)
        else:
            refused.append(f.name)
    return saved, refused


def run_import(rt: Runtime, folder: Path, label: str, notes: list[str] | None = None) -> None:
    """Parse, report warnings and errors, store when there are messages, then switch the page to the run."""
    result = parse_bettafish_folder(folder)
    error = result.error
    warnings = [*(notes or []), *result.warnings]
    messages = result.messages
    if error:
        st.error(f"Import failed: {error}")
    if not messages:
        show_warnings(warnings)
        if not error:
            st.warning(f"No forum messages found in {folder}: nothing was imported.")
        return
    run_id = store_forum_import(rt.db, rt.events, result, label or f"BettaFish logs: {folder}")
    st.session_state["forum_pending_run"] = run_id
    st.session_state["forum_flash"] = (f"Imported {len(messages)} message(s) as run `{run_id}`.", warnings)
    st.rerun()


def show_warnings(warnings: list[str]) -> None:
    for w in warnings[:MAX_WARNINGS_SHOWN]:
        st.warning(w)
    if len(warnings) > MAX_WARNINGS_SHOWN:
        st.caption(f"… and {len(warnings) - MAX_WARNINGS_SHOWN} more warning(s).")


def import_section(rt: Runtime) -> None:
    st.caption("Replay a BettaFish `logs` folder (`insight.log`, `media.log`, `query.log`, old and new line "
               "formats) into a forum transcript stored as a run of kind `forum_import`.")
    if not admin_unlocked(rt, "forum_import"):
        return
    folder = ""
    if server_path_import_allowed(rt):
        folder = st.text_input("Logs folder on the server", key="forum_import_dir",
                               placeholder="/path/to/BettaFish/logs")
    else:
        st.caption(SERVER_PATH_OFF)
    uploads = st.file_uploader("… or upload the engine logs", type=["log"], accept_multiple_files=True,
                               key="forum_import_files", help="insight.log, media.log and query.log")
    label = st.text_input("Label (optional)", key="forum_import_label")
    if not st.button("Import", key="forum_import_go"):
        return
    if uploads:
        with tempfile.TemporaryDirectory(prefix="shoal-bettafish-") as tmp:
            saved, refused = saved_uploads(uploads, Path(tmp))
            notes = [f"Ignored {name}: only {', '.join(IMPORT_FILES)} are BettaFish engine logs." for name in refused]
            if not saved:
                show_warnings(notes)
                st.error("None of the uploaded files is a BettaFish engine log.")
                return
            run_import(rt, Path(tmp), label.strip() or "BettaFish logs (uploaded)", notes)
    elif folder.strip():
        run_import(rt, Path(folder.strip()).expanduser(), label.strip())
    else:
        st.warning("Enter a folder path on the server or upload the log files first." if server_path_import_allowed(rt)
                   else "Upload the log files first.")


def take_pending_switch() -> None:
    """Before the picker's widgets exist: open the run an import just created, and say so."""
    pending = st.session_state.pop("forum_pending_run", None)
    if pending:
        st.session_state["forum_follow"] = False
        st.session_state["forum_run"] = pending
    flash = st.session_state.pop("forum_flash", None)
    if flash:
        text, warnings = flash
        st.success(text)
        show_warnings(warnings)


def run_caption(run: RunView | None, run_id: str, following: bool) -> str:
    if run is None:
        return f"Run `{run_id}`"
    return (("Following " if following else "") + f"run `{run.id}` · {run.kind} · {badge(run.status)} · "
            f"created {fmt_time(run.created_at)}" + (f" · {run.topic[:80]}" if run.topic else ""))
