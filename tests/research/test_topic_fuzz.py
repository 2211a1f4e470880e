"""Any text a user can type as a topic is either refused with a clear message or analysed: the
steps before the engines write (cleaning, the topic scope, coverage counting and scoped search)
never crash, on SQLite's FTS5 and on MariaDB's boolean-mode full-text search, whatever operators,
quotes, emoji or control characters the topic holds. Hypothesis generates the topics."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from core.analysis import TopicError, clean_topic, measure_coverage
from core.corpus.importers import import_records
from core.corpus.search import search_posts
from core.infra.config import load_settings
from core.infra.db import open_database
from core.research.scope import build_scope
from tests.conftest import DB_BACKENDS, server_database

pytestmark = pytest.mark.timeout(600)

# Full-text operators and quoting of both back ends, mixed with CJK words the corpus contains, so
# that generated topics hit the index (and its query parser) rather than missing it at once.
FTS_PIECES = ['"', "'", "*", "-", "+", "~", "<", ">", "(", ")", "@", "^", ":", "NEAR", "AND", "OR", "NOT",
              "MATCH", "\\", "%", "_", ";", "--", "/*", "\x00", "\u200b", "\u202e", "🎤", "周杰伦",
              "演唱会", "价格战", "新能源", "毕业", "的", "了", " ", "\n", "\t"]
TOPICS = st.one_of(
    st.text(max_size=260),
    st.lists(st.sampled_from(FTS_PIECES), max_size=12).map("".join),
    st.tuples(st.sampled_from(FTS_PIECES), st.text(max_size=20), st.sampled_from(FTS_PIECES)).map("".join),
)

CASES = 300  # per back end: 600 topics in all on a machine with MariaDB, 300 without


def _corpus():
    texts = ["周杰伦演唱会抢票，黄牛加价三倍", "新能源汽车价格战又降价了", "毕业季，我们在武汉大学拍毕业照",
             "演唱会现场大合唱《晴天》", "这个 NEAR 那个 AND 测试 \"引号\" 的内容"]
    return [{"platform": p, "post_id": f"p{i}-{j}", "content": f"{t}（第{j}条）", "likes": i * j}
            for i, t in enumerate(texts) for j, p in enumerate(["weibo", "douyin", "zhihu", "bilibili"])]


@pytest.fixture(scope="module", params=DB_BACKENDS)
def corpus_db(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    else:
        url = server_database(request, request.param)
    db = open_database(url)
    assert db.ok, db.error
    import_records(db, _corpus(), source="fuzz")
    yield db
    db.dispose()


@settings(max_examples=CASES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=TOPICS)
def test_any_topic_is_refused_clearly_or_measured_and_searched(corpus_db, raw):
    try:
        topic = clean_topic(raw)
    except TopicError as exc:
        # Only two things are refused, and the message says which and what to do.
        assert "Enter a topic" in str(exc) or "characters long" in str(exc)
        return
    assert topic and topic == topic.strip() and len(topic) <= 200
    settings_ = load_settings()
    coverage = measure_coverage(corpus_db, settings_, topic, ("query", "media", "insight"), offline=True)
    assert 0 <= coverage.matching_posts <= coverage.corpus_total == 20
    assert sum(coverage.by_platform.values()) == coverage.matching_posts
    scope = build_scope(corpus_db, topic, floor=float(settings_["SHOAL_RELEVANCE_FLOOR"]))
    for order in ("relevance", "hot", "time"):
        docs = search_posts(corpus_db, topic, limit=50, order=order, scope=scope)
        # The scope is what coverage counted: a scoped search never lists more than matched.
        assert len(docs) <= coverage.matching_posts
        assert len({d.doc_id for d in docs}) == len(docs)


def test_known_topics_are_found_so_the_fuzzing_reaches_the_index(corpus_db):
    """Guards the property test above from passing vacuously: real words in the corpus match."""
    settings_ = load_settings()
    coverage = measure_coverage(corpus_db, settings_, "周杰伦演唱会", ("insight",), offline=True)
    assert coverage.matching_posts >= 4
    scope = build_scope(corpus_db, "周杰伦演唱会", floor=float(settings_["SHOAL_RELEVANCE_FLOOR"]))
    assert search_posts(corpus_db, "周杰伦演唱会", limit=50, scope=scope)
