"""The one cleaner of post text: Weibo markup, URLs, mentions, emoji codes, zero-width and control characters.

    clean_text(text)                  readable text, lines kept (keywords, sentences, quotes, reports)
    clean_text(text, markers=found)   the sentiment model's input: one line, NFKC and lower-cased, cut at
                                      MODEL_MAX_CHARS; the markup becomes whole tokens appended to ``found``
    has_cjk(text)                     whether a text has a Chinese character

Both uses read the same markup (``{%#话题#%}``, ``{%位置·地点%}``, ``{%网页链接%}``, ``[表情]``, ``@user``,
URLs); what differs is what is kept of it. Two patterns differ on purpose: the model's features were
learned with ``_MODEL_URL_RE`` and with every ``[...]`` read as an emoji, and the shipped model in
core/text/assets scores exactly what it was trained on only if that stays so (bump
core.text.sentiment.PREPROCESS_VERSION and retrain before changing anything on the ``markers`` path).
"""
from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_text", "has_cjk", "strip_controls", "MODEL_MAX_CHARS"]

MODEL_MAX_CHARS = 5000   # the sentiment model reads at most this much of a post

_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TOPIC_RE = re.compile(r"\{%#(.*?)#%\}", re.S)             # {%#话题#%}
_BRACE_RE = re.compile(r"\{%(.*?)%\}", re.S)               # {%位置·地点%}, {%xx的秒拍视频%}, {%网页链接%}, cards
_URL_RE = re.compile(r"(?i)(?:https?://|www\.)[^\s\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")
_MODEL_URL_RE = re.compile(r"(?i)\b(?:https?://|www\.)[^\s\u3000\u4e00-\u9fff]+")
_MENTION_RE = re.compile(r"@[\w\-·]{1,20}([:：]?)")         # @user, @user: as a repost prefix
_EMOJI_RE = re.compile(r"\[([^\[\]\s]{1,12})\]")           # [二哈], [doge], [笑cry] (and [1] references)
_NUMREF_RE = re.compile(r"\[(\d{1,6})\]")                  # [1] in a text must not look like a citation
_DIGIT_RE = re.compile(r"\d")
_HASHTAG_RE = re.compile(r"#([^#\n]{1,40})#")              # plain #话题# (not in {% %})
_REPOST_RE = re.compile(r"//\s*(?=\s|$|//)|//\s*[:：]")
_SPACE_RE = re.compile(r"\s+")
_LINE_SPACES_RE = re.compile(r"[ \t\u3000\xa0]+")
_PUNCT_SPACE_RE = re.compile(r" (?=[，。！？；：、”」』）】])")


def has_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text or ""))


def strip_controls(text: str, *, keep_lines: bool = True) -> str:
    """Drop format characters (zero-width spaces, BOM, bidi marks, surrogates, private use) and turn
    control characters into spaces; ``keep_lines`` keeps ``\\n``."""
    if text.isprintable() or (keep_lines and text.replace("\n", "").isprintable()):
        return text  # the common case, a post with lines and nothing to drop: no walk over its characters
    out = []
    for ch in text:
        if ch == "\n" and keep_lines:
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat == "Cc":
            out.append(" ")          # \t, \x00 ... become a space
        elif cat in ("Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(ch)
    return "".join(out)


def clean_text(text: str | None, *, markers: list[str] | None = None) -> str:
    """The text of a post without its markup.

    Without ``markers``: readable text. ``{%#话题#%}`` becomes ``#话题#``; other ``{%…%}`` cards,
    URLs, ``@user`` and ``[表情]`` are removed, ``[1]`` becomes ``［1］`` (so it cannot pass for a
    citation) and repost slashes go; lines are kept, with one space between words.

    With ``markers`` (a list): the sentiment model's input. The text is cut at ``MODEL_MAX_CHARS``,
    NFKC-normalised, lower-cased and made one line; the markup is appended to ``markers`` as whole
    tokens (``e:<emoji>``, ``m:url``, ``m:at``, ``m:topic``, ``m:loc``, ``m:video``, ``m:card``) while
    the words of topics and cards stay in the text.
    """
    if markers is not None:
        return _clean_for_model("" if text is None else str(text), markers)
    if not text:
        return ""
    text = strip_controls(str(text).replace("\r\n", "\n").replace("\r", "\n"))
    text = _TOPIC_RE.sub(lambda m: "#" + m.group(1).strip() + "#", text)
    text = _BRACE_RE.sub(" ", text)
    text = _URL_RE.sub(" ", text)
    text = _MENTION_RE.sub(" ", text)
    text = _EMOJI_RE.sub(lambda m: m.group(0) if _DIGIT_RE.match(m.group(1)) else "", text)
    text = _NUMREF_RE.sub(lambda m: "［" + m.group(1) + "］", text)
    text = _REPOST_RE.sub(" ", text)
    lines = (_PUNCT_SPACE_RE.sub("", _LINE_SPACES_RE.sub(" ", line)).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _clean_for_model(text: str, markers: list[str]) -> str:
    text = text[:MODEL_MAX_CHARS]
    text = unicodedata.normalize("NFKC", strip_controls(text, keep_lines=False)).lower()

    def _brace(m: re.Match) -> str:
        inner = m.group(1).strip()
        if not inner:
            return " "
        if inner == "网页链接":
            markers.append("m:url")
            return " "
        if "视频" in inner:
            markers.append("m:video")
            return " "
        if "·" in inner:
            markers.append("m:loc")
            return " "
        markers.append("m:card")
        return " " + inner + " "

    def _url(m: re.Match) -> str:
        markers.append("m:url")
        return " "

    def _emoji(m: re.Match) -> str:
        markers.append("e:" + m.group(1))
        return " "

    def _mention(m: re.Match) -> str:
        markers.append("m:at")
        return " " + m.group(1)      # a colon after the name stays text, as the model learned it

    def _hashtag(m: re.Match) -> str:
        markers.append("m:topic")
        return " " + m.group(1) + " "

    text = _TOPIC_RE.sub(_hashtag, text)
    text = _BRACE_RE.sub(_brace, text)
    text = _MODEL_URL_RE.sub(_url, text)
    text = _EMOJI_RE.sub(_emoji, text)
    text = _MENTION_RE.sub(_mention, text)
    text = _HASHTAG_RE.sub(_hashtag, text)
    return _SPACE_RE.sub(" ", text).strip()
