"""The reasoning steps of a research engine, behind one interface with two implementations.

  LlmReasoner      (core/research/llm_reasoner.py)  prompts an OpenAI-compatible model and parses its JSON
  OfflineReasoner  (core/research/offline.py)       deterministic algorithms over the retrieved documents

The engine (core/research/engine.py) owns searching, parallelism, checkpoints and logging; a reasoner
only decides: the report's structure, what to search, and what the paragraph says.
Citations: every document the engine retrieved has a number in the engine's source list
(`Source.n`); summaries cite those numbers as [n].
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

from core.corpus.documents import Document


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    params: tuple[str, ...] = ()  # optional parameters beyond the query, e.g. ("start_date", "end_date")


@dataclass
class Paragraph:
    index: int
    title: str
    brief: str  # what this paragraph should cover

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchPlan:
    query: str
    tool: str
    params: dict = field(default_factory=dict)
    reasoning: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Source:
    """A document with its citation number in this engine's report."""
    n: int
    doc: Document


@dataclass
class ReasonContext:
    topic: str
    engine: str  # query | media | insight
    engine_title: str  # e.g. "Query engine (news and web search)"
    focus: str  # what this engine looks at, one sentence, used in prompts and offline structure
    tools: tuple[ToolSpec, ...]
    n_paragraphs: int
    run_id: str = ""
    job_id: str = ""


@dataclass(frozen=True)
class ForumGuidance:
    """What an engine reads from the forum before a search plan or a summary (core.forum.forum_guidance):
    the host's latest speech and the analyst's latest messages (oldest first). Both are answered:
    the host's questions where the material allows, the analyst's always (plainly, when the sources
    say nothing about them)."""
    host_speech: str | None = None
    human: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()  # the forum message ids it holds (the speech's, the analyst's): provenance

    def __bool__(self) -> bool:
        return bool((self.host_speech or "").strip() or any(h.strip() for h in self.human))


NO_GUIDANCE = ForumGuidance()


@dataclass
class ParagraphResult:
    paragraph: Paragraph
    summary: str  # the latest paragraph state, Markdown with [n] citations
    sources: list[Source]  # what this paragraph retrieved, in citation order
    searches: list[SearchPlan] = field(default_factory=list)


class Reasoner(Protocol):
    mode: str  # "llm" | "offline"

    def plan_structure(self, ctx: ReasonContext, overview: list[Source]) -> list[Paragraph]:
        """P paragraphs (ctx.n_paragraphs) for the report. `overview` is a first broad search on the
        topic, so the structure can fit what is actually out there."""

    def plan_first_search(self, ctx: ReasonContext, paragraph: Paragraph,
                          guidance: ForumGuidance = NO_GUIDANCE) -> SearchPlan:
        """The first search for a paragraph: a query and one of ctx.tools."""

    def first_summary(self, ctx: ReasonContext, paragraph: Paragraph, sources: list[Source],
                      guidance: ForumGuidance = NO_GUIDANCE) -> str:
        """The paragraph's first state from what the first search found, answering the forum's guidance."""

    def plan_reflection(self, ctx: ReasonContext, paragraph: Paragraph, summary: str,
                        sources: list[Source], guidance: ForumGuidance = NO_GUIDANCE) -> SearchPlan | None:
        """What is missing from the summary (an analyst's question first), as a new search; None when
        nothing useful is left."""

    def reflection_summary(self, ctx: ReasonContext, paragraph: Paragraph, summary: str, new_sources: list[Source],
                           all_sources: list[Source], guidance: ForumGuidance = NO_GUIDANCE) -> str:
        """The updated paragraph state after a reflection search, answering the forum's guidance."""

    def format_report(self, ctx: ReasonContext, results: list[ParagraphResult]) -> str:
        """The engine's report in Markdown: a title, the paragraphs, and the numbered sources."""
