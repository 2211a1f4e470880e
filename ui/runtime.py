"""The one runtime per process, cached by Streamlit; a stable module so the cache survives reruns.

Streamlit rebuilds a cache_resource when this file changes; leases in the database make a
short-lived duplicate supervisor harmless.
"""
from __future__ import annotations

import streamlit as st

from core.runtime import Runtime, build_runtime


def _secrets() -> dict:
    try:
        return {k: (dict(v) if hasattr(v, "items") else v) for k, v in st.secrets.items()}
    except Exception:  # noqa: BLE001 - no secrets.toml is the normal local case
        return {}


@st.cache_resource(show_spinner="Starting Shoal…")
def _cached_runtime() -> Runtime:
    return build_runtime(secrets=_secrets())


def get_runtime() -> Runtime:
    return _cached_runtime()


def reload_runtime() -> None:
    """After settings change or to retry a failed database: stop the old runtime, build anew on next use."""
    try:
        _cached_runtime().close(timeout=5)
    finally:
        _cached_runtime.clear()
