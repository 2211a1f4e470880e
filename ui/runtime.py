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


@st.cache_resource(show_spinner="Starting Shoal…")
def _cached_runtime() -> Runtime:
    runtime = build_runtime(secrets=_secrets())
    _built.append(runtime)
    return runtime


def get_runtime() -> Runtime:
    return _cached_runtime()


def reload_runtime(timeout: float = 5.0) -> None:
    """After settings change or to retry a failed database: stop the old runtime; the next use builds anew."""
    _cached_runtime.clear()
    while _built:
        _built.pop().close(timeout=timeout)
