"""The direct forum path: engines post their summaries to core.forum, whatever the log level; rounds
and host jobs; the llm_calls row behind each message."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core.analysis import start_analysis
from core.corpus.importers import import_records
from core.forum import HOST_KIND, Forum, ForumMessage, host_job_name, round_messages, round_of, transcript
from core.infra.config import load_settings
from core.infra.logs import setup_logging
from core.infra.models import LlmCall
from core.research.engine import ENGINES
from core.work.jobs import COMPLETED, HandlerInfo, JobSpec
from core.work.runs import jobs_of
from tests.research.test_engine import TOPIC, corpus_records, llm_responder, llm_settings, make_sup
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.search_servers import FakeTavilyServer

pytestmark = pytest.mark.timeout(180)

FORUM_LINE = re.compile(r"^\[\d{2}:\d{2}:\d{2}\] \[(QUERY|MEDIA|INSIGHT|HOST)\] (.*)$")


@pytest.fixture
def corpus(db):
    assert import_records(db, corpus_records(), source="test").imported == 11
    return db


def test_an_offline_analysis_at_warning_level_fills_the_forum(corpus, events, monkeypatch):
    """SHOAL_LOG_LEVEL=WARNING writes no engine record at all; the forum is as full as at INFO."""
    monkeypatch.setenv("SHOAL_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("FORUM_HOST_EVERY", "3")
    settings = load_settings()
    setup_logging(settings.log_dir, settings["SHOAL_LOG_LEVEL"], console=False)
    sup = make_sup(corpus, events, settings)
    try:
        run_id = start_analysis(sup, settings, TOPIC, paragraphs=2, reflections=1, offline=True)
        assert sup.wait_run(run_id, 150) == COMPLETED
    finally:
        sup.shutdown(5)
    # no engine log line was written: the forum cannot have come from the logs
    for name in ENGINES:
        path = settings.log_dir / f"{name}.log"
        assert not path.exists() or "清理后的输出" not in path.read_text(encoding="utf-8")

    msgs = transcript(corpus, run_id)
    agents = [m for m in msgs if m.type == "agent"]
    hosts = [m for m in msgs if m.type == "host"]
    assert all(isinstance(m, ForumMessage) for m in msgs)
    assert {m.source for m in agents} == {"QUERY", "MEDIA", "INSIGHT"}
    assert all(m.paragraph in (0, 1) and m.llm_call_id is None and m.trace_id for m in agents)
    # each engine's summaries: its first and its reflection summary of each of 2 paragraphs, less duplicates
    assert all(1 <= sum(m.source == s for m in agents) <= 4 for s in ("QUERY", "MEDIA", "INSIGHT"))
    assert [m.round for m in agents] == [round_of(i, 3) for i in range(1, len(agents) + 1)]
    rounds = len(agents) // 3
    assert rounds >= 1 and [h.round for h in hosts] == list(range(1, rounds + 1))
    assert all(h.source == "HOST" and h.sender == "Forum Host" and "**引导问题**" in h.content for h in hosts)

    # one short host job per round, each added when its round completed: none existed (or held a
    # slot) while waiting for messages, and no forum job polls beside the engines
    jobs = jobs_of(corpus, run_id)
    assert {j.kind for j in jobs} == {"coverage", "query", "media", "insight", "report", HOST_KIND}
    host_jobs = sorted((j for j in jobs if j.kind == HOST_KIND), key=lambda j: j.name)
    assert sorted(j.name for j in host_jobs) == sorted(host_job_name(k) for k in range(1, rounds + 1))
    for j in host_jobs:
        k = int(j.name.rsplit("-", 1)[1])
        last_of_round = agents[3 * k - 1]
        assert j.status == COMPLETED and j.result["spoke"] is True and j.result["round"] == k
        assert j.started_at >= last_of_round.timestamp

    # logs/forum.log in BettaFish's line format, one line per stored message
    lines = [l for l in (settings.log_dir / "forum.log").read_text(encoding="utf-8").splitlines()]
    parsed = [FORUM_LINE.match(l) for l in lines]
    assert all(parsed) and len(lines) == len(msgs)
    assert sorted(p.group(2) for p in parsed) == sorted(m.content.replace("\n", "\\n") for m in msgs)


def test_llm_summaries_and_speeches_name_the_llm_call_that_wrote_them(db, events):
    with FakeOpenAI(responder=llm_responder) as fake, FakeTavilyServer() as tavily:
        settings = llm_settings(fake, tavily, FORUM_HOST_EVERY=2, **fake.env("FORUM_HOST"))
        sup = make_sup(db, events, settings)
        try:
            run_id = start_analysis(sup, settings, TOPIC, engines="query", paragraphs=2, reflections=1)
            assert sup.wait_run(run_id, 120) == COMPLETED
        finally:
            sup.shutdown(5)
    agents = [m for m in transcript(db, run_id) if m.type == "agent"]
    assert agents and all(m.llm_call_id is not None for m in agents)
    with db.session() as s:
        calls = {c.id: c for c in s.scalars(select(LlmCall).where(LlmCall.run_id == run_id))}
    for m in agents:
        call = calls[m.llm_call_id]
        assert call.node in ("FirstSummaryNode", "ReflectionSummaryNode") and call.status == "ok"
        assert call.trace_id == m.trace_id  # the paragraph's trace ties the message to its call
    (speech,) = [m for m in transcript(db, run_id) if m.type == "host"]
    assert speech.round == 1 and calls[speech.llm_call_id].node == "ForumHostNode"


# -- the forum service on its own ------------------------------------------------------------------

class Jobs:
    """Stands in for the supervisor: records the host jobs the forum adds."""

    def __init__(self):
        self.added: list[tuple[str, JobSpec]] = []

    def add_jobs(self, run_id, specs):
        self.added += [(run_id, s) for s in specs]
        return [s.name for s in specs]


LONG = "比亚迪宣布全系车型降价，最高优惠两万元。老车主集体维权，要求厂家给予补偿，认为降价太突然。"


def test_every_nth_post_adds_that_rounds_host_job_and_duplicates_do_not_count(db, events, tmp_path):
    jobs = Jobs()
    forum = Forum(db, events, tmp_path, host_every=2, jobs=jobs)
    a = forum.post_summary("r1", source="QUERY", content="查询一", paragraph=0, llm_call_id=7)
    assert (a.round, a.llm_call_id, a.type, a.sender) == (1, 7, "agent", "Query Engine") and jobs.added == []
    assert forum.post_summary("r1", source="MEDIA", content=LONG) is not None
    (run_id, spec), = jobs.added
    assert (run_id, spec.kind, spec.name, spec.depends_on) == ("r1", HOST_KIND, "host-1", ())
    assert spec.params["round"] == 1 and spec.params["every"] == 2
    assert [m.content for m in round_messages(db, "r1", spec.params["upto"], 2)] == ["查询一", LONG]
    assert forum.post_summary("r1", source="INSIGHT", content=LONG + "[3]") is None  # a copy: no message, no count
    assert forum.post_summary("r2", source="QUERY", content="另一个运行") is not None  # other runs count apart
    c = forum.post_summary("r1", source="INSIGHT", content="洞察一")
    assert c.round == 2 and len(jobs.added) == 1
    forum.post_summary("r1", source="QUERY", content="查询二")
    assert [(r, s.name, s.depends_on, s.params["round"]) for r, s in jobs.added] == [
        ("r1", "host-1", (), 1), ("r1", "host-2", ("host-1",), 2)]
    skipped, _ = events.since(0, run_id="r1", types=["forum.duplicate_skipped"])
    assert len(skipped) == 1


def test_the_round_completing_post_adds_its_host_job_before_the_log_line_and_metering(db, events, tmp_path,
                                                                                     monkeypatch):
    """The host's round starts from the stored message: forum.log and the message's metering come after."""
    import core.forum

    jobs, seen = Jobs(), []
    monkeypatch.setattr(core.forum, "append_forum_log", lambda *a: seen.append(("log", len(jobs.added))))
    real_metered = core.forum.metered
    monkeypatch.setattr(core.forum, "metered", lambda *a: seen.append(("metered", len(jobs.added))) or real_metered(*a))
    forum = Forum(db, events, tmp_path, host_every=2, jobs=jobs)
    forum.post_summary("r1", source="QUERY", content="查询一", llm_call_id=7)
    view = forum.post_summary("r1", source="MEDIA", content=LONG, llm_call_id=8)
    assert view.round == 1 and [s.name for _, s in jobs.added] == ["host-1"]
    assert seen == [("log", 0), ("metered", 0), ("log", 1), ("metered", 1)]


def test_a_round_whose_post_arrives_first_adds_the_earlier_rounds_host_jobs_in_order(db, events, tmp_path):
    """Engines post from their own threads: the post completing round 2 can reach the scheduler before the
    one completing round 1. Round 1's job is then added first, so host-2 still depends on host-1 (a
    dependency on a job that does not exist yet would be dropped and the speeches could swap)."""
    posting = Forum(db, events, tmp_path, host_every=2)  # posts, schedules nothing
    ids = [posting.post_summary("r9", source=src, content=f"{src} 第{i}条").id
           for i, src in enumerate(("QUERY", "MEDIA", "INSIGHT", "QUERY"))]
    jobs = Jobs()
    forum = Forum(db, events, tmp_path, host_every=2, jobs=jobs)
    forum._schedule_host("r9", 2, ids[3])  # round 2's post arrives first
    forum._schedule_host("r9", 1, ids[1])  # then round 1's: already added
    assert [(s.name, s.depends_on, s.params["round"], s.params["upto"]) for _, s in jobs.added] == [
        ("host-1", (), 1, ids[1]), ("host-2", ("host-1",), 2, ids[3])]


def test_a_forum_without_a_supervisor_or_with_a_broken_one_still_posts(db, tmp_path):
    class Broken:
        def add_jobs(self, run_id, specs):
            raise ValueError("no handler is registered for job kind 'host'")

    for jobs in (None, Broken()):
        forum = Forum(db, None, tmp_path, host_every=1, jobs=jobs)
        assert forum.post_summary(f"run-{id(jobs)}", source="QUERY", content="一条") is not None


def _fake_engine(engine: str, texts: list[str]):
    def handler(ctx):
        forum = Forum(ctx.db, ctx.events, ctx.settings.log_dir, host_every=2, jobs=ctx.runs)
        for i, text in enumerate(texts):
            forum.post_summary(ctx.run_id, source=ENGINES[engine].source, content=text, paragraph=i)
        return {"engine": engine}
    return handler


def test_host_jobs_speak_in_order_once_each_and_a_failing_host_fails_nothing(db, events, make_supervisor, job_handlers,
                                                                           monkeypatch):
    import core.discussion.host as host_mod

    spoken = []

    class Host:
        mode = "offline"

        def speak(self, topic, messages, previous):
            contents = [m.content for m in messages]
            spoken.append((contents, previous))
            if contents == ["q2", "q3"]:
                raise RuntimeError("host LLM unavailable")
            return f"发言：{contents[0]}"

    monkeypatch.setattr(host_mod, "make_host", lambda *a, **k: Host())
    monkeypatch.setitem(job_handlers, "query", HandlerInfo("query", _fake_engine("query", ["q0", "q1", "q2", "q3",
                                                                                       "q4", "q5"])))
    sup = make_supervisor()
    sup.settings = load_settings()
    run_id = sup.submit_run([JobSpec("query")], topic="价格战", params={"offline": True})
    assert sup.wait_run(run_id, 60) == COMPLETED
    hosts = [(m.round, m.content) for m in transcript(db, run_id) if m.type == "host"]
    assert hosts == [(1, "发言：q0"), (3, "发言：q4")]
    # in round order; rounds 1 and 3 once each; round 2 by its own job, and perhaps before that by host-1's
    # job when round 2 was complete by the time round 1 was spoken (a failure there is left to host-2)
    assert [c for c, _ in spoken if c != ["q2", "q3"]] == [["q0", "q1"], ["q4", "q5"]]
    assert 1 <= [c for c, _ in spoken].count(["q2", "q3"]) <= 2
    assert [c[0] for c, _ in spoken] == sorted(c[0] for c, _ in spoken)
    assert dict((c[0], p) for c, p in spoken) == {"q0": None, "q2": "发言：q0", "q4": "发言：q0"}
    results = {j.name: j.result for j in jobs_of(db, run_id) if j.kind == HOST_KIND}
    assert results["host-2"] == {"round": 2, "spoke": False, "error": "RuntimeError"}
    failed, _ = events.since(0, run_id=run_id, types=["forum.host_failed"])
    assert [e.payload["round"] for e in failed] == [2]
    # a host job run again (a resume) does not speak twice
    attempts = len(spoken)
    (again,) = sup.add_jobs(run_id, [JobSpec(HOST_KIND, name="host-1", params={"round": 1, "upto": 10**9})])
    assert sup.wait_run(run_id, 60) == COMPLETED
    assert {j.id: j.result for j in jobs_of(db, run_id)}[again]["already_spoken"] is True
    assert len(spoken) == attempts


def test_a_host_job_speaks_for_the_rounds_already_waiting_for_it_in_order(db, events, make_supervisor, monkeypatch):
    # Three rounds complete before any host job runs: the first job speaks all three, in order, each
    # under its round's own job's trace; the later jobs find their speech and end without speaking.
    import core.discussion.host as host_mod
    from core.infra.tracing import current_trace_id

    spoken = []

    class Host:
        mode = "offline"

        def speak(self, topic, messages, previous):
            spoken.append(([m.content for m in messages], previous, current_trace_id()))
            return f"发言：{messages[0].content}"

    monkeypatch.setattr(host_mod, "make_host", lambda *a, **k: Host())
    queuer = make_supervisor(start=False)
    run_id = queuer.submit_run([JobSpec("probe", name="engine", params={"steps": 1, "step_seconds": 0})],
                               topic="价格战", params={"offline": True})
    forum = Forum(db, events, None, host_every=2, jobs=queuer)
    posts = ["新闻：多家车企跟进降价，价格战进入白热化。", "视频平台：4S店客流翻倍，销售忙到停不下来。",
             "老车主在论坛抱怨保值率下跌，要求厂家补偿。", "分析师认为电池成本下降是降价的底气所在。",
             "二手车商暂停收购新能源车，观望情绪浓厚。", "经销商库存压力缓解，但单车利润明显变薄。"]
    for i, text in enumerate(posts):
        forum.post_summary(run_id, source="QUERY", content=text, paragraph=i)
    jobs = {j.name: j for j in jobs_of(db, run_id)}
    assert [jobs[host_job_name(k)].status for k in (1, 2, 3)] == ["pending"] * 3
    queuer.start()
    assert queuer.wait_run(run_id, 60) == COMPLETED
    hosts = [(m.round, m.content, m.trace_id) for m in transcript(db, run_id) if m.type == "host"]
    jobs = {j.name: j for j in jobs_of(db, run_id)}
    assert [(r, c) for r, c, _ in hosts] == [(1, f"发言：{posts[0]}"), (2, f"发言：{posts[2]}"), (3, f"发言：{posts[4]}")]
    assert [t for _, _, t in hosts] == [jobs[host_job_name(k)].trace_id for k in (1, 2, 3)]
    assert [p for _, p, _ in spoken] == [None, f"发言：{posts[0]}", f"发言：{posts[2]}"]
    assert [t for _, _, t in spoken] == [jobs[host_job_name(k)].trace_id for k in (1, 2, 3)]
    first = jobs[host_job_name(1)].result
    assert [r["round"] for r in first["following_rounds"]] == [2, 3]
    assert all(r["spoke"] for r in first["following_rounds"])
    for k in (2, 3):
        assert jobs[host_job_name(k)].status == COMPLETED
        assert jobs[host_job_name(k)].result["already_spoken"] is True


def test_the_post_completing_a_round_starts_its_host_without_a_scheduling_pass(db, events, make_supervisor,
                                                                               job_handlers, monkeypatch):
    """The round's host job is claimed by the post that completes the round: with the scheduler stuck
    (its pass lock held) the engine, still running, sees the round's speech."""
    import threading

    import core.discussion.host as host_mod
    from core.forum import speech_of_round
    from tests.conftest import wait_for

    class Host:
        mode = "offline"

        def speak(self, topic, messages, previous):
            return "主持人：" + "、".join(m.content for m in messages)

    started, go = threading.Event(), threading.Event()

    def engine(ctx):
        started.set()
        go.wait(30)
        forum = Forum(ctx.db, ctx.events, ctx.settings.log_dir, host_every=2, jobs=ctx.runs)
        for i, text in enumerate(("q0", "q1")):
            forum.post_summary(ctx.run_id, source="QUERY", content=text, paragraph=i)
        wait_for(lambda: speech_of_round(ctx.db, ctx.run_id, 1), timeout=20, what="the round's speech")
        return {"engine": "query"}

    monkeypatch.setattr(host_mod, "make_host", lambda *a, **k: Host())
    monkeypatch.setitem(job_handlers, "query", HandlerInfo("query", engine))
    sup = make_supervisor()
    sup.settings = load_settings()
    run_id = sup.submit_run([JobSpec("query")], topic="价格战", params={"offline": True})
    started.wait(30)
    with sup._pass_lock:  # no scheduling pass from here on
        go.set()
        assert sup.wait_run(run_id, 60) == COMPLETED
    assert [(m.round, m.content) for m in transcript(db, run_id) if m.type == "host"] == [(1, "主持人：q0、q1")]


def test_an_unwritable_forum_log_costs_the_file_copy_not_the_message(tmp_path):
    from core.forum import append_forum_log

    blocked = tmp_path / "logs"
    blocked.write_text("a file where the folder should be")  # mkdir and open both fail with OSError
    append_forum_log(blocked, "[12:00:00] [QUERY] 第一段")
    append_forum_log(blocked, "[12:00:01] [QUERY] 第二段")
    ok = tmp_path / "ok"
    append_forum_log(ok, "[12:00:02] [HOST] 主持人发言")
    assert (ok / "forum.log").read_text(encoding="utf-8") == "[12:00:02] [HOST] 主持人发言\n"
