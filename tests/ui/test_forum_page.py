"""The Forum page (issue 4 items 3 and 4) through Streamlit's AppTest, on the cached runtime.

As in tests/ui/test_pages.py, every test builds the process's runtime from its own isolated
environment. Messages are posted with core.forum.post_message to runs created directly. The live
transcript is a fragment with run_every, which AppTest never fires, so its body
(`ui.forum_view.render_transcript`) is also run directly to check the cursor.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from core.forum import post_message
from core.infra.models import ForumMessage, Run, utcnow
from core.work.runs import list_runs
from ui.runtime import get_runtime, reload_runtime
from tests.pagetest import fresh_runtime, values  # noqa: F401 - fresh_runtime is an autouse fixture

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "pages" / "4_Forum.py"
TIMEOUT = 30
T0 = datetime(2025, 11, 6, 12, 15, 7)


def render(at: AppTest | None = None) -> AppTest:
    at = (AppTest.from_file(str(PAGE), default_timeout=TIMEOUT) if at is None else at).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def make_run(run_id: str, kind: str = "analysis", topic: str = "新能源汽车价格战", age_s: int = 0) -> str:
    with get_runtime().db.session() as s:
        s.add(Run(id=run_id, kind=kind, topic=topic, status="running",
                  created_at=utcnow() - timedelta(seconds=age_s)))
    return run_id


def post(run_id: str, source: str, content: str, n: int, paragraph: int | None = 0):
    kind = {"HOST": "host", "SYSTEM": "system"}.get(source, "agent")
    rt = get_runtime()
    return post_message(rt.db, rt.events, run_id, type=kind, source=source, content=content, paragraph=paragraph,
                        timestamp=T0 + timedelta(seconds=n))


def four_messages(run_id: str) -> None:
    post(run_id, "QUERY", "新闻显示价格战加剧", 0, paragraph=0)
    post(run_id, "MEDIA", "视频平台上讨论热烈", 1, paragraph=1)
    post(run_id, "INSIGHT", "用户情绪偏负面", 2, paragraph=None)
    post(run_id, "HOST", "**主持人**：请各位补充数据", 3, paragraph=None)


def chats(at: AppTest) -> list[tuple[str, str, str]]:
    return [(c.name, c.avatar, c.markdown[0].value) for c in at.chat_message]


# ---------------------------------------------------------------------------------------- empty


def test_without_runs_the_page_says_how_messages_appear():
    at = render()
    [info] = [i.value for i in at.info if "No forum transcript yet" in i.value]
    assert "Home" in info and "BettaFish" in info
    assert not at.chat_message and not at.metric and not at.download_button
    assert not at.error


# ---------------------------------------------------------------------------------------- transcript


def test_agents_and_host_render_as_chat_messages_in_order_with_counts(monkeypatch):
    monkeypatch.setenv("FORUM_HOST_EVERY", "3")
    run_id = make_run("run-forum-1")
    four_messages(run_id)
    post(run_id, "QUERY", "第二段：销量数据", 4, paragraph=1)
    at = render()
    assert any(run_id in m and "Following" in m for m in values(at.markdown)), values(at.markdown)
    # it opens at the newest round: the message after the host's speech
    assert chats(at) == [("Query Engine", "🔎", "第二段：销量数据")]
    assert "Round **2** of 2" in values(at.markdown)
    at.button(key="forum_feed_older").click()
    render(at)
    assert chats(at) == [("Query Engine", "🔎", "新闻显示价格战加剧"), ("Media Engine", "🎞️", "视频平台上讨论热烈"),
                         ("Insight Engine", "🧠", "用户情绪偏负面"), ("Forum Host", "🎙️", "**主持人**：请各位补充数据")]
    assert "Round **1** of 2" in values(at.markdown)
    headers = [c.caption[0].value for c in at.chat_message]
    assert headers[0] == "**Query Engine** · 12:15:07 · QUERY · paragraph 1"
    assert headers[1] == "**Media Engine** · 12:15:08 · MEDIA · paragraph 2"
    assert headers[2] == "**Insight Engine** · 12:15:09 · INSIGHT"  # no paragraph
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Messages": "5", "🔎 Query": "2", "🎞️ Media": "1", "🧠 Insight": "1", "🎙️ Host": "1",
                       "🧑‍💼 Analyst": "0", "⚙️ System": "0"}
    # One agent message since the host spoke; it speaks every 3.
    assert any("every 3 agent messages" in c and "next host speech after 2 more agent message(s)" in c
               for c in values(at.caption)), values(at.caption)


def test_the_source_filter_hides_the_other_sources():
    run_id = make_run("run-forum-2")
    four_messages(run_id)
    at = render()
    at.multiselect(key="forum_feed_sources").set_value(["MEDIA", "HOST"])
    render(at)
    assert [(n, a) for n, a, _ in chats(at)] == [("Media Engine", "🎞️"), ("Forum Host", "🎙️")]
    assert {m.label: m.value for m in at.metric}["🔎 Query"] == "1"  # counts stay whole
    at.multiselect(key="forum_feed_sources").set_value(["SYSTEM"])
    render(at)
    assert not at.chat_message
    assert "No messages from the selected speakers in this round." in values(at.caption)


def test_the_page_follows_the_latest_analysis_or_opens_any_past_run():
    old = make_run("run-old", age_s=60)
    post(old, "QUERY", "旧的消息", 0)
    imported = make_run("run-imported", kind="forum_import", topic="BettaFish logs", age_s=30)
    post(imported, "INSIGHT", "导入的消息", 1)
    new = make_run("run-new")
    post(new, "MEDIA", "新的消息", 2)
    at = render()
    assert [body for _, _, body in chats(at)] == ["新的消息"]
    at.toggle(key="forum_follow").set_value(False)
    render(at)
    picker = at.selectbox(key="forum_run")
    assert picker.options[0].startswith(new) and len(picker.options) == 3
    picker.set_value(imported)
    render(at)
    assert [body for _, _, body in chats(at)] == ["导入的消息"]
    assert "An imported BettaFish transcript: no live host moderates it." in values(at.caption)
    assert not [c for c in values(at.caption) if c.startswith("Host cadence")]


def transcript_script():
    from ui.forum_view import render_transcript

    render_transcript("k", "run-forum-3")


def test_the_live_body_reads_only_new_messages_after_its_cursor(monkeypatch):
    import ui.forum_view as view

    run_id = make_run("run-forum-3")
    four_messages(run_id)
    other = make_run("run-other")
    post(other, "QUERY", "另一个运行", 9)
    at = render(AppTest.from_function(transcript_script, default_timeout=TIMEOUT))
    feed = at.session_state["k"]
    assert len(at.chat_message) == 4 and feed.run_id == run_id
    first_cursor = feed.cursor

    calls = []
    real = view.transcript

    def counting(db, run, **kwargs):
        out = real(db, run, **kwargs)
        calls.append((run, kwargs.get("after_id"), len(out)))
        return out

    monkeypatch.setattr(view, "transcript", counting)
    new = [post(run_id, "QUERY", "新增一", 10), post(run_id, "SYSTEM", "新增二", 11, paragraph=None)]
    render(at)
    feed = at.session_state["k"]
    assert calls == [(run_id, first_cursor, 2)]  # one read, from the cursor, of the two new messages
    assert feed.cursor == new[-1].id
    # the host spoke last before them: they open a new round, the one shown
    assert [body for _, _, body in chats(at)] == ["新增一", "新增二"] and feed.rounds == 2
    assert at.chat_message[-1].avatar == "⚙️"

    # More than the buffer holds: the cursor follows, the buffer keeps the newest 500.
    with get_runtime().db.session() as s:
        s.add_all([ForumMessage(run_id=run_id, type="agent", sender="Media Engine", source="MEDIA",
                                content=f"批量 {n}", timestamp=T0) for n in range(600)])
    calls.clear()
    render(at)
    feed = at.session_state["k"]
    assert len(calls) == 1 and calls[0][1] == new[-1].id and calls[0][2] == 600
    assert len(feed.buffer) == view.BUFFER == 500 and feed.buffer[-1].content == "批量 599"
    assert feed.buffer[-1].id == feed.cursor and len(at.chat_message) == 500
    assert {m.label: m.value for m in at.metric}["Messages"] == "606"
    assert feed.round_size == 602 and any("102 older message(s) are not shown" in c for c in values(at.caption))


# ---------------------------------------------------------------------------------------- downloads


def test_downloads_hold_the_whole_transcript_in_forum_log_format_and_json(monkeypatch):
    deferred = {}
    real_add = MediaFileManager.add_deferred

    def capture(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        deferred[file_name] = (data_callable, mimetype)
        return real_add(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", capture)
    run_id = make_run("run-forum-4")
    post(run_id, "QUERY", "第一行\n第二行", 0)
    post(run_id, "HOST", "主持人\r\n总结", 61, paragraph=None)
    at = render()
    assert [b.label for b in at.download_button] == ["Download forum.log", "Download JSON",
                                                      "Download metering (CSV)"]
    day = utcnow().strftime("%Y-%m-%d")
    assert set(deferred) == {f"新能源汽车价格战-{day}-forum.log", f"新能源汽车价格战-{day}-forum.json",
                             f"新能源汽车价格战-{day}-forum-metering.csv"}
    log_fn, mime = deferred[f"新能源汽车价格战-{day}-forum.log"]
    assert mime == "text/plain"
    assert log_fn().splitlines() == ["[12:15:07] [QUERY] 第一行\\n第二行", "[12:16:08] [HOST] 主持人\\n总结"]
    doc = json.loads(deferred[f"新能源汽车价格战-{day}-forum.json"][0]())
    assert doc["run_id"] == run_id
    assert [(m["source"], m["content"], m["timestamp"]) for m in doc["messages"]] == [
        ("QUERY", "第一行\n第二行", "2025-11-06T12:15:07"), ("HOST", "主持人\r\n总结", "2025-11-06T12:16:08")]


# ---------------------------------------------------------------------------------------- untrusted


def test_html_in_a_message_is_shown_as_text_never_as_html():
    run_id = make_run("run-forum-5")
    post(run_id, "MEDIA", "看这里 <script>alert(1)</script> <img src=x onerror=alert(2)>", 0)
    at = render()
    [chat] = at.chat_message
    [body] = chat.markdown
    assert "<script>alert(1)</script>" in body.value and "<img src=x onerror=alert(2)>" in body.value
    assert body.proto.allow_html is False
    assert all(m.proto.allow_html is False for m in at.markdown)
    assert not at.get("html")


# ---------------------------------------------------------------------------------------- import

OLD_LINE = '[12:15:07] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "测试段落"}\n'


@pytest.fixture
def server_paths(monkeypatch):
    """The server-path import is off by default; these tests turn it on."""
    monkeypatch.setenv("SHOAL_ALLOW_SERVER_PATH_IMPORT", "true")
    reload_runtime()


def test_importing_a_bettafish_folder_opens_its_transcript(tmp_path, server_paths):
    logs = tmp_path / "bettafish_logs"
    logs.mkdir()
    (logs / "insight.log").write_text(OLD_LINE, encoding="utf-8")
    at = render()
    at.text_input(key="forum_import_dir").input(str(logs))
    at.button(key="forum_import_go").click()
    render(at)
    runs = [r for r in list_runs(get_runtime().db) if r.kind == "forum_import"]
    assert len(runs) == 1
    assert any(runs[0].id in s and "Imported 1 message" in s for s in values(at.success)), values(at.success)
    assert at.toggle(key="forum_follow").value is False and at.selectbox(key="forum_run").value == runs[0].id
    assert [(n, a) for n, a, _ in chats(at)] == [("Insight Engine", "🧠")]
    assert "测试段落" in chats(at)[0][2]


def test_importing_a_missing_folder_says_so_and_stores_nothing(tmp_path, server_paths):
    at = render()
    at.text_input(key="forum_import_dir").input(str(tmp_path / "no_such_folder"))
    at.button(key="forum_import_go").click()
    render(at)
    assert [e for e in values(at.error) if "does not exist" in e and "no_such_folder" in e], values(at.error)
    assert not list_runs(get_runtime().db) and not at.chat_message


def test_an_import_that_finds_nothing_says_why_in_the_readers_language(tmp_path, server_paths, monkeypatch):
    monkeypatch.setenv("SHOAL_LANGUAGE", "zh")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "media.log").write_bytes(bytes(range(256)) * 64)
    at = render()
    at.text_input(key="forum_import_dir").input(str(logs))
    at.button(key="forum_import_go").click()
    render(at)
    assert [e for e in values(at.error) if "没有找到论坛消息" in e and str(logs) in e], values(at.error)
    assert "media.log：二进制数据，不是文本日志，已跳过" in values(at.warning), values(at.warning)
    assert not list_runs(get_runtime().db)


def test_import_is_locked_behind_the_admin_password(monkeypatch):
    monkeypatch.setenv("SHOAL_ADMIN_PASSWORD", "open-sesame-42")
    at = render()
    assert not [b for b in at.button if b.label == "Import"]
    assert [w for w in at.text_input if "Admin password" in w.label]


def test_the_server_path_import_is_off_by_default_and_says_why():
    at = render()
    assert not [w for w in at.text_input if w.key == "forum_import_dir"]
    assert [c for c in values(at.caption) if "SHOAL_ALLOW_SERVER_PATH_IMPORT" in c], values(at.caption)
    at.button(key="forum_import_go").click()  # uploads still work; without any, it asks for them
    render(at)
    assert "Upload the log files first." in values(at.warning)


def test_importing_uploaded_logs_opens_their_transcript():
    at = render()
    at.file_uploader(key="forum_import_files").set_value([("insight.log", OLD_LINE.encode(), "text/plain"),
                                                         ("notes.log", b"junk", "text/plain")])
    at.button(key="forum_import_go").click()
    render(at)
    runs = [r for r in list_runs(get_runtime().db) if r.kind == "forum_import"]
    assert len(runs) == 1 and at.selectbox(key="forum_run").value == runs[0].id
    assert [w for w in values(at.warning) if w.startswith("Ignored notes.log")], values(at.warning)
    assert [(n, a) for n, a, _ in chats(at)] == [("Insight Engine", "🧠")] and "测试段落" in chats(at)[0][2]


def test_an_uploaded_forum_log_brings_the_host_speeches():
    forum_log = ("[23:59:50] [SYSTEM] [0badf00d] === ForumEngine 监控开始 - 2025-11-06 23:59:50 ===\n"
                 "[23:59:55] [QUERY] [0badf00d] 午夜前的总结\n"
                 "[00:00:20] [HOST] [0badf00d] 主持人：请各位继续。\n")
    at = render()
    at.file_uploader(key="forum_import_files").set_value([("forum.log", forum_log.encode(), "text/plain")])
    at.button(key="forum_import_go").click()
    render(at)
    runs = [r for r in list_runs(get_runtime().db) if r.kind == "forum_import"]
    assert len(runs) == 1 and at.selectbox(key="forum_run").value == runs[0].id
    said = [(n, text) for n, _, text in chats(at)]
    assert said == [("Query Engine", "午夜前的总结"), ("Forum Host", "主持人：请各位继续。")], said


def test_opening_a_long_transcript_reads_its_newest_round_and_tallies_not_every_message(monkeypatch):
    from sqlalchemy import insert

    import ui.forum_view as fv

    db = get_runtime().db
    with db.session() as s:
        s.add(Run(id="long", kind="analysis", topic="t", status="completed", created_at=utcnow()))
        s.flush()
        rows = [{"run_id": "long", "type": "agent", "sender": "Query Engine", "source": "QUERY", "content": f"m{i}",
                 "paragraph": 0, "trace_id": "", "timestamp": utcnow()} for i in range(1200)]
        rows[999].update(type="host", sender="Forum Host", source="HOST")
        s.execute(insert(ForumMessage), rows)
    reads = []
    real = fv.transcript
    monkeypatch.setattr(fv, "transcript", lambda *a, **k: reads.append(k.get("after_id")) or real(*a, **k))
    feed = fv.TranscriptFeed("long")
    feed.poll(db)
    # the newest round (the 200 messages after the host's speech), not the 1,000 before it
    assert len(feed.buffer) == 200 and feed.buffer[0].content == "m1000" and feed.buffer[-1].content == "m1199"
    assert feed.rounds == 2 and feed.round_size == 200
    assert feed.counts["QUERY"] == 1199 and feed.counts["HOST"] == 1 and feed.agents_since_host == 200
    assert len(reads) == 1 and reads[0] == feed.cursor  # one read after the round, which found nothing new
    post_message(db, None, "long", type="agent", source="MEDIA", content="new")
    assert feed.poll(db) == 1 and feed.counts["MEDIA"] == 1 and feed.agents_since_host == 201
    assert feed.rounds == 2 and len(feed.shown()) == 201


def test_a_message_header_names_its_round_when_it_has_one():
    from datetime import datetime

    from core.forum import ForumMessage
    from ui.forum_view import message_header

    m = ForumMessage(1, "r", "agent", "Query Engine", "QUERY", "x", 0, "", datetime(2026, 1, 1, 12, 15, 7), 2, 9)
    assert message_header(m) == "**Query Engine** · 12:15:07 · QUERY · paragraph 1 · round 2 · 0 tokens · $0.0000 · 0.0 s"
    offline = ForumMessage(1, "r", "agent", "Query Engine", "QUERY", "x", 0, "", datetime(2026, 1, 1, 12, 15, 7), 2)
    assert message_header(offline) == "**Query Engine** · 12:15:07 · QUERY · paragraph 1 · round 2"


# ---------------------------------------------------------------------------------------- rounds, compact, languages


def rounds_of_three(run_id: str, rounds: int, open_tail: int = 0) -> None:
    """`rounds` closed rounds (two agents and the host's speech each), then `open_tail` agents."""
    n = 0
    for r in range(1, rounds + 1):
        post(run_id, "QUERY", f"第{r}轮 查询", n)
        post(run_id, "MEDIA", f"第{r}轮 媒体", n + 1)
        post(run_id, "HOST", f"第{r}轮 主持人总结", n + 2, paragraph=None)
        n += 3
    for i in range(open_tail):
        post(run_id, "INSIGHT", f"未完的一轮 {i}", n + i)


def test_a_long_forum_opens_at_its_newest_round_and_pages_back_and_forth():
    run_id = make_run("run-rounds")
    rounds_of_three(run_id, 30, open_tail=1)
    at = render()
    assert [b for _, _, b in chats(at)] == ["未完的一轮 0"] and "Round **31** of 31" in values(at.markdown)
    assert at.button(key="forum_feed_newer").disabled and at.button(key="forum_feed_newest").disabled
    at.button(key="forum_feed_older").click()
    render(at)
    assert [b for _, _, b in chats(at)] == ["第30轮 查询", "第30轮 媒体", "第30轮 主持人总结"]
    at.button(key="forum_feed_first").click()
    render(at)
    assert [b for _, _, b in chats(at)] == ["第1轮 查询", "第1轮 媒体", "第1轮 主持人总结"]
    assert at.button(key="forum_feed_older").disabled and "Round **1** of 31" in values(at.markdown)
    at.button(key="forum_feed_newer").click()
    render(at)
    assert [b for _, _, b in chats(at)][0] == "第2轮 查询"
    # the speaker filter applies to an older round too
    at.multiselect(key="forum_feed_sources").set_value(["HOST"])
    render(at)
    assert [b for _, _, b in chats(at)] == ["第2轮 主持人总结"]
    at.button(key="forum_feed_newest").click()
    render(at)
    assert not at.chat_message and "No messages from the selected speakers in this round." in values(at.caption)


def test_a_new_round_while_reading_the_newest_is_followed_and_an_older_round_stays_put():
    run_id = make_run("run-live-rounds")
    rounds_of_three(run_id, 2)
    at = render()
    assert "Round **2** of 2" in values(at.markdown)
    post(run_id, "QUERY", "第3轮 第一条", 100)
    render(at)
    assert [b for _, _, b in chats(at)] == ["第3轮 第一条"] and "Round **3** of 3" in values(at.markdown)
    at.button(key="forum_feed_first").click()
    render(at)
    post(run_id, "MEDIA", "第3轮 第二条", 101)
    render(at)
    assert "Round **1** of 3" in values(at.markdown) and [b for _, _, b in chats(at)][0] == "第1轮 查询"


def test_the_compact_view_puts_each_message_on_one_line():
    run_id = make_run("run-compact")
    post(run_id, "QUERY", "第一行\n第二行 **粗体** <b>x</b>", 0)
    post(run_id, "HOST", "主持人总结", 1, paragraph=None)
    at = render()
    at.toggle(key="forum_feed_compact").set_value(True)
    render(at)
    assert not at.chat_message
    [block] = [m for m in values(at.markdown) if "主持人总结" in m]
    lines = block.split("  \n")
    assert len(lines) == 2
    assert lines[0].startswith("🔎 **Query Engine** · 12:15:07 · paragraph 1 — ")
    assert "第一行 第二行 \\*\\*粗体\\*\\* \\<b\\>x\\</b\\>" in lines[0]  # one line, its Markdown and HTML as text
    assert lines[1].startswith("🎙️ **Forum Host** · 12:15:08 — 主持人总结")


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("state", ["empty", "running", "completed", "cancelled", "imported"])
def test_the_forum_in_both_languages_in_each_state(lang, state):
    from tests.support.screen import english_leaks, untranslated_keys

    if state != "empty":
        run_id = make_run(f"run-{state}", kind="forum_import" if state == "imported" else "analysis")
        with get_runtime().db.session() as s:
            s.get(Run, run_id).status = "completed" if state == "imported" else state
        rounds_of_three(run_id, 2, open_tail=1)
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.session_state["shoal_lang"] = lang
    render(at)
    assert untranslated_keys(at) == []
    if lang == "zh":
        assert english_leaks(at) == []
    md, captions = values(at.markdown), values(at.caption)
    if state == "empty":
        assert [i for i in values(at.info) if ("暂无论坛记录" if lang == "zh" else "No forum transcript yet") in i]
        return
    assert ("第 **3** 轮，共 3 轮" if lang == "zh" else "Round **3** of 3") in md
    assert [b for _, _, b in chats(at)] == ["未完的一轮 0"]
    status = {"zh": {"running": "运行中", "completed": "已完成", "cancelled": "已取消", "imported": "已完成"},
              "en": {"running": "running", "completed": "completed", "cancelled": "cancelled",
                     "imported": "completed"}}[lang][state]
    assert any(f"run-{state}" in m and status in m for m in md), md
    if state == "imported":
        assert ("这是导入的 BettaFish 记录：没有实时主持人。" if lang == "zh"
                else "An imported BettaFish transcript: no live host moderates it.") in captions
    else:
        assert any(("主持人节奏" if lang == "zh" else "Host cadence") in c for c in captions), captions
    labels = [b.label for b in at.download_button]
    assert labels == (["下载 forum.log", "下载 JSON", "下载计量（CSV）"] if lang == "zh"
                      else ["Download forum.log", "Download JSON", "Download metering (CSV)"])


def test_a_compact_line_is_cut_by_display_width():
    from ui.forum_view import COMPACT_CHARS, one_line

    chinese, latin = one_line("舆情持续发酵" * 40), one_line("word " * 100)
    assert chinese.endswith("…") and len(chinese) == COMPACT_CHARS // 2 + 1  # two columns a character
    assert latin.endswith("…") and len(latin) == COMPACT_CHARS + 1
    assert one_line("短消息") == "短消息"


def test_a_link_with_a_run_opens_that_runs_forum():
    """Home's "forum" link of an ended run (?run=<id>) opens that run, not the latest one."""
    make_run("linkolder", age_s=60)
    post("linkolder", "QUERY", "较早一次分析的发言", 0)
    make_run("linknewer")
    post("linknewer", "QUERY", "最新一次分析的发言", 0)
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params["run"] = "linkolder"
    render(at)
    assert at.toggle(key="forum_follow").value is False
    assert at.selectbox(key="forum_run").value == "linkolder"
    assert [c for c in chats(at) if "较早一次分析的发言" in c[2]]
    assert not [c for c in chats(at) if "最新一次分析的发言" in c[2]]


# ---------------------------------------------------------------------------------------- metering


def test_the_page_meters_each_speaker_and_round_and_exports_the_tables(monkeypatch, tmp_path):
    """A priced call (from the operator's price file), an unpriced one and offline messages: the header
    of each message with a call, the per-speaker and per-round tables, and the CSV and JSON exports."""
    import csv
    import io

    from core.infra.models import LlmCall

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"house-model": {"input": 1.0, "output": 2.0}}), encoding="utf-8")
    monkeypatch.setenv("SHOAL_PRICE_TABLE", str(prices))
    reload_runtime()
    deferred = {}
    real_add = MediaFileManager.add_deferred

    def capture(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        deferred[file_name] = data_callable
        return real_add(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", capture)
    db = get_runtime().db
    run_id = make_run("run-metered")
    with db.session() as s:
        calls = [LlmCall(run_id=run_id, role="QUERY", model="house-model", input_tokens=1000, output_tokens=500,
                         latency_ms=1500.0, ts=T0),
                 LlmCall(run_id=run_id, role="FORUM_HOST", model="house-model", input_tokens=2000,
                         output_tokens=1000, latency_ms=2500.0, ts=T0),
                 LlmCall(run_id=run_id, role="INSIGHT", model="nobody-prices-this", input_tokens=10,
                         output_tokens=5, latency_ms=100.0, ts=T0)]
        s.add_all(calls)
        s.flush()
        ids = [c.id for c in calls]
    rt = get_runtime()
    for source, kind, rnd, call, n in (("QUERY", "agent", 1, ids[0], 0), ("MEDIA", "agent", 1, None, 4),
                                       ("HOST", "host", 1, ids[1], 10), ("INSIGHT", "agent", 2, ids[2], 20)):
        post_message(rt.db, rt.events, run_id, type=kind, source=source, content=f"{source} 的发言 {n}",
                     timestamp=T0 + timedelta(seconds=n), round_no=rnd, llm_call_id=call, dedup=False)
    at = render()
    assert "Metering" in values(at.subheader)
    assert any("4 messages · 4,515 tokens · $0.0060 (+1 unpriced)" in c for c in values(at.caption)), \
        values(at.caption)
    speakers, rounds = (d.value for d in at.dataframe)
    by_speaker = speakers.set_index("speaker")
    assert list(by_speaker.index) == ["Query Engine (QUERY)", "Media Engine (MEDIA)", "Forum Host (HOST)",
                                      "Insight Engine (INSIGHT)"]
    assert by_speaker.loc["Query Engine (QUERY)", "tokens"] == 1500
    assert by_speaker.loc["Query Engine (QUERY)", "cost"] == "$0.0020"
    assert by_speaker.loc["Media Engine (MEDIA)", "cost"] == "$0.0000"
    assert by_speaker.loc["Insight Engine (INSIGHT)", "cost"] == "unpriced"
    assert list(rounds["round"]) == ["1", "2"] and list(rounds["messages"]) == [3, 1]
    assert list(rounds["to host (s)"]) == ["10.0", "host not yet"]
    day = utcnow().strftime("%Y-%m-%d")
    rows = list(csv.DictReader(io.StringIO(deferred[f"新能源汽车价格战-{day}-forum-metering.csv"]())))
    assert [(r["table"], r["key"], r["tokens"]) for r in rows] == [
        ("speaker", "QUERY", "1500"), ("speaker", "MEDIA", "0"), ("speaker", "HOST", "3000"),
        ("speaker", "INSIGHT", "15"), ("round", "1", "4500"), ("round", "2", "15")]
    doc = json.loads(deferred[f"新能源汽车价格战-{day}-forum.json"]())
    assert doc["metering"]["rounds"][0]["seconds_to_host"] == 10.0
    assert [m["output_tokens"] for m in doc["messages"]] == [500, 0, 1000, 5]
    assert doc["messages"][3]["cost_usd"] is None and doc["messages"][0]["cost_usd"] == pytest.approx(0.002)
    # the round on screen is the open one: the INSIGHT message, its call in its header
    [chat] = at.chat_message
    assert chat.caption[0].value.endswith("round 2 · 15 tokens · unpriced · 0.1 s")
