"""Test support: real servers started as child processes for the tests.

- `tests.support.mariadb`: a throwaway MariaDB server (or `SHOAL_TEST_MYSQL_URL`).
- `tests.support.streamlit_server`: `streamlit run` on a free loopback port, plus
  helpers for driving Debian's headless Chromium through Playwright.

Both are plain classes so `tests/conftest.py` decides the fixture scopes.

When a needed system tool (mariadbd, /usr/bin/chromium) is missing, tests call
`skip_or_fail(reason)`: a skip with that reason, unless `SHOAL_TEST_REQUIRE_SYSTEM_DEPS=1`
(set by `scripts/test.sh` when it ran as root and so installed them), where a missing
tool means the install is broken and the test fails instead of silently skipping.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

__all__ = ["REPO_ROOT", "free_port", "skip_or_fail", "system_deps_required", "die_with_parent", "tail"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the caller retries if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def system_deps_required() -> bool:
    return os.environ.get("SHOAL_TEST_REQUIRE_SYSTEM_DEPS", "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip the calling test because a system tool is missing, or fail if it must be there."""
    import pytest

    if system_deps_required():
        pytest.fail(f"{reason} (SHOAL_TEST_REQUIRE_SYSTEM_DEPS=1: scripts/test.sh should have installed it)")
    pytest.skip(reason)


def die_with_parent() -> None:
    """preexec_fn for Popen: the child gets SIGTERM when the test process dies.

    A safety net for hard exits (pytest-timeout's thread method, a killed runner) that
    would otherwise leave mariadbd or streamlit running. Linux only; a no-op elsewhere.
    Note: the signal fires when the *thread* that started the child exits, so start
    servers from the main thread (pytest fixtures do).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort only
        pass


def end_process(proc, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Send `sig` to a server process and wait for it; killed if it has not ended in `timeout` s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def tail(path: Path | str, max_chars: int = 4000) -> str:
    """The end of a log file, for failure messages."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    if len(text) > max_chars:
        text = "…" + text[-max_chars:]
    return text
