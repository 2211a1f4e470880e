"""Relevance: Okapi BM25 over the search tokens, a relevance floor, and a run's topic scope.

Pure functions and data, no database: ``core.corpus.search`` ranks with them, ``core.research.scope``
builds a ``TopicScope`` for a run from the corpus's document frequencies.

Why BM25 computed here rather than the backend's score: candidates come from the full-text index
(SQLite FTS5, MySQL FULLTEXT), but FTS5's ``bm25()`` exists on SQLite only and InnoDB's relevance
is a different TF-IDF; computing Okapi BM25 (k1 = 1.2, b = 0.75) over the same stored jieba tokens
gives one ranking on both backends. Libraries such as rank-bm25 need the whole corpus tokenised in
memory to know document frequencies; the index already has them, so the formula (a few lines) is
all that is needed.

The relevance floor: a post is about a query when the IDF-weighted share of the query's terms it
contains is at least ``floor`` (default 0.5). A post sharing one common word of a several-word
topic (价格 of 新能源汽车价格战, 大学 of 武汉大学) falls below it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

K1 = 1.2
B = 0.75
DEFAULT_FLOOR = 0.5
TOKEN_PREFIX = "zx"  # every stored search token is "zx" + word (core.corpus.search says why)

# Words an analyst adds to a topic that posts about it rarely contain (武汉大学舆情 → 武汉大学).
TOPIC_FILLER = frozenset(
    "舆情 舆论 事件 热点 话题 讨论 分析 研判 最新 情况 看法 评价 动态 新闻 报道 相关 问题 进展 风波 "
    "监测 观察 态度 反应 影响 某 某某".split())


def bm25_idf(n_docs: int, df: int) -> float:
    """BM25's idf, always positive (the "+1" variant Lucene uses)."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def bm25(tokens: list[str], terms: Iterable[str], idf: Mapping[str, float], avgdl: float) -> float:
    """Okapi BM25 of one document (its token list) for a query's terms."""
    if not tokens:
        return 0.0
    tf: dict[str, int] = {}
    wanted = set(terms)
    for t in tokens:
        if t in wanted:
            tf[t] = tf.get(t, 0) + 1
    norm = K1 * (1.0 - B + B * len(tokens) / max(avgdl, 1.0))
    return sum(idf.get(t, 0.0) * f * (K1 + 1.0) / (f + norm) for t, f in tf.items())


def coverage(tokens: frozenset[str] | set[str], terms: Iterable[str], idf: Mapping[str, float]) -> float:
    """The IDF-weighted share of ``terms`` found in ``tokens`` (0..1)."""
    terms = list(terms)
    total = sum(idf.get(t, 0.0) for t in terms)
    if total <= 0:
        return 1.0 if terms and all(t in tokens for t in terms) else 0.0
    return sum(idf.get(t, 0.0) for t in terms if t in tokens) / total


@dataclass(frozen=True)
class TopicScope:
    """What counts as "about the topic" for one run: the topic's terms with their idf, the floor,
    expansion terms that co-occur with the topic (a post containing one is about the topic too), and
    incidental words: the words of another subject that the topic only passes through (武汉大学 for
    毕业 when a university's posts mention 毕业多年的老校友); a post holding one is about that subject,
    not the topic (``core.research.scope`` says how they are found).

    Tokens are the index's encoded search words (``core.corpus.search.query_terms`` form)."""

    topic: str
    terms: tuple[str, ...]
    idf: Mapping[str, float]
    floor: float = DEFAULT_FLOOR
    expansions: frozenset[str] = field(default_factory=frozenset)
    incidental: frozenset[str] = field(default_factory=frozenset)

    def coverage(self, tokens: frozenset[str] | set[str]) -> float:
        return coverage(tokens, self.terms, self.idf)

    def matches_topic(self, tokens: frozenset[str] | set[str]) -> bool:
        return bool(self.terms) and self.coverage(tokens) >= self.floor

    def admits(self, tokens: frozenset[str] | set[str], thread: Iterable[str] = ()) -> bool:
        """On topic: past the floor on the topic's own terms, or holding expansion terms -- two of them,
        or one beside at least half the floor's weight of the topic's own terms (one expansion word and
        one common word of the topic, 上海 + 大学 for 同济大学, is weak evidence) -- and holding no
        incidental word, nor replying in a thread (``thread``: the tokens of the post a comment replies
        to) that holds one: a comment is about what its thread is about."""
        if self.incidental and (self.names_incidental(tokens) or self.names_incidental(thread)):
            return False
        if self.matches_topic(tokens):
            return True
        hits = len(self.expansions.intersection(tokens))
        return hits >= 2 or (hits == 1 and self.coverage(tokens) >= self.floor / 2)

    def names_incidental(self, tokens: Iterable[str]) -> bool:
        """Whether ``tokens`` hold an incidental word as a word of its own: not only inside a longer
        word of the post (学生 within 大学生) other than the topic's own terms -- the way the scope
        found them (core.research.scope compares posts on such words)."""
        tokens = tokens if isinstance(tokens, (set, frozenset)) else frozenset(tokens)
        hits = self.incidental.intersection(tokens)
        if not hits:
            return False
        own = set(self.all_terms())
        longer = [t[len(TOKEN_PREFIX):] for t in tokens if t not in own]
        for hit in hits:
            word = hit[len(TOKEN_PREFIX):]
            if not any(word in t and word != t for t in longer):
                return True
        return False

    def all_terms(self) -> list[str]:
        return list(self.terms) + sorted(self.expansions - set(self.terms))
