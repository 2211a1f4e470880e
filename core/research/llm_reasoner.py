"""The LLM implementation of the reasoning steps: one prompt per node, each stating its JSON.

Documents reach the model as a numbered list using the engine's citation numbers, and the
summaries must cite them as [n]; the final source list is appended by code, not by the model,
so every citation resolves. The forum's guidance (the host's latest speech, the analyst's latest
messages: ForumGuidance) is in the search-plan and summary prompts; the analyst's questions must be
answered.
"""
from __future__ import annotations

from core.research.reasoning import (NO_GUIDANCE, ForumGuidance, Paragraph, ParagraphResult, ReasonContext,
                                     SearchPlan, Source)
from core.reporting.text import source_list_markdown

EXCERPT_CHARS = 350
MAX_SOURCES_IN_PROMPT = 15

SYSTEM = ("You are the {title} of Shoal, a public-opinion analysis team. You focus on {focus}. "
          "Write in the language of the topic (Chinese topics get Chinese answers). Use only the material you are "
          "given; never invent facts, numbers, quotes or sources. Answer with exactly the JSON object requested, "
          "no prose around it.")


def _system(ctx: ReasonContext) -> str:
    return SYSTEM.format(title=ctx.engine_title, focus=ctx.focus)


def _tools_text(ctx: ReasonContext) -> str:
    lines = []
    for t in ctx.tools:
        extra = f" (optional params: {', '.join(t.params)})" if t.params else ""
        lines.append(f"- {t.name}: {t.description}{extra}")
    return "\n".join(lines)


def _sources_text(sources: list[Source]) -> str:
    if not sources:
        return "(no documents were found)"
    out = []
    for s in sources[:MAX_SOURCES_IN_PROMPT]:
        d = s.doc
        date = d.published.strftime("%Y-%m-%d") if d.published else "date unknown"
        meta = f"{d.platform or d.source} · {date} · likes {d.likes} · comments {d.comments} · shares {d.shares}"
        if d.sentiment is not None:
            meta += f" · sentiment {'positive' if d.sentiment >= 0.5 else 'negative'} ({d.sentiment:.2f})"
        body = " ".join(d.text.split())[:EXCERPT_CHARS]
        out.append(f"[{s.n}] {d.title or body[:40]} ({meta})\n{body}")
    return "\n\n".join(out)


MAX_HUMAN_CHARS_IN_PROMPT = 2000


def _host_text(guidance: ForumGuidance | None, *, answer: bool = True) -> str:
    """The forum's guidance for a prompt: the host's remarks, then the analyst's messages, with what to do.
    A search plan (``answer=False``) gets the analyst's messages only."""
    g = guidance or NO_GUIDANCE
    out = ""
    if answer and (g.host_speech or "").strip():
        out += ("\n\nThe forum host's latest remarks (address their questions where your material allows):\n"
                + g.host_speech[:2000])
    human = [h.strip()[:MAX_HUMAN_CHARS_IN_PROMPT] for h in g.human if h.strip()]
    if human:
        todo = ("Answer them explicitly in the paragraph, from the documents only; where the documents say nothing "
                "about a question, say so plainly." if answer else
                "Let the search address the latest of them if this paragraph's documents do not answer it yet.")
        out += ("\n\nThe human analyst's latest messages in the forum (the person this report is for). " + todo + "\n"
                + "\n".join(f"- {h}" for h in human))
    return out


class LlmReasoner:
    mode = "llm"

    def __init__(self, client):
        self.client = client

    def _json(self, ctx: ReasonContext, node: str, user: str, required: tuple[str, ...]) -> dict:
        return self.client.complete_json(_system(ctx), user, required_keys=required, node=node,
                                         run_id=ctx.run_id or None, job_id=ctx.job_id or None)

    def _plan(self, ctx: ReasonContext, data: dict, fallback_query: str) -> SearchPlan:
        names = {t.name: t for t in ctx.tools}
        tool = str(data.get("search_tool") or "")
        if tool not in names:
            tool = ctx.tools[0].name if ctx.tools else "search"
        allowed = set(names[tool].params) if tool in names else set()
        params = {k: v for k, v in data.items() if k in allowed and v not in (None, "")}
        query = " ".join(str(data.get("search_query") or fallback_query).split())[:200] or fallback_query
        return SearchPlan(query=query, tool=tool, params=params, reasoning=str(data.get("reasoning", ""))[:500])

    def plan_structure(self, ctx: ReasonContext, overview: list[Source]) -> list[Paragraph]:
        user = (f"Topic: {ctx.topic}\n\nA first look at what is out there:\n{_sources_text(overview)}\n\n"
                f"Plan a report of exactly {ctx.n_paragraphs} paragraphs on this topic from your angle ({ctx.focus}). "
                'Return JSON: {"paragraphs": [{"title": "short heading", "content": "what this paragraph must '
                'cover, one or two sentences"}]}')
        data = self._json(ctx, "ReportStructureNode", user, ("paragraphs",))
        items = [p for p in data.get("paragraphs") or [] if isinstance(p, dict) and p.get("title")]
        if not items:
            from core.llm.client import LlmJsonError

            raise LlmJsonError("the report structure had no paragraphs")
        return [Paragraph(index=i, title=str(p["title"])[:120], brief=str(p.get("content", ""))[:600])
                for i, p in enumerate(items[: ctx.n_paragraphs])]

    def plan_first_search(self, ctx: ReasonContext, paragraph: Paragraph,
                          guidance: ForumGuidance = NO_GUIDANCE) -> SearchPlan:
        user = (f"Topic: {ctx.topic}\nParagraph: {paragraph.title}\nIt must cover: {paragraph.brief}"
                f"{_host_text(guidance, answer=False)}\n\nTools:\n{_tools_text(ctx)}\n\n"
                "Choose one tool and a search query for this paragraph. Dates are "
                'YYYY-MM-DD. Return JSON: {"search_query": "...", "search_tool": "tool name", "reasoning": "why", '
                'plus any optional params of that tool}')
        return self._plan(ctx, self._json(ctx, "FirstSearchNode", user, ("search_query",)),
                          f"{ctx.topic} {paragraph.title}")

    def first_summary(self, ctx: ReasonContext, paragraph: Paragraph, sources: list[Source],
                      guidance: ForumGuidance = NO_GUIDANCE) -> str:
        user = (f"Topic: {ctx.topic}\nParagraph: {paragraph.title}\nIt must cover: {paragraph.brief}\n\n"
                f"Documents:\n{_sources_text(sources)}{_host_text(guidance)}\n\n"
                "Write this paragraph of the report (about 300-600 characters of analysis, Markdown allowed), citing "
                "documents as [n] after the facts they support. If the documents do not cover it, say so plainly. "
                'Return JSON: {"paragraph_latest_state": "..."}')
        data = self._json(ctx, "FirstSummaryNode", user, ("paragraph_latest_state",))
        return str(data["paragraph_latest_state"]).strip()

    def plan_reflection(self, ctx: ReasonContext, paragraph: Paragraph, summary: str,
                        sources: list[Source], guidance: ForumGuidance = NO_GUIDANCE) -> SearchPlan | None:
        user = (f"Topic: {ctx.topic}\nParagraph: {paragraph.title}\nIt must cover: {paragraph.brief}\n\n"
                f"The paragraph so far:\n{summary}{_host_text(guidance, answer=False)}\n\n"
                f"Tools:\n{_tools_text(ctx)}\n\n"
                "What important aspect is still missing or weakly supported? Plan one more search for it. If nothing "
                'useful is missing, set "done": true. Return JSON: {"search_query": "...", "search_tool": "...", '
                '"reasoning": "what is missing", "done": false}')
        data = self._json(ctx, "ReflectionNode", user, ("search_query",))
        if data.get("done") is True or not str(data.get("search_query") or "").strip():
            return None
        return self._plan(ctx, data, f"{ctx.topic} {paragraph.title}")

    def reflection_summary(self, ctx: ReasonContext, paragraph: Paragraph, summary: str, new_sources: list[Source],
                           all_sources: list[Source], guidance: ForumGuidance = NO_GUIDANCE) -> str:
        user = (f"Topic: {ctx.topic}\nParagraph: {paragraph.title}\n\nThe paragraph so far:\n{summary}\n\n"
                f"New documents:\n{_sources_text(new_sources)}{_host_text(guidance)}\n\n"
                "Rewrite the paragraph to integrate what the new documents add (keep earlier citations that still "
                "apply, cite new facts as [n], stay under about 900 characters). "
                'Return JSON: {"updated_paragraph_latest_state": "..."}')
        data = self._json(ctx, "ReflectionSummaryNode", user, ("updated_paragraph_latest_state",))
        return str(data["updated_paragraph_latest_state"]).strip()

    def format_report(self, ctx: ReasonContext, results: list[ParagraphResult]) -> str:
        body = "\n\n".join(f"## {r.paragraph.title}\n\n{r.summary}" for r in results)
        user = (f"Topic: {ctx.topic}\n\nThe paragraphs of your report:\n\n{body}\n\n"
                "Write a title and a 2-3 sentence overview that opens this report, based only on the paragraphs. "
                'Return JSON: {"title": "...", "overview": "..."}')
        data = self._json(ctx, "ReportFormattingNode", user, ("title",))
        title = " ".join(str(data.get("title") or ctx.topic).split())[:150]
        overview = str(data.get("overview") or "").strip()
        return (f"# {title}\n\n*{ctx.engine_title} · LLM analysis*\n\n" + (f"{overview}\n\n" if overview else "")
                + body + "\n\n" + source_list_markdown(results))
