"""Claims: every sentence of a report that states a figure, a date, a name or a quote, checked
against the sources it cites and the report's own statistics. Deterministic; run on every report.

    ev = evidence(stats, sources, texts, topic=..., zh=..., names=...)
    claims = verify_sections([(key, markdown, extra_texts), ...], ev, judge=None)
    summary(claims)                    -> {"total", "supported", "unsupported"}

A **sentence** is a piece of one Markdown line (list item, paragraph, quote; not a heading or
code) ending at 。！？；!?; or ". "; citation marks right after the end belong to it. A sentence
is a **claim** when it states a number, a percentage, a date, a quote (「…」 “…” "…" 『…』), a
title (《…》) or a named entity written in Latin script (an acronym such as BYD, or a capitalised
name mid-sentence). Chinese names are not detected on their own (there is no NER here); they are
checked when they sit inside a quote or title. Questions are not claims.

Each element is checked by exact matching, first against the sources the sentence cites ([n]),
then against the report's statistics:

- a percentage is supported when a statistic of the report (a ``pct`` value) equals it at the
  precision written (38.3% ↔ 38.3; 38% ↔ 37.5…38.49), or the same percentage is written in a
  cited source;
- a number (1,200 · 2万 · 3.5) when it equals a count or value the report computed, or a cited
  source's engagement figure, or it is written in a cited source's text;
- a date when it is a date of the statistics (a day with sources, the span, the forum), a cited
  source's publication day, or a date written in a cited source's text;
- a quote when it appears, ignoring spacing and a trailing "…", in a cited source's text (or,
  in the forum section, in a forum message);
- a name when it is a known actor, site, platform or engine, or appears in a cited source.

A claim with every element supported is supported; otherwise the reason names what failed.
``judge`` is the hook for an optional second opinion (e.g. an LLM): called for each claim the
exact pass did not support that cites at least one source, with the cited sources' texts; a
``(supported, reason)`` answer replaces the verdict, ``None`` keeps it. Nothing requires it.

Marking: ``insert_sentinels`` / ``sentinels_to_html`` wrap unsupported sentences for the HTML
(``<mark class="unsupported" title="reason">…<span class="tag">未核实</span></mark>``) through
private-use characters that survive the Markdown renderer's escaping; ``strip_marks`` removes
such characters from untrusted text first. ``mark_markdown`` appends " ⚠" for the Markdown file.
"""
from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

__all__ = ["Claim", "Evidence", "Judge", "evidence", "sentence_spans", "find_claim", "verify_section",
           "verify_sections", "summary", "strip_marks", "insert_sentinels", "sentinels_to_html",
           "mark_markdown", "summary_text"]

OPEN, MID, CLOSE = "\ue000", "\ue002", "\ue001"
_SENTINEL_RE = re.compile("[\ue000-\ue00f]")
_TERMINATORS = "。！？!?；;"
_CLOSERS = "”’」』）)】*_\"'"
_CITE_RE = re.compile(r"\[(\d{1,4}(?:\s*[,，、]\s*\d{1,4})*)\]")
_PREFIX_RE = re.compile(r"^\s*(?:>\s*)*(?:[-*+]\s+|\d{1,3}[.)、]\s*)?")
_HEADING_RE = re.compile(r"^\s*#{1,6}\s")
_RULE_RE = re.compile(r"^\s*(-{3,}|\*{3,}|_{3,})\s*$")
_LINK_URL_RE = re.compile(r"\]\(\s*[^()\s]{1,2000}\s*\)")
_MONTHS = {m: i for i, names in enumerate((
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
    ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
    ("dec", "december")), 1) for m in names}
_MONTH_ALT = "|".join(m.capitalize() for m in sorted(_MONTHS, key=len, reverse=True))  # English dates are capitalised
_DATE_RES = (
    ("ymd", re.compile(r"(?<!\d)(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})(?!\d)")),
    ("ymd", re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]")),
    ("ym", re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月")),
    ("md", re.compile(r"(?<![\d年])(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]")),
    ("mdy_en", re.compile(rf"\b({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?\b")),
    ("dmy_en", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH_ALT})\.?(?:,?\s+(\d{{4}}))?\b")),
)
_PCT_RE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*[%％]")
_NUMBER_RE = re.compile(r"(?<![A-Za-z0-9.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![A-Za-z0-9%％])\s*(万|亿|千)?")
_QUOTE_RES = (re.compile(r"「([^「」\n]{2,400})」"), re.compile(r"『([^『』\n]{2,400})』"),
              re.compile(r"“([^“”\n]{2,400})”"), re.compile(r'"([^"\n]{2,400})"'))
_TITLE_RE = re.compile(r"《([^《》\n]{1,80})》")
_NAME_RE = re.compile(r"(?<![A-Za-z0-9'’])([A-Z][A-Za-z0-9&'’-]*[A-Z0-9][A-Za-z0-9&'’-]*|[A-Z][a-z]{2,}[A-Za-z'’-]*)")
_NAME_STOP = {"I", "AI", "UTC", "LLM", "HTML", "JSON", "URL", "API", "OK", "Shoal", "Markdown", "PDF", "CSV", "N/A",
              "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
_MULT = {"千": 1_000, "万": 10_000, "亿": 100_000_000}

Judge = Callable[["Claim", list[str]], "tuple[bool, str] | None"]


@dataclass
class Claim:
    text: str
    section: str
    span: tuple[int, int]
    sources: list[int]
    supported: bool
    reason: str
    kinds: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["span"] = list(self.span)
        return d


@dataclass
class SourceEvidence:
    text: str                      # normalised: title, content, author, site
    dates: set[tuple[int | None, int, int | None]]
    numbers: set[float]


@dataclass
class Evidence:
    zh: bool
    sources: dict[int, SourceEvidence]
    numbers: set[float]
    percents: set[float]
    dates: set[tuple[int | None, int, int | None]]
    names: set[str]                # case-folded known names


# --- normalising ------------------------------------------------------------------------------

def _norm(text: str) -> str:
    t = unicodedata.normalize("NFKC", str(text or "")).casefold()
    t = t.replace("[", "(").replace("]", ")")
    t = re.sub(r"(?<=\d),(?=\d{3})", "", t)
    return re.sub(r"\s+", "", t)


def _dates_in(text: str) -> list[tuple[tuple[int | None, int, int | None], tuple[int, int]]]:
    """(year or None, month, day or None) of each date written in a text, with its span."""
    out = []
    taken: list[tuple[int, int]] = []
    for kind, rx in _DATE_RES:
        for m in rx.finditer(text or ""):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            g = m.groups()
            try:
                if kind == "ymd":
                    d = (int(g[0]), int(g[1]), int(g[2]))
                elif kind == "ym":
                    d = (int(g[0]), int(g[1]), None)
                elif kind == "md":
                    d = (None, int(g[0]), int(g[1]))
                elif kind == "mdy_en":
                    d = (int(g[2]) if g[2] else None, _MONTHS[g[0].lower()], int(g[1]))
                else:
                    d = (int(g[2]) if g[2] else None, _MONTHS[g[1].lower()], int(g[0]))
            except (KeyError, ValueError):
                continue
            if not 1 <= d[1] <= 12 or (d[2] is not None and not 1 <= d[2] <= 31):
                continue
            taken.append((m.start(), m.end()))
            out.append((d, (m.start(), m.end())))
    return out


def _iso_date(value: Any) -> tuple[int, int, int] | None:
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})", str(value or ""))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def _value(digits: str, decimals: str | None, mult: str | None) -> float:
    v = float(digits.replace(",", "") + (decimals or ""))
    return v * _MULT[mult] if mult else v


# --- evidence ---------------------------------------------------------------------------------

def evidence(stats: dict, sources: Sequence[dict], texts: dict[int, str], *, zh: bool, topic: str = "",
             names: Iterable[str] = ()) -> Evidence:
    """What claims are checked against: the statistics (every number, ``pct`` value and ISO date
    they hold), each source (its full text, publication day, engagement figures) and known names."""
    numbers: set[float] = set()
    percents: set[float] = set()
    dates: set[tuple[int | None, int, int | None]] = set()

    def walk(obj: Any, is_pct: bool) -> None:
        if isinstance(obj, bool) or obj is None:
            return
        if isinstance(obj, (int, float)):
            (percents if is_pct else numbers).add(float(obj))
        elif isinstance(obj, str):
            d = _iso_date(obj)
            if d:
                dates.add(d)
                numbers.add(float(d[0]))
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, is_pct or k == "pct" or str(k).endswith("_pct"))
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v, is_pct)

    walk(stats, False)
    per_source: dict[int, SourceEvidence] = {}
    known = {n.casefold() for n in names if n and len(n.strip()) >= 2}
    if topic.strip():
        known.add(topic.strip().casefold())
    for s in sources:
        n = s["n"]
        raw = "\n".join(str(x or "") for x in (s.get("title"), texts.get(n) or s.get("snippet"), s.get("author"),
                                               s.get("site")))
        ds = {d for d, _ in _dates_in(unicodedata.normalize("NFKC", raw))}
        pub = _iso_date(s.get("published"))
        if pub:
            ds.add(pub)
        nums = {float(s.get(k) or 0) for k in ("likes", "comments", "shares", "views")}
        nums.add(float(round(float(s.get("hotness") or 0))))
        per_source[n] = SourceEvidence(_norm(raw), ds, nums)
        for name in (s.get("author"), s.get("site")):
            if name and len(str(name).strip()) >= 2:
                known.add(str(name).strip().casefold())
    return Evidence(zh, per_source, numbers, percents, dates, known)


# --- sentences --------------------------------------------------------------------------------

def _absorb(line: str, k: int, end: int) -> int:
    """Past closers and citation marks that follow a sentence's end."""
    while k < end and line[k] in _CLOSERS:
        k += 1
    j = k
    while j < end and line[j] == " ":
        j += 1
    m = _CITE_RE.match(line, j)
    while m and m.start() < end:
        k = j = m.end()
        while j < end and line[j] == " ":
            j += 1
        m = _CITE_RE.match(line, j)
    while k < end and line[k] in _TERMINATORS + _CLOSERS:
        k += 1
    return k


def sentence_spans(md: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of a Markdown text (see the module's docstring)."""
    spans: list[tuple[int, int]] = []
    offset = 0
    in_code = False
    for line in (md or "").split("\n"):
        base = offset
        offset += len(line) + 1
        s = line.strip()
        if s.startswith("```"):
            in_code = not in_code
            continue
        if in_code or not s or _HEADING_RE.match(line) or _RULE_RE.match(line):
            continue
        body_end = len(line.rstrip())
        start = i = _PREFIX_RE.match(line).end()
        while i < body_end:
            ch = line[i]
            end = None
            if ch in _TERMINATORS:
                end = _absorb(line, i + 1, body_end)
            elif ch == "." and (i + 1 == body_end or line[i + 1] in " *_)”\"'") and not (i > 0 and line[i - 1].isdigit()):
                end = _absorb(line, i + 1, body_end)
            if end is not None:
                _add(spans, line, base, start, end)
                start = i = end
            else:
                i += 1
        _add(spans, line, base, start, body_end)
    return spans


def _add(spans: list, line: str, base: int, start: int, end: int) -> None:
    while start < end and line[start] in " \t":
        start += 1
    while end > start and line[end - 1] in " \t":
        end -= 1
    piece = _CITE_RE.sub("", line[start:end])
    if sum(ch.isalnum() for ch in piece) >= 2:
        spans.append((base + start, base + end))


# --- one claim ---------------------------------------------------------------------------------

def _plain(sentence: str) -> str:
    t = _LINK_URL_RE.sub("]", sentence)
    t = _CITE_RE.sub(" ", t)
    return t.replace("**", "").replace("__", "").replace("`", "")


def _fmt_date(d: tuple[int | None, int, int | None]) -> str:
    y, m, day = d
    return "-".join(x for x in (str(y) if y else "", f"{m:02d}", f"{day:02d}" if day else "") if x)


def _date_ok(d: tuple[int | None, int, int | None], pool: Iterable[tuple[int | None, int, int | None]]) -> bool:
    for y, m, day in pool:
        if m != d[1]:
            continue
        if d[0] is not None and y is not None and y != d[0]:
            continue
        if d[2] is not None and day is not None and day != d[2]:
            continue
        if d[2] is not None and day is None:
            continue
        return True
    return False


def _close(value: float, pool: Iterable[float], decimals: int) -> bool:
    tol = 0.5 * 10 ** -decimals + 1e-9 if decimals else 0.0
    if decimals:
        return any(abs(x - value) <= tol for x in pool)
    return any(x == value for x in pool)


def _pct_ok(value: float, decimals: int, pool: Iterable[float]) -> bool:
    tol = 0.5 * 10 ** -decimals + 1e-9
    return any(abs(x - value) <= tol for x in pool)


def _literal(text: str, literal: str) -> bool:
    lit = _norm(literal)
    return bool(lit) and re.search(r"(?<![\d.])" + re.escape(lit) + r"(?![\d])", text) is not None


def find_claim(sentence: str) -> dict[str, list] | None:
    """The checkable elements of a sentence, or None when it states none (or asks a question)."""
    text = _plain(unicodedata.normalize("NFKC", sentence)).strip()
    if text.rstrip(_CLOSERS + " ⚠").endswith(("?", "？")):
        return None
    work = text
    found: dict[str, list] = {"quotes": [], "titles": [], "dates": [], "percents": [], "numbers": [], "names": []}

    def blank(a: int, b: int) -> None:
        nonlocal work
        work = work[:a] + " " * (b - a) + work[b:]

    for rx in _QUOTE_RES:
        for m in rx.finditer(work):
            q = m.group(1).strip()
            if len(re.sub(r"\W", "", q)) >= 2:
                found["quotes"].append(q)
                blank(m.start(), m.end())
    for m in _TITLE_RE.finditer(work):
        found["titles"].append(m.group(1).strip())
        blank(m.start(), m.end())
    for d, (a, b) in _dates_in(work):
        found["dates"].append((d, work[a:b].strip()))
        blank(a, b)
    for m in _PCT_RE.finditer(work):
        dec = m.group(1).split(".")[1] if "." in m.group(1) else ""
        found["percents"].append((float(m.group(1)), len(dec), m.group(0).strip()))
        blank(m.start(), m.end())
    for m in _NUMBER_RE.finditer(work):
        digits, dec, mult = m.group(1), m.group(2), m.group(3)
        found["numbers"].append((_value(digits, dec, mult), len(dec or ".") - 1, m.group(0).strip()))
    for m in _NAME_RE.finditer(work):
        name = m.group(1)
        before = work[:m.start()].rstrip()
        sentence_start = not before or before[-1] in ".:;!?—-–(“\"'「『（:："
        if name in _NAME_STOP or (sentence_start and not any(c.isupper() for c in name[1:])):
            continue
        found["names"].append(name)
    return found if any(found.values()) else None


def _check(found: dict[str, list], cites: list[int], ev: Evidence, extra: Sequence[str]) -> list[str]:
    """The elements that neither the cited sources nor the statistics support (as short labels)."""
    srcs = [ev.sources[n] for n in cites if n in ev.sources]
    texts = [s.text for s in srcs]
    extra_norm = [_norm(t) for t in extra]
    failed: list[str] = []
    for q in found["quotes"]:
        pieces = [p for p in (_norm(x) for x in re.split(r"…|\.\.\.", q)) if len(p) >= 1]
        terms = [t.strip().casefold() for t in re.split(r"[、,，/]", q) if t.strip()]
        if terms and all(t in ev.names for t in terms):
            continue  # a known name, or a list of them (keywords, actors, platforms), in quotation marks
        if not pieces or not any(all(p in t for p in pieces) for t in texts + extra_norm):
            failed.append(f"「{q[:40]}」" if ev.zh else f"“{q[:40]}”")
    for t in found["titles"]:
        if not any(_norm(t) in x for x in texts + extra_norm) and t.casefold() not in ev.names:
            failed.append(f"《{t[:40]}》")
    for d, shown in found["dates"]:
        pool = set(ev.dates)
        for s in srcs:
            pool |= s.dates
        if not _date_ok(d, pool) and not any(_literal(x, shown) for x in texts + extra_norm):
            failed.append(shown)
    for value, dec, shown in found["percents"]:
        if not _pct_ok(value, dec, ev.percents) and not any(_literal(x, shown) for x in texts + extra_norm):
            failed.append(shown)
    for value, dec, shown in found["numbers"]:
        pool = set(ev.numbers)
        for s in srcs:
            pool |= s.numbers
        if _close(value, pool, dec) or any(_literal(x, shown) for x in texts + extra_norm):
            continue
        failed.append(shown)
    for name in found["names"]:
        low = name.casefold()
        if low in ev.names or any(low in n for n in ev.names) or any(_norm(name) in x for x in texts + extra_norm):
            continue
        failed.append(name)
    return failed


def _kinds(found: dict[str, list]) -> list[str]:
    names = {"quotes": "quote", "titles": "name", "dates": "date", "percents": "percentage", "numbers": "number",
             "names": "name"}
    return list(dict.fromkeys(names[k] for k, v in found.items() if v))


def _reason(ok: bool, failed: list[str], cites: list[int], unknown: list[int], ev: Evidence) -> str:
    refs = "".join(f"[{n}]" for n in cites)
    zh = ev.zh
    if ok:
        if zh:
            return f"与所引来源 {refs} 及报告统计核对一致" if cites else "与报告依据来源计算的统计一致"
        return f"matches the cited sources {refs} and the report's statistics" if cites else \
            "matches the statistics the report computed from its sources"
    what = ("、" if zh else ", ").join(failed[:4]) + ("…" if len(failed) > 4 else "")
    bad = "".join(f"[{n}]" for n in unknown)
    if zh:
        where = f"所引来源 {refs} 和报告统计" if cites else "报告统计（本句没有引用来源）"
        note = f"；引用 {bad} 不是本报告的来源" if unknown else ""
        return f"{what} 未见于{where}{note}"
    where = f"the cited sources {refs} or the report's statistics" if cites else \
        "the report's statistics (the sentence cites no source)"
    note = f"; {bad} is not a source of this report" if unknown else ""
    return f"{what}: not found in {where}{note}"


def verify_section(key: str, md: str, ev: Evidence, extra_texts: Sequence[str] = (),
                   judge: Judge | None = None) -> list[Claim]:
    claims: list[Claim] = []
    for start, end in sentence_spans(md):
        sentence = md[start:end]
        found = find_claim(sentence)
        if found is None:
            continue
        nums = []
        for m in _CITE_RE.finditer(sentence):
            nums += [int(x) for x in re.findall(r"\d{1,4}", m.group(1))]
        nums = list(dict.fromkeys(nums))
        cites = [n for n in nums if n in ev.sources]
        unknown = [n for n in nums if n not in ev.sources]
        failed = _check(found, cites, ev, extra_texts)
        ok = not failed
        reason = _reason(ok, failed, cites, unknown, ev)
        claim = Claim(" ".join(sentence.split()), key, (start, end), cites, ok, reason, _kinds(found))
        if not ok and judge is not None and cites:
            verdict = judge(claim, [ev.sources[n].text for n in cites])
            if verdict is not None:
                claim.supported, claim.reason = bool(verdict[0]), f"judge: {verdict[1]}"
        claims.append(claim)
    return claims


def verify_sections(sections: Iterable[tuple[str, str, Sequence[str]]], ev: Evidence,
                    judge: Judge | None = None) -> list[Claim]:
    """Every claim of every section, in order: (section key, its Markdown, extra texts a quote may
    come from, e.g. the forum's messages for the forum section)."""
    out: list[Claim] = []
    for key, md, extra in sections:
        out += verify_section(key, md, ev, extra, judge)
    return out


def summary(claims: Sequence[Claim | dict]) -> dict[str, int]:
    total = len(claims)
    ok = sum(1 for c in claims if (c.supported if isinstance(c, Claim) else c.get("supported")))
    return {"total": total, "supported": ok, "unsupported": total - ok}


def summary_text(counts: dict[str, int], zh: bool) -> str:
    """"41 条论断，38 条有来源支持" / "41 claims, 38 supported"."""
    if zh:
        return f"{counts['total']} 条论断，{counts['supported']} 条有来源支持"
    return f"{counts['total']} claims, {counts['supported']} supported"


# --- marking ------------------------------------------------------------------------------------

def strip_marks(text: str) -> str:
    """Untrusted text without the private-use characters the marking uses."""
    return _SENTINEL_RE.sub("", text or "")


def _unsupported(claims: Iterable[dict]) -> list[dict]:
    return sorted((c for c in claims if not c.get("supported")), key=lambda c: c["span"][0], reverse=True)


def insert_sentinels(md: str, claims: Iterable[dict]) -> tuple[str, list[str]]:
    """The Markdown with each unsupported claim wrapped in sentinels, and the reasons by index."""
    reasons: list[str] = []
    last_start = len(md) + 1
    for c in _unsupported(claims):
        start, end = c["span"]
        if not 0 <= start < end <= len(md) or end > last_start:
            continue
        reasons.append(c.get("reason") or "")
        i = len(reasons) - 1
        md = md[:start] + f"{OPEN}{i}{MID}" + md[start:end] + CLOSE + md[end:]
        last_start = start
    return md, reasons


def sentinels_to_html(fragment: str, reasons: Sequence[str], zh: bool) -> str:
    """Sentinels (after escaping and inline rendering) → <mark> elements; stray ones removed."""
    tag = "未核实" if zh else "unsupported"

    def open_sub(m: re.Match) -> str:
        i = int(m.group(1))
        title = reasons[i] if i < len(reasons) else ""
        return f'<mark class="unsupported" title="{html.escape(title, quote=True)}">'

    fragment = re.sub(f"{OPEN}(\\d+){MID}", open_sub, fragment)
    fragment = fragment.replace(CLOSE, f'<span class="tag">{tag}</span></mark>')
    return strip_marks(fragment)


def mark_markdown(md: str, claims: Iterable[dict]) -> str:
    """The Markdown with " ⚠" after each unsupported claim."""
    last_start = len(md) + 1
    for c in _unsupported(claims):
        start, end = c["span"]
        if not 0 <= start < end <= len(md) or end > last_start:
            continue
        md = md[:end] + " ⚠" + md[end:]
        last_start = start
    return md
