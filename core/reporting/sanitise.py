"""The one sanitiser: every HTML fragment made from untrusted text (web, corpus, LLM) passes here
last, in the report's files and on the Report page alike; and the one test of a URL fit to be a link."""
from __future__ import annotations

import re
import urllib.parse
from typing import Any

import nh3

CTRL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")

ALLOWED_TAGS = {"p", "br", "strong", "em", "code", "pre", "ul", "ol", "li", "a", "h3", "h4", "blockquote", "hr",
                "mark", "span"}
# <mark class="unsupported" title="why"> and its <span class="tag"> come only from the claims check's
# sentinels (every character of the Markdown is escaped before): attributes are fixed text.
ALLOWED_ATTRIBUTES = {"a": {"href"}, "mark": {"class", "title"}, "span": {"class"}}
_LOCAL_ANCHOR_RE = re.compile(r"^#src-\d{1,6}$")


def safe_url(url: Any) -> str | None:
    """An http(s) URL fit to be a link, or None."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > 2000 or any(c in url for c in ' \t\r\n"\'<>`\\') or CTRL_RE.search(url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def sanitize_html(fragment: str) -> str:
    """The last gate for every HTML fragment made from untrusted text."""
    return nh3.clean(fragment, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"},
                     url_relative=lambda u: u if _LOCAL_ANCHOR_RE.match(u or "") else None,
                     clean_content_tags={"script", "style"}, strip_comments=True, link_rel="noopener noreferrer")
