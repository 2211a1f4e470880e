"""The summary-record parser on every log shape, and the BettaFish folder import.

Fixtures under tests/data/bettafish_logs/ were written for these tests from the format
description in DESIGN §6 (old `[HH:MM:SS] [Node] 清理后的输出: {…}` lines, new loguru lines behind
a clock prefix with `[HH:MM:SS] `-prefixed JSON continuation lines)."""
from __future__ import annotations

import json
import random
import re
import shutil
from datetime import timezone
from pathlib import Path

import pytest

from core.forum import transcript
from core.discussion.bettafish_import import ForumImport, parse_bettafish_folder, store_forum_import
from core.discussion.log_parse import ParsedSummary, SummaryParser
from core.infra.models import Run

DATA = Path(__file__).resolve().parents[1] / "data" / "bettafish_logs"


def parse(text: str, source: str = "QUERY") -> list[ParsedSummary]:
    p = SummaryParser(source)
    out = []
    for line in text.split("\n"):
        out += p.feed(line)
    return out + p.flush()


def shoal(node: str, record: dict, *, level: str = "INFO", engine: str = "insight", clock: str = "08:44:12") -> str:
    """A loguru line with extra columns (as core.infra.logs.FORMAT writes) and an old-style tagged message."""
    return (f"2026-11-22 {clock}.145 | {level:<8} | 9c0d2e4f1a2b3c4d | {engine:<7} | core.research.engine:log_node:137 - "
            f"[{node}] 清理后的输出: {json.dumps(record, ensure_ascii=False)}")


def new_header(clock: str, module: str, level: str = "INFO", func: str = "process_output", line: int = 302) -> str:
    return f"[{clock}] 2025-11-06 {clock}.759 | {level:<8} | {module}:{func}:{line} - "


# -- the shapes ------------------------------------------------------------------------------------

def test_old_single_line():
    out = parse('[12:15:07] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "价格战持续发酵。"}')
    assert out == [ParsedSummary("QUERY", "价格战持续发酵。", "12:15:07", None, "FirstSummaryNode")]


def test_old_multi_line_with_and_without_prefixes():
    text = "\n".join([
        "[12:15:07] [FirstSummaryNode] 清理后的输出: {",
        '  "paragraph_latest_state": "第一行，',
        '[12:15:07] 第二行。"',
        "}",
        "[12:16:00] [ReflectionSummaryNode] 清理后的输出: {",
        '[12:16:00]   "updated_paragraph_latest_state": "反思后的版本"',
        "[12:16:00] }",
    ])
    out = parse(text, "MEDIA")
    assert [(m.content, m.clock, m.node, m.source) for m in out] == [
        ("第一行，\n第二行。", "12:15:07", "FirstSummaryNode", "MEDIA"),
        ("反思后的版本", "12:16:00", "ReflectionSummaryNode", "MEDIA"),
    ]


def test_new_multi_line_with_continuation_prefixes():
    text = "\n".join([
        new_header("10:56:04", "QueryEngine.nodes.summary_node") + "清理后的输出: {",
        '[10:56:04] "paragraph_latest_state": "多家车企宣布降价，",',
        '[10:56:04] "title": "起因"',
        "[10:56:04] }",
    ])
    out = parse(text)
    assert len(out) == 1
    m = out[0]
    assert (m.content, m.clock, m.date, m.node, m.paragraph) == ("多家车企宣布降价，", "10:56:04", "2025-11-06",
                                                                 "FirstSummaryNode", None)


def test_updated_state_wins_over_the_previous_state():
    text = "\n".join([
        new_header("10:58:30", "QueryEngine.nodes.summary_node") + "清理后的输出: {",
        '[10:58:30] "paragraph_latest_state": "旧的",',
        '[10:58:30] "updated_paragraph_latest_state": "新的"',
        "[10:58:30] }",
    ])
    [m] = parse(text)
    assert m.content == "新的" and m.node == "ReflectionSummaryNode"
    [m] = parse('[12:00:00] [FirstSummaryNode] 清理后的输出: '
                '{"updated_paragraph_latest_state": "", "paragraph_latest_state": "空的更新不算"}')
    assert m.content == "空的更新不算"


def test_old_and_new_lines_mixed_inside_one_block():
    old_head = "\n".join([
        "[12:20:01] [ReflectionSummaryNode] 清理后的输出: {",
        new_header("12:20:01", "InsightEngine.nodes.summary_node") + '"updated_paragraph_latest_state": "混合块：',
        '后半句没有前缀",',
        '[12:20:01]   "paragraph_latest_state": "旧"',
        "[12:20:01] }",
    ])
    new_head = "\n".join([
        new_header("12:21:00", "InsightEngine.nodes.summary_node") + "清理后的输出: {",
        '"paragraph_latest_state": "新头，',
        '[12:21:00] 旧式续行"',
        "}",
        "[12:22:00] [FirstSummaryNode] 清理后的输出: {\"paragraph_latest_state\": \"紧跟着的旧式单行\"}",
    ])
    out = parse(old_head + "\n" + new_head, "INSIGHT")
    assert [(m.content, m.clock, m.node) for m in out] == [
        ("混合块：\n后半句没有前缀", "12:20:01", "ReflectionSummaryNode"),
        ("新头，\n旧式续行", "12:21:00", "FirstSummaryNode"),
        ("紧跟着的旧式单行", "12:22:00", "FirstSummaryNode"),
    ]


def test_error_block_with_traceback_interrupting_json_is_skipped():
    text = "\n".join([
        new_header("10:57:40", "InsightEngine.nodes.summary_node") + "清理后的输出: {",
        '[10:57:40] "paragraph_latest_state": "被打断的前半段，',
        new_header("10:57:41", "InsightEngine.nodes.summary_node", "ERROR", "run", 160) + "生成总结失败",
        "[10:57:41] Traceback (most recent call last):",
        '[10:57:41]   File "/srv/x/summary_node.py", line 150, in run',
        "[10:57:41]     result = json.loads(output)",
        "[10:57:41] json.decoder.JSONDecodeError: Expecting ',' delimiter",
        '[10:57:41] 后半段"',
        "[10:57:41] }",
        # an old-style error and traceback without prefixes
        "[10:58:00] [ERROR] 反思总结失败",
        "Traceback (most recent call last):",
        '  File "agent.py", line 3, in <module>',
        'ValueError: "paragraph_latest_state": "也不算"',
        "}",
        "[10:59:00] [FirstSummaryNode] 清理后的输出: {\"paragraph_latest_state\": \"错误之后的正常记录\"}",
    ])
    p = SummaryParser("INSIGHT")
    out = [m for line in text.split("\n") for m in p.feed(line)] + p.flush()
    assert [m.content for m in out] == ["错误之后的正常记录"]
    assert p.stats["interrupted"] == 1 and p.stats["errors"] == 2
    # a loguru ERROR record with its traceback, between two good records
    shoal_text = "\n".join([
        shoal("FirstSummaryNode", {"paragraph": 0, "paragraph_latest_state": "一"}),
        shoal("FirstSummaryNode", {"paragraph": 1}, level="ERROR").replace("清理后的输出", "失败"),
        "Traceback (most recent call last):",
        '  File "core/research/engine.py", line 9, in x',
        "RuntimeError: boom",
        shoal("FirstSummaryNode", {"paragraph": 1, "paragraph_latest_state": "二"}),
    ])
    assert [m.content for m in parse(shoal_text, "INSIGHT")] == ["一", "二"]


def test_search_and_report_structure_outputs_are_not_messages():
    text = "\n".join([
        '[10:55:05] [ReportStructureNode] 清理后的输出: [{"title": "a", "content": "b"}]',
        '[10:55:07] [FirstSearchNode] 清理后的输出: {"search_query": "q", "reasoning": "r"}',
        '[10:55:08] [ReflectionNode] 清理后的输出: {"search_query": "q2", "paragraph_latest_state": "不是总结"}',
        new_header("10:55:09", "QueryEngine.nodes.search_node", func="process_output", line=140) + "清理后的输出: {",
        '[10:55:09] "search_query": "q3", "paragraph_latest_state": "搜索节点也不算"',
        "[10:55:09] }",
        new_header("10:55:10", "QueryEngine.nodes.report_structure_node", line=95) + "清理后的输出: [",
        '[10:55:10] {"title": "t", "content": "c"}',
        "[10:55:10] ]",
        new_header("10:55:11", "QueryEngine.nodes.formatting_node") + "清理后的输出: {\"paragraph_latest_state\": \"x\"}",
        shoal("SearchNode", {"paragraph": 0, "search_query": "q", "results": 3}),
        shoal("ReportStructureNode", {"report_structure": [{"title": "t"}]}),
        shoal("ReportFormattingNode", {"final_report_chars": 1200}),
        '[10:56:00] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "唯一的总结"}',
    ])
    assert [m.content for m in parse(text)] == ["唯一的总结"]


def test_unescaped_inner_quotes_and_trailing_commas_are_repaired():
    text = "\n".join([
        '[10:57:00] [ReflectionSummaryNode] 清理后的输出: {"updated_paragraph_latest_state": "博主说"这是清库存"，点赞很多。",}',
        "[10:58:00] [FirstSummaryNode] 清理后的输出: {",
        '  "paragraph_latest_state": "网友称"降价"是"背刺"老车主",',
        '  "title": "老车主",',
        "}",
    ])
    out = parse(text, "MEDIA")
    assert [m.content for m in out] == ['博主说"这是清库存"，点赞很多。', '网友称"降价"是"背刺"老车主']


def test_crlf_escapes_inside_strings():
    text = "\n".join([
        r'[10:58:30] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "第一段\r\n第二段\r\n第三段"}',
        r'[10:58:31] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "转义两次\\r\\n也算换行"}',
        '[10:58:32] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "行尾的回车\r',
        '续行"}\r',
    ])
    out = parse(text)
    assert [m.content for m in out] == ["第一段\n第二段\n第三段", "转义两次\n也算换行", "行尾的回车\n续行"]


# Long lines are where a backtracking pattern goes quadratic or worse: on these 200,000 characters that is a
# hang, not a slowdown. The behaviour checked is "finishes" (a hang fails at this marker's timeout, far from
# the well under a second a linear parse takes even on a loaded machine); speed is bench/'s business.
@pytest.mark.timeout(60)
def test_lines_of_ten_thousand_characters_and_more():
    long_text = "舆情" * 30_000  # 60,000 characters
    broken = "他说\"" + "很长" * 6_000 + "\"结束"  # unescaped quotes in a 12,000+ character line
    text = "\n".join([
        "[09:00:00] [FirstSummaryNode] 清理后的输出: " + json.dumps({"paragraph_latest_state": long_text},
                                                               ensure_ascii=False),
        '[09:00:01] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "' + broken + '"}',
        new_header("09:00:02", "MediaEngine.nodes.summary_node") + "清理后的输出: {",
        '[09:00:02] "updated_paragraph_latest_state": "' + "长" * 20_000 + '"',
        "[09:00:02] }",
        "[09:00:03] noise " + "[{\"" * 40_000,  # brackets and quotes galore, no marker
        '[09:00:04] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "' + "\\" * 30_001 + "x" * 10_000,
    ])
    assert len(text) > 200_000
    out = parse(text, "MEDIA")
    assert [len(m.content) for m in out[:3]] == [60_000, len(broken), 20_000]
    assert out[1].content == broken


def test_loguru_headed_tagged_lines_carry_clock_date_and_paragraph():
    text = "\n".join([
        shoal("FirstSummaryNode", {"paragraph": 0, "paragraph_latest_state": "第一段\n有换行", "title": "t"}),
        shoal("ReflectionSummaryNode", {"paragraph": 2, "updated_paragraph_latest_state": "反思", "title": "t"},
              clock="08:45:00"),
        '[12:15:07] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "旧格式"}',
    ])
    assert [(m.content, m.paragraph, m.node, m.clock, m.date) for m in parse(text, "INSIGHT")] == [
        ("第一段\n有换行", 0, "FirstSummaryNode", "08:44:12", "2026-11-22"),
        ("反思", 2, "ReflectionSummaryNode", "08:45:00", "2026-11-22"),
        ("旧格式", None, "FirstSummaryNode", "12:15:07", None),
    ]


def test_progress_phrases_name_the_node_of_an_untagged_output():
    generic = "QueryEngine.utils.text_processing"
    text = "\n".join([
        new_header("11:00:00", "QueryEngine.agent", func="_reflect", line=250) + "正在生成反思总结...",
        new_header("11:00:02", generic, func="clean_json", line=40) + "清理后的输出: {",
        '[11:00:02] "paragraph_latest_state": "由进度短语认出的反思总结"',
        "[11:00:02] }",
        "[11:01:00] 正在生成首次段落总结",
        "[11:01:02] 清理后的输出: {",
        '[11:01:02] "paragraph_latest_state": "旧格式无标签"',
        "[11:01:02] }",
        new_header("11:02:00", "QueryEngine.agent", func="_first", line=171) + "正在生成首次段落总结",
        new_header("11:02:01", "QueryEngine.nodes.search_node") + '清理后的输出: {"search_query": "q"}',
    ])
    out = parse(text)
    assert [(m.content, m.node, m.clock) for m in out] == [
        ("由进度短语认出的反思总结", "ReflectionSummaryNode", "11:00:02"),
        ("旧格式无标签", "FirstSummaryNode", "11:01:02"),
    ]


def test_parser_state_survives_a_snapshot_mid_block():
    lines = [
        new_header("10:56:04", "QueryEngine.nodes.summary_node") + "清理后的输出: {",
        '[10:56:04] "paragraph_latest_state": "跨越检查点的块"',
        "[10:56:04] }",
    ]
    p = SummaryParser("QUERY")
    assert p.feed(lines[0]) == [] and p.feed(lines[1]) == []
    snap = json.loads(json.dumps(p.snapshot()))
    q = SummaryParser("QUERY")
    q.restore(snap)
    assert [m.content for m in q.feed(lines[2])] == ["跨越检查点的块"]


def test_a_block_cut_off_at_the_end_is_salvaged_by_flush():
    p = SummaryParser("QUERY")
    assert p.feed('[10:00:00] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "写到一半') == []
    assert [m.content for m in p.flush()] == ["写到一半"]


# -- the folder import --------------------------------------------------------------------------

def test_three_files_interleaved_by_time():
    result = parse_bettafish_folder(DATA / "three")
    assert result.ok and result.error is None
    assert result.files == {"insight.log": 2, "media.log": 2, "query.log": 2}
    assert [(m.clock, m.source) for m in result.messages] == [
        ("10:55:10", "MEDIA"), ("10:56:04", "QUERY"), ("10:56:30", "INSIGHT"),
        ("10:57:00", "MEDIA"), ("10:58:30", "QUERY"), ("10:59:00", "INSIGHT"),
    ]
    contents = [m.content for m in result.messages]
    assert contents[3] == '博主说"这轮降价是清库存"，获得大量点赞。'
    assert contents[4] == "补充了经销商库存数据：\n库存周期已超过两个月。"
    assert not any("打断" in c or "后半段" in c or "search_query" in c for c in contents)
    assert any("interrupted by an error" in w for w in result.warning_texts())


def test_lines_are_forum_log_format_with_newlines_escaped():
    result = parse_bettafish_folder(DATA / "three")
    lines = result.lines()
    assert len(lines) == len(result.messages) == 6
    assert all(re.fullmatch(r"\[\d{2}:\d{2}:\d{2}\] \[(QUERY|MEDIA|INSIGHT)\] \S.*", l) for l in lines)
    assert all("\n" not in l and "\r" not in l for l in lines)
    assert lines[0] == "[10:55:10] [MEDIA] 短视频平台上，门店实拍视频播放量最高，\\n评论区集中讨论保值率。"
    assert lines[4].startswith("[10:58:30] [QUERY] 补充了经销商库存数据：\\n库存周期")


def test_ties_keep_file_order_and_any_subset_of_files_works(tmp_path):
    (tmp_path / "query.log").write_text('[09:00:00] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "q"}\n',
                                        encoding="utf-8")
    (tmp_path / "insight.log").write_text('[09:00:00] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "i"}\n'
                                          '[08:00:00] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "i0"}\n',
                                          encoding="utf-8")
    result = parse_bettafish_folder(tmp_path)
    assert [m.content for m in result.messages] == ["i0", "i", "q"]
    assert result.files == {"insight.log": 2, "query.log": 1}


@pytest.mark.parametrize("case", ["missing", "a_file", "empty", "empty_files", "binary", "junk", "errors_only"])
def test_bad_folders_give_a_clear_message_and_an_empty_transcript(tmp_path, case):
    """The error says what is wrong with the folder; when its files were read but held nothing, the error
    says so and the warnings say why, file by file. Both read in either language."""
    folder = tmp_path / "logs"
    why = None  # a folder whose files were read: what the warnings say
    if case == "missing":
        expected = "does not exist"
    elif case == "a_file":
        folder.write_text("x")
        expected = "not a folder"
    elif case == "empty":
        folder.mkdir()
        expected = "No BettaFish engine logs"
    elif case == "empty_files":
        folder.mkdir()
        for name in ("insight.log", "media.log", "query.log"):
            (folder / name).write_bytes(b"")
        why = "insight.log: no summary-node records"
    elif case == "binary":
        folder.mkdir()
        (folder / "media.log").write_bytes(bytes(range(256)) * 64 + "清理后的输出: {".encode())
        why = "media.log: binary data"
    elif case == "junk":
        folder.mkdir()
        (folder / "query.log").write_bytes(random.Random(7).randbytes(50_000).replace(b"\x00", b"\x01"))
        why = "query.log: binary data"
    else:
        shutil.copytree(DATA / "errors_only", folder)
        why = "error record(s) skipped"
    result = parse_bettafish_folder(folder)
    assert isinstance(result, ForumImport)
    assert result.messages == [] and result.lines() == [] and not result.ok
    error = result.error_text()
    if why is None:
        assert expected in error and not result.warnings, error
    else:
        assert error == f"No forum messages found in {folder}.", error
        assert any(why in w for w in result.warning_texts()), result.warning_texts()
    for msg in [result.error, *result.warnings]:
        en, zh = msg.render("en"), msg.render("zh")
        assert "⟦" not in en + zh and re.search(r"[\u4e00-\u9fff]", zh) and not re.search(r"[\u4e00-\u9fff]", en)
    assert result.as_dict()["error"] == error and result.as_dict()["warnings"] == result.warning_texts()


def test_store_import_as_a_completed_run(db, events):
    result = parse_bettafish_folder(DATA / "three")
    run_id = store_forum_import(db, events, result, "BettaFish 导入：价格战", timezone.utc)
    with db.session() as s:
        run = s.get(Run, run_id)
        assert (run.kind, run.status, run.topic) == ("forum_import", "completed", "BettaFish 导入：价格战")
    msgs = transcript(db, run_id)
    assert [(m.type, m.source, m.content) for m in msgs] == [("agent", m.source, m.content) for m in result.messages]
    assert msgs[0].sender == "Media Engine"
    assert msgs[1].timestamp.strftime("%H:%M:%S") == "10:56:04"


def test_an_import_keeps_every_message_of_the_folder_repeats_included(db, events, tmp_path):
    """An import is a record: two engines saying the same, and one engine saying it twice, are all kept."""
    same = "比亚迪宣布全系车型降价，最高优惠两万元。老车主集体维权，要求厂家给予补偿，认为降价太突然。"
    line = '[10:00:0{}] [FirstSummaryNode] 清理后的输出: {{"paragraph_latest_state": "{}"}}\n'
    (tmp_path / "query.log").write_text(line.format(1, same) + line.format(2, same), encoding="utf-8")
    (tmp_path / "media.log").write_text(line.format(3, same + "[5]") + line.format(4, "抖音视频"), encoding="utf-8")
    result = parse_bettafish_folder(tmp_path)
    assert len(result.messages) == 4
    run_id = store_forum_import(db, events, result, "重复的记录", timezone.utc)
    msgs = transcript(db, run_id)
    assert [(m.source, m.content) for m in msgs] == [(m.source, m.content) for m in result.messages]
    with db.session() as s:
        assert s.get(Run, run_id).params["messages"] == len(msgs) == 4
    (imported,), _ = events.since(0, run_id=run_id, types=["forum.imported"])
    assert imported.payload["messages"] == imported.payload["found"] == 4
    assert events.since(0, run_id=run_id, types=["forum.duplicate_skipped"])[0] == []
