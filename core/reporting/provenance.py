"""A report's provenance graph: section → engine paragraphs → forum messages and host rounds → LLM calls
and trace ids, computed from what is stored (the sections' own record of what they were fed, the
run's forum_messages, llm_calls and events), never parsed back from HTML or logs.

    SectionProvenance   a report section: the paragraphs and forum messages it was written from
                        (ReportSection.paragraphs / forum_ids, recorded by core.reporting.writers as
                        it fed them), its trace id and the REPORT_ENGINE calls made under it
    ParagraphRef        an engine paragraph ("query-3": engine and paragraph index): its job, the
                        trace ids it ran under (each paragraph runs in a child trace of its job,
                        core.research.engine), its own forum messages (the summaries it posted), the
                        host speeches and analyst messages its nodes read (recorded by the engine as it
                        read them; for a result from before that record, the latest one stored before
                        each summary), the rounds they fell in, and its LLM calls (rows of
                        llm_calls under its traces, and the calls that wrote its messages)
    ForumRef            a forum message: its round, the host speech of that round, its trace id and
                        the llm_calls row that wrote it (None offline)
    LlmCallRef          an llm_calls row: node, role, model, status, job and trace id

Anchors in the HTML (core/reporting/templates/_provenance.html.j2): ``sec-<key>``, ``para-<engine>-<index>``,
``forum-<id>``, ``llm-<id>``; the JSON carries the same ids (the document's "provenance" › "graph":
"monitor_url", "sections", "paragraphs", "forum", "llm_calls", each row with its "anchor"). Every trace id links to the Monitor page's trace view,
``<SHOAL_PUBLIC_URL>/Monitor?trace=<id>`` (an empty setting gives the app-relative ``/Monitor?trace=…``,
which works when the report is shown in the app; a downloaded file needs the setting).
"""
from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Iterable
from urllib.parse import quote

from sqlalchemy import select

from core.forum import ForumMessage
from core.infra.models import Event, LlmCall
from core.reporting.text import plain
from core.research.names import ENGINE_NAMES

MONITOR_PATH = "/Monitor"
MAX_LLM_ROWS = 20_000     # llm_calls rows of one run read for the graph, at most
EXCERPT_CHARS = 140
TRACE_RE = re.compile(r"^[A-Za-z0-9._-]{4,80}$")   # what a trace link may carry (ids are hex with dots)


def paragraph_ref(engine: str, index: int) -> str:
    return f"{engine}-{index}"


def monitor_base(public_url: Any) -> str:
    """The Monitor page's address: SHOAL_PUBLIC_URL (an http(s) URL) + /Monitor, else the app-relative path."""
    base = str(public_url or "").strip().rstrip("/")
    return (base + MONITOR_PATH) if re.match(r"^https?://[^\s\"'<>`\\]+$", base) else MONITOR_PATH


def trace_link(base: str, trace_id: str) -> str | None:
    """The Monitor trace view of `trace_id`, or None for an id a link should not carry."""
    trace_id = (trace_id or "").strip()
    return f"{base}?trace={quote(trace_id, safe='.-_')}" if TRACE_RE.match(trace_id) else None


@dataclass
class LlmCallRef:
    id: int
    node: str
    role: str
    model: str
    status: str
    trace_id: str
    job_id: str | None

    @property
    def anchor(self) -> str:
        return f"llm-{self.id}"


@dataclass
class ForumRef:
    id: int
    type: str                       # agent | host | system (or what the forum adds)
    source: str
    round: int | None
    paragraph: int | None
    trace_id: str
    llm_call_id: int | None
    host_speech_id: int | None      # the host speech of this message's round, once the host spoke
    excerpt: str = ""

    @property
    def anchor(self) -> str:
        return f"forum-{self.id}"


@dataclass
class ParagraphRef:
    ref: str                        # "query-3"
    engine: str
    index: int
    title: str
    job_id: str | None
    trace_ids: list[str] = field(default_factory=list)
    forum_ids: list[int] = field(default_factory=list)   # the summaries it posted
    host_ids: list[int] = field(default_factory=list)    # the host speeches and analyst messages it read
    rounds: list[int] = field(default_factory=list)
    llm_call_ids: list[int] = field(default_factory=list)
    used_by: list[str] = field(default_factory=list)     # the sections (keys) written from it

    @property
    def anchor(self) -> str:
        return f"para-{self.ref}"


@dataclass
class SectionProvenance:
    key: str
    index: int
    title: str
    mode: str
    trace_id: str
    paragraphs: list[str] = field(default_factory=list)  # ParagraphRef.ref
    forum_ids: list[int] = field(default_factory=list)   # messages fed to it directly (the forum's section)
    llm_call_ids: list[int] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"sec-{self.key}"


@dataclass
class ProvenanceGraph:
    monitor: str = MONITOR_PATH
    sections: list[SectionProvenance] = field(default_factory=list)
    paragraphs: list[ParagraphRef] = field(default_factory=list)
    forum: list[ForumRef] = field(default_factory=list)
    llm_calls: list[LlmCallRef] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The document's "provenance" keys: plain ids, with each element's anchor."""
        def rows(items: Iterable[Any]) -> list[dict]:
            return [{**asdict(x), "anchor": x.anchor} for x in items]
        return {"monitor_url": self.monitor, "sections": rows(self.sections), "paragraphs": rows(self.paragraphs),
                "forum": rows(self.forum), "llm_calls": rows(self.llm_calls)}

    @classmethod
    def from_dict(cls, d: Any) -> "ProvenanceGraph":
        """Tolerant: a document written before the graph existed gives an empty graph."""
        d = d if isinstance(d, dict) else {}

        def load(kind: type, key: str) -> list:
            names = set(kind.__dataclass_fields__)
            out = []
            for row in d.get(key) or []:
                if isinstance(row, dict):
                    try:
                        out.append(kind(**{k: v for k, v in row.items() if k in names}))
                    except TypeError:
                        continue
            return out
        return cls(str(d.get("monitor_url") or MONITOR_PATH), load(SectionProvenance, "sections"),
                   load(ParagraphRef, "paragraphs"), load(ForumRef, "forum"), load(LlmCallRef, "llm_calls"))

    def link(self, trace_id: str) -> str | None:
        return trace_link(self.monitor, trace_id)

    def section(self, key: str) -> SectionProvenance | None:
        return next((s for s in self.sections if s.key == key), None)

    @property
    def by_ref(self) -> dict[str, ParagraphRef]:
        return {p.ref: p for p in self.paragraphs}

    @property
    def forum_by_id(self) -> dict[int, ForumRef]:
        return {f.id: f for f in self.forum}

    @property
    def calls_by_id(self) -> dict[int, LlmCallRef]:
        return {c.id: c for c in self.llm_calls}


# --- building it from the stored data -------------------------------------------------------------

def _calls_by_trace(calls: Iterable["LlmCallRef"]) -> dict[str, list["LlmCallRef"]]:
    """Each call under its trace id and every ancestor of it (``a.b.c`` under ``a.b.c``, ``a.b``, ``a``),
    so the calls under a trace (itself or deeper) are one look-up."""
    out: dict[str, list[LlmCallRef]] = {}
    for c in calls:
        trace = c.trace_id
        while trace:
            out.setdefault(trace, []).append(c)
            trace = trace.rpartition(".")[0]
    return out


def _steers(m: ForumMessage) -> bool:
    """A message an engine reads into its next summary: the host's, and any other non-engine voice
    (an analyst's HUMAN message)."""
    return m.type not in ("agent", "system") or m.source == "HUMAN"


def build_provenance(db, run_id: str, paragraphs: list[dict], engine_jobs: dict[str, str | None],
                     forum: list[ForumMessage], sections: list, *, report_job_id: str | None,
                     public_url: Any = "") -> ProvenanceGraph:
    """The graph of one report. `paragraphs`: the material's paragraph dicts (engine, index, title);
    `engine_jobs`: engine → its job id; `sections`: the written ReportSection list (their
    `paragraphs` and `forum_ids` say what each was fed)."""
    graph = ProvenanceGraph(monitor=monitor_base(public_url))
    sources = {n.source: k for k, n in ENGINE_NAMES.items()}
    by_para: dict[tuple[str, int], list[ForumMessage]] = {}
    for m in forum:
        if m.type == "agent" and m.paragraph is not None and m.source in sources:
            by_para.setdefault((sources[m.source], m.paragraph), []).append(m)
    host_of_round = {m.round: m.id for m in forum if m.type == "host" and m.round is not None}
    steering_ids = sorted(m.id for m in forum if _steers(m))
    steering_set = set(steering_ids)

    with db.session() as s:
        calls = s.execute(select(LlmCall.id, LlmCall.node, LlmCall.role, LlmCall.model, LlmCall.status,
                                 LlmCall.trace_id, LlmCall.job_id).where(LlmCall.run_id == run_id)
                          .order_by(LlmCall.id).limit(MAX_LLM_ROWS)).all()
        # a summary the forum skipped as a duplicate leaves its paragraph's trace id on the skip's event
        skipped = s.execute(select(Event.trace_id, Event.payload).where(
            Event.run_id == run_id, Event.type == "forum.duplicate_skipped")).all()
    all_calls = {c.id: LlmCallRef(c.id, c.node or "", c.role or "", c.model or "", c.status or "", c.trace_id or "",
                                  c.job_id) for c in calls}
    under = _calls_by_trace(all_calls.values())
    skipped_traces: dict[tuple[str, int], set[str]] = {}
    for trace, payload in skipped:
        p = payload if isinstance(payload, dict) else {}
        if p.get("source") in sources and isinstance(p.get("paragraph"), int) and trace:
            skipped_traces.setdefault((sources[p["source"]], p["paragraph"]), set()).add(trace)

    used: dict[str, list[str]] = {}
    for sec in sections:
        for ref in getattr(sec, "paragraphs", []) or []:
            used.setdefault(ref, []).append(sec.key)

    wanted_forum: set[int] = set()
    wanted_calls: set[int] = set()
    for p in paragraphs:
        engine, index = p["engine"], int(p["index"])
        own = by_para.get((engine, index), [])
        job = engine_jobs.get(engine)
        traces = list(dict.fromkeys([m.trace_id for m in own if m.trace_id]
                                    + sorted(skipped_traces.get((engine, index), ()))))
        host_ids: list[int] = []
        if p.get("read") is not None:  # recorded by the engine: exactly the messages its nodes read
            host_ids = [i for i in p["read"] if i in steering_set]
        else:  # an older result: the latest steering message stored before each summary
            for m in own:
                k = bisect_left(steering_ids, m.id)
                if k and steering_ids[k - 1] not in host_ids:
                    host_ids.append(steering_ids[k - 1])
        call_ids = {c.id for t in traces for c in under.get(t, ()) if job is None or c.job_id in (job, None)}
        call_ids |= {m.llm_call_id for m in own if m.llm_call_id is not None}
        ref = ParagraphRef(paragraph_ref(engine, index), engine, index, plain(p.get("title"), 200), job, traces,
                           [m.id for m in own], sorted(host_ids),
                           sorted({m.round for m in own if m.round is not None}), sorted(call_ids),
                           used.get(paragraph_ref(engine, index), []))
        graph.paragraphs.append(ref)
        wanted_forum.update(ref.forum_ids + ref.host_ids)
        wanted_forum.update(host_of_round[r] for r in ref.rounds if r in host_of_round)  # its rounds' speeches
        wanted_calls.update(ref.llm_call_ids)

    for sec in sections:
        trace = sec.trace_id or ""
        sec_calls = sorted(c.id for c in (under.get(trace, ()) if trace else ())
                           if report_job_id is None or c.job_id == report_job_id)
        sp = SectionProvenance(sec.key, sec.index, sec.title, sec.mode, trace,
                               list(dict.fromkeys(getattr(sec, "paragraphs", []) or [])),
                               list(dict.fromkeys(getattr(sec, "forum_ids", []) or [])), sec_calls)
        graph.sections.append(sp)
        wanted_forum.update(sp.forum_ids)
        wanted_calls.update(sec_calls)

    for m in forum:  # the host speech of each listed summary's round is listed too
        if m.id in wanted_forum and m.type == "agent" and m.round in host_of_round:
            wanted_forum.add(host_of_round[m.round])
    for m in forum:
        if m.id in wanted_forum:
            graph.forum.append(ForumRef(m.id, m.type, m.source, m.round, m.paragraph, m.trace_id or "",
                                        m.llm_call_id, host_of_round.get(m.round) if m.type == "agent" else None,
                                        plain(m.content, EXCERPT_CHARS)))
            if m.llm_call_id is not None:
                wanted_calls.add(m.llm_call_id)
    missing = sorted(wanted_calls - set(all_calls))
    if missing:  # a message's call stored under another run id (or past MAX_LLM_ROWS)
        with db.session() as s:
            for c in s.execute(select(LlmCall.id, LlmCall.node, LlmCall.role, LlmCall.model, LlmCall.status,
                                      LlmCall.trace_id, LlmCall.job_id).where(LlmCall.id.in_(missing))).all():
                all_calls[c.id] = LlmCallRef(c.id, c.node or "", c.role or "", c.model or "", c.status or "",
                                             c.trace_id or "", c.job_id)
    graph.llm_calls = [all_calls[i] for i in sorted(wanted_calls) if i in all_calls]
    return graph


# --- the view the HTML partial draws (templates/_provenance.html.j2) -------------------------------

@dataclass
class ProvenanceView:
    """The graph with its look-ups and the report's words for it ([provenance] catalogue table)."""
    graph: ProvenanceGraph
    lang: str

    def t(self, key: str, **args: Any) -> str:
        from core.i18n import tr

        return tr(self.lang, f"provenance.{key}", **args)

    def link(self, trace_id: str) -> str | None:
        return self.graph.link(trace_id)

    def section(self, key: str) -> SectionProvenance | None:
        return self.graph.section(key)

    @cached_property
    def _paras(self) -> dict[str, ParagraphRef]:
        return self.graph.by_ref

    @cached_property
    def _messages(self) -> dict[int, ForumRef]:
        return self.graph.forum_by_id

    @cached_property
    def _calls(self) -> dict[int, LlmCallRef]:
        return self.graph.calls_by_id

    def para(self, ref: str) -> ParagraphRef | None:
        return self._paras.get(ref)

    def message(self, message_id: Any) -> ForumRef | None:
        return self._messages.get(message_id) if isinstance(message_id, int) else None

    def call(self, call_id: Any) -> LlmCallRef | None:
        return self._calls.get(call_id) if isinstance(call_id, int) else None

    def round_speeches(self, p: ParagraphRef) -> list[ForumRef]:
        """The host speeches of the rounds a paragraph's summaries fell in (listed in the graph)."""
        ids = [m.host_speech_id for f in p.forum_ids if (m := self.message(f)) is not None]
        return [h for i in dict.fromkeys(ids) if (h := self.message(i)) is not None]

    @property
    def relative(self) -> bool:
        """True when trace links are app-relative (SHOAL_PUBLIC_URL unset): they work inside the app only."""
        return self.graph.monitor == MONITOR_PATH


def provenance_view(provenance: Any, lang: str) -> ProvenanceView:
    return ProvenanceView(ProvenanceGraph.from_dict(provenance), lang)
