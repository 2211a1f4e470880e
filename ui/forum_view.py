"""The Forum page's transcript: run choice, one host round per page, a compact view, speaker filters.

A round is the messages up to and including one host speech (core.discussion.rounds). The page
opens at the newest round and follows it live: a TranscriptFeed per run keeps a cursor and reads
only messages after it, into a bounded buffer, and keeps the tallies (messages by speaker, rounds,
the host's cadence) from the same reads; its first read is the newest round and aggregates, never
the whole transcript. An older round is read on its own (core.discussion.rounds.round_page).

Forum content comes from the web and from LLMs, so it is untrusted: it is rendered with
st.markdown and never with unsafe_allow_html.
"""
from __future__ import annotations

import unicodedata
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import streamlit as st

from core.discussion.rounds import ROUND_LIMIT, round_page
from core.forum import (SENDERS, SOURCES, ForumMessage, agents_since_last_host, counts_by_source, runs_with_messages,
                        transcript)
from core.infra.db import Database
from core.runtime import Runtime
from core.work.runs import RunView, get_run, list_runs

from .forum_import import download_buttons
from .i18n import fmt_time, status_label, t
from .runtime import get_runtime
from .widgets import badge

AVATARS = {"QUERY": "🔎", "MEDIA": "🎞️", "INSIGHT": "🧠", "HOST": "🎙️", "HUMAN": "🧑‍💼", "SYSTEM": "⚙️"}
BUFFER = 500  # messages kept per session (the newest rounds); the downloads hold the whole transcript
BATCH = 1000  # rows per read
COMPACT_CHARS = 110  # columns of a message's text on its one line in the compact view (CJK: two each)
TRANSCRIPT_HEIGHT = 720  # px: the round scrolls inside its box, the page keeps its length


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
    rounds: int = 0                 # rounds in the transcript (the open one included)
    last_type: str | None = None    # the type of the newest message read
    round_size: int = 0             # messages in the newest round (the buffer may hold fewer of them)
    polls: int = 0

    def __post_init__(self):
        self.buffer = deque(self.buffer, maxlen=self.maxlen)

    def poll(self, db: Database, prices=None) -> int:
        """Read the messages after the cursor (all of them, in batches); keep the newest `maxlen`.

        The first poll starts from the tallies and the newest round (at most ROUND_LIMIT of its
        messages), so opening a long transcript never reads it whole; later polls read only what is new."""
        self.polls += 1
        new = 0
        if self.polls == 1 and self.cursor == 0:
            page = round_page(db, self.run_id, None, limit=min(ROUND_LIMIT, self.maxlen), prices=prices)
            if page is not None and page.messages:
                self.counts.update(counts_by_source(db, self.run_id))
                self.rounds = page.total
                self.round_size = page.left_out + len(page.messages)
                self.agents_since_host = 0 if page.closed else agents_since_last_host(db, self.run_id)
                self.buffer.extend(page.messages)
                self.cursor = page.messages[-1].id
                self.last_type = page.messages[-1].type
                new = len(page.messages)
        while True:
            batch = transcript(db, self.run_id, after_id=self.cursor, limit=BATCH, prices=prices)
            for m in batch:
                self.counts[m.source] = self.counts.get(m.source, 0) + 1
                if self.last_type is None or self.last_type == "host":
                    self.rounds += 1
                    self.round_size = 0
                self.round_size += 1
                self.last_type = m.type
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

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def newest_round(self) -> list[ForumMessage]:
        """The newest round's messages held in the buffer: those after the last host speech, or the
        round the last speech closes when nothing follows it."""
        buf = list(self.buffer)
        hosts = [i for i, m in enumerate(buf) if m.type == "host"]
        if hosts and hosts[-1] == len(buf) - 1:
            hosts.pop()
        return buf[hosts[-1] + 1:] if hosts else buf

    def shown(self, sources: tuple[str, ...] | None = None) -> list[ForumMessage]:
        return [m for m in self.newest_round() if not sources or m.source in sources]


def feed_for(key: str, run_id: str) -> TranscriptFeed:
    feed = st.session_state.get(key)
    if not isinstance(feed, TranscriptFeed) or feed.run_id != run_id:
        feed = TranscriptFeed(run_id=run_id)
        st.session_state[key] = feed
        st.session_state.pop(round_key(key), None)  # another run opens at its newest round
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
        choices[run_id] = t("forum.run_choice", run_id=run_id, kind=kind_label(r.kind), status=status_label(r.status),
                            created=fmt_time(r.created_at), topic=r.topic[:40], n=n) if r else \
            t("forum.run_choice_bare", run_id=run_id, n=n)
    return choices


def kind_label(kind: str) -> str:
    return t("forum.kind_import") if kind == "forum_import" else t("forum.kind_analysis") if kind == "analysis" else kind


def pick_run(rt: Runtime) -> tuple[RunView | None, str | None, bool]:
    """The follow toggle and, when off, a picker. Returns (run, run_id, following)."""
    follow = st.toggle(t("forum.follow"), value=True, key="forum_follow", help=t("forum.follow_help"))
    if follow:
        run = current_run(rt.db)
        return run, (run.id if run else None), True
    choices = run_choices(rt.db)
    if not choices:
        return None, None, False
    if st.session_state.get("forum_run") not in choices:
        st.session_state.pop("forum_run", None)
    run_id = st.selectbox(t("forum.run"), options=list(choices), format_func=choices.get, key="forum_run")
    return get_run(rt.db, run_id), run_id, False


def run_caption(run: RunView | None, run_id: str, following: bool) -> str:
    if run is None:
        return t("forum.run_only", run_id=run_id)
    text = t("forum.run_caption", run_id=run.id, kind=kind_label(run.kind), badge=badge(run.status),
             created=fmt_time(run.created_at))
    text = t("forum.following", what=text) if following else text
    return text + (f" · {run.topic[:80]}" if run.topic else "")


# ---------------------------------------------------------------------------------------- messages


SOURCE_KEYS = {"QUERY": "forum.source_query", "MEDIA": "forum.source_media", "INSIGHT": "forum.source_insight",
               "HOST": "forum.source_host", "HUMAN": "forum_human.source", "SYSTEM": "forum.source_system"}


def source_label(source: str) -> str:
    return f"{AVATARS.get(source, '💬')} {t(SOURCE_KEYS[source]) if source in SOURCE_KEYS else source}"


def message_header(m: ForumMessage) -> str:
    parts = [f"**{m.sender or SENDERS.get(m.source, m.source)}**", fmt_time(m.timestamp, with_date=False), m.source]
    if m.paragraph is not None:
        parts.append(t("forum.paragraph_n", n=m.paragraph + 1))
    if m.round is not None:
        parts.append(t("forum.round_n", n=m.round))
    if m.llm_call_id is not None:  # what the call that wrote it cost (the offline analyst's cost nothing)
        parts.append(t("metering.message_meter", tokens=f"{m.tokens:,}", seconds=f"{m.latency_ms / 1000:,.1f}",
                       cost=t("metering.unpriced") if m.cost_usd is None else f"${m.cost_usd:,.4f}"))
    return " · ".join(parts)


def safe_markdown(text: str) -> str:
    """Untrusted text for st.markdown: HTML stays text (no unsafe_allow_html); `$` is not LaTeX."""
    return text.replace("$", "\\$")


def _clip_width(text: str, limit: int) -> str:
    """`text` cut to `limit` columns, a CJK or other wide character counting two."""
    width = 0
    for i, ch in enumerate(text):
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if width > limit:
            return text[:i] + "…"
    return text


def one_line(text: str, limit: int = COMPACT_CHARS) -> str:
    """A message's text on one line of the compact view: no line breaks, no Markdown structure, cut to
    `limit` columns (a Chinese character is two)."""
    flat = _clip_width(" ".join(text.split()), limit)
    for ch in "\\`*_[]<>#|~":
        flat = flat.replace(ch, "\\" + ch)
    return safe_markdown(flat)


def show_message(m: ForumMessage) -> None:
    with st.chat_message(m.sender or SENDERS.get(m.source, m.source), avatar=AVATARS.get(m.source, "💬")):
        st.caption(message_header(m))
        st.markdown(safe_markdown(m.content))


def compact_lines(messages: list[ForumMessage]) -> str:
    """One line per message: avatar, speaker, time, paragraph, the start of the text."""
    lines = []
    for m in messages:
        para = f" · {t('forum.paragraph_n', n=m.paragraph + 1)}" if m.paragraph is not None else ""
        lines.append(f"{AVATARS.get(m.source, '💬')} **{m.sender or SENDERS.get(m.source, m.source)}** · "
                     f"{fmt_time(m.timestamp, with_date=False)}{para} — {one_line(m.content)}")
    return "  \n".join(lines)


# ---------------------------------------------------------------------------------------- rounds


def round_key(key: str) -> str:
    return f"{key}_round"


def _go(key: str, number: int | None) -> None:
    st.session_state[round_key(key)] = number


def pager(key: str, number: int, total: int) -> None:
    """First, older, newer, newest; the chosen round is kept in session state (None: the newest, live)."""
    c = st.columns([1, 1, 1, 1, 4])
    older, newer = max(1, number - 1), number + 1
    c[0].button(t("forum.first_round"), key=f"{key}_first", disabled=number <= 1, on_click=_go, args=(key, 1))
    c[1].button(t("forum.older_round"), key=f"{key}_older", disabled=number <= 1, on_click=_go, args=(key, older))
    c[2].button(t("forum.newer_round"), key=f"{key}_newer", disabled=number >= total, on_click=_go,
                args=(key, None if newer >= total else newer))
    c[3].button(t("forum.newest_round"), key=f"{key}_newest", disabled=number >= total, on_click=_go,
                args=(key, None))
    c[4].markdown(t("forum.round_of", n=number, total=total))


def older_round(key: str, db: Database, run_id: str, number: int, sources: tuple[str, ...] | None):
    """A closed round, read once per (run, round, speakers) and kept for the session's next polls."""
    wanted = (run_id, number, tuple(sources or ()))
    kept = st.session_state.get(f"{key}_round_cache")
    if kept is not None and kept[0] == wanted:
        return kept[1]
    page = round_page(db, run_id, number, sources, prices=getattr(get_runtime(), "prices", None))
    if page is not None and page.closed:
        st.session_state[f"{key}_round_cache"] = (wanted, page)
    return page


def render_transcript(key: str, run_id: str, sources: tuple[str, ...] | None = None, host_every: int = 5,
                      live_host: bool = True, follow: bool = False, compact: bool = False) -> None:
    """Body of the live panel: reads only messages after the cursor, then counts, cadence, one round."""
    rt = get_runtime()
    if not rt.db.ok:
        st.caption(t("forum.db_unavailable"))
        return
    if follow:
        now = current_run(rt.db)
        if now is not None and now.id != run_id:
            st.rerun()  # a new analysis started: the whole page follows it
    feed = feed_for(key, run_id)
    feed.poll(rt.db, getattr(rt, "prices", None))
    cols = st.columns(len(SOURCES) + 1)
    cols[0].metric(t("forum.messages"), feed.total)
    for col, source in zip(cols[1:], SOURCES):
        col.metric(source_label(source), feed.counts.get(source, 0))
    if live_host:
        due = host_every - feed.agents_since_host
        st.caption(t("forum.cadence", every=host_every) + " · "
                   + (t("forum.next_speech", n=due) if due > 0 else t("forum.speech_due")))
    if not feed.total:
        st.caption(t("forum.no_messages"))
        return
    chosen = st.session_state.get(round_key(key))
    number = feed.rounds if chosen is None or chosen >= feed.rounds else max(1, int(chosen))
    pager(key, number, feed.rounds)
    if number == feed.rounds:  # the newest round, live from the feed
        shown = feed.shown(sources)
        left_out = max(0, feed.round_size - len(feed.newest_round()))
    else:
        page = older_round(key, rt.db, run_id, number, sources)
        shown, left_out = list(page.messages) if page else [], page.left_out if page else 0
    with st.container(height=TRANSCRIPT_HEIGHT, border=False):
        if not shown:
            st.caption(t("forum.none_from_sources"))
        elif compact:
            st.markdown(compact_lines(shown))
        else:
            for m in shown:
                show_message(m)
    notes = [t("forum.shown_n", n=len(shown), cursor=feed.cursor)]
    if left_out:
        notes.append(t("forum.left_out", n=left_out))
    if feed.total > len(shown):
        notes.append(t("forum.downloads_hold_all", total=feed.total))
    st.caption(" · ".join(notes))


@st.fragment(run_every=2)
def live_transcript(key: str, run_id: str, sources: tuple[str, ...] | None = None, host_every: int = 5,
                    live_host: bool = True, follow: bool = False, compact: bool = False) -> None:
    render_transcript(key, run_id, sources, host_every, live_host, follow, compact)


def show_transcript(key: str, run: RunView | None, run_id: str, *, host_every: int = 5, live_host: bool = True,
                    follow: bool = False) -> None:
    """Speaker filter, compact switch, downloads, and the live transcript of one run, a round at a time."""
    c1, c2 = st.columns([4, 1])
    chosen = c1.multiselect(t("forum.speakers"), options=list(SOURCES), default=list(SOURCES), key=f"{key}_sources",
                            format_func=source_label)
    compact = c2.toggle(t("forum.compact"), key=f"{key}_compact", help=t("forum.compact_help"))
    rt = get_runtime()
    download_buttons(rt.db, run, run_id, key, getattr(rt, "prices", None))
    live_transcript(key, run_id, tuple(chosen), host_every, live_host, follow, compact)

