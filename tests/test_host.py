"""The forum host: the offline moderator on crafted messages, the LLM host against a fake server,
the fallback between them, and make_host's choice."""
from __future__ import annotations

import os
import re
from datetime import datetime

import pytest
from sqlalchemy import select

from core.config import load_settings
from core.forum import MessageView
from core.host import MAX_SPEECH, FallbackHost, LlmHost, OfflineHost, make_host
from core.llm import LlmClient, LlmError
from core.models import LlmCall
from core.textstats import has_cjk
from tests.fakes.openai_server import FakeOpenAI, FakeReply

TOPIC = "新能源汽车降价舆情"


def mv(i: int, source: str, content: str, paragraph: int | None = 1, type: str = "agent") -> MessageView:
    return MessageView(i, "run-host", type, f"{source.title()} Engine", source, content, paragraph, "",
                       datetime(2025, 3, 3, 12, 0, i))


MESSAGES = [
    mv(1, "QUERY", "据新华社2025年3月1日报道，某品牌新能源汽车宣布全系降价，官方声明称电池成本下降是主要原因。多家媒体转载了官方声明。"),
    mv(2, "MEDIA", "抖音上关于电池成本和降价的短视频播放量超过千万，博主实测续航，直播间销量明显上升。"),
    mv(3, "INSIGHT", "微博用户讨论集中在电池成本与降价，老车主维权情绪强烈，不少人要求补偿差价，维权帖子转发量很高。"),
    mv(4, "QUERY", "2025年3月3日，官方声明补充说明了价格保护政策，电池成本仍是焦点。", 2),
    mv(5, "INSIGHT", "老车主维权持续发酵，部分用户认为降价损害了品牌信任，电池成本下降的说法受到质疑。", 2),
]


def negative_if_protest(texts: list[str]) -> list[tuple[int, float]]:
    """A stand-in classifier: sentences about 维权/质疑 are negative, the rest positive."""
    return [(0, 0.1) if ("维权" in t or "质疑" in t) else (1, 0.9) for t in texts]


def missing_model(texts: list[str]) -> list[tuple[int, float]]:
    raise FileNotFoundError("sentiment model not found")


def offline(**kw) -> OfflineHost:
    return OfflineHost(classifier=kw.pop("classifier", negative_if_protest), **kw)


def questions(speech: str) -> list[str]:
    tail = re.split(r"\*\*(?:引导问题|Guiding questions)\*\*[:：]", speech)[-1]
    return re.findall(r"^\d+\. (.+)$", tail, re.M)


def cited(speech: str) -> list[str]:
    return [a or b for a, b in re.findall(r"「([^」]+)」|“([^”]+)”", speech)]


# --- offline host ---------------------------------------------------------------------------

def test_offline_shared_and_distinctive_keywords():
    a = offline().analyse(TOPIC, MESSAGES)
    assert a["agents"] == ["QUERY", "MEDIA", "INSIGHT"]
    assert {"电池", "成本"} <= set(a["shared"])
    assert {"官方", "声明"} <= set(a["distinctive"]["QUERY"])
    assert {"直播间", "续航"} <= set(a["distinctive"]["MEDIA"])
    assert {"维权", "车主"} <= set(a["distinctive"]["INSIGHT"])
    for src, kws in a["distinctive"].items():  # distinctive: never a keyword every agent shares
        assert not set(kws) & set(a["shared"]), src
    speech = offline().speak(TOPIC, MESSAGES, None)
    assert "「电池」「成本」" in speech
    assert re.search(r"Insight Engine：.*「维权」", speech)


def test_offline_gap_becomes_question_to_the_others():
    speech = offline().speak(TOPIC, MESSAGES, None)
    qs = questions(speech)
    assert 2 <= len(qs) <= 3
    gap = [q for q in qs if "「维权」" in q]
    assert len(gap) == 1
    addressed = gap[0].split("：", 1)[0]
    assert "Query Engine" in addressed and "Media Engine" in addressed and "Insight Engine" not in addressed


def test_offline_speech_is_bounded_deterministic_and_cites_only_input():
    speech = offline().speak(TOPIC, MESSAGES, None)
    assert speech == offline().speak(TOPIC, MESSAGES, None) == offline().speak(TOPIC, list(MESSAGES), None)
    assert len(speech) <= MAX_SPEECH
    words = cited(speech)
    assert len(words) >= 8
    corpus = TOPIC + "\n".join(m.content for m in MESSAGES)
    for w in words:
        assert w in corpus, w
    assert "2025-03-01" in speech and "2025-03-03" in speech  # the timeline line
    short = offline(max_chars=200).speak(TOPIC, MESSAGES, None)
    assert len(short) <= 200 and short.endswith("已截断）")


def test_offline_sentiment_differences_and_unknown():
    speech = offline().speak(TOPIC, MESSAGES, None)
    assert "Insight Engine 正面 0% / 负面 100%" in speech
    assert "Insight Engine 明显比" in speech
    unknown = offline(classifier=missing_model).speak(TOPIC, MESSAGES, None)
    assert "情绪差异未知" in unknown and "负面 " not in unknown


def test_offline_previous_speech_changes_the_questions():
    first = offline().speak(TOPIC, MESSAGES, None)
    second = offline().speak(TOPIC, MESSAGES, first)
    asked = set(cited("\n".join(questions(first))))
    again = set(cited("\n".join(questions(second))))
    assert asked and again and not asked & again


def test_offline_english_topic_speaks_english():
    msgs = [
        mv(1, "QUERY", "Reuters reported that the automaker cut prices on every model, citing cheaper battery costs."),
        mv(2, "MEDIA", "Videos about the battery price cut drew millions of views; reviewers tested driving range."),
        mv(3, "INSIGHT", "Owners who bought last month demand refunds; boycott posts about the battery spread."),
    ]
    speech = offline().speak("EV price cuts", msgs, None)
    assert not has_cjk(speech)
    assert "**Guiding questions**" in speech and "“battery”" in speech
    assert 2 <= len(questions(speech)) <= 3
    zh = offline().speak("电动车降价", msgs, None)
    assert "**引导问题**" in zh


@pytest.mark.parametrize("msgs", [[], [mv(1, "HOST", "上一轮主持", type="host"), mv(2, "SYSTEM", "  ", type="system")]])
def test_offline_no_agent_messages_is_honest(msgs):
    speech = offline().speak(TOPIC, msgs, None)
    assert "没有可供总结的引擎发言" in speech and len(speech) < 120
    assert not questions(speech) and not cited(speech)
    assert "no agent messages" in offline().speak("EV price cuts", [], None)


# --- LLM host -------------------------------------------------------------------------------

def fake_settings(fake: FakeOpenAI, **extra: str):
    return load_settings(env={**os.environ, **fake.env("FORUM_HOST"), "RETRY_MAX_SECONDS": "0", **extra})


def test_llm_host_prompt_reply_and_llm_call_row(db):
    reply = "**综合**：各引擎都认为电池成本是关键。\n**引导问题**：\n1. Media Engine：直播间销量是否可持续？"
    previous = "**主持人**：上一轮请 Query Engine 核实官方声明。"
    with FakeOpenAI(responder=lambda req: FakeReply.thinking(reply, think="秘密推理")) as fake:
        host = LlmHost(LlmClient("FORUM_HOST", fake_settings(fake), db=db))
        speech = host.speak(TOPIC, MESSAGES, previous)
        req = fake.requests[0]
    assert speech == reply and "秘密推理" not in speech
    for m in MESSAGES:
        assert m.content in req.user
        assert re.search(rf"{m.sender} \({m.source}\) · 第 {m.paragraph} 段", req.user)
    assert previous in req.user and "引导问题" in req.system
    with db.session() as s:
        rows = s.scalars(select(LlmCall)).all()
    assert [(r.role, r.node, r.status, r.run_id) for r in rows] == [("FORUM_HOST", "ForumHostNode", "ok", "run-host")]


def test_llm_host_strips_wrapping_and_bounds_a_rambling_model():
    long = "。".join(["各引擎对电池成本的看法基本一致，但维权问题需要进一步核实"] * 80)
    with FakeOpenAI() as fake:
        fake.script("好的，以下是本轮主持人发言：\n```markdown\n**综合**：一致。\n```", long)
        host = LlmHost(LlmClient("FORUM_HOST", fake_settings(fake)))
        assert host.speak(TOPIC, MESSAGES, None) == "**综合**：一致。"
        speech = host.speak(TOPIC, MESSAGES, None)
    assert len(long) > MAX_SPEECH >= len(speech) and speech.endswith("已截断）")


@pytest.mark.parametrize("failure", [FakeReply.error(500), FakeReply.unauthorized()], ids=["500", "401"])
def test_failing_llm_falls_back_to_offline_speech_with_note(failure):
    with FakeOpenAI(responder=lambda req: failure) as fake:
        llm = LlmHost(LlmClient("FORUM_HOST", fake_settings(fake)))
        with pytest.raises(LlmError):
            llm.speak(TOPIC, MESSAGES, None)
        speech = FallbackHost(llm, offline()).speak(TOPIC, MESSAGES, None)
        assert len(fake.requests) == 2
    note, _, rest = speech.partition("\n\n")
    assert note.startswith("（离线主持人：LLM 主持人调用失败：") and str(failure.status) in note
    assert rest == offline().speak(TOPIC, MESSAGES, None)
    assert len(speech) <= MAX_SPEECH


def test_make_host_selection(tmp_path):
    plain = load_settings(env=dict(os.environ))
    assert isinstance(make_host(plain, None, None, offline=False), OfflineHost)
    with FakeOpenAI() as fake:
        configured = fake_settings(fake)
        host = make_host(configured, None, None, offline=False)
        assert isinstance(host, FallbackHost) and isinstance(host.primary, LlmHost)
        assert isinstance(host.fallback, OfflineHost) and host.primary.client.role == "FORUM_HOST"
        assert isinstance(make_host(configured, None, None, offline=True), OfflineHost)
        assert isinstance(make_host(fake_settings(fake, SHOAL_MODE="offline"), None, None, offline=False), OfflineHost)
