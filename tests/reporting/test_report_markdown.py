"""Section Markdown → HTML through markdown-it-py (raw HTML off) and the one nh3 sanitiser:
tables and nested lists render, citations link to listed sources only, untrusted HTML stays text."""
from __future__ import annotations

import re
from html.parser import HTMLParser

from core.reporting import sanitise
from core.reporting.markdown import markdown_to_html


class Tree(HTMLParser):
    """Tags with their depth of <ul>/<ol> nesting, and every attribute seen."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.depth = 0
        self.max_list_depth = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag in ("ul", "ol"):
            self.depth += 1
            self.max_list_depth = max(self.max_list_depth, self.depth)

    def handle_endtag(self, tag):
        if tag in ("ul", "ol"):
            self.depth -= 1


def tree(html: str) -> Tree:
    t = Tree()
    t.feed(html)
    return t


def flat(html: str) -> str:
    return re.sub(r"\s*\n\s*", "", html.strip())


def test_a_table_renders_as_a_table_with_its_cells_and_citations():
    md = "| 平台 | 条数 |\n| :--- | ---: |\n| 微博 [1] | 12 |\n| 抖音 | **8** |"
    html = str(markdown_to_html(md, cite=lambda n: n == 1))
    assert "|" not in html  # no literal pipes left
    assert flat(html).startswith("<table><thead><tr><th>平台</th><th>条数</th></tr></thead><tbody>")
    assert '<td>微博 <a href="#src-1"' in html and "<td><strong>8</strong></td>" in html
    assert not [a for a in tree(html).attrs if a[1] == "style"]  # alignment styles are dropped


def test_nested_lists_keep_their_nesting():
    md = "- 价格\n  - 降价两万 [2]\n  - 老车主不满\n- 服务\n  1. 补偿\n  2. 换购"
    html = str(markdown_to_html(md, cite=lambda n: True))
    t = tree(html)
    assert t.max_list_depth == 2 and t.tags.count("ul") == 2 and t.tags.count("ol") == 1
    assert flat(html).startswith("<ul><li>价格<ul><li>降价两万 <a href=\"#src-2\"")
    assert html.count("<li>") == 6


def test_citations_link_only_to_listed_sources():
    html = str(markdown_to_html("见 [1][2] 与 [3, 4]。", cite=lambda n: n in (1, 4)))
    assert re.findall(r'href="([^"]+)"', html) == ["#src-1", "#src-4"]
    assert "[2]" in html and "[3]" in html


def test_links_become_links_only_to_a_listed_source():
    listed = {"https://weibo.com/1/abc": "#src-3"}
    md = ("[原帖](https://weibo.com/1/abc) [外链](https://example.test/x) [坏](javascript:alert(1)) "
          "<https://auto.example/> ![图](https://img.example/a.png)")
    html = str(markdown_to_html(md, link=listed.get))
    assert re.findall(r'href="([^"]+)"', html) == ["#src-3"]
    assert '<a href="#src-3" rel="noopener noreferrer">原帖</a>' in html
    assert "外链 (https://example.test/x)" in html  # shown, not linked
    assert "<img" not in html and "图" in html  # an image shows its alt text, never fetches


def test_raw_html_in_markdown_is_text_and_headings_stay_below_the_page_headings():
    md = "# 标题\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n###### 小节"
    html = str(markdown_to_html(md))
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<h3>标题</h3>" in html and "<h4>小节</h4>" in html and "<h1" not in html


def test_the_one_sanitiser_keeps_the_page_and_drops_everything_active():
    page = ('<main class="report"><header class="masthead"><h1>T</h1></header>'
            '<nav class="toc"><a href="#sec-facts">x</a></nav><section id="src" onclick="x()">'
            '<a href="javascript:alert(1)">j</a><a href="https://ok.example/">ok</a><svg><script>1</script></svg>'
            '<img src=x><style>*{}</style><table class="prov-table"><tr><td>1</td></tr></table></section></main>')
    out = sanitise.sanitize_html(page)
    t = tree(out)
    assert set(t.tags) <= sanitise.ALLOWED_TAGS
    assert {"main", "header", "h1", "nav", "section", "table", "td"} <= set(t.tags)
    hrefs = [v for tag, k, v in t.attrs if k == "href"]
    assert hrefs == ["#sec-facts", "https://ok.example/"]
    assert not [a for a in t.attrs if a[1].startswith("on") or a[1] == "style"]
    assert "<svg" not in out and "<img" not in out and "<style" not in out and "<script" not in out


def test_a_forged_claims_mark_or_control_characters_are_removed():
    html = str(markdown_to_html("a\ue0000\ue002b\ue001 c\u202ed"))
    assert "<mark" not in html and "\u202e" not in html and "a0b cd" in html


def test_bold_next_to_chinese_punctuation_still_renders():
    # CommonMark's flanking rules leave these as text; the writers mean bold
    html = str(markdown_to_html("据**“降价”**引发不满 [1]\n\n- **「补偿」**：说明\n\n`**代码**` a ** b **",
                                cite=lambda n: True))
    assert "据<strong>“降价”</strong>引发不满" in html and "<strong>「补偿」</strong>：说明" in html
    assert "<code>**代码**</code>" in html and "a ** b **" in html  # code and spaced asterisks stay as they are
