"""Sentence splitting (core.text.keywords.split_sentences): one regular expression finds the sentence ends.
It must split exactly as the character loop it replaced, kept here as the reference."""
from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.text.keywords import _CLOSERS, _TERMINATORS, _cut_long, split_sentences


def reference_split(text: str, min_chars: int = 6, max_chars: int = 160) -> list[str]:
    """The character loop split_sentences used until 2026-12-05."""
    out: list[str] = []
    for line in (text or "").split("\n"):
        pieces, start, i, n = [], 0, 0, len(line)
        while i < n:
            ch = line[i]
            end = None
            if ch in _TERMINATORS:
                j = i + 1
                while j < n and (line[j] in _TERMINATORS or line[j] in _CLOSERS):
                    j += 1
                end = j
            elif ch == "." and (i + 1 == n or line[i + 1] == " ") and not (i > 0 and line[i - 1].isdigit()):
                end = i + 1
            if end is not None:
                pieces.append(line[start:end])
                start = i = end
            else:
                i += 1
        pieces.append(line[start:])
        for piece in pieces:
            for chunk in _cut_long(piece.strip(), max_chars):
                chunk = chunk.strip()
                if chunk and sum(1 for c in chunk if c.isalnum()) >= min_chars:
                    out.append(chunk)
    return out


# Every character the rules look at, and the ones they must not: digits (ASCII, full-width,
# superscript), spaces that are not " ", commas where long sentences are cut, CJK and Latin letters.
ALPHABET = ("".join(sorted(_TERMINATORS | _CLOSERS)) + ".. 3９²\t\r\u3000\n，,、:：" + "价格战电车降价消费者" + "abcXYZ_-")


# Texts made of words and the marks between them, so that most examples hold sentences long enough to keep.
WORDS = st.sampled_from(["价格战", "消费者后悔", "abc", "Prices", "3", "９", "²", "12"])
MARKS = st.text(alphabet="".join(sorted(_TERMINATORS | _CLOSERS)) + ". \t\u3000\r\n,，", max_size=2)
TEXTS = st.lists(st.tuples(WORDS, MARKS), max_size=40).map(lambda parts: "".join(w + m for w, m in parts))


@settings(max_examples=400, deadline=None)
@example("价格战3. 消费者后悔", 2, 60)   # a digit before the stop: ASCII, full-width, superscript
@example("价格战９. 消费者后悔", 2, 60)
@example("价格战². 消费者后悔", 2, 60)
@example("价格战.\t消费者后悔.\u3000价格战.\r消费者后悔. abc", 2, 60)  # only " " (or the end) after the stop
@example("价格战。”」消费者后悔！？）价格战…… abc", 2, 60)  # terminators with their closers
@given(st.one_of(st.text(alphabet=ALPHABET, max_size=300), TEXTS), st.integers(1, 8), st.integers(5, 60))
def test_it_splits_exactly_as_the_character_loop(text, min_chars, max_chars):
    assert split_sentences(text, min_chars, max_chars) == reference_split(text, min_chars, max_chars)


def test_sentence_ends_full_stops_and_numbers():
    text = "电车降价了！！”消费者后悔。价格 3.5 万. Prices fell 3. Then rose. 价格战还在继续…"
    assert split_sentences(text, min_chars=2) == ["电车降价了！！”", "消费者后悔。", "价格 3.5 万.",
                                                  "Prices fell 3. Then rose.", "价格战还在继续…"]
    assert split_sentences("价格战还在继续.\t消费者后悔") == ["价格战还在继续.\t消费者后悔"]  # only a space ends it
    assert split_sentences("") == [] and split_sentences("。。。") == []
