"""The one jieba loader: jieba imported and its dictionaries loaded once per process.

    get_jieba()     the ``jieba`` module, initialised (lcut, cut_for_search)
    get_posseg()    ``jieba.posseg`` (part-of-speech cutting, the word → tag table)
    idf_table()     (idf by word, median idf) of jieba's TF-IDF table

Each is a `core.text.warmup.Once`: loaded by the first caller, and callers arriving meanwhile wait
for that load instead of starting a second one. The runtime's warm-up thread
(`core.text.warmup.start_warmup`) calls all three at start, so a run normally finds them loaded;
nothing is loaded at import time. jieba's own logging (to stderr) is turned down.
"""
from __future__ import annotations

import logging
from types import ModuleType

from core.text.warmup import Once

__all__ = ["get_jieba", "get_posseg", "idf_table"]


def _load_jieba() -> ModuleType:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def _load_posseg() -> ModuleType:
    get_jieba()
    import jieba.posseg  # builds its word → tag table from the dictionary on import

    return jieba.posseg


def _load_idf() -> tuple[dict, float]:
    get_jieba()
    import jieba.analyse  # reads the IDF file on import

    tfidf = jieba.analyse.default_tfidf
    return tfidf.idf_freq, tfidf.median_idf


_jieba: Once[ModuleType] = Once(_load_jieba, "jieba dictionary")
_posseg: Once[ModuleType] = Once(_load_posseg, "jieba part-of-speech tags")
_idf: Once[tuple[dict, float]] = Once(_load_idf, "jieba TF-IDF table")


def get_jieba() -> ModuleType:
    return _jieba()


def get_posseg() -> ModuleType:
    return _posseg()


def idf_table() -> tuple[dict, float]:
    return _idf()
