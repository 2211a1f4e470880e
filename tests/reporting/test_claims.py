"""The claims check: sentences that state figures, dates, names or quotes, checked by exact
matching against the cited sources and the report's statistics; unsupported ones are marked."""
from __future__ import annotations

from core import report as rep
from core.reporting import claims as cl

STATS = {"n_sources": 60, "sentiment": {"scored": 60, "negative": 23, "positive": 30, "neutral": 7,
                                        "pct": {"negative": 38.3, "positive": 50.0, "neutral": 11.7}},
         "days": [{"day": "2025-03-01", "n": 40}, {"day": "2025-03-04", "n": 20}],
         "risk": {"rule_pct": {"high": 50.0, "medium": 30.0}}}
SOURCES = [
    {"n": 1, "title": "比亚迪宣布全系降价", "snippet": "比亚迪宣布全系降价", "author": "汽车之家", "site": "",
     "published": "2025-03-01T10:00:00", "likes": 1200, "comments": 120, "shares": 60, "views": 0, "hotness": 2400.0},
    {"n": 2, "title": "", "snippet": "老车主不满", "author": "user2", "site": "news.example.com",
     "published": "2025-03-04T08:00:00", "likes": 3, "comments": 0, "shares": 0, "views": 0, "hotness": 3.0},
]
TEXTS = {1: "比亚迪宣布全系降价\n3月2日起，秦PLUS 降价 2万 元，销量增长 35%。BYD says demand is strong.",
         2: "刚提车就降价两万，老车主强烈不满，要求补偿。"}


def ev(zh: bool = True) -> cl.Evidence:
    return cl.evidence(STATS, SOURCES, TEXTS, zh=zh, topic="新能源汽车价格战", names={"微博", "Weibo", "Query"})


def check(md: str, zh: bool = True, extra=()) -> list[cl.Claim]:
    return cl.verify_section("s", md, ev(zh), extra)


def test_sentences_keep_their_citations_and_skip_headings_and_code():
    md = "### 标题 50%\n\n- 第一句 [1]。第二句。[2]\n> 引用一句 3 条\n```\n代码 99%\n```\nEnd. Of 7 sources, 3 are positive [1]."
    spans = cl.sentence_spans(md)
    texts = [md[a:b] for a, b in spans]
    assert texts == ["第一句 [1]。", "第二句。[2]", "引用一句 3 条", "End.", "Of 7 sources, 3 are positive [1]."]
    assert cl.find_claim("这是一个问题，有 3 条吗？") is None  # questions are not claims
    assert cl.find_claim("价格战愈演愈烈 [1]") is None        # nothing checkable


def test_figures_from_the_statistics_are_supported_and_others_are_not():
    ok, bad, close = check("负面 38.3%（23/60 条可判定来源）。负面 87.5%（7/8 条可判定来源）。负面约 38%。")
    assert ok.supported and ok.kinds == ["percentage", "number"] and ok.sources == []
    assert not bad.supported and "87.5%" in bad.reason and "没有引用来源" in bad.reason
    assert close.supported  # 38% is 38.3% at the precision written


def test_numbers_dates_quotes_and_names_are_checked_against_the_cited_sources():
    claims = check("3月2日起降价 2万 元，销量增长 35% [1]。该帖获得 1,200 个赞 [1]。"
                   "老车主「强烈不满，要求补偿」[2]。老车主「要求全额退款」[2]。"
                   "2025-03-04 有 20 条来源。2025-03-09 有新进展 [1]。")
    verdicts = [c.supported for c in claims]
    assert verdicts == [True, True, True, False, True, False], [(c.text, c.reason) for c in claims]
    assert "「要求全额退款」" in claims[3].reason and "[2]" in claims[3].reason
    assert "2025-03-09" in claims[5].reason
    # a quote cut with "…" is found piece by piece; a name must come from a cited source or be known
    q, name, known, unknown = check("「刚提车就降价两万，老车主强烈…」[2]。据 BYD 称需求旺盛 [1]。讨论集中在 Weibo。"
                                    "据 Tesla 称需求旺盛 [1]。")
    assert q.supported and name.supported and known.supported and known.kinds == ["name"]
    assert not unknown.supported and "Tesla" in unknown.reason


def test_a_citation_that_is_not_a_source_does_not_support_anything():
    (c,) = check("销量增长 35% [99]。")
    assert not c.supported and c.sources == [] and "[99]" in c.reason


def test_english_reasons_and_dates():
    claims = check("The price cut started on March 2 [1]. It started on March 9, 2025 [1].", zh=False)
    assert [c.supported for c in claims] == [True, False]
    assert "not found in the cited sources [1]" in claims[1].reason


def test_forum_quotes_may_come_from_the_forum_messages():
    (c,) = check("主持人问道：「老车主的补偿诉求是否合理」。", extra=["主持人：老车主的补偿诉求是否合理？"])
    assert c.supported
    (c,) = check("主持人问道：「老车主的补偿诉求是否合理」。")
    assert not c.supported


def test_an_optional_judge_can_overrule_but_is_not_needed():
    calls = []

    def judge(claim, texts):
        calls.append((claim.text, texts))
        return True, "paraphrase of the source"

    claims = cl.verify_section("s", "销量增长 40% [1]。销量 40%。", ev(), judge=judge)
    assert [c.supported for c in claims] == [True, False]  # only a claim with a citation goes to the judge
    assert claims[0].reason == "judge: paraphrase of the source" and len(calls) == 1 and calls[0][1]
    assert cl.summary(claims) == {"total": 2, "supported": 1, "unsupported": 1}
    assert cl.summary_text(cl.summary(claims), True) == "2 条论断，1 条有来源支持"
    assert cl.summary_text(cl.summary(claims), False) == "2 claims, 1 supported"


def test_unsupported_sentences_are_marked_in_html_and_markdown():
    md = "- 负面 38.3%（23/60 条可判定来源）。销量暴涨 **87.5%** [1]。\n\n正常的句子。"
    claims = [c.as_dict() for c in check(md)]
    assert [c["supported"] for c in claims] == [True, False]
    html = str(rep.markdown_to_html(md, cite=lambda n: True, claims=claims, zh=True))
    assert html.count('<mark class="unsupported"') == 1
    mark = html[html.index("<mark"):html.index("</mark>")]
    assert "87.5%" in mark and "38.3%" not in mark and '<span class="tag">未核实</span>' in mark
    assert 'title="「87.5%」' not in mark and "87.5% 未见于所引来源 [1]" in mark  # the reason, as a tooltip
    assert html.startswith("<ul>\n<li>") and '<a href="#src-1"' in html
    marked = cl.mark_markdown(md, claims)
    assert "销量暴涨 **87.5%** [1]。 ⚠" in marked and marked.count("⚠") == 1


def test_untrusted_text_cannot_forge_a_mark():
    forged = f"{cl.OPEN}0{cl.MID}<script>alert(1)</script>{cl.CLOSE} 正文"
    html = str(rep.markdown_to_html(forged, claims=[], zh=True))
    assert "<mark" not in html and "<script" not in html and "&lt;script&gt;" in html
    assert cl.strip_marks(forged) == "0<script>alert(1)</script> 正文"
    # a reason is an attribute: escaped, never markup
    md = "销量增长 99% [1]。"
    claims = [{**check(md)[0].as_dict(), "reason": '"><img src=x onerror=alert(1)>'}]
    html = str(rep.markdown_to_html(md, cite=lambda n: True, claims=claims))
    assert "<img" not in html and html.count("<mark") == 1 and html.count("</mark>") == 1
