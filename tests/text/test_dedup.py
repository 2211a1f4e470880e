"""Near-duplicate text (core.text.dedup) and the forum's de-duplication of agent messages."""
from __future__ import annotations

import random

import pytest
from sqlalchemy import select

import core.forum as forum
from core.forum import DEDUP_WINDOW, post_message, transcript
from core.infra.models import Event, ForumMessage, Run, utcnow
from core.text.dedup import cluster, normalise, shingles, similarity

# --- the machinery ------------------------------------------------------------------------------

def test_normalise_removes_citations_and_whitespace_only():
    assert normalise("电池成本 下降[12]，\n官方［3］回应【4】 [1, 2] [3-5]。") == "电池成本下降,官方回应。"
    assert normalise("Price  CUT\t[7]") == "pricecut"
    assert normalise("[二哈] 表情不是引用") == "[二哈]表情不是引用"
    assert normalise(None) == "" and normalise("  [1] ") == ""


def test_shingles_and_similarity():
    assert shingles("abcd") == {"abc", "bcd"}
    assert shingles("ab") == {"ab"} and shingles("") == set()
    assert shingles("abcd", k=2) == {"ab", "bc", "cd"}
    assert similarity("电池成本下降 [1]", "电池成本下降[2]") == 1.0  # citations and spaces do not count
    assert similarity("", "") == 1.0 and similarity("abc", "") == 0.0
    a = "老车主集体维权，要求厂家给予补偿，认为降价太突然。"
    assert 0.7 < similarity(a, a.replace("突然", "仓促")) < 1.0
    assert similarity(a, "续航测试视频：降价后的车型续航没有缩水。") < 0.2


def test_cluster_groups_reposts_and_templates_transitively():
    original = "#新能源汽车价格战#比亚迪宣布全系车型降价，最高优惠两万元，老车主纷纷表示不满。"
    texts = [
        original,                                                     # 0
        "续航测试视频：降价后的车型续航没有缩水，电池配置保持不变。",          # 1
        "转发 " + original + " [3]",                                    # 2 repost with a citation
        original.replace("两万元", "两万块"),                              # 3 lightly edited
        "续航测试视频：降价后的车型续航没有缩水，电池配置保持不变！",          # 4 near 1
        "",                                                           # 5
        "完全不同的一条帖子，讨论食堂涨价。",                                # 6
        "  ",                                                         # 7 empty too
    ]
    assert cluster(texts) == [0, 1, 0, 0, 1, 5, 6, 5]
    # a chain: each step close to the previous one, the ends less so, one cluster all the same
    chain = ["价格战下的二手车市场：保值率普遍下跌，车主卖车损失不小。"]
    for word in ("二手车", "保值率", "车主"):
        chain.append(chain[-1].replace(word, word + "们", 1))
    assert similarity(chain[0], chain[-1]) < similarity(chain[0], chain[1])
    assert cluster(chain, threshold=0.75) == [0, 0, 0, 0]
    assert cluster([]) == [] and cluster(["x"]) == [0]
    with pytest.raises(ValueError):
        cluster(["a"], threshold=0)


def templated_posts(n_templates: int, per_template: int, seed: int = 7) -> tuple[list[str], list[int]]:
    """Posts made from templates with a varying name and number, shuffled, and their template."""
    rng = random.Random(seed)
    alphabet = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可也你"
    templates = ["".join(rng.choice(alphabet) for _ in range(70)) for _ in range(n_templates)]
    posts, truth = [], []
    for t, body in enumerate(templates):
        for j in range(per_template):
            posts.append(f"@用户{rng.randint(1, 999)} {body}，第{j}次[{rng.randint(1, 60)}]")
            truth.append(t)
    order = list(range(len(posts)))
    rng.shuffle(order)
    return [posts[i] for i in order], [truth[i] for i in order]


def test_cluster_a_few_thousand_templated_posts_with_the_prefix_index():
    texts, truth = templated_posts(400, 6)  # 2,400 posts: far more than the pairwise cut-off
    labels = cluster(texts, threshold=0.7)
    # the clusters are exactly the templates, each labelled by its first post
    by_template: dict[int, set[int]] = {}
    for label, t in zip(labels, truth):
        by_template.setdefault(t, set()).add(label)
    assert all(len(v) == 1 for v in by_template.values())
    assert len(set(labels)) == 400
    for i, label in enumerate(labels):
        assert label <= i and labels[label] == label and truth[label] == truth[i]


def test_cluster_never_groups_below_the_threshold():
    rng = random.Random(3)
    texts = ["".join(rng.choice("价格战电池续航车主维权补偿降价厂家") for _ in range(30)) for _ in range(300)]
    labels = cluster(texts, threshold=0.7)
    for i, label in enumerate(labels):
        if label != i:  # each grouped text is linked to its cluster through pairs at or above 0.7
            assert any(similarity(texts[i], texts[j]) >= 0.7 for j in range(len(texts))
                       if j != i and labels[j] == label)



@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.9])
def test_cluster_is_exact_every_pair_at_the_threshold_is_grouped(threshold):
    """The clusters are the transitive closure of every pair at or above the threshold, compared with
    all pairs one by one: nothing is missed (the candidate index only skips pairs that cannot reach it)."""
    rng = random.Random(11)
    alphabet = [chr(0x4E00 + i) for i in range(300)]
    texts = []
    for _ in range(150):
        base = [rng.choice(alphabet) for _ in range(rng.randint(8, 90))]
        texts.append("".join(base))
        for _ in range(rng.randint(0, 2)):  # edited copies, some just above and some just below the threshold
            copy = list(base)
            for _ in range(rng.randint(0, max(1, len(copy) // 6))):
                copy[rng.randrange(len(copy))] = rng.choice(alphabet)
            texts.append("".join(copy))
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    sets = [shingles(t) for t in texts]
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            inter = len(sets[i] & sets[j])
            if inter / (len(sets[i]) + len(sets[j]) - inter) >= threshold:
                a, b = root(i), root(j)
                parent[max(a, b)] = min(a, b)
    expected = [root(i) for i in range(len(texts))]
    assert cluster(texts, threshold=threshold) == expected
    assert len(set(expected)) < len(texts)  # the case has near-duplicates to find

# --- the forum ----------------------------------------------------------------------------------

RUN = "dedup-run"
LONG = ("比亚迪宣布全系车型降价，最高优惠两万元。老车主集体维权，要求厂家给予补偿，认为降价太突然，"
        "保值率受到严重打击；业内人士认为价格战会继续蔓延到更多品牌。")


@pytest.fixture
def run(db):
    with db.session() as s:
        s.add(Run(id=RUN, kind="analysis", topic="价格战", status="running", created_at=utcnow()))
    return RUN


def skipped_events(db, run_id=RUN) -> list[dict]:
    with db.session() as s:
        return [e.payload for e in s.scalars(select(Event).where(Event.run_id == run_id,
                                                                 Event.type == "forum.duplicate_skipped")
                                             .order_by(Event.id))]


def test_another_engines_near_copy_is_skipped_with_an_event_and_no_log_line(db, events, run, tmp_path):
    logs = tmp_path / "logs"
    first = post_message(db, events, run, type="agent", source="QUERY", content=LONG + " [1][2]", log_dir=logs)
    copy = post_message(db, events, run, type="agent", source="MEDIA", paragraph=2, log_dir=logs,
                        content="  " + LONG.replace("两万元", "两万块") + " [7]")
    assert first is not None and copy is None
    assert [(m.source, m.content) for m in transcript(db, run)] == [("QUERY", LONG + " [1][2]")]
    [ev] = skipped_events(db)
    assert ev["source"] == "MEDIA" and ev["duplicate_of"] == first.id and ev["duplicate_source"] == "QUERY"
    assert ev["similarity"] >= forum.DUPLICATE_SIMILARITY and ev["paragraph"] == 2
    assert (logs / "forum.log").read_text(encoding="utf-8").count("\n") == 1  # only the first one


def test_an_engines_own_revision_is_posted_an_exact_repeat_is_not(db, events, run):
    revised = LONG.replace("两万元", "两万块")  # a reflection summary close to the first summary
    assert post_message(db, events, run, type="agent", source="QUERY", content=LONG) is not None
    assert post_message(db, events, run, type="agent", source="QUERY", content=revised) is not None
    assert post_message(db, events, run, type="agent", source="QUERY", content=revised + " [3]\n") is None
    assert [e["source"] for e in skipped_events(db)] == ["QUERY"]
    # a different text of another engine, short messages, hosts and other runs: posted
    assert post_message(db, events, run, type="agent", source="INSIGHT", content="用户情绪偏负面") is not None
    assert post_message(db, events, run, type="agent", source="MEDIA", content="用户情绪偏正面") is not None
    assert post_message(db, events, run, type="host", source="HOST", content=LONG) is not None
    with db.session() as s:
        s.add(Run(id="other", kind="analysis", topic="x", status="running", created_at=utcnow()))
    assert post_message(db, events, "other", type="agent", source="MEDIA", content=LONG) is not None
    assert post_message(db, events, run, type="agent", source="MEDIA", content=LONG, dedup=False) is not None
    assert len(transcript(db, run)) == 6


def test_a_short_message_is_a_duplicate_only_when_identical(db, events, run):
    assert post_message(db, None, run, type="agent", source="QUERY", content="价格战加剧") is not None
    assert post_message(db, None, run, type="agent", source="MEDIA", content="价格战加剧了") is not None
    assert post_message(db, None, run, type="agent", source="INSIGHT", content="价格战 加剧 [2]") is None


def test_dedup_reads_only_the_runs_recent_agent_messages(db, events, run, monkeypatch):
    """The comparison costs the last DEDUP_WINDOW agent messages, however long the transcript: an
    old message out of the window is not compared with, and texts are read once per message."""
    assert post_message(db, None, run, type="agent", source="QUERY", content=LONG) is not None
    with db.session() as s:
        s.add_all([ForumMessage(run_id=run, type="agent", sender="Insight Engine", source="INSIGHT",
                                content=f"第{i}条不同的分析：样本编号{i * 7919}，关注点各不相同。", timestamp=utcnow())
                   for i in range(DEDUP_WINDOW + 50)])
    loaded = []
    real = forum.shingles
    monkeypatch.setattr(forum, "shingles", lambda text, *a, **k: loaded.append(text) or real(text, *a, **k))
    # the Query message is 250 agent messages back: out of the window, so another engine's copy is posted
    assert post_message(db, None, run, type="agent", source="MEDIA", content=LONG) is not None
    assert len(loaded) <= DEDUP_WINDOW + 1  # the window's texts and the new one, not the whole run
    loaded.clear()
    # the next post reads only what is new in the window (the Media message), not the 200 again
    assert post_message(db, None, run, type="agent", source="INSIGHT", content=LONG + "。") is None
    assert len(loaded) <= 2
