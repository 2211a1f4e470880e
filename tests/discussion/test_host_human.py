"""The host answers the analyst: the offline host's "回应分析师" line, the LLM host's prompt, and the host
job, which hands the host the analyst's messages posted since its previous speech."""
from __future__ import annotations

import pytest

from core.discussion.host import LlmHost
from core.llm.client import LlmClient
from tests.discussion.test_host import MESSAGES, TOPIC, fake_settings, mv, offline
from tests.fakes.openai_server import FakeOpenAI, FakeReply

ASKED = mv(9, "HUMAN", "维权的车主要求什么补偿？", None, type="human")
UNCOVERED = mv(10, "HUMAN", "充电桩的建设跟上了吗？", None, type="human")


def answer_lines(speech: str) -> list[str]:
    return [line for line in speech.splitlines() if "回应分析师" in line or "Answering the analyst" in line]


def test_the_offline_host_answers_the_analyst_from_the_rounds_messages():
    plain = offline().speak(TOPIC, MESSAGES, None)
    speech = offline().speak(TOPIC, MESSAGES + [ASKED], None)
    assert not answer_lines(plain)
    [line] = answer_lines(speech)
    # it names the question, the engines whose messages mention its terms, with their words, and who is silent
    assert "维权的车主要求什么补偿？" in line
    assert "Insight Engine 谈到「维权」「车主」「补偿」" in line
    assert "老车主维权情绪强烈，不少人要求补偿差价" in line
    assert line.endswith("Query Engine、Media Engine 尚未涉及。")
    # the human message is not an engine's: the rest of the speech is the same analysis
    assert offline().analyse(TOPIC, MESSAGES + [ASKED]) == offline().analyse(TOPIC, MESSAGES)
    assert speech.replace(line + "\n", "") == plain


def test_the_offline_host_says_plainly_when_no_engine_covers_the_question():
    [line] = answer_lines(offline().speak(TOPIC, MESSAGES + [UNCOVERED], None))
    assert "充电桩的建设跟上了吗？" in line and "本轮引擎发言都没有涉及「充电」" in line
    assert "下一" in line or "接下来" in line
    # in English too, and with no agent message at all
    en = offline().speak("EV price war", [mv(11, "QUERY", "Dealers report record traffic after the price cuts."),
                                          mv(12, "HUMAN", "What do dealers say about traffic?", None, "human")], None)
    [line] = answer_lines(en)
    assert "Query Engine on “dealers” and “traffic”" in line or "Query Engine on “traffic” and “dealers”" in line
    alone = offline().speak(TOPIC, [UNCOVERED], None)
    assert "最近没有可供总结的引擎发言" in alone and answer_lines(alone)


def test_the_llm_host_is_told_to_answer_the_analyst():
    with FakeOpenAI(responder=lambda req: FakeReply.thinking("**回应分析师**：……")) as fake:
        host = LlmHost(LlmClient("FORUM_HOST", fake_settings(fake)))
        host.speak(TOPIC, MESSAGES + [ASKED], None)
        host.speak(TOPIC, MESSAGES, None)
        asked, plain = fake.requests[0].user, fake.requests[1].user
    assert "维权的车主要求什么补偿？" in asked and "**回应分析师**" in asked
    assert "维权的车主要求什么补偿？" not in plain and "回应分析师" not in plain
    # the analyst's message is not listed as an engine message
    assert "(HUMAN)" not in asked and "最近 5 条引擎发言" in asked


@pytest.mark.timeout(60)
def test_the_host_job_gives_the_host_the_analysts_messages_since_its_last_speech(db, events, monkeypatch):
    from core.discussion import host_job
    from core.forum import Forum, transcript
    from core.infra.models import Run, utcnow

    with db.session() as s:
        s.add(Run(id="run-hj", kind="analysis", topic=TOPIC, status="running", created_at=utcnow()))
    forum = Forum(db, events, None, host_every=2)
    forum.post_human("run-hj", "维权的车主要求什么补偿？")
    forum.post_summary("run-hj", source="QUERY", content="据报道，老车主维权，要求厂家补偿差价。", paragraph=0)
    last = forum.post_summary("run-hj", source="INSIGHT", content="微博上维权帖子转发量很高，车主情绪负面。", paragraph=0)

    class Ctx:  # what run_host_job reads of its JobContext
        run_id, topic, job_id = "run-hj", TOPIC, "run-hj-host-1"
        params = {"round": 1, "upto": last.id, "every": 2}
        run_params = {"offline": True}
        cancelled, trace_id = False, ""

        def __init__(self):
            from core.infra.config import load_settings
            self.settings, self.db, self.events = load_settings(), db, events

        def heartbeat(self, **kw):
            pass

        def check_cancelled(self):
            pass

        def emit(self, *a, **kw):
            pass

    monkeypatch.setattr(host_job, "_still_running", lambda ctx: True)
    out = host_job.run_host_job(Ctx())
    assert out["spoke"], out
    speech = [m for m in transcript(db, "run-hj") if m.type == "host"][-1]
    [line] = answer_lines(speech.content)
    assert "维权的车主要求什么补偿？" in line and "Query Engine" in line and "Insight Engine" in line
