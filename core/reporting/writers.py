"""Writing a report: the outline, which findings go to which section, the offline (extractive)
writer and the LLM section prompt."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field


from core.reporting.inputs import ENGINE_ORDER
from core.reporting.material import Material, Unit
from core.reporting.text import (
    ENGINE_LABELS, actors_line, cited, forum_section, lead_lines, plain, risk_line, sentiment_line, src_label,
    strip_forum_exchanges, trend_line,
)
from core.reporting.types import ReportType
from core.research.offline import platform_name

UNITS_PER_SECTION = 6
MAX_PROMPT_FINDINGS = 12_000


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
            line = f"[{x.source}{' HOST' if x.type == 'host' else ''}] {plain(x.content, 600 if x.type == 'host' else 300)}"
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
    return (f"[{s['n']}] {src_label(s, 80)} — {where}"
            f" — {(s['published'] or 'n.d.')[:10]}{' — ' + who if who else ''} — sentiment "
            f"{s['sentiment_label'] or 'unknown'}{engagement}")


_FENCE_RE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n\s*```\s*$", re.S)


def clean_llm_markdown(text: str, title: str) -> str:
    text = (text or "").strip()
    if m := _FENCE_RE.match(text):
        text = m.group(1).strip()
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("#") and plain(lines[0].lstrip("# ")).strip() in (title, ""):
        lines = lines[1:]
    return "\n".join(lines).strip()
