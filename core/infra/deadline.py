"""Whole-call time limits for network calls (LLM_TIMEOUT, SEARCH_TIMEOUT).

An HTTP client's read timeout bounds only the gap between two reads: a server that trickles a few
bytes every second keeps a call alive forever. `run_bounded` bounds the whole call instead:
connect, time to first byte and the full body or stream.

    def work(cut: Cut) -> str:
        with client.stream("POST", url) as response:
            cut.on_cut(lambda: cut_response(response))   # how to stop the I/O at the deadline
            try:
                for chunk in response.iter_text():
                    cut.raise_if_cut()
                    cut.received += len(chunk)            # progress, reported by the timeout
                    ...
            finally:
                cut.release()                             # before the connection goes back to the pool

    text = run_bounded(work, 10.0, what="QUERY_ENGINE LLM", setting="LLM_TIMEOUT")

The work runs in a helper thread (with the caller's context variables), one of a set kept between
calls (a new thread per call cost its start-up handshake, several switches of the interpreter's lock
while other threads are busy); the caller waits at most `seconds`. At the deadline the caller raises CallTimeout (a TimeoutError, so core.infra.retry
classifies it 'timeout' and the caller's retry policy applies), and the work's I/O is cut: the
registered hooks shut its socket down, so a blocked read ends at once, and a work loop that checks
`raise_if_cut` stops at its next chunk. A work that registered no hook (still connecting, or
waiting for the response headers) ends by its client's own timeouts; its result is thrown away.
"""
from __future__ import annotations

import contextvars
import os
import queue
import socket
import threading
from typing import Any, Callable, TypeVar

from loguru import logger

__all__ = ["CallTimeout", "Cut", "run_bounded", "cut_response"]

T = TypeVar("T")


class CallTimeout(TimeoutError):
    """A call that did not finish within its whole-call limit and was cut.

    seconds: the limit; received: the progress the work reported before the cut (characters of
    an LLM reply, bytes of a search response); setting: the setting that sets the limit."""

    def __init__(self, message: str, *, seconds: float, received: int = 0, setting: str = ""):
        super().__init__(message)
        self.seconds = seconds
        self.received = received
        self.setting = setting


class Cut:
    """What the bounded work sees: whether it was cut, where to register how to stop its I/O, and
    a progress counter (`received`) that the timeout reports."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], Any]] = []
        self.received = 0
        self.message = "the call was cut at its time limit"

    @property
    def is_cut(self) -> bool:
        return self._event.is_set()

    def on_cut(self, hook: Callable[[], Any]) -> None:
        """Run `hook` at the deadline (at once if the deadline has passed already)."""
        with self._lock:
            if not self._event.is_set():
                self._hooks.append(hook)
                return
        _run_hook(hook)

    def release(self) -> None:
        """The work's I/O is over: the hooks no longer apply. Call it before a connection goes back
        to its pool, so that a late cut never shuts down a connection another call now uses (hooks
        run under the same lock, so once this returns none is running or will run)."""
        with self._lock:
            self._hooks = []

    def raise_if_cut(self) -> None:
        if self._event.is_set():
            raise TimeoutError(self.message)

    def cut(self) -> None:
        with self._lock:  # held while the hooks run: see release()
            if self._event.is_set():
                return
            self._event.set()
            hooks, self._hooks = self._hooks, []
            for hook in hooks:
                _run_hook(hook)


def _run_hook(hook: Callable[[], Any]) -> None:
    try:
        hook()
    except Exception as exc:  # cutting is best effort: the work's own timeouts still end it
        logger.debug("cutting a timed-out call: {}: {}", type(exc).__name__, exc)


class _Workers:
    """Daemon threads that run bounded works, kept for the next call while idle (IDLE_EXIT seconds).
    A work that never returns (cut, its I/O stuck) keeps its thread: the next call gets another one."""

    IDLE_EXIT = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a work that no caller has claimed yet
        self._works: queue.SimpleQueue = queue.SimpleQueue()

    def run(self, body: Callable[[], None], name: str) -> None:
        with self._lock:
            reuse = self._idle > 0
            if reuse:
                self._idle -= 1  # claimed: one idle thread takes this work
        if reuse:
            self._works.put((body, name))
        else:
            threading.Thread(target=self._serve, args=(body,), name=name, daemon=True).start()

    def _serve(self, body: Callable[[], None]) -> None:
        me = threading.current_thread()
        while True:
            body()
            with self._lock:
                self._idle += 1
            while True:
                try:
                    body, me.name = self._works.get(timeout=self.IDLE_EXIT)
                    break
                except queue.Empty:
                    with self._lock:
                        if self._idle > 0:  # no caller claimed a thread meanwhile: this one ends
                            self._idle -= 1
                            return
                    # every idle thread was claimed: a work is on its way to one of them, maybe this one


_WORKERS = _Workers()
if hasattr(os, "register_at_fork"):  # a forked child has none of the parent's threads: it starts its own
    os.register_at_fork(after_in_child=lambda: globals().update(_WORKERS=_Workers()))


def run_bounded(work: Callable[[Cut], T], seconds: float, *, what: str = "the call", setting: str = "",
                unit: str = "bytes") -> T:
    """work(cut)'s result or exception, or CallTimeout once `seconds` have passed. `unit` names
    what the work counts in `cut.received`, for the message."""
    cut = Cut()
    limit = f"{seconds:g}s" + (f" ({setting})" if setting else "")
    cut.message = f"{what}: no complete answer within {limit}"
    box: dict[str, Any] = {}
    done = threading.Event()
    ctx = contextvars.copy_context()

    def body() -> None:
        try:
            box["value"] = ctx.run(work, cut)
        except BaseException as exc:  # handed to the caller as is
            box["error"] = exc
        finally:
            done.set()

    _WORKERS.run(body, f"bounded:{what}"[:60])
    if not done.wait(max(0.0, seconds)):
        cut.cut()
        received = cut.received
        got = f"{received} {unit} received before the cut" if received else "nothing received"
        logger.warning("{}: cut after {}, {}", what, limit, got)
        raise CallTimeout(f"{cut.message}; {got}",
                          seconds=seconds, received=received, setting=setting)
    if "error" in box:
        error = box.pop("error")
        try:
            raise error
        finally:
            del error
    return box["value"]


def cut_response(response: Any) -> None:
    """Stop an httpx (or httpx2) response's I/O from another thread: shut its socket down, so a
    read blocked on it returns at once; else close the response."""
    stream = None
    try:
        stream = (getattr(response, "extensions", None) or {}).get("network_stream")
    except Exception:
        stream = None
    sock = None
    if stream is not None:
        try:
            sock = stream.get_extra_info("socket")
        except Exception:
            sock = None
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
            return
        except OSError:
            pass
    close = getattr(response, "close", None)
    if callable(close):
        close()
