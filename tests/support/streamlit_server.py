"""A real `streamlit run` on loopback, and helpers to drive it with Debian's Chromium.

Usage (the same shape as Streamlit's own e2e_playwright/conftest.py)::

    from playwright.sync_api import sync_playwright
    from tests.support.streamlit_server import (
        StreamlitServer, chromium_available, launch_chromium, wait_for_streamlit_idle)

    server = StreamlitServer(env={"SHOAL_DATA_DIR": str(tmp / "data"), ...}).start()
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page()
            page.goto(server.url)
            wait_for_streamlit_idle(page)
            ...
    finally:
        server.stop()          # server.log_text() has its stdout/stderr for failure messages

The server inherits the test process's environment minus Shoal's own settings and any
STREAMLIT_* overrides (so a developer's DATABASE_URL or API keys never reach the app
under test), then applies `env`. Pass `inherit_env=False` for a bare environment.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Mapping

from . import REPO_ROOT, die_with_parent, free_port, tail

CHROMIUM = "/usr/bin/chromium"

# Without the background-networking/component/sync flags Chromium keeps trying to reach
# Google services, and on a machine with a closed network its connections are refused;
# --disable-dev-shm-usage avoids crashes where /dev/shm is a small container tmpfs.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

# Variables never inherited by the app under test: Shoal's settings (the names in
# core/infra/config.py SPECS) and Streamlit's own config overrides. Tests pass what they need.
_SCRUB_EXACT = {"DATABASE_URL", "SEARCH_TIMEOUT", "LLM_TIMEOUT", "RETRY_MAX_SECONDS", "FORUM_HOST_EVERY"}
_SCRUB_RE = re.compile(
    r"^(SHOAL_(?!TEST_)|STREAMLIT_|TAVILY_|BOCHA_|DB_|"
    r"(QUERY_ENGINE|MEDIA_ENGINE|INSIGHT_ENGINE|REPORT_ENGINE|FORUM_HOST|KEYWORD_OPTIMIZER)_)"
)


def chromium_available() -> tuple[bool, str]:
    """(usable, reason) for the Playwright tests."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return False, (
            f"{CHROMIUM} not found: install Debian's chromium and fonts-wqy-microhei "
            "(`bash scripts/test.sh` does it when run as root)"
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False, "playwright is not installed (pip install -r requirements-dev.txt)"
    return True, ""


def scrubbed_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SCRUB_EXACT and not _SCRUB_RE.match(k)}


class StreamlitServerError(RuntimeError):
    pass


class StreamlitServer:
    """`python -m streamlit run SCRIPT` on 127.0.0.1:<free port>, headless."""

    def __init__(
        self,
        script: str | os.PathLike[str] = "Home.py",
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        port: int | None = None,
        startup_timeout: float = 60.0,
        log_path: str | os.PathLike[str] | None = None,
        extra_args: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.cwd = Path(cwd) if cwd is not None else REPO_ROOT
        script_path = Path(script)
        self.script = script_path if script_path.is_absolute() else (self.cwd / script_path)
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.requested_port = port
        self.port: int | None = None
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path is not None else None
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._own_log_dir: Path | None = None

    @property
    def url(self) -> str:
        if self.port is None or self.proc is None:
            raise StreamlitServerError("StreamlitServer is not started")
        return f"http://127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        return [
            sys.executable, "-m", "streamlit", "run", str(self.script),
            "--server.headless", "true",
            "--server.port", str(port),
            "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
            "--server.runOnSave", "false",
            *self.extra_args,
        ]

    def start(self) -> "StreamlitServer":
        if self.proc is not None:
            return self
        if not self.script.is_file():
            raise StreamlitServerError(f"no such Streamlit script: {self.script}")
        if self.log_path is None:
            self._own_log_dir = Path(tempfile.mkdtemp(prefix="shoal-streamlit-"))
            self.log_path = self._own_log_dir / "streamlit.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = scrubbed_environ() if self.inherit_env else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update(self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("PYTHONIOENCODING", "utf-8")

        began = time.monotonic()
        last_error = ""
        for _attempt in range(3 if self.requested_port is None else 1):
            port = self.requested_port or free_port()
            ok, last_error = self._spawn_and_wait(port, env)
            if ok:
                self.port = port
                self.startup_seconds = time.monotonic() - began
                atexit.register(self.stop)
                return self
            if "already in use" not in last_error:
                break
        raise StreamlitServerError(last_error)

    def _spawn_and_wait(self, port: int, env: dict[str, str]) -> tuple[bool, str]:
        assert self.log_path is not None
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.command(port))}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(port), cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
            )
        health = f"http://127.0.0.1:{port}/_stcore/health"
        deadline = time.monotonic() + self.startup_timeout
        last_exc: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                return False, f"streamlit exited with {code} during startup:\n{self.log_text()}"
            try:
                with urllib.request.urlopen(health, timeout=2) as resp:  # noqa: S310 - loopback
                    if resp.status == 200 and resp.read().decode().strip() == "ok":
                        return True, ""
            except (urllib.error.URLError, OSError) as exc:
                last_exc = exc
            time.sleep(0.2)
        self._terminate()
        return False, (
            f"streamlit did not answer {health} with 'ok' within {self.startup_timeout:.0f} s "
            f"(last error: {last_exc}):\n{self.log_text()}"
        )

    def _terminate(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        """Terminate (SIGTERM, wait 15 s, SIGKILL). The log file is kept unless it was our temp."""
        self._terminate()
        self.port = None

    def cleanup(self) -> None:
        """stop() and delete the log when it lives in a temp dir this object made."""
        self.stop()
        if self._own_log_dir is not None:
            import shutil

            shutil.rmtree(self._own_log_dir, ignore_errors=True)
            self._own_log_dir = None

    def log_text(self, max_chars: int = 6000) -> str:
        if self.log_path is None:
            return "(no log)"
        return tail(self.log_path, max_chars)

    def __enter__(self) -> "StreamlitServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def launch_chromium(playwright: Any, **kwargs: Any) -> Any:
    """Launch Debian's /usr/bin/chromium headless through Playwright (no browser download)."""
    args = list(CHROMIUM_ARGS) + list(kwargs.pop("args", []))
    return playwright.chromium.launch(
        executable_path=kwargs.pop("executable_path", CHROMIUM),
        headless=kwargs.pop("headless", True),
        args=args,
        **kwargs,
    )


@contextlib.contextmanager
def chromium_browser(**kwargs: Any) -> Iterator[Any]:
    """A headless Chromium for a test module's fixture: skipped (or failed, when the test command
    installed it) where it cannot run, closed after."""
    from playwright.sync_api import sync_playwright

    from . import skip_or_fail

    usable, reason = chromium_available()
    if not usable:
        skip_or_fail(reason)
    with sync_playwright() as pw:
        chromium = launch_chromium(pw, **kwargs)
        try:
            yield chromium
        finally:
            chromium.close()


_APP = '[data-testid="stApp"]'


def wait_for_streamlit_idle(page: Any, timeout: float = 30.0, *, settle: float = 0.3) -> None:
    """Wait until the app is connected and its script is not running, stably for `settle` s.

    Streamlit 1.67's frontend puts the state on the root element:
    `<div data-testid="stApp" data-test-connection-state="CONNECTED"
    data-test-script-state="initial|running|notRunning|rerunRequested|stopRequested|compilationError">`
    (`initial` until the first run starts). This is what Streamlit's own e2e tests wait on.

    After a click, a rerun starts only when the server's reply arrives; `settle` covers that
    gap, but assertions should still use Playwright's auto-waiting `expect(...)` on the
    content they expect.
    """
    deadline = time.monotonic() + timeout

    def remaining_ms() -> float:
        return max(1.0, (deadline - time.monotonic()) * 1000)

    page.wait_for_selector(f'{_APP}[data-test-connection-state="CONNECTED"]', state="attached",
                           timeout=remaining_ms())
    while True:
        page.wait_for_selector(
            f'{_APP}[data-test-script-state="notRunning"], {_APP}[data-test-script-state="compilationError"]',
            state="attached", timeout=remaining_ms(),
        )
        state = page.get_attribute(_APP, "data-test-script-state")
        if state == "compilationError":
            raise AssertionError("the Streamlit script failed to compile (data-test-script-state=compilationError)")
        page.wait_for_timeout(settle * 1000)
        if page.get_attribute(_APP, "data-test-script-state") == "notRunning":
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"Streamlit app still running after {timeout} s")


__all__ = [
    "CHROMIUM", "CHROMIUM_ARGS", "StreamlitServer", "StreamlitServerError", "chromium_available",
    "launch_chromium", "scrubbed_environ", "wait_for_streamlit_idle",
]
