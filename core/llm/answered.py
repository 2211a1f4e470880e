"""Which llm_calls rows answered inside a block: for callers that get only a reasoner's text.

    with answered_calls() as calls:
        summary = reasoner.first_summary(...)      # any LlmClient calls made in this context
    call_id = calls[-1].call_id if calls else None  # the row of the last answered call

core.llm.client reports every call it records with status ok (``note_answered``); a block sees
the calls made in its own context (thread), oldest first. The forum message of a paragraph
summary names the call that wrote it this way.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

__all__ = ["answered_calls", "note_answered"]

_answered: ContextVar[list | None] = ContextVar("shoal_llm_answered", default=None)


@contextmanager
def answered_calls() -> Iterator[list[Any]]:
    """The LlmResults answered inside the block, in this context, oldest first."""
    calls: list[Any] = []
    token = _answered.set(calls)
    try:
        yield calls
    finally:
        _answered.reset(token)


def note_answered(result: Any) -> None:
    answered = _answered.get()
    if answered is not None:
        answered.append(result)
