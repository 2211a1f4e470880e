"""BettaFish's forum.log (ForumEngine/monitor.py's `write_to_forum_log` lines: `[HH:MM:SS] [SPEAKER]
[search id] content`, newlines escaped, SYSTEM markers with the date), the import of a folder or file
that has one, and clock-only times that run past midnight."""
from __future__ import annotations

import os
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from core.discussion.bettafish_import import parse_bettafish_folder, store_forum_import
from core.discussion.forum_log import parse_forum_log, resolve_days
from core.forum import transcript
from core.infra.clock import as_zone, zone_name
from core.work.runs import get_run

FORUM_LOG = "\n".join([
    "=== ForumEngine 系统初始化 - 2025-11-06 23:50:00 ===",
    "[23:58:00] [SYSTEM] [1a2b3c4d] === ForumEngine 监控开始 - 2025-11-06 23:58:00 ===",
    "[23:58:00] [SYSTEM] [1a2b3c4d] === 搜索会话ID: 1a2b3c4d ===",
    "[23:58:40] [QUERY] [1a2b3c4d] 新闻报道集中在降价幅度。\\n第二段：经销商库存。",
    "[23:59:10] [MEDIA] [1a2b3c4d] 短视频评论区讨论保值率。",
    "[23:59:55] [INSIGHT]  老车主维权的声音占三成。",          # an empty session tag: two spaces
    "[00:00:20] [HOST] [1a2b3c4d] 主持人：各位的发现可以归为三点。\\n1. 价格\\n2. 库存",
    "[00:00:21] ForumEngine 的一条提示，没有发言人",
    "[00:01:05] [query] 旧格式的一条消息，没有会话标记，",
    "后一行没有时间前缀：同一条消息的续行。",
    "[00:02:00] [REVIEW] [1a2b3c4d] 别的分支的发言人",
    "[00:03:00] [SYSTEM] [1a2b3c4d] === ForumEngine 论坛结束 - 2025-11-07 00:03:00 ===",
]) + "\n"


def test_every_speaker_line_shape_and_the_host(tmp_path):
    path = tmp_path / "forum.log"
    path.write_text(FORUM_LOG, encoding="utf-8")
    warnings: list = []
    msgs = parse_forum_log(path, warnings)
    assert [(m.source, m.clock, m.date) for m in msgs] == [
        ("QUERY", "23:58:40", "2025-11-06"), ("MEDIA", "23:59:10", "2025-11-06"),
        ("INSIGHT", "23:59:55", "2025-11-06"), ("HOST", "00:00:20", "2025-11-07"),
        ("QUERY", "00:01:05", "2025-11-07"),
    ]
    assert msgs[0].content == "新闻报道集中在降价幅度。\n第二段：经销商库存。"
    assert msgs[2].content == "老车主维权的声音占三成。"
    assert msgs[3].content == "主持人：各位的发现可以归为三点。\n1. 价格\n2. 库存"
    assert msgs[4].content == "旧格式的一条消息，没有会话标记，\n后一行没有时间前缀：同一条消息的续行。"
    assert not any("1a2b3c4d" in m.content or "ForumEngine" in m.content for m in msgs)
    assert [w.render("en") for w in warnings] == ["forum.log: lines of other speakers skipped (REVIEW: 1)"]


def test_a_forum_log_across_midnight_is_stored_in_order_with_host_messages(db, events, tmp_path):
    (tmp_path / "forum.log").write_text(FORUM_LOG, encoding="utf-8")
    for given in (tmp_path, tmp_path / "forum.log"):  # the folder, or the file itself
        result = parse_bettafish_folder(given)
        assert result.ok and result.files == {"forum.log": 5}
        assert [m.source for m in result.messages] == ["QUERY", "MEDIA", "INSIGHT", "HOST", "QUERY"]
    run_id = store_forum_import(db, events, result, "跨午夜", timezone.utc)
    stored = transcript(db, run_id)
    assert [(m.type, m.source) for m in stored] == [("agent", "QUERY"), ("agent", "MEDIA"), ("agent", "INSIGHT"),
                                                   ("host", "HOST"), ("agent", "QUERY")]
    assert stored[3].sender == "Forum Host"
    times = [m.timestamp for m in stored]
    assert times == sorted(times)
    assert times[2] == datetime(2025, 11, 6, 23, 59, 55) and times[3] == datetime(2025, 11, 7, 0, 0, 20)


def test_without_a_dated_marker_the_last_line_is_on_the_day_the_file_was_written(tmp_path):
    path = tmp_path / "forum.log"
    path.write_text("[23:59:00] [QUERY] 前一天\n[00:00:30] [HOST] 第二天\n[00:10:00] [MEDIA] 第二天稍晚\n",
                    encoding="utf-8")
    written = datetime(2025, 3, 2, 0, 10, 5).timestamp()
    os.utime(path, (written, written))
    msgs = parse_forum_log(path, [])
    assert [m.date for m in msgs] == ["2025-03-01", "2025-03-02", "2025-03-02"]


def test_engine_logs_across_midnight_interleave_and_forum_log_adds_only_the_host(tmp_path):
    line = '[{}] [FirstSummaryNode] 清理后的输出: {{"paragraph_latest_state": "{}"}}\n'
    (tmp_path / "query.log").write_text(line.format("23:59:00", "q1") + line.format("00:01:00", "q2"),
                                        encoding="utf-8")
    (tmp_path / "media.log").write_text(line.format("23:59:30", "m1") + line.format("00:00:10", "m2"),
                                        encoding="utf-8")
    (tmp_path / "forum.log").write_text("\n".join([
        "[23:58:50] [SYSTEM] [abcdef12] === ForumEngine 监控开始 - 2025-11-06 23:58:50 ===",
        "[23:59:01] [QUERY] [abcdef12] q1", "[23:59:31] [MEDIA] [abcdef12] m1",
        "[00:00:11] [MEDIA] [abcdef12] m2", "[00:00:40] [HOST] [abcdef12] 主持人小结",
        "[00:01:01] [QUERY] [abcdef12] q2"]) + "\n", encoding="utf-8")
    # a copied folder: the engine logs' modification day is today; forum.log's marker names the day
    result = parse_bettafish_folder(tmp_path)
    assert [m.content for m in result.messages] == ["q1", "m1", "m2", "主持人小结", "q2"]
    assert result.files == {"media.log": 2, "query.log": 2, "forum.log": 1}
    assert [m.date for m in result.messages] == ["2025-11-06", "2025-11-06", "2025-11-07", "2025-11-07", "2025-11-07"]


def test_day_rules():
    # past midnight; a step back of under an hour (a clock change, a late write) stays on the day
    entries = [("23:00:00", None), ("22:30:00", None), ("23:59:59", None), ("00:00:01", None), (None, None),
               ("09:00:00", None)]
    assert resolve_days(entries, date(2025, 1, 2)) == [date(2025, 1, 1)] * 3 + [date(2025, 1, 2)] * 3
    assert resolve_days(entries, date(2025, 1, 1), fallback_first=True)[-1] == date(2025, 1, 2)
    # a known date wins, and the entries before it count back from it
    assert resolve_days([("23:00:00", None), ("01:00:00", "2024-05-05"), ("02:00:00", None)], date(2030, 1, 1)) == \
        [date(2024, 5, 4), date(2024, 5, 5), date(2024, 5, 5)]


def test_a_forum_log_with_nothing_to_import_says_so(tmp_path):
    (tmp_path / "forum.log").write_text("[10:00:00] [SYSTEM] [abcdef12] === ForumEngine 监控开始 - "
                                        "2025-11-06 10:00:00 ===\n", encoding="utf-8")
    result = parse_bettafish_folder(tmp_path)
    assert not result.ok and result.messages == []
    assert result.error_text() == f"No forum messages found in {tmp_path}."
    assert any(w.startswith("forum.log: no messages") for w in result.warning_texts())
    assert any(w.startswith("forum.log：没有消息") for w in result.warning_texts("zh"))


def test_forum_log_gives_every_message_when_the_engine_logs_give_none(tmp_path):
    (tmp_path / "query.log").write_text("[10:00:00] 2025-11-06 10:00:00.000 | ERROR    | x:y:1 - boom\n", encoding="utf-8")
    (tmp_path / "forum.log").write_text("[10:00:01] [QUERY] 查询引擎\n[10:00:02] [HOST] 主持人\n", encoding="utf-8")
    result = parse_bettafish_folder(tmp_path)
    assert [(m.source, m.content) for m in result.messages] == [("QUERY", "查询引擎"), ("HOST", "主持人")]


def test_the_logs_times_are_read_in_the_zone_given_and_stored_as_utc(db, events, tmp_path):
    """BettaFish's clock times carry no zone: read in Asia/Shanghai, 23:59:55 there is 15:59:55 UTC,
    and shown in that zone again the message has its log line's time."""
    (tmp_path / "forum.log").write_text(FORUM_LOG, encoding="utf-8")
    shanghai = ZoneInfo("Asia/Shanghai")
    run_id = store_forum_import(db, events, parse_bettafish_folder(tmp_path), "上海时间", shanghai)
    stored = transcript(db, run_id)
    assert stored[2].timestamp == datetime(2025, 11, 6, 15, 59, 55)  # naive UTC, as Shoal stores
    assert as_zone(stored[3].timestamp, shanghai).strftime("%Y-%m-%d %H:%M:%S") == "2025-11-07 00:00:20"
    assert get_run(db, run_id).params["log_zone"] == zone_name(shanghai) == "Asia/Shanghai (UTC+08:00)"
