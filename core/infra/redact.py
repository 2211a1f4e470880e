"""Secret redaction for every text that leaves the process: logs, pages, reports, exceptions.

    redact(text)          known secrets, key=value secrets, bearer tokens, key shapes, URL passwords masked
    redact_obj(obj)       the same inside a JSON-like structure; values under secret-named keys masked whole
    mask_url(url)         the one URL-password masking: scheme://user:[REDACTED]@host/...
    url_password(url)     the password of a URL ('' if none), to register it as a secret
    register_secrets(vs)  exact values masked wherever they appear
"""
from __future__ import annotations

import functools
import re
import threading
from typing import Iterable

MASK = "[REDACTED]"

# scheme://user:password@host — the password runs to the last "@" before a space, so one that
# contains "@" (unencoded) is masked whole (a query string with an "@" is masked too: safe side).
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*:)(\S+)@")

_PATTERNS = [
    # Authorization headers and bearer tokens
    (re.compile(r"(?i)(authorization\s*[:=]\s*[\"']?)(bearer|basic|token)?\s*[^\s\"',;}]+"), r"\1" + MASK),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), "Bearer " + MASK),
    # key=value / "key": "value" pairs whose name says secret
    (re.compile(r"(?i)([\"']?\b[a-z0-9_\-]*(?:api[_-]?key|apikey|secret|password|passwd|pwd|token|access[_-]?key)\b[\"']?\s*[:=]\s*[\"']?)"
                r"(?!\[REDACTED\])[^\s\"',;&}]+"), r"\1" + MASK),
    # well-known key shapes (OpenAI-style, Tavily, generic long hex/base64 after sk-)
    (re.compile(r"\b(sk|tvly|pk|rk)-[A-Za-z0-9_\-]{8,}"), MASK),
    # credentials inside URLs: scheme://user:password@host
    (_URL_CREDENTIALS, r"\1" + MASK + "@"),
]

_known_lock = threading.Lock()
_known: tuple[str, ...] = ()


def register_secrets(values: Iterable[str]) -> None:
    """Exact secret values (from settings) are masked wherever they appear, whatever their shape."""
    global _known
    with _known_lock:
        merged = set(_known) | {v for v in values if v and len(v) >= 4}
        # Longest first so a secret that contains another is masked whole.
        _known = tuple(sorted(merged, key=len, reverse=True))


def redact(text: str) -> str:
    if not text:
        return text
    for value in _known:
        if value in text:
            text = text.replace(value, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact_obj(obj):
    """Redact every string inside a JSON-like structure (payloads, exceptions' args)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: (MASK if is_secret_key(k) and obj[k] else redact_obj(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


# Secret names match anywhere in a key ("db_password", "X-Api-Key"); "token" only as a whole word
# (snake_case, kebab-case, dotted or camelCase) and not next to a count word: "token", "access_token"
# and "X-Auth-Token" are credentials, while "input_tokens", "max_tokens" and "token_count" are figures.
_SECRET_KEY = re.compile(r"(?i)(api[_-]?key|secret|password|passwd|authorization)")
_KEY_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_COUNT_WORDS = frozenset({"count", "counts", "num", "number", "max", "min", "limit", "usage", "used", "total",
                          "budget", "per", "len", "length"})


@functools.lru_cache(maxsize=4096)
def is_secret_key(key) -> bool:
    """Whether a mapping key names a secret (its value is masked whole)."""
    if not isinstance(key, str):
        return False
    if _SECRET_KEY.search(key):
        return True
    words = [w.lower() for w in _KEY_WORDS.findall(key)]
    return any(w.endswith("token") for w in words) and not _COUNT_WORDS.intersection(words)


def url_password(url: str | None) -> str:
    """The password inside ``scheme://user:password@host``, or '' when there is none."""
    m = _URL_CREDENTIALS.match((url or "").strip())
    return m.group(2) if m else ""


def mask_url(url: str | None) -> str:
    """The URL with its password shown as MASK, for messages, pages and logs; never raises."""
    return _URL_CREDENTIALS.sub(r"\1" + MASK + "@", str(url or ""))


def scrub_url_text(message: str, url: str = "") -> str:
    """A message that may quote a URL the user typed, with that URL's password (and anything
    secret-shaped) masked: for errors of an action given a URL, shown on a page."""
    text = str(message)
    if url:
        password = url_password(url)
        if password:
            text = text.replace(password, MASK)
        if url in text:
            text = text.replace(url, mask_url(url))
    return redact(text)
