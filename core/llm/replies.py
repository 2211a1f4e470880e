"""What an LLM call gives back and how it is read: LlmResult, token estimates, reply bodies, and the
JSON asking of LlmClient.complete_json (instruction, correction, check). Used by core/llm/client.py.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from core.llm.errors import _bad_response
from core.llm.jsonrepair import JsonRepairError, extract_json

_DETAIL_MAX = 300   # longest server text quoted in an error message
JSON_INSTRUCTION = ("Reply with one valid JSON value only: no prose before or after it, no Markdown code fence, "
                    "double-quoted keys and strings.")


@dataclass
class LlmResult:
    text: str                     # the answer: reasoning removed, stripped
    raw: str                      # the content as the model sent it
    reasoning: str                # <think> content or reasoning_content, if any
    role: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    usage_estimated: bool
    latency_ms: float
    ttft_ms: float | None
    retries: int
    streamed: bool
    finish_reason: str | None
    trace_id: str = ""
    node: str = ""
    call_id: int | None = None    # the llm_calls row recording this call, once stored (None without a db)
    queued_ms: float = 0.0        # of latency_ms, the time spent waiting for a slot of the endpoint's budget
    cached_input_tokens: int = 0  # of input_tokens, served from the provider's prompt cache (core.llm.pricing)

    @property
    def attempts(self) -> int:
        return self.retries + 1

    @property
    def truncated(self) -> bool:
        """The model stopped at max_tokens."""
        return self.finish_reason == "length"


@dataclass
class _Raw:
    content: str
    reasoning: str
    usage: Any
    finish_reason: str | None
    ttft_s: float | None
    streamed: bool


_CJK_RANGES = ((0x3000, 0x303F), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF),
               (0x20000, 0x2FFFF))


def estimate_tokens(text: str) -> int:
    """Tokens of `text`, roughly: one per CJK character, one per four other characters."""
    if not text:
        return 0
    cjk = sum(1 for ch in text if any(lo <= ord(ch) <= hi for lo, hi in _CJK_RANGES))
    return cjk + math.ceil((len(text) - cjk) / 4)


def _estimate_prompt(messages: Iterable[dict]) -> int:
    return sum(estimate_tokens(str(m.get("content") or "")) + 4 for m in messages)


def _counted(messages: list[dict], raw: _Raw, input_tokens: int, output_tokens: int,
             estimated: bool) -> tuple[int, int, bool]:
    """Fill what a server's usage leaves out: a usage without prompt tokens, or with zero completion
    tokens for a reply that has text (some local servers), is estimated (estimate_tokens) and marked so."""
    if not input_tokens:
        input_tokens, estimated = _estimate_prompt(messages), True
    if not output_tokens and (raw.content or raw.reasoning):
        output_tokens, estimated = estimate_tokens(raw.content) + estimate_tokens(raw.reasoning), True
    return input_tokens, output_tokens, estimated


def _status_message(exc: BaseException) -> str:
    """The server's own error message from an APIStatusError body, else its text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
        if isinstance(body.get("message"), str):
            return body["message"]
    if isinstance(body, str) and body.strip():
        return body.strip()[:_DETAIL_MAX]
    return str(getattr(exc, "message", "") or exc)


class _Usage:
    def __init__(self, data: dict):
        self.prompt_tokens = data.get("prompt_tokens")
        self.completion_tokens = data.get("completion_tokens")


def _raw_from_body(data: Any) -> _Raw:
    """A chat completion body (dict) as a _Raw; a TransientStatus(502) when it is not one."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise _bad_response("the response has no choices")
    message = choices[0].get("message") or {}
    text = message.get("content") or ""
    thought = message.get("reasoning_content") or ""
    usage = data.get("usage")
    return _Raw(str(text), thought if isinstance(thought, str) else "",
                _Usage(usage) if isinstance(usage, dict) else None, choices[0].get("finish_reason"), None, False)


def _usage_ok(usage: Any) -> bool:
    return isinstance(getattr(usage, "prompt_tokens", None), int) or isinstance(
        getattr(usage, "completion_tokens", None), int)


def _excerpt(text: str, limit: int = 160) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def _type_name(types: tuple[type, ...]) -> str:
    names = {dict: "a JSON object", list: "a JSON array"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _with_json_instruction(system: str, required_keys: Sequence[str], expect: tuple[type, ...]) -> str:
    line = JSON_INSTRUCTION
    if dict in expect and required_keys:
        line += " The object must have the keys: " + ", ".join(f'"{k}"' for k in required_keys) + "."
    elif expect == (list,):
        line += " The value must be a JSON array."
    return f"{system.rstrip()}\n\n{line}" if system else line


def _correction(problem: str, required_keys: Sequence[str], expect: tuple[type, ...]) -> str:
    want = _type_name(expect)
    keys = (" with the keys " + ", ".join(f'"{k}"' for k in required_keys)) if required_keys and dict in expect else ""
    return (f"Your previous reply could not be used: {problem}. Reply again with only {want}{keys}: "
            "valid JSON, no explanation, no Markdown fence.")


class _Unusable(Exception):
    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem


def _check_json(result: LlmResult, required_keys: Sequence[str], expect: tuple[type, ...]) -> Any:
    text = result.text
    if not text.strip():
        raise _Unusable("the reply held only reasoning (<think>), no answer" if result.reasoning
                        else "the reply was empty")
    try:
        value = extract_json(text)
    except JsonRepairError as exc:
        raise _Unusable(exc.reason) from None
    if dict in expect and list not in expect and isinstance(value, list) and len(value) == 1 \
            and isinstance(value[0], dict):
        value = value[0]  # `[{...}]` where one object was asked for
    if not isinstance(value, expect):
        got = "an array" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__
        raise _Unusable(f"expected {_type_name(expect)}, got {got}")
    if isinstance(value, dict) and required_keys:
        missing = [k for k in required_keys if k not in value]
        if missing:
            raise _Unusable("missing key(s) " + ", ".join(f'"{k}"' for k in missing)
                            + (f" (got {', '.join(json.dumps(k, ensure_ascii=False) for k in list(value)[:8])})"
                               if value else " (got an empty object)"))
    return value
