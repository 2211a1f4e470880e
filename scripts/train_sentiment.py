"""Train Shoal's offline sentiment model (core/assets/sentiment_model.json.gz).

5-fold stratified cross-validated accuracy on weibo2018/train.txt: 0.8696 ± 0.0077
    (folds 0.8785, 0.8735, 0.8585, 0.8750, 0.8625; StratifiedKFold(5, shuffle=True, random_state=42))
    produced by:  python scripts/train_sentiment.py            (run from the project root, /work/main)
    same figure, with the grid search first:  python scripts/train_sentiment.py --search
Baselines on the same folds: always-positive 0.5496 (train.txt is 55 % positive); jieba words +
multinomial NB 0.818; TF-IDF words + char 1–3-grams + plain logistic regression 0.847.
Grid (--search, same folds; min_df=2):   alpha=1   alpha=2
                                 C=3     0.8642    0.8642
                                 C=10    0.8670    0.8693
                                 C=30    0.8656    0.8696   <- chosen
The setting was picked on the same folds that report it, so the figure is slightly optimistic;
all six settings are within one standard deviation of each other.

What it does
------------
* Reads ONLY ``../shared/data/weibo2018/train.txt`` (``weibo_id,label,text``, split on the first
  two commas; label 1 positive, 0 negative). No other labelled data is used for training or tuning.
* Features come from ``core.sentiment.tokenize`` (the very function used at run time): Weibo markup
  cleaned (``{%#topic#%}`` kept as text, ``{%…%}`` cards/locations/videos, ``@user``, URLs and
  zero-width characters turned into marker tokens or dropped), ``[emoji]`` codes kept as whole
  tokens, jieba words and character 1–3-grams.
* Model: TF-IDF (sublinear tf, smooth idf, l2) → NB log-count-ratio scaling (NBSVM-style, Wang &
  Manning 2012) → L2 logistic regression. The NB ratios are folded into the LR weights, so the
  shipped model is one linear model over TF-IDF features.
* Reports 5-fold stratified CV accuracy (mean ± std; the NB ratios and TF-IDF are fitted inside
  each fold). ``--search`` also runs a small grid over C and the NB smoothing alpha by the same
  CV and trains the best setting.
* Fits on all of train.txt, checks that ``core.sentiment`` reproduces scikit-learn's
  probabilities on a sample (max |Δp| < 1e-9), and writes gzipped JSON (no pickle): vocabulary,
  document frequencies (idf is recomputed exactly), weights, intercept, preprocessing version,
  the CV figure, and the training file's sha256 and the date. Deterministic: re-running gives the
  same file contents apart from ``trained_at``.

scikit-learn is needed here only (``pip install scikit-learn==1.9.1``); the app does not use it.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gzip
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import sentiment as S  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "weibo2018" / "train.txt"
DEFAULT_OUT = S.MODEL_PATH
SEED = 42
FOLDS = 5

# Chosen by 5-fold CV on train.txt with --search (grid in the module docstring).
PARAMS = {"C": 30.0, "alpha": 2.0, "min_df": 2}
GRID = [{"C": c, "alpha": a, "min_df": 2} for c in (3.0, 10.0, 30.0) for a in (1.0, 2.0)]
FEATURES = dict(S.DEFAULT_FEATURES)


def load_data(path: Path) -> tuple[list[str], np.ndarray, str]:
    raw = path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    texts, labels = [], []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(",", 2)
        if len(parts) != 3 or parts[1] not in ("0", "1"):
            raise ValueError(f"{path}:{n}: expected 'weibo_id,label,text', got {line[:60]!r}")
        labels.append(int(parts[1]))
        texts.append(parts[2])
    return texts, np.asarray(labels, dtype=np.int64), sha


def _identity(doc):
    return doc


class NBLogReg:
    """TF-IDF → NB log-count-ratio scaling → logistic regression (scikit-learn, training only)."""

    def __init__(self, C: float, alpha: float, min_df: int):
        self.C, self.alpha, self.min_df = C, alpha, min_df

    def fit(self, docs: list[list[str]], y: np.ndarray) -> "NBLogReg":
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vec = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, smooth_idf=True,
                                   norm="l2", min_df=self.min_df, dtype=np.float64)
        X = self.vec.fit_transform(docs)
        present = (X > 0).astype(np.float64)
        p = self.alpha + np.asarray(present[y == 1].sum(axis=0)).ravel()
        q = self.alpha + np.asarray(present[y == 0].sum(axis=0)).ravel()
        self.r = np.log((p / p.sum()) / (q / q.sum()))
        self._R = sp.diags(self.r)
        self.lr = LogisticRegression(C=self.C, max_iter=5000, tol=1e-8, random_state=SEED)
        self.lr.fit(X @ self._R, y)
        if self.lr.n_iter_[0] >= self.lr.max_iter:
            raise RuntimeError("logistic regression did not converge")
        return self

    def predict_proba(self, docs: list[list[str]]) -> np.ndarray:
        return self.lr.predict_proba(self.vec.transform(docs) @ self._R)[:, 1]


def document_frequencies(vec, docs: list[list[str]]) -> list[int]:
    from sklearn.feature_extraction.text import CountVectorizer

    cv = CountVectorizer(analyzer=_identity, vocabulary=vec.vocabulary_, binary=True)
    df = np.asarray(cv.transform(docs).sum(axis=0)).ravel().astype(np.int64)
    # idf recomputed from df must equal scikit-learn's idf_ exactly
    n = len(docs)
    idf = np.log((n + 1.0) / (df + 1.0)) + 1.0
    if not np.array_equal(idf, vec.idf_):
        raise AssertionError("idf recomputed from document frequencies differs from scikit-learn's")
    return df.tolist()


def cross_validate(docs: list[list[str]], y: np.ndarray, params: dict, folds: int) -> list[float]:
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    scores = []
    for tr, te in skf.split(np.zeros(len(y)), y):
        m = NBLogReg(**params).fit([docs[i] for i in tr], y[tr])
        p = m.predict_proba([docs[i] for i in te])
        scores.append(float(((p >= 0.5).astype(np.int64) == y[te]).mean()))
    return scores


def baseline_always_positive(y: np.ndarray, folds: int) -> float:
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    return float(np.mean([(y[te] == 1).mean() for _, te in skf.split(np.zeros(len(y)), y)]))


def write_model(data: dict, out: Path) -> int:
    payload = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    buf = io.BytesIO()
    # mtime=0 and no file name in the header: same input → same bytes
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out)
    return len(buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="weibo2018 train.txt")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--folds", type=int, default=FOLDS)
    ap.add_argument("--search", action="store_true", help="grid-search C and alpha by CV first")
    args = ap.parse_args(argv)

    import sklearn

    t0 = time.time()
    texts, y, sha = load_data(args.data)
    print(f"data: {args.data} — {len(texts)} posts, {int(y.sum())} positive, "
          f"{int(len(y) - y.sum())} negative, sha256 {sha[:16]}…")
    docs = [S.tokenize(t, FEATURES) for t in texts]
    print(f"tokenised in {time.time() - t0:.1f}s")
    print(f"baseline always-positive CV accuracy: {baseline_always_positive(y, args.folds):.4f}")

    params = dict(PARAMS)
    if args.search:
        best = None
        for g in GRID:
            sc = cross_validate(docs, y, g, args.folds)
            print(f"  grid {g}: {np.mean(sc):.4f} ± {np.std(sc):.4f}", flush=True)
            if best is None or np.mean(sc) > best[0] + 1e-12:
                best = (float(np.mean(sc)), g)
        params = dict(best[1])
        print(f"best by CV: {params}")

    scores = cross_validate(docs, y, params, args.folds)
    mean, std = float(np.mean(scores)), float(np.std(scores))
    print(f"{args.folds}-fold stratified CV accuracy: {mean:.4f} ± {std:.4f} "
          f"(folds: {', '.join(f'{s:.4f}' for s in scores)}; params {params})", flush=True)

    model = NBLogReg(**params).fit(docs, y)
    df = document_frequencies(model.vec, docs)
    vocab = model.vec.get_feature_names_out().tolist()
    data = {
        "format": S.MODEL_FORMAT,
        "preprocess_version": S.PREPROCESS_VERSION,
        "features": FEATURES,
        "tfidf": {"sublinear_tf": True, "smooth_idf": True, "norm": "l2"},
        "classifier": "TF-IDF -> NB log-count-ratio scaling -> L2 logistic regression; "
                      "coef already multiplied by the NB ratios",
        "params": params,
        "n_docs": len(docs),
        "vocabulary": vocab,
        "df": df,
        "coef": (model.lr.coef_[0] * model.r).tolist(),
        "intercept": float(model.lr.intercept_[0]),
        "labels": {"1": "positive", "0": "negative"},
        "cv": {"folds": args.folds, "stratified": True, "shuffle_seed": SEED,
               "accuracy_mean": round(mean, 6), "accuracy_std": round(std, 6),
               "fold_accuracy": [round(s, 6) for s in scores]},
        "training_data": {"file": "weibo2018/train.txt", "sha256": sha, "posts": len(texts),
                          "positive": int(y.sum()), "negative": int(len(y) - y.sum())},
        "command": "python scripts/train_sentiment.py" + (" --search" if args.search else ""),
        "trained_with": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "trained_at": _dt.date.today().isoformat(),
    }

    # The runtime must reproduce the training pipeline's probabilities.
    runtime = S.SentimentModel(json.loads(json.dumps(data)))
    rng = np.random.default_rng(SEED)
    idx = rng.choice(len(texts), size=min(1000, len(texts)), replace=False)
    sample = [texts[i] for i in idx] + ["", "   ", "\x00\x07控制字符\u200b", "hello world, great!",
                                        "好" * 6000, "[二哈][二哈]", "@某人 http://t.cn/x"]
    p_train = model.predict_proba([S.tokenize(t, FEATURES) for t in sample])
    p_run = np.array([p for _, p in runtime.predict(sample)])
    diff = float(np.max(np.abs(p_train - p_run)))
    if diff > 1e-9 or not np.array_equal(p_train >= 0.5, p_run >= 0.5):
        raise AssertionError(f"runtime probabilities differ from training pipeline: max |Δp| = {diff:g}")
    print(f"runtime check: {len(sample)} texts, max |Δp| vs scikit-learn = {diff:.2e}")

    size = write_model(data, args.out)
    print(f"wrote {args.out} — {len(vocab)} features, {size / 1e6:.2f} MB; "
          f"train accuracy {((model.predict_proba(docs) >= 0.5) == y).mean():.4f}; "
          f"total {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
