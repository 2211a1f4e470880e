"""The one jieba loader: jieba imported and its dictionary loaded once per process, on first use.

    get_jieba()     the ``jieba`` module, initialised (lcut, cut_for_search)
    get_posseg()    ``jieba.posseg`` (part-of-speech cutting, the word → tag table)
    idf_table()     (idf by word, median idf) of jieba's TF-IDF table

The dictionary load takes about a second, so nothing is loaded at import time; a lock makes the
first use from several threads load it once. jieba's own logging (to stderr) is turned down.
"""
from __future__ import annotations

import logging
import threading
from types import ModuleType

__all__ = ["get_jieba", "get_posseg", "idf_table"]

_lock = threading.Lock()
_jieba: ModuleType | None = None
_idf: tuple[dict, float] | None = None


def get_jieba() -> ModuleType:
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def get_posseg() -> ModuleType:
    get_jieba()
    import jieba.posseg

    return jieba.posseg


def idf_table() -> tuple[dict, float]:
    global _idf
    if _idf is None:
        get_jieba()
        with _lock:
            if _idf is None:
                import jieba.analyse

                tfidf = jieba.analyse.default_tfidf
                _idf = (tfidf.idf_freq, tfidf.median_idf)
    return _idf
