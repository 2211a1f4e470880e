"""Writing a report: the outline, which findings go to which section, the offline (extractive)
writer, and the LLM steps (type, outline, one section) that fall back to it."""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Callable

from core.infra.redact import redact
from core.infra.tracing import trace_scope
from core.reporting.inputs import ENGINE_ORDER
from core.reporting.material import Material, Unit
from core.reporting.text import (
    ENGINE_LABELS, actors_line, cited, forum_section, host_questions, lead_lines, plain, risk_line, sentiment_line,
    src_label,
    strip_forum_exchanges, trend_line,
)
from core.reporting.types import AUTO, REPORT_TYPES, ReportSection, ReportType, normalise_type
from core.research.offline import platform_name
from core.work.jobs import JobCancelled, LeaseLost

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
              "headings above ###, and do not repeat the section title. "
              + ("About 300-600 Chinese characters. " if zh else "About 150-350 words. ")
              + f"Write in {lang} even where the material is in another language; keep a short quote of a "
              "source in its own language.")
    parts = [f"Topic: {m.topic}", f"Report: {title}", f"Section to write: {sec.title}", f"What to write: {sec.guidance}",
             "", "Statistics:", _stats_text(m)]
    engines: list[str] = []
    used_sources: list[int] = []
    if sec.kind == "forum":
        engines = ["forum"] if m.forum else []
        parts += ["", "Forum transcript (oldest first):"]
        parts += [line for _, line in prompt_forum(m)]
        if not m.forum:
            parts.append("(the forum has no messages)")
    else:
        parts += ["", "Findings from the engines:"]
        for p, block, summary in prompt_paragraphs(sec, m):
            parts.append(block)
            engines.append(p["engine"])
            used_sources += p["sources"] + cited(summary)
        if not engines:
            parts.append("(the engines produced no findings)")
    by_n = m.by_n
    listed = [by_n[n] for n in dict.fromkeys(used_sources) if n in by_n][:40]
    parts += ["", "Sources:"] + ([_prompt_source(s) for s in listed] or ["(none)"])
    return system, "\n".join(parts), list(dict.fromkeys(engines))


def prompt_forum(m: Material) -> list[tuple[int, str]]:
    """(message id, line) of the forum messages a forum section's prompt gives the model."""
    out, budget = [], MAX_PROMPT_FINDINGS
    for x in m.forum[-40:]:
        line = f"[{x.source}{' HOST' if x.type == 'host' else ''}] {plain(x.content, 600 if x.type == 'host' else 300)}"
        budget -= len(line)
        if budget < 0:
            break
        out.append((x.id, line))
    return out


def prompt_paragraphs(sec: OutlineSection, m: Material) -> list[tuple[dict, str, str]]:
    """(paragraph, block, summary) of the engine paragraphs a section's prompt gives the model."""
    out, budget = [], MAX_PROMPT_FINDINGS
    for p in _relevant_paragraphs(sec, m):
        summary = strip_forum_exchanges(p["summary"])
        block = f"### {ENGINE_LABELS.get(p['engine'], p['engine'])} engine — {p['title']}\n{summary[:3000]}"
        if budget - len(block) < 0:
            break
        budget -= len(block)
        out.append((p, block, summary))
    return out


def fed_material(sec: OutlineSection, units: list[Unit], m: Material, llm: bool) -> tuple[list[str], list[int]]:
    """What a section is written from (core.reporting.provenance): the engine paragraphs ("query-3")
    and forum message ids its prompt holds (llm), or its extract quotes (offline)."""
    if sec.kind == "forum":
        if llm:
            return [], [i for i, _ in prompt_forum(m)]
        hosts = [x for x in m.forum if x.type == "host"]
        return [], [x.id for x in (hosts if host_questions([x.content for x in hosts]) else hosts[-1:])]
    if llm:
        return [f"{p['engine']}-{p['index']}" for p, _, _ in prompt_paragraphs(sec, m)], []
    return list(dict.fromkeys(r for u in units for r in u.paragraph_refs)), []


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


# -- the LLM steps (each falls back to the offline result when the model fails) -----------------

def choose_type_llm(llm, material: Material, suggestion: str, *, run_id: str, job_id: str | None
                    ) -> tuple[str, str, str]:
    """(type key, "llm" or "rules", reason): the REPORT_ENGINE model picks the report type; raises LlmError."""
    options = "\n".join(f"- {t.key}: {t.name_en} — {t.purpose}" for t in REPORT_TYPES.values())
    brief = "\n".join(f"- {p['title']}: {plain(p['summary'], 200)}" for p in material.paragraphs[:12])
    system = "You classify public-opinion analyses into report types. Answer with JSON only."
    user = (f"Topic: {material.topic}\n\nReport types:\n{options}\n\nFindings:\n{brief or '(none)'}\n\n"
            f"A keyword rule suggests: {suggestion}\n\n"
            'Return JSON: {"report_type": "<one key from the list>", "reason": "<one sentence>"}')
    data = llm.complete_json(system, user, required_keys=("report_type",), node="ReportTypeNode",
                             run_id=run_id, job_id=job_id)
    key = str(data.get("report_type") or "").strip()
    try:
        key = normalise_type(key)
    except ValueError:
        key = AUTO
    if key == AUTO:
        return suggestion, "rules", f"the LLM answered an unknown type {str(data.get('report_type'))[:40]!r}"
    return key, "llm", plain(data.get("reason"), 300)


def outline_llm(llm, rtype: ReportType, material: Material, base: list[OutlineSection], title: str, *,
                run_id: str, job_id: str | None, log) -> tuple[str, list[OutlineSection]]:
    """The model names the report and its sections (keys and order stay the template's); on an LLM
    error the template's title and headings stay."""
    from core.llm.client import LlmError

    zh = material.zh
    listing = "\n".join(f'- key "{s.key}": {s.title} — {s.guidance}' for s in base)
    system = "You plan the outline of an analysis report. Answer with JSON only."
    user = (f"Topic: {material.topic}\nReport type: {rtype.name_en}\nLanguage: "
            f"{'Simplified Chinese' if zh else 'English'}\n\nSections (keep every key, in this order):\n"
            f"{listing}\n\nGive the report a specific title and each section a specific heading for this "
            'topic.\nReturn JSON: {"title": "...", "sections": [{"key": "...", "title": "..."}]}')
    try:
        data = llm.complete_json(system, user, required_keys=("sections",), node="ReportOutlineNode",
                                 run_id=run_id, job_id=job_id)
        named = {str(x.get("key")): plain(x.get("title"), 60) for x in data.get("sections") or []
                 if isinstance(x, dict)}
        base = [OutlineSection(**{**b.as_dict(), "title": named.get(b.key) or b.title}) for b in base]
        title = plain(data.get("title"), 120) or title
    except LlmError as exc:
        log.warning("report outline by LLM failed, using the template: {}", exc)
    return title, base


def write_section(index: int, sec: OutlineSection, units: list[Unit], material: Material, rtype: ReportType,
                  title: str, llm, *, run_id: str, job_id: str | None, trace_id: str, log,
                  check_cancelled: Callable[[], None]) -> ReportSection:
    """One section: the offline extract first, then (with an LLM) the model's text. Every writing
    failure becomes a failed section with a visible note; cancellation and a lost lease propagate."""
    t0 = time.perf_counter()
    with trace_scope(trace_id):
        check_cancelled()
        try:
            offline_md, offline_status, offline_engines = write_offline_section(sec, units, material)
            res = ReportSection(index, sec.key, sec.kind, sec.title, offline_status, "offline", offline_md,
                                engines=offline_engines, run_id=run_id, trace_id=trace_id)
            res.paragraphs, res.forum_ids = fed_material(sec, units, material, llm=False)
        except Exception as exc:  # noqa: BLE001 - a bug in one section's extract never sinks the report
            err = redact(f"{exc.__class__.__name__}: {exc}")[:300]
            log.opt(exception=exc).error("offline writing of section {} failed: {}", sec.key, err)
            res = ReportSection(index, sec.key, sec.kind, sec.title, "failed", "offline", "", error=err,
                                note=(f"本节写作出错（{err}）。" if material.zh else f"Writing this section failed ({err})."),
                                run_id=run_id, trace_id=trace_id)
        if llm is not None:
            from core.llm.client import LlmError

            system, user, engines = section_prompt(sec, material, rtype, title)
            try:
                # max_tokens and the deadline: the node's (core.llm.budgets, LLM_NODE_MAX_TOKENS)
                answer = llm.complete(system, user, node="ReportSectionNode", run_id=run_id, job_id=job_id)
                md = clean_llm_markdown(answer.text, sec.title)
                if not md:
                    raise LlmError("the model returned an empty section", role="REPORT_ENGINE")
                res.mode, res.markdown, res.engines = "llm", md, engines
                res.paragraphs, res.forum_ids = fed_material(sec, units, material, llm=True)
                res.status = "ok"
                if answer.truncated:
                    res.note = ("模型输出达到长度上限，本节可能不完整。" if material.zh else
                                "The model hit its length limit: this section may be cut short.")
            except LlmError as exc:
                err = redact(str(exc))[:300]
                log.warning("report section {} failed: {}", sec.key, err)
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
