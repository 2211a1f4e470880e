"""A run's topic scope, built from the corpus: the topic's terms, their idf, and expansion terms.

Expansion (offline query expansion): words that the topic's own matching posts use often AND that,
across the whole corpus, appear mostly in posts about the topic (武大 for 武汉大学). A post holding
one is about the topic too. A word that is frequent in the topic's posts but just as frequent
elsewhere (演唱会 for 周杰伦, 大学 for 武汉大学) is not an expansion: it would let other topics in.

Scopes are deterministic for a corpus version and cached, so the three engines of a run (and a
second process on the same database) agree on what is on topic.
"""
from __future__ import annotations

import math
import threading
import weakref
from collections import Counter
from typing import Iterable

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
    with _cache_lock:
        scopes = _cache.setdefault(db, {})
        if len(scopes) >= _CACHE_MAX:
            scopes.clear()
        scopes[key] = scope
    return scope


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
    frequent = [t for t, k in inside.most_common(60) if k >= need]
    if not frequent:
        return frozenset()
    df = document_frequencies(db, frequent)
    associated = [t for t in frequent if df.get(t) and inside[t] / df[t] >= MIN_ASSOCIATION]
    return frozenset(associated[:MAX_EXPANSIONS])


def admits_text(scope: TopicScope, title: str, content: str) -> bool:
    """For documents from outside the corpus (web results): the same rule on the same tokens."""
    return scope.admits(frozenset(index_text(title or "", content or "").split()))


def matching_counts(db: Database, scope: TopicScope, platforms: Iterable[str] | None = None
                    ) -> tuple[int, dict[str, int]]:
    """How many corpus posts (and comments) the scope admits, in all and per platform."""
    rows = candidates(db, scope.all_terms(), platforms=list(platforms) if platforms else None, limit=COUNT_LIMIT)
    by_platform: Counter[str] = Counter(c.platform for c in rows if scope.admits(c.token_set))
    return sum(by_platform.values()), dict(by_platform.most_common())
