"""A fake OpenAI-compatible server: real HTTP on 127.0.0.1, streaming and not, with faults.

    with FakeOpenAI(responder=lambda req: f"echo: {req.user}") as llm:
        client = openai.OpenAI(base_url=llm.url, api_key="sk-test")      # llm.url ends in /v1
        ...
        assert llm.requests[0].model == "fake-model"

    llm.script("first answer", FakeReply.rate_limit(retry_after=0), {"a": 1})   # served in order
    llm.env("QUERY_ENGINE")   # {"QUERY_ENGINE_API_KEY": ..., "_BASE_URL": llm.url, "_MODEL_NAME": ...}

What it serves:
  POST /v1/chat/completions  streaming (SSE `data: {...}` chunks, a usage chunk when the request
                             asks with stream_options.include_usage, `data: [DONE]`) or one JSON
                             body; usage counts characters (prompt: every message's content;
                             completion: the content sent), so tests can assert exact numbers.
  GET  /v1/models            the configured model (or `listed_models` when set); 401 when the
                             server has an `api_key` and the request's bearer key differs.

What answers a chat request, in order: the next scripted reply (`script`), else `responder(req)`,
else `default`. A reply is a str (the content), a dict or list (sent as JSON text: handy for
nodes that parse JSON), or a FakeReply for latency and faults:
  FakeReply.rate_limit(retry_after)   429 with Retry-After
  FakeReply.error(503) / (500)        server error
  FakeReply.unauthorized()            401
  FakeReply.stall(seconds)            nothing at all for `seconds`, then the connection closes
  FakeReply.trickle(content, chars, every)  a stream of `chars` characters every `every` seconds
  FakeReply.malformed()               a 200 whose body (or SSE data) is broken JSON
  FakeReply.dropped(content, after=2) a stream cut after `after` content chunks
  FakeReply.no_usage(content)         no usage anywhere
  FakeReply.unstreamed(content)       one JSON body even when the request asked to stream
  FakeReply.error_event(after=1)      an SSE `{"error": ...}` event in the middle of the stream
  FakeReply.thinking(content, think)  content behind "<think>…</think>"

A local server (`FakeOpenAI(local=True)`, like llama.cpp's or Ollama's on a small machine): one
chat request at a time (the next waits for the one before to end), no usage anywhere (the client
must estimate), replies cut at the request's `max_tokens` (one token per character here, with
finish_reason "length"), and, unless a script or responder says otherwise, a rambling prose answer
that is no JSON at all (LOCAL_PROSE).

Every chat request is recorded as a ChatRequest with monotonic `start` (request read) and `end`
(last byte sent, or connection dropped) so tests can prove parallelism: `max_concurrency()`, and
`sent_chars`, the content characters the server managed to send (a cut stream sent fewer).
"""
from __future__ import annotations

import json as jsonlib
import socket
import threading
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Iterator, Mapping, Union

import pytest

from tests.fakes.http_server import LoopbackServer

__all__ = ["FakeOpenAI", "FakeReply", "ChatRequest", "fake_openai", "count_tokens", "LOCAL_PROSE"]

DEFAULT_MODEL = "fake-model"
DEFAULT_KEY = "sk-fake-0123456789abcdef"
# What a small local model says when asked for JSON: prose, and more of it than any node allows.
LOCAL_PROSE = ("Sure! Here is my analysis of the topic. First of all, it is important to consider the many "
               "perspectives involved, since public opinion is shaped by a wide range of factors. " * 40)


def count_tokens(text: str) -> int:
    """The fake's tokenizer: one token per character. Deterministic, so tests assert exact counts."""
    return len(text or "")


@dataclass(frozen=True)
class FakeReply:
    """One answer of the fake. Most tests use the classmethods below."""
    content: str = ""
    status: int = 200
    error_message: str = ""             # message of an error body (status >= 400)
    error_type: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    latency: float | None = None        # before the first token (or the whole body); None: server default
    chunk_delay: float | None = None    # between content chunks; None: server default
    chunk_chars: int | None = None      # characters per content chunk; None: server default
    usage: bool = True                  # send usage (non-streaming always has it unless False)
    prompt_tokens: int | None = None    # override the counted usage
    completion_tokens: int | None = None
    cached_tokens: int | None = None    # usage.prompt_tokens_details.cached_tokens (prompt-cache hits)
    think: str | None = None            # wrap: "<think>{think}</think>" before the content
    stall_for: float | None = None      # send nothing for this long, then close the connection
    drop_after: int | None = None       # streaming: close after this many content chunks
    broken_json: bool = False           # a 200 with a broken JSON body / SSE data line
    ignore_stream: bool = False         # answer a streaming request with one JSON body (some servers do)
    error_event_after: int | None = None  # streaming: an SSE `{"error": ...}` event after this many chunks
    finish_reason: str = "stop"

    # factories ------------------------------------------------------------------------------
    @classmethod
    def text(cls, content: str, **kw: Any) -> "FakeReply":
        return cls(content=content, **kw)

    @classmethod
    def json(cls, value: Any, **kw: Any) -> "FakeReply":
        return cls(content=jsonlib.dumps(value, ensure_ascii=False), **kw)

    @classmethod
    def rate_limit(cls, retry_after: float | None = 0, message: str = "Rate limit reached, slow down") -> "FakeReply":
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return cls(status=429, error_message=message, error_type="rate_limit_exceeded", headers=headers)

    @classmethod
    def error(cls, status: int = 500, message: str = "The server had an error", **kw: Any) -> "FakeReply":
        return cls(status=status, error_message=message, error_type="server_error" if status >= 500 else "invalid_request_error",
                   **kw)

    @classmethod
    def unauthorized(cls, message: str = "Incorrect API key provided") -> "FakeReply":
        return cls(status=401, error_message=message, error_type="invalid_request_error")

    @classmethod
    def stall(cls, seconds: float = 30.0) -> "FakeReply":
        return cls(stall_for=seconds)

    @classmethod
    def trickle(cls, content: str, chars: int = 4, every: float = 0.3, **kw: Any) -> "FakeReply":
        """A stream that never stalls long (`every` seconds between chunks) but takes
        len(content) / chars * every seconds in all."""
        return cls(content=content, chunk_chars=chars, chunk_delay=every, **kw)

    @classmethod
    def malformed(cls) -> "FakeReply":
        return cls(broken_json=True)

    @classmethod
    def dropped(cls, content: str = "a reply that never ends", after: int = 2, **kw: Any) -> "FakeReply":
        return cls(content=content, drop_after=after, **kw)

    @classmethod
    def unstreamed(cls, content: str, **kw: Any) -> "FakeReply":
        return cls(content=content, ignore_stream=True, **kw)

    @classmethod
    def error_event(cls, content: str = "partial answer", after: int = 1,
                    message: str = "upstream overloaded", **kw: Any) -> "FakeReply":
        return cls(content=content, error_event_after=after, error_message=message, **kw)

    @classmethod
    def no_usage(cls, content: str, **kw: Any) -> "FakeReply":
        return cls(content=content, usage=False, **kw)

    @classmethod
    def thinking(cls, content: str, think: str = "让我想一想……用户要的是 JSON。", **kw: Any) -> "FakeReply":
        return cls(content=content, think=think, **kw)

    @property
    def sent_content(self) -> str:
        return f"<think>{self.think}</think>\n{self.content}" if self.think is not None else self.content


ReplyLike = Union[str, dict, list, FakeReply]


@dataclass
class ChatRequest:
    """One request to the fake, as the server saw it. Times are time.monotonic()."""
    n: int
    method: str
    path: str
    headers: dict[str, str]
    body: Any                      # parsed JSON (None if the body was not JSON)
    start: float
    end: float | None = None       # just before the response's last bytes were sent (or the connection dropped)
    first_byte: float | None = None
    status: int | None = None
    reply: FakeReply | None = None
    sent_chars: int = 0            # content characters sent (streaming), counted after each write

    @property
    def model(self) -> str:
        return (self.body or {}).get("model", "") if isinstance(self.body, dict) else ""

    @property
    def messages(self) -> list[dict]:
        return list((self.body or {}).get("messages") or []) if isinstance(self.body, dict) else []

    @property
    def system(self) -> str:
        return "\n".join(_text(m.get("content")) for m in self.messages if m.get("role") == "system")

    @property
    def user(self) -> str:
        """The last user message."""
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return _text(m.get("content"))
        return ""

    @property
    def prompt(self) -> str:
        return "\n".join(_text(m.get("content")) for m in self.messages)

    @property
    def stream(self) -> bool:
        return bool(isinstance(self.body, dict) and self.body.get("stream"))

    @property
    def include_usage(self) -> bool:
        opts = self.body.get("stream_options") if isinstance(self.body, dict) else None
        return bool(isinstance(opts, dict) and opts.get("include_usage"))

    @property
    def api_key(self) -> str:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else ""

    def get(self, key: str, default: Any = None) -> Any:
        """A request parameter (temperature, max_tokens, ...)."""
        return self.body.get(key, default) if isinstance(self.body, dict) else default

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


Responder = Callable[[ChatRequest], ReplyLike]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: "LoopbackServer"

    def setup(self) -> None:
        super().setup()
        # As real endpoints (and tests.fakes.http_server) do: without TCP_NODELAY, Nagle's algorithm holds
        # each small stream event until the client's delayed ACK, ~40 ms, once a connection is reused.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        fake = self.server.fake
        raw = self._body()
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            body = jsonlib.loads(raw.decode("utf-8")) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        if self.command == "GET" and path.endswith("/models"):
            auth = self.headers.get("Authorization") or ""
            if fake.api_key is not None and auth[7:] != fake.api_key:
                return self._json(401, {"error": {"message": "Incorrect API key provided",
                                                  "type": "invalid_request_error", "code": "invalid_api_key"}})
            return self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                for m in (fake.listed_models if fake.listed_models is not None else [fake.model])]})
        if not (self.command == "POST" and path.endswith("/chat/completions")):
            return self._json(404, {"error": {"message": f"fake OpenAI: no route {self.command} {path}",
                                              "type": "invalid_request_error"}})
        with fake._serial if fake.local else nullcontext():  # a local server handles one request at a time
            req = fake._begin(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body)
            try:
                reply = fake._local(req, fake._reply_for(req))
                req.reply = reply
                self._serve(req, reply)
            except OSError:  # the client went away (its timeout fired): normal here
                self.close_connection = True
            finally:
                fake._end(req)

    # responses -------------------------------------------------------------------------------
    def _serve(self, req: ChatRequest, reply: FakeReply) -> None:
        fake = self.server.fake
        if reply.stall_for is not None:
            fake._closing.wait(reply.stall_for)
            return self._drop(req)
        if reply.status >= 400:
            req.status = reply.status
            return self._json(reply.status, {"error": {"message": reply.error_message or f"HTTP {reply.status}",
                                                       "type": reply.error_type or "error", "code": None}},
                              headers=reply.headers, req=req)
        latency = fake.latency if reply.latency is None else reply.latency
        req.status = 200
        if req.stream and not reply.ignore_stream:
            return self._stream(req, reply, latency)
        if latency and fake._closing.wait(latency):
            return self._drop(req)
        if reply.broken_json:
            return self._raw(200, b'{"id": "chatcmpl-fake", "choices": [{"message": {"content": "broken',
                             "application/json", req=req)
        content = reply.sent_content
        out: dict[str, Any] = {
            "id": f"chatcmpl-fake-{req.n}", "object": "chat.completion", "created": int(time.time()),
            "model": req.model or fake.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": reply.finish_reason}],
        }
        if reply.usage:
            out["usage"] = fake._usage(req, reply)
        self._json(200, out, req=req)

    def _stream(self, req: ChatRequest, reply: FakeReply, latency: float) -> None:
        fake = self.server.fake
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in reply.headers.items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.flush()
        req.first_byte = time.monotonic()
        base = {"id": f"chatcmpl-fake-{req.n}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": req.model or fake.model}
        usage_null = {"usage": None} if req.include_usage else {}

        def event(choices: list, **extra: Any) -> bytes:
            return b"data: " + jsonlib.dumps({**base, "choices": choices, **extra}, ensure_ascii=False).encode() + b"\n\n"

        if latency and fake._closing.wait(latency):
            return self._drop(req)
        self._chunk(event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
                          **usage_null))
        if reply.broken_json:
            self._chunk(b'data: {"id": "chatcmpl-fake", "choices": [{"delta": {"content": "bro\n\n')
            fake._finish(req)
            self._chunk(b"data: [DONE]\n\n")
            return self._end_chunks()
        size = reply.chunk_chars or fake.chunk_chars
        delay = fake.chunk_delay if reply.chunk_delay is None else reply.chunk_delay
        content = reply.sent_content
        pieces = [content[i:i + size] for i in range(0, len(content), size)] or []
        for i, piece in enumerate(pieces):
            if reply.drop_after is not None and i >= reply.drop_after:
                return self._drop(req)
            if reply.error_event_after is not None and i >= reply.error_event_after:
                self._chunk(b"data: " + jsonlib.dumps({"error": {"message": reply.error_message or "error",
                                                                 "type": "server_error"}}).encode() + b"\n\n")
                fake._finish(req)
                self._chunk(b"data: [DONE]\n\n")
                return self._end_chunks()
            if i and delay and fake._closing.wait(delay):
                return self._drop(req)
            self._chunk(event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}], **usage_null))
            req.sent_chars += len(piece)
        if reply.drop_after is not None:
            return self._drop(req)
        self._chunk(event([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}], **usage_null))
        if req.include_usage and reply.usage:
            self._chunk(event([], usage=fake._usage(req, reply)))
        fake._finish(req)
        self._chunk(b"data: [DONE]\n\n")
        self._end_chunks()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None,
              req: ChatRequest | None = None) -> None:
        self._raw(status, jsonlib.dumps(obj, ensure_ascii=False).encode(), "application/json", headers, req)

    def _raw(self, status: int, data: bytes, ctype: str, headers: Mapping[str, str] | None = None,
             req: ChatRequest | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if req is not None:
            req.first_byte = time.monotonic()
            self.server.fake._finish(req)
        self.wfile.write(data)
        self.wfile.flush()

    def _drop(self, req: ChatRequest) -> None:
        """Close without a complete response: the client sees a disconnect."""
        self.server.fake._finish(req)
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class FakeOpenAI(LoopbackServer):
    """An OpenAI-compatible server on 127.0.0.1 (ephemeral port). Use as a context manager.

    responder: fn(ChatRequest) -> str | dict | list | FakeReply, when nothing is scripted.
    default: the reply when neither a script nor a responder answers.
    latency / chunk_delay / chunk_chars: defaults for every reply (seconds before the first token,
        seconds between content chunks, characters per chunk).
    api_key: when set, a request with another bearer key gets 401.
    reject_stream_options: answer 400 to requests that carry stream_options (older vLLM, some
        proxies), so clients have to fall back.
    local: behave like a small local server (see the module's doc): one request at a time, no
        usage, replies cut at max_tokens, prose (LOCAL_PROSE) unless told otherwise.
    """

    handler = _Handler
    thread_name = "fake-openai"

    def __init__(self, responder: Responder | None = None, *, default: ReplyLike = "ok", model: str = DEFAULT_MODEL,
                 latency: float = 0.0, chunk_delay: float = 0.0, chunk_chars: int = 8, api_key: str | None = None,
                 reject_stream_options: bool = False, host: str = "127.0.0.1", port: int = 0,
                 local: bool = False):
        self.responder = responder
        self.local = local
        self.default = LOCAL_PROSE if local and default == "ok" else default
        self._serial = threading.Lock()
        self.model = model
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.chunk_chars = max(1, chunk_chars)
        self.api_key = api_key
        self.listed_models: list[str] | None = None  # GET /models lists these instead of `model`
        self.reject_stream_options = reject_stream_options
        super().__init__(host, port)
        self._queue: deque[ReplyLike] = deque()
        self._requests: list[ChatRequest] = []
        self._in_flight = 0
        self._peak = 0

    @property
    def url(self) -> str:
        """The base URL to give a client: http://127.0.0.1:PORT/v1"""
        return f"http://{self._host}:{self.port}/v1"

    @property
    def provider(self) -> str:
        """host:port, as core.llm.limits.provider_key names this endpoint."""
        return f"{self._host}:{self.port}"

    def env(self, *roles: str, api_key: str = DEFAULT_KEY, model: str | None = None) -> dict[str, str]:
        """Settings that point roles at this server (every LLM role when none is named)."""
        if not roles:
            from core.infra.config import LLM_ROLES
            roles = LLM_ROLES
        out: dict[str, str] = {}
        for role in roles:
            out[f"{role}_API_KEY"] = api_key
            out[f"{role}_BASE_URL"] = self.url
            out[f"{role}_MODEL_NAME"] = model or self.model
        return out

    # scripting -------------------------------------------------------------------------------
    def script(self, *replies: ReplyLike) -> "FakeOpenAI":
        """Queue replies, served once each in order, before the responder is asked."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._peak = self._in_flight

    @property
    def pending(self) -> int:
        """Scripted replies not served yet."""
        with self._lock:
            return len(self._queue)

    # inspection ------------------------------------------------------------------------------
    @property
    def requests(self) -> list[ChatRequest]:
        """Chat requests in arrival order (a snapshot)."""
        with self._lock:
            return list(self._requests)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most chat requests the server handled at once (live counter)."""
        with self._lock:
            return self._peak

    def max_concurrency(self) -> int:
        """The most requests whose [start, end] intervals overlap, from the recorded timestamps."""
        points: list[tuple[float, int]] = []
        for r in self.requests:
            if r.end is None:
                continue
            points += [(r.start, 1), (r.end, -1)]
        points.sort(key=lambda p: (p[0], p[1]))  # an end and a start at the same instant do not overlap
        best = cur = 0
        for _, d in points:
            cur += d
            best = max(best, cur)
        return best

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[ChatRequest]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests
            if len(got) >= n or time.monotonic() >= deadline:
                return got
            time.sleep(0.01)

    # internals -------------------------------------------------------------------------------
    def _begin(self, method: str, path: str, headers: dict[str, str], body: Any) -> ChatRequest:
        with self._lock:
            req = ChatRequest(n=len(self._requests) + 1, method=method, path=path, headers=headers, body=body,
                              start=time.monotonic())
            self._requests.append(req)
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            return req

    def _finish(self, req: ChatRequest) -> None:
        """The request is over: stamped just *before* its last bytes are sent, so a client that saw
        the end of this response (and released a concurrency slot) can never start a request that
        appears to overlap it. Idempotent."""
        with self._lock:
            if req.end is None:
                req.end = time.monotonic()
                self._in_flight -= 1

    def _end(self, req: ChatRequest) -> None:
        self._finish(req)

    def _reply_for(self, req: ChatRequest) -> FakeReply:
        if not isinstance(req.body, dict) or not isinstance(req.body.get("messages"), list):
            return FakeReply.error(400, "fake OpenAI: the body must be JSON with a 'messages' list")
        if self.api_key is not None and req.api_key != self.api_key:
            return FakeReply.unauthorized()
        if self.reject_stream_options and "stream_options" in req.body:
            return FakeReply.error(400, "Unrecognized request argument supplied: stream_options")
        with self._lock:
            scripted = self._queue.popleft() if self._queue else None
        if scripted is not None:
            return self._coerce(scripted)
        if self.responder is not None:
            return self._coerce(self.responder(req))
        return self._coerce(self.default)

    def _local(self, req: ChatRequest, reply: FakeReply) -> FakeReply:
        """A local server's reply: no usage, and cut at the request's max_tokens."""
        if not self.local or reply.status >= 400:
            return reply
        reply = replace(reply, usage=False)
        limit = req.get("max_tokens")
        if isinstance(limit, int) and limit >= 0 and count_tokens(reply.sent_content) > limit:
            keep = max(0, limit - (count_tokens(reply.sent_content) - count_tokens(reply.content)))
            reply = replace(reply, content=reply.content[:keep], finish_reason="length")
        return reply

    @staticmethod
    def _coerce(reply: ReplyLike) -> FakeReply:
        if isinstance(reply, FakeReply):
            return reply
        if isinstance(reply, str):
            return FakeReply(content=reply)
        if isinstance(reply, (dict, list)):
            return FakeReply.json(reply)
        raise TypeError(f"a fake reply must be str, dict, list or FakeReply, not {type(reply).__name__}")

    def _usage(self, req: ChatRequest, reply: FakeReply) -> dict[str, Any]:
        prompt = reply.prompt_tokens if reply.prompt_tokens is not None else count_tokens(req.prompt)
        completion = reply.completion_tokens if reply.completion_tokens is not None \
            else count_tokens(reply.sent_content)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        if reply.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens}
        return usage

@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started FakeOpenAI (defaults: answers "ok", no latency), closed after the test."""
    with FakeOpenAI() as srv:
        yield srv

