"""JSON extraction and repair on LLM replies as they really come back (Chinese content included)."""
from __future__ import annotations

import json

import pytest

from core.llm.jsonrepair import JsonRepairError, extract_json, repair_json, split_think, strip_think

BS = "\\"  # one backslash, to write literal escapes without raw-string puzzles

CASES = [
    # --- the happy path -----------------------------------------------------------------------
    ("plain object", '{"title": "舆情分析", "n": 3}', {"title": "舆情分析", "n": 3}),
    ("plain array", '[{"title": "背景"}, {"title": "现状"}]', [{"title": "背景"}, {"title": "现状"}]),
    ("surrounding whitespace", '\n\n  {"a": [1, 2.5, -3e2]}  \n', {"a": [1, 2.5, -300.0]}),
    ("unicode escapes and emoji", '{"c": "\\u4e2d\\u6587", "e": "\\ud83d\\ude00", "raw": "🔥热搜"}',
     {"c": "中文", "e": "😀", "raw": "🔥热搜"}),

    # --- reasoning ----------------------------------------------------------------------------
    ("think block first", '<think>\n用户想要 JSON，我先想想 {"draft": true}\n</think>\n\n{"search_query": "武汉大学 舆情"}',
     {"search_query": "武汉大学 舆情"}),
    ("thinking tag, upper case", '<THINKING>hmm</THINKING>{"ok": 1}', {"ok": 1}),
    ("orphan closing tag", '首先分析题目……然后给出答案。\n</think>\n\n{"reasoning": "覆盖不足", "search_query": "校园 事件 回应"}',
     {"reasoning": "覆盖不足", "search_query": "校园 事件 回应"}),
    ("unclosed leading think holds the only JSON", '<think>\n{"title": "草稿"}', {"title": "草稿"}),

    # --- fences and prose ---------------------------------------------------------------------
    ("json fence with prose", '好的，以下是报告结构：\n```json\n{"paragraphs": [{"title": "事件经过"}]}\n```\n希望对你有帮助！',
     {"paragraphs": [{"title": "事件经过"}]}),
    ("fence without language", "结果：\n```\n[1, 2, 3]\n```", [1, 2, 3]),
    ("fence cut off", '```json\n{"title": "热点", "items": ["微博", "知乎"', {"title": "热点", "items": ["微博", "知乎"]}),
    ("prose before and after, no fence", '以下是结果：{"sentiment": "负面", "score": 0.82}。如需调整请告诉我。',
     {"sentiment": "负面", "score": 0.82}),
    ("citations in prose do not win", '根据[1]和[2]的报道，结论如下：\n{"summary": "热度上升", "sources": [1, 2]}\n参考[3]',
     {"summary": "热度上升", "sources": [1, 2]}),
    ("braces in prose", '使用 {placeholder} 语法不对。正确结果：{"ok": true}', {"ok": True}),
    ("second fence is the real one", '示例：\n```python\nprint({"x": 1})\n```\n答案：\n```json\n{"answer": 42}\n```',
     {"answer": 42}),

    # --- commas -------------------------------------------------------------------------------
    ("trailing commas", '{"a": [1, 2, 3,], "b": {"c": "d",},}', {"a": [1, 2, 3], "b": {"c": "d"}}),
    ("doubled comma", '{"a": 1,, "b": 2}', {"a": 1, "b": 2}),
    ("missing commas between lines", '{\n  "title": "背景"\n  "content": "二〇二四年"\n  "n": 2\n}',
     {"title": "背景", "content": "二〇二四年", "n": 2}),
    ("missing comma between objects", '[{"a": 1} {"b": 2}]', [{"a": 1}, {"b": 2}]),

    # --- quotes, keys, literals ---------------------------------------------------------------
    ("single quotes", "{'title': '舆情', 'tags': ['微博', '抖音']}", {"title": "舆情", "tags": ["微博", "抖音"]}),
    ("apostrophe inside single quotes", "{'q': 'it's viral', 'n': 1}", {"q": "it's viral", "n": 1}),
    ("unquoted keys", '{title: "概述", 段落数: 5, paragraph_count: 5}', {"title": "概述", "段落数": 5, "paragraph_count": 5}),
    ("python literals", "{'done': True, 'failed': False, 'next': None}", {"done": True, "failed": False, "next": None}),
    ("NaN becomes null", '{"score": NaN, "ok": true}', {"score": None, "ok": True}),
    ("bare values", '{"sentiment": positive, "share": 85%, "scale": 3.5亿}',
     {"sentiment": "positive", "share": "85%", "scale": "3.5亿"}),

    # --- inside strings -----------------------------------------------------------------------
    ("raw newline and tab in a string", '{"content": "第一段\n第二段\t结束"}', {"content": "第一段\n第二段\t结束"}),
    ("unescaped inner quotes, Chinese", '{"a": "他说"好"的"}', {"a": '他说"好"的'}),
    ("unescaped inner quotes, English", '{"quote": "he said "yes" twice", "n": 1}', {"quote": 'he said "yes" twice', "n": 1}),
    ("inner quotes followed by comma text", '{"a": "网友称"太离谱了"，纷纷转发", "b": 2}', {"a": '网友称"太离谱了"，纷纷转发', "b": 2}),
    ("full-width quotes inside a string stay", '{"a": "他说“好”的"}', {"a": "他说“好”的"}),
    ("invalid escapes kept", '{"re": "' + BS + 'd+ 条", "path": "C:' + BS + 'data"}', {"re": BS + "d+ 条", "path": "C:" + BS + "data"}),

    # --- escapes between tokens ---------------------------------------------------------------
    ("literal \\r\\n between tokens", "{" + BS + "r" + BS + "n  \"a\": 1," + BS + "r" + BS + "n  \"b\": \"x\"" + BS + "r" + BS + "n}",
     {"a": 1, "b": "x"}),
    ("reply escaped once", "{" + BS + '"title' + BS + '": ' + BS + '"舆情' + BS + '", ' + BS + '"n' + BS + '": 2}',
     {"title": "舆情", "n": 2}),
    ("JSON encoded as a string", json.dumps(json.dumps({"a": [1, "二"]}, ensure_ascii=False), ensure_ascii=False),
     {"a": [1, "二"]}),
    ("CRLF line endings", '{\r\n  "a": "x",\r\n  "b": [1,\r\n 2]\r\n}', {"a": "x", "b": [1, 2]}),

    # --- full-width structure -----------------------------------------------------------------
    ("full-width quotes, colon and comma", "{“标题”：“舆情分析”，“段落数”：5}", {"标题": "舆情分析", "段落数": 5}),
    ("full-width comma between items", '{"a": "一"，"b": "二"}', {"a": "一", "b": "二"}),

    # --- comments -----------------------------------------------------------------------------
    ("comments", '{\n  // 标题\n  "title": "x", /* 数量 */ "n": 2,\n  # 备注\n  "url": "https://a.cn/x"\n}',
     {"title": "x", "n": 2, "url": "https://a.cn/x"}),

    # --- truncation ---------------------------------------------------------------------------
    ("cut inside a string", '{"title": "报告", "paragraphs": [{"title": "背景", "content": "2024年3月',
     {"title": "报告", "paragraphs": [{"title": "背景", "content": "2024年3月"}]}),
    ("cut after a colon", '{"a": 1, "b":', {"a": 1}),
    ("cut inside a key", '{"a": 1, "bo', {"a": 1}),
    ("cut inside a literal", "[1, 2, tr", [1, 2]),
    ("cut after an escape", '{"a": "x' + BS, {"a": "x"}),
    ("cut inside a nested array", '{"rows": [[1, 2], [3,', {"rows": [[1, 2], [3]]}),
    ("mismatched closer", '[{"a": 1]', [{"a": 1}]),

    # --- real-looking composites --------------------------------------------------------------
    ("BettaFish report structure",
     '<think>需要五个段落</think>\n```json\n[\n  {"title": "事件概述", "content": "梳理事件的起因与经过",},\n'
     "  {'title': '舆论走向', 'content': '各平台的情绪变化'},\n]\n```",
     [{"title": "事件概述", "content": "梳理事件的起因与经过"}, {"title": "舆论走向", "content": "各平台的情绪变化"}]),
    ("reflection node reply",
     '好的。\n{\n  "search_query": "高校 食堂 涨价 回应",\n  "search_tool": "search_topic_by_date",\n'
     '  "start_date": "2024-09-01", "end_date": "2024-09-30",\n  "reasoning": "之前缺少"官方回应"的信息"\n}',
     {"search_query": "高校 食堂 涨价 回应", "search_tool": "search_topic_by_date", "start_date": "2024-09-01",
      "end_date": "2024-09-30", "reasoning": '之前缺少"官方回应"的信息'}),
    ("summary with markdown inside",
     '{"paragraph_latest_state": "## 现状\n- 微博讨论 **1.2万** 条[1]\n- 知乎回答 \\"理性\\" 居多[2]"}',
     {"paragraph_latest_state": '## 现状\n- 微博讨论 **1.2万** 条[1]\n- 知乎回答 "理性" 居多[2]'}),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_extract_json(text, expected):
    assert extract_json(text) == expected


@pytest.mark.parametrize("text", [
    "",
    "   \n ",
    "抱歉，我无法完成这个任务。",
    "<think>这个问题我需要再想想</think>",
    "<think>还在想，没有结论",
    "The answer is yes.",
], ids=["empty", "blank", "refusal", "only-think", "unclosed-think-prose", "english-prose"])
def test_nothing_usable_raises(text):
    with pytest.raises(JsonRepairError):
        extract_json(text)


def test_error_says_what_and_hides_secrets():
    with pytest.raises(JsonRepairError) as info:
        extract_json("I could not comply. My key is sk-abcdefghijklmnop1234 and that is all " + "x" * 400)
    message = str(info.value)
    assert "no JSON" in message
    assert "sk-abcdefghijklmnop1234" not in message
    assert len(info.value.excerpt) <= 125


@pytest.mark.parametrize("text", ["[" * 5000, '{"a":' * 3000])
def test_absurd_nesting_is_an_error_not_a_crash(text):
    with pytest.raises(JsonRepairError):
        extract_json(text)


def test_only_reasoning_is_named():
    with pytest.raises(JsonRepairError, match="only reasoning"):
        extract_json("<think>嗯……</think>")


def test_not_text_raises():
    with pytest.raises(JsonRepairError):
        extract_json(None)  # type: ignore[arg-type]


def test_repair_json_returns_strict_json():
    assert repair_json("{'标题': '舆情', ok: True,}") == '{"标题": "舆情", "ok": true}'


def test_valid_json_is_untouched():
    value = {"s": 'quote " backslash \\ newline \n tab \t', "nested": [{"a": None}, [], {}], "n": -0.5, "中": "文"}
    assert extract_json(json.dumps(value, ensure_ascii=False)) == value
    assert extract_json(json.dumps(value)) == value


def test_largest_fragment_wins_and_long_replies_stay_linear(monkeypatch):
    import core.llm.jsonrepair as jr

    prose = "据报道[1]，网友热议。" * 2000  # ~24k characters of prose with bracketed citations
    text = prose + '\n{"summary": "结论", "refs": [1, 2, 3]}\n' + prose
    examined = []
    parse_at = jr._parse_at

    def counting(t, start):
        parsed, work = parse_at(t, start)
        examined.append(work)
        return parsed, work

    monkeypatch.setattr(jr, "_parse_at", counting)
    assert extract_json(text) == {"summary": "结论", "refs": [1, 2, 3]}
    # the work is bounded by the text's length (8 characters examined per character at most), not
    # by the number of bracketed citations times the text: a 2,000-citation reply stays linear
    assert len(examined) >= 2000
    assert sum(examined) <= 8 * len(text) + 20_000 + max(examined)


@pytest.mark.parametrize("text,expected", [
    ("<think>a</think>\n答案", "答案"),
    ("答案", "答案"),
    ("推理过程</think>\n\n答案", "答案"),
    ("答案<think>被截断的推理", "答案"),
    ("<think>only</think>", ""),
    ("<think>一</think>中<think>二</think>间", "中间"),
    ("", ""),
])
def test_strip_think(text, expected):
    assert strip_think(text) == expected


def test_split_think_returns_the_reasoning():
    assert split_think("<think>先想</think>\n答案") == ("答案", "先想")
    assert split_think("推理</think>答案") == ("答案", "推理")
    assert split_think("答案") == ("答案", "")
