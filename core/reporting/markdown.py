"""Untrusted Markdown → safe HTML (the report's sections), and Markdown made inert for other renderers.

The HTML comes from markdown-it-py (CommonMark with tables, raw HTML off: any `<tag>` in the text
is shown as text), with render rules for what the report needs:

- `[n]` / `[1, 2]` citations become `<a href="#src-n">[n]</a>` for sources the report lists;
- a Markdown link becomes a link only when ``link(url)`` gives a local target (a listed source's
  anchor); any other link shows its label, and its URL as text when it is http(s);
- an image shows its alt text (a report never fetches anything);
- headings are h3 (levels 1-3) or h4 (4-6): the page's own headings stay above them;
- unsupported claims are marked: sentinels go into the Markdown before parsing and become
  `<mark class="unsupported">` after (core.reporting.claims).

The result then goes through the one sanitiser (core.reporting.sanitise).
"""
from __future__ import annotations

import re
from typing import Any, Callable

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from markupsafe import Markup

from core.reporting import claims as claimcheck
from core.reporting.sanitise import CTRL_RE, safe_url, sanitize_html
from core.reporting.text import CITE_GROUP_RE

_NUM_RE = re.compile(r"\d{1,4}")
_LINK_RE = re.compile(r"\[([^\[\]\n]{1,300})\]\(\s*([^()\s]{1,2000})\s*\)")


def _cites(escaped: str, cite: Callable[[int], bool]) -> str:
    def sub(m: re.Match) -> str:
        out = []
        for n in _NUM_RE.findall(m.group(1)):
            k = int(n)
            out.append(f'<a href="#src-{k}">[{k}]</a>' if cite(k) else f"[{k}]")
        return "".join(out)
    return CITE_GROUP_RE.sub(sub, escaped)


def _text(self, tokens, idx, options, env) -> str:
    return _cites(escapeHtml(tokens[idx].content), env["cite"])


def _link_open(self, tokens, idx, options, env) -> str:
    href = tokens[idx].attrGet("href") or ""
    shown = _MD.normalizeLinkText(href)  # the URL as written (markdown-it percent-encodes href)
    target = env["link"](shown) or env["link"](href)
    autolink = tokens[idx].markup == "autolink"
    env["links"].append(None if target else ("" if autolink else shown))
    return f'<a href="{escapeHtml(target)}">' if target else ""


def _link_close(self, tokens, idx, options, env) -> str:
    url = env["links"].pop() if env["links"] else ""
    if url is None:
        return "</a>"
    return f" ({escapeHtml(url)})" if url and safe_url(url) else ""


def _image(self, tokens, idx, options, env) -> str:
    return escapeHtml(self.renderInlineAsText(tokens[idx].children or [], options, env))


def _heading(closing: bool):
    def rule(self, tokens, idx, options, env) -> str:
        tag = "h3" if int(tokens[idx].tag[1]) <= 3 else "h4"
        return f"</{tag}>\n" if closing else f"<{tag}>"
    return rule


_LEFT_STRONG_RE = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")


def _cjk_strong(state) -> None:
    """`**…**` that CommonMark's flanking rules leave as text next to CJK punctuation
    (`据**“降价”**引发`): bold it, as the writers (the engines, the LLM) meant. Within one text
    token only, so it never pairs across code, links or other markup."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        out = []
        for tok in block.children:
            if tok.type != "text" or "**" not in tok.content:
                out.append(tok)
                continue
            pos = 0
            for m in _LEFT_STRONG_RE.finditer(tok.content):
                if m.start() > pos:
                    out.append(_token("text", "", 0, tok.content[pos:m.start()]))
                out += [_token("strong_open", "strong", 1, "", "**"),
                        _token("text", "", 0, m.group(1)),
                        _token("strong_close", "strong", -1, "", "**")]
                pos = m.end()
            if pos < len(tok.content):
                out.append(_token("text", "", 0, tok.content[pos:]))
        block.children = out


def _token(type_: str, tag: str, nesting: int, content: str = "", markup: str = ""):
    tok = Token(type_, tag, nesting)
    tok.content, tok.markup = content, markup
    return tok


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable("table")
    md.core.ruler.push("cjk_strong", _cjk_strong)
    md.add_render_rule("text", _text)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("image", _image)
    md.add_render_rule("heading_open", _heading(False))
    md.add_render_rule("heading_close", _heading(True))
    return md


_MD = _parser()  # rules are stateless (per-call state lives in env): shared by every thread


def markdown_to_html(md: str, *, cite: Callable[[int], bool] = lambda n: False,
                     link: Callable[[str], str | None] = lambda url: None, claims: list[dict] | None = None,
                     zh: bool = True) -> Markup:
    """Safe HTML of untrusted Markdown: paragraphs, headings, lists (nested), tables, quotes, code,
    emphasis, [n] citations and links to listed sources.

    ``claims`` (the checked claims of this Markdown, with their spans) marks each unsupported
    sentence: <mark class="unsupported" title="reason">…<span class="tag">未核实</span></mark>."""
    md, reasons = claimcheck.insert_sentinels(claimcheck.strip_marks(md or ""), claims or [])  # spans index md
    md = CTRL_RE.sub("", md)
    env: dict[str, Any] = {"cite": cite, "link": link, "links": []}
    html = _MD.render(md, env)
    return Markup(sanitize_html(claimcheck.sentinels_to_html(html, reasons, zh)))


def markdown_for_file(md: str) -> str:
    """Untrusted Markdown made inert for other renderers: no raw HTML, no autolinks, and link
    syntax only towards http(s) URLs (any other `](` or `[x]:` is broken apart)."""
    text = CTRL_RE.sub("", str(md or "")).replace("<", "&lt;")

    def link_sub(m: re.Match) -> str:
        return m.group(0) if safe_url(m.group(2)) else m.group(1)

    text = _LINK_RE.sub(link_sub, text)
    text = re.sub(r"\]\((?!\s*https?://)", "] (", text)
    return re.sub(r"(?m)^(\s{0,3}\[[^\]\n]*\])\s*:", r"\1 -", text)
