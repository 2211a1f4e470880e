"""Calls against a small local model (the fake's `local` mode: one request at a time, no usage, replies
cut at max_tokens, prose instead of JSON): every call is bounded by its node's max_tokens and
deadline, counted (estimated and marked so), and a role that fails node after node is switched off."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from core.infra import retry as retry_mod
from core.infra.config import load_settings
from core.infra.db import open_database
from core.infra.events import EventLog
from core.infra.models import Event, LlmCall
from core.llm.breaker import BREAKER_EVENT, breakers, switched_off_notes
from core.llm.budgets import NODE_BUDGETS, node_budget, parse_node_map
from core.llm.client import LlmCircuitOpen, LlmClient, LlmJsonError, LlmUnavailable
from core.llm.limits import ProviderLimiter
from tests.fakes.openai_server import LOCAL_PROSE, FakeOpenAI, FakeReply, count_tokens

ROLE = "QUERY_ENGINE"


@pytest.fixture
def database(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'local.db'}")
    assert db.ok, db.error
    yield db
    db.dispose()


@pytest.fixture(autouse=True)
def _fresh():
    breakers.reset()
    retry_mod.reset_retry_counts()
    yield
    breakers.reset()


def client(fake: FakeOpenAI, db=None, events=None, **env) -> LlmClient:
    settings = load_settings(env={**fake.env(ROLE), "RETRY_MAX_SECONDS": "0", **{k: str(v) for k, v in env.items()}})
    return LlmClient(ROLE, settings, db=db, events=events, limiter=ProviderLimiter(8))


def rows(db) -> list[LlmCall]:
    with db.session() as s:
        return list(s.scalars(select(LlmCall).order_by(LlmCall.id)))


def test_each_node_sends_its_max_tokens_and_the_local_server_cuts_the_reply_there(database):
    with FakeOpenAI(local=True) as fake:
        llm = client(fake, database)
        with pytest.raises(LlmJsonError) as info:
            llm.complete_json("s", "plan", required_keys=("search_query",), node="FirstSearchNode")
        answer = llm.complete("s", "write", node="ReportSectionNode")
    limit = NODE_BUDGETS["FirstSearchNode"].max_tokens
    assert info.value.attempts == 3
    json_asks = fake.requests[:3]
    assert [r.get("max_tokens") for r in json_asks] == [limit] * 3
    assert all(r.sent_chars == limit < len(LOCAL_PROSE) for r in json_asks)  # cut at max_tokens
    assert fake.requests[3].get("max_tokens") == NODE_BUDGETS["ReportSectionNode"].max_tokens
    assert answer.truncated and answer.text == LOCAL_PROSE[:NODE_BUDGETS["ReportSectionNode"].max_tokens].strip()
    # No usage from the server: every call, the three failed asks included, is estimated and says so.
    stored = rows(database)
    assert [(r.status, r.error_kind) for r in stored] == [("error", "parse")] * 3 + [("ok", None)]
    assert all(r.tokens_estimated and r.input_tokens > 0 and r.output_tokens > 0 for r in stored)
    assert stored[0].output_tokens == (limit + 3) // 4  # English prose: about four characters a token


def test_the_local_server_answers_one_request_at_a_time():
    with FakeOpenAI(local=True, default="plain answer") as fake:
        llm = client(fake)
        threads = [threading.Thread(target=llm.complete, args=("s", f"q{i}"), kwargs={"node": "ForumHostNode"})
                   for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(fake.requests) == 4 and fake.max_concurrency() == 1
    assert all(not r.reply.usage for r in fake.requests)


def test_settings_override_a_nodes_max_tokens_and_deadline():
    assert parse_node_map(" FirstSummaryNode=3000, *=60 ") == {"FirstSummaryNode": 3000.0, "*": 60.0}
    with pytest.raises(ValueError):
        parse_node_map("FirstSummaryNode:3000")
    settings = load_settings(env={"LLM_NODE_MAX_TOKENS": "FirstSummaryNode=3000", "LLM_NODE_DEADLINES": "*=60"})
    assert node_budget("FirstSummaryNode", settings).max_tokens == 3000
    assert node_budget("FirstSearchNode", settings) == NODE_BUDGETS["FirstSearchNode"].__class__(
        NODE_BUDGETS["FirstSearchNode"].max_tokens, 60.0)
    bad = load_settings(env={"LLM_NODE_MAX_TOKENS": "lots"})
    assert "LLM_NODE_MAX_TOKENS" in bad.errors and node_budget("FirstSummaryNode", bad) == \
        NODE_BUDGETS["FirstSummaryNode"]
    with FakeOpenAI() as fake:
        client(fake, LLM_NODE_MAX_TOKENS="KeywordOptimizerNode=77").complete("s", "u", node="KeywordOptimizerNode")
    assert fake.requests[0].get("max_tokens") == 77


def test_a_node_whose_model_keeps_failing_stops_asking_at_its_deadline(database):
    # Each prose reply trickles for ~2 s; the node's deadline (1 s) ends the first ask: no usable JSON
    # and no time left, so the node fails at once instead of asking twice more.
    slow = FakeReply.trickle("not json " * 40, chars=4, every=0.05)
    with FakeOpenAI(local=True, responder=lambda req: slow) as fake:
        llm = client(fake, database, LLM_NODE_DEADLINES="ReflectionNode=1", LLM_TIMEOUT=60)
        with pytest.raises(LlmUnavailable) as info:
            llm.complete_json("s", "u", required_keys=("search_query",), node="ReflectionNode")
    assert info.value.kind == "timeout" and "LLM_NODE_DEADLINES" in str(info.value)
    assert len(fake.requests) == 1
    [row] = rows(database)
    assert row.error_kind == "timeout" and row.output_tokens > 0 and row.tokens_estimated


def test_a_deadline_that_ends_the_re_asks_fails_the_node_as_unparsable(database):
    # The first ask answers prose quickly; the re-ask trickles past the deadline: the node failed for
    # want of JSON (what the breaker counts), not for an unreachable endpoint.
    with FakeOpenAI(local=True) as fake:
        fake.script("no json here", FakeReply.trickle("still no json " * 40, chars=4, every=0.05))
        llm = client(fake, database, LLM_NODE_DEADLINES="FirstSearchNode=1")
        with pytest.raises(LlmJsonError) as info:
            llm.complete_json("s", "u", required_keys=("search_query",), node="FirstSearchNode")
    assert info.value.attempts == 2 and "deadline" in str(info.value)
    assert [r.error_kind for r in rows(database)] == ["parse", "timeout"]


def test_a_role_failing_json_node_after_node_is_switched_off_for_the_run(database):
    events = EventLog(database)
    try:
        with FakeOpenAI(local=True) as fake:
            llm = client(fake, database, events, LLM_BREAKER_FAILURES=2)
            other = client(fake, database, events, LLM_BREAKER_FAILURES=2)
            ask = dict(required_keys=("paragraphs",), node="ReportStructureNode")
            with pytest.raises(LlmJsonError):
                llm.complete_json("s", "u", run_id="run-a", **ask)
            fake.script({"paragraphs": ["ok"]})  # an answer in between resets the count
            assert llm.complete_json("s", "u", run_id="run-a", **ask) == {"paragraphs": ["ok"]}
            for _ in range(2):
                with pytest.raises(LlmJsonError):
                    llm.complete_json("s", "u", run_id="run-a", **ask)
            sent = len(fake.requests)
            # Open: every later call of the role in this run fails at once, with no request, plain or JSON,
            # from any client of the role; another run and calls without a run are not affected.
            with pytest.raises(LlmCircuitOpen) as info:
                other.complete("s", "u", run_id="run-a", node="ReportSectionNode")
            with pytest.raises(LlmCircuitOpen):
                llm.complete_json("s", "u", run_id="run-a", **ask)
            assert len(fake.requests) == sent
            assert info.value.kind == "breaker" and "LLM_BREAKER_FAILURES" in str(info.value)
            assert llm.complete("s", "u", run_id="run-b", node="ReportSectionNode").text
            assert llm.complete("s", "u", node="ReportSectionNode").text
        events.flush()
        with database.session() as s:
            opened = list(s.scalars(select(Event).where(Event.type == BREAKER_EVENT)))
        assert [(e.run_id, e.payload["role"], e.payload["failures"]) for e in opened] == [("run-a", ROLE, 2)]
        # Refused calls are not llm_calls rows (no request was made): one row per request, run-b's included.
        assert len(rows(database)) == len(fake.requests) == sent + 2
    finally:
        events.close()


def test_after_a_failed_node_the_next_json_node_gets_one_ask_until_one_answers(database):
    with FakeOpenAI(local=True) as fake:
        llm = client(fake, database, LLM_BREAKER_FAILURES=5)
        ask = dict(required_keys=("paragraphs",), node="ReportStructureNode")

        def asks_of_one_node(run_id: str = "run-1") -> int:
            before = len(fake.requests)
            with pytest.raises(LlmJsonError):
                llm.complete_json("s", "u", run_id=run_id, **ask)
            return len(fake.requests) - before

        assert asks_of_one_node() == 3          # a fresh role: its three asks
        assert asks_of_one_node() == 1          # its last node failed: one ask
        assert asks_of_one_node() == 1
        assert asks_of_one_node("run-2") == 3   # another run counts apart
        fake.script({"paragraphs": ["ok"]})
        assert llm.complete_json("s", "u", run_id="run-1", **ask) == {"paragraphs": ["ok"]}
        assert asks_of_one_node() == 3          # a node that answered gives the role its asks back
        # calls without a run are never limited
        before = len(fake.requests)
        with pytest.raises(LlmJsonError):
            llm.complete_json("s", "u", **ask)
        assert len(fake.requests) - before == 3


def test_a_model_switched_off_in_one_role_is_switched_off_in_every_role_that_calls_it(database):
    events = EventLog(database)
    try:
        with FakeOpenAI(local=True) as fake:
            query = client(fake, database, events, LLM_BREAKER_FAILURES=2)
            env = {k.replace(ROLE, "MEDIA_ENGINE"): v for k, v in fake.env(ROLE).items()}
            media = LlmClient("MEDIA_ENGINE", load_settings(env={**env, "RETRY_MAX_SECONDS": "0",
                                                                  "LLM_BREAKER_FAILURES": "2"}),
                              db=database, events=events, limiter=ProviderLimiter(8))
            assert media.model == query.model and media.provider == query.provider
            other_model = LlmClient("INSIGHT_ENGINE", load_settings(env={
                **{k.replace(ROLE, "INSIGHT_ENGINE"): v for k, v in fake.env(ROLE).items()},
                "INSIGHT_ENGINE_MODEL_NAME": "another-model", "RETRY_MAX_SECONDS": "0"}),
                db=database, events=events, limiter=ProviderLimiter(8))
            ask = dict(required_keys=("paragraphs",), node="ReportStructureNode")
            for _ in range(2):
                with pytest.raises(LlmJsonError):
                    query.complete_json("s", "u", run_id="run-m", **ask)
            sent = len(fake.requests)
            # MEDIA_ENGINE never failed itself, but calls the same model at the same server: refused at
            # once, with no request, in this run only; a role on another model still asks.
            for _ in range(2):
                with pytest.raises(LlmCircuitOpen) as info:
                    media.complete("s", "u", run_id="run-m", node="FirstSummaryNode")
            assert "QUERY_ENGINE" in str(info.value)
            assert len(fake.requests) == sent
            assert media.complete("s", "u", run_id="run-n", node="FirstSummaryNode").text
            assert other_model.complete("s", "u", run_id="run-m", node="FirstSummaryNode").text
            assert len(fake.requests) == sent + 2
        events.flush()
        with database.session() as s:
            opened = [e.payload for e in s.scalars(select(Event).where(Event.type == BREAKER_EVENT).order_by(Event.id))]
        # one event per role switched off, the second naming the role whose failures switched its model off
        assert [(p["role"], p["failures"], p["via"]) for p in opened] == [
            ("QUERY_ENGINE", 2, ""), ("MEDIA_ENGINE", 2, "QUERY_ENGINE")]
        with database.session() as s:
            notes = [m.render("en") for m in switched_off_notes(database, "run-m")]
        assert len(notes) == 2 and "in QUERY_ENGINE" in notes[1] and "MEDIA_ENGINE" in notes[1]
    finally:
        events.close()


def test_a_usage_without_output_tokens_is_estimated(database):
    with FakeOpenAI() as fake:
        fake.script(FakeReply.text("网友热议", completion_tokens=0))
        result = client(fake, database).complete("s", "u", node="ForumHostNode")
    assert result.usage_estimated and result.output_tokens == 4 and result.input_tokens == count_tokens("s\nu")
    assert rows(database)[0].tokens_estimated is True


def test_an_endpoint_that_wants_max_completion_tokens_gets_it_from_then_on():
    def responder(req):
        if req.get("max_tokens") is not None:
            return FakeReply.error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                        "Use 'max_completion_tokens' instead.")
        return f"limit {req.get('max_completion_tokens')}"

    with FakeOpenAI(responder=responder) as fake:
        llm = client(fake)
        first = llm.complete("s", "u", node="KeywordOptimizerNode")
        second = llm.complete("s", "u", node="FirstSearchNode")
    assert first.text == f"limit {NODE_BUDGETS['KeywordOptimizerNode'].max_tokens}"
    assert second.text == f"limit {NODE_BUDGETS['FirstSearchNode'].max_tokens}"
    assert [r.status for r in fake.requests] == [400, 200, 200]
