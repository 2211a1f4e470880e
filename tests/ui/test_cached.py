"""The cached reads for read-mostly panels (ui/cached.py): a repeat within the TTL does not query again,
a new row shows at once, a clear shows the new figures, and a read error is not cached."""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

import ui.cached as cached
from core.infra.db import open_database
from core.infra.models import LlmCall, Post


@pytest.fixture
def rt(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'cache.db'}")
    assert db.ok, db.error
    yield SimpleNamespace(db=db)
    db.dispose()


def _counting(monkeypatch, name):
    calls = []
    real = getattr(cached, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cached, name, counted)
    return calls


def _add_post(db, post_id):
    with db.session() as s:
        s.add(Post(platform="weibo", post_id=post_id, content="内容"))


def test_corpus_figures_are_cached_until_a_post_is_added_or_the_cache_cleared(rt, monkeypatch):
    calls = _counting(monkeypatch, "corpus_stats")
    _add_post(rt.db, "p1")
    assert cached.cached_corpus_stats(rt).total == 1
    assert cached.cached_corpus_stats(rt).total == 1
    assert len(calls) == 1  # the repeat came from the cache
    _add_post(rt.db, "p2")
    assert cached.cached_corpus_stats(rt).total == 2  # a new post shows at once
    assert len(calls) == 2
    with rt.db.session() as s:  # a change that adds no row: shown after the TTL, or at once after a clear
        s.query(Post).filter(Post.post_id == "p1").delete()
    assert cached.cached_corpus_stats(rt).total == 2
    cached.clear_corpus_cache()
    assert cached.cached_corpus_stats(rt).total == 1
    assert len(calls) == 3
    summary_calls = _counting(monkeypatch, "corpus_summary")
    assert cached.cached_corpus_summary(rt)["total"] == 1
    assert cached.cached_corpus_summary(rt)["total"] == 1
    assert len(summary_calls) == 1


def test_llm_calls_are_cached_until_a_call_is_recorded_and_errors_are_not_cached(rt, monkeypatch):
    calls = _counting(monkeypatch, "llm_calls_frame")

    def record():
        with rt.db.session() as s:
            s.add(LlmCall(role="QUERY_ENGINE", model="m", input_tokens=1, output_tokens=1))

    record()
    assert len(cached.cached_llm_calls(rt, None, 100)) == 1
    assert len(cached.cached_llm_calls(rt, None, 100)) == 1
    assert len(calls) == 1
    record()
    assert len(cached.cached_llm_calls(rt, None, 100)) == 2
    assert len(calls) == 2

    broken = pd.DataFrame(columns=["id"])
    broken.attrs["error"] = "LLM calls cannot be read: boom"
    monkeypatch.setattr(cached, "llm_calls_frame", lambda *a, **k: (calls.append(1), broken)[1])
    cached._llm_calls.clear()
    assert cached.cached_llm_calls(rt, None, 100).attrs["error"].endswith("boom")
    assert cached.cached_llm_calls(rt, None, 100).attrs["error"].endswith("boom")
    assert len(calls) == 4  # each read tried again: an error is not kept
