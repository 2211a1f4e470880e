"""The language a report is written in: an explicit choice (the Report page, `core report --language`),
else the SHOAL_REPORT_LANGUAGE setting (`zh`, `en`), else (`auto`) the topic's language
(core.i18n.text_language: a mostly Chinese topic gives a Chinese report).

The whole document follows it: title, headings, notes, the offline writer's sentences, charts, the
partial-report banner and dates; in LLM mode the prompts ask for it. The engines' own paragraphs are
quoted as they were written.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone, tzinfo

from core.i18n import LANGUAGES, tr, text_language
from core.infra.clock import as_zone, zone_name

AUTO_LANGUAGE = "auto"
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LANGUAGE_CHOICES = (AUTO_LANGUAGE, *LANGUAGES)


def normalise_language(value: str | None) -> str:
    """A choice as typed (`ZH`, ` en `, empty) → `auto`, `zh` or `en`; anything else is an error."""
    v = (value or "").strip().lower()
    if not v:
        return AUTO_LANGUAGE
    if v not in LANGUAGE_CHOICES:
        raise ValueError(f"unknown report language {value!r}; one of {', '.join(LANGUAGE_CHOICES)}")
    return v


def report_language(topic: str, setting: str | None = None, explicit: str | None = None) -> str:
    """`zh` or `en`: the explicit choice, else the setting, else the topic's language."""
    for choice in (explicit, setting):
        try:
            v = normalise_language(choice)
        except ValueError:
            continue  # a bad setting falls back to the topic (config validation reports it)
        if v != AUTO_LANGUAGE:
            return v
    return text_language(topic or "")


def language_source(setting: str | None = None, explicit: str | None = None) -> str:
    """What decided a report's language: `user` (an explicit choice), `setting` or `topic`."""
    for name, choice in (("user", explicit), ("setting", setting)):
        try:
            if normalise_language(choice) != AUTO_LANGUAGE:
                return name
        except ValueError:
            continue
    return "topic"


def format_date(ts: datetime | str | None, lang: str, zone: tzinfo | None = None) -> str:
    """The report's date as its readers write it, with its zone named (SHOAL_TIMEZONE, UTC by default
    here: a report is read far from the server that wrote it): `2026年12月4日 11:05（Asia/Shanghai
    (UTC+08:00)）` / `4 Dec 2026, 11:05 (Asia/Shanghai (UTC+08:00))`."""
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts.strip().rstrip("Z"))
        except ValueError:
            return ts
    if ts is None:
        return ""
    zone = zone or timezone.utc
    at = as_zone(ts, zone)
    name = zone_name(zone, ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc))
    if lang == "zh":
        return f"{at.year}年{at.month}月{at.day}日 {at:%H:%M}（{name}）"
    return f"{at.day} {at:%b %Y, %H:%M} ({name})"


def quoted_language_notice(material, sections) -> list[str]:
    """An English report whose sections quote the engines' Chinese findings says so once, at the top:
    the engines wrote them, the report quotes them as they are (its own words are English)."""
    if material.zh:
        return []
    written = "\n".join(s.markdown for s in sections)
    quoted = any(_CJK.search(u.plain) and u.plain[:20] in written for u in material.units if u.plain)
    return [tr("en", "report.doc_quotes_chinese")] if quoted else []
