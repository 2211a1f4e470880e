"""Trace ids: one per run, a child per job and node, carried in a context variable.

Every log record, event and LLM call reads the current id from here, so they can be tied
together in the console. Thread pools do not copy context by themselves: use `run_in_context`.
"""
from __future__ import annotations

import contextvars
import secrets
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("shoal_trace_id", default="")


def new_trace_id() -> str:
    return secrets.token_hex(8)


def child_trace_id(parent: str | None = None) -> str:
    """A child id shows its parent as a prefix: `<run trace>.<job>.<node>`."""
    parent = parent if parent is not None else _current.get()
    return f"{parent}.{secrets.token_hex(3)}" if parent else new_trace_id()


def current_trace_id() -> str:
    return _current.get()


@contextmanager
def trace_scope(trace_id: str) -> Iterator[str]:
    token = _current.set(trace_id)
    try:
        yield trace_id
    finally:
        _current.reset(token)


def run_in_context(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap fn so that, run on another thread, it sees the caller's trace id."""
    ctx = contextvars.copy_context()

    def runner(*args, **kwargs):
        return ctx.copy().run(fn, *args, **kwargs)

    return runner
