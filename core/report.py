"""The report engine: one run's engine findings and forum discussion → one report (HTML, Markdown, JSON).

A report is a supervisor job of kind "report" (leases, heartbeats, cancel and resume come from
the supervisor) plus a Report row that pages read:

    status   pending → running → completed | error | cancelled
    stage    waiting → choosing type → outline → sections → assemble → render   (then "done")

Events (ctx.emit, source "report", read by cursor from the event log; every payload carries
`report_id`): report.queued, report.started, report.waiting, report.stage, report.type,
report.outline, report.section, report.completed, report.error, report.cancelled,
report.interrupted.

Inputs are ONLY this run's: the latest job of each engine kind of the run (its result and the
numbered sources in its checkpoint) and the run's forum transcript. Never files, never another
run. The automatic report waits until every engine job of the run has ended and errors if one
did not complete; a partial report (asked for by the user) starts at once, uses what is there
(finished paragraphs of unfinished engines included) and opens with a banner naming what is
missing.

Sections are written in parallel (a bounded thread pool): by the REPORT_ENGINE LLM, one call per
section with the relevant engine paragraphs, host speeches and numbered sources; or offline, by
extractive assembly of the engines' findings with statistics. A section whose LLM call fails is
marked failed, shows a visible note and an offline extract, and the rest completes.

Every figure comes from the listed sources and carries its base ("负面 38.3%（23/60 条可判定来源）");
sentiment is the one the engines stored on each source (core.text.sentiment: positive / neutral /
negative), and only a source without one is scored, from the same text. Findings are the engines'
lines; answers to the forum host and host speeches are forum material, shown only in the forum's
own section. Actors are the sources' authors and sites. Quote lists show one post per
near-duplicate cluster (core.text.dedup) and say "N 条（M 条不重复）". Before rendering, every
section goes through the claims check (core.reporting.claims): the JSON carries the claims and
their count, the HTML shows the count at the top and marks unsupported sentences, the Markdown
marks them with ⚠. A run whose coverage (params["coverage"]) is insufficient opens with its banner.

Everything from the web, the corpus and the LLM is untrusted: HTML is rendered by jinja2 with
autoescape, Markdown by a small renderer that escapes everything first, then nh3 with a short
tag list (only href on <a>, http/https/mailto or a local #src-N anchor). The HTML has no script,
no external fetch (a CSP meta forbids both), inline CSS and inline SVG charts. Files are written
to <data_dir>/reports/<run_id>/<slug>-<report_id>.{html,md,json}, each to a temporary file first
and then os.replace'd, so a failure never leaves a half-written file in place of a good one.
"""
from __future__ import annotations

import html as _html
import json
import os
import re
import secrets
import threading
import time
import unicodedata
import urllib.parse
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

import jinja2
import nh3
from loguru import logger
from markupsafe import Markup
from sqlalchemy import delete, select, update

from core.reporting import charts
from core.corpus.documents import Document
from core.research.engine import ENGINES
from core.infra.events import EventLog, EventRecord
from core.forum import MessageView, transcript
from core.work.jobs import (
    CANCELLED,
    CANCELLING,
    COMPLETED,
    FAILED,
    INTERRUPTED,
    PENDING,
    RUNNING,
    JobCancelled,
    JobContext,
    JobSpec,
    LeaseLost,
)
from core.infra.models import Job, Report, Run, utcnow
from core.research.offline import platform_name
from core.infra.redact import redact
from core.reporting.text import (
    CITE_GROUP_RE,
    MIN_SAMPLE,
    MIN_TREND,
    PLATFORMS_SHOWN,
    actors_line,
    cited,
    forum_section,
    is_forum_exchange,
    lead_lines,
    pct,
    plain,
    risk_line,
    sentiment_line,
    src_label,
    strip_forum_exchanges,
    trend_line,
)
from core.reporting.types import AUTO, REPORT_TYPES, ReportType, choose_type_by_rules, normalise_type
from core.reporting import claims as claimcheck
from core.reporting.quotes import drop_repeated_quotes
from core.research.coverage import Coverage
from core.text.sentiment import LABELS_ZH, SentimentShares, label_of, score_documents
from core.text.dedup import cluster as dedup_cluster
from core.text.keywords import clean_text, extract_keywords, has_cjk, split_sentences
from core.infra.tracing import child_trace_id, trace_scope

KIND = "report"
# Report row statuses
R_PENDING, R_RUNNING, R_COMPLETED, R_ERROR, R_CANCELLED = "pending", "running", "completed", "error", "cancelled"
REPORT_STATUSES = (R_PENDING, R_RUNNING, R_COMPLETED, R_ERROR, R_CANCELLED)
REPORT_OPEN = (R_PENDING, R_RUNNING)
REPORT_TERMINAL = (R_COMPLETED, R_ERROR, R_CANCELLED)
STAGES = ("waiting", "choosing type", "outline", "sections", "assemble", "render")
STAGE_DONE = "done"
STAGE_PROGRESS = {"waiting": 0.0, "choosing type": 0.05, "outline": 0.1, "sections": 0.15, "assemble": 0.88,
                  "render": 0.94, STAGE_DONE: 1.0}
REPORT_EVENT_TYPES = ("report.queued", "report.started", "report.waiting", "report.stage", "report.type",
                      "report.outline", "report.section", "report.completed", "report.error", "report.cancelled",
                      "report.interrupted")

KEEP_REPORTS = 20          # newest Report rows kept per run; older rows and their files are deleted
SECTION_CONCURRENCY = 6    # sections written at once (the per-provider LLM limit also applies)
WAIT_POLL = 0.5            # seconds between looks at the engines while waiting
OTHER_JOBS_GRACE = 240.0   # after the engines end, how long to wait at most for other jobs (the forum monitor)
UNITS_PER_SECTION = 6
MAX_PROMPT_FINDINGS = 12_000
ENGINE_ORDER = tuple(ENGINES)
ENGINE_LABELS = {"query": "Query", "media": "Media", "insight": "Insight"}
_OPEN_JOB_STATES = (PENDING, RUNNING, CANCELLING)
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_CTRL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
TEMPLATES_DIR = Path(__file__).resolve().parent / "reporting" / "templates"


class ReportSkipped(Exception):
    """The automatic report does not apply (an engine was stopped); the job ends cancelled."""


class ReportError(ValueError):
    """A report that cannot be requested or written; the message says why and what to do."""


# =============================================================================================
# Inputs: this run's engines and forum, nothing else
# =============================================================================================

@dataclass
class EngineInput:
    engine: str
    job_id: str | None
    status: str  # a job status, or "absent" when the run has no job of this engine
    trace_id: str = ""
    mode: str = ""
    error: str | None = None
    paragraphs: list[dict] = field(default_factory=list)  # {index, title, summary, sources}
    sources: list[dict] = field(default_factory=list)     # Document dicts; engine-local number = position + 1
    report_md: str = ""
    from_checkpoint: bool = False  # paragraphs taken from an unfinished job's checkpoint (partial reports)
    total_paragraphs: int = 0      # planned paragraphs, when known

    @property
    def label(self) -> str:
        return ENGINE_LABELS.get(self.engine, self.engine.title())

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def produced(self) -> bool:
        return any((p.get("summary") or "").strip() for p in self.paragraphs) or bool(self.sources)


@dataclass
class ReportInputs:
    run_id: str
    topic: str
    run_trace_id: str
    run_status: str
    run_params: dict
    engines: dict[str, EngineInput]
    forum: list[MessageView]
    other_open_jobs: list[str] = field(default_factory=list)

    @property
    def zh(self) -> bool:
        return has_cjk(self.topic) or not self.topic.strip()

    def engine_list(self) -> list[EngineInput]:
        return [self.engines[e] for e in self.engines]

    def host_speeches(self) -> list[MessageView]:
        return [m for m in self.forum if m.type == "host"]


def _expected_engines(params: dict, present: Iterable[str]) -> list[str]:
    chosen = [e for e in (params.get("engines") or []) if e in ENGINES]
    present = set(present)
    expected = [e for e in ENGINE_ORDER if e in chosen or e in present]
    return expected or list(ENGINE_ORDER)


def _checkpoint_paragraphs(cp: dict) -> tuple[list[dict], int]:
    structure = cp.get("structure") or []
    states = cp.get("paragraphs") or {}
    out = []
    for p in structure:
        state = states.get(str(p.get("index"))) or {}
        if (state.get("summary") or "").strip():
            out.append({"index": p.get("index"), "title": p.get("title", ""), "summary": state["summary"],
                        "sources": list(state.get("sources") or [])})
    return out, len(structure)


def report_inputs(db, run_id: str, *, include_unfinished: bool = False) -> ReportInputs:
    """This run's inputs: the latest job of each engine kind of THIS run and this run's forum transcript.

    With include_unfinished, an engine that has not completed contributes the paragraphs its
    checkpoint already holds (for partial reports)."""
    with db.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise ReportError(f"no run {run_id}")
        topic, trace, status, params = run.topic or "", run.trace_id or "", run.status, dict(run.params or {})
        jobs = s.scalars(select(Job).where(Job.run_id == run_id).order_by(Job.created_at, Job.id)).all()
        latest: dict[str, Job] = {}
        others = []
        for j in jobs:
            if j.kind in ENGINES:
                latest[j.kind] = j  # ascending order: the last one of a kind is the latest
            elif j.kind != KIND and j.status in _OPEN_JOB_STATES:
                others.append(j.name or j.kind)
        engines: dict[str, EngineInput] = {}
        for e in _expected_engines(params, latest):
            job = latest.get(e)
            if job is None:
                engines[e] = EngineInput(e, None, "absent")
                continue
            cp = dict(job.checkpoint or {})
            ei = EngineInput(e, job.id, job.status, trace_id=job.trace_id or "", error=job.error,
                             sources=list(cp.get("sources") or []))
            if job.status == COMPLETED and isinstance(job.result, dict):
                r = job.result
                ei.mode = str(r.get("mode") or "")
                ei.report_md = str(r.get("report_md") or "")
                ei.paragraphs = [dict(p) for p in (r.get("paragraphs") or []) if isinstance(p, dict)]
                ei.total_paragraphs = len(ei.paragraphs)
            elif include_unfinished:
                ei.paragraphs, ei.total_paragraphs = _checkpoint_paragraphs(cp)
                ei.from_checkpoint = bool(ei.paragraphs)
            else:
                ei.sources = []
            engines[e] = ei
    forum = transcript(db, run_id, limit=5000)
    return ReportInputs(run_id, topic, trace, status, params, engines, forum, others)


def inputs_ready(inputs: ReportInputs) -> bool:
    """True when every engine of the run completed: the automatic report may be written."""
    return bool(inputs.engines) and all(e.completed for e in inputs.engines.values())


def missing_inputs(inputs: ReportInputs) -> list[str]:
    """What a report of these inputs lacks, in words (the partial report's banner)."""
    zh = inputs.zh
    out = []
    for e in inputs.engine_list():
        name = f"{e.label} 引擎" if zh else f"{e.label} engine"
        if e.status == "absent":
            out.append(f"{name}：本次运行没有该引擎的任务" if zh else f"{name}: this run has no job for it")
        elif not e.completed:
            state = {RUNNING: "仍在运行", PENDING: "尚未开始", CANCELLING: "正在取消", FAILED: "失败",
                     CANCELLED: "已取消", INTERRUPTED: "已中断"}.get(e.status, e.status) if zh else e.status
            got = ""
            if e.from_checkpoint:
                got = (f"（已采用已完成的 {len(e.paragraphs)}/{e.total_paragraphs or '?'} 段）" if zh else
                       f" (using the {len(e.paragraphs)} of {e.total_paragraphs or '?'} paragraphs finished so far)")
            err = f"：{redact(e.error)[:160]}" if zh and e.error else (f": {redact(e.error)[:160]}" if e.error else "")
            out.append(f"{name}：{state}{err}{got}" if zh else f"{name}: {state}{err}{got}")
        elif not e.produced:
            out.append(f"{name}：已完成但没有产出任何内容" if zh else f"{name}: completed but produced nothing")
    if not inputs.forum:
        out.append("论坛：没有任何发言" if zh else "forum: no messages")
    elif not inputs.host_speeches():
        out.append("论坛：没有主持人发言" if zh else "forum: no host speech")
    return out


def _engine_states(db, run_id: str) -> tuple[dict[str, str], list[str], dict]:
    """Cheap status look-up while waiting: latest status per engine kind, open other jobs, run params."""
    with db.session() as s:
        params = s.scalar(select(Run.params).where(Run.id == run_id)) or {}
        rows = s.execute(select(Job.kind, Job.name, Job.status).where(Job.run_id == run_id)
                         .order_by(Job.created_at, Job.id)).all()
    latest: dict[str, str] = {}
    others = []
    for kind, name, status in rows:
        if kind in ENGINES:
            latest[kind] = status
        elif kind != KIND and status in _OPEN_JOB_STATES:
            others.append(name or kind)
    return latest, others, dict(params)


# =============================================================================================
# Material: global source numbers, findings as units, statistics
# =============================================================================================

_CITE_GROUP_RE = CITE_GROUP_RE
_NUM_RE = re.compile(r"\d{1,4}")


def renumber(text: str, mapping: dict[int, int]) -> str:
    """[n] (engine-local) → [g] (report-wide); unknown numbers are dropped, not mislinked."""
    def sub(m: re.Match) -> str:
        nums = [mapping.get(int(n)) for n in _NUM_RE.findall(m.group(1))]
        nums = [n for n in dict.fromkeys(nums) if n is not None]
        return "".join(f"[{n}]" for n in nums)
    return _CITE_GROUP_RE.sub(sub, text or "")


def safe_url(url: Any) -> str | None:
    """An http(s) URL fit to be a link, or None."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > 2000 or any(c in url for c in ' \t\r\n"\'<>`\\') or _CTRL_RE.search(url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def _plain(text: Any, limit: int | None = None) -> str:
    return plain(text, limit)


@dataclass
class Unit:
    """One finding: a line of an engine paragraph (citations renumbered). Lines that answer the
    forum host, and the host's speeches, are forum material and never findings."""
    text: str
    plain: str
    engine: str
    paragraph_title: str
    cites: list[int]
    kind: str  # bullet | ranked | text
    order: int
    first_paragraph: bool = False


@dataclass
class Material:
    topic: str
    zh: bool
    sources: list[dict]
    paragraphs: list[dict]
    units: list[Unit]
    forum: list[MessageView]
    stats: dict
    texts: dict[int, str] = field(default_factory=dict)  # source n → its full text (title and content)

    @property
    def by_n(self) -> dict[int, dict]:
        return {s["n"]: s for s in self.sources}


def _source_document(d: dict) -> Document | None:
    try:
        return Document.from_dict(d)
    except (TypeError, ValueError, AttributeError):
        return None


def _number_sources(inputs: ReportInputs) -> tuple[list[dict], dict[str, dict[int, int]], dict[int, Document]]:
    sources: list[dict] = []
    docs: dict[int, Document] = {}
    seen: dict[str, dict] = {}
    maps: dict[str, dict[int, int]] = {}
    for e in inputs.engine_list():
        local: set[int] = set()
        for p in e.paragraphs:
            local.update(int(n) for n in (p.get("sources") or []) if isinstance(n, int) or str(n).isdigit())
            local.update(cited(p.get("summary") or ""))
        mapping: dict[int, int] = {}
        for n in sorted(local):
            if not 0 < n <= len(e.sources):
                continue
            d = e.sources[n - 1] if isinstance(e.sources[n - 1], dict) else {}
            key = str(d.get("doc_id") or d.get("url") or f"{d.get('platform')}|{d.get('title')}|{str(d.get('content'))[:80]}")
            if key in seen:
                entry = seen[key]
                if e.engine not in entry["engines"]:
                    entry["engines"].append(e.engine)
            else:
                content = _plain(d.get("content"), 400)
                extras = d.get("extras") if isinstance(d.get("extras"), dict) else {}
                entry = {"n": len(sources) + 1, "doc_id": plain(d.get("doc_id"), 200), "title": _plain(d.get("title"), 200) or _plain(d.get("content"), 60),
                         "snippet": content, "url": str(d.get("url") or "")[:2000],
                         "link": safe_url(d.get("url")), "platform": _plain(d.get("platform"), 40),
                         "kind": _plain(d.get("kind"), 20), "author": _plain(d.get("author"), 80),
                         "site": _plain(extras.get("site"), 120),
                         "published": d.get("published") if isinstance(d.get("published"), str) else None,
                         "likes": _int(d.get("likes")), "comments": _int(d.get("comments")),
                         "shares": _int(d.get("shares")), "views": _int(d.get("views")),
                         "hotness": float(d.get("hotness") or 0.0), "sentiment": _float(d.get("sentiment")),
                         "sentiment_label": None, "sentiment_by": None, "duplicate_of": None,
                         "provider": _plain(d.get("source"), 20), "engines": [e.engine]}
                seen[key] = entry
                sources.append(entry)
                doc = _source_document(d)
                if doc is not None:
                    docs[entry["n"]] = doc
            mapping[n] = entry["n"]
        maps[e.engine] = mapping
    return sources, maps, docs


def _int(x: Any) -> int:
    try:
        return max(0, int(x or 0))
    except (TypeError, ValueError):
        return 0


def _float(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


MAX_REPORT_SCORED = 2000  # sources without a stored sentiment the report scores, at most


def _fill_sentiment(sources: list[dict], docs: dict[int, Document]) -> None:
    """The sentiment of each source is the one the engines stored on it (``Document.sentiment``,
    scored from ``Document.text``). Only a source with none is scored here, from the same text
    (title and full content as the checkpoint holds it) through the same scorer. Then each source
    gets its class (positive / neutral / negative, or None when unknown)."""
    for s in sources:
        if s["sentiment"] is not None:
            s["sentiment_by"] = "engine"
    missing = [(s, docs[s["n"]]) for s in sources if s["sentiment"] is None and s["n"] in docs][:MAX_REPORT_SCORED]
    if missing:
        for _, d in missing:
            d.sentiment = None
        try:
            score_documents([d for _, d in missing])
        except Exception as exc:  # noqa: BLE001 - sources then stay unscored ("unknown")
            logger.warning("report: sentiment unavailable, sources stay unscored: {}", exc)
        for s, d in missing:
            if d.sentiment is not None:
                s["sentiment"] = round(float(d.sentiment), 4)
                s["sentiment_by"] = "report"
    labels: dict[float, str | None] = {}
    for s in sources:
        p = s["sentiment"]
        if p is not None and p not in labels:
            labels[p] = label_of(p)
        s["sentiment_label"] = labels[p] if p is not None else None


def _mark_duplicates(sources: list[dict], texts: dict[int, str]) -> None:
    """``duplicate_of``: the first source of a near-duplicate cluster (core.text.dedup), else None."""
    if len(sources) < 2:
        return
    try:
        labels = dedup_cluster([texts.get(s["n"]) or f"{s['title']}\n{s['snippet']}" for s in sources], threshold=0.7)
    except Exception as exc:  # noqa: BLE001 - without clustering every source counts as distinct
        logger.warning("report: near-duplicate clustering failed: {}", exc)
        return
    for i, (s, label) in enumerate(zip(sources, labels)):
        s["duplicate_of"] = sources[label]["n"] if label != i else None


# The engines' own statistics lines: the report computes its statistics over all engines instead.
_STATS_LINE_RE = re.compile(r"^\*\*(统计|Statistics|热度最高|Top posts by hotness|主要传播者|Main spreaders|分平台|"
                            r"By platform|内容形态|Formats|评论|Comments|按时间分布|Over time)\*\*")
_HEADER_LINE_RE = re.compile(r"^.{0,100}[:：]\s*$")
_BULLET_RE = re.compile(r"^[-*+]\s+(.*)$")
_RANKED_RE = re.compile(r"^\d{1,3}[.)、]\s*(.*)$")


def _units_of(paragraphs: list[dict]) -> list[Unit]:
    units: list[Unit] = []
    order = 0
    first_of: dict[str, int] = {}
    for p in paragraphs:
        first_of.setdefault(p["engine"], p["pos"])
    for p in paragraphs:
        for raw in (p["summary"] or "").splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or _STATS_LINE_RE.match(line) or _HEADER_LINE_RE.match(line):
                continue
            if line.startswith("*补充检索") or line.startswith("*Follow-up search") or is_forum_exchange(line):
                continue
            kind, text = "text", line
            if m := _BULLET_RE.match(line):
                kind, text = "bullet", m.group(1)
            elif m := _RANKED_RE.match(line):
                kind, text = "ranked", m.group(1)
            pieces = [text] if kind != "text" or len(text) <= 220 else split_sentences(text, max_chars=220)
            for piece in pieces:
                if is_forum_exchange(piece):
                    continue
                plain_text = _CITE_GROUP_RE.sub("", piece)
                plain_text = re.sub(r"[*_`]", "", plain_text).strip()
                if len(plain_text) < 4:
                    continue
                units.append(Unit(piece.strip(), plain_text, p["engine"], p["title"], cited(piece), kind, order,
                                  first_paragraph=p["pos"] == first_of[p["engine"]]))
                order += 1
    # the engines often report the same post: keep one unit per near-duplicate cluster, with every citation
    if not units:
        return []
    try:
        labels = dedup_cluster([u.plain for u in units], threshold=0.7)
    except Exception as exc:  # noqa: BLE001 - then only exact repeats are merged
        logger.warning("report: near-duplicate clustering of findings failed: {}", exc)
        first: dict[str, int] = {}
        labels = [first.setdefault(u.plain, i) for i, u in enumerate(units)]
    kept: list[Unit] = []
    for i, (u, label) in enumerate(zip(units, labels)):
        if label == i:
            kept.append(u)
            continue
        head = units[label]
        for n in u.cites:
            if n not in head.cites:
                head.cites.append(n)
                head.text += f" [{n}]"
    return kept


def _day(published: str | None) -> str | None:
    if not published or len(published) < 10:
        return None
    day = published[:10]
    return day if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) else None


RECENT_DAYS = 7
RISK_RULE_PCT = {"high": 50.0, "medium": 30.0}   # negative share (of scored sources) for a risk level
WEB_KINDS = ("news", "web", "image", "video")


def _distinct(sources: Iterable[dict]) -> int:
    return len({s["duplicate_of"] or s["n"] for s in sources})


def _first_of_clusters(ranked: Iterable[dict], k: int) -> list[int]:
    """The first k sources of a ranking, one per near-duplicate cluster."""
    out: list[int] = []
    seen: set[int] = set()
    for s in ranked:
        c = s["duplicate_of"] or s["n"]
        if c in seen:
            continue
        seen.add(c)
        out.append(s["n"])
        if len(out) == k:
            break
    return out


def _actors(sources: list[dict]) -> list[dict]:
    """Accounts (the sources' authors) and sites (the site of a web result), ranked by the number
    of sources, then by total hotness."""
    table: dict[tuple[str, str], dict] = {}
    for s in sources:
        keys = []
        if s["author"]:
            keys.append(("account", s["author"]))
        web = s["kind"] in WEB_KINDS or s["provider"] not in ("", "corpus")
        if s["site"] and web:
            keys.append(("site", s["site"]))
        for kind, name in keys:
            a = table.setdefault((kind, name), {"name": name, "type": kind, "sources": 0, "hotness": 0.0,
                                                "platforms": Counter(), "cites": []})
            a["sources"] += 1
            a["hotness"] += s["hotness"]
            a["platforms"][s["platform"]] += 1
            a["cites"].append(s["n"])
    ranked = sorted(table.values(), key=lambda a: (-a["sources"], -a["hotness"], a["name"]))
    return [{"name": a["name"], "type": a["type"], "sources": a["sources"], "hotness": int(round(a["hotness"])),
             "platform": a["platforms"].most_common(1)[0][0] if a["platforms"] else "", "cites": a["cites"][:10]}
            for a in ranked]


def _recent(days: list[dict]) -> dict | None:
    if not days:
        return None
    last = datetime.fromisoformat(days[-1]["day"]).date()
    cut = (last - timedelta(days=RECENT_DAYS - 1)).isoformat()
    prev_cut = (last - timedelta(days=2 * RECENT_DAYS - 1)).isoformat()
    n = sum(d["n"] for d in days if d["day"] >= cut)
    previous = sum(d["n"] for d in days if prev_cut <= d["day"] < cut)
    direction = "steady"
    if n >= 1.5 * max(previous, 1) and n - previous >= 3:
        direction = "rising"
    elif previous >= 1.5 * max(n, 1) and previous - n >= 3:
        direction = "falling"
    return {"days": RECENT_DAYS, "until": days[-1]["day"], "from": cut, "n": n, "previous": previous,
            "direction": direction}


def _risk(sentiment: dict, recent: dict | None, dated: int) -> dict:
    scored = sentiment["scored"]
    out = {"level": None, "rule_pct": dict(RISK_RULE_PCT), "raised": False}
    if scored < MIN_SAMPLE:
        return out
    share = 100.0 * sentiment["negative"] / scored
    level = "high" if share >= RISK_RULE_PCT["high"] else "medium" if share >= RISK_RULE_PCT["medium"] else "low"
    if (recent and dated >= MIN_TREND and level != "high" and share >= RISK_RULE_PCT["medium"]
            and recent["n"] >= 2 * max(recent["previous"], 1)):
        level, out["raised"] = "high", True
    out["level"] = level
    return out


def _statistics(inputs: ReportInputs, sources: list[dict], paragraphs: list[dict]) -> dict:
    """Every figure the report states, computed from the listed sources (and the run's forum)."""
    zh = inputs.zh
    n = len(sources)
    platforms = Counter(s["platform"] or "unknown" for s in sources)
    days: dict[str, dict] = {}
    for s in sources:
        d = _day(s["published"])
        if not d:
            continue
        row = days.setdefault(d, {"day": d, "n": 0, "scored": 0, "positive": 0, "neutral": 0, "negative": 0})
        row["n"] += 1
        if s["sentiment_label"]:
            row["scored"] += 1
            row[s["sentiment_label"]] += 1
    ordered_days = [days[d] for d in sorted(days)]
    dated = sum(d["n"] for d in ordered_days)
    by_label = {k: [s for s in sources if s["sentiment_label"] == k] for k in LABELS_ZH}
    shares_ = SentimentShares(len(by_label["positive"]), len(by_label["neutral"]), len(by_label["negative"]),
                              sum(1 for s in sources if s["sentiment_label"] is None))
    sentiment = {**shares_.as_dict(),
                 "pct": {k: pct(shares_.count(k), shares_.scored) for k in LABELS_ZH} if shares_.scored else {},
                 "distinct": {k: _distinct(v) for k, v in by_label.items()},
                 "stored": sum(1 for s in sources if s["sentiment_by"] == "engine"),
                 "scored_by_report": sum(1 for s in sources if s["sentiment_by"] == "report")}
    engaged = [s for s in sources if s["hotness"] > 0]
    by_hot = sorted(engaged, key=lambda s: (-s["hotness"], s["n"]))
    negatives = sorted(by_label["negative"], key=lambda s: (s["sentiment"], s["n"]))
    positives = sorted(by_label["positive"], key=lambda s: (-s["sentiment"], s["n"]))
    actors = _actors(sources)
    texts = [clean_text(f"{s['title']}\n{s['snippet']}") for s in sources]
    try:
        kindex = extract_keywords([t for t in texts if t], top_k=12, exclude=[inputs.topic]) if texts else None
        keywords = [{"word": w, "docs": len(kindex.docs.get(w, ()))} for w in kindex.top(12)] if kindex else []
    except Exception as exc:  # noqa: BLE001 - keywords are a garnish
        logger.warning("report: keyword extraction failed: {}", exc)
        keywords = []
    forum_by_source = Counter(m.source for m in inputs.forum)
    stamps = [m.timestamp for m in inputs.forum]
    recent = _recent(ordered_days)
    peak = max(ordered_days, key=lambda d: (d["n"], d["day"])) if ordered_days else None
    engines = {e.engine: {"status": e.status, "paragraphs": len(e.paragraphs), "sources": len(e.sources),
                          "from_checkpoint": e.from_checkpoint} for e in inputs.engine_list()}
    return {
        "language": "zh" if zh else "en",
        "n_sources": n,
        "n_distinct": _distinct(sources),
        "n_paragraphs": len(paragraphs),
        "n_engines_active": sum(1 for v in engines.values() if v["paragraphs"]),
        "platforms": dict(platforms.most_common()),
        "platform_rows": [{"platform": p, "name": platform_name(p, zh), "n": c, "pct": pct(c, n)}
                          for p, c in platforms.most_common()],
        "platforms_other": ({"platforms": len(platforms) - PLATFORMS_SHOWN,
                             "n": sum(c for _, c in platforms.most_common()[PLATFORMS_SHOWN:]),
                             "pct": pct(sum(c for _, c in platforms.most_common()[PLATFORMS_SHOWN:]), n)}
                            if len(platforms) > PLATFORMS_SHOWN else None),
        "days": ordered_days,
        "dated": dated,
        "undated": n - dated,
        "span": [ordered_days[0]["day"], ordered_days[-1]["day"]] if ordered_days else None,
        "peak": {"day": peak["day"], "n": peak["n"]} if peak else None,
        "recent": recent,
        "sentiment": sentiment,
        "min_sample": MIN_SAMPLE,
        "min_trend": MIN_TREND,
        "risk": _risk(sentiment, recent, dated),
        "hotness_formula": {"likes": 1, "comments": 5, "shares": 10, "views": 0.1},
        "engaged": len(engaged),
        "engaged_distinct": _distinct(engaged),
        "top_posts": _first_of_clusters(by_hot, 5),
        "negative_posts": _first_of_clusters(negatives, 3),
        "positive_posts": _first_of_clusters(positives, 3),
        "actors": actors[:20],
        "actors_total": len(actors),
        "keywords": keywords,
        "engines": engines,
        "forum": {"messages": len(inputs.forum), "host": len(inputs.host_speeches()),
                  "by_source": dict(forum_by_source.most_common()),
                  "first": min(stamps).isoformat() if stamps else None,
                  "last": max(stamps).isoformat() if stamps else None},
    }


def build_material(inputs: ReportInputs) -> Material:
    sources, maps, docs = _number_sources(inputs)
    _fill_sentiment(sources, docs)
    texts = {n: d.text for n, d in docs.items()}
    _mark_duplicates(sources, texts)
    paragraphs = []
    for e in inputs.engine_list():
        for pos, p in enumerate(e.paragraphs):
            mapping = maps.get(e.engine, {})
            summary = renumber(str(p.get("summary") or ""), mapping)
            srcs = [mapping[int(n)] for n in (p.get("sources") or []) if str(n).isdigit() and int(n) in mapping]
            paragraphs.append({"engine": e.engine, "pos": pos, "index": p.get("index", pos),
                               "title": _plain(p.get("title"), 200), "summary": summary,
                               "sources": list(dict.fromkeys(srcs)), "from_checkpoint": e.from_checkpoint})
    units = _units_of(paragraphs)
    stats = _statistics(inputs, sources, paragraphs)
    return Material(inputs.topic, inputs.zh, sources, paragraphs, units, list(inputs.forum), stats, texts)


def findings_text(material: Material) -> str:
    return "\n".join(u.plain for u in material.units)


# =============================================================================================
# Outline and section writing
# =============================================================================================

@dataclass
class OutlineSection:
    key: str
    kind: str
    title: str
    guidance: str
    words: tuple[str, ...]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SectionResult:
    index: int
    key: str
    kind: str
    title: str
    status: str  # ok | failed | empty
    mode: str    # llm | offline
    markdown: str
    note: str = ""
    error: str | None = None
    engines: list[str] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)
    run_id: str = ""
    trace_id: str = ""
    ms: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def template_outline(rtype: ReportType, zh: bool) -> list[OutlineSection]:
    return [OutlineSection(s.key, s.kind, s.title(zh), s.guidance, s.relevance_words()) for s in rtype.sections]


def _score(unit: Unit, sec: OutlineSection) -> float:
    low_plain, low_title = unit.plain.lower(), unit.paragraph_title.lower()
    score = 0.0
    for w in sec.words:
        lw = w.lower()
        if lw in low_plain:
            score += 1.0
        if lw in low_title:
            score += 1.5
    if sec.kind == "overview" and unit.first_paragraph:
        score += 1.0
    if sec.kind == "voices" and unit.kind == "ranked":
        score += 2.0
    return score


def assign_units(outline: list[OutlineSection], units: list[Unit], per_section: int = UNITS_PER_SECTION
                 ) -> dict[str, list[Unit]]:
    """Deterministic: each section takes its most relevant findings not taken by an earlier section;
    a section with too few relevant ones is topped up (re-using findings only when none are left)."""
    used: set[int] = set()
    out: dict[str, list[Unit]] = {}
    for sec in outline:
        if sec.kind == "forum":
            out[sec.key] = []
            continue
        scored = sorted(((-_score(u, sec), u.order, u) for u in units if u.order not in used),
                        key=lambda t: (t[0], t[1]))
        chosen = [u for s, _, u in scored if s < 0][:per_section]
        if len(chosen) < 3:
            chosen += [u for _, _, u in scored if u not in chosen][: 3 - len(chosen)]
        if not chosen and units:
            chosen = sorted(units, key=lambda u: (-_score(u, sec), u.order))[:2]
        chosen.sort(key=lambda u: u.order)
        used.update(u.order for u in chosen)
        out[sec.key] = chosen
    return out


def _src_label(s: dict, limit: int = 36) -> str:
    return src_label(s, limit)


def write_offline_section(sec: OutlineSection, units: list[Unit], m: Material) -> tuple[str, str, list[str]]:
    """(markdown, status, engines) of one section, extractively, with statistics."""
    zh = m.zh
    if sec.kind == "forum":
        md, status = forum_section(m)
        return md, status, ["forum"] if m.forum else []
    lead = lead_lines(sec.kind, m)
    body = [f"- {u.text}" for u in units]
    engines = list(dict.fromkeys(u.engine for u in units))
    if not units:
        body = ["本节没有可用的引擎发现：引擎没有产出与本节相关的内容。" if zh else
                "No engine findings are available for this section: the engines produced nothing relevant to it."]
    parts = []
    if lead:
        parts.append("\n".join(lead))
    if units:
        parts.append(("**引擎发现**：" if zh else "**Engine findings**:") + "\n\n" + "\n".join(body))
    else:
        parts.append(body[0])
    status = "ok" if units or (lead and m.stats["n_sources"]) else "empty"
    return "\n\n".join(parts), status, engines


# -- LLM ---------------------------------------------------------------------------------------

def _relevant_paragraphs(sec: OutlineSection, m: Material, limit: int = 6) -> list[dict]:
    def score(p: dict) -> float:
        text, title = (p["summary"] or "").lower(), (p["title"] or "").lower()
        s = sum((1.0 if w.lower() in text else 0.0) + (1.5 if w.lower() in title else 0.0) for w in sec.words)
        return s + (1.0 if sec.kind == "overview" and p["pos"] == 0 else 0.0)
    ranked = sorted(m.paragraphs, key=lambda p: (-score(p), ENGINE_ORDER.index(p["engine"])
                                                if p["engine"] in ENGINE_ORDER else 9, p["pos"]))
    return ranked[:limit]


def _stats_text(m: Material) -> str:
    """The report's statistics, written as the report writes them (every figure with its base)."""
    st, zh = m.stats, m.zh
    lines = [f"- sources: {st['n_sources']} ({st['n_distinct']} distinct after merging near-duplicates); engine "
             f"paragraphs: {st['n_paragraphs']}; forum messages: {st['forum']['messages']} "
             f"({st['forum']['host']} by the host)"]
    if st["span"]:
        lines.append(f"- dates: {st['dated']} dated sources, {st['span'][0]} to {st['span'][1]}")
    for line in (sentiment_line(st, zh), trend_line(st, zh), risk_line(st, zh)):
        if line:
            lines.append(f"- {line}")
    if st["platform_rows"]:
        lines.append(f"- platforms (of {st['n_sources']} sources): " + ", ".join(
            f"{r['name']} {r['n']} ({r['pct']:.1f}%)" for r in st["platform_rows"][:8]))
    if st["actors"]:
        lines.append("- " + actors_line(st, zh))
    if st["keywords"]:
        lines.append(f"- keywords (number of the {st['n_sources']} sources mentioning each): "
                     + ", ".join(f"{k['word']} ({k['docs']})" for k in st["keywords"][:10]))
    return "\n".join(lines)


def section_prompt(sec: OutlineSection, m: Material, rtype: ReportType, title: str) -> tuple[str, str, list[str]]:
    """(system, user, engines) for one LLM section call."""
    zh = m.zh
    lang = "Simplified Chinese" if zh else "English"
    system = (f"You write one section of a {rtype.name_en.lower()} report for a public-opinion analysis team, in "
              f"{lang}. {rtype.purpose} Use only the material you are given. Cite sources with their numbers in "
              "square brackets, like [3], using only numbers listed under Sources; never invent a number. "
              "Use only figures given under Statistics or in the Sources, copied exactly, and give every "
              "percentage its base as the Statistics do (e.g. 'negative 38.3% (23 of 60 scored sources)'); "
              "state no figure, date, name or quote you cannot cite. The forum's messages and the host's "
              "questions are not findings: do not present them as facts. "
              "Answer in Markdown only: paragraphs, '-' lists, **bold**; no HTML, no tables, no images, no "
              "headings above ###, and do not repeat the section title. About 150-350 words "
              "(300-600 Chinese characters).")
    parts = [f"Topic: {m.topic}", f"Report: {title}", f"Section to write: {sec.title}", f"What to write: {sec.guidance}",
             "", "Statistics:", _stats_text(m)]
    engines: list[str] = []
    used_sources: list[int] = []
    if sec.kind == "forum":
        engines = ["forum"] if m.forum else []
        parts += ["", "Forum transcript (oldest first):"]
        budget = MAX_PROMPT_FINDINGS
        for x in m.forum[-40:]:
            line = f"[{x.source}{' HOST' if x.type == 'host' else ''}] {_plain(x.content, 600 if x.type == 'host' else 300)}"
            budget -= len(line)
            if budget < 0:
                break
            parts.append(line)
        if not m.forum:
            parts.append("(the forum has no messages)")
    else:
        parts += ["", "Findings from the engines:"]
        budget = MAX_PROMPT_FINDINGS
        for p in _relevant_paragraphs(sec, m):
            summary = strip_forum_exchanges(p["summary"])
            block = f"### {ENGINE_LABELS.get(p['engine'], p['engine'])} engine — {p['title']}\n{summary[:3000]}"
            if budget - len(block) < 0:
                break
            budget -= len(block)
            parts.append(block)
            engines.append(p["engine"])
            used_sources += p["sources"] + cited(summary)
        if not engines:
            parts.append("(the engines produced no findings)")
    by_n = m.by_n
    listed = [by_n[n] for n in dict.fromkeys(used_sources) if n in by_n][:40]
    parts += ["", "Sources:"] + ([_prompt_source(s) for s in listed] or ["(none)"])
    return system, "\n".join(parts), list(dict.fromkeys(engines))


def _prompt_source(s: dict) -> str:
    who = " — ".join(x for x in (s["author"], s["site"]) if x)
    engagement = (f" — likes {s['likes']}, comments {s['comments']}, shares {s['shares']}" if s["hotness"] > 0 else "")
    where = platform_name(s["platform"], False) if s["platform"] else s["provider"]
    return (f"[{s['n']}] {_src_label(s, 80)} — {where}"
            f" — {(s['published'] or 'n.d.')[:10]}{' — ' + who if who else ''} — sentiment "
            f"{s['sentiment_label'] or 'unknown'}{engagement}")


_FENCE_RE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n\s*```\s*$", re.S)


def clean_llm_markdown(text: str, title: str) -> str:
    text = (text or "").strip()
    if m := _FENCE_RE.match(text):
        text = m.group(1).strip()
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("#") and _plain(lines[0].lstrip("# ")).strip() in (title, ""):
        lines = lines[1:]
    return "\n".join(lines).strip()


# =============================================================================================
# Rendering: safe Markdown → HTML, the HTML page, Markdown, JSON
# =============================================================================================

ALLOWED_TAGS = {"p", "br", "strong", "em", "code", "pre", "ul", "ol", "li", "a", "h3", "h4", "blockquote", "hr",
                "mark", "span"}
# <mark class="unsupported" title="why"> and its <span class="tag"> come only from the claims check's
# sentinels (every character of the Markdown is escaped before): attributes are fixed text.
ALLOWED_ATTRIBUTES = {"a": {"href"}, "mark": {"class", "title"}, "span": {"class"}}
_LOCAL_ANCHOR_RE = re.compile(r"^#src-\d{1,6}$")
_CODE_RE = re.compile(r"`([^`\n]{1,500})`")
_LINK_RE = re.compile(r"\[([^\[\]\n]{1,300})\]\(\s*([^()\s]{1,2000})\s*\)")
_BOLD_RE = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC_RE = re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![*\w])")
_HOLD_RE = re.compile(r"\x00(\d+)\x00")


def _esc(text: str) -> str:
    return _html.escape(text, quote=True)


def sanitize_html(fragment: str) -> str:
    """The last gate for every HTML fragment made from untrusted text."""
    return nh3.clean(fragment, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"},
                     url_relative=lambda u: u if _LOCAL_ANCHOR_RE.match(u or "") else None,
                     clean_content_tags={"script", "style"}, strip_comments=True, link_rel="noopener noreferrer")


def _inline(text: str, cite: Callable[[int], bool], link: Callable[[str], str | None]) -> str:
    text = _CTRL_RE.sub("", text)
    held: list[str] = []

    def hold(fragment: str) -> str:
        held.append(fragment)
        return f"\x00{len(held) - 1}\x00"

    text = _CODE_RE.sub(lambda m: hold(f"<code>{_esc(m.group(1))}</code>"), text)

    def link_sub(m: re.Match) -> str:
        label, url = m.group(1), m.group(2)
        target = link(url)
        if target:
            return hold(f'<a href="{_esc(target)}">') + label + hold("</a>")
        return f"{label} ({url})" if safe_url(url) else label

    text = _LINK_RE.sub(link_sub, text)
    text = _esc(text)
    text = _BOLD_RE.sub(r"<strong>\1</strong>", text)
    text = _ITALIC_RE.sub(r"<em>\1</em>", text)

    def cite_sub(m: re.Match) -> str:
        out = []
        for n in _NUM_RE.findall(m.group(1)):
            k = int(n)
            out.append(f'<a href="#src-{k}">[{k}]</a>' if cite(k) else f"[{k}]")
        return "".join(out)

    text = _CITE_GROUP_RE.sub(cite_sub, text)
    return _HOLD_RE.sub(lambda m: held[int(m.group(1))], text)


def markdown_to_html(md: str, *, cite: Callable[[int], bool] = lambda n: False,
                     link: Callable[[str], str | None] = lambda url: None, claims: list[dict] | None = None,
                     zh: bool = True) -> Markup:
    """A small, safe Markdown subset (headings, paragraphs, lists, quotes, code, bold/italic, links,
    [n] citations). Everything is escaped first; the result still goes through nh3.

    ``claims`` (the checked claims of this Markdown, with their spans) marks each unsupported
    sentence: <mark class="unsupported" title="reason">…<span class="tag">未核实</span></mark>."""
    md = claimcheck.strip_marks(md or "")
    md, reasons = claimcheck.insert_sentinels(md, claims or [])
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []
    list_tag: str | None = None
    quote: list[str] = []
    code: list[str] = []
    in_code = False
    inl = lambda t: _inline(t, cite, link)  # noqa: E731

    def flush_para():
        if para:
            out.append("<p>" + "<br>".join(inl(p) for p in para) + "</p>")
            para.clear()

    def flush_list():
        nonlocal list_tag
        if list_tag and items:
            out.append(f"<{list_tag}>" + "".join(f"<li>{i}</li>" for i in items) + f"</{list_tag}>")
        items.clear()
        list_tag = None

    def flush_quote():
        if quote:
            out.append("<blockquote><p>" + "<br>".join(inl(q) for q in quote if q) + "</p></blockquote>")
            quote.clear()

    def flush_all():
        flush_para()
        flush_list()
        flush_quote()

    for raw in (md or "").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _CTRL_RE.sub("", raw)
        s = line.strip()
        if in_code:
            if s.startswith("```"):
                out.append("<pre><code>" + _esc("\n".join(code)) + "</code></pre>")
                code.clear()
                in_code = False
            else:
                code.append(line)
            continue
        if s.startswith("```"):
            flush_all()
            in_code = True
            continue
        if not s:
            flush_all()
            continue
        if m := re.match(r"^(#{1,6})\s+(.*)$", s):
            flush_all()
            tag = "h3" if len(m.group(1)) <= 3 else "h4"
            out.append(f"<{tag}>{inl(m.group(2).rstrip('#').strip())}</{tag}>")
            continue
        if re.fullmatch(r"(-{3,}|\*{3,}|_{3,})", s):
            flush_all()
            out.append("<hr>")
            continue
        if m := _BULLET_RE.match(s):
            flush_para()
            flush_quote()
            if list_tag != "ul":
                flush_list()
                list_tag = "ul"
            items.append(inl(m.group(1)))
            continue
        if m := re.match(r"^\d{1,3}[.)]\s+(.*)$", s):
            flush_para()
            flush_quote()
            if list_tag != "ol":
                flush_list()
                list_tag = "ol"
            items.append(inl(m.group(1)))
            continue
        if s.startswith(">"):
            flush_para()
            flush_list()
            quote.append(s[1:].strip())
            continue
        if list_tag and line[:1] in (" ", "\t") and items:
            items[-1] += "<br>" + inl(s)
            continue
        flush_list()
        flush_quote()
        para.append(s)
    if in_code and code:
        out.append("<pre><code>" + _esc("\n".join(code)) + "</code></pre>")
    flush_all()
    return Markup(sanitize_html(claimcheck.sentinels_to_html("\n".join(out), reasons, zh)))


def markdown_for_file(md: str) -> str:
    """Untrusted Markdown made inert for other renderers: no raw HTML, no autolinks, and link
    syntax only towards http(s) URLs (any other `](` or `[x]:` is broken apart)."""
    text = _CTRL_RE.sub("", str(md or "")).replace("<", "&lt;")

    def link_sub(m: re.Match) -> str:
        return m.group(0) if safe_url(m.group(2)) else m.group(1)

    text = _LINK_RE.sub(link_sub, text)
    text = re.sub(r"\]\((?!\s*https?://)", "] (", text)
    return re.sub(r"(?m)^(\s{0,3}\[[^\]\n]*\])\s*:", r"\1 -", text)


_env_lock = threading.Lock()
_env: jinja2.Environment | None = None


def _jinja() -> jinja2.Environment:
    global _env
    with _env_lock:
        if _env is None:
            _env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
                                      undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        return _env


LABELS = {
    True: {"lang": "zh-CN", "partial": "部分报告", "partial_text": "本报告在输入不完整时生成，以下内容缺失或不完整：",
           "notices": "说明", "contents": "目录", "overview": "数据概览", "sources": "来源", "method": "来源与可追溯信息",
           "type": "报告类型", "generated": "生成时间", "run": "运行", "trace": "追踪 ID", "mode": "写作方式",
           "failed": "本节未能由模型写成", "engines": "引擎", "forum": "论坛", "no_sources": "没有引用来源。",
           "engine": "引擎", "job": "任务", "status": "状态", "paragraphs": "段落", "n_sources": "来源数",
           "stat_sources": "来源", "stat_engines": "引擎段落", "stat_forum": "论坛发言",
           "tile_sources": "来源（{m} 条不重复）", "tile_negative": "负面（{c}/{b} 条可判定来源）",
           "tile_negative_few": "负面：可判定来源仅 {s} 条（少于 {n} 条），不计算占比",
           "claims_note": "标出的句子未能在所引来源或报告统计中找到依据。", "unsupported_tag": "未核实",
           "unsupported_list": "未核实的论断", "duplicate_of": "近似重复于",
           "sentiment": {"positive": "正面", "neutral": "中性", "negative": "负面"},
           "from": "依据", "llm": "大模型撰写", "offline": "离线抽取", "footer": "由 Shoal 生成。来源内容来自网络与语料库，仅供分析参考。",
           "section_empty": "本节内容有限", "report_id": "报告 ID", "chosen_by": "类型判定"},
    False: {"lang": "en", "partial": "Partial report", "partial_text": "This report was written from incomplete "
            "inputs. Missing or incomplete:",
            "notices": "Notes", "contents": "Contents", "overview": "Data overview",
            "sources": "Sources", "method": "Provenance", "type": "Report type", "generated": "Generated",
            "run": "run", "trace": "trace", "mode": "Written", "failed": "The model could not write this section",
            "engines": "engines", "forum": "forum", "no_sources": "No sources were cited.", "engine": "Engine",
            "job": "Job", "status": "Status", "paragraphs": "Paragraphs", "n_sources": "Sources",
            "stat_sources": "sources", "stat_engines": "engine paragraphs", "stat_forum": "forum messages",
            "tile_sources": "sources ({m} distinct)", "tile_negative": "negative ({c} of {b} scored sources)",
            "tile_negative_few": "negative: only {s} scored sources (fewer than {n}), no share",
            "unsupported_tag": "unsupported",
            "claims_note": "Marked sentences have no support in the sources they cite or the report's statistics.",
            "unsupported_list": "Unsupported claims", "duplicate_of": "near-duplicate of",
            "sentiment": {"positive": "positive", "neutral": "neutral", "negative": "negative"},
            "from": "From", "llm": "by the LLM", "offline": "offline, by extraction",
            "footer": "Generated by Shoal. Source content comes from the web and the corpus; for analysis only.",
            "section_empty": "little material", "report_id": "report", "chosen_by": "type chosen by"},
}


def _claims_by_section(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in doc.get("claims") or []:
        out.setdefault(c.get("section", ""), []).append(c)
    return out


def render_html(doc: dict, chart_list: list[charts.Chart]) -> str:
    zh = doc["report"]["language"] == "zh"
    by_n = {s["n"]: s for s in doc["sources"]}
    link_of = {s["url"]: f"#src-{s['n']}" for s in doc["sources"] if s.get("link")}
    claims = _claims_by_section(doc)
    sections = []
    for sec in doc["sections"]:
        body = markdown_to_html(sec["markdown"], cite=lambda n: n in by_n, link=lambda u: link_of.get(u.strip()),
                                claims=claims.get(sec["key"]), zh=zh)
        sections.append({**sec, "html": body})
    counts = doc.get("claims_count") or claimcheck.summary([])
    return _jinja().get_template("report.html.j2").render(
        L=LABELS[zh], r=doc["report"], banner=doc["banner"], notices=doc["notices"], sections=sections,
        sources=doc["sources"], charts=[{"title": c.title, "svg": Markup(c.svg) if c.svg else "", "note": c.note,
                                         "key": c.key} for c in chart_list],
        stats=doc["statistics"], provenance=doc["provenance"], engine_labels=ENGINE_LABELS,
        claims=counts, claims_text=claimcheck.summary_text(counts, zh), min_sample=MIN_SAMPLE,
        platform_label=lambda p: platform_name(p, zh))


def render_markdown(doc: dict) -> str:
    r, zh = doc["report"], doc["report"]["language"] == "zh"
    L = LABELS[zh]
    safe = lambda x: markdown_for_file(_plain(x))  # noqa: E731 - one line of untrusted text
    counts = doc.get("claims_count") or claimcheck.summary([])
    lines = [f"# {safe(r['title'])}", "",
             f"*{L['type']}: {r['type_name']} · {L['generated']}: {r['generated_at']} · {L['run']} {r['run_id']} · "
             f"{L['trace']} {r['trace_id']}*", ""]
    if doc["banner"].get("coverage"):
        lines += [f"> **⚠ {safe(doc['banner']['coverage'])}**", ""]
    if doc["banner"]["partial"]:
        lines += [f"> **{L['partial']}** — {L['partial_text']}"] + [f"> - {safe(x)}" for x in doc["banner"]["missing"]]
        lines += [""]
    head = f"**{claimcheck.summary_text(counts, zh)}**"
    if counts["unsupported"]:
        head += f"（⚠ {L['claims_note']}）" if zh else f" (⚠ {L['claims_note']})"
    lines += [head, ""]
    if doc["notices"]:
        lines += [f"**{L['notices']}**", ""] + [f"- {safe(x)}" for x in doc["notices"]] + [""]
    claims = _claims_by_section(doc)
    for sec in doc["sections"]:
        lines += [f"## {sec['index']}. {safe(sec['title'])}", ""]
        if sec["status"] == "failed":
            lines += [f"> ⚠ {safe(sec['note'])}", ""]
        md = claimcheck.mark_markdown(claimcheck.strip_marks(sec["markdown"]), claims.get(sec["key"]) or [])
        lines += [markdown_for_file(md), ""]
        lines += [f"*{L['from']}: {', '.join(sec['engines']) or '—'} · {L['run']} {sec['run_id']} · "
                  f"{L['trace']} {sec['trace_id']}*", ""]
    unsupported = [c for c in doc.get("claims") or [] if not c["supported"]]
    if unsupported:
        lines += [f"## {L['unsupported_list']}", ""]
        lines += [f"- ⚠ {safe(_plain(c['text'], 200))} — {safe(c['reason'])}" for c in unsupported[:100]] + [""]
    lines += [f"## {L['sources']}", ""]
    for s in doc["sources"]:
        link = f" — <{s['link']}>" if s.get("link") else ""
        where = platform_name(s["platform"], zh) if s["platform"] else s["provider"]
        label = f" — {L['sentiment'][s['sentiment_label']]}" if s.get("sentiment_label") else ""
        lines.append(f"[{s['n']}] {safe(_src_label(s, 120))} — {safe(where)} — "
                     f"{safe((s['published'] or 'n.d.')[:10])}{label}{link}")
        lines.append("")
    if not doc["sources"]:
        lines.append(L["no_sources"])
    return "\n".join(lines).rstrip() + "\n"


# =============================================================================================
# Files
# =============================================================================================

def slugify(text: str, limit: int = 40) -> str:
    """An ASCII-safe file name stem: letters, digits and dashes (CJK topics give 'report')."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower()[:limit].strip("-")
    return slug or "report"


def reports_dir(settings, run_id: str) -> Path:
    if not _RUN_ID_RE.match(run_id or ""):
        raise ReportError(f"unsafe run id {run_id!r}")
    return Path(settings.data_dir) / "reports" / run_id


def output_paths(settings, run_id: str, topic: str, report_id: str) -> dict[str, Path]:
    if not re.fullmatch(r"[A-Za-z0-9]{1,32}", report_id or ""):
        raise ReportError(f"unsafe report id {report_id!r}")
    folder = reports_dir(settings, run_id)
    stem = f"{slugify(topic)}-{report_id}"
    return {"html": folder / f"{stem}.html", "md": folder / f"{stem}.md", "json": folder / f"{stem}.json"}


def write_outputs(contents: dict[Path, str]) -> None:
    """Write every file to a temporary file beside it first, then move all into place.

    A failure while writing leaves every existing file as it was and no temporary file behind."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, text in contents.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            temps.append((tmp, path))
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, path in temps:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # pragma: no cover - best effort
                logger.warning("could not remove temporary file {}: {}", tmp, exc)


def _delete_files(paths: Iterable[str | None], run_id: str) -> None:
    for p in paths:
        if not p:
            continue
        path = Path(p)
        # only files this module wrote: <...>/reports/<run_id>/<name>
        if path.parent.name != run_id or path.parent.parent.name != "reports":
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not delete old report file {}: {}", path, exc)


# =============================================================================================
# Report rows: views, history, reconciliation
# =============================================================================================

@dataclass(frozen=True)
class ReportView:
    id: str
    run_id: str
    status: str
    stage: str
    progress: float
    report_type: str | None
    partial: bool
    title: str
    html_path: str | None
    md_path: str | None
    json_path: str | None
    error: str | None
    trace_id: str
    created_at: datetime
    updated_at: datetime

    @property
    def done(self) -> bool:
        return self.status in REPORT_TERMINAL

    def as_dict(self) -> dict:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        d["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return d


def _view(r: Report) -> ReportView:
    return ReportView(r.id, r.run_id, r.status, r.stage, float(r.progress or 0.0), r.report_type, bool(r.partial),
                      r.title or "", r.html_path, r.md_path, r.json_path, r.error, r.trace_id or "", r.created_at,
                      r.updated_at)


def _update_row(db, report_id: str, **values: Any) -> None:
    values["updated_at"] = utcnow()
    with db.session() as s:
        s.execute(update(Report).where(Report.id == report_id).values(**values))


def report_job_id(db, report_id: str) -> str | None:
    """The id of the job that writes a report."""
    with db.session() as s:
        run_id = s.scalar(select(Report.run_id).where(Report.id == report_id))
        if run_id is None:
            return None
        rows = s.execute(select(Job.id, Job.params, Job.checkpoint).where(Job.run_id == run_id, Job.kind == KIND)
                         .order_by(Job.created_at.desc())).all()
    for job_id, params, cp in rows:
        if (params or {}).get("report_id") == report_id or (cp or {}).get("report_id") == report_id:
            return job_id
    return None


def _reconcile(db, view: ReportView) -> ReportView:
    """A row left open by a job that ended without running its handler (cancelled while pending,
    skipped, force-cancelled) takes the job's outcome."""
    if view.status not in REPORT_OPEN:
        return view
    job_id = report_job_id(db, view.id)
    if job_id is None:
        return view
    with db.session() as s:
        job = s.get(Job, job_id)
        status, error = (job.status, job.error) if job else (None, None)
    if status == CANCELLED:
        _update_row(db, view.id, status=R_CANCELLED, error=error if error and "skipped" in error else None)
    elif status == FAILED:
        _update_row(db, view.id, status=R_ERROR, error=redact(error or "the report job failed")[:2000])
    else:
        return view
    return get_report(db, view.id, reconcile=False) or view


def get_report(db, report_id: str, *, reconcile: bool = True) -> ReportView | None:
    with db.session() as s:
        r = s.get(Report, report_id)
        view = _view(r) if r else None
    return _reconcile(db, view) if view is not None and reconcile else view


def list_reports(db, run_id: str | None = None, limit: int = 20) -> list[ReportView]:
    """Reports, newest first (of one run, or of every run)."""
    stmt = select(Report).order_by(Report.created_at.desc(), Report.id.desc()).limit(limit)
    if run_id is not None:
        stmt = stmt.where(Report.run_id == run_id)
    with db.session() as s:
        views = [_view(r) for r in s.scalars(stmt)]
    return [_reconcile(db, v) for v in views]


def latest_report(db, run_id: str, *, completed: bool = False) -> ReportView | None:
    for v in list_reports(db, run_id, limit=KEEP_REPORTS):
        if not completed or v.status == R_COMPLETED:
            return v
    return None


def wait_report(db, report_id: str, timeout: float, poll: float = 0.1) -> ReportView | None:
    """Block until a report ends and its job has settled (for the command line and tests; pages poll
    get_report)."""
    deadline = time.monotonic() + timeout
    job_id = None
    while True:
        view = get_report(db, report_id)
        if view is None or time.monotonic() >= deadline:
            return view
        if view.done:
            job_id = job_id or report_job_id(db, report_id)
            with db.session() as s:
                status = s.scalar(select(Job.status).where(Job.id == job_id)) if job_id else None
            if status not in (PENDING, RUNNING, CANCELLING):
                return view
        time.sleep(poll)


def report_events(events: EventLog, run_id: str, cursor: int = 0, *, report_id: str | None = None,
                  limit: int = 500) -> tuple[list[EventRecord], int]:
    """The report events of a run after `cursor`, and the next cursor (optionally of one report)."""
    rows, new_cursor = events.since(cursor, run_id=run_id, types=REPORT_EVENT_TYPES, limit=limit)
    if report_id is not None:
        rows = [e for e in rows if (e.payload or {}).get("report_id") == report_id]
    return rows, new_cursor


def prune_reports(db, run_id: str, keep: int | None = None) -> int:
    """Keep the newest `keep` (default KEEP_REPORTS) reports of a run; delete older finished ones and
    their files. Reports still pending or running are never deleted."""
    keep = KEEP_REPORTS if keep is None else max(1, int(keep))
    with db.session() as s:
        rows = s.execute(select(Report.id, Report.status, Report.html_path, Report.md_path, Report.json_path)
                         .where(Report.run_id == run_id)
                         .order_by(Report.created_at.desc(), Report.id.desc())).all()
    old = [r for r in rows[keep:] if r.status in REPORT_TERMINAL]
    for r in old:
        _delete_files((r.html_path, r.md_path, r.json_path), run_id)
    if old:
        with db.session() as s:
            s.execute(delete(Report).where(Report.id.in_([r.id for r in old])))
    return len(old)


# =============================================================================================
# Public API: request, cancel
# =============================================================================================

def report_job_spec(report_id: str | None = None, *, partial: bool = False, report_type: str | None = None,
                    after: tuple[str, ...] = ()) -> JobSpec:
    """The job that writes a report. Without report_id the job creates its own Report row.

    `after`: names of the run's jobs to wait for. The job stays pending (holding no worker) until
    each has ended, whatever its outcome; then it is claimed and says what did not complete."""
    params: dict[str, Any] = {"partial": bool(partial)}
    if report_id:
        params["report_id"] = report_id
    if report_type and normalise_type(report_type) != AUTO:
        params["report_type"] = normalise_type(report_type)
    return JobSpec(kind=KIND, name=KIND, params=params, max_attempts=2, depends_on=tuple(after),
                   after_any_outcome=True)


def _jobs_to_wait_for(db, run_id: str) -> tuple[list[str], list[str], list[str]]:
    """What the automatic report waits for: the latest job of each engine of the run and the run's
    other open jobs (the forum, the coverage check). Returns (job names, open engines, open others)."""
    with db.session() as s:
        rows = s.execute(select(Job.kind, Job.name, Job.status).where(Job.run_id == run_id)
                         .order_by(Job.created_at, Job.id)).all()
    latest: dict[str, tuple[str, str]] = {}
    names, others = [], []
    for kind, name, status in rows:
        if kind in ENGINES:
            latest[kind] = (name, status)
        elif kind != KIND and status in _OPEN_JOB_STATES + (INTERRUPTED,):
            names.append(name)
            others.append(name or kind)
    names += [name for name, _ in latest.values()]
    engines = [e for e in ENGINE_ORDER if e in latest and latest[e][1] in _OPEN_JOB_STATES + (INTERRUPTED,)]
    return names, engines, others


def wait_also_for(supervisor, db, run_id: str, job_id: str) -> None:
    """A job added to a run (an engine re-run) that a pending automatic report must wait for too."""
    with db.session() as s:
        waiting = list(s.scalars(select(Job.id).where(Job.run_id == run_id, Job.kind == KIND,
                                                      Job.status == PENDING)))
    for report_job in waiting:
        # False when the report was claimed meanwhile: it then sees the open engine and waits for it itself.
        supervisor.ledger.add_dependencies(report_job, [job_id])


def request_report(supervisor, db, run_id: str, *, partial: bool = False, report_type: str | None = None) -> str:
    """Add a report job to a run; returns the report id.

    Not partial (the automatic report): it waits until every engine job of this run has ended,
    then errors unless all completed. Partial: written at once from what the run has, with a
    banner naming what is missing. `report_type` overrides the run's choice ('auto' = choose)."""
    if not _RUN_ID_RE.match(run_id or ""):
        raise ReportError(f"invalid run id {run_id!r}")
    try:
        rtype = normalise_type(report_type) if report_type else None
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    with db.session() as s:
        if s.get(Run, run_id) is None:
            raise ReportError(f"no run {run_id}")
    for v in list_reports(db, run_id, limit=KEEP_REPORTS):
        if v.status in REPORT_OPEN and v.partial == bool(partial):
            raise ReportError(f"a {'partial ' if partial else ''}report of run {run_id} is already {v.status} "
                              f"({v.id}); wait for it or cancel it first")
    report_id = secrets.token_hex(8)
    now = utcnow()
    with db.session() as s:
        s.add(Report(id=report_id, run_id=run_id, status=R_PENDING, stage="waiting", progress=0.0,
                     partial=bool(partial), title="", created_at=now, updated_at=now))
    after, engines, others = ([], [], []) if partial else _jobs_to_wait_for(db, run_id)
    try:
        (job_id,) = supervisor.add_jobs(run_id, [report_job_spec(report_id, partial=partial, report_type=rtype,
                                                                 after=tuple(after))])
    except Exception as exc:
        _update_row(db, report_id, status=R_ERROR, error=redact(f"could not queue the report: {exc}")[:2000])
        raise
    with db.session() as s:
        trace = s.scalar(select(Job.trace_id).where(Job.id == job_id)) or ""
    _update_row(db, report_id, trace_id=trace)
    supervisor.events.emit("report.queued", run_id=run_id, job_id=job_id, source=KIND, trace_id=trace,
                           payload={"report_id": report_id, "partial": bool(partial), "report_type": rtype or AUTO})
    if engines or others:
        supervisor.events.emit("report.waiting", run_id=run_id, job_id=job_id, source=KIND, trace_id=trace,
                               payload={"report_id": report_id, "engines": engines, "other_jobs": others})
    prune_reports(db, run_id)
    return report_id


def cancel_report(supervisor, report_id: str, timeout: float | None = None) -> str:
    """Cancel a report (waiting, pending or mid-sections); returns its final status."""
    db = supervisor.db
    view = get_report(db, report_id)
    if view is None:
        raise ReportError(f"no report {report_id}")
    if view.done:
        return view.status
    job_id = report_job_id(db, report_id)
    if job_id is not None:
        supervisor.cancel_job(job_id, timeout=timeout)
    view = get_report(db, report_id, reconcile=False)
    if view is not None and not view.done:
        # never claimed, or abandoned after the cancel timeout: the handler will not mark it
        _update_row(db, report_id, status=R_CANCELLED)
        supervisor.events.emit("report.cancelled", run_id=view.run_id, job_id=job_id, source=KIND,
                               trace_id=view.trace_id, payload={"report_id": report_id, "stage": view.stage})
        view = get_report(db, report_id, reconcile=False)
    return view.status if view else R_CANCELLED


# =============================================================================================
# The job
# =============================================================================================

class _Writer:
    """One report job: waiting, type, outline, parallel sections, assembly, rendering."""

    def __init__(self, ctx: JobContext, report_id: str, settings):
        self.ctx = ctx
        self.db = ctx.db
        self.settings = settings
        self.report_id = report_id
        self.partial = bool(ctx.params.get("partial"))
        self.llm = None
        self.timings: dict[str, float] = {}
        self._cp_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------
    def emit(self, type_: str, payload: dict | None = None) -> int:
        return self.ctx.emit(type_, {"report_id": self.report_id, **(payload or {})}, source=KIND)

    def stage(self, stage: str, progress: float | None = None) -> None:
        progress = STAGE_PROGRESS.get(stage, 0.0) if progress is None else progress
        self.ctx.check_cancelled()
        _update_row(self.db, self.report_id, stage=stage, progress=round(progress, 4))
        self.ctx.heartbeat(progress=progress, message=f"report: {stage}")
        self.emit("report.stage", {"stage": stage, "progress": round(progress, 4)})

    def progress(self, progress: float, message: str) -> None:
        _update_row(self.db, self.report_id, progress=round(progress, 4))
        self.ctx.heartbeat(progress=progress, message=message)

    def save(self, **updates: Any) -> None:
        with self._cp_lock:
            self.ctx.save_checkpoint(None, report_id=self.report_id, **updates)

    # -- steps ------------------------------------------------------------------------------
    def wait_for_engines(self) -> None:
        """The job is claimed once the jobs it depends on have ended (request_report): normally this
        returns at once. Only a job added to the run after the report was requested and missed by
        wait_also_for (claimed meanwhile), or a report job added without dependencies, waits here."""
        last: list[str] = []  # request_report announced what the job waited for while pending
        engines_done_at: float | None = None
        auto_resume = bool(self.settings.get("SHOAL_AUTO_RESUME", True))
        while True:
            self.ctx.check_cancelled()
            latest, others, params = _engine_states(self.db, self.ctx.run_id)
            expected = _expected_engines(params, latest)
            open_states = _OPEN_JOB_STATES + ((INTERRUPTED,) if auto_resume else ())
            pending = [e for e in expected if latest.get(e) in open_states]
            if pending != last:
                self.emit("report.waiting", {"engines": pending, "other_jobs": others})
                last = pending
            if not pending:
                if not others:
                    return
                engines_done_at = engines_done_at or time.monotonic()
                if time.monotonic() - engines_done_at > OTHER_JOBS_GRACE:
                    return
            self.ctx.heartbeat(progress=0.0, message="report: waiting for " + ", ".join(pending or others))
            self.ctx.sleep(WAIT_POLL)

    def choose_type(self, inputs: ReportInputs, material: Material) -> tuple[str, str, str]:
        cp = self.ctx.checkpoint
        if cp.get("report_type") in REPORT_TYPES:
            return cp["report_type"], cp.get("type_by", "checkpoint"), cp.get("type_reason", "")
        requested = self.ctx.params.get("report_type") or inputs.run_params.get("report_type") or AUTO
        try:
            requested = normalise_type(str(requested))
        except ValueError:
            self.ctx.log.warning("unknown report type {!r} in the run's parameters: choosing", requested)
            requested = AUTO
        if requested != AUTO:
            return requested, "user", "chosen by the user"
        rule_key, rule_reason, _ = choose_type_by_rules(
            inputs.topic, findings_text(material), {d["day"]: d["n"] for d in material.stats["days"]})
        if self.llm is not None:
            from core.llm.client import LlmError

            try:
                return self._choose_type_llm(inputs, material, rule_key)
            except LlmError as exc:
                self.ctx.log.warning("report type by LLM failed, using the rules: {}", exc)
                return rule_key, "rules", f"{rule_reason} (the LLM failed: {redact(str(exc))[:160]})"
        return rule_key, "rules", rule_reason

    def _choose_type_llm(self, inputs: ReportInputs, material: Material, suggestion: str) -> tuple[str, str, str]:
        options = "\n".join(f"- {t.key}: {t.name_en} — {t.purpose}" for t in REPORT_TYPES.values())
        brief = "\n".join(f"- {p['title']}: {_plain(p['summary'], 200)}" for p in material.paragraphs[:12])
        system = "You classify public-opinion analyses into report types. Answer with JSON only."
        user = (f"Topic: {inputs.topic}\n\nReport types:\n{options}\n\nFindings:\n{brief or '(none)'}\n\n"
                f"A keyword rule suggests: {suggestion}\n\n"
                'Return JSON: {"report_type": "<one key from the list>", "reason": "<one sentence>"}')
        data = self.llm.complete_json(system, user, required_keys=("report_type",), node="ReportTypeNode",
                                      run_id=self.ctx.run_id, job_id=self.ctx.job_id)
        key = str(data.get("report_type") or "").strip()
        try:
            key = normalise_type(key)
        except ValueError:
            key = AUTO
        if key == AUTO:
            return suggestion, "rules", f"the LLM answered an unknown type {str(data.get('report_type'))[:40]!r}"
        return key, "llm", _plain(data.get("reason"), 300)

    def outline(self, rtype: ReportType, material: Material) -> tuple[str, list[OutlineSection]]:
        zh = material.zh
        cp = self.ctx.checkpoint
        base = template_outline(rtype, zh)
        title = rtype.title(_plain(material.topic, 80) or ("未命名主题" if zh else "untitled"), zh)
        if cp.get("outline") and cp.get("title"):
            saved = {o["key"]: o for o in cp["outline"]}
            return cp["title"], [OutlineSection(**{**b.as_dict(), "title": saved.get(b.key, {}).get("title", b.title)})
                                 for b in base]
        if self.llm is not None:
            from core.llm.client import LlmError

            listing = "\n".join(f'- key "{s.key}": {s.title} — {s.guidance}' for s in base)
            system = "You plan the outline of an analysis report. Answer with JSON only."
            user = (f"Topic: {material.topic}\nReport type: {rtype.name_en}\nLanguage: "
                    f"{'Simplified Chinese' if zh else 'English'}\n\nSections (keep every key, in this order):\n"
                    f"{listing}\n\nGive the report a specific title and each section a specific heading for this "
                    'topic.\nReturn JSON: {"title": "...", "sections": [{"key": "...", "title": "..."}]}')
            try:
                data = self.llm.complete_json(system, user, required_keys=("sections",), node="ReportOutlineNode",
                                              run_id=self.ctx.run_id, job_id=self.ctx.job_id)
                named = {str(x.get("key")): _plain(x.get("title"), 60) for x in data.get("sections") or []
                         if isinstance(x, dict)}
                base = [OutlineSection(**{**b.as_dict(), "title": named.get(b.key) or b.title}) for b in base]
                title = _plain(data.get("title"), 120) or title
            except LlmError as exc:
                self.ctx.log.warning("report outline by LLM failed, using the template: {}", exc)
        return title, base

    def write_sections(self, outline: list[OutlineSection], assigned: dict[str, list[Unit]], material: Material,
                       rtype: ReportType, title: str) -> list[SectionResult]:
        done: dict[str, dict] = dict(self.ctx.checkpoint.get("sections") or {})
        results: dict[str, SectionResult] = {k: SectionResult(**v) for k, v in done.items()
                                             if k in {o.key for o in outline}}
        todo = [(i, sec) for i, sec in enumerate(outline, 1) if sec.key not in results]
        total = len(outline)
        if not todo:
            return [results[o.key] for o in outline]
        workers = max(1, min(len(todo), int(self.ctx.run_params.get("report_concurrency") or SECTION_CONCURRENCY)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report-section")
        futures = {pool.submit(self._section, i, sec, assigned.get(sec.key, []), material, rtype, title): sec
                   for i, sec in todo}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                self.ctx.check_cancelled()
                for f in finished:
                    res = f.result()  # _section turns every writing failure into a failed section
                    results[res.key] = res
                    done[res.key] = res.as_dict()
                    self.save(sections=done)
                    frac = len(results) / total
                    self.progress(STAGE_PROGRESS["sections"] + frac * (STAGE_PROGRESS["assemble"] -
                                                                      STAGE_PROGRESS["sections"]),
                                  f"report: {len(results)} of {total} sections")
                    self.emit("report.section", {"key": res.key, "title": res.title, "index": res.index,
                                                 "total": total, "done": len(results), "status": res.status,
                                                 "mode": res.mode, "ms": res.ms, "error": res.error})
                if not finished:
                    self.ctx.heartbeat()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return [results[o.key] for o in outline]

    def _section(self, index: int, sec: OutlineSection, units: list[Unit], material: Material, rtype: ReportType,
                 title: str) -> SectionResult:
        trace = child_trace_id(self.ctx.trace_id)
        t0 = time.perf_counter()
        with trace_scope(trace):
            self.ctx.check_cancelled()
            try:
                offline_md, offline_status, offline_engines = write_offline_section(sec, units, material)
                res = SectionResult(index, sec.key, sec.kind, sec.title, offline_status, "offline", offline_md,
                                    engines=offline_engines, run_id=self.ctx.run_id, trace_id=trace)
            except Exception as exc:  # noqa: BLE001 - a bug in one section's extract never sinks the report
                err = redact(f"{exc.__class__.__name__}: {exc}")[:300]
                self.ctx.log.opt(exception=exc).error("offline writing of section {} failed: {}", sec.key, err)
                res = SectionResult(index, sec.key, sec.kind, sec.title, "failed", "offline", "", error=err,
                                    note=(f"本节写作出错（{err}）。" if material.zh else f"Writing this section failed ({err})."),
                                    run_id=self.ctx.run_id, trace_id=trace)
            if self.llm is not None:
                from core.llm.client import LlmError

                system, user, engines = section_prompt(sec, material, rtype, title)
                try:
                    answer = self.llm.complete(system, user, node="ReportSectionNode", run_id=self.ctx.run_id,
                                               job_id=self.ctx.job_id, max_tokens=2000)
                    md = clean_llm_markdown(answer.text, sec.title)
                    if not md:
                        raise LlmError("the model returned an empty section", role="REPORT_ENGINE")
                    res.mode, res.markdown, res.engines = "llm", md, engines
                    res.status = "ok"
                    if answer.truncated:
                        res.note = ("模型输出达到长度上限，本节可能不完整。" if material.zh else
                                    "The model hit its length limit: this section may be cut short.")
                except LlmError as exc:
                    err = redact(str(exc))[:300]
                    self.ctx.log.warning("report section {} failed: {}", sec.key, err)
                    res.status, res.error = "failed", err
                    res.note = (f"本节未能由模型写成（{err}）。以下为引擎发现的离线摘录。" if material.zh else
                                f"The LLM could not write this section ({err}). Below is an offline extract of "
                                "the engines' findings.")
                except (JobCancelled, LeaseLost):
                    raise
                except Exception as exc:  # noqa: BLE001 - one section never sinks the report
                    err = redact(f"{exc.__class__.__name__}: {exc}")[:300]
                    res.status, res.error = "failed", err
                    res.note = f"本节写作出错（{err}）。" if material.zh else f"Writing this section failed ({err})."
        known = material.by_n
        res.sources = [n for n in cited(res.markdown) if n in known]
        res.ms = round((time.perf_counter() - t0) * 1000, 1)
        return res

    # -- the whole job ----------------------------------------------------------------------
    def run(self) -> dict:
        ctx = self.ctx
        t_start = time.perf_counter()
        _update_row(self.db, self.report_id, status=R_RUNNING, error=None, trace_id=ctx.trace_id,
                    partial=self.partial)
        self.emit("report.started", {"partial": self.partial, "resumed": ctx.resumed, "attempt": ctx.attempt})
        self.stage("waiting")
        if not self.partial:
            self.wait_for_engines()
        inputs = report_inputs(self.db, ctx.run_id, include_unfinished=self.partial)
        if not self.partial and not inputs_ready(inputs):
            problems = [m for m in missing_inputs(inputs) if not m.startswith(("forum", "论坛"))]
            states = _engine_states(self.db, ctx.run_id)[0]
            if "cancelled" in states.values() and "failed" not in states.values():
                # Someone stopped an engine: the automatic report steps aside (cancelled, not failed),
                # so the run reads as stopped by a person rather than broken.
                raise ReportSkipped("an engine of this run was stopped, so no automatic report was written: "
                                    + "; ".join(problems) + ". Ask for a partial report to write one from what "
                                    "is there.")
            raise ReportError("not every engine of this run completed, so the report was not written: "
                              + "; ".join(problems) + ". Ask for a partial report to write one from what is there.")
        self.timings["wait_s"] = round(time.perf_counter() - t_start, 3)
        offline = bool(inputs.run_params.get("offline")) or not self.settings.llm_configured("REPORT_ENGINE")
        if not offline:
            from core.llm.client import LlmClient

            self.llm = LlmClient("REPORT_ENGINE", self.settings, db=self.db, events=ctx.events, limiter=ctx.limits)
        try:
            return self._write(inputs, t_start)
        finally:
            if self.llm is not None:
                self.llm.close()

    def _write(self, inputs: ReportInputs, t_start: float) -> dict:
        ctx = self.ctx
        material = build_material(inputs)
        zh = material.zh

        self.stage("choosing type")
        type_key, type_by, type_reason = self.choose_type(inputs, material)
        rtype = REPORT_TYPES[type_key]
        _update_row(self.db, self.report_id, report_type=type_key)
        self.save(report_type=type_key, type_by=type_by, type_reason=type_reason)
        self.emit("report.type", {"report_type": type_key, "by": type_by, "reason": type_reason[:300]})

        self.stage("outline")
        title, outline = self.outline(rtype, material)
        assigned = assign_units(outline, material.units)
        _update_row(self.db, self.report_id, title=title[:500])
        self.save(title=title, outline=[o.as_dict() for o in outline])
        self.emit("report.outline", {"title": title[:200], "sections": [o.title for o in outline]})

        self.stage("sections")
        t0 = time.perf_counter()
        sections = self.write_sections(outline, assigned, material, rtype, title)
        self.timings["sections_s"] = round(time.perf_counter() - t0, 3)

        self.stage("assemble")
        missing = missing_inputs(inputs)
        coverage = Coverage.from_dict(inputs.run_params.get("coverage"))
        thin = coverage is not None and not coverage.sufficient
        banner = {"partial": self.partial, "missing": missing if self.partial else [],
                  "coverage": coverage.banner(zh) if thin else None}
        notices = [] if self.partial else missing
        failed = [s for s in sections if s.status == "failed"]
        if failed:
            notices = notices + [(f"{len(failed)} 个章节未能由模型写成，已在文中标出。" if zh else
                                  f"{len(failed)} section(s) could not be written by the LLM; they are marked.")]
        for s, text in zip(sections, drop_repeated_quotes([s.markdown for s in sections])):
            s.markdown = claimcheck.strip_marks(text)
            still = set(cited(s.markdown))
            s.sources = [n for n in s.sources if n in still]
        claims = verify_claims(material, sections)
        chart_list = build_charts(inputs, material)
        paths = output_paths(self.settings, ctx.run_id, inputs.topic, self.report_id)
        doc = self._document(inputs, material, rtype, type_by, type_reason, title, sections, banner, notices,
                             chart_list, paths)
        doc["claims"] = [c.as_dict() for c in claims]
        doc["claims_count"] = claimcheck.summary(claims)
        if coverage is not None:
            doc["coverage"] = coverage.as_dict()

        self.stage("render")
        html_text = render_html(doc, chart_list)
        md_text = render_markdown(doc)
        json_text = json.dumps(doc, ensure_ascii=False, indent=1, default=str)
        ctx.check_cancelled()
        write_outputs({paths["html"]: html_text, paths["md"]: md_text, paths["json"]: json_text})
        self.timings["total_s"] = round(time.perf_counter() - t_start, 3)

        _update_row(self.db, self.report_id, status=R_COMPLETED, stage=STAGE_DONE, progress=1.0, error=None,
                    html_path=str(paths["html"]), md_path=str(paths["md"]), json_path=str(paths["json"]))
        ctx.heartbeat(progress=1.0, message="report: done")
        result = {"report_id": self.report_id, "report_type": type_key, "type_by": type_by, "title": title,
                  "partial": self.partial, "mode": "llm" if self.llm is not None else "offline",
                  "html_path": str(paths["html"]), "md_path": str(paths["md"]), "json_path": str(paths["json"]),
                  "sections": [{"key": s.key, "title": s.title, "status": s.status, "mode": s.mode} for s in sections],
                  "failed_sections": len(failed), "n_sources": len(material.sources), "missing": missing,
                  "claims": doc["claims_count"], "coverage_banner": bool(banner["coverage"]),
                  "timings": dict(self.timings)}
        self.emit("report.completed", {k: result[k] for k in ("title", "report_type", "html_path", "md_path",
                                                               "json_path", "failed_sections", "partial", "claims")})
        try:
            prune_reports(self.db, ctx.run_id)
        except Exception as exc:  # noqa: BLE001 - history clean-up never fails a report
            ctx.log.warning("pruning old reports failed: {}", exc)
        return result

    def _document(self, inputs: ReportInputs, m: Material, rtype: ReportType, type_by: str, type_reason: str,
                  title: str, sections: list[SectionResult], banner: dict, notices: list[str],
                  chart_list: list[charts.Chart], paths: dict[str, Path]) -> dict:
        ctx, zh = self.ctx, m.zh
        return {
            "schema": "shoal-report/1",
            "report": {"id": self.report_id, "run_id": ctx.run_id, "job_id": ctx.job_id, "title": title,
                       "topic": inputs.topic, "type": rtype.key, "type_name": rtype.name(zh), "type_by": type_by,
                       "type_reason": type_reason, "partial": self.partial,
                       "forced": bool(inputs.run_params.get("force_report")),
                       "mode": "llm" if self.llm is not None else "offline", "language": "zh" if zh else "en",
                       "generated_at": utcnow().replace(microsecond=0).isoformat() + "Z",
                       "trace_id": ctx.trace_id, "run_trace_id": inputs.run_trace_id},
            "banner": banner,
            "notices": notices,
            "sections": [s.as_dict() for s in sections],
            "sources": m.sources,
            "charts": [c.as_dict() for c in chart_list],
            "statistics": m.stats,
            "provenance": {
                "run_id": ctx.run_id, "run_trace_id": inputs.run_trace_id, "report_trace_id": ctx.trace_id,
                "job_id": ctx.job_id,
                "engines": {e.engine: {"job_id": e.job_id, "status": e.status, "trace_id": e.trace_id,
                                       "mode": e.mode, "paragraphs": len(e.paragraphs), "sources": len(e.sources),
                                       "from_checkpoint": e.from_checkpoint, "error": redact(e.error or "")[:300] or None}
                            for e in inputs.engine_list()},
                "forum": m.stats["forum"],
            },
            "files": {k: p.name for k, p in paths.items()},
        }


def build_charts(inputs: ReportInputs, m: Material) -> list[charts.Chart]:
    zh = m.zh
    st = m.stats
    return [charts.sentiment_over_time(st["days"], zh, min_n=MIN_SAMPLE),
            charts.platform_mix([(r["name"], r["n"]) for r in st["platform_rows"]], zh),
            charts.engine_coverage([{"engine": e.engine, "label": e.label, "sources": len(e.sources),
                                     "paragraphs": len(e.paragraphs), "status": e.status}
                                    for e in inputs.engine_list()], zh),
            charts.forum_activity(list(st["forum"]["by_source"].items()), [x.timestamp for x in inputs.forum], zh)]


def known_names(m: Material) -> set[str]:
    """Names a sentence may use without a citation: platforms, engines, forum speakers, actors."""
    from core.research.offline import PLATFORMS

    names = {n for pair in PLATFORMS.values() for n in pair} | set(ENGINE_LABELS.values())
    names |= {f"{v} engine" for v in ENGINE_LABELS.values()} | {f"{v} 引擎" for v in ENGINE_LABELS.values()}
    names |= set(m.stats["forum"]["by_source"]) | {"HOST", "QUERY", "MEDIA", "INSIGHT", "Shoal", "BettaFish"}
    names |= {r["name"] for r in m.stats["platform_rows"]} | {a["name"] for a in m.stats["actors"]}
    names |= {k["word"] for k in m.stats["keywords"]}
    return names


def verify_claims(m: Material, sections: list[SectionResult], judge: claimcheck.Judge | None = None
                  ) -> list[claimcheck.Claim]:
    """The claims of every section, checked against the cited sources and the report's statistics
    (core.reporting.claims). The forum section's quotes may come from the forum's messages."""
    ev = claimcheck.evidence(m.stats, m.sources, m.texts, zh=m.zh, topic=m.topic, names=known_names(m))
    forum_texts = [x.content for x in m.forum]
    return claimcheck.verify_sections(((s.key, s.markdown, forum_texts if s.kind == "forum" else ())
                                       for s in sections), ev, judge)


def _ensure_row(ctx: JobContext) -> str:
    """The report id of this job: from its params, its checkpoint, or a new row (a job added
    directly with report_job_spec() and no id)."""
    rid = ctx.params.get("report_id") or ctx.checkpoint.get("report_id")
    db = ctx.db
    if rid:
        with db.session() as s:
            exists = s.get(Report, rid) is not None
        if exists:
            return rid
    rid = rid if rid and re.fullmatch(r"[A-Za-z0-9]{1,32}", rid) else secrets.token_hex(8)
    now = utcnow()
    with db.session() as s:
        s.add(Report(id=rid, run_id=ctx.run_id, status=R_PENDING, stage="waiting", progress=0.0,
                     partial=bool(ctx.params.get("partial")), title="", trace_id=ctx.trace_id, created_at=now,
                     updated_at=now))
    ctx.save_checkpoint(None, report_id=rid)
    return rid


def run_report_job(ctx: JobContext) -> dict:
    report_id = _ensure_row(ctx)
    writer = _Writer(ctx, report_id, ctx.settings)
    db = ctx.db
    try:
        return writer.run()
    except LeaseLost:
        raise  # another worker owns the job now: write nothing
    except JobCancelled:
        if ctx.cancel_reason == "lease_lost":
            raise
        if ctx.cancel_reason == "shutdown":
            _update_row(db, report_id, status=R_PENDING)
            writer.emit("report.interrupted", {"reason": "shutdown"})
        elif ctx.cancel_reason == "timeout":
            _update_row(db, report_id, status=R_ERROR, error="the report job timed out")
            writer.emit("report.error", {"error": "the report job timed out"})
        else:
            _update_row(db, report_id, status=R_CANCELLED)
            writer.emit("report.cancelled", {})
        raise
    except ReportSkipped as exc:
        _update_row(db, report_id, status=R_CANCELLED, error=str(exc))
        writer.emit("report.cancelled", {"reason": str(exc)})
        raise JobCancelled("skipped") from None
    except Exception as exc:
        error = redact(str(exc) if isinstance(exc, ReportError) else f"{exc.__class__.__name__}: {exc}")[:2000]
        _update_row(db, report_id, status=R_ERROR, error=error)
        writer.emit("report.error", {"error": error})
        raise
