"""Offline sentiment classifier: shipped model, features, three classes, robustness, command line."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.text import sentiment as S
from core.text.clean import clean_text

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sentiment_sample.tsv"
THREE_CLASS = Path(__file__).resolve().parents[1] / "data" / "sentiment_3class.tsv"
SHARED_TRAIN = ROOT.parent / "shared" / "data" / "weibo2018" / "train.txt"

POSITIVE = [
    "今天收到了录取通知书，太开心了！",
    "这家餐厅的菜超级好吃，服务也很热情，下次还来",
    "和好朋友一起去看海，心情特别好[哈哈]",
    "宝宝今天第一次叫妈妈，幸福得想哭[爱你]",
    "努力终于有了回报，比赛拿了冠军，感谢大家的支持！",
    "春天来了，花都开了，阳光明媚，真美好",
    "这本书写得真棒，受益匪浅，推荐给大家",
    "加油！相信自己，明天会更好[加油]",
    "新工作同事都很友好，领导也很照顾我，很满意",
    "祝福你们新婚快乐，百年好合[心]",
]
NEGATIVE = [
    "太失望了，等了一个月的快递居然是坏的",
    "今天被老板骂了，心情糟透了[泪]",
    "这服务态度太差了，再也不会来了，差评",
    "又失眠了，好累好难受，什么都不想做",
    "垃圾产品，用了两天就坏了，退款还不给退",
    "分手了，心好痛，一个人哭了一整晚[悲伤]",
    "堵车堵了两个小时，烦死了，真倒霉",
    "考试没考好，感觉自己好失败，好绝望",
    "这剧情太烂了，浪费时间，恶心",
    "被人骗了钱，报警也没用，气死我了[怒]",
]


def _load_sample() -> list[tuple[int, str]]:
    rows = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, text = line.split("\t", 1)
        rows.append((int(label), text))
    return rows


# --- the shipped model ------------------------------------------------------------------------

def test_model_file_ships_small_and_is_plain_json():
    assert S.MODEL_PATH.is_file(), "run scripts/train_sentiment.py to build the model"
    assert S.MODEL_PATH.stat().st_size < 3_000_000
    with gzip.open(S.MODEL_PATH, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    assert data["format"] == S.MODEL_FORMAT
    assert data["preprocess_version"] == S.PREPROCESS_VERSION
    n = len(data["vocabulary"])
    assert n > 1000 and len(data["df"]) == n and len(data["coef"]) == n
    assert data["vocabulary"] == sorted(data["vocabulary"])
    cv = data["cv"]
    assert cv["folds"] == 5 and cv["accuracy_mean"] >= 0.85 and 0 < cv["accuracy_std"] < 0.05
    # the honest figure: a stratified 20 % of train.txt used for nothing else, scored by this model
    held = data["held_out"]
    assert held["posts"] == 2000 and held["accuracy"] >= 0.84
    assert data["split"]["development_posts"] + held["posts"] == data["training_data"]["posts"]
    assert data["n_docs"] == data["split"]["development_posts"]   # fitted on the 80 % only
    ids = data["split"]["held_out_ids"]                           # which posts were held out
    assert len(ids) == len(set(ids)) == held["posts"] and ids == sorted(ids)
    low, high = data["neutral_band"]
    assert 0.0 < low < 0.5 < high < 1.0
    assert data["intercept"] == 0.0                               # no class prior in the scores
    assert re.fullmatch(r"[0-9a-f]{64}", data["training_data"]["sha256"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["trained_at"])
    assert data["training_data"]["file"] == "weibo2018/train.txt"


def test_load_model_is_cached_and_metadata_exposed():
    m1 = S.load_model()
    m2 = S.load_model()
    assert m1 is m2
    assert m1.meta["cv"]["accuracy_mean"] >= 0.85
    assert "vocabulary" not in m1.meta


@pytest.mark.skipif(not SHARED_TRAIN.is_file(), reason="../shared training data not present")
def test_model_was_trained_on_the_shared_train_file():
    digest = hashlib.sha256(SHARED_TRAIN.read_bytes()).hexdigest()
    assert S.load_model().meta["training_data"]["sha256"] == digest


@pytest.mark.skipif(not SHARED_TRAIN.is_file(), reason="../shared training data not present")
def test_stored_held_out_accuracy_is_what_the_app_scorer_gets_on_those_posts():
    # The held-out posts, listed by id in the model file, re-scored by the run-time scorer: the
    # figure the training script reports is this model's own, on posts it never saw.
    meta = S.load_model().meta
    ids = set(meta["split"]["held_out_ids"])
    rows = [line.split(",", 2) for line in SHARED_TRAIN.read_text(encoding="utf-8").splitlines()]
    held = [(int(label), text) for wid, label, text in rows if wid in ids]
    assert len(held) == len(ids) == meta["held_out"]["posts"]
    assert meta["n_docs"] + len(held) == len(rows)
    preds = S.predict([text for _, text in held])
    accuracy = sum(label == p for (label, _), (p, _s) in zip(held, preds)) / len(held)
    assert accuracy == pytest.approx(meta["held_out"]["accuracy"], abs=1e-6)


def test_model_rejects_other_formats_and_preprocessing_versions(tmp_path):
    with gzip.open(S.MODEL_PATH, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    bad = dict(data, preprocess_version=S.PREPROCESS_VERSION + 1)
    p = tmp_path / "bad.json.gz"
    with gzip.open(p, "wt", encoding="utf-8") as fh:
        json.dump(bad, fh)
    with pytest.raises(ValueError, match="preprocessing"):
        S.load_model(p)
    with pytest.raises(ValueError, match="format"):
        S.SentimentModel(dict(data, format="pickle"))
    with pytest.raises(ValueError, match="corrupt"):
        S.SentimentModel(dict(data, coef=data["coef"][:-1]))
    with pytest.raises(FileNotFoundError):
        S.load_model(tmp_path / "missing.json.gz")


def test_fresh_load_from_path_matches_cached_model():
    texts = POSITIVE[:3] + NEGATIVE[:3]
    fresh = S.load_model(S.MODEL_PATH)
    assert fresh is not S.load_model()
    assert fresh.predict(texts) == S.predict(texts)


# --- predictions ----------------------------------------------------------------------------

def test_clearly_positive_sentences():
    results = S.predict(POSITIVE)
    correct = sum(label == 1 for label, _ in results)
    assert correct >= 8, results


def test_clearly_negative_sentences():
    results = S.predict(NEGATIVE)
    correct = sum(label == 0 for label, _ in results)
    assert correct >= 8, results


def test_positive_scores_higher_than_negative_on_average():
    pos = [p for _, p in S.predict(POSITIVE)]
    neg = [p for _, p in S.predict(NEGATIVE)]
    assert sum(pos) / len(pos) - sum(neg) / len(neg) > 0.4


def test_accuracy_on_hand_written_sample():
    rows = _load_sample()
    assert len(rows) == 40 and sum(lab for lab, _ in rows) == 20
    preds = S.predict([t for _, t in rows])
    accuracy = sum(lab == p for (lab, _), (p, _s) in zip(rows, preds)) / len(rows)
    assert accuracy >= 0.85, accuracy


def test_predict_shape_labels_and_scores():
    texts = ["好开心", "好难过", ""]
    out = S.predict(texts)
    assert len(out) == 3
    for label, p in out:
        assert isinstance(label, int) and label in (0, 1)
        assert isinstance(p, float) and 0.0 <= p <= 1.0
        assert label == (1 if p >= 0.5 else 0)
    assert S.predict([]) == []
    assert S.score("好开心") == out[0][1]
    with pytest.raises(TypeError):
        S.predict("一条文本")


def test_predict_is_deterministic():
    texts = POSITIVE + NEGATIVE + [t for _, t in _load_sample()]
    first = S.predict(texts)
    second = S.predict(list(reversed(texts)))[::-1]
    assert first == second
    assert [S.score(t) for t in texts[:5]] == [p for _, p in first[:5]]


@pytest.mark.parametrize("text", [
    "",
    "   \t  ",
    "\x00\x01\x02\x1b[31m\x7f",
    "\u200b\u200c\u200d\ufeff",
    "The service was terrible and I want a refund.",
    "😀😀😀🎉",
    "1234567890",
    "[二哈]",
    "{%#话题#%}{%上海·同济大学%}{%%}@某人 http://t.cn/RXYZ",
    "\ud800 lone surrogate",
    "あいうえお 한국어",
])
def test_robust_to_odd_inputs(text):
    p = S.score(text)
    assert 0.0 <= p <= 1.0 and math.isfinite(p)


def test_empty_and_featureless_text_is_neutral_not_positive():
    # No evidence either way: exactly 0.5 (the old model gave the training prior, ~0.77 positive).
    for text in ("", "   ", "\u200b \x00 ", "ꙮꙮꙮ"):
        assert S.score(text) == 0.5
        assert S.label_of(S.score(text)) == S.NEUTRAL
    assert S.classify([""]) == [(S.NEUTRAL, 0.5)]


def test_long_text_is_truncated():
    long = ("气死我了，太失望了[怒]" * 1000) + ("太开心了[哈哈]" * 10000)
    assert len(long) > S.MAX_CHARS * 5
    assert S.score(long) == S.score(long[:S.MAX_CHARS])
    assert S.score(long) < 0.5   # only the negative head is read
    assert S.score("太开心了[哈哈]" * 10000) > 0.5


def test_clean_keeps_emoji_and_drops_markup():
    markers: list[str] = []
    plain = clean_text("{%#毕业季#%}开心\u200b[哈哈]@张三 看 http://t.cn/Rabc {%上海·外滩%}", markers=markers)
    assert "\u200b" not in plain and "http" not in plain and "张三" not in plain and "外滩" not in plain
    assert "毕业季" in plain and "开心" in plain
    assert "e:哈哈" in markers and "m:at" in markers and "m:url" in markers
    assert "m:topic" in markers and "m:loc" in markers
    tokens = S.tokenize("[哈哈]开心")
    assert "e:哈哈" in tokens and "c:开心" in tokens and "c:哈" not in tokens


# --- features: negation scope, word pairs ------------------------------------------------------

def test_negation_scope_marks_words_and_characters_after_a_cue():
    tokens = S.tokenize("我不喜欢这个")
    assert "w:不" in tokens and "neg:w:喜欢" in tokens and "w:喜欢" not in tokens
    assert "neg:c:喜欢" in tokens and "c:喜欢" not in tokens
    assert "c:不喜欢" in tokens            # an n-gram starting on the cue itself stays plain
    assert "b:不_喜欢" in tokens            # word pairs
    # the scope ends at the clause end and at a contrastive conjunction
    tokens = S.tokenize("一点也不开心，但是还好")
    assert "neg:w:开心" in tokens and "w:还好" in tokens and "neg:w:还好" not in tokens
    assert "w:但是" in tokens
    tokens = S.tokenize("不 开心 好")
    assert "neg:w:开心" not in tokens       # whitespace ends a clause too
    # a second cue inside a scope closes it: 没有人不喜欢他 — 喜欢 is plain again
    tokens = S.tokenize("没有人不喜欢他")
    assert "neg:w:人" in tokens and "w:喜欢" in tokens and "neg:w:喜欢" not in tokens
    # at most NEGATION_WINDOW words
    marks = S._negation_marks(["不", "a", "b", "c", "d", "e", "f", "g"])
    assert marks == [False] + [True] * S.NEGATION_WINDOW + [False] * (7 - S.NEGATION_WINDOW)


def test_words_that_merely_contain_a_negator_are_ordinary_words():
    for text, word in [("还不错", "w:不错"), ("毫不犹豫地买了", "w:毫不犹豫"), ("没想到这么好吃", "w:没想到")]:
        tokens = S.tokenize(text)
        assert word in tokens and not any(t.startswith("neg:") for t in tokens), tokens


def test_tokenize_feature_switches():
    plain = {"words": True, "char_ngrams": [1, 2], "emoji": False, "markers": False}
    tokens = S.tokenize("我不喜欢[哈哈]", plain)
    assert "w:喜欢" in tokens and not any(t.startswith(("neg:", "b:", "e:")) for t in tokens)
    # characters only, with the negation scope still found on jieba words
    chars = {"words": False, "word_bigrams": False, "negation": True, "negation_chars": True,
             "char_ngrams": [1, 3], "emoji": True, "markers": True}
    tokens = S.tokenize("我不喜欢这个[哈哈]", chars)
    assert "neg:c:喜欢" in tokens and "c:喜欢" not in tokens and "c:不喜欢" in tokens and "e:哈哈" in tokens
    assert not any(t.startswith(("w:", "neg:w:", "b:")) for t in tokens)
    # the model file records every switch it was trained with (the scorer tokenises with those)
    model = S.load_model()
    assert set(model.features) == set(S.DEFAULT_FEATURES)
    assert model.features["negation"] and model.features["negation_chars"]


# --- three classes ----------------------------------------------------------------------------

def _load_three_class() -> list[tuple[str, str]]:
    rows = []
    for line in THREE_CLASS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, text = line.split("\t", 1)
        assert label in S.LABELS, line
        rows.append((label, text))
    return rows


def test_neutral_band_comes_from_the_model_file():
    low, high = S.neutral_band()
    assert [low, high] == S.load_model().meta["neutral_band"]
    assert (low, high) != S.DEFAULT_NEUTRAL_BAND and 0.0 < low < 0.5 < high < 1.0
    assert S.label_of(None) is None
    assert S.label_of(high) == S.POSITIVE and S.label_of(1.0) == S.POSITIVE
    assert S.label_of(low) == S.NEUTRAL and S.label_of(0.5) == S.NEUTRAL
    assert S.label_of(low - 1e-9) == S.NEGATIVE and S.label_of(0.0) == S.NEGATIVE


def test_three_class_hand_set_macro_accuracy():
    # 90 hand-written lines, 30 per class; a check only (never used to train or tune).
    # Measured with the shipped model: recall positive 0.600, neutral 0.933, negative 0.767;
    # macro-averaged accuracy 0.767 (69/90). Floors sit a little below.
    rows = _load_three_class()
    assert len(rows) == 90 and {lab: sum(l == lab for l, _ in rows) for lab in S.LABELS} == {
        S.POSITIVE: 30, S.NEUTRAL: 30, S.NEGATIVE: 30}
    got = [label for label, _ in S.classify([t for _, t in rows])]
    recall = {lab: sum(g == lab for (l, _), g in zip(rows, got) if l == lab) / 30 for lab in S.LABELS}
    macro = sum(recall.values()) / 3
    assert macro >= 0.72, recall
    assert min(recall.values()) >= 0.6, recall


@pytest.mark.parametrize("plain, negated", [
    ("好吃", "一点也不好吃"),
    ("好看", "并不好看"),
    ("开心", "一点也不开心"),
    ("值得买", "不值得买"),
])
def test_a_negated_sentence_flips(plain, negated):
    assert S.classify([plain, negated]) == [(S.POSITIVE, S.score(plain)), (S.NEGATIVE, S.score(negated))]


def test_negation_moves_the_score_the_other_way():
    for plain, negated in [("我喜欢这个", "我不喜欢这个"), ("很满意", "不满意"),
                           ("这个产品很好用", "这个产品不好用")]:
        assert S.score(negated) < S.score(plain) - 0.2, (plain, negated)
    assert S.score("我没有生气") > S.score("我很生气") + 0.2


def test_plain_question_and_news_are_neutral():
    for text in ["这个政策什么时候实施？", "教育部今日发布通知，明年起调整招生计划。"]:
        assert S.classify([text])[0][0] == S.NEUTRAL, (text, S.score(text))


def test_user_reported_negatives_are_no_longer_positive():
    assert S.classify(["越想越生气"])[0][0] == S.NEGATIVE
    assert S.score("服务太差了") < 0.5


def test_shares_and_score_documents():
    low, high = S.neutral_band()
    sh = S.shares([0.99, high, 0.5, low, 0.01, None])
    assert (sh.positive, sh.neutral, sh.negative, sh.unscored, sh.scored) == (2, 2, 1, 1, 5)
    assert sh.share(S.POSITIVE) == pytest.approx(0.4) and S.shares([]).share(S.NEUTRAL) == 0.0
    assert sh.as_dict() == {"scored": 5, "positive": 2, "neutral": 2, "negative": 1, "unscored": 1}

    class Doc:
        def __init__(self, text, sentiment=None):
            self.text, self.sentiment = text, sentiment

    docs = [Doc("今天真开心[哈哈]"), Doc("气死我了，太差劲了"), Doc("   "), Doc("好难过", 0.9)]
    S.score_documents(docs)
    assert docs[0].sentiment == round(S.score(docs[0].text), 4) and S.label_of(docs[0].sentiment) == S.POSITIVE
    assert S.label_of(docs[1].sentiment) == S.NEGATIVE
    assert docs[2].sentiment is None and docs[3].sentiment == 0.9   # blank skipped, existing kept


# --- command line ---------------------------------------------------------------------------

def test_main_sentiment_round_trip():
    lines = ["今天真开心[哈哈]", "", "气死我了，太差劲了", "x" * 50_000, "\x00\x07", "  "]
    stdin = io.StringIO("\n".join(lines) + "\n")
    stdout = io.StringIO()
    assert S.main_sentiment(stdin, stdout) == 0
    out = stdout.getvalue().splitlines()
    assert len(out) == len(lines)
    for line, text in zip(out, lines):
        m = re.fullmatch(r"([01])\t(\d\.\d{4})", line)
        assert m, line
        label, p = S.predict([text])[0]
        assert int(m.group(1)) == label and m.group(2) == f"{p:.4f}"
    assert out[0].startswith("1\t") and out[2].startswith("0\t")


def test_main_sentiment_handles_missing_final_newline_and_crlf():
    stdout = io.StringIO()
    S.main_sentiment(io.StringIO("好开心\r\n好难过"), stdout)
    assert [l.split("\t")[0] for l in stdout.getvalue().splitlines()] == ["1", "0"]


def test_python_dash_m_core_sentiment():
    proc = subprocess.run(
        [sys.executable, "-m", "core.text.sentiment"], input="今天真开心[哈哈]\n\n气死我了，太差劲了\n",
        capture_output=True, text=True, encoding="utf-8", cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert len(out) == 3 and out[0].startswith("1\t") and out[2].startswith("0\t")
    assert "Building prefix dict" not in proc.stderr   # jieba kept quiet


def test_a_text_scored_again_is_not_computed_again_and_scores_the_same_in_any_batch(monkeypatch):
    model = S.load_model(S.MODEL_PATH)  # a fresh model: its own memory of scored texts
    texts = POSITIVE[:3] + NEGATIVE[:3]
    alone = [model._decisions([t]).tolist()[0] for t in texts]
    computed = []
    real = model._decisions
    monkeypatch.setattr(model, "_decisions", lambda batch: computed.extend(batch) or real(batch))
    assert model.decisions(texts[:4]).tolist() == alone[:4]
    assert model.decisions(texts[::-1] + texts[:2]).tolist() == alone[::-1] + alone[:2]  # bitwise: no isclose
    assert sorted(computed) == sorted(texts)  # each text computed once, whatever the batches


def test_the_memory_of_scored_texts_is_bounded(monkeypatch):
    model = S.load_model(S.MODEL_PATH)
    monkeypatch.setattr(S, "MAX_REMEMBERED", 4)
    model.decisions(POSITIVE[:3])
    model.decisions(NEGATIVE[:3])  # 3 + 3 > 4: the older ones are forgotten
    assert set(model._logits) == set(NEGATIVE[:3])
    assert model.decisions(POSITIVE[:1]).tolist() == [model._decisions(POSITIVE[:1]).tolist()[0]]
