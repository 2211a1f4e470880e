"""core.infra.one_step: a select's rows read in one step on SQLite give what the usual read gives, on
every backend, in the same order and with the same Python types."""
from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import event, select

from core.infra import one_step
from core.infra.models import Post

AWKWARD = ['引号 " 和 \\ 反斜杠', "换行\n和\t制表", "emoji 🐟 ☕", "", "ordinary text"]


def _posts(db, n: int = 30) -> None:
    with db.session() as s:
        for i in range(n):
            s.add(Post(platform=("weibo", "zhihu")[i % 2], post_id=f"p{i}", kind="post" if i % 3 else "comment",
                       parent_id=None if i % 3 else f"p{i - 1}", title=AWKWARD[i % len(AWKWARD)],
                       content=f"内容 {i} " + AWKWARD[(i + 1) % len(AWKWARD)], content_seg=f"内容 {i}",
                       publish_time=None if i % 7 == 0 else datetime(2026, 1, 1 + i % 5, 8, i, 30, 123456),
                       likes=(i * 37) % 11, sentiment=None if i % 4 == 0 else (i % 10) / 9.0,
                       extras={"i": i, "tags": ["a", AWKWARD[i % len(AWKWARD)]]} if i % 2 else {}))


COLUMNS = (Post.id, Post.title, Post.content, Post.publish_time, Post.likes, Post.sentiment, Post.parent_id,
           Post.extras)


def _same(got: list[tuple], want: list[tuple]) -> bool:
    """Equal, a REAL to 15 significant digits (what SQLite writes in JSON; one_step says so)."""
    return len(got) == len(want) and all(
        len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-14) if isinstance(y, float) else x == y
                                 for x, y in zip(a, b))
        for a, b in zip(got, want))


def _usual(db, stmt, order_by, limit):
    with db.session() as s:
        return [tuple(r) for r in s.execute(stmt.order_by(*order_by).limit(limit)).all()]


def test_rows_match_the_usual_read_in_order_values_and_types(db):
    _posts(db)
    stmt = select(*COLUMNS).where(Post.likes >= 0)
    for order_by, limit in (([Post.likes.desc(), Post.id.desc()], 12), ([Post.id], 100), ([Post.title, Post.id], 5)):
        with db.session() as s:
            got = one_step.rows(s, stmt, order_by, limit)
        want = _usual(db, stmt, order_by, limit)
        assert _same(got, want), (got, want)
        assert len(got) == min(limit, 30)
    dated = [r for r in got if r[3] is not None]
    assert all(isinstance(r[3], datetime) and r[3].microsecond == 123456 for r in dated)


def test_no_rows_is_an_empty_list(db):
    with db.session() as s:
        assert one_step.rows(s, select(*COLUMNS), [Post.id], 10) == []


def test_on_sqlite_the_rows_come_as_one_statement_of_one_row(db):
    if db.backend != "sqlite":
        return  # the other drivers read a result in a few large socket reads; nothing to change there
    _posts(db)
    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda conn, cur, statement, *a: seen.append(statement))
    with db.session() as s:
        got = one_step.rows(s, select(Post.id, Post.title), [Post.id.desc()], 20)
    assert len(got) == 20 and [r[0] for r in got] == sorted((r[0] for r in got), reverse=True)
    assert len(seen) == 1 and "json_group_array" in seen[0]
