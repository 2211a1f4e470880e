"""loguru, configured once per process: per-source files, trace ids, redaction, stdlib bridge.

Files in the log folder:
  app.log              everything
  query.log / media.log / insight.log   one structured log per engine (`logger.bind(sink="query")`)
  report.log           the report engine
  knowledge_query.log  every knowledge/search query (long text truncated by the caller)
  forum.log            written by core.forum in BettaFish's line format, not through these sinks
Each file rotates by size, keeps rotated files for a retention period, and compresses them.
"""
from __future__ import annotations

import inspect
import logging
import shutil
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from core.infra.redact import redact, register_secrets
from core.infra.tracing import current_trace_id

ENGINE_SINKS = ("query", "media", "insight", "report", "knowledge_query")
FORMAT = ("{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {extra[trace_id]: <16} | "
          "{extra[sink]: <7} | {name}:{function}:{line} - {message}")

_lock = threading.Lock()


@dataclass
class LoggingState:
    configured: bool = False
    log_dir: Path | None = None
    writable: bool = False
    problem: str = ""
    handler_ids: list[int] = field(default_factory=list)


state = LoggingState()


def _patch(record) -> None:
    """Runs for every record before any sink: add the trace id, redact message and traceback."""
    extra = record["extra"]
    # The configured default is "-", so "-" means "not bound": take the context's id then.
    if extra.get("trace_id") in (None, "", "-"):
        extra["trace_id"] = current_trace_id() or "-"
    extra.setdefault("sink", "app")
    record["message"] = redact(record["message"])
    exc = record["exception"]
    if exc is not None and exc.type is not None:
        # Format the traceback here so it can be redacted; loguru's own rendering happens
        # later in each sink, out of our reach. diagnose=False keeps variable values out.
        text = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
        record["message"] = record["message"] + "\n" + redact(text).rstrip()
        record["exception"] = None


class InterceptHandler(logging.Handler):
    """Send stdlib logging (SQLAlchemy, httpx, openai, streamlit) into loguru (loguru's recipe)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


class DiskGuard:
    """Pauses the file sinks while the log folder's disk is nearly full, and resumes them when space
    comes back. loguru would otherwise print a multi-line "Logging error" report to stderr for every
    record it fails to write (and a traceback at exit), burying the one line that matters."""

    MIN_FREE_BYTES = 256 * 1024
    CHECK_EVERY_S = 0.1

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.paused = False
        self._checked = 0.0
        self._lock = threading.Lock()

    def ok(self, _record=None) -> bool:
        now = time.monotonic()
        if now - self._checked >= self.CHECK_EVERY_S:
            with self._lock:
                self._checked = now
                try:
                    free = shutil.disk_usage(self.log_dir).free
                except OSError:
                    free = 0
                low = free < self.MIN_FREE_BYTES
                if low != self.paused:
                    self.paused = low
                    # Straight to stderr: logging from inside a sink filter would re-enter loguru.
                    print(f"shoal: log folder {self.log_dir} has {free:,} bytes free; file logging "
                          + ("paused until space is freed (stderr still gets warnings)" if low else "resumed"),
                          file=sys.stderr, flush=True)
                    state.problem = f"log folder {self.log_dir} is full; file logging paused" if low else ""
        return not self.paused


class StderrSink:
    """The process's stderr as it is at each write, not as it was when the sink was added: a host that
    swaps sys.stderr (pytest's capture, closed after each test; a supervisor redirecting output)
    would otherwise leave the sink writing to a closed file ("I/O operation on closed file")."""

    def write(self, message: str) -> None:
        sys.stderr.write(message)

    def flush(self) -> None:
        sys.stderr.flush()


def _sink_filter(name: str, guard: DiskGuard):
    return lambda record: record["extra"].get("sink") == name and guard.ok()


def setup_logging(log_dir: Path, level: str = "INFO", rotation: str = "20 MB", retention: str = "14 days",
                  secrets: list[str] | None = None, console: bool = True) -> LoggingState:
    """Configure loguru for the process. Safe to call again (settings changed): sinks are replaced.

    An unwritable folder is not fatal: logging continues on stderr and `state.problem` says why.
    """
    with _lock:
        register_secrets(secrets or [])
        logger.remove()
        logger.configure(patcher=_patch, extra={"trace_id": "-", "sink": "app"})
        state.handler_ids = []
        state.problem = ""
        if console:
            state.handler_ids.append(logger.add(StderrSink(), level="WARNING", format=FORMAT, diagnose=False,
                                                backtrace=False, colorize=sys.stderr.isatty()))
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            probe = log_dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
            common = dict(level=level, format=FORMAT, rotation=rotation, retention=retention,
                          compression="gz", encoding="utf-8", enqueue=False, diagnose=False, backtrace=False,
                          delay=True)
            guard = DiskGuard(log_dir)
            state.handler_ids.append(logger.add(log_dir / "app.log", filter=guard.ok, **common))
            for name in ENGINE_SINKS:
                state.handler_ids.append(logger.add(log_dir / f"{name}.log", filter=_sink_filter(name, guard),
                                                    **common))
            state.writable = True
        except OSError as exc:
            state.writable = False
            state.problem = f"log folder {log_dir} is not writable ({exc.strerror or exc}); logging to stderr only"
            if not console:
                state.handler_ids.append(logger.add(StderrSink(), level=level, format=FORMAT, diagnose=False,
                                                    colorize=sys.stderr.isatty()))
            logger.warning(state.problem)
        state.log_dir = log_dir
        state.configured = True
        logging.basicConfig(handlers=[InterceptHandler()], level=logging.INFO, force=True)
        # httpx2: the HTTP client the openai SDK uses (a line per request otherwise, on every LLM call)
        for noisy in ("httpx", "httpx2", "httpcore", "urllib3", "watchdog", "openai._base_client"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        return state


def engine_logger(sink: str):
    """A logger whose records go to logs/<sink>.log as well as app.log."""
    return logger.bind(sink=sink)
