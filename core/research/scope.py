"""A run's topic scope, built from the corpus: the topic's terms, their idf, and expansion terms.

Expansion (offline query expansion): words that the topic's own matching posts use often AND that,
across the whole corpus, appear mostly in posts about the topic (武大 for 武汉大学). A post holding
one is about the topic too. A word that is frequent in the topic's posts but just as frequent
elsewhere (演唱会 for 周杰伦, 大学 for 武汉大学) is not an expansion: it would let other topics in.

Incidental words (the topic as a passing mention): a topic word can appear in the posts of another
subject without being what they are about -- 毕业 in a university's posts that quote 毕业多年的老校友.
A word w of the matching posts marks such a subject when
  1. it is frequent in the matching posts (as for expansion),
  2. most corpus posts holding w do NOT mention the topic (at most ``INCIDENTAL_MAX_SHARE``),
  3. the matching posts holding w talk like the posts holding w without the topic (the word profiles
     of the two groups are alike, cosine >= ``INCIDENTAL_MIN_LIKENESS``): the topic adds nothing,
  4. and unlike the topic's other matching posts (at most a third as alike).
Words of one subject mostly mark the same posts: the most frequent is kept, a further one only when it
marks matching posts the kept ones do not. A post holding such a word, or replying in a thread whose
post holds one, is about that other subject and is not admitted (``TopicScope.admits``). 2 alone would also hit
a subject the topic is really about (周杰伦's concerts among many other concerts: there the matching
posts talk about other things than the rest, 3 fails); 3 alone would hit the words every post of a
templated corpus shares (网友, 认为: alike everywhere, 4 fails).

Scopes are deterministic for a corpus version and cached, so the three engines of a run (and a
second process on the same database) agree on what is on topic.
"""
from __future__ import annotations

import functools
import math
import threading
import weakref
from collections import Counter
from typing import Iterable

import numpy as np

from core.corpus.search import (
    MAX_CANDIDATES,
    TOKEN_PREFIX,
    candidates,
    document_frequencies,
    index_stats,
    index_text,
    query_terms,
    term_idf,
)
from core.infra.db import Database
from core.research.relevance import DEFAULT_FLOOR, TOPIC_FILLER, TopicScope
from core.text.stopwords import FUNCTION_WORDS

MAX_EXPANSIONS = 8
MIN_ASSOCIATION = 0.8  # of the corpus posts holding the word, the share that is about the topic
MIN_SHARE_OF_MATCHES = 0.05  # the word appears in at least this share of the topic's posts (and 3)
FREQUENT_WORDS = 60  # the matching posts' most frequent words considered for expansion / incidental
INCIDENTAL_MAX_SHARE = 0.3  # of the corpus posts holding the word, at most this share match the topic
INCIDENTAL_MIN_LIKENESS = 0.5  # cosine of the word profiles: matching vs not matching posts holding it
MAX_INCIDENTAL = 16
PREFILTER_INSIDE = 0.3  # a suspect this alike the topic's other posts (idf over them) is not looked at further
INCIDENTAL_SAMPLE = 800  # posts without the topic read to compare with (the best matches of the suspects)
COUNT_LIMIT = 50_000  # posts looked at when counting coverage

# per Database (weakly: a closed database's scopes go with it), then per (topic, floor, expand, version)
_cache: "weakref.WeakKeyDictionary[Database, dict[tuple, TopicScope]]" = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()
_CACHE_MAX = 64


def topic_terms(topic: str) -> list[str]:
    """The topic's encoded search terms without analyst filler (武汉大学舆情 → the terms of 武汉大学)."""
    terms = query_terms(topic)
    kept = [t for t in terms if t[len(TOKEN_PREFIX):] not in TOPIC_FILLER]
    # A single character next to real words is mostly jieba disagreeing with itself: the topic
    # 周杰伦新歌 segments as 周杰伦/新/歌 while posts hold 新歌. Single characters count only when the
    # topic has nothing longer.
    longer = [t for t in kept if len(t) - len(TOKEN_PREFIX) >= 2]
    return longer or kept or terms


def build_scope(db: Database, topic: str, *, floor: float = DEFAULT_FLOOR, expand: bool = True) -> TopicScope:
    """The scope of ``topic`` over this corpus (cached per corpus version)."""
    stats = index_stats(db)
    key = (topic, floor, expand, stats.version)
    with _cache_lock:
        hit = _cache.get(db, {}).get(key)
    if hit is not None:
        return hit
    terms = topic_terms(topic)
    scope = TopicScope(topic, tuple(terms), term_idf(db, terms, stats), floor)
    if expand and terms:
        scope = TopicScope(topic, scope.terms, scope.idf, floor, _expansions(db, scope))
        scope = TopicScope(topic, scope.terms, scope.idf, floor, scope.expansions, _incidental(db, scope))
    with _cache_lock:
        scopes = _cache.setdefault(db, {})
        if len(scopes) >= _CACHE_MAX:
            scopes.clear()
        scopes[key] = scope
    return scope


@functools.lru_cache(maxsize=65536)
def _is_expansion_word(token: str) -> bool:
    word = token[len(TOKEN_PREFIX):]
    if word in FUNCTION_WORDS or word in TOPIC_FILLER or word.isdigit():
        return False
    if word.isascii():
        return len(word) >= 3 and word.isalpha()
    return len(word) >= 2


def _expansions(db: Database, scope: TopicScope) -> frozenset[str]:
    matches = [c for c in candidates(db, list(scope.terms), limit=MAX_CANDIDATES) if scope.matches_topic(c.token_set)]
    if len(matches) < 3:
        return frozenset()
    inside: Counter[str] = Counter()
    for c in matches:
        inside.update(t for t in c.token_set if t not in scope.terms and _is_expansion_word(t))
    need = max(3, math.ceil(MIN_SHARE_OF_MATCHES * len(matches)))
    frequent = _most_frequent(inside, need)
    if not frequent:
        return frozenset()
    df = document_frequencies(db, frequent)
    associated = [t for t in frequent if df.get(t) and inside[t] / df[t] >= MIN_ASSOCIATION]
    return frozenset(associated[:MAX_EXPANSIONS])


def _most_frequent(counts: "Counter[str] | dict[str, int]", need: int) -> list[str]:
    """The FREQUENT_WORDS most frequent words counted at least ``need`` times, ties by the word (a set's
    order differs between processes; the scope must not)."""
    return sorted((w for w, k in counts.items() if k >= need), key=lambda w: (-counts[w], w))[:FREQUENT_WORDS]


def _content_words(tokens: Iterable[str], skip: set[str]) -> frozenset[str]:
    """A post's words for comparing posts: no topic terms, no function words, and no word that is part
    of a longer one in the same post (jieba's search mode gives 武汉, 大学 and 武汉大学 for 武汉大学)."""
    words = [t[len(TOKEN_PREFIX):] for t in set(tokens) if t not in skip and _is_expansion_word(t)]
    joined = "\x00".join(words)
    return frozenset(TOKEN_PREFIX + w for w in words if joined.count(w) == 1)


class _Posts:
    """Posts as arrays of word ids over one vocabulary, to count the words of any group at C speed."""

    def __init__(self, vocab: dict[str, int]):
        self.vocab = vocab
        self.rows: list[np.ndarray] = []
        self.by_word: dict[int, list[int]] = {}

    def add(self, words: Iterable[str]) -> None:
        ids = np.fromiter((self.vocab.setdefault(w, len(self.vocab)) for w in sorted(words)), dtype=np.int64)
        for i in ids.tolist():
            self.by_word.setdefault(i, []).append(len(self.rows))
        self.rows.append(ids)

    def counts(self, rows: list[int] | None = None) -> np.ndarray:
        """How many of the posts (all, or ``rows``) hold each word of the vocabulary."""
        picked = self.rows if rows is None else [self.rows[r] for r in rows]
        flat = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
        return np.bincount(flat, minlength=len(self.vocab)).astype(np.float64)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm else 0.0


def _incidental(db: Database, scope: TopicScope) -> frozenset[str]:
    """The words of other subjects that the topic's matching posts only pass through (module docstring)."""
    skip = set(scope.all_terms())
    vocab: dict[str, int] = {}
    matched, others = _Posts(vocab), _Posts(vocab)
    matched_ids: set[int] = set()
    for c in candidates(db, scope.all_terms(), limit=MAX_CANDIDATES):
        if scope.admits(c.token_set):
            matched_ids.add(c.id)
            matched.add(_content_words(c.tokens, skip))
    n = len(matched.rows)
    if n < 3:
        return frozenset()
    need = max(3, math.ceil(MIN_SHARE_OF_MATCHES * n))
    inside = matched.counts()
    frequent = _most_frequent({w: int(inside[i]) for w, i in vocab.items()}, need)
    df = document_frequencies(db, frequent) if frequent else {}
    suspects = [w for w in frequent if df.get(w) and inside[vocab[w]] / df[w] <= INCIDENTAL_MAX_SHARE]

    def likeness(w: str, other: np.ndarray, n_other: int, idf: np.ndarray) -> float:
        """How alike the matching posts holding w are to ``n_other`` posts with word counts ``other``
        (every array over the vocabulary as it is now; ``other`` loses w's count)."""
        i, rows = vocab[w], matched.by_word[vocab[w]]
        held = matched.counts(rows)
        held[i] = other[i] = 0.0  # the word itself says nothing about what its posts are about
        return _cosine(held / len(rows) * idf, other / max(1, n_other) * idf)

    # Unlike the topic's other posts first (cheap, the matching posts only; idf over them) ...
    idf = np.log((1 + n) / (1 + inside))
    suspects = [w for w in suspects
                if likeness(w, inside - matched.counts(matched.by_word[vocab[w]]), n - int(inside[vocab[w]]), idf)
                <= PREFILTER_INSIDE]
    if not suspects:
        return frozenset()
    # ... then alike the posts holding the word without the topic (a sample of the best matches of the
    # suspects on a large corpus), with idf over all the posts read
    for c in candidates(db, suspects, limit=INCIDENTAL_SAMPLE):
        if c.id not in matched_ids and not scope.admits(c.token_set):
            others.add(_content_words(c.tokens, skip))
    inside, outside = matched.counts(), others.counts()  # now over the grown vocabulary
    idf = np.log((1 + n + len(others.rows)) / (1 + inside + outside))
    found: list[str] = []
    for w in suspects:
        i = vocab[w]
        held, out_rows = matched.by_word[i], others.by_word.get(i, [])
        if len(out_rows) < need:
            continue  # too few posts without the topic to compare with
        alike_outside = likeness(w, others.counts(out_rows), len(out_rows), idf)
        alike_inside = likeness(w, inside - matched.counts(held), n - len(held), idf)
        if alike_outside >= INCIDENTAL_MIN_LIKENESS and alike_inside <= alike_outside / 3:
            found.append(w)
    # The subject's main word first (the one most matching posts hold); a further word is kept only when
    # it marks matching posts the earlier ones do not (3 at least) -- a word of the same subject adds
    # nothing but the risk of hitting a post that uses it in another sense.
    kept: list[str] = []
    covered: set[int] = set()
    for w in found:  # suspects come most frequent first
        rows = set(matched.by_word[vocab[w]])
        if len(rows - covered) >= 3:
            kept.append(w)
            covered |= rows
    return frozenset(kept[:MAX_INCIDENTAL])


def admits_text(scope: TopicScope, title: str, content: str) -> bool:
    """For documents from outside the corpus (web results): the same rule on the same tokens."""
    return scope.admits(frozenset(index_text(title or "", content or "").split()))


def matching_counts(db: Database, scope: TopicScope, platforms: Iterable[str] | None = None
                    ) -> tuple[int, dict[str, int]]:
    """How many corpus posts (and comments) the scope admits, in all and per platform."""
    rows = candidates(db, scope.all_terms(), platforms=list(platforms) if platforms else None, limit=COUNT_LIMIT)
    by_platform: Counter[str] = Counter(c.platform for c in rows if scope.admits(c.token_set, c.thread))
    return sum(by_platform.values()), dict(by_platform.most_common())
