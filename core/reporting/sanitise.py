"""The one sanitiser: every HTML fragment made from untrusted text (web, corpus, LLM) passes here
last, in the report's files (each section's HTML) and on the Report page (the preview) alike; and
the one test of a URL fit to be a link.

One allow-list: the tags a section's Markdown renders to (core.reporting.markdown) and the tags
of the report's own page (masthead, banners, tiles, sections, sources, provenance table). Only
`href` on <a> (http, https, mailto, a local `#anchor`, or the app's `/Monitor?trace=<id>`), `title` on <mark> (the claims check's
reason), `start` on <ol>, and `class` / `id` / `role`. Scripts, styles, images, SVG, forms, event
handlers and every other attribute are removed; the content of <script> and <style> goes too.
"""
from __future__ import annotations

import re
import urllib.parse
from typing import Any

import nh3

CTRL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")

# A section's Markdown renders to these; <mark class="unsupported" title="why"> and its
# <span class="tag"> come only from the claims check's sentinels (attributes are fixed text).
SECTION_TAGS = {"p", "br", "strong", "em", "code", "pre", "ul", "ol", "li", "a", "h3", "h4", "blockquote", "hr",
                "mark", "span", "table", "thead", "tbody", "tr", "th", "td"}
# The report's own page around them (its HTML file, and the Report page's preview of it).
PAGE_TAGS = {"b", "i", "div", "section", "header", "footer", "main", "nav", "h1", "h2"}
ALLOWED_TAGS = frozenset(SECTION_TAGS | PAGE_TAGS)
ALLOWED_ATTRIBUTES = {"*": {"class", "id", "role"}, "a": {"href"}, "mark": {"title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}
_LOCAL_ANCHOR_RE = re.compile(r"^#[A-Za-z0-9_-]{1,80}$")
# the app's own trace view (core.reporting.provenance.trace_link, with SHOAL_PUBLIC_URL unset)
_MONITOR_LINK_RE = re.compile(r"^/Monitor\?trace=[A-Za-z0-9._-]{4,80}$")


def _relative(url: str) -> str | None:
    return url if _LOCAL_ANCHOR_RE.match(url or "") or _MONITOR_LINK_RE.match(url or "") else None


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
    return nh3.clean(fragment, tags=set(ALLOWED_TAGS), attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
                     url_relative=_relative,
                     clean_content_tags={"script", "style"}, strip_comments=True, link_rel="noopener noreferrer")
