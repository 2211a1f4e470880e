"""Image and video results as thumbnails: the provider's own URLs, loaded lazily by the reader's browser.

The server never fetches or proxies a thumbnail: the page holds `<img src=… loading="lazy">` pointing
at the provider's URL, and `referrerpolicy="no-referrer"` keeps the page's address from the image
host. Every URL is checked to be http(s) (core.research.results.web_url) and escaped, and the HTML
of the items goes through nh3 with a short allow-list, so a title or a URL from the web cannot
become markup or script.
"""
from __future__ import annotations

import html
from typing import Iterable

import nh3

from core.research.results import MediaPreview, web_url

MAX_SHOWN = 60  # thumbnails per gallery (the sources table lists every result)

_STYLE = """<style>
.shoal-gallery{display:flex;flex-wrap:wrap;gap:12px}
.shoal-gallery figure{margin:0;width:180px}
.shoal-gallery img{width:180px;height:120px;object-fit:cover;border-radius:6px;background:#eee}
.shoal-gallery figcaption{font-size:0.8em;line-height:1.3;overflow:hidden;max-height:3.9em}
</style>"""
_TAGS = {"div", "figure", "figcaption", "a", "img", "span"}
_ATTRIBUTES = {"div": {"class"}, "figure": {"class"}, "span": {"class"}, "a": {"href", "target", "title"},
               "img": {"src", "alt", "loading", "referrerpolicy", "decoding", "width", "height"}}


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def item_html(p: MediaPreview, n: int | None = None, video_label: str = "video") -> str:
    """One thumbnail linking to its source page, with its title as a second link; '' if a URL is unusable."""
    thumb, link = web_url(p.thumbnail), web_url(p.link)
    if not thumb or not link:
        return ""
    title = (p.title or link)[:90]
    mark = f"[{n}] " if n is not None else ""
    kind = f'<span class="kind">▶ {html.escape(video_label)}</span> ' if p.kind == "video" else ""
    return (f'<figure class="shoal-media"><a href="{_attr(link)}" target="_blank" title="{_attr(title)}">'
            f'<img src="{_attr(thumb)}" alt="{_attr(title)}" loading="lazy" decoding="async" '
            f'referrerpolicy="no-referrer" width="180" height="120"></a>'
            f'<figcaption>{kind}{html.escape(mark)}<a href="{_attr(link)}" target="_blank">{html.escape(title)}</a>'
            f'</figcaption></figure>')


def gallery_html(previews: Iterable[tuple[int | None, MediaPreview]], video_label: str = "video",
                 limit: int = MAX_SHOWN) -> str:
    """The gallery's HTML for (citation number, preview) pairs: '' when none has usable URLs."""
    items = [h for n, p in previews if (h := item_html(p, n, video_label))][:limit]
    if not items:
        return ""
    body = nh3.clean('<div class="shoal-gallery">' + "".join(items) + "</div>", tags=_TAGS, attributes=_ATTRIBUTES,
                     url_schemes={"http", "https"}, link_rel="noopener noreferrer nofollow", strip_comments=True)
    return _STYLE + body
