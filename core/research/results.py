"""An engine's result, its paragraphs and its sources: the contract between the engines and their readers.

The engine (core/research/engine.py) writes them into the job's JSON, and every reader reads them
back through this module, never by key name:

    Job.result      EngineResult.to_dict()     the engine's answer when it completed
    Job.checkpoint  "structure" / "paragraphs"   the plan and each paragraph's state, so far
                    "sources_stored": n     how many of the job's stored sources it refers to
    job_items       list "sources": ResultSource.to_dict() per number n (core.work.checkpoints),
                    read with stored_sources(); older checkpoints hold them inline in "sources"

Readers: the report (core/reporting/inputs.py), the forum host's engine figures
(core/discussion/host.py), the engine pages' live panel (EngineProgress, load_engine_progress).
``from_dict`` is tolerant: a run stored by an older version, with keys missing or of the wrong
type, still loads (missing values take their defaults; a source that cannot be read is skipped).

Not to be confused with core/research/reasoning.py's ``Paragraph`` (a planned paragraph: index,
title, brief) and ``Source`` (a retrieved document while the engine runs): these are what the
engine hands on when it is done.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from core.corpus.documents import Document


def _int(x: Any, default: int = 0) -> int:
    try:
        return int(x)
    except (TypeError, ValueError):
        return default


def _str(x: Any) -> str:
    return x if isinstance(x, str) else ("" if x is None else str(x))


def _numbers(xs: Any) -> list[int]:
    """Citation numbers from a stored list (ints or digit strings; anything else dropped)."""
    out = []
    for n in xs if isinstance(xs, (list, tuple)) else []:
        if isinstance(n, bool):
            continue
        if isinstance(n, int) or (isinstance(n, str) and n.isdigit()):
            out.append(int(n))
    return out


@dataclass
class ResultSource:
    """A source an engine cites: its engine-local number (position in the engine's list + 1) and the document."""
    n: int
    document: Document

    def to_dict(self) -> dict[str, Any]:
        return self.document.as_dict()

    @property
    def media(self) -> "MediaPreview | None":
        return MediaPreview.of(self.document)

    @classmethod
    def from_dict(cls, n: int, d: Any) -> "ResultSource | None":
        if not isinstance(d, dict):
            return None
        d = {**d, "title": _str(d.get("title")), "content": _str(d.get("content"))}
        if not isinstance(d.get("extras"), dict):
            d.pop("extras", None)
        try:
            return cls(n, Document.from_dict(d))
        except (TypeError, ValueError, AttributeError):
            return None


def web_url(value: Any) -> str:
    """`value` if it is an absolute http(s) URL, else "" (a javascript:, data: or relative URL is dropped)."""
    from urllib.parse import urlsplit

    text = _str(value).strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    return text if parts.scheme.lower() in ("http", "https") and parts.netloc and not any(
        c.isspace() or ord(c) < 32 for c in text) else ""


@dataclass(frozen=True)
class MediaPreview:
    """An image or video result as a page previews it: the provider's thumbnail URL (shown as is, never
    fetched by the server) and the page it comes from. Both are http(s) URLs (web_url)."""
    kind: str       # image | video
    thumbnail: str
    link: str
    title: str = ""

    @classmethod
    def of(cls, doc: Document) -> "MediaPreview | None":
        """From a search provider's document (core.research.bocha / tavily keep the URLs in `extras`):
        an image's thumbnail (else the image itself) and its host page (else the image); a video's
        thumbnail or cover and its page. None for other kinds or without a usable thumbnail."""
        if doc.kind not in ("image", "video"):
            return None
        extras = doc.extras if isinstance(doc.extras, dict) else {}
        if doc.kind == "image":
            thumb = web_url(extras.get("thumbnail_url")) or web_url(doc.url)
            link = web_url(extras.get("host_page_url")) or web_url(doc.url) or thumb
        else:
            thumb = web_url(extras.get("thumbnail_url")) or web_url(extras.get("cover_url"))
            link = web_url(doc.url) or web_url(extras.get("content_url"))
        if not thumb or not link:
            return None
        return cls(doc.kind, thumb, link, _str(doc.title))


@dataclass
class ResultParagraph:
    """One finished paragraph: Markdown with [n] citations to the engine's sources."""
    index: int
    title: str = ""
    summary: str = ""
    sources: list[int] = field(default_factory=list)  # engine-local numbers this paragraph retrieved
    # the forum messages (host speech, analyst) its nodes read, by id; None: not recorded (older results)
    read: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "title": self.title, "summary": self.summary, "sources": list(self.sources),
                **({"read": list(self.read)} if self.read is not None else {})}

    @classmethod
    def from_dict(cls, d: Any, position: int = 0) -> "ResultParagraph | None":
        if not isinstance(d, dict):
            return None
        return cls(_int(d.get("index"), position), _str(d.get("title")), _str(d.get("summary")),
                   _numbers(d.get("sources")), _numbers(d["read"]) if "read" in d else None)

    @property
    def written(self) -> bool:
        return bool(self.summary.strip())


@dataclass
class EngineResult:
    """What a completed engine job returns (Job.result)."""
    engine: str
    mode: str = ""
    provider: str = ""
    report_md: str = ""
    paragraphs: list[ResultParagraph] = field(default_factory=list)
    n_sources: int = 0
    search_errors: list[Any] = field(default_factory=list)
    fallbacks: int = 0
    fallback_kinds: dict[str, int] = field(default_factory=dict)  # fallbacks by LLM error kind ('auth', 'parse'...)

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "mode": self.mode, "provider": self.provider, "report_md": self.report_md,
                "paragraphs": [p.to_dict() for p in self.paragraphs], "n_sources": self.n_sources,
                "search_errors": list(self.search_errors), "fallbacks": self.fallbacks,
                "fallback_kinds": dict(self.fallback_kinds)}

    @classmethod
    def from_dict(cls, d: Any, engine: str = "") -> "EngineResult":
        d = d if isinstance(d, dict) else {}
        paragraphs = [p for i, x in enumerate(d.get("paragraphs") or [])
                      if (p := ResultParagraph.from_dict(x, i)) is not None]
        errors = d.get("search_errors")
        kinds = d.get("fallback_kinds")
        return cls(_str(d.get("engine")) or engine, _str(d.get("mode")), _str(d.get("provider")),
                   _str(d.get("report_md")), paragraphs, _int(d.get("n_sources")),
                   list(errors) if isinstance(errors, list) else [], _int(d.get("fallbacks")),
                   {str(k): _int(v) for k, v in kinds.items()} if isinstance(kinds, dict) else {})


# -- the checkpoint's parts a reader may use -------------------------------------------------------

def sources_to_json(sources: Iterable[ResultSource]) -> list[dict[str, Any]]:
    """The checkpoint's "sources": in number order (position + 1 = number)."""
    return [s.to_dict() for s in sorted(sources, key=lambda s: s.n)]


def checkpoint_sources(cp: Any) -> list[ResultSource | None]:
    """The engine's sources so far, by position (entry n - 1 is number n; None where unreadable)."""
    raw = (cp or {}).get("sources") if isinstance(cp, dict) else None
    return [ResultSource.from_dict(i, d) for i, d in enumerate(raw if isinstance(raw, list) else [], 1)]


def stored_source_count(cp: Any) -> int:
    """How many sources an engine job's checkpoint holds: its own "sources" list (older versions),
    else the `sources_stored` count of the job's stored sources."""
    if isinstance(cp, dict) and isinstance(cp.get("sources"), list):
        return len(cp["sources"])
    return _int(cp.get("sources_stored"), 0) if isinstance(cp, dict) else 0


def stored_sources(source: Any, job_id: str, cp: Any, after: int = 0) -> list[ResultSource | None]:
    """An engine job's sources so far, as checkpoint_sources: from the job's stored "sources" list
    (core.work.checkpoints; the checkpoint's `sources_stored` says how many belong to it), or from
    the checkpoint itself when an older version wrote them there. `source`: a Session or a Database.
    `after`: only the sources numbered above it (a stored source never changes once written)."""
    if isinstance(cp, dict) and isinstance(cp.get("sources"), list):
        return checkpoint_sources(cp)[after:]
    upto = stored_source_count(cp)
    if upto <= after:
        return []
    from core.work.checkpoints import read_items

    return [ResultSource.from_dict(i, d)
            for i, d in enumerate(read_items(source, job_id, "sources", upto=upto, after=after), after + 1)]


def checkpoint_paragraphs(cp: Any) -> tuple[list[ResultParagraph], int]:
    """The paragraphs an unfinished engine has written so far, in plan order, and how many it planned."""
    cp = cp if isinstance(cp, dict) else {}
    structure = [p for p in cp.get("structure") or [] if isinstance(p, dict)]
    states = cp.get("paragraphs") if isinstance(cp.get("paragraphs"), dict) else {}
    out = []
    for i, p in enumerate(structure):
        state = states.get(str(p.get("index"))) or {}
        para = ResultParagraph.from_dict({"index": p.get("index", i), "title": p.get("title", ""),
                                          "summary": state.get("summary") if isinstance(state, dict) else "",
                                          "sources": state.get("sources") if isinstance(state, dict) else [],
                                          "read": state.get("read") or [] if isinstance(state, dict) else []}, i)
        if para is not None and para.written:
            out.append(para)
    return out, len(structure)


# -- an engine job's progress, as its live panel shows it ------------------------------------------

@dataclass(frozen=True)
class ParagraphProgress:
    """One planned paragraph of an engine job so far: its state in the checkpoint."""
    index: int
    title: str
    summary: str = ""
    reflections: int = 0  # reflection rounds done
    n_sources: int = 0    # sources this paragraph retrieved
    done: bool = False

    @property
    def stage(self) -> str:
        return "done" if self.done else ("summarised" if self.summary else "searching")


@dataclass(frozen=True)
class EngineProgress:
    """An engine job as far as it got: the plan and each paragraph's state, the report once
    formatted, search errors, and the sources so far. `stamp` is the job's stamp
    (core.work.runs.JobSummary.stamp) at the read: unchanged stamp, unchanged progress."""
    paragraphs: tuple[ParagraphProgress, ...] = ()
    report_md: str = ""
    search_errors: tuple[str, ...] = ()
    sources: tuple[ResultSource, ...] = ()
    stamp: tuple = ()

    @classmethod
    def from_job(cls, checkpoint: Any, result: Any, engine: str = "", sources: Iterable[ResultSource | None] = (),
                 stamp: tuple = ()) -> "EngineProgress":
        """From the job's checkpoint (as EngineRun._save writes it), its result when it completed
        (EngineResult), and its sources (stored_sources; unreadable ones dropped)."""
        cp = checkpoint if isinstance(checkpoint, dict) else {}
        done = EngineResult.from_dict(result, engine)
        states = cp.get("paragraphs") if isinstance(cp.get("paragraphs"), dict) else {}
        paragraphs = []
        for i, p in enumerate(x for x in cp.get("structure") or [] if isinstance(x, dict)):
            index = _int(p.get("index"), i)
            state = states.get(str(index))
            state = state if isinstance(state, dict) else {}
            retrieved = state.get("sources")
            paragraphs.append(ParagraphProgress(index, _str(p.get("title")), _str(state.get("summary")),
                                                _int(state.get("reflections_done")),
                                                len(retrieved) if isinstance(retrieved, list) else 0,
                                                bool(state.get("done"))))
        errors = done.search_errors or cp.get("search_errors")
        return cls(tuple(paragraphs), done.report_md or _str(cp.get("report_md")),
                   tuple(_str(e) for e in errors) if isinstance(errors, list) else (),
                   tuple(s for s in sources if s is not None), tuple(stamp))


def load_engine_progress(db: Any, job_id: str, engine: str = "",
                         known: EngineProgress | None = None) -> EngineProgress | None:
    """One engine job's progress, read now: its checkpoint, result and stored sources (the heavy
    part of a job; a poller reads it again only when the job's stamp changed). `known`: the view
    an earlier read of the same job gave; its sources are kept and only newer ones read, within the
    same attempt (stored sources are append-only). None if there is no such job."""
    from sqlalchemy import select

    from core.infra.models import Job
    from core.work.runs import job_stamp

    with db.session() as s:
        row = s.execute(select(Job.status, Job.attempt, Job.checkpoint_seq, Job.checkpoint, Job.result)
                        .where(Job.id == job_id)).first()
        if row is None:
            return None
        stamp = job_stamp(row.status, row.attempt, row.checkpoint_seq)
        kept = known.sources if known is not None and known.stamp[1:2] == stamp[1:2] else ()
        sources = [*kept, *stored_sources(s, job_id, row.checkpoint, after=kept[-1].n if kept else 0)]
    return EngineProgress.from_job(row.checkpoint, row.result, engine, sources, stamp)
