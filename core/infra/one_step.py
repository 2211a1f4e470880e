"""Many rows from SQLite in one step, for the reads that run beside busy threads (the engines' searches).

Python's sqlite3 releases the GIL around every `sqlite3_step`, that is once per row, and the reading
thread gets it back only when the thread holding it lets go: at the latest after
`sys.getswitchinterval()` (5 ms). Beside other threads doing Python work (five paragraphs streaming
answers, the host, the writers), a search of ~190 candidate rows that takes 8 ms alone took 460 ms beside
one busy thread and 1.9 s beside three (the demo corpus of bench/critical_path.py, 2026-12-04). Asking SQLite for the rows as one JSON array makes the whole result one step, one
release. Other backends' drivers read a result in a few large socket reads and are left alone.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

_POS = "one_step_pos"


def rows(s: Session, stmt: Select, order_by: Sequence[Any], limit: int) -> list[tuple]:
    """The rows of `stmt` ordered by `order_by`, at most `limit`, as tuples of the values SQLAlchemy's
    column types give (a DateTime column gives a datetime): on SQLite in one step, elsewhere as usual."""
    dialect = s.get_bind().dialect
    if dialect.name != "sqlite":
        return [tuple(r) for r in s.execute(stmt.order_by(*order_by).limit(limit)).all()]
    columns = list(stmt.selected_columns)
    # SQLite writes a REAL in JSON with 15 significant digits: enough for scores and hotness.
    # JSON arrays carry no order of their own (json_group_array's order is unspecified): each row
    # carries its place, numbered by the same ordering the LIMIT used.
    inner = (stmt.add_columns(func.row_number().over(order_by=list(order_by)).label(_POS))
             .order_by(*order_by).limit(limit).subquery())
    raw = s.scalar(select(func.json_group_array(func.json_array(*inner.c))))
    processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
    out = []
    for item in sorted(json.loads(raw or "[]"), key=lambda r: r[-1]):
        out.append(tuple(v if p is None or v is None else p(v) for v, p in zip(item[:-1], processors)))
    return out
