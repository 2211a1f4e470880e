"""/metrics over HTTP, once per process (prometheus_client's own server, on a daemon thread).

`serve_runtime(runtime, port)` starts the endpoint the first time and points it at `runtime`; later
calls on the same port (a runtime rebuilt after Settings › reload, or a second build in the same
process) only swap the source, so the port is bound once and never fails as "in use" by ourselves.
Another port (the setting changed) moves the endpoint; `stop()` closes it (the setting set to 0). `release(runtime)`
(from Runtime.close) detaches a closed runtime: until the next one is attached the endpoint still
answers, with the process's own figures and `shoal_scrape_error{source="database"} 1`.

Used by `python -m core worker --metrics-port N` and by the app when SHOAL_METRICS_PORT is set
(core.runtime). Port 0 picks a free port (`endpoint().port` says which).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from loguru import logger
from prometheus_client import start_http_server

from core.console.metrics import ShoalCollector, build_registry, known_pairs
from core.llm.instruments import seed

DEFAULT_ADDR = "0.0.0.0"  # Prometheus scrapes from another host; as prometheus_client's own default


@dataclass
class MetricsEndpoint:
    port: int
    addr: str
    collector: ShoalCollector
    server: Any
    thread: threading.Thread

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.addr in ("0.0.0.0", "", "::") else self.addr
        return f"http://{host}:{self.port}/metrics"


_lock = threading.Lock()
_endpoint: MetricsEndpoint | None = None


def endpoint() -> MetricsEndpoint | None:
    return _endpoint


def serve_runtime(runtime: Any, port: int, addr: str = DEFAULT_ADDR) -> MetricsEndpoint:
    """Serve /metrics for `runtime` (its db, telemetry, alerts, resources, prices, settings).
    Raises OSError when the port cannot be bound (the caller reports it)."""
    global _endpoint
    with _lock:
        if _endpoint is not None and (not port or port == _endpoint.port):
            _endpoint.collector.set_source(runtime)
            seed(known_pairs(getattr(runtime, "settings", None)))  # roles configured since the first build
            return _endpoint
        if _endpoint is not None:  # the setting changed: move to the new port
            logger.info("metrics move from port {} to {}", _endpoint.port, port)
            _close(_endpoint)
            _endpoint = None
        collector = ShoalCollector(runtime)
        registry = build_registry(collector, seeds=known_pairs(getattr(runtime, "settings", None)))
        server, thread = start_http_server(int(port), addr=addr, registry=registry)
        thread.name = "shoal-metrics"
        _endpoint = MetricsEndpoint(server.server_port, addr, collector, server, thread)
        logger.info("metrics served on {}:{}/metrics", addr, _endpoint.port)
        return _endpoint


def release(runtime: Any) -> None:
    """A closed runtime is no longer scraped (its database pool is gone)."""
    with _lock:
        if _endpoint is not None and _endpoint.collector.source is runtime:
            _endpoint.collector.set_source(None)


def stop() -> None:
    """Close the endpoint (SHOAL_METRICS_PORT turned off, tests)."""
    global _endpoint
    with _lock:
        ep, _endpoint = _endpoint, None
    if ep is not None:
        _close(ep)
        logger.info("metrics no longer served on port {}", ep.port)


def _close(ep: MetricsEndpoint) -> None:
    ep.server.shutdown()
    ep.server.server_close()
    ep.thread.join(timeout=5)
