"""What the forum host says about each engine's sentiment: the engine's own figures, shares over
the sources it retrieved (so the host's figures for an engine equal that engine's)."""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Callable, Sequence

from loguru import logger

from core.forum import ForumMessage
from core.research.names import ENGINE_NAMES

ENGINE_OF = {n.source: n.key for n in ENGINE_NAMES.values()}   # forum source -> engine job kind
SourcesOf = Callable[[str], dict]   # run id -> {agent source: list of Document dicts, or None}


class _Scored:
    """Each engine job's sources' sentiments so far, per database (ids are unique only within one) and
    job id, for every host of the process: a source never changes once stored and sources are only
    appended, so a speech reads and scores only the sources stored since the previous one (bounded:
    the most recent jobs)."""

    MAX_JOBS = 256

    def __init__(self):
        self.lock = threading.Lock()
        self.dbs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self, db, job_id: str) -> list:
        with self.lock:
            values = self.dbs.get(db, {}).get(job_id)
            return list(values) if values is not None else []

    def put(self, db, job_id: str, values: list) -> None:
        with self.lock:
            jobs = self.dbs.setdefault(db, OrderedDict())
            jobs[job_id] = values
            jobs.move_to_end(job_id)
            while len(jobs) > self.MAX_JOBS:
                jobs.popitem(last=False)


_scored = _Scored()


def run_of(messages: Sequence[ForumMessage]) -> str | None:
    return next((m.run_id for m in messages or () if getattr(m, "run_id", None)), None)


class EngineSentiment:
    """Each engine's sentiment as the engine reports it: shares over the sources it retrieved.

    ``sources_of(run_id) -> {source: [Document dict, …] | None}``; by default the ``sources`` of the
    checkpoint of the run's latest job of each engine kind, read from ``db``: a speech reads the
    engine jobs' checkpoints, then only the sources stored since the process's previous speech, and
    scores only those (see _Scored: every host job has its own EngineSentiment). With ``sources_of``,
    shares are cached per job and number of sources. Thread-safe."""

    def __init__(self, db=None, sources_of: SourcesOf | None = None):
        self.db = db
        self._sources_of = sources_of
        self._cache: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def _from_db(self, run_id: str) -> dict:
        """{source: shares} over the sources of the run's latest job of each engine."""
        from sqlalchemy import select

        from core.infra.models import Job
        from core.research.results import stored_source_count, stored_sources
        from core.text.sentiment import shares

        with self.db.session() as s:  # oldest first: the last of each kind wins
            rows = s.execute(select(Job.id, Job.kind, Job.checkpoint)
                             .where(Job.run_id == run_id, Job.kind.in_(list(ENGINE_OF.values())))
                             .order_by(Job.created_at, Job.id)).all()
        latest = {kind: (job_id, cp) for job_id, kind, cp in rows}
        out = {}
        for src, kind in ENGINE_OF.items():
            if kind not in latest:
                continue
            job_id, cp = latest[kind]
            total = stored_source_count(cp)
            values = _scored.get(self.db, job_id)  # (position, sentiment) of the sources read so far
            if values and values[-1][0] > total:
                values = []  # the checkpoint went back (a job run again from an older one): read it again
            known = values[-1][0] if values else 0
            new = [(r.n, r.document) for r in stored_sources(self.db, job_id, cp, after=known) if r]
            if new:
                self._score([d for _, d in new])
                values += [(i, d.sentiment) for i, d in new]
                if not any(d.sentiment is None and (d.text or "").strip() for _, d in new):
                    _scored.put(self.db, job_id, values)  # unscored text (no model yet) is read again next time
            result = shares(v for _, v in values) if values else None
            if result is not None and result.scored:
                out[src] = result
        return out

    @staticmethod
    def _score(docs: list) -> None:
        from core.text.sentiment import score_documents

        score_documents(docs)

    def __call__(self, run_id: str | None) -> dict:
        """{source: SentimentShares} for every engine of the run that has scored sources; an engine
        missing from the answer is unknown. {} when nothing can be read."""
        if not run_id:
            return {}
        try:
            if self._sources_of is not None:
                raw = {src: (None, list(docs or [])) for src, docs in (self._sources_of(run_id) or {}).items()}
            elif self.db is not None:
                return self._from_db(run_id)
            else:
                return {}
            out = {}
            for src, (job_id, docs) in raw.items():
                shares = self._shares(job_id, docs)
                if shares is not None and shares.scored:
                    out[src] = shares
            return out
        except Exception as exc:  # noqa: BLE001 - a host without figures says "unknown"
            logger.warning("host: engine sentiment unavailable for run {}: {}: {}", run_id,
                           exc.__class__.__name__, exc)
            return {}

    def _shares(self, job_id: str | None, docs: list[dict]):
        if not docs:
            return None
        from core.corpus.documents import Document
        from core.text.sentiment import score_documents, shares

        last = docs[-1].get("doc_id") if isinstance(docs[-1], dict) else getattr(docs[-1], "doc_id", None)
        key = (job_id, len(docs), last) if job_id is not None else None
        with self._lock:
            if key is not None and key in self._cache:
                return self._cache[key]
        documents = [d if isinstance(d, Document) else Document.from_dict(d) for d in docs]
        score_documents(documents)
        result = shares([d.sentiment for d in documents])
        if key is not None:
            with self._lock:
                if len(self._cache) > 256:
                    self._cache.clear()
                self._cache[key] = result
        return result


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def sentiment_line(shares, zh: bool) -> str:
    """"正面 41.7%、中性 20.0%、负面 38.3%（n=60）" for one engine; "未知（尚无已评分的来源）" when None."""
    from core.text.sentiment import LABELS, LABELS_ZH

    if shares is None or not shares.scored:
        return "未知（尚无已评分的来源）" if zh else "unknown (no scored source yet)"
    if zh:
        return "、".join(f"{LABELS_ZH[k]} {_pct(shares.share(k))}" for k in LABELS) + f"（n={shares.scored}）"
    return ", ".join(f"{_pct(shares.share(k))} {k}" for k in LABELS) + f" (n={shares.scored})"
