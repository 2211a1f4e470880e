"""The server's side of Home.py's `st.App`: what happens when `streamlit run Home.py` starts and stops.

Start: Home's imports and the runtime are prepared on a thread while the browser loads the frontend
(ui/preload.py). Stop: the runtime is closed while the server shuts down (its supervisor hands
running jobs back as `interrupted` within SHOAL_SHUTDOWN_TIMEOUT and closes its worker row), and a
SIGTERM ends the process normally (exit status 0, exit hooks run), as it did before Home.py was an
st.App.

Why the SIGTERM handler: with an st.App, Streamlit serves through `uvicorn.Server.run`, which catches
SIGTERM, shuts down gracefully, then raises the signal again with Python's default action, so the
process would die by it (status -15) without running its exit hooks. Here SIGTERM asks uvicorn to
stop the way its documentation shows for programmatic use (`server.should_exit = True`), so nothing is
raised again. If the handler in place is not uvicorn's (another server, another version), it is left
alone and the runtime is still closed by the lifespan's exit. Light on imports: Home.py imports this
module while the server starts.
"""
from __future__ import annotations

import signal
import threading
from contextlib import asynccontextmanager

from . import preload


def _graceful_sigterm() -> bool:
    """Replace uvicorn's SIGTERM handler by one that stops the server without re-raising the signal."""
    if threading.current_thread() is not threading.main_thread():
        return False
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    if server is None or not hasattr(server, "should_exit"):
        return False

    def stop(_signum, _frame) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, stop)
    return True


def _close_runtime() -> None:
    from .runtime import shutdown  # the runtime's module, only now: nothing to close if it never loaded

    shutdown()


@asynccontextmanager
async def lifespan(_app):
    _graceful_sigterm()
    preload.start()
    try:
        yield
    finally:
        _close_runtime()
