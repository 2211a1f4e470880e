"""LLM calls for one role: OpenAI-compatible endpoints through the `openai` package.

    llm = LlmClient("QUERY_ENGINE", settings, db=db, events=events)
    result = llm.complete(system, user, node="FirstSummaryNode", run_id=run_id, job_id=job_id)
    data = llm.complete_json(system, user, required_keys=("search_query", "reasoning"), node="FirstSearchNode")

Every call streams (`stream_options={"include_usage": True}`), measuring latency and time to
first token, and takes usage from the final chunk; when a server sends no usage, tokens are
estimated from the text and `usage_estimated` is set. A server that rejects stream_options
(HTTP 400 naming it) gets non-streaming requests from then on. `<think>…</think>` is removed.

Each attempt is bounded as a whole by `LLM_TIMEOUT` (core.infra.deadline): connect, first token
and the full stream. An attempt past it is cut (its socket shut down) and fails as a 'timeout',
like a read timeout; the characters it had streamed are counted as estimated output tokens on the
call's error row. (The SDK's own read timeout only bounds the gap between two chunks.)

Retries are ours, not the SDK's (`max_retries=0`): core.infra.retry's LLM policy retries timeouts,
dropped connections and streams, 429 (honouring Retry-After) and 5xx, and makes each retry an
event and a counter. Each attempt holds one slot of its endpoint's budget (core.llm.limits: the
role's reserved slot or a shared one), never a back-off sleep; a 429 shrinks that budget.

Every call, success or failure, is one LlmCall row (when a database is given); recording never
breaks a call. Failures are LlmError subclasses whose messages are redacted (never the key):
LlmUnavailable (network, timeouts, rate limits, 5xx after retries), LlmAuthError (401/403),
LlmBadRequest (400/404/422), LlmJsonError (no usable JSON after `attempts` asks),
LlmNotConfigured.

Bounds (core.llm.budgets): a call sends its node's max_tokens unless the caller gives one, and the
whole node call (JSON asks, retries, back-offs) ends at the node's deadline; an endpoint that asks for
`max_completion_tokens` gets it from then on. The circuit breaker (core.llm.breaker) switches a role
that fails JSON node after node off for the rest of its run: LlmCircuitOpen, with no request.

Times: `latency_ms` is the whole call as the caller waited for it (retries and slot waits
included); `ttft_ms` is from the start of the successful attempt to its first token (None for a
non-streaming reply).

The errors are in core/llm/errors.py, LlmResult and the reading of replies (and of JSON asks) in
core/llm/replies.py; this module is their face and the client itself.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

import openai
from loguru import logger

from core.infra import retry as retry_mod
from core.infra.config import LLM_ROLES, Settings
from core.infra.deadline import CallTimeout, Cut, run_bounded
from core.infra.http_errors import TransientStatus
from core.llm.errors import (LlmAuthError, LlmBadRequest, LlmCircuitOpen, LlmError, LlmJsonError, LlmNotConfigured,
                             LlmUnavailable, _bad_response, _StreamIncomplete)
from core.llm.breaker import announce, breakers
from core.llm.budgets import NodeClock, node_budget
from core.llm.jsonrepair import split_think
from core.llm.replies import (_DETAIL_MAX, JSON_INSTRUCTION, LlmResult, _check_json, _correction, _estimate_prompt,
                              _counted, _excerpt, _Raw, _status_message, _Unusable, _usage_ok,
                              _with_json_instruction, estimate_tokens)
from core.llm.answered import note_answered
from core.llm.limits import ProviderLimiter, default_limiter, provider_key
from core.llm.pricing import cached_tokens_of
from core.llm import run_budget  # a run's caps on tokens and cost: gate, reserve, settle
from core.llm.call_log import CallRecord, store_call
from core.llm.stream import streamed
from core.infra.redact import MASK, redact, register_secrets
from core.infra.tracing import current_trace_id

__all__ = [
    "LlmClient", "LlmResult", "LlmError", "LlmUnavailable", "LlmAuthError", "LlmBadRequest", "LlmJsonError",
    "LlmNotConfigured", "LlmCircuitOpen", "llm_available", "estimate_tokens", "JSON_INSTRUCTION", "PLACEHOLDER_KEY",
]

# A local endpoint (Ollama, vLLM, LM Studio) takes any key; the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"
_CONNECT_TIMEOUT = 10.0


_http_lock = threading.Lock()
_http: Any = None


def shared_http_client() -> Any:
    """The process's one HTTP connection pool for LLM endpoints (the SDK's default client settings).

    Building one (its TLS context) costs 0.1-0.3 s of CPU: a client per host speech or engine job
    paid that on the run's critical path. Timeouts stay per LlmClient (the SDK sends them with
    each request)."""
    global _http
    with _http_lock:
        if _http is None or _http.is_closed:
            _http = openai.DefaultHttpxClient()
        return _http


def llm_available(settings: Settings, role: str) -> bool:
    """True when `role` has an LLM configured and the mode allows using it."""
    return role in LLM_ROLES and settings.llm_configured(role)


# ---------------------------------------------------------------------------------------------
# The client

class LlmClient:
    """LLM calls for one role. Thread-safe: one client can serve every paragraph of an engine."""

    def __init__(self, role: str, settings: Settings, *, db=None, events=None, limiter: ProviderLimiter | None = None,
                 client: openai.OpenAI | None = None, model: str | None = None, timeout: float | None = None,
                 policy: retry_mod.RetryPolicy | None = None, sleep: Callable[[float], None] | None = None):
        if role not in LLM_ROLES:
            raise ValueError(f"unknown LLM role {role!r}; expected one of {', '.join(LLM_ROLES)}")
        self.role = role
        self.settings = settings
        self.db = db
        self.events = events
        conf = settings.llm_role(role)
        self.model = model or conf["model"]
        self.base_url = conf["base_url"] or None
        self._api_key = conf["api_key"] or ""
        if self._api_key:
            register_secrets([self._api_key])  # masked in every log line from now on
        if client is None and not (model or settings.llm_configured(role)):
            why = " (SHOAL_MODE=offline)" if settings.get("SHOAL_MODE") == "offline" else ""
            raise LlmNotConfigured(f"{role} has no LLM configured{why}: set {role}_MODEL_NAME and "
                                   f"{role}_BASE_URL or {role}_API_KEY", role=role)
        if not self.model:
            raise LlmNotConfigured(f"{role} has no model: set {role}_MODEL_NAME", role=role)
        self.provider = provider_key(str(client.base_url) if client is not None else self.base_url)
        self.timeout = float(timeout if timeout is not None else settings.get("LLM_TIMEOUT", 120.0))
        self.limiter = limiter or default_limiter(settings.get("SHOAL_LLM_CONCURRENCY"))
        self.limiter.configure(settings)  # each configured role's endpoint, limit and reserved slot
        self.policy = policy or _policy_from(settings)
        self.breaker_failures = _int_setting(settings, "LLM_BREAKER_FAILURES", 3)  # core.llm.breaker
        self._sleep = sleep
        # The connection pool is the process's (shared_http_client): neither a given client nor ours has one to close.
        self._owns_client = False
        if client is None:
            client = openai.OpenAI(
                api_key=self._api_key or PLACEHOLDER_KEY,
                base_url=self.base_url,
                timeout=openai.Timeout(self.timeout, connect=min(self.timeout, _CONNECT_TIMEOUT)),
                max_retries=0,  # our policy retries: every retry becomes an event and a counter
                http_client=shared_http_client(),
            )
        self._client = client
        self._completions = client.chat.completions  # imported lazily by the SDK: not inside the first call's timing
        self._stream_ok = True  # False once the server rejected stream_options
        self._tokens_key = "max_tokens"  # "max_completion_tokens" once the endpoint asked for it (OpenAI o-series)
        self._lock = threading.Lock()

    # lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_client:
            try:
                self._client.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass

    def __enter__(self) -> "LlmClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def streaming(self) -> bool:
        """False once this endpoint refused stream_options: calls are then non-streaming."""
        return self._stream_ok

    def __repr__(self) -> str:
        return f"LlmClient({self.role}, model={self.model!r}, provider={self.provider!r})"

    # public calls ----------------------------------------------------------------------------
    def complete(self, system: str, user: str, *, node: str = "", run_id: str | None = None,
                 job_id: str | None = None, temperature: float | None = 0.3,
                 max_tokens: int | None = None) -> LlmResult:
        """One answer to a system and a user message. Raises an LlmError subclass."""
        return self.chat(_messages(system, user), node=node, run_id=run_id, job_id=job_id,
                         temperature=temperature, max_tokens=max_tokens)

    def chat(self, messages: Sequence[dict], *, node: str = "", run_id: str | None = None,
             job_id: str | None = None, temperature: float | None = 0.3, max_tokens: int | None = None) -> LlmResult:
        """Like complete, for a whole message list (multi-turn)."""
        max_tokens, clock = self._bounds(node, run_id, max_tokens)
        try:
            result = self._execute(list(messages), node=node, run_id=run_id, job_id=job_id,
                                   temperature=temperature, max_tokens=max_tokens, clock=clock)
        except LlmError as err:
            self._record_error(err, node=node, run_id=run_id, job_id=job_id)
            raise
        self._record(result, status="ok", error_kind=None, run_id=run_id, job_id=job_id)
        return result

    def complete_json(self, system: str, user: str, *, required_keys: Sequence[str] = (), node: str = "",
                      attempts: int = 3, expect: type | tuple[type, ...] = dict, run_id: str | None = None,
                      job_id: str | None = None, temperature: float | None = 0.3,
                      max_tokens: int | None = None) -> Any:
        """The JSON the model answers with, parsed and repaired (core.llm.jsonrepair).

        On a reply without usable JSON (or without `required_keys`, or of the wrong type), asks
        again with a short correction, up to `attempts` calls in all; then raises LlmJsonError
        saying what was wrong. `expect=list` (or `(dict, list)`) accepts arrays. Each call is
        one LlmCall row; a rejected reply is recorded as status 'error', error_kind 'parse'.
        """
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        expect_types = expect if isinstance(expect, tuple) else (expect,)
        attempts = breakers.asks(run_id, self.role, attempts)  # one ask after a failed node
        max_tokens, clock = self._bounds(node, run_id, max_tokens)
        base = _messages(_with_json_instruction(system, required_keys, expect_types), user)
        messages = list(base)
        problems: list[str] = []
        last = ""
        asked = 0
        for n in range(1, attempts + 1):
            if n > 1 and (clock.left() <= 0 or breakers.is_open(run_id, self.role, self._model_key)):
                break  # the node's deadline is spent, or another node switched the role off: no more asks
            asked = n
            try:
                result = self._execute(messages, node=node, run_id=run_id, job_id=job_id,
                                       temperature=temperature, max_tokens=max_tokens, clock=clock)
            except LlmError as err:
                self._record_error(err, node=node, run_id=run_id, job_id=job_id)
                if problems and err.kind == "timeout" and clock.left() <= 0:
                    break  # the deadline cut a re-ask: the node failed for want of usable JSON
                raise
            try:
                value = _check_json(result, required_keys, expect_types)
            except _Unusable as bad:
                problems.append(bad.problem)
                last = result.text or result.raw
                self._record(result, status="error", error_kind="parse", run_id=run_id, job_id=job_id)
                logger.warning("llm {}/{}: reply {}/{} unusable: {}", self.role, node or "-", n, attempts,
                               self._scrub(bad.problem))
                messages = base + [
                    # the answer without its reasoning: reasoning models must not be fed their own <think>
                    {"role": "assistant", "content": (result.text or "(no answer)")[:2000]},
                    {"role": "user", "content": _correction(bad.problem, required_keys, expect_types)},
                ]
                continue
            self._record(result, status="ok", error_kind=None, run_id=run_id, job_id=job_id)
            breakers.succeeded(run_id, self.role)
            return value
        excerpt = _excerpt(self._scrub(last))
        where = f"{self.role}/{node}" if node else self.role
        cut = f" (the node's deadline of {clock.seconds:g}s ended the asks)" if asked < attempts and \
            clock.left() <= 0 else ""
        self._breaker_failed(node, run_id, job_id)
        raise LlmJsonError(
            f"{where}: the model gave no usable JSON in {asked} attempt(s){cut}; last problem: "
            f"{self._scrub(problems[-1])}" + (f"; reply began: {excerpt!r}" if excerpt else ""),
            role=self.role, provider=self.provider, problems=[self._scrub(p) for p in problems], excerpt=excerpt,
            attempts=asked)

    # bounds and the circuit breaker (core.llm.budgets, core.llm.breaker) ---------------------
    def _bounds(self, node: str, run_id: str | None, max_tokens: int | None) -> tuple[int, NodeClock]:
        """The call's max_tokens (the caller's, else the node's) and its deadline; LlmCircuitOpen,
        before any request, when the role is switched off for this run."""
        refusal = breakers.refusal(run_id, self.role, self._model_key)
        if refusal is not None:
            if refusal.first:  # switched off by its model's failures in another role: said once, as its own
                self._announce_breaker(node, run_id, None, self.breaker_failures, via=refusal.via)
            where = f"{self.role}/{node}" if node else self.role
            raise LlmCircuitOpen(f"{where}: switched to the offline analyst for the rest of this run (its model "
                                 f"failed to answer in JSON {self.breaker_failures} node(s) in a row"
                                 + (f", in {refusal.via}" if refusal.via else "") + "; LLM_BREAKER_FAILURES)",
                                 role=self.role, provider=self.provider)
        run_budget.gate(self, node, run_id)  # LlmBudgetReached, before any request, once the run's budget is spent
        budget = node_budget(node, self.settings)
        return (budget.max_tokens if max_tokens is None else max_tokens), NodeClock(node, budget.deadline_s)

    def _breaker_failed(self, node: str, run_id: str | None, job_id: str | None) -> None:
        """One more node without usable JSON; announce the breaker when this one opened it."""
        failures = breakers.failed(run_id, self.role, self.breaker_failures, self._model_key)
        if failures is not None:
            self._announce_breaker(node, run_id, job_id, failures)

    @property
    def _model_key(self) -> str:
        return f"{self.provider}|{self.model}"  # the breaker switches a failing model off in every role

    def _announce_breaker(self, node: str, run_id: str | None, job_id: str | None, failures: int,
                          via: str = "") -> None:
        announce(self.events, run_id=run_id, job_id=job_id, role=self.role, model=self.model, provider=self.provider,
                 node=node, failures=failures, via=via, scrub=self._scrub)

    # one call, retried -----------------------------------------------------------------------
    def _execute(self, messages: list[dict], *, node: str, run_id: str | None, job_id: str | None,
                 temperature: float | None, max_tokens: int | None, clock: NodeClock | None = None) -> LlmResult:
        t0 = time.perf_counter()
        policy = self.policy
        if clock is not None:  # retries and back-offs end with the node's deadline too
            policy = replace(policy, max_seconds=max(0.001, min(policy.max_seconds, clock.left())))
        attempts = 0
        queued = 0.0  # seconds spent waiting for budget slots, over all attempts
        raw: _Raw | None = None
        cut_text: list[str] = []  # what attempts cut at LLM_TIMEOUT had streamed: billed, so counted
        op = f"{self.role.lower()}:{node}" if node else self.role.lower()
        run_budget.reserve(self, run_id, node, messages, max_tokens)  # settled by core.llm.call_log.store_call
        try:
            for attempt in retry_mod.retrying(policy, op=op, run_id=run_id, job_id=job_id, sleep=self._sleep):
                with attempt:
                    attempts += 1
                    with self.limiter.slot(self.provider, role=self.role) as slot:
                        queued += slot.waited_s
                        if clock is not None:
                            clock.queued += slot.waited_s
                        try:
                            raw = self._bounded(messages, temperature, max_tokens, cut_text, clock)
                        except Exception as exc:
                            if retry_mod.classify(exc) == "rate_limit":
                                slot.throttled()  # a 429: the endpoint's budget shrinks (core.llm.limits)
                            raise
        except Exception as exc:
            err = self._wrap(exc, attempts)
            err.latency_ms = (time.perf_counter() - t0) * 1000
            err.attempts = attempts
            err.retries = max(0, attempts - 1)
            partial = "".join(cut_text)
            if partial:  # the prompt was read and a reply begun: tokens the provider counts
                err.input_tokens = _estimate_prompt(messages) * sum(1 for t in cut_text if t)
                err.output_tokens = estimate_tokens(partial)
            raise err from exc
        assert raw is not None
        latency_ms = (time.perf_counter() - t0) * 1000
        answer, thought = split_think(raw.content)
        reasoning = "\n".join(t for t in (raw.reasoning.strip(), thought) if t)
        if raw.usage is not None and _usage_ok(raw.usage):
            input_tokens = int(getattr(raw.usage, "prompt_tokens", 0) or 0)
            output_tokens = int(getattr(raw.usage, "completion_tokens", 0) or 0)
            estimated = False
        else:
            input_tokens = _estimate_prompt(messages)
            output_tokens = estimate_tokens(raw.content) + estimate_tokens(raw.reasoning)
            estimated = True
        input_tokens, output_tokens, estimated = _counted(messages, raw, input_tokens, output_tokens, estimated)
        result = LlmResult(
            text=answer, raw=raw.content, reasoning=reasoning, role=self.role, model=self.model,
            provider=self.provider, input_tokens=input_tokens, output_tokens=output_tokens,
            usage_estimated=estimated, latency_ms=latency_ms,
            ttft_ms=None if raw.ttft_s is None else raw.ttft_s * 1000, retries=max(0, attempts - 1),
            streamed=raw.streamed, finish_reason=raw.finish_reason, trace_id=current_trace_id(), node=node,
            queued_ms=queued * 1000)
        result.cached_input_tokens = 0 if estimated else cached_tokens_of(raw.usage)  # priced at the cached rate
        if raw.finish_reason == "length":
            logger.warning("llm {}/{}: the reply hit max_tokens and is cut off", self.role, node or "-")
        return result

    def _bounded(self, messages: list[dict], temperature: float | None, max_tokens: int | None,
                 cut_text: list[str], clock: NodeClock | None = None) -> _Raw:
        """One attempt within LLM_TIMEOUT as a whole (or what is left of the node's deadline, when
        less); past it, CallTimeout (retried as a timeout while the retry budget lasts)."""
        sofar: list[str] = []
        seconds, setting = clock.attempt_limit(self.timeout) if clock is not None else (self.timeout, "LLM_TIMEOUT")
        try:
            return run_bounded(lambda cut: self._attempt(messages, temperature, max_tokens, cut, sofar),
                               seconds, what=f"{self.role} LLM call", setting=setting,
                               unit="characters")
        except CallTimeout:
            cut_text.append("".join(list(sofar)))
            raise

    def _attempt(self, messages: list[dict], temperature: float | None, max_tokens: int | None,
                 cut: Cut | None = None, sofar: list[str] | None = None) -> _Raw:
        try:
            return self._attempt_once(messages, temperature, max_tokens, cut, sofar)
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            # Reasoning models of OpenAI refuse max_tokens and name max_completion_tokens instead.
            if max_tokens is None or self._tokens_key != "max_tokens" \
                    or "max_completion_tokens" not in _status_message(exc):
                raise
            self._tokens_key = "max_completion_tokens"
            logger.info("llm {}: {} asks for max_completion_tokens; sending it from now on", self.role, self.provider)
            return self._attempt_once(messages, temperature, max_tokens, cut, sofar)

    def _attempt_once(self, messages: list[dict], temperature: float | None, max_tokens: int | None,
                      cut: Cut | None = None, sofar: list[str] | None = None) -> _Raw:
        params: dict[str, Any] = {"model": self.model, "messages": messages}
        if temperature is not None:
            params["temperature"] = temperature
        if max_tokens is not None:
            params[self._tokens_key] = max_tokens
        if self._stream_ok:
            try:
                return self._streamed(params, cut, sofar)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if "stream" not in _status_message(exc).lower():
                    raise
                with self._lock:
                    self._stream_ok = False
                logger.info("llm {}: {} rejects stream_options; using non-streaming calls from now on",
                            self.role, self.provider)
        return self._plain(params)

    def _streamed(self, params: dict[str, Any], cut: Cut | None = None, sofar: list[str] | None = None) -> _Raw:
        return streamed(self._completions, params, cut, sofar)  # core.llm.stream: events as dicts, body read to its end

    def _plain(self, params: dict[str, Any]) -> _Raw:
        try:
            resp = self._completions.create(**params)
        except ValueError as exc:  # the body is not JSON
            raise _bad_response(f"malformed response body: {type(exc).__name__}") from exc
        if isinstance(resp, str):
            raise _bad_response("the response is not JSON")
        choices = getattr(resp, "choices", None)
        if not choices:
            raise _bad_response("the response has no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None) or ""
        thought = getattr(message, "reasoning_content", None)
        return _Raw(text if isinstance(text, str) else str(text), thought if isinstance(thought, str) else "",
                    getattr(resp, "usage", None), getattr(choice, "finish_reason", None), None, False)

    # errors ----------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        if self._api_key and len(self._api_key) >= 4:
            text = text.replace(self._api_key, MASK)
        return redact(text)

    def _detail(self, exc: BaseException) -> str:
        if isinstance(exc, openai.APIStatusError):
            msg = _status_message(exc)
            text = f"HTTP {exc.status_code}" + (f": {msg}" if msg else "")
        elif isinstance(exc, CallTimeout):
            text = (f"no complete reply within {exc.seconds:g}s ({exc.setting or 'LLM_TIMEOUT'}), cut after "
                    + (f"{exc.received} characters" if exc.received else "receiving nothing"))
        elif isinstance(exc, openai.APITimeoutError):
            text = f"no response within {self.timeout:g}s (LLM_TIMEOUT)"
        elif isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            text = "connection failed" + (f": {type(cause).__name__}: {cause}" if cause is not None and str(cause)
                                          else f" ({type(cause).__name__})" if cause is not None else "")
        elif isinstance(exc, (_StreamIncomplete, TransientStatus)):
            text = str(exc)
        else:
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return self._scrub(" ".join(text.split()))[:_DETAIL_MAX]

    def _wrap(self, exc: BaseException, attempts: int) -> LlmError:
        if isinstance(exc, LlmError):
            return exc
        where = f"{self.role} LLM at {self.provider} (model {self.model})"
        detail = self._detail(exc)
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) and not isinstance(status, bool) else None
        tries = f"after {attempts} attempt(s)"
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)) or status in (401, 403):
            return LlmAuthError(f"{where} refused the credentials ({detail}); check {self.role}_API_KEY",
                                role=self.role, provider=self.provider, status=status, attempts=attempts)
        kind = retry_mod.classify(exc)
        if kind in ("timeout", "connection", "rate_limit", "server_error"):
            return LlmUnavailable(f"{where} unavailable {tries} [{kind}]: {detail}", role=self.role, kind=kind,
                                  provider=self.provider,
                                  status=status, attempts=attempts)
        if status is not None and 400 <= status < 500:
            return LlmBadRequest(f"{where} rejected the request ({detail})", role=self.role, provider=self.provider,
                                 status=status,
                                 attempts=attempts)
        return LlmError(f"{where} failed {tries}: {detail}", role=self.role, provider=self.provider, kind=kind or "error",
                        status=status,
                        attempts=attempts)

    # recording -------------------------------------------------------------------------------
    def _record(self, result: LlmResult, *, status: str, error_kind: str | None, run_id: str | None,
                job_id: str | None) -> None:
        result.call_id = store_call(self, CallRecord(
            result.node, run_id, job_id, result.trace_id, result.input_tokens, result.output_tokens,
            result.latency_ms, result.ttft_ms, result.retries, status, error_kind, result.usage_estimated,
            queued_ms=result.queued_ms, cached_input_tokens=result.cached_input_tokens), self._scrub)
        logger.debug("llm {}/{} {}@{}: {} in / {} out tokens{}, {:.0f} ms (ttft {}), {} retries, {}",
                     self.role, result.node or "-", self.model, self.provider, result.input_tokens,
                     result.output_tokens, " (estimated)" if result.usage_estimated else "", result.latency_ms,
                     "-" if result.ttft_ms is None else f"{result.ttft_ms:.0f} ms", result.retries,
                     status if error_kind is None else f"{status}/{error_kind}")
        if status == "ok":
            note_answered(result)  # core.llm.answered: which row wrote a reasoner's answer

    def _record_error(self, err: LlmError, *, node: str, run_id: str | None, job_id: str | None) -> None:
        logger.warning("llm {}/{}: {}", self.role, node or "-", str(err))
        store_call(self, CallRecord(node, run_id, job_id, current_trace_id(), err.input_tokens, err.output_tokens,
                                    err.latency_ms, None, err.retries, "error", err.kind,
                                    bool(err.input_tokens or err.output_tokens), error=str(err)), self._scrub)


# ---------------------------------------------------------------------------------------------
# Helpers

def _policy_from(settings: Settings) -> retry_mod.RetryPolicy:
    budget = settings.get("RETRY_MAX_SECONDS", retry_mod.LLM.max_seconds)
    try:
        budget = float(budget)
    except (TypeError, ValueError):
        return retry_mod.LLM
    if budget <= 0:  # retries switched off
        return replace(retry_mod.LLM, max_attempts=1, max_seconds=0.001)
    return replace(retry_mod.LLM, max_seconds=budget)


def _messages(system: str, user: str) -> list[dict]:
    out = []
    if system:
        out.append({"role": "system", "content": system})
    out.append({"role": "user", "content": user})
    return out


def _int_setting(settings: Settings, key: str, default: int) -> int:
    try:
        return int(settings.get(key, default))
    except (TypeError, ValueError):
        return default

