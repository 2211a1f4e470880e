"""core/text/clean.py: one cleaner, two uses (readable text; the sentiment model's input)."""
from __future__ import annotations

import threading

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
