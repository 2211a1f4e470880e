"""Text helpers for the offline analyst (core/research/offline.py): sentences, keywords, ranking.

Everything here is deterministic: the same texts give the same keywords, sentences and scores.
The cleaner (``clean_text``, ``has_cjk``) lives in core/text/clean.py. The jieba loader and stopwords are core/text/jieba_loader.py
and core/text/stopwords.py.

    split_sentences(text)         sentences (substrings of ``text``), long ones cut at commas
    words(text)                   content words of a short text (jieba, stopwords removed)
    terms(text)                   keyword candidates of one text: nouns, verbal nouns, abbreviations,
                                  English words; no fragments, plain verbs or pipeline words
    keyword_candidates(texts)     terms of a set of texts, without fragments of longer candidates and
                                  stray English words
    extract_keywords(texts, ...)  KeywordIndex: ranked (word, weight) by TF-IDF (jieba's idf table)
                                  over the candidates, with the documents holding each word
    rank_sentences(sentences, …)  TextRank centrality over sentences, weighted by keywords
    near_duplicate(a, b)          character-bigram Jaccard ≥ threshold
    contains(text, term)          case-insensitive containment
"""
from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

from core.text.clean import has_cjk
from core.text.jieba_loader import get_jieba, get_posseg, idf_table
from core.text.stopwords import STOPWORDS

_TERMINATORS = set("。！？!?；;…")
_CLOSERS = set("”’」』）)】\"'")
_SOFT_BREAKS = set("，,、：:")


def _substance(s: str) -> int:
    return sum(map(str.isalnum, s))


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


# A sentence ends after a run of terminators (with the closing quotes and brackets that follow them),
# or at a full stop followed by a space or the end of the line, unless a digit precedes it (3.5 is
# one number). One regular expression finds the ends: 1.2 ms instead of 2.8 ms for a loop over the
# characters, on the 19,000 characters of findings a report's material splits on the critical path.
_SENTENCE_END_RE = re.compile("[" + re.escape("".join(sorted(_TERMINATORS))) + "]["
                              + re.escape("".join(sorted(_TERMINATORS | _CLOSERS))) + "]*|\\.(?= |\\Z)")


def split_sentences(text: str, min_chars: int = 6, max_chars: int = 160) -> list[str]:
    """Sentences of a cleaned text. Each is a substring of ``text``; fragments with fewer than
    ``min_chars`` letters/digits are dropped."""
    out: list[str] = []
    for line in (text or "").split("\n"):
        pieces, start = [], 0
        for m in _SENTENCE_END_RE.finditer(line):
            i = m.start()
            if line[i] == "." and i > 0 and line[i - 1].isdigit():
                continue  # a decimal point or a numbered item's dot
            pieces.append(line[start:m.end()])
            start = m.end()
        pieces.append(line[start:])
        for piece in pieces:
            for chunk in _cut_long(piece.strip(), max_chars):
                chunk = chunk.strip()
                if chunk and _substance(chunk) >= min_chars:
                    out.append(chunk)
    return out


def _letters(w: str) -> int:
    return sum(1 for ch in w if ch.isalpha())


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
    for w in get_jieba().lcut(text[:2000]):
        w = w.strip()
        if _is_term(w):
            out.append(w.lower() if w.isascii() else w)
    return tuple(out)


# --- keywords -------------------------------------------------------------------------------
#
# A keyword is a content word a reader would recognise as a subject of the texts: a noun, a proper
# noun, a verbal noun (维权, 直播), an abbreviation (政协) or a nominal set phrase (发言人); never a
# plain verb (下降, 测评), an adverb, an adjective, a chengyu (纷纷表示) or a function word. Three
# kinds of noise that the part of speech alone lets through are removed as well:
#   - fragments: jieba cuts reduplications and set patterns into pieces that are words of their
#     own (哔哩哔哩 → 哔哩 哔哩, 越看越 → 越 看越, 快手上 → 快 手上); pieces of such a pattern are
#     dropped, a reduplicated name is kept whole, and the platform names below are kept whole;
#     across a set of texts, a word found nearly only inside a longer candidate is dropped in
#     favour of it (直播 when every text says 直播间);
#   - stray English: Latin words of fewer than 3 letters, the pipeline's own vocabulary (engine,
#     query, media, …, "Query Engine" quoted in a summary), and in Chinese texts any Latin word
#     that fewer than 2 of the texts use;
#   - filler set phrases (是不是, 事实上) that jieba tags as idioms.

# Nouns (n, nr, ns, nt, nz, nrt, nrfg, ng: every tag starting with n), verbal nouns, adjectival
# nouns, abbreviations, English words. "l" (set phrases) only when its head is a noun.
_NOUN_TAGS = frozenset({"vn", "an", "j", "eng"})

# Latin words that are never keywords: the pipeline's own names and web debris.
NOISE_LATIN = frozenset("""
engine engines query queries media insight insights host hosts forum agent agents report reports paragraph
summary node nodes search http https www com cn net org html htm php url urls link links amp nbsp quot null none
true false json markdown utf
""".split())

# Set phrases jieba tags "l" that are fillers, not subjects.
_FILLER_PHRASES = frozenset("""
是不是 没想到 想不到 事实上 差不多 没什么 说不定 也就是说 无论如何 干什么 有时候 对不起 接下来 比如说 他妈的
一方面 另一方面 总而言之 换句话说 与此同时 不仅如此 怎么回事 为什么 有没有 好不好 要不要 能不能
""".split())

# Platform and product names jieba cuts into pieces (抖+音, 小+红书, 快+手上): kept whole.
PLATFORM_NAMES = ("哔哩哔哩", "小红书", "抖音", "快手", "微博", "知乎", "贴吧", "百度贴吧", "今日头条", "头条号",
                  "西瓜视频", "视频号", "公众号", "微信", "拼多多", "淘宝", "京东", "得物", "闲鱼", "豆瓣", "虎扑",
                  "懒人听书", "B站", "b站", "A站")

_LOCALISERS = frozenset("上里中内外的和与")   # what jieba glues to a platform name: 快+手上
_C = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_PLATFORM_RE = re.compile("|".join(re.escape(w) for w in sorted(PLATFORM_NAMES, key=len, reverse=True)))
_ABAB_RE = re.compile(rf"([{_C}]{{2}})\1")                      # 哔哩哔哩, 研究研究
_IDIOM_RES = (
    re.compile(rf"越[{_C}]{{1,2}}?越(?!来越)"),                   # 越看越, 越说越, 越来越 (not 越南越来越)
    re.compile(rf"([{_C}])\1([{_C}])\2"),                        # AABB: 高高兴兴, 明明白白
    re.compile(rf"([{_C}])来\1去"),                               # 看来看去
    re.compile(rf"又[{_C}]{{1,2}}?又[{_C}]"),                       # 又快又好
    re.compile(rf"边[{_C}]{{1,2}}?边[{_C}]"),                       # 边走边看
)


def _nominal_head(phrase: str) -> bool:
    """A set phrase whose last word is a noun (发言人, 发达国家), not a filler (是不是, 事实上)."""
    if phrase in _FILLER_PHRASES:
        return False
    tags = get_posseg().dt.word_tag_tab
    for size in (2, 1):
        head = phrase[-size:]
        if len(phrase) > size and head in tags:
            return tags[head].startswith("n") or tags[head] == "vn"
    return False


@lru_cache(maxsize=16384)
def _tagged_block(block: str) -> tuple[tuple[str, str], ...]:
    return tuple((p.word, p.flag) for p in get_posseg().lcut(block))


def _tagged(text: str) -> list[tuple[str, str]]:
    """``posseg.lcut(text)`` as (word, tag) pairs, block by block. jieba cuts a text in blocks (runs of
    CJK, letters and digits, and what lies between them), each on its own; the same blocks come back
    again and again in a run (a post quoted by several summaries, a summary read by every host
    speech: four of five characters of a demo run), and their HMM tagging is most of the offline
    analyst's CPU, so each block is cut once."""
    out: list[tuple[str, str]] = []
    for block in get_posseg().re_han_internal.split(text):
        if block:
            out.extend(_tagged_block(block))
    return out


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[tuple[str, str], ...]:
    """(word, part of speech) of a text with the pieces of reduplications and set patterns removed
    and platform names and reduplicated names kept whole (see the note above)."""
    pairs = _tagged(text)
    spans, pos = [], 0
    for w, _ in pairs:
        spans.append((pos, pos + len(w)))
        pos += len(w)
    if pos != len(text):  # jieba always returns the whole text; if it ever does not, no clean-up
        return tuple(pairs)
    drop: set[int] = set()
    insert: dict[int, tuple[str, str]] = {}  # token index -> the whole word to put in its place

    starts = [s for s, _ in spans]
    ends = [e for _, e in spans]

    def overlapping(a: int, b: int) -> list[int]:  # tokens are contiguous: a range of indices
        return list(range(bisect.bisect_right(ends, a), bisect.bisect_left(starts, b)))

    def inside_longer(idx: list[int], a: int, b: int) -> bool:
        return any(spans[i][0] <= a and spans[i][1] >= b and spans[i] != (a, b) for i in idx)

    def straddling(idx: list[int], a: int, b: int) -> list[int]:
        return [i for i in idx if spans[i][0] < a or spans[i][1] > b]

    for m in _PLATFORM_RE.finditer(text):        # 抖+音, 小+红书, 快+手上: the name, whole
        a, b = m.span()
        idx = overlapping(a, b)
        if inside_longer(idx, a, b) or (len(idx) == 1 and spans[idx[0]] == (a, b)):
            continue
        outside = [text[spans[i][0]:a] + text[b:spans[i][1]] for i in straddling(idx, a, b)]
        if all(len(o) == 1 and o in _LOCALISERS for o in outside):  # not 快+手机: that is a phone
            drop.update(idx)
            insert[idx[0]] = (text[a:b], "nz")
    for m in _ABAB_RE.finditer(text):            # 巴拉巴拉: one name; 研究研究: pieces dropped
        a, b = m.span()
        idx = overlapping(a, b)
        if straddling(idx, a, b) or (len(idx) == 1 and spans[idx[0]] == (a, b)) or set(idx) & drop:
            continue
        drop.update(idx)
        noun = next((pairs[i][1] for i in idx if pairs[i][1].startswith("n")), None)
        if noun is not None:  # 哔哩+哔哩, 巴拉巴+拉: a name, whole; 研究+研究 (vn): a verb, gone
            insert[idx[0]] = (text[a:b], noun)
    for pattern in _IDIOM_RES:                   # 越+看越, 高高兴兴, 看来看去: no piece is a word
        for m in pattern.finditer(text):
            a, b = m.span()
            idx = overlapping(a, b)
            if not inside_longer(idx, a, b):
                drop.update(idx)
    if not drop and not insert:
        return tuple(pairs)
    out = []
    for i, pair in enumerate(pairs):
        if i in insert:
            out.append(insert[i])
        if i not in drop:
            out.append(pair)
    return tuple(out)


def _is_nounish(flag: str) -> bool:
    return flag.startswith("n") or flag in _NOUN_TAGS


def _made_up_name(w: str, flag: str) -> bool:
    """A "name" that is two ordinary words, neither a noun: 明显增加 (明显 a + 增加 v), which jieba's
    dictionary and its HMM tag as a person's name. Real names (王小明) and noun compounds (理想汽车)
    are not; only proper-noun tags and words jieba's dictionary does not know are checked."""
    tags = get_posseg().dt.word_tag_tab
    if len(w) < 4 or not has_cjk(w) or (w in tags and not flag.startswith(("nr", "ns", "nz", "nt"))):
        return False
    for i in range(2, len(w) - 1):
        head, tail = w[:i], w[i:]
        if head in tags and tail in tags and not _is_nounish(tags[head]) and not _is_nounish(tags[tail]):
            return True
    return False


def _keyword_pos(w: str, flag: str) -> bool:
    if _is_nounish(flag):
        return not _made_up_name(w, flag)
    return flag == "l" and _nominal_head(w)


def is_latin(w: str) -> bool:
    return w.isascii() and any(ch.isalpha() for ch in w)


def _keyword_form(w: str) -> bool:
    """Length and vocabulary: 2+ CJK characters; Latin words of 3+ letters that are not noise."""
    if not w or w.lower() in STOPWORDS or w in _FILLER_PHRASES:
        return False
    if has_cjk(w):
        return len(w) >= 2
    return w.isascii() and _letters(w) >= 3 and w.lower() not in NOISE_LATIN


@lru_cache(maxsize=2048)
def terms(text: str) -> tuple[str, ...]:
    """Keyword candidates of one document: nouns, proper nouns, verbal nouns, abbreviations, nominal
    set phrases and English words of 3+ letters (lower-cased), without fragments or pipeline words."""
    out = []
    for w, flag in _tokens(text[:4000]):
        w = w.strip()
        if _keyword_pos(w, flag) and _keyword_form(w):
            out.append(w.lower() if w.isascii() else w)
    return tuple(out)


@lru_cache(maxsize=2048)
def content_terms(text: str) -> tuple[str, ...]:
    """Content words of a short text (a topic), any part of speech, without fragments or pipeline
    words: what a topic is about (涨价 is a verb, and still the topic)."""
    out = []
    for w, _ in _tokens(text[:2000]):
        w = w.strip()
        if _keyword_form(w):
            w = w.lower() if w.isascii() else w
            if w not in out:
                out.append(w)
    return tuple(out)


def idf(word: str) -> float:
    table, median = idf_table()
    return table.get(word, median)


@dataclass(frozen=True)
class KeywordIndex:
    ranked: tuple[tuple[str, float], ...] = ()
    docs: dict = field(default_factory=dict)  # word -> frozenset of document indices

    def top(self, k: int) -> list[str]:
        return [w for w, _ in self.ranked[:k]]

    def weights(self) -> dict[str, float]:
        return dict(self.ranked)


FRAGMENT_SHARE = 0.8   # "nearly the same documents / nearly all occurrences" for fragments (_fragments)


@dataclass(frozen=True)
class Candidates:
    """Keyword candidates of a set of texts, in order of first appearance."""
    tf: dict          # word -> occurrences as a token
    docs: dict        # word -> frozenset of the indices of the texts using it

    @property
    def words(self) -> list[str]:
        return list(self.tf)


def _fragments(tf: dict[str, int], docs: dict[str, set[int]]) -> set[str]:
    """CJK candidates that are a piece of a longer candidate occurring in nearly the same documents.

    ``small`` inside ``big`` is a fragment when, with FRAGMENT_SHARE = s,
      - the documents using each as a word nearly coincide (Jaccard >= s) and big is used at least
        half as often as small: 销量 beside 汽车销量 in the same posts, or
      - nearly all of small's text is inside big: at least s of its occurrences and, of the documents
        holding its text, at least s hold big's (直播 when the texts only ever say 直播间)."""
    longer: dict[str, list[str]] = {}
    for big in tf:
        n = len(big)
        if n < 3 or n > 16 or not has_cjk(big):
            continue
        for size in range(2, n):
            for i in range(0, n - size + 1):
                small = big[i:i + size]
                if small in tf and has_cjk(small):
                    bigs = longer.setdefault(small, [])
                    if big not in bigs:
                        bigs.append(big)
    if not longer:
        return set()

    def containing(w: str) -> list[str]:
        return [w] + longer.get(w, [])

    def text_docs(w: str) -> set[int]:  # the documents holding w's text (as w or inside a longer candidate)
        out: set[int] = set()
        for m in containing(w):
            out |= docs[m]
        return out

    def occurrences(w: str) -> int:
        return sum(tf[m] * m.count(w) for m in containing(w))

    out = set()
    for small, bigs in longer.items():
        d_small, o_small, t_small = docs[small], occurrences(small), text_docs(small)
        for big in bigs:
            d_big = docs[big]
            same_docs = (len(d_small & d_big) >= FRAGMENT_SHARE * len(d_small | d_big)
                         and 2 * tf[big] >= tf[small])  # not 电池 said ten times for 电池厂 said twice
            inside = (occurrences(big) * big.count(small) >= FRAGMENT_SHARE * o_small
                      and len(text_docs(big)) >= FRAGMENT_SHARE * len(t_small))
            if same_docs or inside:
                out.add(small)
                break
    return out


def keyword_candidates(texts: Sequence[str], min_latin_docs: int = 2) -> Candidates:
    """The keyword candidates of a set of texts (terms of each), without fragments of longer
    candidates and, when the texts are mostly Chinese, without Latin words fewer than
    ``min_latin_docs`` of them use (a stray "Engine" in a Chinese summary)."""
    tf: dict[str, int] = {}
    docs: dict[str, set[int]] = {}
    for i, text in enumerate(texts):
        for w in terms(text):
            tf[w] = tf.get(w, 0) + 1
            docs.setdefault(w, set()).add(i)
    nonempty = [t for t in texts if t and t.strip()]
    chinese = bool(nonempty) and sum(1 for t in nonempty if has_cjk(t)) * 2 >= len(nonempty)
    drop = _fragments(tf, docs)
    if chinese:
        drop |= {w for w in tf if is_latin(w) and len(docs[w]) < min_latin_docs}
    return Candidates({w: c for w, c in tf.items() if w not in drop},
                      {w: frozenset(d) for w, d in docs.items() if w not in drop})


def extract_keywords(texts: Sequence[str], top_k: int = 20, exclude: Iterable[str] = ()) -> KeywordIndex:
    """TF-IDF keywords over a set of documents (texts already cleaned).

    Candidates are keyword_candidates(texts): nouns, verbal nouns, abbreviations, nominal set
    phrases and English words, without fragments and stray English.
    weight(w) = idf(w) · (df(w) + 0.5·ln(1 + tf(w))) / N — how many of the documents use the word
    (so one repetitive post cannot dominate), how often, and how specific it is (jieba's idf).
    Words equal to, inside or containing an excluded term (the topic) are left out.
    Ties keep the order of first appearance."""
    excl = [e.lower() for e in exclude if e]
    cands = keyword_candidates(texts)
    n = max(len(texts), 1)

    def excluded(w: str) -> bool:
        lw = w.lower()
        return any(lw == e or lw in e or (len(e) >= 2 and e in lw) for e in excl)

    scored = []
    for first, (w, count) in enumerate(cands.tf.items()):
        if excluded(w):
            continue
        weight = idf(w) * (len(cands.docs[w]) + 0.5 * math.log1p(count)) / n
        scored.append((-weight, first, w, weight))
    scored.sort()
    ranked = tuple((w, round(weight, 6)) for _, _, w, weight in scored[:top_k])
    return KeywordIndex(ranked, {w: cands.docs[w] for w, _ in ranked})


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
    import numpy as np  # here: importing the keyword helpers (a page, the runtime) does not load numpy

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
