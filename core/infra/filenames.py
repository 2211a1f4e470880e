"""Names for files a reader downloads: `<topic>-<date>-<type>.<ext>`, safe on Windows, macOS and Linux.

Chinese stays Chinese (every current OS and browser stores UTF-8 names); what goes is what one of
them refuses: the characters <>:"/\\|?* and control characters, a trailing dot or space, Windows'
reserved device names (CON, NUL, COM1…), and length beyond what a file system takes (255 bytes).
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]+|\s+')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_STEM_BYTES = 150  # leaves room for the date, type and extension under 255 bytes


def _part(text: str, fallback: str) -> str:
    cleaned = _UNSAFE.sub("-", unicodedata.normalize("NFC", text or "")).strip(" .-")
    cleaned = re.sub(r"-{2,}", "-", cleaned)
    while len(cleaned.encode("utf-8")) > _STEM_BYTES:
        cleaned = cleaned[:-1]
    cleaned = cleaned.rstrip(" .-")
    return fallback if not cleaned or cleaned.lower() in _RESERVED else cleaned


def download_name(topic: str, when: date | datetime | None, kind: str, ext: str) -> str:
    """`武汉大学舆情-2026-12-04-report.html`; an empty topic gives `shoal`, no date gives none."""
    day = when.strftime("%Y-%m-%d") if when else ""
    stem = "-".join(p for p in (_part(topic, "shoal"), day, _part(kind, "file")) if p)
    return f"{stem}.{_part(ext.lstrip('.'), 'txt').lower()}"
