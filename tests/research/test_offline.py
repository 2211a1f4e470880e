"""The offline analyst (core/research/offline.py): structure, searches, reflections, summaries, report."""
from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from core.text.sentiment import shares

from core.corpus.documents import Document, hotness
from core.research.offline import OFFLINE_LABEL, OfflineReasoner, cited_numbers, parse_brief, platform_name
from core.research.reasoning import ForumGuidance, Paragraph, ParagraphResult, ReasonContext, SearchPlan, Source, ToolSpec
from core.text.clean import clean_text
from core.text.keywords import extract_keywords, split_sentences

# --- data: two topics, 15 posts each -------------------------------------------------------

CAR = [  # (platform, day, likes, comments, shares, views, sentiment, kind, author, text)
    ("weibo", 1, 1200, 300, 80, 50000, 0.2, "post", "汽车观察", "{%#新能源汽车价格战#%}比亚迪宣布全系车型降价，最高优惠两万元。不少车主表示刚买的车就贬值了，心里很不是滋味[泪]。"),
    ("weibo", 2, 800, 150, 40, 30000, 0.3, "post", "车评人老王", "特斯拉随即回应称暂不跟进降价。@特斯拉中国 业内人士认为价格战会继续蔓延到更多品牌。"),
    ("douyin", 2, 5000, 900, 300, 200000, 0.7, "video", "懂车小哥", "实拍4S店排队看车，降价之后到店客流明显增加。销售顾问说这周订单翻了一倍！"),
    ("zhihu", 3, 300, 120, 10, 8000, 0.4, "post", "电池工程师", "价格战的本质是电池成本下降。碳酸锂价格回落让整车成本大幅降低，车企才有降价空间。"),
    ("weibo", 3, 450, 200, 25, 12000, 0.1, "post", "维权车主", "老车主集体维权，要求厂家给予补偿。车主们认为降价太突然，保值率受到严重打击。"),
    ("bilibili", 4, 2200, 400, 150, 90000, 0.6, "video", "电车研究所", "续航测试视频：降价后的车型续航没有缩水，电池配置保持不变，性价比更高了。"),
    ("weibo", 4, 600, 90, 30, 20000, 0.5, "post", "财经速递", "分析师指出，价格战将加速行业洗牌，一些小品牌可能难以为继。 https://example.com/a"),
    ("douyin", 5, 3000, 500, 120, 150000, 0.8, "video", "懂车小哥", "试驾降价版车型，内饰做工依然在线。这个价格买到这样的配置真的很划算！"),
    ("zhihu", 5, 150, 60, 5, 4000, 0.4, "post", "行业研究员", "补贴退坡之后，车企只能依靠降价来维持销量。长期来看价格战会压缩利润，影响研发投入。"),
    ("weibo", 6, 900, 350, 60, 40000, 0.2, "comment", "网友甲", "刚提车一周就降价两万，厂家一句保价政策都没有，太让老车主寒心了。"),
    ("weibo", 6, 100, 20, 2, 3000, 0.6, "comment", "网友乙", "作为准备买车的人，这次降价正好赶上，电池质保也延长了。"),
    ("bilibili", 7, 700, 80, 20, 25000, 0.5, "post", "电车研究所", "对比三款热门车型的续航与充电速度，降价后选择更多了。"),
    ("weibo", 8, 1500, 600, 200, 80000, 0.3, "post", "汽车观察", "多家车企跟进降价，价格战全面升级。经销商库存压力巨大，部分门店开始裁员。"),
    ("zhihu", 9, 200, 70, 8, 6000, 0.5, "post", "电池工程师", "电池技术进步让续航持续提升，这是价格战背后真正的底气。"),
    ("douyin", 10, 4000, 800, 250, 180000, 0.4, "video", "懂车小哥", "价格战下的二手车市场：保值率普遍下跌，车主卖车损失不小。"),
]
FOOD = [
    ("weibo", 1, 2000, 500, 100, 60000, 0.1, "post", "校园新鲜事", "{%#高校食堂涨价#%}多所高校食堂饭菜价格上涨，一份荤菜涨了两块钱。学生们纷纷吐槽生活费不够用了[二哈]。"),
    ("tieba", 2, 300, 180, 10, 9000, 0.2, "post", "吧友甲", "食堂窗口承包商说原材料成本上涨，只能提高菜价。学生质疑菜量反而变少了。"),
    ("xhs", 3, 1500, 220, 60, 40000, 0.6, "post", "吃货学姐", "整理了学校周边平价美食，食堂涨价之后可以去这些地方吃饭！"),
    ("weibo", 4, 900, 400, 80, 35000, 0.3, "post", "教育观察", "校方回应称将召开价格听证会，听取学生意见后再决定是否调整。"),
    ("weibo", 5, 700, 260, 40, 22000, 0.2, "comment", "网友丙", "食堂涨价但是饭菜质量没有变化，学生意见很大，希望学校严格监管。"),
    ("tieba", 6, 120, 90, 3, 5000, 0.4, "post", "吧友乙", "有同学统计了各个窗口的菜价变化，平均涨幅在百分之十五左右。"),
    ("xhs", 7, 800, 100, 30, 18000, 0.8, "post", "吃货学姐", "食堂新开的自选窗口按重量计价，价格透明，学生反响不错。"),
    ("weibo", 8, 1100, 350, 90, 42000, 0.3, "post", "校园新鲜事", "听证会上学生代表提出降低基本菜价，校方表示会研究补贴方案。"),
    ("weibo", 9, 400, 120, 20, 15000, 0.6, "post", "教育观察", "部分高校宣布对困难学生发放餐饮补贴，缓解食堂涨价带来的压力。"),
    ("tieba", 10, 200, 150, 5, 7000, 0.1, "comment", "吧友丙", "补贴只覆盖少数同学，大部分学生还是要承担涨价，这不公平。"),
    ("xhs", 11, 600, 80, 15, 12000, 0.5, "post", "营养师小林", "食堂饭菜的营养搭配比价格更重要，建议学生合理安排饮食。"),
    ("weibo", 12, 1300, 420, 110, 50000, 0.2, "post", "校园新鲜事", "食堂承包商被曝克扣菜量，学校已介入调查并要求整改。"),
    ("tieba", 13, 90, 40, 2, 3000, 0.5, "post", "吧友丁", "其实隔壁学校的食堂价格更高，涨价是全国普遍现象。"),
    ("weibo", 14, 500, 150, 30, 20000, 0.6, "post", "教育观察", "学校公布整改结果，部分菜品恢复原价，承包商被约谈。"),
    ("xhs", 15, 300, 60, 10, 9000, 0.8, "post", "吃货学姐", "今天去食堂发现菜价真的降回来了，学生的意见起了作用！"),
]


def make_docs(rows, month: tuple[int, int], prefix: str) -> list[Document]:
    out = []
    for i, (platform, day, likes, comments, shares, views, senti, kind, author, text) in enumerate(rows):
        out.append(Document(
            title="", content=text, url=f"https://example.org/{prefix}/{i}", platform=platform,
            published=datetime(month[0], month[1], day, 9, 0), author=author, likes=likes, comments=comments,
            shares=shares, views=views, sentiment=senti, kind=kind, source="corpus"))
    return out


CAR_DOCS = make_docs(CAR, (2024, 3), "car")
FOOD_DOCS = make_docs(FOOD, (2023, 9), "food")

INSIGHT_TOOLS = (
    ToolSpec("search_hot_content", "hot posts by engagement in a period", ("time_period", "limit")),
    ToolSpec("search_topic_globally", "search all posts for a topic", ("limit",)),
    ToolSpec("search_topic_by_date", "search posts within a date range", ("start_date", "end_date", "limit")),
    ToolSpec("get_comments_for_topic", "comments about a topic", ("limit",)),
    ToolSpec("search_topic_on_platform", "search one platform", ("platform", "start_date", "end_date")),
)
QUERY_TOOLS = (
    ToolSpec("basic_search_news", "basic news search"),
    ToolSpec("deep_search_news", "deep news search"),
    ToolSpec("search_news_last_24_hours", "news of the last 24 hours"),
    ToolSpec("search_news_last_week", "news of the last week"),
    ToolSpec("search_images_for_news", "images for news"),
    ToolSpec("search_news_by_date", "news in a date range", ("start_date", "end_date")),
)
MEDIA_TOOLS = (
    ToolSpec("comprehensive_search", "pages, images and video"),
    ToolSpec("web_search_only", "web pages only"),
    ToolSpec("search_for_structured_data", "structured data"),
    ToolSpec("search_last_24_hours", "last 24 hours"),
    ToolSpec("search_last_week", "last week"),
)
TOOLS = {"insight": INSIGHT_TOOLS, "query": QUERY_TOOLS, "media": MEDIA_TOOLS}


def ctx_for(topic: str, engine: str = "insight", p: int = 5, tools=None) -> ReasonContext:
    return ReasonContext(topic=topic, engine=engine, engine_title=f"{engine} engine", focus="",
                         tools=TOOLS[engine] if tools is None else tools, n_paragraphs=p)


def sources_of(docs: list[Document]) -> list[Source]:
    return [Source(i + 1, d) for i, d in enumerate(docs)]


class FakeSearch:
    """A tiny engine-side search over one topic's documents; citation numbers = corpus position."""

    def __init__(self, docs: list[Document], topic: str = ""):
        self.docs, self.topic = docs, topic

    def __call__(self, plan: SearchPlan) -> list[Source]:
        srcs = sources_of(self.docs)
        query = plan.query[len(self.topic):] if self.topic and plan.query.startswith(self.topic) else plan.query
        terms = query.split()[0 if self.topic else 1:]
        if terms:
            srcs = [s for s in srcs if all(t.lower() in s.doc.text.lower() for t in terms)]
        if "platform" in plan.params:
            srcs = [s for s in srcs if s.doc.platform == plan.params["platform"]]
        if "start_date" in plan.params:
            lo, hi = plan.params["start_date"], plan.params.get("end_date", "9999-12-31")
            srcs = [s for s in srcs if lo <= s.doc.published.strftime("%Y-%m-%d") <= hi]
        if "comment" in plan.tool:
            srcs = [s for s in srcs if s.doc.kind == "comment"] or srcs
        if "hot" in plan.tool:
            srcs = sorted(srcs, key=lambda s: -s.doc.hotness)
        return srcs[:8]


def run_paragraph(reasoner, ctx, para, search, host=None, rounds=2) -> ParagraphResult:
    """One paragraph as the engine runs it; ``host``: the host's speech, or a whole ForumGuidance."""
    guidance = host if isinstance(host, ForumGuidance) else ForumGuidance(host_speech=host)
    plan = reasoner.plan_first_search(ctx, para, guidance)
    sources = search(plan)
    searches = [plan]
    summary = reasoner.first_summary(ctx, para, sources, guidance)
    for _ in range(rounds):
        plan = reasoner.plan_reflection(ctx, para, summary, sources, guidance)
        if plan is None:
            break
        searches.append(plan)
        found = search(plan)
        new = [s for s in found if s.n not in {x.n for x in sources}]
        all_sources = sources + new
        summary = reasoner.reflection_summary(ctx, para, summary, new, all_sources, guidance)
        sources = all_sources
    return ParagraphResult(para, summary, sources, searches)


def run_engine(reasoner, ctx, docs, parallel=False, host=None) -> tuple[list[Paragraph], list[ParagraphResult], str]:
    search = FakeSearch(docs)
    paragraphs = reasoner.plan_structure(ctx, sources_of(docs))
    if parallel:
        with ThreadPoolExecutor(max_workers=len(paragraphs)) as pool:
            results = list(pool.map(lambda p: run_paragraph(reasoner, ctx, p, search, host), paragraphs))
    else:
        results = [run_paragraph(reasoner, ctx, p, search, host) for p in paragraphs]
    return paragraphs, results, reasoner.format_report(ctx, results)


BULLET = re.compile(r"^- (?:\*\*[^*]+\*\* )?(.+) \[(\d+)\]$")
QUOTED = re.compile(r"“([^”]+)” \[(\d+)\]")


def quoted_sentences(summary: str) -> list[tuple[str, int]]:
    out = []
    for line in summary.splitlines():
        m = BULLET.match(line.strip())
        if m:
            out.append((m.group(1), int(m.group(2))))
        out += [(q, int(n)) for q, n in QUOTED.findall(line)]
    return out


@pytest.fixture(scope="module")
def reasoner():
    return OfflineReasoner(use_default_classifier=False)


@pytest.fixture(scope="module")
def car_insight(reasoner):
    return run_engine(reasoner, ctx_for("新能源汽车价格战"), CAR_DOCS, host="各方观点有何分歧？车主的维权诉求是什么？")


# --- structure ------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1, 3, 5, 8])
def test_structure_has_exactly_p_paragraphs(reasoner, p):
    for engine in ("insight", "query", "media"):
        paras = reasoner.plan_structure(ctx_for("新能源汽车价格战", engine, p), sources_of(CAR_DOCS))
        assert len(paras) == p
        assert [x.index for x in paras] == list(range(p))
        assert len({x.title for x in paras}) == p


def test_structure_differs_by_engine_and_topic(reasoner):
    titles = {}
    for engine in ("insight", "query", "media"):
        for topic, docs in (("新能源汽车价格战", CAR_DOCS), ("高校食堂涨价", FOOD_DOCS)):
            titles[engine, topic] = [x.title for x in reasoner.plan_structure(ctx_for(topic, engine), sources_of(docs))]
    for topic in ("新能源汽车价格战", "高校食堂涨价"):
        assert titles["insight", topic] != titles["query", topic] != titles["media", topic]
        assert titles["insight", topic][0].startswith(f"「{topic}」")
    assert titles["insight", "新能源汽车价格战"] != titles["insight", "高校食堂涨价"]
    assert "舆情概览" in titles["insight", "高校食堂涨价"][0]
    assert any("时间线" in t for t in titles["query", "高校食堂涨价"])
    # later titles carry keywords that really occur in the overview documents
    car_text = " ".join(d.content for d in CAR_DOCS)
    kw_titles = [t for t in titles["insight", "新能源汽车价格战"][1:] if "：" in t]
    assert kw_titles
    for t in kw_titles:
        for kw in t.split("：", 1)[1].split("、"):
            assert kw in car_text


def test_structure_adapts_to_what_the_overview_found(reasoner):
    # one platform, no engagement: no "platform differences" and no "hot posts" paragraphs
    flat = [Document(title="", content=d.content, platform="weibo", published=d.published) for d in FOOD_DOCS]
    titles = [x.title for x in reasoner.plan_structure(ctx_for("高校食堂涨价", "insight", 5), sources_of(flat))]
    assert len(titles) == 5
    assert not any("平台差异" in t or "热门内容" in t for t in titles)
    full = [x.title for x in reasoner.plan_structure(ctx_for("高校食堂涨价", "insight", 5), sources_of(FOOD_DOCS))]
    assert any("热门内容" in t for t in full)


def test_briefs_carry_keywords_span_and_platforms(reasoner):
    paras = reasoner.plan_structure(ctx_for("新能源汽车价格战", "insight", 5), sources_of(CAR_DOCS))
    info = parse_brief(paras[1].brief)
    assert info["keywords"]
    assert info["span"] == ("2024-03-01", "2024-03-10")
    plat = [k for k, _ in sorted(Counter(d.platform for d in CAR_DOCS).items(), key=lambda kv: (-kv[1], kv[0]))]
    assert info["platforms"] == plat[:3]


# --- searches -------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["insight", "query", "media"])
def test_searches_use_declared_tools_and_params(reasoner, engine):
    ctx = ctx_for("新能源汽车价格战", engine, 6)
    names = {t.name: set(t.params) for t in ctx.tools}
    for para in reasoner.plan_structure(ctx, sources_of(CAR_DOCS)):
        plans = [reasoner.plan_first_search(ctx, para),
                 reasoner.plan_reflection(ctx, para, "", sources_of(CAR_DOCS))]
        for plan in plans:
            assert plan is not None
            assert plan.tool in names
            assert set(plan.params) <= names[plan.tool]
            assert plan.query.startswith("新能源汽车价格战")


def test_tools_fit_the_paragraph(reasoner):
    ctx = ctx_for("新能源汽车价格战", "insight", 6)
    paras = reasoner.plan_structure(ctx, sources_of(CAR_DOCS))
    plans = {p.title.split("：")[0]: reasoner.plan_first_search(ctx, p) for p in paras}
    assert plans["热门内容与高互动帖子"].tool == "search_hot_content"
    assert plans["评论焦点"].tool == "get_comments_for_topic"
    top_platform = Counter(d.platform for d in CAR_DOCS).most_common(1)[0][0]
    assert plans["平台差异"].tool == "search_topic_on_platform"
    assert plans["平台差异"].params["platform"] == top_platform
    assert plans["风险与趋势研判"].tool == "search_topic_by_date"
    assert plans["风险与趋势研判"].params == {"start_date": "2024-03-04", "end_date": "2024-03-10"}
    qctx = ctx_for("新能源汽车价格战", "query", 5)
    timeline = [p for p in reasoner.plan_structure(qctx, sources_of(CAR_DOCS)) if "时间线" in p.title][0]
    plan = reasoner.plan_first_search(qctx, timeline)
    assert plan.tool == "search_news_by_date"
    assert plan.params == {"start_date": "2024-03-01", "end_date": "2024-03-10"}
    # the overview paragraph searches the topic itself, other paragraphs add their keyword
    assert reasoner.plan_first_search(ctx, paras[0]).query == "新能源汽车价格战"
    assert reasoner.plan_first_search(ctx, paras[1]).query == "新能源汽车价格战 " + parse_brief(paras[1].brief)["keywords"][0]


def test_no_tools(reasoner):
    ctx = ctx_for("新能源汽车价格战", "insight", 3, tools=())
    para = reasoner.plan_structure(ctx, sources_of(CAR_DOCS))[0]
    assert reasoner.plan_first_search(ctx, para).tool == ""
    assert reasoner.plan_reflection(ctx, para, "", sources_of(CAR_DOCS)) is None


# --- reflection -----------------------------------------------------------------------------

def test_reflection_targets_uncovered_keyword_until_all_covered(reasoner):
    ctx = ctx_for("新能源汽车价格战", "insight", 5)
    para = reasoner.plan_structure(ctx, sources_of(CAR_DOCS))[1]
    srcs = sources_of(CAR_DOCS[:8])
    summary = reasoner.first_summary(ctx, para, srcs, None).split("\n")[0]  # the statistics line only
    assert summary.startswith("**统计**")
    text = " ".join(s.doc.text for s in srcs) + para.brief
    targets = []
    for _ in range(30):
        plan = reasoner.plan_reflection(ctx, para, summary, srcs)
        if plan is None:
            break
        kw = plan.query.split(" ", 1)[1]
        assert kw not in summary
        assert kw in text
        assert kw not in targets
        targets.append(kw)
        summary += " " + kw
    else:
        pytest.fail("reflection never reported full coverage")
    assert targets
    assert reasoner.plan_reflection(ctx, para, summary, srcs) is None


def test_reflection_targets_missing_platform(reasoner):
    ctx = ctx_for("新能源汽车价格战", "insight", 6)
    para = [p for p in reasoner.plan_structure(ctx, sources_of(CAR_DOCS)) if p.title.startswith("平台差异")][0]
    weibo_only = [s for s in sources_of(CAR_DOCS) if s.doc.platform == "weibo"]
    summary = reasoner.first_summary(ctx, para, weibo_only, None)
    plan = reasoner.plan_reflection(ctx, para, summary, weibo_only)
    assert plan.tool == "search_topic_on_platform"
    assert plan.params["platform"] != "weibo"
    assert plan.params["platform"] in parse_brief(para.brief)["platforms"]
    assert platform_name(plan.params["platform"], True) not in summary


def test_reflection_summary_integrates_new_sources(reasoner):
    ctx = ctx_for("新能源汽车价格战", "insight", 5)
    all_srcs = sources_of(CAR_DOCS)
    old = all_srcs[:3]
    old_text = " ".join(s.doc.text for s in old)
    # a paragraph whose brief asks for a keyword the first sources do not have
    para = [p for p in reasoner.plan_structure(ctx, all_srcs)
            if any(k not in old_text for k in parse_brief(p.brief)["keywords"])][0]
    summary = reasoner.first_summary(ctx, para, old, None)
    plan = reasoner.plan_reflection(ctx, para, summary, old)
    kw = plan.query.split(" ", 1)[1]
    assert kw not in summary and kw in parse_brief(para.brief)["keywords"]
    new = [s for s in all_srcs[3:] if kw in s.doc.text]
    assert new, kw
    updated = reasoner.reflection_summary(ctx, para, summary, new, old + new, None)
    assert kw in updated
    assert set(cited_numbers(updated)) & {s.n for s in new}
    bullets = quoted_sentences(updated)
    assert len(bullets) == len(set(bullets))
    assert len(updated) <= 1200
    assert "共 %d 条来源" % len(old + new) in updated
    # a search that found nothing new: the keyword is marked as searched, so it is not searched again
    plan2 = reasoner.plan_reflection(ctx, para, updated, old + new)
    if plan2 is not None:
        kw2 = plan2.query.split(" ", 1)[1]
        again = reasoner.reflection_summary(ctx, para, updated, [], old + new, None)
        assert kw2 in again
        nxt = reasoner.plan_reflection(ctx, para, again, old + new)
        assert nxt is None or nxt.query != plan2.query


# --- summaries ------------------------------------------------------------------------------

def test_summaries_cite_real_sentences_of_real_sources(car_insight):
    _, results, _ = car_insight
    for r in results:
        by_n = {s.n: s for s in r.sources}
        cited = cited_numbers(r.summary)
        assert cited
        assert set(cited) <= set(by_n)
        quotes = quoted_sentences(r.summary)
        assert quotes
        for text, n in quotes:
            assert text in clean_text(by_n[n].doc.text), (text, n)


def test_statistics_are_correct(reasoner):
    ctx = ctx_for("高校食堂涨价", "insight", 5)
    para = reasoner.plan_structure(ctx, sources_of(FOOD_DOCS))[0]
    srcs = sources_of(FOOD_DOCS)
    text = reasoner.first_summary(ctx, para, srcs, None)
    assert "共 15 条来源（15 条不重复）" in text
    counts = Counter(d.platform for d in FOOD_DOCS)
    for plat, c in counts.items():
        assert f"{platform_name(plat, True)} {c} 条（{100 * c / 15:.1f}%）" in text
    assert "时间跨度 2023-09-01 至 2023-09-15（15 天）" in text
    # three classes from the one scorer's thresholds, each with its base
    mix = shares(d.sentiment for d in FOOD_DOCS)
    assert mix.scored == 15 and mix.positive and mix.negative
    assert (f"正面 {100 * mix.positive / 15:.1f}%（{mix.positive}/15），中性 {100 * mix.neutral / 15:.1f}%"
            f"（{mix.neutral}/15），负面 {100 * mix.negative / 15:.1f}%（{mix.negative}/15）") in text
    top = max(srcs, key=lambda s: hotness(s.doc.likes, s.doc.comments, s.doc.shares, s.doc.views))
    line = [ln for ln in text.splitlines() if ln.startswith("1. ")][0]
    assert line.endswith(f"[{top.n}]")
    assert f"热度 {top.doc.hotness:,.0f}" in line


def test_sentiment_sources(reasoner):
    ctx = ctx_for("高校食堂涨价", "insight", 5)
    para = reasoner.plan_structure(ctx, sources_of(FOOD_DOCS))[0]
    unrated = [Source(i + 1, Document(title="", content=d.content, platform=d.platform, published=d.published))
               for i, d in enumerate(FOOD_DOCS[:4])]
    assert "情感倾向：未知" in reasoner.first_summary(ctx, para, unrated, None)
    calls = []

    def classifier(texts):
        calls.append(len(texts))
        return [(1, 0.9) if "平价" in t else (0, 0.1) for t in texts]

    text = OfflineReasoner(classifier=classifier).first_summary(ctx, para, unrated, None)
    assert calls == [4]
    assert "正面 25.0%（1/4），中性 0.0%（0/4），负面 75.0%（3/4）" in text


def test_markup_is_removed(reasoner):
    doc = Document(title="", content="\u200b{%#食堂话题#%}食堂今天的饭菜价格又涨了，学生非常不满[怒]@某某同学 "
                   "详情见 https://t.cn/abc123 {%北京·某大学%}。", platform="weibo",
                   published=datetime(2023, 9, 1), likes=1)
    ctx = ctx_for("高校食堂涨价", "insight", 3)
    para = reasoner.plan_structure(ctx, [Source(1, doc)])[0]
    text = reasoner.first_summary(ctx, para, [Source(1, doc)], None)
    for junk in ("{%", "[怒]", "@某某", "t.cn", "\u200b", "北京·"):
        assert junk not in text
    assert "食堂今天的饭菜价格又涨了" in text
    kws = extract_keywords([clean_text(doc.content)]).top(20)
    assert not any(k in ("怒", "t.cn", "某某同学") for k in kws)


def test_host_response_uses_sources(car_insight):
    _, results, _ = car_insight
    lines = [ln for r in results for ln in r.summary.splitlines() if ln.startswith("**回应主持人**")]
    assert len(lines) == len(results)
    assert any("“" in ln and re.search(r"\[\d+\]$", ln) for ln in lines)
    assert all("各方观点有何分歧？" in ln or "车主的维权诉求是什么？" in ln for ln in lines)


def test_empty_sources(reasoner):
    ctx = ctx_for("新能源汽车价格战", "insight", 3)
    para = reasoner.plan_structure(ctx, [])[0]
    assert len(reasoner.plan_structure(ctx, [])) == 3
    text = reasoner.first_summary(ctx, para, [], ForumGuidance(host_speech="问题是什么？"))
    assert "没有检索到" in text
    assert cited_numbers(text) == []
    again = reasoner.reflection_summary(ctx, para, text, [], [], None)
    assert "没有检索到" in again and cited_numbers(again) == []
    report = reasoner.format_report(ctx, [ParagraphResult(para, text, [])])
    assert "（无引用来源）" in report


def test_english_topic_gives_english_headings(reasoner):
    ctx = ctx_for("EV price war", "query", 4)
    paras = reasoner.plan_structure(ctx, sources_of(CAR_DOCS))
    assert paras[0].title == "“EV price war”: Overview"
    labels = [p.title.split(":")[0] for p in paras[1:]]
    assert all(label.isascii() for label in labels)
    assert "Key terms:" in paras[1].brief
    result = run_paragraph(reasoner, ctx, paras[0], FakeSearch(CAR_DOCS, "EV price war"), host="What do owners want?")
    assert result.summary.startswith("**Statistics**: ")
    assert "**Responding to the host**" in result.summary
    report = reasoner.format_report(ctx, [result])
    assert report.startswith("# Report on “EV price war” · query engine")
    assert "## Sources" in report and OFFLINE_LABEL in report


# --- report, determinism, threads -----------------------------------------------------------

def test_report_lists_exactly_the_cited_sources(car_insight):
    paras, results, report = car_insight
    assert report.startswith("# 「新能源汽车价格战」分析报告 · insight engine")
    assert OFFLINE_LABEL in report
    for p in paras:
        assert f"## {p.index + 1}. {p.title}" in report
    body, sources = report.split("## 来源", 1)
    listed = [int(n) for n in re.findall(r"^- \[(\d+)\] ", sources, re.M)]
    cited = {n for r in results for n in cited_numbers(r.summary)}
    assert sorted(listed) == sorted(cited)
    retrieved = {s.n for r in results for s in r.sources}
    assert retrieved - cited  # some retrieved sources are not cited, and are not listed
    for n in listed:
        d = CAR_DOCS[n - 1]
        line = re.search(rf"^- \[{n}\] .*$", sources, re.M).group(0)
        assert line.endswith(f" — {platform_name(d.platform, True)} — {d.published:%Y-%m-%d} — {d.url}")


def test_deterministic(car_insight):
    again = run_engine(OfflineReasoner(use_default_classifier=False), ctx_for("新能源汽车价格战"), CAR_DOCS,
                       host="各方观点有何分歧？车主的维权诉求是什么？")
    assert again[2] == car_insight[2]
    assert [r.searches for r in again[1]] == [r.searches for r in car_insight[1]]


def test_thread_safe(reasoner):
    for engine in ("query", "media"):
        ctx = ctx_for("高校食堂涨价", engine, 5)
        seq = run_engine(reasoner, ctx, FOOD_DOCS)
        par = run_engine(reasoner, ctx, FOOD_DOCS, parallel=True)
        assert par[2] == seq[2]
        assert [r.searches for r in par[1]] == [r.searches for r in seq[1]]


def test_sentences_are_substrings():
    text = clean_text("第一句话在这里。第二句“引用的话！”后面还有，\n新的一行没有句号 Then an English sentence. And more")
    for s in split_sentences(text):
        assert s in text
    assert "第一句话在这里。" in split_sentences(text)


def test_platform_reflection_needs_a_platform_tool(reasoner):
    ctx = ctx_for("新能源汽车价格战", "media", 5)
    para = [p for p in reasoner.plan_structure(ctx, sources_of(CAR_DOCS)) if p.title.startswith("平台分布")][0]
    weibo_only = [s for s in sources_of(CAR_DOCS) if s.doc.platform == "weibo"]
    summary = reasoner.first_summary(ctx, para, weibo_only, None).split("\n")[0]
    plan = reasoner.plan_reflection(ctx, para, summary, weibo_only)
    assert plan.query != "新能源汽车价格战" and plan.params == {}


def test_messy_input_does_not_break(reasoner):
    docs = [Document(title="", content="", platform=""),
            Document(title="标题\x00", content="", url="u", likes=None, published="2024-01-02T10:00:00"),
            Document(title="", content="\u200b\u200b[doge][doge]@a @b http://x.y/z", views=None),
            Document(title="", content="短。", published=datetime(2024, 1, 3))]
    ctx = ctx_for("食堂" * 25000 + "\x07", "insight", 4)
    srcs = sources_of(docs)
    paras = reasoner.plan_structure(ctx, srcs)
    assert len(paras) == 4 and len(paras[0].title) < 80
    for p in paras:
        plan = reasoner.plan_first_search(ctx, p)
        assert len(plan.query) <= 200 and "\x07" not in plan.query
        text = reasoner.first_summary(ctx, p, srcs, ForumGuidance(host_speech="？"))
        assert "[doge]" not in text and "共 4 条来源" in text
        reasoner.reflection_summary(ctx, p, text, srcs[:1], srcs, None)
    assert "## 来源" in reasoner.format_report(ctx, [ParagraphResult(paras[0], "x [1] [99]", srcs)])


def test_near_duplicate_posts_are_quoted_once_and_counted_as_distinct(reasoner):
    from datetime import datetime as dt

    template = "转发抽奖：关注并转发本条，抽三位送新能源汽车价格战观察手册，第{}期，快来参加吧！"
    docs = [Document(title="", content=template.format(1) + f"@用户{i}", platform="weibo", likes=100 - i,
                     published=dt(2023, 9, 1 + i)) for i in range(5)]
    docs += [Document(title="", content="车企降价后老车主维权，要求厂家保价补偿差价。", platform="weibo", likes=3,
                      published=dt(2023, 9, 8)),
             Document(title="", content="经销商库存压力很大，新能源汽车价格战让门店利润变薄。", platform="tieba", likes=2,
                      published=dt(2023, 9, 9))]
    ctx = ctx_for("新能源汽车价格战", "insight", 3)
    para = reasoner.plan_structure(ctx, sources_of(docs))[0]
    text = reasoner.first_summary(ctx, para, sources_of(docs), None)
    assert "共 7 条来源（3 条不重复）" in text
    templated = [ln for ln in text.splitlines() if ln.startswith("- ") and "转发抽奖" in ln]
    assert len(templated) <= 1
    top = [ln for ln in text.splitlines() if re.match(r"^\d\. ", ln)]
    assert sum("转发抽奖" in ln for ln in top) == 1  # the hottest of the group, once
