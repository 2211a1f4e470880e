"""Forum metering (core.discussion.metering, core.forum's readers): each message carries its call's
tokens, cost and latency (zero offline, unknown cost when unpriced), summed per speaker and per round,
with the time from a round's first agent message to the host's speech."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest

from core.discussion.metering import forum_metering, metering_csv, metering_of
from core.discussion.rounds import round_page
from core.forum import Forum, round_messages, speech_of_round, transcript, transcript_tail
from core.infra.models import ForumMessage as ForumRow
from core.infra.models import LlmCall
from core.llm.pricing import load_price_table

T0 = datetime(2026, 12, 4, 9, 0, 0)
PRICES = load_price_table({"priced-model": {"input": 1.0, "output": 2.0}}, include_defaults=False)


def call(db, model: str, tin: int, tout: int, latency_ms: float) -> int:
    with db.session() as s:
        row = LlmCall(run_id="r", role="QUERY", model=model, input_tokens=tin, output_tokens=tout,
                      latency_ms=latency_ms, ts=T0)
        s.add(row)
        s.flush()
        return row.id


def at(db, message_id: int, seconds: float) -> None:
    with db.session() as s:
        s.get(ForumRow, message_id).timestamp = T0 + timedelta(seconds=seconds)


@pytest.fixture
def run(db):
    """Round 1: QUERY (priced call), MEDIA (offline), host (priced call); round 2: INSIGHT (unpriced
    model), QUERY (offline), no host yet. Host every 2 agent messages."""
    forum = Forum(db, None, None, host_every=2)
    c1 = call(db, "priced-model", 1000, 500, 1200.0)
    c2 = call(db, "priced-model", 2000, 1000, 3000.0)
    c3 = call(db, "mystery-model", 300, 100, 800.0)
    ids = [forum.post_summary("r", source="QUERY", content="新闻显示价格战加剧，销量承压", paragraph=0,
                              llm_call_id=c1).id,
           forum.post_summary("r", source="MEDIA", content="视频平台上讨论热烈，多为抱怨", paragraph=0).id,
           forum.post_host("r", "主持人：请补充销量数据", round_no=1, llm_call_id=c2).id,
           forum.post_summary("r", source="INSIGHT", content="用户情绪偏负面，集中在保值率", paragraph=1,
                              llm_call_id=c3).id,
           forum.post_summary("r", source="QUERY", content="第二段：经销商库存上升明显", paragraph=1).id]
    for mid, secs in zip(ids, (0, 4, 10, 20, 25)):
        at(db, mid, secs)
    return ids


def test_every_reader_carries_the_calls_tokens_cost_and_latency_and_zero_offline(db, run):
    msgs = transcript(db, "r", prices=PRICES)
    q, media, host, insight, q2 = msgs
    assert (q.input_tokens, q.output_tokens, q.latency_ms, q.round) == (1000, 500, 1200.0, 1)
    assert q.cost_usd == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    assert (media.input_tokens, media.output_tokens, media.cost_usd, media.latency_ms) == (0, 0, 0.0, 0.0)
    assert host.cost_usd == pytest.approx((2000 + 2000) / 1e6) and host.round == 1 and host.tokens == 3000
    assert insight.cost_usd is None and insight.tokens == 400 and insight.round == 2  # unpriced: unknown, never $0
    assert q2.cost_usd == 0.0 and q2.round == 2
    assert [m.tokens for m in transcript_tail(db, "r", 2, prices=PRICES)] == [400, 0]
    assert [m.tokens for m in round_page(db, "r", 1, prices=PRICES).messages] == [1500, 0, 3000]
    assert speech_of_round(db, "r", 1, prices=PRICES).latency_ms == 3000.0
    assert [m.input_tokens for m in round_messages(db, "r", run[-1], 2, prices=PRICES)] == [300, 0]
    assert q.as_dict()["cost_usd"] == q.cost_usd and q.as_dict()["input_tokens"] == 1000


def test_a_message_naming_a_missing_call_has_an_unknown_cost(db):
    forum = Forum(db, None, None, host_every=5)
    forum.post_summary("gone", source="QUERY", content="一条消息", llm_call_id=987654)
    [m] = transcript(db, "gone", prices=PRICES)
    assert m.cost_usd is None and m.tokens == 0


def test_metering_per_speaker_and_per_round_with_the_time_to_the_host(db, run):
    m = forum_metering(db, "r", PRICES)
    speakers = {s.source: s.meter for s in m.speakers}
    assert [s.source for s in m.speakers] == ["QUERY", "MEDIA", "HOST", "INSIGHT"]
    assert speakers["QUERY"].messages == 2 and speakers["QUERY"].tokens == 1500
    assert speakers["QUERY"].cost_usd == pytest.approx(0.002) and speakers["QUERY"].latency_ms == 1200.0
    assert speakers["MEDIA"].tokens == 0 and speakers["MEDIA"].cost_usd == 0.0 and speakers["MEDIA"].unpriced == 0
    assert speakers["INSIGHT"].cost_usd is None and speakers["INSIGHT"].unpriced == 1  # only unpriced calls
    r1, r2 = m.rounds
    assert (r1.round, r1.meter.messages, r1.agent_messages, r1.meter.tokens) == (1, 3, 2, 4500)
    assert r1.meter.cost_usd == pytest.approx(0.006)
    assert r1.started_at == T0 and r1.host_at == T0 + timedelta(seconds=10) and r1.seconds_to_host == 10.0
    assert (r2.round, r2.meter.messages, r2.host_at, r2.seconds_to_host) == (2, 2, None, None)
    assert r2.started_at == T0 + timedelta(seconds=20)
    assert r2.meter.cost_usd is None and r2.meter.unpriced == 1  # its only call is unpriced: unknown, not $0
    assert m.total.messages == 5 and m.total.tokens == 4900 and m.total.cost_usd == pytest.approx(0.006)
    assert m.total.unpriced == 1 and m.total.latency_ms == 5000.0


def test_an_offline_run_meters_zero_and_imports_without_rounds_come_last(db):
    forum = Forum(db, None, None, host_every=1)
    forum.post_summary("off", source="QUERY", content="离线分析器的第一段总结")
    forum.post_host("off", "主持人离线发言", round_no=1)
    with db.session() as s:
        s.add(ForumRow(run_id="off", type="agent", sender="Media Engine", source="MEDIA", content="导入", trace_id=""))
    m = forum_metering(db, "off")
    assert m.total.tokens == 0 and m.total.cost_usd == 0.0 and m.total.latency_ms == 0.0 and m.total.unpriced == 0
    assert [r.round for r in m.rounds] == [1, None]
    assert m.rounds[0].seconds_to_host is not None and m.rounds[1].seconds_to_host is None
    assert metering_of("none", []).total.messages == 0


def test_the_csv_and_json_forms_hold_both_tables(db, run):
    m = forum_metering(db, "r", PRICES)
    rows = list(csv.DictReader(io.StringIO(metering_csv(m))))
    speakers = [r for r in rows if r["table"] == "speaker"]
    rounds = [r for r in rows if r["table"] == "round"]
    assert [r["key"] for r in speakers] == ["QUERY", "MEDIA", "HOST", "INSIGHT"]
    assert speakers[3]["cost_usd"] == "" and speakers[3]["unpriced"] == "1"
    assert [r["key"] for r in rounds] == ["1", "2"]
    assert rounds[0]["seconds_to_host"] == "10.0" and rounds[1]["seconds_to_host"] == ""
    assert float(rounds[0]["cost_usd"]) == pytest.approx(0.006) and rounds[0]["tokens"] == "4500"
    d = m.as_dict()
    assert d["rounds"][0]["seconds_to_host"] == 10.0 and d["speakers"][0]["tokens"] == 1500
    assert d["total"]["messages"] == 5


def test_the_posted_message_carries_its_calls_metering_too(db):
    c = call(db, "priced-model", 10, 20, 5.0)
    forum = Forum(db, None, None, host_every=5)
    posted = forum.post_summary("p", source="QUERY", content="一条带调用的消息", llm_call_id=c)
    assert (posted.input_tokens, posted.output_tokens, posted.latency_ms) == (10, 20, 5.0)
    assert posted.cost_usd is None  # posted without a price table: genai-prices' does not know this model
    offline = forum.post_summary("p", source="MEDIA", content="另一条离线消息，没有调用")
    assert (offline.tokens, offline.cost_usd, offline.latency_ms) == (0, 0.0, 0.0)


def test_a_poster_that_drops_the_view_is_spared_the_metering_read_and_the_transcript_still_meters_it(
        db, monkeypatch):
    """The engines post with metering=False (they never read the returned message): llm_calls is not read
    for the post, and every reader of the transcript still gets the call's tokens."""
    import core.forum

    c = call(db, "priced-model", 10, 20, 5.0)
    reads = []
    real = core.forum.metered
    monkeypatch.setattr(core.forum, "metered", lambda *a: reads.append(len(a[1])) or real(*a))
    forum = Forum(db, None, None, host_every=5)
    posted = forum.post_summary("p", source="QUERY", content="一条引擎的消息", llm_call_id=c, metering=False)
    assert reads == [] and posted.llm_call_id == c and posted.cost_usd is None  # not read: the cost is unknown
    forum.post_summary("p", source="MEDIA", content="另一条消息，照常计量", llm_call_id=c)
    assert reads == [1]
    (first,) = [m for m in transcript(db, "p") if m.source == "QUERY"]
    assert (first.input_tokens, first.output_tokens, first.latency_ms) == (10, 20, 5.0)


def test_a_tally_advanced_between_posts_equals_summing_the_whole_transcript(db, run, monkeypatch):
    """The Forum page keeps a MeteringTally between refreshes: each advance reads only the messages
    after the last one it summed, and its figures equal a fresh sum of the whole transcript."""
    import core.discussion.metering as metering
    reads = []
    real = metering.transcript
    monkeypatch.setattr(metering, "transcript", lambda db, run_id, **kw: reads.append(kw["after_id"]) or real(db, run_id, **kw))
    tally = metering.MeteringTally("r")
    first = tally.advance(db, PRICES)
    assert first == forum_metering(db, "r", PRICES) and tally.last_id == run[-1]
    forum = Forum(db, None, None, host_every=2)
    c = call(db, "priced-model", 400, 600, 700.0)
    host = forum.post_host("r", "主持人：第二轮小结", round_no=2, llm_call_id=c)
    later = forum.post_summary("r", source="MEDIA", content="第三段：评论区出现新的质疑", paragraph=2)
    reads.clear()
    second = tally.advance(db, PRICES)
    assert reads == [run[-1]]                   # one read, of the messages after the last one summed
    assert second == forum_metering(db, "r", PRICES)
    assert second.total.messages == 7 and second.total.tokens == 4900 + 1000
    assert second.rounds[1].host_at is not None and tally.last_id == later.id > host.id
    assert tally.advance(db, PRICES) == second  # nothing new: the same figures
