"""Text helpers for the offline analyst (core/offline.py): cleaning, sentences, keywords, ranking.

Everything here is deterministic: the same texts give the same keywords, sentences and scores.

    clean_text(text)              Weibo markup removed ({%#话题#%} → #话题#, [表情], @user, URLs,
                                  zero-width and control characters); lines kept
    split_sentences(text)         sentences (substrings of ``text``), long ones cut at commas
    words(text)                   content words of a short text (jieba, stopwords removed)
    extract_keywords(texts, ...)  KeywordIndex: ranked (word, weight) by TF-IDF (jieba's idf table)
                                  over nouns/verbs/English words, with the documents holding each word
    rank_sentences(sentences, …)  TextRank centrality over sentences, weighted by keywords
    near_duplicate(a, b)          character-bigram Jaccard ≥ threshold
    contains(text, term)          case-insensitive containment
"""
from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# A small Chinese + English stopword list: function words, pronouns, generic verbs and the
# filler of social-media posts. Topic words are never listed here.
STOPWORDS = frozenset("""
的 了 和 是 在 也 就 都 而 及 与 着 或 一个 没有 我们 你们 他们 她们 它们 我 你 他 她 它 这 那 这个 那个
这些 那些 这样 那样 这么 那么 什么 怎么 怎么样 为什么 如何 哪里 哪些 谁 自己 大家 人家 别人 有人 有些
一些 一点 一下 一直 一起 一样 一定 一般 已经 还是 还有 只是 只有 但是 可是 然后 所以 因为 因此 如果 虽然
不过 而且 并且 或者 以及 还 又 再 很 太 最 更 非常 特别 真的 真是 确实 其实 当然 可能 应该 可以 能够 需要
不是 就是 不会 不能 不要 没 不 被 把 给 让 对 对于 关于 由于 为了 通过 根据 按照 之后 之前 以后 以前 时候
目前 现在 今天 昨天 明天 今年 去年 近日 日前 此前 此外 其中 其他 其它 另外 同时 方面 问题 情况 事情 东西
表示 认为 觉得 知道 看到 看看 看见 发现 成为 进行 开始 出现 希望 感觉 告诉 说 称 讲 想 要 会 能 去 来 做
有 没有 到 上 下 里 中 后 前 时 等 等等 个 们 之 其 此 该 各 每 某 本 将 已 并 则 即 但 却 才 仍 呢 吗 吧 啊
哦 哈 哈哈 哈哈哈 嗯 呀 啦 嘛 呗 哎 唉 哇 转发 微博 网页 链接 网页链接 全文 展开 展开全文 收起 原图 秒拍
视频号 评论 回复 点赞 分享 关注 粉丝 博主 超话 话题 热搜 网友 小编 记者 报道 消息 新闻 来源 图片 文章 内容
详情 原文 全部 相关 有关 进一步 一次 两个 一位 多少 很多 许多 不少 所有 任何 整个 真正 直接 主要 部分
the a an and or but if then than that this these those there here is are was were be been being to of in on
at by for with from as it its it's i you he she we they them his her our your their my me us not no yes do
does did done have has had having will would can could should may might must shall just also very so such
more most some any all each other into about over after before up down out off again only own same too
what which who whom when where why how rt via http https www com
""".split())

_KEEP_POS = ("n", "nr", "ns", "nt", "nz", "nrt", "nrfg", "vn", "v", "eng", "j", "l", "an", "i")

_TOPIC_RE = re.compile(r"\{%#(.*?)#%\}", re.S)             # {%#话题#%}
_BRACE_RE = re.compile(r"\{%.*?%\}", re.S)                 # {%位置%}, {%网页链接%}, cards
_URL_RE = re.compile(r"(?i)(?:https?://|www\.)[^\s\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")
_MENTION_RE = re.compile(r"@[\w\-·]{1,20}[:：]?")
_EMOJI_RE = re.compile(r"\[[^\[\]\s\d][^\[\]\s]{0,11}\]")   # [二哈] [doge] (not [1] references)
_NUMREF_RE = re.compile(r"\[(\d{1,6})\]")                   # [1] in a text must not look like a citation
_REPOST_RE = re.compile(r"//\s*(?=\s|$|//)|//\s*[:：]")
_SPACES_RE = re.compile(r"[ \t\u3000\xa0]+")
_PUNCT_SPACE_RE = re.compile(r" (?=[，。！？；：、”」』）】])")

_TERMINATORS = set("。！？!?；;…")
_CLOSERS = set("”’」』）)】\"'")
_SOFT_BREAKS = set("，,、：:")


def has_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text or ""))


def _strip_controls(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\n":
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat == "Cc":
            out.append(" ")
        elif cat in ("Cf", "Cs", "Co", "Cn"):
            continue  # zero-width spaces, BOM, bidi marks, …
        else:
            out.append(ch)
    return "".join(out)


def clean_text(text: str | None) -> str:
    """The readable text of a post: markup removed, one space between words, lines kept."""
    if not text:
        return ""
    text = _strip_controls(str(text).replace("\r\n", "\n").replace("\r", "\n"))
    text = _TOPIC_RE.sub(lambda m: "#" + m.group(1).strip() + "#", text)
    text = _BRACE_RE.sub(" ", text)
    text = _URL_RE.sub(" ", text)
    text = _MENTION_RE.sub(" ", text)
    text = _EMOJI_RE.sub("", text)
    text = _NUMREF_RE.sub(lambda m: "［" + m.group(1) + "］", text)
    text = _REPOST_RE.sub(" ", text)
    lines = (_PUNCT_SPACE_RE.sub("", _SPACES_RE.sub(" ", line)).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _substance(s: str) -> int:
    return sum(1 for ch in s if ch.isalnum())


def _cut_long(piece: str, max_chars: int) -> list[str]:
    """Cut a long sentence at soft breaks (commas) into chunks of at most ``max_chars``."""
    if len(piece) <= max_chars:
        return [piece]
    out, start = [], 0
    while len(piece) - start > max_chars:
        window = piece[start:start + max_chars]
        cut = max((i for i, ch in enumerate(window) if ch in _SOFT_BREAKS), default=-1)
        end = start + (cut + 1 if cut >= max_chars // 3 else max_chars)
        out.append(piece[start:end])
        start = end
    out.append(piece[start:])
    return out


def split_sentences(text: str, min_chars: int = 6, max_chars: int = 160) -> list[str]:
    """Sentences of a cleaned text. Each is a substring of ``text``; fragments with fewer than
    ``min_chars`` letters/digits are dropped."""
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
                if chunk and _substance(chunk) >= min_chars:
                    out.append(chunk)
    return out


# --- jieba ----------------------------------------------------------------------------------

_jieba_lock = threading.Lock()
_jieba_state: dict = {}


def _jieba():
    """jieba, jieba.posseg and the TF-IDF idf table, loaded once (thread-safe)."""
    if not _jieba_state:
        with _jieba_lock:
            if not _jieba_state:
                import jieba
                import jieba.analyse
                import jieba.posseg

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                tfidf = jieba.analyse.default_tfidf
                _jieba_state.update(jieba=jieba, posseg=jieba.posseg,
                                    idf=tfidf.idf_freq, median_idf=tfidf.median_idf)
    return _jieba_state


def _is_term(w: str) -> bool:
    if not w or w.lower() in STOPWORDS:
        return False
    if has_cjk(w):
        return len(w) >= 2
    return len(w) >= 3 and any(ch.isalpha() for ch in w) and w.isascii()


@lru_cache(maxsize=16384)
def words(text: str) -> tuple[str, ...]:
    """Content words of a short text (sentence, query), lower-cased for English."""
    out = []
    for w in _jieba()["jieba"].lcut(text[:2000]):
        w = w.strip()
        if _is_term(w):
            out.append(w.lower() if w.isascii() else w)
    return tuple(out)


@lru_cache(maxsize=2048)
def terms(text: str) -> tuple[str, ...]:
    """Keyword candidates of one document: nouns, verbal nouns, verbs, English words."""
    out = []
    for pair in _jieba()["posseg"].lcut(text[:4000]):
        w, flag = pair.word.strip(), pair.flag
        if flag.startswith(_KEEP_POS) and _is_term(w):
            out.append(w.lower() if w.isascii() else w)
    return tuple(out)


def idf(word: str) -> float:
    state = _jieba()
    return state["idf"].get(word, state["median_idf"])


@dataclass(frozen=True)
class KeywordIndex:
    ranked: tuple[tuple[str, float], ...] = ()
    docs: dict = field(default_factory=dict)  # word -> frozenset of document indices

    def top(self, k: int) -> list[str]:
        return [w for w, _ in self.ranked[:k]]

    def weights(self) -> dict[str, float]:
        return dict(self.ranked)


def extract_keywords(texts: Sequence[str], top_k: int = 20, exclude: Iterable[str] = ()) -> KeywordIndex:
    """TF-IDF keywords over a set of documents (texts already cleaned).

    weight(w) = idf(w) · (df(w) + 0.5·ln(1 + tf(w))) / N — how many of the documents use the word
    (so one repetitive post cannot dominate), how often, and how specific it is (jieba's idf).
    Words equal to, inside or containing an excluded term (the topic) are left out.
    Ties keep the order of first appearance."""
    excl = [e.lower() for e in exclude if e]
    tf: dict[str, int] = {}
    df: dict[str, set[int]] = {}
    first: dict[str, int] = {}
    pos = 0
    for i, text in enumerate(texts):
        for w in terms(text):
            if w not in first:
                first[w] = pos
            pos += 1
            tf[w] = tf.get(w, 0) + 1
            df.setdefault(w, set()).add(i)
    n = max(len(texts), 1)

    def excluded(w: str) -> bool:
        lw = w.lower()
        return any(lw == e or lw in e or (len(e) >= 2 and e in lw) for e in excl)

    scored = []
    for w, count in tf.items():
        if excluded(w):
            continue
        weight = idf(w) * (len(df[w]) + 0.5 * math.log1p(count)) / n
        scored.append((-weight, first[w], w, weight))
    scored.sort()
    ranked = tuple((w, round(weight, 6)) for _, _, w, weight in scored[:top_k])
    return KeywordIndex(ranked, {w: frozenset(df[w]) for w, _ in ranked})


# --- sentences ------------------------------------------------------------------------------

def _bigrams(s: str) -> set[str]:
    s = "".join(ch for ch in s.lower() if ch.isalnum())
    return {s[i:i + 2] for i in range(len(s) - 1)} or {s}


def near_duplicate(a: str, b: str, threshold: float = 0.6) -> bool:
    ba, bb = _bigrams(a), _bigrams(b)
    inter = len(ba & bb)
    return inter / max(len(ba | bb), 1) >= threshold or (inter == min(len(ba), len(bb)) and inter > 0)


def contains(text: str, term: str) -> bool:
    return bool(term) and term.lower() in (text or "").lower()


def rank_sentences(sentences: Sequence[str], keyword_weights: dict[str, float] | None = None,
                   boosts: Sequence[float] | None = None, damping: float = 0.85, iterations: int = 40) -> list[float]:
    """TextRank over sentences: similarity = shared words / (ln|Si| + ln|Sj|), PageRank by power
    iteration, scaled by the keyword weight a sentence carries and by an outside boost per sentence.
    Returns one score per sentence (mean about 1)."""
    n = len(sentences)
    if n == 0:
        return []
    word_sets = [set(words(s)) for s in sentences]
    vocab: dict[str, int] = {}
    for ws in word_sets:
        for w in sorted(ws):
            vocab.setdefault(w, len(vocab))
    if vocab:
        m = np.zeros((n, len(vocab)), dtype=np.float64)
        for i, ws in enumerate(word_sets):
            for w in ws:
                m[i, vocab[w]] = 1.0
        overlap = m @ m.T
        sizes = np.array([max(len(ws), 1) for ws in word_sets], dtype=np.float64)
        denom = np.log(sizes)[:, None] + np.log(sizes)[None, :]
        sim = np.where(denom > 0, overlap / np.where(denom > 0, denom, 1.0), overlap * 0.5)
        np.fill_diagonal(sim, 0.0)
    else:
        sim = np.zeros((n, n))
    out_sum = sim.sum(axis=1)
    trans = np.divide(sim, out_sum[:, None], out=np.zeros_like(sim), where=out_sum[:, None] > 0)
    pr = np.full(n, 1.0 / n)
    for _ in range(iterations):
        pr = (1 - damping) / n + damping * (trans.T @ pr)
    pr = pr * n  # mean 1
    kw = keyword_weights or {}
    top = max(kw.values(), default=0.0) or 1.0
    scores = []
    for i, ws in enumerate(word_sets):
        kscore = sum(kw.get(w, 0.0) for w in ws) / top
        boost = boosts[i] if boosts is not None else 1.0
        # a sentence with no content words at all is noise whatever its centrality
        base = float(pr[i]) if ws else 0.1
        scores.append(round(base * (1.0 + 0.5 * min(kscore, 4.0)) * boost, 9))
    return scores
