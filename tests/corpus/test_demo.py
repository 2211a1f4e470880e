"""The demo corpus: reproducible, varied, heavy-tailed, clearly labelled, searchable; and the Data page."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.corpus.search import corpus_summary, search_posts
from core.corpus.demo import (
    DEMO_DOMAIN,
    DEMO_TOPICS,
    DEMO_URL_PREFIX,
    PLATFORMS,
    TOPIC_SPECS,
    WINDOW_DAYS,
    demo_window,
    generate_demo_corpus,
    generate_demo_records,
)
from core.corpus.documents import hotness
from ui.runtime import get_runtime, reload_runtime
from tests.pagetest import fresh_runtime  # noqa: F401 - fresh_runtime is an autouse fixture

ROOT = Path(__file__).resolve().parents[2]
DATA_PAGE = ROOT / "pages" / "7_Data.py"
VIDEO = ("douyin", "bilibili", "kuaishou")
_CACHE: dict[tuple[int, int], list[dict]] = {}


def records(seed: int = 7, posts: int = 3000) -> list[dict]:
    """Generated once per (seed, posts) for the read-only checks; a deep copy is not needed (nothing mutates)."""
    if (seed, posts) not in _CACHE:
        _CACHE[(seed, posts)] = generate_demo_records(seed=seed, posts=posts)
    return _CACHE[(seed, posts)]


def posts_of(recs: list[dict]) -> list[dict]:
    return [r for r in recs if r["kind"] == "post"]


def digest(recs: list[dict]) -> str:
    return hashlib.sha256(json.dumps(recs, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_records_and_another_seed_different_ones():
    a = generate_demo_records(seed=7, posts=400)
    b = generate_demo_records(seed=7, posts=400)
    assert a == b
    c = generate_demo_records(seed=8, posts=400)
    assert digest(c) != digest(a)
    assert {r["content"] for r in c} != {r["content"] for r in a}
    assert demo_window(7) != demo_window(8)  # the window comes from the seed …


def test_records_do_not_depend_on_hash_randomisation_or_the_clock():
    # … and not from the wall clock or Python's per-process string hashing: two fresh interpreters
    # with different hash seeds produce byte-identical corpora.
    code = ("import hashlib, json; from core.corpus.demo import generate_demo_records; "
            "print(hashlib.sha256(json.dumps(generate_demo_records(seed=11, posts=300), ensure_ascii=False, "
            "sort_keys=True).encode()).hexdigest())")
    outs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        outs.add(out.stdout.strip())
    assert outs == {digest(generate_demo_records(seed=11, posts=300))}


# ------------------------------------------------------------------------------------- size and coverage


def test_default_size_and_coverage():
    recs = records()
    posts = posts_of(recs)
    comments = [r for r in recs if r["kind"] == "comment"]
    assert len(posts) == 3000
    assert 500 <= len(comments) <= 3000 and 3500 <= len(recs) <= 6000  # "a few thousand posts and comments"
    assert set(r["platform"] for r in posts) == set(PLATFORMS)
    assert set(PLATFORMS) >= {"weibo", "douyin", "bilibili", "xhs", "zhihu", "tieba", "kuaishou", "news"}
    assert len(DEMO_TOPICS) >= 6 and len(set(DEMO_TOPICS)) == len(DEMO_TOPICS)
    assert DEMO_TOPICS == [t.name for t in TOPIC_SPECS]
    by_topic = Counter(r["keyword"] for r in posts)
    assert set(by_topic) == set(DEMO_TOPICS)
    assert min(by_topic.values()) >= 150
    for spec in TOPIC_SPECS:
        mine = [r for r in posts if r["keyword"] == spec.name]
        assert len({r["platform"] for r in mine}) == len(PLATFORMS), spec.name
        stances = Counter(r["demo_stance"] for r in mine)
        assert all(stances[s] >= 0.1 * len(mine) for s in ("positive", "negative", "neutral")), (spec.name, stances)
        assert len({r["demo_subtheme"] for r in mine}) == len(spec.subthemes), spec.name
        # most of a topic's posts name it, so a full-text search finds them
        assert sum(spec.query in r["title"] + r["content"] for r in mine) >= 0.5 * len(mine), spec.name
        names = set(spec.slots["kw"]) | {spec.query}
        assert sum(any(k in r["title"] + r["content"] for k in names) for r in mine) >= 0.85 * len(mine), spec.name
    ids = [(r["platform"], r["post_id"]) for r in recs]
    assert len(ids) == len(set(ids))


def test_a_tiny_corpus_still_covers_every_topic_and_platform():
    recs = generate_demo_records(seed=3, posts=len(PLATFORMS))
    posts = posts_of(recs)
    assert len(posts) == len(PLATFORMS)
    assert {r["platform"] for r in posts} == set(PLATFORMS)
    assert {r["keyword"] for r in posts} == set(DEMO_TOPICS)
    assert generate_demo_records(posts=0) == []
    for bad in (-1, 2.5, "10", True):
        with pytest.raises(ValueError):
            generate_demo_records(posts=bad)


def test_comments_belong_to_hot_posts():
    recs = records()
    posts = {(r["platform"], r["post_id"]): r for r in posts_of(recs)}
    comments = [r for r in recs if r["kind"] == "comment"]
    per_parent = Counter()
    for c in comments:
        parent = posts.get((c["platform"], c["parent_id"]))
        assert parent is not None, c["post_id"]
        assert parent["kind"] == "post" and c["keyword"] == parent["keyword"]
        assert c["publish_time"] >= parent["publish_time"]
        per_parent[c["parent_id"]] += 1
    for parent_id, n in per_parent.items():
        parent = next(p for p in posts.values() if p["post_id"] == parent_id)
        assert parent["comments"] >= n  # the post's comment count covers the comments we have
    # the commented posts are the hot ones
    ranked = sorted(posts.values(), key=lambda r: -hotness(r["likes"], r["comments"], r["shares"], r["views"]))
    top = {r["post_id"] for r in ranked[:len(per_parent)]}
    assert len(top & set(per_parent)) >= 0.9 * len(per_parent)


def test_dates_fill_the_window_with_an_event_spike_per_topic():
    recs = records()
    start, end = demo_window(7)
    assert end - start < timedelta(days=WINDOW_DAYS) and end - start > timedelta(days=WINDOW_DAYS - 1)
    times = [datetime.fromisoformat(r["publish_time"]) for r in recs]
    assert all(start <= t <= end for t in times)
    posts = posts_of(recs)
    days = Counter(r["publish_time"][:10] for r in posts)
    assert len(days) >= WINDOW_DAYS - 5  # spread over the whole window
    for spec in TOPIC_SPECS:
        per_day = Counter(r["publish_time"][:10] for r in posts if r["keyword"] == spec.name)
        counts = sorted(per_day.values())
        median = counts[len(counts) // 2]
        assert counts[-1] >= 8 * median, (spec.name, counts[-1], median)  # the event day stands out


def test_engagement_is_heavy_tailed():
    posts = posts_of(records())
    heat = sorted((hotness(r["likes"], r["comments"], r["shares"], r["views"]) for r in posts), reverse=True)
    top = heat[:len(heat) // 100]
    assert sum(top) >= 0.25 * sum(heat)  # the top 1% of posts hold a large share of the attention
    assert heat[len(heat) // 2] * 100 < heat[0]
    assert all(r[k] >= 0 and isinstance(r[k], int) for r in posts for k in ("likes", "comments", "shares", "views"))
    views = {p: sum(r["views"] for r in posts if r["platform"] == p) for p in PLATFORMS}
    assert all(views[p] > 0 for p in VIDEO) and views["weibo"] == 0


# ------------------------------------------------------------------------------------- texts and labels


def test_every_record_is_labelled_demo():
    for r in records():
        assert r["demo"] is True and r["demo_seed"] == 7
        assert r["url"].startswith(DEMO_URL_PREFIX) and DEMO_DOMAIN.endswith(".invalid")
        assert r["author"].startswith("演示")
        assert r["post_id"].startswith("demo7-")
        assert r["sentiment"] is None  # the classifier fills it
        assert r["demo_stance"] in ("positive", "negative", "neutral")


def test_texts_are_chinese_and_shaped_by_platform():
    recs = records()
    posts = posts_of(recs)
    for r in posts:
        assert 30 <= len(r["content"]) <= 200, r["content"]
        assert len(re.findall(r"[\u4e00-\u9fff]", r["content"])) >= 0.5 * len(r["content"]), r["content"]
    for r in recs:
        assert 6 <= len(r["content"]) <= 200 and "{" not in r["content"] + r["title"], r
    by = {p: [r for r in posts if r["platform"] == p] for p in PLATFORMS}
    assert all(r["title"] == "" for r in by["weibo"])
    assert all(r["title"] for p in (*VIDEO, "news", "zhihu", "xhs", "tieba") for r in by[p])
    assert all(r["title"].endswith("？") for r in by["zhihu"])
    assert sum(bool(re.search(r"#[^#\s]+#", r["content"])) for r in by["weibo"]) >= 0.6 * len(by["weibo"])
    emoji = sum(bool(re.search(r"\[[^\[\]]{1,6}\]", r["content"])) for r in by["weibo"])
    assert emoji >= 0.5 * len(by["weibo"])
    assert all(r["author"].startswith("演示用户") for p in PLATFORMS if p != "news" for r in by[p])
    assert len({r["content"] for r in posts}) >= 0.95 * len(posts)  # varied, not a handful of strings
    authors = Counter(r["author"] for r in posts)
    assert 300 <= len(authors) and authors.most_common(1)[0][1] >= 10  # a few users post a lot


def test_stances_are_worded_clearly():
    # Each text carries markers of its own stance (the topic's reasons for or against, closing words,
    # emoji) and almost never one of the opposite stance: no mixed signals for the classifier.
    from core.corpus.demo import _COMMON

    specs = {t.key: t for t in TOPIC_SPECS}

    def markers(spec, stance):
        key = {"positive": "pos", "negative": "neg"}[stance]
        return [*spec.slots[key], *_COMMON[f"{key}_close"], *_COMMON[f"emo_{key}"]]

    for stance, other in (("positive", "negative"), ("negative", "positive")):
        texts = [(specs[r["demo_topic"]], r["title"] + r["content"]) for r in records() if r["demo_stance"] == stance]
        own = sum(any(m in t for m in markers(spec, stance)) for spec, t in texts)
        mixed = sum(any(m in t for m in markers(spec, other)) for spec, t in texts)
        assert own >= 0.95 * len(texts), (stance, own, len(texts))
        assert mixed <= 0.02 * len(texts), (stance, mixed, len(texts))


def test_the_sentiment_classifier_agrees_with_the_intended_stance():
    from core.text import sentiment

    if not sentiment.MODEL_PATH.exists():
        pytest.skip("the sentiment model is not shipped in this tree yet")
    recs = [r for r in records() if r["demo_stance"] != "neutral"]
    labels = sentiment.predict([f"{r['title']} {r['content']}".strip() for r in recs])
    agree = sum((label == 1) == (r["demo_stance"] == "positive") for (label, _), r in zip(labels, recs))
    assert agree >= 0.8 * len(recs), agree / len(recs)


# ------------------------------------------------------------------------------------- import and search


def test_import_is_idempotent_and_every_topic_is_searchable(db):
    recs = generate_demo_records(seed=5, posts=400)
    report = generate_demo_corpus(db, seed=5, posts=400)
    assert report.error_count == 0, report.errors[:5]
    assert report.imported == len(recs) and report.source == "demo"
    again = generate_demo_corpus(db, seed=5, posts=400)
    assert (again.imported, again.updated, again.skipped, again.error_count) == (0, 0, len(recs), 0)
    summary = corpus_summary(db)
    assert summary["total"] == len(recs) == summary["demo"] and summary["by_source"] == {"demo": len(recs)}
    assert set(summary["by_platform"]) == set(PLATFORMS)
    assert summary["by_kind"]["comment"] == sum(r["kind"] == "comment" for r in recs)
    assert summary["span_days"] > 60
    for spec in TOPIC_SPECS:
        for query in (spec.query, spec.name):
            found = search_posts(db, query, limit=20)
            assert len(found) == 20, (query, len(found))
            assert sum(d.extras.get("demo_topic") == spec.key for d in found) >= 18, query
        doc = search_posts(db, spec.query, limit=1)[0]
        assert doc.extras["demo"] is True and doc.extras["corpus_source"] == "demo"
        assert doc.url.startswith(DEMO_URL_PREFIX)


def test_the_command_line_generates_and_the_second_run_changes_nothing():
    def run(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "core", "data", *args], cwd=ROOT, capture_output=True, text=True,
                             timeout=180)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    n = len(generate_demo_records(seed=2, posts=60))
    first = run("demo", "--seed", "2", "--posts", "60")
    assert first["imported"] == n and first["error_count"] == 0 and first["source"] == "demo"
    second = run("demo", "--seed", "2", "--posts", "60")
    assert second["imported"] == 0 and second["skipped"] == n
    assert run("stats")["demo"] == n


# ------------------------------------------------------------------------------------- the Data page


def data_page() -> AppTest:
    at = AppTest.from_file(str(DATA_PAGE), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def after_the_data_job(at: AppTest) -> AppTest:
    """Demo data and imports are supervisor jobs: wait for the one just started, then look again."""
    from core.corpus.data_jobs import latest_data_run

    rt = get_runtime()
    run = latest_data_run(rt.db)
    assert run is not None and rt.supervisor.wait_run(run.id, 60) == "completed"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_data_page_offers_demo_data_on_first_start_and_generates_it(fresh_runtime):
    at = data_page()
    assert at.metric[0].label == "Posts in the corpus" and at.metric[0].value == "0"
    prompt = [i.value for i in at.info if "First start" in i.value]
    assert len(prompt) == 1 and "demo" in prompt[0], [i.value for i in at.info]
    button = at.button(key="demo_generate")
    assert button.label == "Generate demo data" and not button.disabled
    at.number_input(key="demo_posts").set_value(120)
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    after_the_data_job(at)
    expected = len(generate_demo_records(seed=7, posts=120))
    assert at.metric[0].value == f"{expected:,}" and expected > 120
    assert not [i.value for i in at.info if "First start" in i.value]
    assert any("Demo data" in s.value and f"{expected} imported" in s.value for s in at.success)
    assert any("demo data" in c.value and DEMO_DOMAIN in c.value for c in at.caption)
    assert set(at.dataframe[0].value["platform"]) == set(PLATFORMS)
    assert corpus_summary(get_runtime().db)["demo"] == expected
    # again: nothing duplicated
    at.button(key="data_dismiss_job").click().run()
    at.button(key="demo_generate").click().run()
    after_the_data_job(at)
    assert at.metric[0].value == f"{expected:,}"
    assert any(f"0 imported, 0 updated, {expected} skipped" in s.value for s in at.success)


def test_data_page_imports_an_upload_and_lists_broken_rows(fresh_runtime):
    at = data_page()
    csv = "content,platform,likes,extra\n第一条帖子内容,weibo,3,x\n,weibo,1,y\n第三条,douyin,abc,z\n第四条,微博,1.2万,w\n"
    at.file_uploader(key="data_upload").set_value(("posts.csv", csv.encode(), "text/csv"))
    at.run()
    at.button(key="data_import_file").click().run()
    assert not at.exception, [e.value for e in at.exception]
    after_the_data_job(at)
    assert at.metric[0].value == "2"
    [warning] = [w.value for w in at.warning]
    assert "posts.csv" in warning and "2 imported" in warning and "2 errors" in warning
    [errors] = [df.value for df in at.dataframe if "error" in df.value.columns]
    assert list(errors["row"]) == [3, 4] and "content" in errors["error"][0] and "likes" in errors["error"][1]


@pytest.mark.parametrize("url,needle", [
    ("mysql+pymysql://reader:s3cret-pw@127.0.0.1:1/mindspider", "127.0.0.1"),
    ("mysql+pymysql://reader:s3cret-pw@host:notaport/db", "malformed"),
    ("sqlite:///tmp/s3cret-pw.db", "not a MySQL or PostgreSQL URL"),
    ("", "Enter the URL"),
])
def test_data_page_mindspider_errors_are_clear_and_never_echo_the_password(fresh_runtime, url, needle):
    at = data_page()
    at.text_input(key="mindspider_url").input(url)
    [submit] = [b for b in at.button if b.label == "Import"]
    submit.click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and needle in errors[0], errors
    shown = "\n".join(str(node.proto) for node in at if getattr(node, "proto", None) is not None
                      and node.type != "text_input")
    assert "s3cret-pw" not in shown and "s3cret-pw" not in "\n".join(errors)
    assert at.metric[0].value == "0"


def test_data_page_actions_are_locked_behind_the_admin_password(fresh_runtime, monkeypatch):
    monkeypatch.setenv("SHOAL_ADMIN_PASSWORD", "open-sesame-42")
    reload_runtime()
    at = data_page()
    assert [i.value for i in at.info if "First start" in i.value]  # the prompt still shows
    assert not [b for b in at.button if b.label in ("Generate demo data", "Import file", "Import")]
    assert not at.file_uploader
    at.text_input[0].input("open-sesame-42").run()
    assert not at.exception
    assert at.button(key="demo_generate").label == "Generate demo data"
