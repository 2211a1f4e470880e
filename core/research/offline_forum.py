"""The offline analyst and the forum (core/research/offline.py): what it does with ForumGuidance.

The analyst's messages (ForumGuidance.human) are a search to run and a point to answer:

  question_terms    a message's content words, without the topic's own and without question filler
                    (提到, 情况, what, think …), the MAX_TERMS most specific (by idf): what to search
                    for and what the paragraph must cover
  pending_question  the newest message whose terms the paragraph's text does not cover yet and that
                    was not searched for already: plan_reflection searches the topic and those terms
                    before anything else, and the summaries cover them first
  human_line        one sentence per message that answers it from the paragraph's sources (the best
                    ranked sentence sharing the most of its terms, cited), or says plainly that the
                    sources say nothing about those terms
  host_line         the same for the host's questions (the best sentence sharing words with one)

Nothing is invented: an answer quotes a source, or says there is none.
"""
from __future__ import annotations

import re
from typing import Sequence

from core.research.offline_stats import _Sentence
from core.research.reasoning import NO_GUIDANCE, ForumGuidance
from core.text.clean import clean_text
from core.text.keywords import contains, content_terms, idf, split_sentences, words

MAX_TERMS = 3
MAX_QUOTED = 60  # characters of a question quoted in an answer

# words of a question that ask rather than say what about
_QUESTION_FILLER = frozenset({
    "提到", "情况", "看法", "问题", "说法", "有人", "有没有", "是否", "怎么", "怎么样", "怎么看", "如何", "什么", "哪些",
    "为什么", "多少", "请问", "分析", "补充", "一下", "关注", "讨论", "方面", "舆情", "大家", "网友", "引擎",
    "what", "how", "why", "which", "about", "think", "view", "views", "say", "says", "said", "mention", "mentions",
    "anyone", "anything", "please", "tell", "there", "does", "do", "is", "are", "the", "and", "any",
})

_A_NOT_A = re.compile(r"^(.)[不没]\1$")  # 够不够, 是不是, 有没有: asking, not a subject

# the lines a summary adds for the forum (answers, notes): not what its body covers
_FORUM_LINE = re.compile(r"^\s*(\*\*(回应分析师|回应主持人|Answering the analyst|Responding to the host)\*\*|"
                         r"\*(补充检索|Follow-up search))")


def _guidance(guidance: ForumGuidance | None) -> ForumGuidance:
    return guidance if isinstance(guidance, ForumGuidance) else NO_GUIDANCE


def question_terms(text: str, exclude: Sequence[str] = ()) -> list[str]:
    """The content words of an analyst's message (at most MAX_TERMS), without ``exclude`` (the topic's)."""
    skip = {e.lower() for e in exclude if e}
    out: list[str] = []
    for w in content_terms(clean_text(text or "")):
        lw = w.lower()
        if lw in _QUESTION_FILLER or _A_NOT_A.match(w) or lw in skip or any(lw in s for s in skip if len(s) > len(lw)) or w in out:
            continue
        out.append(w)
    if len(out) > MAX_TERMS:  # the most specific ones (highest idf), in the question's order
        keep = set(sorted(out, key=lambda w: -idf(w))[:MAX_TERMS])
        out = [w for w in out if w in keep]
    return out


def body(summary: str) -> str:
    """A summary without its forum lines (answers to the host and the analyst, follow-up notes)."""
    return "\n".join(line for line in (summary or "").splitlines() if not _FORUM_LINE.match(line))


def searched_note(terms: Sequence[str], zh: bool) -> str:
    shown = " ".join(terms)
    return (f"*补充检索「{shown}」：新来源中未发现相关内容。*" if zh else
            f"*Follow-up search for “{shown}”: nothing new was found.*")


def pending_question(guidance: ForumGuidance | None, summary: str,
                     exclude: Sequence[str] = ()) -> tuple[str, list[str]] | None:
    """(message, its terms the summary's body misses) for the newest analyst message that still needs a
    search; None when every message's terms are covered or were searched for already."""
    text = body(summary)
    for question in reversed(_guidance(guidance).human):
        terms = question_terms(question, exclude)
        missing = [t for t in terms if not contains(text, t)]
        if not missing:
            continue
        shown = " ".join(missing)
        if f"「{shown}」" in (summary or "") or f"“{shown}”" in (summary or ""):
            continue  # already searched: the note says nothing was found
        return question, missing
    return None


def _quoted(text: str) -> str:
    q = " ".join(clean_text(text).split())
    return q if len(q) <= MAX_QUOTED else q[:MAX_QUOTED] + "…"


def human_line(zh: bool, question: str, terms: Sequence[str], sentences: Sequence[_Sentence],
               order: Sequence[int]) -> str:
    """The answer to one analyst message from the paragraph's sentences (ranked by ``order``)."""
    q = _quoted(question)
    best = None  # ((terms shared, -rank position), sentence index, shared terms)
    for pos, i in enumerate(order):
        shared = [t for t in terms if contains(sentences[i].text, t)]
        if shared and (best is None or (len(shared), -pos) > best[0]):
            best = ((len(shared), -pos), i, shared)
    if not terms:
        return (f"**回应分析师**：关于「{q}」，问题中没有可检索的关键词，本段无法针对性回答。" if zh else
                f"**Answering the analyst**: “{q}” has no searchable terms; this paragraph cannot answer it.")
    if best is None:
        shown = "、".join(terms) if zh else ", ".join(terms)
        return (f"**回应分析师**：关于「{q}」，本段检索到的来源没有涉及 {shown}，无法据此回答。" if zh else
                f"**Answering the analyst**: on “{q}”, this paragraph's sources say nothing about {shown}, "
                "so it cannot be answered from them.")
    _, i, shared = best
    s = sentences[i]
    if zh:
        return f"**回应分析师**：关于「{q}」，来源中涉及 {'、'.join(shared)} 的说法：“{s.text}” [{s.n}]"
    return f"**Answering the analyst**: on “{q}”, the sources say this about {', '.join(shared)}: “{s.text}” [{s.n}]"


def human_lines(zh: bool, guidance: ForumGuidance | None, sentences: Sequence[_Sentence], order: Sequence[int],
                exclude: Sequence[str] = ()) -> list[str]:
    return [human_line(zh, q, question_terms(q, exclude), sentences, order)
            for q in _guidance(guidance).human if q.strip()]


def no_source_lines(zh: bool, guidance: ForumGuidance | None) -> list[str]:
    """The forum lines of a paragraph that found nothing."""
    g = _guidance(guidance)
    out = [(f"**回应分析师**：本段没有可用来源，无法回答「{_quoted(q)}」。" if zh else
            f"**Answering the analyst**: this paragraph has no sources to answer “{_quoted(q)}”.")
           for q in g.human if q.strip()]
    if (g.host_speech or "").strip():
        out.append("**回应主持人**：本段没有可用来源，无法回应主持人的问题。" if zh else
                   "**Responding to the host**: this paragraph has no sources to answer the host's questions.")
    return out


def host_line(zh: bool, host_speech: str | None, sentences: Sequence[_Sentence], order: Sequence[int]) -> str:
    """The answer to the host's questions: the best sentence sharing words with one of them."""
    if not (host_speech or "").strip():
        return ""
    cleaned = clean_text(host_speech)
    parts = split_sentences(cleaned, min_chars=4)
    questions = [q for q in parts if q.rstrip("”」』）) ").endswith(("？", "?"))] or parts[:2]
    if not questions:
        return ""
    best = None  # (overlap, -question index, -rank position) → (question, sentence index, shared words)
    for qi, q in enumerate(questions):
        qwords = set(words(q))
        if not qwords:
            continue
        for pos, i in enumerate(order):
            shared = [w for w in words(sentences[i].text) if w in qwords]
            shared = list(dict.fromkeys(shared))
            if not shared:
                continue
            key = (len(shared), -qi, -pos)
            if best is None or key > best[0]:
                best = (key, q, i, shared)
    if best is None:
        q = questions[0]
        q = q if len(q) <= 60 else q[:60] + "…"
        return (f"**回应主持人**：关于「{q}」，本段来源中没有找到直接相关的内容。" if zh else
                f"**Responding to the host**: on “{q}”, this paragraph's sources hold nothing directly relevant.")
    _, q, i, shared = best
    q = q if len(q) <= 60 else q[:60] + "…"
    s = sentences[i]
    if zh:
        return (f"**回应主持人**：关于「{q}」，来源中的相关关键词为 {'、'.join(shared[:4])}，"
                f"例如：“{s.text}” [{s.n}]")
    return (f"**Responding to the host**: on “{q}”, the sources mention {', '.join(shared[:4])}, "
            f"for example: “{s.text}” [{s.n}]")
