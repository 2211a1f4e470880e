"""core/text/clean.py: one cleaner, two uses (readable text; the sentiment model's input)."""
from __future__ import annotations

import threading

import pytest

from core.text.clean import MODEL_MAX_CHARS, clean_text
from core.text import jieba_loader

POST = "{%#毕业季#%}开心\u200b[哈哈]@张三: 看 http://t.cn/Rabc。{%上海·外滩%} 见[1]\r\n第二行 //@李四: 转了"


def test_readable_text_keeps_lines_and_topics_and_drops_markup():
    # "@张三:" goes whole (a repost prefix); a space left before "。" goes too
    assert clean_text(POST) == "#毕业季#开心 看。 见［1］\n第二行 转了"
    assert clean_text(None) == "" and clean_text("") == ""


def test_model_input_is_one_folded_line_with_the_markup_as_tokens():
    markers: list[str] = []
    assert clean_text("ＡＢＣ" + POST, markers=markers) == "abc 毕业季 开心 : 看 见 第二行 // : 转了"
    # the URL pattern the model learned stops only at CJK and ideographic space: "。" went with the link
    assert markers == ["m:topic", "m:loc", "m:url", "e:哈哈", "e:1", "m:at", "m:at"]


def test_model_input_is_cut_at_its_limit():
    assert clean_text("好" * (MODEL_MAX_CHARS + 10), markers=[]) == "好" * MODEL_MAX_CHARS


def test_jieba_is_loaded_once_whatever_the_threads():
    got: list = []
    threads = [threading.Thread(target=lambda: got.append(jieba_loader.get_jieba())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(m is got[0] for m in got)
    assert jieba_loader.get_jieba().lcut("新能源汽车") and jieba_loader.idf_table()[1] > 0
    assert jieba_loader.get_posseg().lcut("汽车")


def _strip_controls_by_hand(text: str, keep_lines: bool = True) -> str:
    import unicodedata

    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch == "\n" and keep_lines:
            out.append(ch)
        elif cat == "Cc":
            out.append(" ")
        elif cat not in ("Cf", "Cs", "Co", "Cn"):
            out.append(ch)
    return "".join(out)


@pytest.mark.parametrize("text", ["标题\n内容", "a\nb\n", "标题\n内容\u3000全角空格", "a\u200bb\nc", "a\tb\r\n",
                                  "x\x00y\n", "\ufeffBOM\n行", "\ue000私用\n", "plain", "", "\n\n"])
def test_strip_controls_drops_and_keeps_the_same_characters_on_its_quick_path(text):
    from core.text.clean import strip_controls

    assert strip_controls(text) == _strip_controls_by_hand(text)
    assert strip_controls(text, keep_lines=False) == _strip_controls_by_hand(text, keep_lines=False)
