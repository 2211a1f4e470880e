"""The analyst in the forum: Forum.post_human and `python -m core forum post` (core/forum.py, core/cli.py)."""
from __future__ import annotations

import json

import pytest

from core.forum import (GUIDANCE_HUMAN, MAX_HUMAN_CHARS, Forum, HumanPostError, forum_guidance, host_round,
                        humans_since_host, latest_host_speech, message_counts, round_messages, speech_of_round,
                        transcript)
from core.infra.db import open_database
from core.infra.models import Run, utcnow
from core.research.reasoning import ForumGuidance
from tests.test_cli import _finish, _start

pytestmark = pytest.mark.timeout(120)


def make_run(db, run_id: str, status: str = "running", kind: str = "analysis") -> str:
    with db.session() as s:
        s.add(Run(id=run_id, kind=kind, topic="新能源汽车价格战", status=status, created_at=utcnow()))
    return run_id


def test_a_human_message_is_stored_announced_logged_and_outside_the_rounds(db, events, tmp_path):
    run_id = make_run(db, "run-human-1")
    forum = Forum(db, events, tmp_path / "logs", host_every=2)
    a = forum.post_summary(run_id, source="QUERY", content="新闻：多家车企跟进降价，价格战进入白热化。", paragraph=0)
    h1 = forum.post_human(run_id, "  二手车的保值率怎么样？\n车主怎么看？ ")
    h2 = forum.post_human(run_id, "二手车的保值率怎么样？\n车主怎么看？")  # the same again: kept, never de-duplicated
    b = forum.post_summary(run_id, source="MEDIA", content="视频平台：4S店客流翻倍，销售忙到停不下来。", paragraph=0)

    assert (h1.type, h1.source, h1.sender, h1.round) == ("human", "HUMAN", "Analyst", None)
    assert h1.content == "二手车的保值率怎么样？\n车主怎么看？" and h2.id != h1.id
    # the human messages do not count towards the host's round: the two agent messages make round 1
    assert (a.round, b.round) == (1, 1)
    assert message_counts(db, run_id) == {"agent": 2, "host": 0, "human": 2, "system": 0}
    assert [m.source for m in transcript(db, run_id)] == ["QUERY", "HUMAN", "HUMAN", "MEDIA"]
    ev = [e for e in events.since(0, run_id=run_id)[0] if e.type == "forum.message"]
    assert [e.payload["source"] for e in ev].count("HUMAN") == 2
    assert not [e for e in events.since(0, run_id=run_id)[0] if e.type == "forum.duplicate_skipped"]
    log = (tmp_path / "logs" / "forum.log").read_text(encoding="utf-8").splitlines()
    assert sum("] [HUMAN] 二手车的保值率怎么样？\\n车主怎么看？" in line for line in log) == 2
    # what an engine reads next: the analyst's latest messages, oldest first, with their ids (provenance)
    assert forum_guidance(db, run_id) == ForumGuidance(host_speech=None, human=(h1.content, h2.content),
                                                       ids=(h1.id, h2.id))


def test_guidance_holds_the_latest_host_speech_and_human_messages(db, events):
    run_id = make_run(db, "run-human-2")
    forum = Forum(db, events, None)
    asked = [forum.post_human(run_id, f"问题 {i}：电池成本？") for i in range(GUIDANCE_HUMAN + 2)]
    forum.post_host(run_id, "**主持人**：第一轮", round_no=1)
    later = forum.post_human(run_id, "保价补偿有人提到吗？")
    g = forum_guidance(db, run_id)
    assert g.host_speech == "**主持人**：第一轮"
    assert g.human == tuple(m.content for m in (asked + [later])[-GUIDANCE_HUMAN:])
    # the host of round 2 answers what came after its round-1 speech; the first host the latest of all
    assert [m.id for m in humans_since_host(db, run_id, before_round=2)] == [later.id]
    assert [m.id for m in humans_since_host(db, run_id, before_round=1)] == \
        [m.id for m in (asked + [later])[-GUIDANCE_HUMAN:]]
    assert not ForumGuidance() and ForumGuidance(human=("x",))
    # a host job reads all of it in one go (core.forum.host_round): the same messages and previous speech
    for k in (1, 2):
        agents = [forum.post_summary(run_id, source=src, content=f"第{k}轮 {src} 的发现：电池成本{k}{src}")
                  for src in ("QUERY", "MEDIA")]
        inputs = host_round(db, run_id, k + 1, agents[-1].id, 2)
        expected = round_messages(db, run_id, agents[-1].id, 2) + humans_since_host(db, run_id, before_round=k + 1)
        assert inputs.spoken is None and inputs.previous == latest_host_speech(db, run_id) == "**主持人**：第一轮"
        assert [(m.id, m.type, m.content) for m in inputs.messages] == [(m.id, m.type, m.content) for m in expected]
    assert [m.type for m in inputs.messages] == ["agent", "agent", "human"]
    assert host_round(db, run_id, 1, agents[-1].id, 2).spoken == speech_of_round(db, run_id, 1).id


@pytest.mark.parametrize("text, key", [("   \n ", "forum_human.empty"), ("问" * (MAX_HUMAN_CHARS + 1), "forum_human.too_long")])
def test_an_empty_or_too_long_message_is_refused_with_a_clear_message(db, events, text, key):
    run_id = make_run(db, "run-human-3")
    with pytest.raises(HumanPostError) as err:
        Forum(db, events, None).post_human(run_id, text)
    assert err.value.msg.key == key and str(err.value)
    assert message_counts(db, run_id)["human"] == 0


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "interrupted", "cancelling"])
def test_a_finished_run_refuses_messages(db, events, status):
    run_id = make_run(db, f"run-ended-{status}", status=status)
    with pytest.raises(HumanPostError, match=f"is {status}") as err:
        Forum(db, events, None).post_human(run_id, "还有补充吗？")
    assert err.value.msg.key == "forum_human.run_ended" and err.value.msg.args["status"].key == f"status.{status}"
    assert f"has ended ({status})" in err.value.msg.render("en")
    assert transcript(db, run_id) == []


def test_an_unknown_run_or_an_import_refuses_messages(db, events):
    make_run(db, "run-import", kind="forum_import", status="running")
    for run_id in ("no-such-run", "run-import"):
        with pytest.raises(HumanPostError, match="no analysis run") as err:
            Forum(db, events, None).post_human(run_id, "有人吗？")
        assert err.value.msg.key == "forum_human.unknown_run"
    assert transcript(db, "run-import") == [] and transcript(db, "no-such-run") == []


def test_the_forum_post_command(isolated_env):
    db = open_database(f"sqlite:///{isolated_env / 'data' / 'shoal.db'}")
    try:
        make_run(db, "run-cli-live")
        make_run(db, "run-cli-done", status="completed")
    finally:
        db.dispose()
    (ok_rc, ok_out, ok_err), (done_rc, _, done_err), (empty_rc, _, empty_err), (none_rc, _, none_err) = [
        _finish(p) for p in [_start(["forum", "post", "run-cli-live", "二手车保值率怎么样？"]),
                             _start(["forum", "post", "run-cli-done", "还在吗？"]),
                             _start(["forum", "post", "run-cli-live", "   "]),
                             _start(["forum", "post", "no-such-run", "有人吗？"])]]
    assert ok_rc == 0, ok_err
    posted = json.loads(ok_out)
    assert (posted["type"], posted["source"], posted["run_id"]) == ("human", "HUMAN", "run-cli-live")
    assert posted["content"] == "二手车保值率怎么样？"
    assert done_rc == 2 and "run-cli-done is completed" in done_err
    assert empty_rc == 2 and "empty" in empty_err
    assert none_rc == 2 and "no analysis run 'no-such-run'" in none_err
    assert all("Traceback" not in e for e in (ok_err, done_err, empty_err, none_err))
    db = open_database(f"sqlite:///{isolated_env / 'data' / 'shoal.db'}")
    try:
        assert [m.content for m in transcript(db, "run-cli-live")] == ["二手车保值率怎么样？"]
        assert transcript(db, "run-cli-done") == []
    finally:
        db.dispose()
    assert "[HUMAN] 二手车保值率怎么样？" in (isolated_env / "logs" / "forum.log").read_text(encoding="utf-8")
