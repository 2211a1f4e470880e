"""Concurrency budgets (core.llm.limits): per-role reservations, per-endpoint limits, AIMD on 429.

Behaviour only, never timing: a slot "given at once" is `acquire(timeout=0)` returning True, and
calls held in flight are held by Events (in the limiter, or inside the fake server's responder).
"""
from __future__ import annotations

import threading
from contextlib import ExitStack
from pathlib import Path

import pytest

from core.infra import retry as retry_mod
from core.infra.config import load_settings
from core.llm.client import LlmClient
from core.llm.limits import (DEFAULT_CONCURRENCY, EndpointBudget, ProviderLimiter, budgets, endpoint_plan,
                             reset_default_limiter)
from tests.conftest import wait_for
from tests.fakes.openai_server import FakeOpenAI, FakeReply

Q, M, I, HOST, REPORT, KW = ("QUERY_ENGINE", "MEDIA_ENGINE", "INSIGHT_ENGINE", "FORUM_HOST", "REPORT_ENGINE",
                             "KEYWORD_OPTIMIZER")
ENGINES = (Q, M, I)
FAST = retry_mod.RetryPolicy("llm", max_attempts=3, max_seconds=30.0, initial_wait=0.0, max_wait=0.0)


@pytest.fixture(autouse=True)
def _clean_globals():
    yield
    reset_default_limiter()
    retry_mod.reset_retry_counts()


def settings_with(env: dict[str, str]):
    return load_settings(env=env, env_file=Path("/nonexistent/.env"))


def take(limiter: ProviderLimiter, key: str, role: str | None, n: int) -> int:
    """Slots of `role` granted at once (timeout 0), up to n."""
    got = 0
    while got < n and limiter.acquire(key, timeout=0, role=role):
        got += 1
    return got


# --- reservations ---------------------------------------------------------------------------------

def test_with_engines_holding_every_shared_slot_the_host_still_starts_at_once():
    limiter = ProviderLimiter(8)
    limiter.set_endpoint("p", roles=(*ENGINES, HOST, REPORT))  # 5 reserved, 3 shared
    assert take(limiter, "p", Q, 10) == 4  # its own slot and the 3 shared ones
    assert take(limiter, "p", M, 10) == 1 and take(limiter, "p", I, 10) == 1  # only their own
    assert not limiter.acquire("p", timeout=0, role=Q)  # the host's and report's slots stay free
    assert limiter.acquire("p", timeout=0, role=HOST)
    assert limiter.acquire("p", timeout=0, role=REPORT)
    assert not limiter.acquire("p", timeout=0, role=HOST)  # the budget is full now
    assert limiter.snapshot()["p"].in_flight == 8


def test_a_waiting_engine_never_takes_the_hosts_reserved_slot():
    limiter = ProviderLimiter(3)
    limiter.set_endpoint("p", roles=(Q, HOST))  # 2 reserved, 1 shared
    release = threading.Event()
    started = []

    def engine_call():
        with limiter.slot("p", role=Q):
            started.append(1)
            release.wait(10)

    threads = [threading.Thread(target=engine_call) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(started) == 2 and limiter.snapshot()["p"].waiting == 1, 10, "a third engine call waiting")
        stats = limiter.snapshot()["p"]
        assert stats.in_flight == 2 and dict(stats.by_role) == {Q: 2}
        # The waiting engine call sits beside a free slot: the host's. The host takes it at once.
        assert limiter.acquire("p", timeout=0, role=HOST)
        limiter.release("p", role=HOST)
        assert len(started) == 2 and limiter.snapshot()["p"].waiting == 1
    finally:
        release.set()
        for t in threads:
            t.join(10)
    assert len(started) == 3 and limiter.in_flight() == {"p": 0}


def test_the_host_and_report_never_starve_an_engine():
    limiter = ProviderLimiter(6)
    limiter.set_endpoint("p", roles=(*ENGINES, HOST, REPORT))  # 5 reserved, 1 shared
    assert take(limiter, "p", REPORT, 10) == 2  # its own slot and the shared one
    assert take(limiter, "p", HOST, 10) == 1
    for engine in ENGINES:  # each engine still starts one call at once
        assert limiter.acquire("p", timeout=0, role=engine)
    assert not limiter.acquire("p", timeout=0, role=Q)


def test_a_role_first_seen_calling_gets_a_reserved_slot():
    limiter = ProviderLimiter(3)
    with limiter.slot("p", role=HOST):
        pass
    assert limiter.snapshot()["p"].roles == (HOST,)
    assert take(limiter, "p", Q, 10) == 2  # the host's slot stays free
    assert limiter.acquire("p", timeout=0, role=HOST)


def test_a_budget_smaller_than_its_roles_is_one_shared_pool():
    limiter = ProviderLimiter(4)  # 6 roles do not fit 4 slots with one each: no reservations
    limiter.set_endpoint("p", roles=(*ENGINES, HOST, REPORT, KW))
    assert take(limiter, "p", Q, 10) == 4
    assert not limiter.acquire("p", timeout=0, role=HOST)
    assert limiter.budgets()[0].reserved == 0


def test_calls_without_a_role_use_shared_slots_only():
    limiter = ProviderLimiter(3)
    limiter.set_endpoint("p", roles=(HOST,))
    assert take(limiter, "p", None, 10) == 2
    assert limiter.acquire("p", timeout=0, role=HOST)


# --- limits per endpoint --------------------------------------------------------------------------

def test_the_default_fits_five_paragraphs_of_three_engines_beside_the_other_roles():
    limiter = ProviderLimiter()
    assert limiter.limit == DEFAULT_CONCURRENCY
    limiter.set_endpoint("p", roles=(*ENGINES, HOST, REPORT, KW))
    for engine in ENGINES:
        assert take(limiter, "p", engine, 5) == 5
    for other in (HOST, REPORT, KW):
        assert limiter.acquire("p", timeout=0, role=other)


def test_each_endpoint_has_its_budget_and_the_smallest_role_limit_wins():
    with FakeOpenAI() as a, FakeOpenAI() as b:
        env = {**a.env(Q, M, HOST), **b.env(REPORT), "SHOAL_LLM_CONCURRENCY": "10",
               "QUERY_ENGINE_CONCURRENCY": "6", "MEDIA_ENGINE_CONCURRENCY": "4"}
        settings = settings_with(env)
        plan = endpoint_plan(settings)
        assert plan == {a.provider: ((Q, M, HOST), 4, "MEDIA_ENGINE_CONCURRENCY"),
                        b.provider: ((REPORT,), None, "SHOAL_LLM_CONCURRENCY")}
        limiter = ProviderLimiter(10)
        limiter.configure(settings)
        assert take(limiter, a.provider, Q, 10) == 2  # 4 allowed, 2 kept for the media engine and the host
        assert take(limiter, b.provider, REPORT, 20) == 10
        # Before any call, the pages still see every configured endpoint.
        shown = {x.endpoint: x for x in budgets(settings, limiter=ProviderLimiter(10))}
        assert shown[a.provider] == EndpointBudget(
            endpoint=a.provider, roles=(Q, M, HOST), limit=4, limit_from="MEDIA_ENGINE_CONCURRENCY", budget=4,
            reserved=3, in_flight=0, waiting=0, peak=0, calls=0, throttled=0)
        assert shown[b.provider].limit == 10 and shown[b.provider].shared == 9


def test_an_llm_client_configures_the_budget_so_the_host_starts_beside_busy_engines():
    gate = threading.Event()

    def responder(req):
        if "engine" in req.user:
            gate.wait(20)  # an engine call stays in flight until the test lets it go
        return "ok"

    with FakeOpenAI(responder=responder) as fake:
        settings = settings_with({**fake.env(*ENGINES, HOST), "SHOAL_LLM_CONCURRENCY": "6"})  # 4 reserved, 2 shared
        limiter = ProviderLimiter(6)
        errors: list[BaseException] = []
        with ExitStack() as stack:
            clients = {role: stack.enter_context(LlmClient(role, settings, limiter=limiter, policy=FAST))
                       for role in (*ENGINES, HOST)}

            def engine_call(role: str) -> None:
                try:
                    clients[role].complete("", f"engine {role}")
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=engine_call, args=(Q,)) for _ in range(5)]
            for t in threads:
                t.start()
            try:
                wait_for(lambda: fake.in_flight == 3 and limiter.snapshot()[fake.provider].waiting == 2, 20,
                         "the query engine holding its slot and both shared ones, two calls waiting")
                # Every shared slot is held by the busy engine; the host's call goes through regardless.
                assert clients[HOST].complete("", "host speaks").text == "ok"
                assert limiter.snapshot()[fake.provider].waiting == 2
            finally:
                gate.set()
                for t in threads:
                    t.join(20)
        assert errors == []
        assert dict(limiter.snapshot()[fake.provider].by_role) == {}


# --- 429: AIMD ------------------------------------------------------------------------------------

def throttle(limiter: ProviderLimiter, key: str, role: str, n: int = 1) -> None:
    """n calls that all started before any of them got a 429."""
    with ExitStack() as stack:
        slots = [stack.enter_context(limiter.slot(key, timeout=0, role=role)) for _ in range(n)]
        for s in slots:
            s.throttled()


def succeed(limiter: ProviderLimiter, key: str, role: str, n: int) -> None:
    for _ in range(n):
        with limiter.slot(key, timeout=0, role=role):
            pass


def budget(limiter: ProviderLimiter, key: str = "p") -> int:
    return limiter.snapshot()[key].budget


def test_a_429_halves_the_budget_once_per_burst_down_to_one_slot_per_role_and_it_grows_back():
    limiter = ProviderLimiter(16, grow_after=3)
    limiter.set_endpoint("p", roles=(Q, HOST))  # floor: 2
    throttle(limiter, "p", Q, n=5)  # five calls in flight when the provider said 429: one cut
    assert budget(limiter) == 8 and limiter.snapshot()["p"].throttled == 5
    assert take(limiter, "p", Q, 20) == 7  # the cut budget is what is granted (the host keeps one)
    for _ in range(7):
        limiter.release("p", role=Q)
    throttle(limiter, "p", Q)
    assert budget(limiter) == 4
    throttle(limiter, "p", Q)
    throttle(limiter, "p", Q)
    throttle(limiter, "p", Q)
    assert budget(limiter) == 2 == limiter.snapshot()["p"].floor  # never below one slot per role
    assert limiter.acquire("p", timeout=0, role=HOST)  # the host's reservation survives the cuts
    limiter.release("p", role=HOST)
    succeed(limiter, "p", Q, 2)
    assert budget(limiter) == 2
    succeed(limiter, "p", Q, 1)  # every 3 successes give one slot back
    assert budget(limiter) == 3
    succeed(limiter, "p", Q, 3 * 13)
    assert budget(limiter) == 16
    succeed(limiter, "p", Q, 3)
    assert budget(limiter) == 16  # never above the limit


def test_a_failure_that_is_not_a_429_neither_cuts_nor_grows():
    limiter = ProviderLimiter(8, grow_after=1)
    throttle(limiter, "p", Q)
    assert budget(limiter) == 4
    with pytest.raises(RuntimeError):
        with limiter.slot("p", role=Q):
            raise RuntimeError("HTTP 500")
    assert budget(limiter) == 4 and limiter.in_flight() == {"p": 0}


def test_raising_the_limit_after_a_cut_keeps_the_cut_and_grows_to_the_new_limit():
    limiter = ProviderLimiter(8, grow_after=1)
    throttle(limiter, "p", Q)
    limiter.set_limit(12)
    assert budget(limiter) == 4
    succeed(limiter, "p", Q, 20)
    assert budget(limiter) == 12
    limiter.set_limit(6)  # following the limit again once grown back
    assert budget(limiter) == 6


def test_a_429_from_the_fake_server_shrinks_the_clients_budget():
    with FakeOpenAI() as fake:
        fake.script(FakeReply.rate_limit(retry_after=0))
        settings = settings_with({**fake.env(Q), "SHOAL_LLM_CONCURRENCY": "8"})
        limiter = ProviderLimiter(8, grow_after=2)
        with LlmClient(Q, settings, limiter=limiter, policy=FAST, sleep=lambda s: None) as llm:
            result = llm.complete("", "hello")  # retried after the 429
            assert result.text == "ok" and result.retries == 1
            stats = limiter.snapshot()[fake.provider]
            assert (stats.budget, stats.throttled, stats.limit) == (4, 1, 8)
            for _ in range(2 * 4):
                llm.complete("", "again")
        assert budget(limiter, fake.provider) == 8
        assert len(fake.requests) == 10
