"""One quote, once per report: a post (or a near-duplicate of it) quoted in one section is not quoted
again in another, nor twice in the same one.

Sections are written in parallel and each picks its own representative posts, so the same complaint
would otherwise appear under findings, sentiment, risk and recommendations alike. This pass walks the
sections in order and drops a quoting line whose quote repeats (character-shingle Jaccard >= 0.7,
``core.text.dedup``) a quote kept earlier.
"""
from __future__ import annotations

import re

from core.text.dedup import similarity

THRESHOLD = 0.7
MIN_QUOTE_CHARS = 8
_BULLET = re.compile(r"^\s*(?:[-*]|\d+\.)\s+(?:\*\*[^*]+\*\*[：:]?\s*)?(.+?)\s*(?:\[\d{1,4}\]\s*)+$")
_MARKED = re.compile(r"[「“]([^」”]{8,})[」”]")
_TRAILING_ELLIPSIS = re.compile(r"[…\.]{1,3}$")


def quotes_in(line: str) -> list[str]:
    """The quoted post text of one Markdown line: a cited bullet's text, and 「…」/“…” quotes."""
    out = [q for q in _MARKED.findall(line)]
    m = _BULLET.match(line)
    if m and not out:
        out.append(m.group(1))
    return [_TRAILING_ELLIPSIS.sub("", q.strip()) for q in out if len(q.strip()) >= MIN_QUOTE_CHARS]


def _repeats(quote: str, kept: list[str]) -> bool:
    return any(similarity(quote, k) >= THRESHOLD or (len(quote) >= 12 and (quote in k or k in quote)) for k in kept)


def drop_repeated_quotes(sections: list[str]) -> list[str]:
    """The sections' Markdown, in order, without lines that quote something already quoted."""
    kept: list[str] = []
    out = []
    for markdown in sections:
        lines = []
        for line in (markdown or "").splitlines():
            quotes = quotes_in(line)
            if quotes and any(_repeats(q, kept) for q in quotes):
                continue
            kept.extend(quotes)
            lines.append(line)
        out.append("\n".join(lines))
    return out
