"""Untrusted Markdown → safe HTML (the report's sections), and Markdown made inert for other renderers."""
from __future__ import annotations

import html as _html
import re
from typing import Callable

from markupsafe import Markup

from core.reporting import claims as claimcheck
from core.reporting.sanitise import CTRL_RE, safe_url, sanitize_html
from core.reporting.text import CITE_GROUP_RE


_NUM_RE = re.compile(r"\d{1,4}")
_BULLET_RE = re.compile(r"^[-*+]\s+(.*)$")
_CODE_RE = re.compile(r"`([^`\n]{1,500})`")
_LINK_RE = re.compile(r"\[([^\[\]\n]{1,300})\]\(\s*([^()\s]{1,2000})\s*\)")
_BOLD_RE = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC_RE = re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![*\w])")
_HOLD_RE = re.compile(r"\x00(\d+)\x00")


def _esc(text: str) -> str:
    return _html.escape(text, quote=True)


def _inline(text: str, cite: Callable[[int], bool], link: Callable[[str], str | None]) -> str:
    text = CTRL_RE.sub("", text)
    held: list[str] = []

    def hold(fragment: str) -> str:
        held.append(fragment)
        return f"\x00{len(held) - 1}\x00"

    text = _CODE_RE.sub(lambda m: hold(f"<code>{_esc(m.group(1))}</code>"), text)

    def link_sub(m: re.Match) -> str:
        label, url = m.group(1), m.group(2)
        target = link(url)
        if target:
            return hold(f'<a href="{_esc(target)}">') + label + hold("</a>")
        return f"{label} ({url})" if safe_url(url) else label

    text = _LINK_RE.sub(link_sub, text)
    text = _esc(text)
    text = _BOLD_RE.sub(r"<strong>\1</strong>", text)
    text = _ITALIC_RE.sub(r"<em>\1</em>", text)

    def cite_sub(m: re.Match) -> str:
        out = []
        for n in _NUM_RE.findall(m.group(1)):
            k = int(n)
            out.append(f'<a href="#src-{k}">[{k}]</a>' if cite(k) else f"[{k}]")
        return "".join(out)

    text = CITE_GROUP_RE.sub(cite_sub, text)
    return _HOLD_RE.sub(lambda m: held[int(m.group(1))], text)


def markdown_to_html(md: str, *, cite: Callable[[int], bool] = lambda n: False,
                     link: Callable[[str], str | None] = lambda url: None, claims: list[dict] | None = None,
                     zh: bool = True) -> Markup:
    """A small, safe Markdown subset (headings, paragraphs, lists, quotes, code, bold/italic, links,
    [n] citations). Everything is escaped first; the result still goes through nh3.

    ``claims`` (the checked claims of this Markdown, with their spans) marks each unsupported
    sentence: <mark class="unsupported" title="reason">…<span class="tag">未核实</span></mark>."""
    md = claimcheck.strip_marks(md or "")
    md, reasons = claimcheck.insert_sentinels(md, claims or [])
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []
    list_tag: str | None = None
    quote: list[str] = []
    code: list[str] = []
    in_code = False
    inl = lambda t: _inline(t, cite, link)  # noqa: E731

    def flush_para():
        if para:
            out.append("<p>" + "<br>".join(inl(p) for p in para) + "</p>")
            para.clear()

    def flush_list():
        nonlocal list_tag
        if list_tag and items:
            out.append(f"<{list_tag}>" + "".join(f"<li>{i}</li>" for i in items) + f"</{list_tag}>")
        items.clear()
        list_tag = None

    def flush_quote():
        if quote:
            out.append("<blockquote><p>" + "<br>".join(inl(q) for q in quote if q) + "</p></blockquote>")
            quote.clear()

    def flush_all():
        flush_para()
        flush_list()
        flush_quote()

    for raw in (md or "").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = CTRL_RE.sub("", raw)
        s = line.strip()
        if in_code:
            if s.startswith("```"):
                out.append("<pre><code>" + _esc("\n".join(code)) + "</code></pre>")
                code.clear()
                in_code = False
            else:
                code.append(line)
            continue
        if s.startswith("```"):
            flush_all()
            in_code = True
            continue
        if not s:
            flush_all()
            continue
        if m := re.match(r"^(#{1,6})\s+(.*)$", s):
            flush_all()
            tag = "h3" if len(m.group(1)) <= 3 else "h4"
            out.append(f"<{tag}>{inl(m.group(2).rstrip('#').strip())}</{tag}>")
            continue
        if re.fullmatch(r"(-{3,}|\*{3,}|_{3,})", s):
            flush_all()
            out.append("<hr>")
            continue
        if m := _BULLET_RE.match(s):
            flush_para()
            flush_quote()
            if list_tag != "ul":
                flush_list()
                list_tag = "ul"
            items.append(inl(m.group(1)))
            continue
        if m := re.match(r"^\d{1,3}[.)]\s+(.*)$", s):
            flush_para()
            flush_quote()
            if list_tag != "ol":
                flush_list()
                list_tag = "ol"
            items.append(inl(m.group(1)))
            continue
        if s.startswith(">"):
            flush_para()
            flush_list()
            quote.append(s[1:].strip())
            continue
        if list_tag and line[:1] in (" ", "\t") and items:
            items[-1] += "<br>" + inl(s)
            continue
        flush_list()
        flush_quote()
        para.append(s)
    if in_code and code:
        out.append("<pre><code>" + _esc("\n".join(code)) + "</code></pre>")
    flush_all()
    return Markup(sanitize_html(claimcheck.sentinels_to_html("\n".join(out), reasons, zh)))


def markdown_for_file(md: str) -> str:
    """Untrusted Markdown made inert for other renderers: no raw HTML, no autolinks, and link
    syntax only towards http(s) URLs (any other `](` or `[x]:` is broken apart)."""
    text = CTRL_RE.sub("", str(md or "")).replace("<", "&lt;")

    def link_sub(m: re.Match) -> str:
        return m.group(0) if safe_url(m.group(2)) else m.group(1)

    text = _LINK_RE.sub(link_sub, text)
    text = re.sub(r"\]\((?!\s*https?://)", "] (", text)
    return re.sub(r"(?m)^(\s{0,3}\[[^\]\n]*\])\s*:", r"\1 -", text)
