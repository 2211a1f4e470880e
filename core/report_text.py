"""Markdown pieces shared by the engines' reports: the numbered source list."""
from __future__ import annotations

import re

from .reasoning import ParagraphResult, Source

# [3], and grouped forms an LLM writes: [3, 5], [3，5], [3、5]
CITE_GROUP_RE = re.compile(r"\[(\d{1,4}(?:\s*[,，、]\s*\d{1,4})*)\]")
_NUM_RE = re.compile(r"\d{1,4}")


def cited(text: str) -> list[int]:
    """Citation numbers in a text, in order of first appearance."""
    seen: dict[int, None] = {}
    for m in CITE_GROUP_RE.finditer(text or ""):
        for n in _NUM_RE.findall(m.group(1)):
            seen.setdefault(int(n), None)
    return list(seen)


def cited_numbers(text: str) -> set[int]:
    return set(cited(text))


def source_line(s: Source) -> str:
    d = s.doc
    date = d.published.strftime("%Y-%m-%d") if d.published else "n.d."
    title = " ".join((d.title or d.content[:40]).split()).replace("[", "(").replace("]", ")")
    link = f" — <{d.url}>" if d.url else ""
    return f"[{s.n}] {title} — {d.platform or d.source} — {date}{link}"


def source_list_markdown(results: list[ParagraphResult], heading: str = "## Sources") -> str:
    """The sources the paragraphs actually cite, in citation-number order."""
    cited = set().union(*(cited_numbers(r.summary) for r in results)) if results else set()
    known = {s.n: s for r in results for s in r.sources}
    lines = [source_line(known[n]) for n in sorted(cited) if n in known]
    return heading + "\n\n" + ("\n".join(f"- {line}" for line in lines) if lines else "- (no sources cited)")
