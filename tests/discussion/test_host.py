"""The forum host: the offline moderator on crafted messages, the LLM host against a fake server,
the fallback between them, and make_host's choice."""
from __future__ import annotations

import os
import re
from datetime import datetime

import pytest
from sqlalchemy import select

from core.infra.config import load_settings
from core.corpus.documents import Document
from core.forum import ForumMessage
from core.discussion.host import MAX_SPEECH, FallbackHost, LlmHost, OfflineHost, make_host, sentiment_line
from core.llm.client import LlmClient, LlmError
from core.infra.models import Job, LlmCall, Run, utcnow
from core.text.sentiment import score_documents, shares
from core.text.clean import has_cjk
from tests.fakes.openai_server import FakeOpenAI, FakeReply

TOPIC = "新能源汽车降价舆情"


def mv(i: int, source: str, content: str, paragraph: int | None = 1, type: str = "agent") -> ForumMessage:
    return ForumMessage(i, "run-host", type, f"{source.title()} Engine", source, content, paragraph, "",
                       datetime(2025, 3, 3, 12, 0, i))


MESSAGES = [
    mv(1, "QUERY", "据新华社2025年3月1日报道，某品牌新能源汽车宣布全系降价，官方声明称电池成本下降是主要原因。多家媒体转载了官方声明。"),
    mv(2, "MEDIA", "抖音上关于电池成本和降价的短视频播放量超过千万，博主实测续航，直播间销量明显上升。"),
    mv(3, "INSIGHT", "微博用户讨论集中在电池成本与降价，老车主维权情绪强烈，不少人要求补偿差价，维权帖子转发量很高。"),
    mv(4, "QUERY", "2025年3月3日，官方声明补充说明了价格保护政策，电池成本仍是焦点。", 2),
    mv(5, "INSIGHT", "老车主维权持续发酵，部分用户认为降价损害了品牌信任，电池成本下降的说法受到质疑。", 2),
]


def doc(i: int, sentiment: float | None, text: str = "") -> dict:
    return Document(title=f"t{i}", content=text or f"帖子{i}", url=f"https://example.org/{i}",
                    sentiment=sentiment).as_dict()


# The engines' sources (what each engine itself reports its sentiment over): Insight's are negative.
SOURCES = {"QUERY": [doc(1, 0.9), doc(2, 0.8), doc(3, 0.5), doc(4, 0.2)],
           "MEDIA": [doc(5, 0.95), doc(6, 0.7)],
           "INSIGHT": [doc(7, 0.1), doc(8, 0.05), doc(9, 0.3), doc(10, 0.5)]}


def offline(**kw) -> OfflineHost:
    sources = kw.pop("sources", SOURCES)
    return OfflineHost(sources_of=lambda run_id: sources, **kw)


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


NOISY = [
    mv(1, "QUERY", "Query Engine 检索到：哔哩哔哩上的测评视频越看越让人担心，电池衰减成为焦点，官方回应称电池质保延长。"),
    mv(2, "MEDIA", "Media Engine 发现哔哩哔哩和抖音上的视频越说越夸张，电池衰减的实测播放量很高，弹幕刷屏。"),
    mv(3, "INSIGHT", "Insight Engine：微博用户越想越气，电池衰减引发维权，车主要求延长质保。", 2),
    mv(4, "QUERY", "新华社报道 engine 故障召回与电池衰减无关，官方声明已发布。", 2),
    mv(5, "MEDIA", "哔哩哔哩 UP 主的直播间里，电池衰减测试吸引大量观众。", 2),
]


def test_host_keywords_are_content_words_not_fragments_or_pipeline_words():
    a = offline().analyse(TOPIC, NOISY)
    speech = offline().speak(TOPIC, NOISY, None)
    used = set(a["shared"]) | {w for kws in a["distinctive"].values() for w in kws} | {g[0] for g in a["gaps"]}
    quoted = set(cited(speech))
    for noise in ("哔哩", "看越", "说越", "想越", "engine", "query", "media", "insight", "Engine", "越看越"):
        assert noise not in used and noise not in quoted, noise
    assert "电池衰减" in a["shared"] or "电池" in a["shared"]       # what every engine discusses
    assert "哔哩哔哩" in a["distinctive"]["MEDIA"] and "哔哩哔哩" not in a["distinctive"]["INSIGHT"]
    # the questions ask about cleaned keywords only
    for q in questions(speech):
        for w in cited(q):
            assert w in used or w in a["topic_words"], (w, q)


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


def test_offline_sentiment_is_each_engines_own_figure_over_its_sources():
    speech = offline().speak(TOPIC, MESSAGES, None)
    for src, name in (("QUERY", "Query Engine"), ("MEDIA", "Media Engine"), ("INSIGHT", "Insight Engine")):
        expected = shares([d["sentiment"] for d in SOURCES[src]])
        assert f"{name}：{sentiment_line(expected, True)}" in speech
    assert "Insight Engine：正面 0.0%、中性 25.0%、负面 75.0%（n=4）" in speech  # three classes with n
    assert "Insight Engine 的来源明显比 Media Engine 的更负面" in speech
    # the text of the messages plays no part: the same sources, other messages, the same figures
    calm = [mv(i, m.source, "各方都认为电池成本下降是好消息。") for i, m in enumerate(MESSAGES, 1)]
    assert "Insight Engine：正面 0.0%、中性 25.0%、负面 75.0%（n=4）" in offline().speak(TOPIC, calm, None)


def test_offline_sentiment_unknown_without_sources():
    speech = offline(sources={"QUERY": [doc(1, 0.9)], "MEDIA": []}).speak(TOPIC, MESSAGES, None)
    assert "Query Engine：正面 100.0%、中性 0.0%、负面 0.0%（n=1）" in speech
    assert "Media Engine：未知" in speech and "Insight Engine：未知" in speech
    assert "更负面" not in speech and "接近" not in speech  # one known engine: nothing to compare
    english = offline(sources={}).speak("EV price cuts", [mv(1, "QUERY", "Battery prices fell.")], None)
    assert "Query Engine: unknown" in english


def _run_with_engine_jobs(db, sources: dict[str, list[dict]], stale: dict[str, list[dict]] | None = None) -> str:
    run_id = "run-host"
    now = utcnow()
    with db.session() as s:
        s.add(Run(id=run_id, kind="analysis", topic=TOPIC, status="running", created_at=now))
        s.flush()
        for kind, docs in (stale or {}).items():  # an earlier attempt's job of the same engine
            s.add(Job(id=f"{run_id}-{kind}-old", run_id=run_id, kind=kind, name=kind, status="failed",
                      checkpoint={"sources": docs}, created_at=now.replace(year=now.year - 1)))
        for kind, docs in sources.items():
            s.add(Job(id=f"{run_id}-{kind}", run_id=run_id, kind=kind, name=kind, status="running",
                      checkpoint={"sources": docs, "paragraphs": {}}, created_at=now))
        s.add(Job(id=f"{run_id}-forum", run_id=run_id, kind="forum", name="forum", status="running",
                  checkpoint={"sources": [doc(99, 0.99)]}, created_at=now))
    return run_id


def test_host_figure_equals_the_engines_shares_read_from_the_run(db, monkeypatch):
    """The host reads the run's engine jobs (the latest per engine) and reports exactly
    core.text.sentiment.shares over each engine's sources; sources without a score are scored with
    core.text.sentiment.score_documents (its model replaced here by a stand-in: praise 0.9, else 0.1)."""
    import core.text.sentiment

    scored_texts = []

    def fake_predict(texts):
        scored_texts.extend(texts)
        return [(1, 0.9) if "满意" in t else (0, 0.1) for t in texts]

    monkeypatch.setattr(core.text.sentiment, "predict", fake_predict)
    unscored = [doc(20, None, "这次降价太良心了，非常满意，点赞！"), doc(21, None, "垃圾厂家，坑老车主，强烈谴责！")]
    media = [doc(5, 0.95), doc(6, 0.7), doc(11, 0.45)] + unscored
    insight = [doc(7, 0.1), doc(8, 0.05), doc(9, 0.3)]
    run_id = _run_with_engine_jobs(db, {"media": media, "insight": insight},
                                   stale={"insight": [doc(30, 0.99), doc(31, 0.99)]})
    host = make_host(load_settings(env=dict(os.environ)), db, None)
    assert isinstance(host, OfflineHost)
    a = host.analyse(TOPIC, MESSAGES)
    expected_media = [Document.from_dict(d) for d in media]
    score_documents(expected_media)
    assert a["sentiment"]["MEDIA"] == shares([d.sentiment for d in expected_media])
    assert a["sentiment"]["MEDIA"] == shares([0.95, 0.7, 0.45, 0.9, 0.1])
    assert a["sentiment"]["INSIGHT"] == shares([0.1, 0.05, 0.3])  # the latest job, not the stale one
    assert "QUERY" not in a["sentiment"]  # no query job: unknown
    speech = host.speak(TOPIC, MESSAGES, None)
    assert f"Media Engine：{sentiment_line(a['sentiment']['MEDIA'], True)}" in speech
    assert "Insight Engine：正面 0.0%、中性 0.0%、负面 100.0%（n=3）" in speech
    assert "Query Engine：未知" in speech
    # scored once per job and number of sources: another speech scores nothing again
    n = len(scored_texts)
    host.speak(TOPIC, MESSAGES, None)
    assert len(scored_texts) == n


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


def test_llm_host_is_given_the_engines_figures_to_quote():
    with FakeOpenAI(responder=lambda req: FakeReply.thinking("**综合**：一致。")) as fake:
        host = LlmHost(LlmClient("FORUM_HOST", fake_settings(fake)), sources_of=lambda run_id: SOURCES)
        host.speak(TOPIC, MESSAGES, None)
        bare = LlmHost(LlmClient("FORUM_HOST", fake_settings(fake)))
        bare.speak(TOPIC, MESSAGES, None)
        with_figures, without = fake.requests[0].user, fake.requests[1].user
    assert "Insight Engine：正面 0.0%、中性 25.0%、负面 75.0%（n=4）" in with_figures
    assert "只引用这些数字" in with_figures
    assert "情感分布" not in without  # no figures to give: nothing said


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


def test_the_host_compares_findings_not_the_engines_statistics_lines():
    from core.discussion.host import findings_text

    msg = ("**统计**：共 12 条来源（11 条不重复）；平台分布：微博 6 条（50.0%）；时间跨度 2025-08-01 至 2025-08-09（9 天）。\n\n"
           "- 涉事门店已暂停营业，检测结果预计一周内公布。 [3]\n\n"
           "**热度最高**（热度 = 点赞 + 5×评论 + 10×转发 + 0.1×浏览）：\n"
           "1. 「某品牌回应」（微博）热度 1,200：点赞 100 · 评论 20 [4]")
    assert findings_text(msg).strip() == "- 涉事门店已暂停营业，检测结果预计一周内公布。 [3]"


def test_each_speech_reads_and_scores_only_the_sources_stored_since_the_previous_one(db, monkeypatch):
    """Every host job makes its own host: the figures stay the engines' shares over all their sources,
    while the sources are read from the database and scored once per process, not once per speech."""
    from sqlalchemy import update

    import core.text.sentiment
    from core.work import checkpoints

    scored_texts, reads = [], []

    def fake_predict(texts):
        scored_texts.extend(texts)
        return [(1, 0.9) if "满意" in t else (0, 0.1) for t in texts]

    real_read = checkpoints.read_items

    def read_items(source, job_id, name, **kw):
        reads.append((job_id, kw.get("after", 0)))
        return real_read(source, job_id, name, **kw)

    monkeypatch.setattr(core.text.sentiment, "predict", fake_predict)
    monkeypatch.setattr(checkpoints, "read_items", read_items)
    run_id = _run_with_engine_jobs(db, {})
    job_id = f"{run_id}-media"
    media = [doc(1, 0.95), doc(2, None, "非常满意"), doc(3, None, "太差了")]
    with db.session() as s:  # sources stored as items beside the checkpoint, as engines store them
        s.add(Job(id=job_id, run_id=run_id, kind="media", name="media", status="running",
                  checkpoint={"sources_stored": 2}, created_at=utcnow()))
        checkpoints.store_items(s, job_id, {"sources": list(enumerate(media, 1))})
    settings = load_settings(env=dict(os.environ))
    first = make_host(settings, db, None).analyse(TOPIC, MESSAGES)["sentiment"]["MEDIA"]
    assert first == shares([0.95, 0.9]) and scored_texts == ["t2\n非常满意"] and reads == [(job_id, 0)]
    again = make_host(settings, db, None).analyse(TOPIC, MESSAGES)["sentiment"]["MEDIA"]
    assert again == first and len(scored_texts) == 1 and len(reads) == 1  # nothing new: nothing read
    with db.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(checkpoint={"sources_stored": 3}))
    third = make_host(settings, db, None).analyse(TOPIC, MESSAGES)["sentiment"]["MEDIA"]
    assert third == shares([0.95, 0.9, 0.1])
    assert scored_texts == ["t2\n非常满意", "t3\n太差了"] and reads[1:] == [(job_id, 2)]
