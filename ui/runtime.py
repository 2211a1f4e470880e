"""The one runtime per process, cached by Streamlit; a stable module so the cache survives reruns.

Streamlit rebuilds a cache_resource when this file changes; leases in the database make a
short-lived duplicate supervisor harmless.
"""
from __future__ import annotations

import streamlit as st

from core.runtime import Runtime, build_runtime

_built: list[Runtime] = []  # runtimes this module built, so reload can close them before a rebuild


def _secrets() -> dict:
    try:
        return {k: (dict(v) if hasattr(v, "items") else v) for k, v in st.secrets.items()}
    except Exception:  # noqa: BLE001 - no secrets.toml is the normal local case
        return {}


# The spinner is get_runtime's, not the cache's: ui.preload builds the runtime on a thread of its own
# at server start, where a spinner has no page to show on.
@st.cache_resource(show_spinner=False)
def _cached_runtime() -> Runtime:
    runtime = build_runtime(secrets=_secrets())
    _built.append(runtime)
    return runtime


def get_runtime() -> Runtime:
    if not _built:  # about to be built (first page, after reload_runtime): say so
        with st.spinner("Starting Shoal…"):
            return _cached_runtime()
    return _cached_runtime()


def prebuild() -> Runtime:
    """The runtime, built now if it is not yet, off any page (ui.preload, at server start)."""
    return _cached_runtime()


def reload_runtime(timeout: float = 5.0) -> None:
    """After settings change or to retry a failed database: stop the old runtime; the next use builds anew."""
    _cached_runtime.clear()
    while _built:
        _built.pop().close(timeout=timeout)


def shutdown() -> None:
    """The server is stopping (ui.app_server): close the runtimes built here, so their supervisors hand
    running jobs back. They stay cached: a page still running meanwhile gets the closed one, not a new one."""
    for runtime in list(_built):
        runtime.close()
