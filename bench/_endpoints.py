"""The fake LLM endpoint and web-search servers of a bench, in a child process of their own.

A real endpoint never runs inside Shoal's process. The fakes (tests/fakes) are Python HTTP servers: in
the bench's own process, their work (reading requests, writing 1,000-character answers in 32-character
chunks, about 4,000 chunks per analysis) took turns on the same interpreter lock as the engines they
answer, and every figure measured Shoal plus its fake endpoint. In a child process they use the
machine's CPU like a local endpoint would, but not Shoal's interpreter.

The child is started with "spawn" (a fresh interpreter: the parent may already run threads, which a
fork would copy mid-work), imports `module`, calls `factory(*args)` for a dict of servers, the LLM
endpoint under "llm", starts them, and answers the parent's requests over a pipe.
"""
from __future__ import annotations

import importlib
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

_BENCH = str(Path(__file__).resolve().parent)
_ROOT = str(Path(__file__).resolve().parent.parent)
_START_TIMEOUT_S = 120.0


def _serve(conn, module: str, factory: str, args: tuple) -> None:
    """The child: start the servers, tell the parent their settings, then answer until told to stop."""
    sys.path[:0] = [_BENCH, _ROOT]
    servers: dict[str, Any] = getattr(importlib.import_module(module), factory)(*args)
    for server in servers.values():
        server.start()
    llm = servers["llm"]
    try:
        conn.send({name: getattr(s, "env", None) for name, s in servers.items() if name != "llm"})
        while True:
            command, arg = conn.recv()
            if command == "stop":
                break
            if command == "env":
                conn.send(llm.env(*arg))
            elif command == "reset":
                llm.reset()
                conn.send(None)
            elif command == "requests":
                conn.send([(r.start, r.end) for r in llm.requests])
            elif command == "max_concurrency":
                conn.send(llm.max_concurrency())
            elif command == "cpu":
                conn.send(time.process_time())
    finally:
        for server in servers.values():
            server.close()


class ChildEndpoints:
    """The parent's side: `with ChildEndpoints("critical_path", "fake_endpoints", P) as fake: …`."""

    def __init__(self, module: str, factory: str, *args: Any):
        self._args = (module, factory, args)
        self._conn = None
        self._proc = None
        self.search_env: dict[str, dict] = {}  # name → that search server's settings

    def __enter__(self) -> "ChildEndpoints":
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, *self._args), name="bench-endpoints", daemon=True)
        self._proc.start()
        if not self._conn.poll(_START_TIMEOUT_S):
            raise RuntimeError("the fake endpoints did not start")
        self.search_env = self._conn.recv()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._conn.send(("stop", None))
        except OSError:
            pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()

    def _ask(self, command: str, arg: Any = None) -> Any:
        self._conn.send((command, arg))
        return self._conn.recv()

    def env(self, *roles: str) -> dict[str, str]:
        """Settings pointing these LLM roles (all when none) at the fake endpoint."""
        return self._ask("env", roles)

    def reset(self) -> None:
        self._ask("reset")

    def requests(self) -> list[tuple[float, float | None]]:
        """(start, end) of every chat request since the last reset, on the child's monotonic clock."""
        return self._ask("requests")

    def max_concurrency(self) -> int:
        return self._ask("max_concurrency")

    def cpu_seconds(self) -> float:
        """CPU seconds the fakes' process has used so far: on a 2-core machine, taken from Shoal's share."""
        return self._ask("cpu")
