"""A transcript read one host round at a time (core.discussion.rounds): the right messages in each
round, and a long transcript opened at its newest round without loading the rest."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import event, insert

from core.discussion.rounds import count_rounds, round_page
from core.forum import post_message
from core.infra.models import ForumMessage as ForumRow

T0 = datetime(2026, 12, 4, 9, 0, 0)


def fill(db, run_id: str, kinds: str) -> None:
    """One row per letter: a = agent (QUERY), m = agent (MEDIA), h = host, s = system."""
    rows = [{"run_id": run_id, "type": {"h": "host", "s": "system"}.get(k, "agent"),
             "sender": "x", "source": {"a": "QUERY", "m": "MEDIA", "h": "HOST", "s": "SYSTEM"}[k],
             "content": f"{k}{i}", "paragraph": None, "trace_id": "", "timestamp": T0} for i, k in enumerate(kinds)]
    with db.session() as s:
        s.execute(insert(ForumRow), rows)


def contents(page) -> list[str]:
    return [m.content for m in page.messages]


def test_rounds_end_at_each_host_speech_and_the_rest_is_the_open_round(db):
    fill(db, "r", "aamh" "amh" "ma")
    assert count_rounds(db, "r") == 3
    first, second, newest = (round_page(db, "r", n) for n in (1, 2, None))
    assert contents(first) == ["a0", "a1", "m2", "h3"] and first.closed and first.total == 3
    assert contents(second) == ["a4", "m5", "h6"] and second.closed and not second.newest
    assert contents(newest) == ["m7", "a8"] and newest.number == 3 and newest.newest and not newest.closed
    assert contents(round_page(db, "r", 99)) == ["m7", "a8"]  # past the end: the newest
    assert contents(round_page(db, "r", 2, sources=("MEDIA", "HOST"))) == ["m5", "h6"]
    assert round_page(db, "other", None) is None and count_rounds(db, "other") == 0


def test_a_transcript_ending_with_a_speech_has_no_open_round_and_one_without_speeches_is_one_round(db):
    fill(db, "closed", "aah" "aah")
    assert count_rounds(db, "closed") == 2
    page = round_page(db, "closed")
    assert contents(page) == ["a3", "a4", "h5"] and page.closed and page.newest
    post_message(db, None, "closed", type="agent", source="QUERY", content="新的一段", dedup=False)
    assert count_rounds(db, "closed") == 3 and contents(round_page(db, "closed")) == ["新的一段"]
    fill(db, "import", "amam")
    page = round_page(db, "import")
    assert page.total == 1 and contents(page) == ["a0", "m1", "a2", "m3"] and not page.closed


def test_a_round_longer_than_the_limit_shows_its_newest_messages_and_says_how_many_are_left_out(db):
    fill(db, "long", "a" * 30 + "h")
    page = round_page(db, "long", 1, limit=10)
    assert contents(page) == [f"a{i}" for i in range(21, 30)] + ["h30"] and page.left_out == 21


def test_opening_a_long_transcript_loads_only_the_newest_round(db):
    """12 engines × 100 paragraphs, a host every 5: 240 rounds, 1,440 messages. Opening the page's
    newest round (and then an older one) loads only that round's rows, and every statement that
    reads message rows carries a LIMIT."""
    fill(db, "big", "aaaamh" * 240 + "am")
    loaded: list[int] = []
    statements: list[str] = []
    offsets: list[int] = []

    def on_load(target, _context):
        loaded.append(target.id)

    def on_execute(_conn, _cursor, statement, params, _context, _many):
        statements.append(" ".join(statement.split()))
        if "OFFSET" in statement:
            offsets.append(list(params.values() if isinstance(params, dict) else params)[-1])

    event.listen(ForumRow, "load", on_load)
    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        newest = round_page(db, "big")
        assert newest.total == 241 and contents(newest) == ["a1440", "m1441"]
        assert len(loaded) == 2
        if db.engine.dialect.name == "sqlite":  # (MySQL writes `LIMIT offset, n`, without the keyword)
            assert offsets and set(offsets) == {0}  # its host speech found from the newest end: no row skipped
        loaded.clear()
        older = round_page(db, "big", 120)
        assert contents(older) == [f"{k}{i}" for i, k in zip(range(714, 720), "aaaamh")]
        assert len(loaded) == 6
    finally:
        event.remove(ForumRow, "load", on_load)
        event.remove(db.engine, "before_cursor_execute", on_execute)
    row_reads = [s for s in statements if "forum_messages.content" in s]
    assert len(row_reads) == 2 and all("LIMIT" in s for s in row_reads), row_reads
