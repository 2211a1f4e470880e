"""A scripted HTTP server on 127.0.0.1 for tests that need real HTTP, not mocks.

Each path gets a queue of replies, served in order; `then=` is what the path answers once the
queue is empty (else a 404 that says nothing was scripted, which no retry layer retries, so a
missing script fails loudly). A reply can be a status with headers and a JSON or raw body, a
delay before answering (a stall past the client's timeout), a dropped connection with no
response at all, or a chunked stream that can be cut midway. A reply can also be a function of
the request, for servers that echo or compute. Every request is recorded.

    with FakeHTTPServer() as srv:
        srv.script("/v1/chat/completions", Reply(429, headers={"Retry-After": "1"}), Reply(200, json=body))
        srv.always("/health", Reply(200, json={"ok": True}))
        httpx.post(srv.url + "/v1/chat/completions", json={...})
        assert len(srv.requests_to("/v1/chat/completions")) == 1

Fake OpenAI-compatible and search servers are meant to be built on this (script per path, or a
callable reply that reads `request.json()`).
"""
from __future__ import annotations

import json as jsonlib
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, Mapping, Sequence, Union
from urllib.parse import parse_qs, urlsplit

import pytest

# Broken pipe, reset, timeout: all OSError. The client hanging up is normal here, not a failure.
_DISCONNECTS = (OSError,)


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    status/headers/json/body: the response (json wins over body; body may be malformed on
        purpose, e.g. b'{"choices": [').
    delay: seconds to wait before answering, to stall past a client timeout.
    drop: close the connection without sending any response (after `delay`).
    chunks: send the body as a chunked stream, one write per item (SSE lines, for instance),
        `chunk_delay` seconds apart; `drop_after_chunks=n` cuts the connection after n chunks,
        without the terminating chunk, as a dropped stream does. Each streamed reply is recorded
        as a StreamRecord (`FakeHTTPServer.streams`): bytes sent of the total, and how it ended.
    """
    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    chunks: Sequence[bytes | str] | None = None
    chunk_delay: float = 0.0
    drop_after_chunks: int | None = None
    content_type: str | None = None

    def payload(self) -> bytes:
        if self.json is not None:
            return jsonlib.dumps(self.json).encode()
        if self.body is None:
            return b""
        return self.body.encode() if isinstance(self.body, str) else bytes(self.body)

    def default_content_type(self) -> str:
        if self.content_type:
            return self.content_type
        if self.chunks is not None:
            return "text/event-stream"
        return "application/json" if self.json is not None else "text/plain; charset=utf-8"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str            # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    time: float          # time.monotonic() when the request had been read

    def json(self) -> Any:
        return jsonlib.loads(self.body.decode() or "null")

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class StreamRecord:
    """One chunked reply as the server sent it. `ended`: 'complete', 'dropped' (by the script) or
    'client_gone' (a write failed: the client closed the connection); None while streaming."""
    path: str
    total: int           # bytes of the whole body
    sent: int = 0        # bytes written so far
    ended: str | None = None


Responder = Union[Reply, Callable[[RecordedRequest], Reply]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do: pooled connections get exercised
    timeout = 30                   # an idle keep-alive connection frees its thread eventually
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except _DISCONNECTS:
            pass
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        request = RecordedRequest(method=self.command, path=split.path, query=parse_qs(split.query),
                                  headers={k.lower(): v for k, v in self.headers.items()},
                                  body=self._read_body(), time=time.monotonic())
        reply = fake._next_reply(request)
        if reply.delay and fake._closing.wait(reply.delay):
            return self._drop()
        if reply.drop:
            return self._drop()
        record = None
        if reply.chunks is not None:
            total = sum(len(c.encode() if isinstance(c, str) else bytes(c)) for c in reply.chunks)
            record = StreamRecord(request.path, total)
            with fake._lock:
                fake._streams.append(record)
        try:
            if reply.chunks is not None:
                self._stream(reply, record)
            else:
                self._send(reply)
        except _DISCONNECTS:  # the client gave up (its timeout fired) while we stalled
            self.close_connection = True
            if record is not None:
                record.ended = "client_gone"

    def _send(self, reply: Reply) -> None:
        data = reply.payload()
        self.send_response(reply.status)
        self._headers(reply, {"Content-Type": reply.default_content_type(), "Content-Length": str(len(data))})
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def _stream(self, reply: Reply, record: "StreamRecord") -> None:
        self.send_response(reply.status)
        self._headers(reply, {"Content-Type": reply.default_content_type(), "Transfer-Encoding": "chunked",
                              "Cache-Control": "no-cache"})
        self.wfile.flush()
        fake = self.server.fake
        for i, chunk in enumerate(reply.chunks or ()):
            if reply.drop_after_chunks is not None and i >= reply.drop_after_chunks:
                record.ended = "dropped"
                return self._drop()
            if i and reply.chunk_delay and fake._closing.wait(reply.chunk_delay):
                record.ended = "dropped"
                return self._drop()
            data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            if data:  # an empty chunk would end the stream
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                record.sent += len(data)
        if reply.drop_after_chunks is not None and reply.drop_after_chunks <= len(reply.chunks or ()):
            record.ended = "dropped"
            return self._drop()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        record.ended = "complete"

    def _headers(self, reply: Reply, defaults: dict[str, str]) -> None:
        given = {k.lower() for k in reply.headers}
        for name, value in defaults.items():
            if name.lower() not in given:
                self.send_header(name, value)
        for name, value in reply.headers.items():
            self.send_header(name, str(value))
        self.end_headers()

    def _drop(self) -> None:
        """Close without a (complete) response: the client sees a disconnect, not a status."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except _DISCONNECTS:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    fake: "LoopbackServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # a client hanging up (reset, broken pipe) is normal here
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """The life cycle every fake shares: a threading HTTP server on 127.0.0.1 with an ephemeral port,
    started and closed (waking stalled handlers and dropping open connections) by the test.

    A subclass sets `handler` (a BaseHTTPRequestHandler whose `self.server.fake` is the fake) and
    `thread_name`."""

    handler: type = None  # type: ignore[assignment]
    thread_name = "fake-http"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._last_port: int | None = None

    def start(self):
        if self._server is None:
            self._closing.clear()
            self._server = _Server((self._host, self._port), self.handler)
            self._server.fake = self
            self._last_port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"{self.thread_name}-{self.port}", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._server is None:
            return
        self._closing.set()  # wakes stalled handlers so they drop instead of lingering
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The bound port (still known after close, for assertions)."""
        if self._server is not None:
            return self._server.server_address[1]
        if self._last_port is None:
            raise RuntimeError("server not started")
        return self._last_port

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)


class FakeHTTPServer(LoopbackServer):
    """Scripted HTTP server on 127.0.0.1 with an ephemeral port. Use as a context manager."""

    handler = _Handler
    thread_name = "fake-http"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self._queues: dict[str, deque[Responder]] = {}
        self._fallbacks: dict[str, Responder] = {}
        self._requests: list[RecordedRequest] = []
        self._streams: list[StreamRecord] = []
        self.unscripted: list[RecordedRequest] = []

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash: f"{srv.url}/v1"."""
        return f"http://{self._host}:{self.port}"

    # scripting -------------------------------------------------------------------------------
    def script(self, path: str, *replies: Responder, then: Responder | None = None) -> "FakeHTTPServer":
        """Queue replies for `path` (any method; "*" for any path), served once each, in order.
        `then` answers every request after the queue is empty."""
        with self._lock:
            self._queues.setdefault(path, deque()).extend(replies)
            if then is not None:
                self._fallbacks[path] = then
        return self

    def always(self, path: str, reply: Responder) -> "FakeHTTPServer":
        return self.script(path, then=reply)

    def reset(self) -> None:
        with self._lock:
            self._queues.clear()
            self._fallbacks.clear()
            self._requests.clear()
            self._streams.clear()
            self.unscripted.clear()

    # inspection ------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def streams(self) -> list[StreamRecord]:
        """The chunked replies sent, in order (live records: `sent` and `ended` change)."""
        with self._lock:
            return list(self._streams)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method.upper())]

    def wait_for_requests(self, n: int, path: str | None = None, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least n requests (to `path`) arrived; for clients on other threads."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests if path is None else self.requests_to(path)
            if len(got) >= n or time.monotonic() >= deadline:
                return got
            time.sleep(0.01)

    # internals -------------------------------------------------------------------------------
    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            responder: Responder | None = None
            for key in (request.path, "*"):
                queue = self._queues.get(key)
                if queue:
                    responder = queue.popleft()
                    break
                if key in self._fallbacks:
                    responder = self._fallbacks[key]
                    break
            if responder is None:
                self.unscripted.append(request)
        if responder is None:
            return Reply(404, json={"error": {"message": f"fake server: nothing scripted for "
                                                         f"{request.method} {request.path}"}})
        return responder(request) if callable(responder) else responder

@pytest.fixture
def fake_http_server() -> Iterator[FakeHTTPServer]:
    """A started FakeHTTPServer, closed after the test. Import it into a test module or conftest."""
    with FakeHTTPServer() as srv:
        yield srv
