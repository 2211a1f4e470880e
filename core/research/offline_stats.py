"""Documents for the offline analyst (core/research/offline.py): their text, sentences, dates, counts and
hotness, as the summaries quote and count them.

Names with a leading underscore are private to the offline analyst's modules (core/research/offline*.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from core.corpus.documents import Document, hotness
from core.research.reasoning import Source
from core.text.keywords import clean_text, split_sentences

# --- documents ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Sentence:
    text: str
    n: int  # citation number
    doc_pos: int  # position of the source in the list


def _doc_text(doc: Document) -> str:
    return clean_text(doc.text)


def _sentences(sources: Sequence[Source]) -> list[_Sentence]:
    out, seen = [], set()
    for pos, src in enumerate(sources):
        for s in split_sentences(_doc_text(src.doc)):
            key = s.lower()
            if key in seen:  # reposts: the first source keeps the sentence
                continue
            seen.add(key)
            out.append(_Sentence(s, src.n, pos))
    return out


def _day(d) -> str:
    """YYYY-MM-DD of a datetime (or of an ISO string), "" when unknown."""
    if isinstance(d, datetime):
        return d.strftime("%Y-%m-%d")
    if isinstance(d, str) and re.match(r"\d{4}-\d{2}-\d{2}", d):
        return d[:10]
    return ""


def _span(docs: Sequence[Document]) -> tuple[str, str] | None:
    dates = sorted(day for day in (_day(d.published) for d in docs) if day)
    if not dates:
        return None
    return dates[0], dates[-1]


def _num(x) -> int:
    try:
        return int(x or 0)
    except (TypeError, ValueError):
        return 0


def _hot(d: Document) -> float:
    return hotness(_num(d.likes), _num(d.comments), _num(d.shares), _num(d.views))


def _fmt_num(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0.0%"


def _snippet(doc: Document, limit: int = 30) -> str:
    text = _doc_text(doc).replace("\n", " ")
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def _dedupe_sources(sources: Sequence[Source]) -> list[Source]:
    seen, out = set(), []
    for s in sources:
        if s.n in seen:
            continue
        seen.add(s.n)
        out.append(s)
    return out


def _unique_by_doc(sources: Sequence[Source]) -> list[Source]:
    seen, out = set(), []
    for s in sources:
        if s.doc.doc_id in seen:
            continue
        seen.add(s.doc.doc_id)
        out.append(s)
    return out
