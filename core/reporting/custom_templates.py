"""Users' report templates: a Markdown file whose headings are the report's sections.

    # 新品上市舆情周报            ← optional: one top heading names the template
    写给市场部的周报。            ← optional: what the report is for (the LLM reads it)
    ## 本周声量                   ← a section, in this order
    总声量、平台分布和变化。      ← optional guidance: what to write in it
    ## 用户评价
    ...

markdown-it-py (already the report's Markdown parser) finds the headings. The sections are the
headings of the shallowest level, or, when a single top heading names the template, those of the
next level; deeper headings are part of their section's guidance. A template becomes a
`ReportType` (core/reporting/types.py) with `custom=True`, so it goes down the same path as the six
built-in types: the offline writer and the LLM writer (core/reporting/writers.py) take its sections
in order, each with its guidance. Each section gets the `kind` whose words its heading and guidance
use most (core.reporting.types.KIND_KEYWORDS): that picks the statistics the offline writer opens
it with and the engine findings it draws on. A section becomes the forum's record only when its
heading names the forum itself.

Templates live in the database (table `report_templates`) as their Markdown source, re-parsed on
use, so every process (the app, a worker) sees the same ones. Keys are `tpl_` + 8 hex digits;
adding a template under a name that exists replaces that template's text (same key).

Validation errors are `TemplateError` (a ValueError) carrying a catalogue message
(`report_extras.*`) for the pages; str() is the English text for the CLI and logs.
"""
from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath

from sqlalchemy import select

from core.i18n import Msg, tr
from core.infra.models import ReportTemplate, utcnow
from core.reporting.types import (CUSTOM_KEY_RE, KIND_KEYWORDS, REPORT_TYPES, ReportType, SectionSpec)

MAX_BYTES = 20_000      # a template file, UTF-8
MAX_SECTIONS = 12       # the built-in types have 6
MAX_HEADING = 80        # characters of a section heading
MAX_GUIDANCE = 1_500    # characters of one section's guidance
MAX_NAME = 60           # characters of the template's name
DEFAULT_KIND = "themes"
FORUM_WORDS = ("论坛", "主持人", "研判讨论", "多方研判", "分歧", "forum", "debate", "host")


@functools.cache
def _markdown():
    """The Markdown parser, made when a template is first read: Home lists the templates (ui.home_view)
    and its first page needs no markdown_it (17 ms of the cold start)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


class TemplateError(ValueError):
    """A template that cannot be used; `msg` is the reader's message, str() the English one."""

    def __init__(self, key: str, **args) -> None:
        self.msg = Msg(f"report_extras.{key}", args)
        super().__init__(tr("en", self.msg.key, **args))


@dataclass(frozen=True)
class TemplateSection:
    title: str
    guidance: str
    kind: str


@dataclass(frozen=True)
class ParsedTemplate:
    name: str
    purpose: str
    sections: tuple[TemplateSection, ...]

    def report_type(self, key: str) -> ReportType:
        """The template as a report type: the writers' one path."""
        name = self.name
        safe = name.replace("{", "{{").replace("}", "}}")  # the title is a str.format pattern
        purpose = self.purpose or (f"Follow the user's report template \"{name}\": write each section as its "
                                   "heading and guidance ask.")
        specs = tuple(SectionSpec(f"s{i}", s.kind, s.title, s.title,
                                  s.guidance or f"Write what the heading \"{s.title}\" asks for, from the findings.")
                      for i, s in enumerate(self.sections, 1))
        return ReportType(key, name, name, "{topic}：" + safe, safe + ": {topic}", purpose, specs, custom=True)


@dataclass(frozen=True)
class TemplateView:
    key: str
    name: str
    sections: tuple[str, ...]
    created_at: datetime | None
    updated_at: datetime | None

    def as_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "sections": list(self.sections),
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "updated_at": self.updated_at.isoformat() if self.updated_at else None}


# -- parsing and validation -----------------------------------------------------------------------

def decode(data: bytes | str) -> str:
    """The template's text: UTF-8 (a BOM is fine); anything else is refused with a clear message."""
    if isinstance(data, str):
        text = data
        size = len(data.encode("utf-8", "surrogatepass"))
    else:
        size = len(data)
        if size > MAX_BYTES:
            raise TemplateError("too_large", size=size, limit=MAX_BYTES)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TemplateError("bad_encoding", position=exc.start + 1) from None
    if size > MAX_BYTES:
        raise TemplateError("too_large", size=size, limit=MAX_BYTES)
    if "\x00" in text:
        raise TemplateError("bad_encoding", position=text.index("\x00") + 1)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def infer_kind(title: str, guidance: str) -> str:
    """The section kind whose words the heading (counted three times) and guidance use most."""
    head, body = title.lower(), guidance.lower()
    if any(w in head for w in FORUM_WORDS):
        return "forum"
    best, best_score = DEFAULT_KIND, 0
    for kind, words in KIND_KEYWORDS.items():
        if kind == "forum":
            continue
        score = sum(3 * (w.lower() in head) + (w.lower() in body) for w in words)
        if score > best_score:
            best, best_score = kind, score
    return best


def _headings(text: str) -> list[tuple[int, str, int, int]]:
    """(level, text, first line, line after) of every heading, ATX or setext, in order."""
    tokens = _markdown().parse(text)
    out = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            inline = tokens[i + 1].content if i + 1 < len(tokens) else ""
            out.append((int(tok.tag[1]), " ".join(inline.split()), tok.map[0], tok.map[1]))
    return out


def parse_template(data: bytes | str, *, name: str | None = None, filename: str | None = None) -> ParsedTemplate:
    """Validate a template and return its sections; raises TemplateError saying what is wrong."""
    text = decode(data)
    lines = text.split("\n")
    heads = _headings(text)
    if not heads:
        raise TemplateError("no_headings")
    between = lambda a, b: "\n".join(lines[a:b]).strip()  # noqa: E731 - the text between two headings
    title_name, purpose = "", ""
    top = min(h[0] for h in heads)
    body = heads
    if sum(1 for h in heads if h[0] == top) == 1 and len(heads) > 1 and heads[0][0] == top:
        title_name = heads[0][1]
        body = heads[1:]
        purpose = between(heads[0][3], body[0][2])
    level = min(h[0] for h in body)
    starts = [i for i, h in enumerate(body) if h[0] == level]
    if len(starts) > MAX_SECTIONS:
        raise TemplateError("too_many_sections", n=len(starts), limit=MAX_SECTIONS)
    sections, seen = [], set()
    for j, i in enumerate(starts):
        _, title, _, after = body[i]
        end = body[starts[j + 1]][2] if j + 1 < len(starts) else len(lines)
        guidance = between(after, end)
        if not title:
            raise TemplateError("empty_heading", n=j + 1)
        if len(title) > MAX_HEADING:
            raise TemplateError("heading_too_long", heading=title[:40] + "…", n=len(title), limit=MAX_HEADING)
        if len(guidance) > MAX_GUIDANCE:
            raise TemplateError("guidance_too_long", heading=title[:40], n=len(guidance), limit=MAX_GUIDANCE)
        if title.lower() in seen:
            raise TemplateError("duplicate_heading", heading=title[:40])
        seen.add(title.lower())
        sections.append(TemplateSection(title, guidance, infer_kind(title, guidance)))
    if len(purpose) > MAX_GUIDANCE:
        raise TemplateError("guidance_too_long", heading=title_name[:40], n=len(purpose), limit=MAX_GUIDANCE)
    chosen = " ".join((name or title_name or (PurePath(filename).stem if filename else "")).split())
    if not chosen:
        raise TemplateError("no_name")
    if len(chosen) > MAX_NAME:
        raise TemplateError("name_too_long", n=len(chosen), limit=MAX_NAME)
    return ParsedTemplate(chosen, purpose, tuple(sections))


# -- storage ----------------------------------------------------------------------------------------

def _view(row: ReportTemplate) -> TemplateView:
    try:
        titles = tuple(s.title for s in parse_template(row.source, name=row.name).sections)
    except TemplateError:
        titles = ()
    return TemplateView(row.id, row.name, titles, row.created_at, row.updated_at)


def add_template(db, data: bytes | str, *, name: str | None = None, filename: str | None = None
                 ) -> tuple[TemplateView, bool]:
    """Validate and store a template; (its view, True when it replaced one of the same name)."""
    parsed = parse_template(data, name=name, filename=filename)
    source = decode(data)
    now = utcnow()
    with db.session() as s:
        row = s.scalar(select(ReportTemplate).where(ReportTemplate.name == parsed.name))
        replaced = row is not None
        if row is None:
            row = ReportTemplate(id="tpl_" + secrets.token_hex(4), name=parsed.name, source=source,
                                 created_at=now, updated_at=now)
            s.add(row)
        else:
            row.source, row.updated_at = source, now
        s.flush()
        view = _view(row)
    return view, replaced


def list_templates(db) -> list[TemplateView]:
    with db.session() as s:
        return [_view(r) for r in s.scalars(select(ReportTemplate).order_by(ReportTemplate.created_at,
                                                                            ReportTemplate.id))]


def remove_template(db, key: str) -> bool:
    with db.session() as s:
        row = s.get(ReportTemplate, key)
        if row is None:
            return False
        s.delete(row)
    return True


def load_type(db, key: str) -> ReportType | None:
    """A stored template as a report type, or None when there is no such template."""
    if not CUSTOM_KEY_RE.fullmatch(key or ""):
        return None
    with db.session() as s:
        row = s.get(ReportTemplate, key)
        if row is None:
            return None
        name, source = row.name, row.source
    return parse_template(source, name=name).report_type(key)


def resolve_type(db, key: str) -> ReportType:
    """A built-in type or a stored template; KeyError when neither."""
    if key in REPORT_TYPES:
        return REPORT_TYPES[key]
    rtype = load_type(db, key)
    if rtype is None:
        raise KeyError(f"no report type or template {key!r} (see `python -m core report template list`)")
    return rtype


def find_key(db, value: str) -> str | None:
    """A template's key from its key or its name (the CLI's --type), else None."""
    v = (value or "").strip()
    with db.session() as s:
        if CUSTOM_KEY_RE.fullmatch(v.lower()) and s.get(ReportTemplate, v.lower()) is not None:
            return v.lower()
        return s.scalar(select(ReportTemplate.id).where(ReportTemplate.name == v))


def type_names(db) -> dict[str, str]:
    """key → name of every stored template (labels for the pages)."""
    with db.session() as s:
        return dict(s.execute(select(ReportTemplate.id, ReportTemplate.name).order_by(ReportTemplate.created_at)).all())


def is_custom(key: str | None) -> bool:
    return bool(key) and bool(CUSTOM_KEY_RE.fullmatch(key))
