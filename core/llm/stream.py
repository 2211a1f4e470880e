"""Reading a streamed chat completion: server-sent events as plain JSON, to the end of the body.

The SDK's own Stream turns every event into a pydantic ChatCompletionChunk (about half of a call's
client-side CPU for a 1,000-character answer in 32-character chunks) and, after `[DONE]`, closes
the response without reading the end of the chunked body, so the connection cannot go back to the
pool and every call opens a new one (a TLS handshake per call on a real endpoint). Here the SDK
still builds and sends the request and raises its status errors (`with_streaming_response`); the
events are read as dicts, and the body is read to its end, so the connection is reused.

What a caller sees is the SDK's: content and `reasoning_content` deltas, the final usage (built
as the SDK's CompletionUsage), the finish reason, the time to the first token; a data line that is
not JSON or an error event is a bad response (502-like, retried), a transport failure the SDK's
APITimeoutError / APIConnectionError, a stream without any event _StreamIncomplete.
"""
from __future__ import annotations

import json
import ssl
import time
from typing import Any

import httpx2
import openai
from openai.types import CompletionUsage

from core.infra.deadline import Cut, cut_response
from core.llm.errors import _bad_response, _StreamIncomplete
from core.llm.replies import _Raw, _raw_from_body, _status_message

__all__ = ["streamed"]


def streamed(completions: Any, params: dict[str, Any], cut: Cut | None = None,
             sofar: list[str] | None = None) -> _Raw:
    """One streamed completion of `completions` (an SDK client's chat.completions) for `params`.

    `cut`: the whole-call bound (core.infra.deadline) — its hook shuts the socket down, its flag is
    checked at every event; `sofar`: where the content is gathered (what a cut attempt had streamed)."""
    t_start = time.perf_counter()
    try:
        manager = completions.with_streaming_response.create(**params, stream=True,
                                                             stream_options={"include_usage": True})
        api_response = manager.__enter__()
    except ValueError as exc:  # an error body that is not JSON
        raise _bad_response(f"unreadable response: {type(exc).__name__}") from exc
    response = api_response.http_response
    try:
        if cut is not None:
            cut.on_cut(lambda: cut_response(response))  # at LLM_TIMEOUT, a blocked read ends
        ctype = str(response.headers.get("content-type") or "")
        if "json" in ctype and "event-stream" not in ctype:
            # A server that ignores stream=True and answers with one completion body.
            try:
                data = json.loads(response.read())
            except ValueError as exc:
                raise _bad_response(f"malformed response body: {type(exc).__name__}") from exc
            raw = _raw_from_body(data)
            raw.ttft_s = time.perf_counter() - t_start
            return raw
        return _read_events(response, t_start, cut, sofar if sofar is not None else [])
    finally:
        if cut is not None:
            cut.release()  # the connection may go back to the pool: a late cut must not touch it
        try:
            manager.__exit__(None, None, None)
        except Exception:  # pragma: no cover - the connection may be gone already
            pass


def _read_events(response: Any, t_start: float, cut: Cut | None, content: list[str]) -> _Raw:
    reasoning: list[str] = []
    state: dict[str, Any] = {"usage": None, "finish": None, "ttft": None}
    chunks = 0
    data_lines: list[str] = []
    event: str | None = None
    done = False
    try:
        for line in response.iter_lines():
            if done:
                continue  # after [DONE]: the rest of the body is read, so the connection is reused
            if line:
                if line.startswith(":"):
                    continue  # a comment (keep-alive)
                field, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if field == "data":
                    data_lines.append(value)
                elif field == "event":
                    event = value
                continue
            if not data_lines and event is None:
                continue
            data, data_lines, event = "\n".join(data_lines), [], None
            if data.startswith("[DONE]"):
                done = True
                continue
            if cut is not None:
                cut.raise_if_cut()
            chunks += 1
            _take(json.loads(data), response, t_start, cut, content, reasoning, state)
        if data_lines and not done:  # a last event without its blank line
            data = "\n".join(data_lines)
            if not data.startswith("[DONE]"):
                chunks += 1
                _take(json.loads(data), response, t_start, cut, content, reasoning, state)
    except ValueError as exc:  # a data line that is not JSON
        raise _bad_response(f"malformed stream data: {type(exc).__name__}") from exc
    except httpx2.TimeoutException as exc:
        raise openai.APITimeoutError(request=response.request) from exc
    except (httpx2.RequestError, ssl.SSLError) as exc:
        raise openai.APIConnectionError(request=response.request) from exc
    if chunks == 0:
        raise _StreamIncomplete("the stream ended before any data")
    return _Raw("".join(content), "".join(reasoning), state["usage"], state["finish"], state["ttft"], True)


def _take(chunk: Any, response: Any, t_start: float, cut: Cut | None, content: list[str], reasoning: list[str],
          state: dict[str, Any]) -> None:
    """One event's data: its deltas, usage and finish reason; an error event is a bad response."""
    if not isinstance(chunk, dict):
        return
    error = chunk.get("error")
    if error:
        # An error event in the middle of the stream (provider overloaded, upstream failure).
        message = error.get("message") if isinstance(error, dict) else None
        exc = openai.APIError(message if isinstance(message, str) and message else
                              "An error occurred during streaming", request=response.request, body=error)
        raise _bad_response(f"error event in the stream: {_status_message(exc)}")
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        state["usage"] = CompletionUsage.construct(**usage)  # as the SDK builds it
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
        thought = delta.get("reasoning_content") if isinstance(delta, dict) else None
        if (text or thought) and state["ttft"] is None:
            state["ttft"] = time.perf_counter() - t_start
        if isinstance(text, str) and text:
            content.append(text)
        if isinstance(thought, str) and thought:
            reasoning.append(thought)
        if cut is not None and (text or thought):
            cut.received += (len(text) if isinstance(text, str) else 0) + (len(thought) if isinstance(thought, str)
                                                                           else 0)
        if choice.get("finish_reason"):
            state["finish"] = choice["finish_reason"]
