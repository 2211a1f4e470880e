"""A run's budget (core.llm.run_budget): reservations that bound the overshoot of racing nodes, the
client's gate and accounting against the fake endpoint, the 80 % warning once, unpriced models on the
token cap, and a second process that starts from what the first one spent."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from core.infra.config import load_settings
from core.infra.events import EventLog
from core.infra.models import Event, LlmCall, Run
from core.infra.db import open_database
from core.llm.client import LlmClient
from core.llm.limits import ProviderLimiter
from core.llm import run_budget
from core.llm.run_budget import (BUDGET_REACHED, BUDGET_WARNING, Caps, LlmBudgetReached, RunBudget, RunBudgets,
                                 budget_notes, budget_params, budgets, caps_of)
from core.infra import retry as retry_mod
from dataclasses import replace
from tests.fakes.openai_server import FakeOpenAI

ROLE = "QUERY_ENGINE"
FAST = replace(retry_mod.LLM, max_attempts=1, max_seconds=0.001)


@pytest.fixture
def database(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'budget.db'}")
    assert db.ok, db.error
    yield db
    db.dispose()


@pytest.fixture(autouse=True)
def _fresh_budgets():
    budgets.forget()
    yield
    budgets.forget()


def _run(db, run_id: str, **caps) -> None:
    with db.session() as s:
        s.add(Run(id=run_id, kind="analysis", topic="t", params={"budget": caps}))


def _events(db, run_id: str, type_: str) -> list[dict]:
    with db.session() as s:
        return list(s.scalars(select(Event.payload).where(Event.run_id == run_id, Event.type == type_)))


def _client(srv: FakeOpenAI, db, events, tmp: Path, **extra) -> LlmClient:
    settings = load_settings(env={**srv.env(ROLE), **extra}, env_file=tmp / ".env")
    return LlmClient(ROLE, settings, db=db, events=events, limiter=ProviderLimiter(8), policy=FAST)


# -- the caps -----------------------------------------------------------------------------------------------

def test_caps_come_from_the_settings_or_the_run_and_zero_means_none():
    settings = load_settings(env={"SHOAL_RUN_MAX_TOKENS": "50000", "SHOAL_RUN_MAX_COST_USD": "1.5"},
                             env_file=Path("/nonexistent/.env"))
    assert budget_params(settings) == {"max_tokens": 50000, "max_cost_usd": 1.5}
    assert budget_params(settings, 0, 0.25) == {"max_tokens": 0, "max_cost_usd": 0.25}
    with pytest.raises(ValueError, match="negative"):
        budget_params(settings, -1)
    assert caps_of({"budget": {"max_tokens": 10, "max_cost_usd": 0}}) == Caps(10, 0.0)
    assert not caps_of({}).active and not caps_of({"budget": {"max_tokens": "x"}}).active
    assert not Caps(0, 0).active and Caps(0, 0.1).active


# -- reservations: racing nodes ------------------------------------------------------------------------------

def _race(reserve_each: int, cap: int, threads: int = 16, use: int = 100) -> tuple[int, int]:
    """`threads` nodes try to start at the same moment; each admitted one uses `use` tokens. Returns
    (tokens spent, nodes admitted)."""
    budget = RunBudget("race", Caps(max_tokens=cap))
    start, in_flight = threading.Barrier(threads), threading.Barrier(threads)
    admitted = []
    lock = threading.Lock()

    def node():
        start.wait()
        ticket = budget.admit("FirstSummaryNode", reserve_each, 0.0)
        in_flight.wait()  # every racer has asked before any admitted one has finished
        if ticket is None:
            return
        with lock:
            admitted.append(ticket)
        budget.settle(ticket, "FirstSummaryNode", use, None, "m")
        budget.release(ticket)

    workers = [threading.Thread(target=node) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return budget.tokens, len(admitted)


def test_racing_nodes_overshoot_the_cap_by_at_most_one_node_with_reservations():
    cap, use = 350, 100
    for _ in range(20):  # many races, each one bounded
        spent, admitted = _race(reserve_each=use, cap=cap, use=use)
        assert spent <= cap + use, spent
        assert admitted <= cap // use + 1
    # Without a reservation every racer sees the same free budget: the overshoot is what was in flight.
    spent, admitted = _race(reserve_each=0, cap=cap, use=use)
    assert spent > cap + use and admitted == 16


def test_a_call_settles_its_reservation_and_the_slack_is_counted():
    budget = RunBudget("r", Caps(max_tokens=1000))
    ticket = budget.admit("FirstSearchNode", 300, 0.0)
    assert budget.reserved_tokens == 300
    budget.top_up(ticket, 450, 0.0)  # the call's bound was above the node's guess
    assert budget.reserved_tokens == 450 and budget.unreserved == 150
    warn, figures = budget.settle(ticket, "FirstSearchNode", 200, None, "local-model", prompt_bound=180)
    assert budget.tokens == 200 and budget.reserved_tokens == 250 and not warn
    assert figures["unpriced_models"] == ["local-model"]
    budget.release(ticket)
    assert budget.reserved_tokens == 0 and budget.input_guess("FirstSearchNode") == 225  # a quarter over 180
    assert budget.input_guess("OtherNode") == run_budget.DEFAULT_INPUT_GUESS  # a node not seen yet
    budget.settle(None, "FirstSummaryNode", 0, None, "m", prompt_bound=8000)
    assert budget.input_guess("OtherNode") == 10_000  # a quarter over the largest prompt of any node


# -- the client: gate, reserve, settle against the fake endpoint ----------------------------------------------

def test_the_client_counts_every_call_warns_once_at_80_percent_and_refuses_new_nodes_at_the_cap(database, tmp_path):
    events = EventLog(database)
    _run(database, "r-cli", max_tokens=1000, max_cost_usd=0)
    try:
        with FakeOpenAI(default="x" * 100) as srv:  # usage: prompt characters + 100 completion characters
            llm = _client(srv, database, events, tmp_path)
            calls = 0
            with pytest.raises(LlmBudgetReached, match="budget is reached") as refused:
                for _ in range(50):
                    llm.complete("s", "u" * 96, node="FirstSummaryNode", run_id="r-cli")
                    calls += 1
            served = len(srv.requests)
        assert refused.value.kind == "budget"
    finally:
        events.close()
    with database.session() as s:
        rows = list(s.scalars(select(LlmCall).where(LlmCall.run_id == "r-cli")))
    assert len(rows) == calls == served  # the refused node made no request and left no row
    spent = sum(r.input_tokens + r.output_tokens for r in rows)
    assert 1000 <= spent < 1000 + rows[0].input_tokens + rows[0].output_tokens  # one call past the cap at most
    assert len(_events(database, "r-cli", BUDGET_WARNING)) == 1
    [reached] = _events(database, "r-cli", BUDGET_REACHED)
    assert reached["tokens"] == spent and reached["max_tokens"] == 1000
    assert budgets.state(database, "r-cli").reserved_tokens == 0  # every call settled its reservation


def test_unpriced_models_count_against_the_token_cap_but_not_the_cost_cap(database, tmp_path):
    _run(database, "r-unpriced", max_tokens=0, max_cost_usd=0.01)
    _run(database, "r-tokens", max_tokens=300, max_cost_usd=0.01)
    with FakeOpenAI(default="y" * 100) as srv:
        llm = _client(srv, database, None, tmp_path)  # "fake-model": in no price table
        for _ in range(5):
            llm.complete("s", "u" * 200, node="FirstSummaryNode", run_id="r-unpriced")  # never refused: no price
        llm.complete("s", "u" * 200, node="FirstSummaryNode", run_id="r-tokens")
        with pytest.raises(LlmBudgetReached):
            llm.complete("s", "u" * 200, node="FirstSummaryNode", run_id="r-tokens")
    state = budgets.state(database, "r-unpriced")
    assert state.tokens > 1000 and state.cost == 0 and state.unpriced == {srv.model}
    [note] = budget_notes(database, "r-unpriced")
    assert srv.model in note.render("en") and "token cap" in note.render("en") and "未定价" in note.render("zh")


def test_a_priced_model_is_stopped_by_the_cost_cap(database, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"fake-model": {"input": 1000, "output": 1000}}))  # $0.001 a token
    _run(database, "r-cost", max_tokens=0, max_cost_usd=0.5)
    with FakeOpenAI(default="z" * 100) as srv:
        llm = _client(srv, database, None, tmp_path, SHOAL_PRICE_TABLE=str(prices))
        done = 0
        with pytest.raises(LlmBudgetReached):
            for _ in range(20):
                llm.complete("s", "u" * 96, node="FirstSummaryNode", run_id="r-cost")
                done += 1
    state = budgets.state(database, "r-cost")
    assert 0.5 <= state.cost < 0.5 + 0.25 and done == 3  # each call ~$0.2
    assert budget_notes(database, "r-cost") == []  # every model priced, the budget not reached by an engine


def test_a_run_without_caps_is_never_refused_and_costs_no_state(database, tmp_path):
    _run(database, "r-free")
    with FakeOpenAI(default="ok") as srv:
        llm = _client(srv, database, None, tmp_path)
        for _ in range(3):
            llm.complete("s", "u", node="FirstSummaryNode", run_id="r-free")
    assert budgets.state(database, "r-free") is None and not run_budget.exhausted(database, "r-free")


# -- another process ---------------------------------------------------------------------------------------

def test_a_second_process_starts_from_what_the_run_already_spent(database):
    _run(database, "r-two", max_tokens=5000)
    with database.session() as s:
        for _ in range(3):
            s.add(LlmCall(run_id="r-two", role=ROLE, provider="p", model="m", node="FirstSummaryNode",
                          input_tokens=1200, output_tokens=400, latency_ms=1.0, retries=0, status="ok"))
    other = RunBudgets()  # a fresh process's registry
    state = other.state(database, "r-two")
    assert state.tokens == 4800 and not state.is_spent()
    with database.session() as s:  # the first process spends more meanwhile
        s.add(LlmCall(run_id="r-two", role=ROLE, provider="p", model="m", node="FirstSummaryNode",
                      input_tokens=300, output_tokens=0, latency_ms=1.0, retries=0, status="error"))
    other.sync(database, state, force=True)
    assert state.tokens == 5100 and state.is_spent()
    assert run_budget.exhausted(database, "r-two")  # the process's own registry reads the same


# -- what the run's outcome and its report say -------------------------------------------------------------

def test_a_reached_budget_is_a_degraded_reason_with_n_of_m_paragraphs_in_both_languages(database):
    from core.i18n import tr
    from core.infra.models import Job
    from core.work import outcomes

    _run(database, "r-out", max_tokens=100)
    with database.session() as s:
        s.add(Job(id="r-out-q", run_id="r-out", kind="query", name="query", status="completed",
                  result={"paragraphs": [{"index": 1}, {"index": 2}]}))
        s.add(Job(id="r-out-m", run_id="r-out", kind="media", name="media", status="completed",
                  result={"paragraphs": [{"index": 1}, {"index": 2}, {"index": 3}, {"index": 4}, {"index": 5}]}))
        s.add(Event(run_id="r-out", source="budget", type=BUDGET_REACHED, payload={"tokens": 120}))
        s.add(Event(run_id="r-out", source="engine", type=run_budget.ENGINE_STOPPED,
                    payload={"engine": "query", "written": 2, "planned": 5}))
    with database.session() as s:
        got = [d for d in outcomes.degraded_reasons(s, "r-out") if d["reason"] == "budget_reached"]
        assert outcomes.degraded_reasons(s, "r-none", jobs=[]) == []
    assert got == [{"reason": "budget_reached", "engine": "run", "count": 7, "written": 7, "planned": 10}]
    assert "after 7 of 10 paragraphs" in outcomes.describe(got[0])
    assert "10 个段落中的 7 个" in outcomes.describe_msg(got[0]).render("zh")
    assert "⟦" not in tr("zh", "widgets.reason_budget_reached") + tr("en", "widgets.reason_budget_reached")
    notes = [m.render("en") for m in budget_notes(database, "r-out", report_offline=True)]
    assert notes[0] == "Budget reached after 7 of 10 paragraphs: the analysis stopped there."
    assert "offline writer" in notes[1]
