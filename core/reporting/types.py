"""The six report types: a title pattern and an ordered list of sections, each with guidance.

Every type has six sections, each of a `kind` that says which statistics the offline writer
adds (sentiment shares, platform mix, the main actors, a timeline, the forum's discussion, …)
and which keywords make an engine finding relevant to it. The guidance is what the LLM is asked to write.

`choose_type_by_rules` picks a type offline from the topic and the engines' findings:
crisis words (危机, 事件, 召回, 食品安全, …) → crisis response; brand words → brand reputation;
price war / competition / market → market competition; policy / regulation / industry →
policy and industry; a trending spike in the sources' dates (or 热搜, 刷屏, …) → social hot
event; otherwise routine monitoring. A word in the topic counts three times a word that only
appears in the findings.
"""
from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

AUTO = "auto"
CUSTOM_KEY_RE = re.compile(r"tpl_[0-9a-f]{8}")  # a user's template's key (core/reporting/custom_templates.py)

# Section kinds and the words that make a finding relevant to each (Chinese and English).
KIND_KEYWORDS: dict[str, tuple[str, ...]] = {
    "overview": ("概览", "概述", "总体", "整体", "事件", "overview", "summary", "what happened"),
    "timeline": ("时间", "脉络", "发展", "经过", "起因", "发酵", "最新", "时间线", "按时间", "timeline", "unfold",
                 "date", "day"),
    "sentiment": ("情感", "情绪", "态度", "正面", "负面", "不满", "愤怒", "好评", "差评", "担忧", "支持", "反对",
                  "sentiment", "mood", "positive", "negative", "angry", "praise", "complain"),
    "channels": ("平台", "渠道", "传播", "媒体", "视频", "博主", "意见领袖", "传播者", "微博", "抖音", "哔哩哔哩",
                 "小红书", "platform", "channel", "media", "video", "influencer", "creator"),
    "voices": ("热度", "热门", "热度最高", "点赞", "转发", "评论", "观点", "声音", "hot", "likes", "shares",
               "comments", "voices", "opinion"),
    "actors": ("参与者", "品牌", "企业", "厂商", "机构", "媒体", "账号", "博主", "官方", "发布", "宣布", "回应",
               "actor", "player", "company", "brand", "media", "account", "official", "announce"),
    "themes": ("关键词", "焦点", "话题", "议题", "主要", "核心", "keyword", "theme", "topic", "focus"),
    "risks": ("风险", "隐患", "危机", "投诉", "维权", "负面", "扩散", "趋势研判", "risk", "threat", "complaint",
              "escalat"),
    "outlook": ("趋势", "展望", "走向", "后续", "预计", "未来", "机会", "outlook", "trend", "next", "future",
                "opportunit"),
    "recommendations": ("建议", "应对", "措施", "回应", "改进", "需要", "应当", "recommend", "should", "response",
                        "action", "measure"),
    "forum": ("主持人", "讨论", "论坛", "共识", "分歧", "host", "forum", "debate", "consensus"),
}


@dataclass(frozen=True)
class SectionSpec:
    key: str
    kind: str
    title_zh: str
    title_en: str
    guidance: str
    keywords: tuple[str, ...] = ()  # extra, type-specific relevance words

    def title(self, zh: bool) -> str:
        return self.title_zh if zh else self.title_en

    def relevance_words(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.keywords + KIND_KEYWORDS.get(self.kind, ())))


@dataclass(frozen=True)
class ReportType:
    key: str
    name_zh: str
    name_en: str
    title_zh: str  # pattern with {topic}
    title_en: str
    purpose: str  # one line for the LLM: what this kind of report is for
    sections: tuple[SectionSpec, ...] = field(default_factory=tuple)
    custom: bool = False  # a user's template (core/reporting/custom_templates.py): its headings stay as written

    def name(self, zh: bool) -> str:
        return self.name_zh if zh else self.name_en

    def title(self, topic: str, zh: bool) -> str:
        return (self.title_zh if zh else self.title_en).format(topic=topic)


def _forum(zh_title: str = "多方研判与分歧", en_title: str = "What the analysts argued about") -> SectionSpec:
    return SectionSpec("forum", "forum", zh_title, en_title,
                       "Record the agents' forum discussion as discussion, not as findings: how many messages each "
                       "speaker posted, where the engines agreed or disagreed, and the host's questions, given as "
                       "questions (quote the host where it helps). Open by saying that this section records the "
                       "discussion and is not a conclusion of the report. Say plainly if the forum had no messages.")


REPORT_TYPES: dict[str, ReportType] = {t.key: t for t in (
    ReportType(
        "brand_reputation", "品牌声誉", "Brand reputation",
        "{topic}：品牌声誉分析报告", "Brand reputation report: {topic}",
        "Assess how the public perceives a brand or product and what protects or damages its reputation.",
        (
            SectionSpec("standing", "overview", "口碑总览", "Reputation at a glance",
                        "Open with the verdict: overall standing of the brand in this conversation, the scale of "
                        "discussion and the two or three facts that matter most."),
            SectionSpec("feelings", "sentiment", "情感与口碑结构", "How people feel",
                        "Break down positive and negative sentiment and what drives each; cite typical posts."),
            SectionSpec("praise_blame", "themes", "赞誉与批评的焦点", "What people praise and criticise",
                        "List the concrete points of praise and of criticism (quality, price, service, "
                        "experience), each with evidence.",
                        ("好评", "差评", "质量", "服务", "体验", "推荐", "失望", "吐槽", "口碑", "品牌", "quality",
                         "service", "experience")),
            SectionSpec("voices", "channels", "渠道与意见领袖", "Where the conversation happens",
                        "Which platforms and which accounts shape the brand's image, and how their tone differs."),
            _forum(),
            SectionSpec("protect", "recommendations", "品牌维护建议", "Protecting the brand",
                        "Give prioritised, practical actions to reinforce strengths and address criticism."),
        )),
    ReportType(
        "market_competition", "市场竞争", "Market competition",
        "{topic}：市场竞争态势报告", "Market competition report: {topic}",
        "Describe the competitive situation in a market: players, moves, buyer reactions, and what comes next.",
        (
            SectionSpec("landscape", "overview", "竞争格局概述", "The competitive picture",
                        "Summarise the state of competition: who is involved, what is at stake, the scale of "
                        "discussion."),
            SectionSpec("moves", "actors", "主要参与者与动作", "Players and their moves",
                        "Which companies or brands did what (price cuts, launches, campaigns) and how they were "
                        "received.",
                        ("品牌", "车企", "厂商", "企业", "对手", "竞品", "降价", "价格", "份额", "销量", "发布",
                         "price", "launch", "rival", "share", "sales")),
            SectionSpec("buyers", "sentiment", "消费者反应", "How buyers react",
                        "Buyer and public reactions: who welcomes the moves, who is hurt, and why."),
            SectionSpec("share_of_voice", "channels", "传播声量对比", "Share of voice by channel",
                        "Where the discussion happens and which voices carry furthest."),
            _forum(),
            SectionSpec("outlook", "outlook", "趋势与机会", "Outlook and openings",
                        "Likely next moves and the openings or threats they create for market participants."),
        )),
    ReportType(
        "routine_monitoring", "日常监测", "Routine monitoring",
        "{topic}：舆情监测简报", "Monitoring brief: {topic}",
        "A periodic monitoring brief: what was said, how much, where, in what mood, and what to watch.",
        (
            SectionSpec("period", "overview", "本期概况", "This period at a glance",
                        "Volume, span and overall mood of the discussion, in a few sentences."),
            SectionSpec("highlights", "voices", "热点内容", "What drew attention",
                        "The posts and stories that drew the most engagement, and what they were about."),
            SectionSpec("mood", "sentiment", "情感走势", "Mood over the period",
                        "How sentiment is distributed and whether it shifts over the period."),
            SectionSpec("platforms", "channels", "平台分布", "Platforms",
                        "Which platforms carry the discussion and how they differ."),
            _forum(),
            SectionSpec("watch", "recommendations", "关注建议", "What to watch next",
                        "Signals worth monitoring in the next period, and any action needed now."),
        )),
    ReportType(
        "policy_industry", "政策与行业", "Policy and industry",
        "{topic}：政策与行业影响分析", "Policy and industry analysis: {topic}",
        "Explain a policy or industry development, how stakeholders read it, and its likely impact.",
        (
            SectionSpec("change", "overview", "动态概述", "What changed",
                        "State the policy or industry development, its scope and timing, and the discussion's "
                        "scale."),
            SectionSpec("provisions", "themes", "要点与解读", "Key points and readings",
                        "The key provisions or changes and how experts, media and the public interpret them.",
                        ("政策", "监管", "规定", "标准", "实施", "部门", "行业", "企业", "条例", "新规", "policy",
                         "regulation", "rule", "standard", "industry")),
            SectionSpec("stakeholders", "sentiment", "各方反应", "How stakeholders responded",
                        "Reactions of companies, practitioners and the public; support, concern and opposition."),
            SectionSpec("explainers", "channels", "传播与解读渠道", "Who explains it, where",
                        "Which platforms and accounts spread and interpret the news."),
            _forum(),
            SectionSpec("impact", "outlook", "影响评估与展望", "Impact and outlook",
                        "Expected effects on the industry and the public, open questions and what to monitor."),
        )),
    ReportType(
        "social_hot_event", "社会热点", "Social hot event",
        "{topic}：社会热点事件分析", "Trending event analysis: {topic}",
        "Analyse a trending social event: the story, how it spread, the public mood and where it is heading.",
        (
            SectionSpec("story", "overview", "事件速览", "The story so far",
                        "What happened, who is involved, and why it caught public attention."),
            SectionSpec("spread", "timeline", "传播脉络", "How it spread",
                        "The timeline of the spread: first posts, peaks, turning points."),
            SectionSpec("mood", "sentiment", "公众情绪", "Public mood",
                        "The public's feelings and arguments, with typical posts."),
            SectionSpec("voices", "voices", "关键声音", "Voices that shaped it",
                        "The posts, media and accounts that shaped the conversation most."),
            _forum(),
            SectionSpec("next", "outlook", "走势研判", "Where it goes next",
                        "Whether attention is rising or fading and what could revive it."),
        )),
    ReportType(
        "crisis_response", "危机应对", "Crisis response",
        "{topic}：危机舆情应对报告", "Crisis response report: {topic}",
        "Support an organisation facing a crisis: the facts, the escalation, the public's demands, risks and "
        "a response plan.",
        (
            SectionSpec("facts", "overview", "事件概要", "What happened",
                        "The facts as currently known, the parties involved, and the scale of the reaction."),
            SectionSpec("escalation", "timeline", "事态发展", "How it unfolded",
                        "The sequence of events and of public reaction; when and where it escalated."),
            SectionSpec("demands", "sentiment", "公众情绪与诉求", "Public anger and demands",
                        "How angry or worried people are and what exactly they demand.",
                        ("要求", "诉求", "道歉", "赔偿", "补偿", "追责", "demand", "apolog", "compensat")),
            SectionSpec("risks", "risks", "风险研判", "Risk assessment",
                        "The risks of further escalation (legal, regulatory, reputational), rated with reasons."),
            _forum(),
            SectionSpec("response", "recommendations", "应对建议", "Response plan",
                        "A prioritised response plan: what to say, to whom, through which channels, and when."),
        )),
)}

TYPE_KEYS: tuple[str, ...] = tuple(REPORT_TYPES)
DEFAULT_TYPE = "routine_monitoring"

# Offline rules: words that point to a type (matched case-insensitively as substrings).
RULE_WORDS: dict[str, tuple[str, ...]] = {
    "crisis_response": ("危机", "事件", "召回", "食品安全", "事故", "丑闻", "爆炸", "泄露", "维权", "道歉", "致歉",
                        "翻车", "曝光", "塌方", "中毒", "问责", "crisis", "recall", "scandal", "accident",
                        "food safety", "outbreak", "leak", "apology"),
    "brand_reputation": ("品牌", "口碑", "声誉", "形象", "美誉", "brand", "reputation", "image"),
    "market_competition": ("价格战", "竞争", "市场", "份额", "竞品", "对手", "降价", "销量", "market",
                           "competition", "competitor", "price war", "market share"),
    "policy_industry": ("政策", "监管", "行业", "法规", "条例", "新规", "部委", "国务院", "标准", "policy",
                        "regulation", "regulator", "industry", "legislation"),
    "social_hot_event": ("热搜", "刷屏", "爆火", "走红", "热议", "网红", "viral", "trending"),
}
# Ties go to the more specific, more urgent type.
PRIORITY = ("crisis_response", "policy_industry", "market_competition", "brand_reputation", "social_hot_event",
            "routine_monitoring")
TOPIC_WEIGHT = 3
FINDINGS_CAP = 4  # findings can add at most this much to one type


def normalise_type(value: str | None) -> str:
    """A user's choice: a type key, its Chinese or English name, or 'auto' (empty means auto)."""
    v = (value or "").strip()
    if not v or v.lower() == AUTO:
        return AUTO
    low = v.lower().replace("-", "_").replace(" ", "_")
    if low in REPORT_TYPES or CUSTOM_KEY_RE.fullmatch(low):
        return low
    for t in REPORT_TYPES.values():
        if v in (t.name_zh, t.name_en) or low == t.name_en.lower().replace(" ", "_"):
            return t.key
    raise ValueError(f"unknown report type {value!r}; choose auto, a template key "
                     f"(tpl_…) or one of {', '.join(TYPE_KEYS)}")


def trending_spike(day_counts: Mapping[str, int]) -> bool:
    """A burst: one day holds a large share of the posts, far above the usual day."""
    counts = [c for c in day_counts.values() if c > 0]
    total = sum(counts)
    if total < 8 or len(counts) < 3:
        return False
    peak = max(counts)
    typical = statistics.median(counts)
    return peak >= 4 and peak >= 3 * typical and peak >= 0.3 * total


def _hits(text: str, words: Iterable[str]) -> list[str]:
    low = (text or "").lower()
    return [w for w in words if w.lower() in low]


def choose_type_by_rules(topic: str, findings: str = "", day_counts: Mapping[str, int] | None = None
                         ) -> tuple[str, str, dict[str, int]]:
    """(type key, the reason in words, the score of each type)."""
    scores: dict[str, int] = {k: 0 for k in TYPE_KEYS}
    reasons: dict[str, list[str]] = {k: [] for k in TYPE_KEYS}
    for key, words in RULE_WORDS.items():
        in_topic = _hits(topic, words)
        in_findings = [w for w in _hits(findings, words) if w not in in_topic]
        scores[key] += TOPIC_WEIGHT * len(in_topic) + min(FINDINGS_CAP, len(in_findings))
        reasons[key] += [f"topic: {w}" for w in in_topic] + [f"findings: {w}" for w in in_findings[:FINDINGS_CAP]]
    if day_counts and trending_spike(day_counts):
        peak_day = max(day_counts, key=lambda d: day_counts[d])
        scores["social_hot_event"] += 2 * TOPIC_WEIGHT
        reasons["social_hot_event"].append(f"a spike of {day_counts[peak_day]} posts on {peak_day}")
    best = max(PRIORITY, key=lambda k: (scores[k], -PRIORITY.index(k)))
    # Findings alone are weak evidence (engines use generic words): they need two distinct hits.
    if scores[best] < 2:
        return DEFAULT_TYPE, "no rule matched the topic or findings: routine monitoring", scores
    return best, "; ".join(reasons[best]), scores


# =============================================================================================
# The report document: its sections and the JSON file every view of a report is drawn from
# =============================================================================================

SCHEMA = "shoal-report/1"
SECTION_STATUSES = ("ok", "failed", "empty")


def _list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else []


def _dict(x: Any) -> dict:
    return dict(x) if isinstance(x, dict) else {}


@dataclass
class ReportSection:
    """One written section of a report (its Markdown is untrusted: rendered only through core.reporting.markdown)."""
    index: int
    key: str
    kind: str
    title: str
    status: str  # ok | failed | empty
    mode: str    # llm | offline
    markdown: str
    note: str = ""
    error: str | None = None
    engines: list[str] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)  # report-wide source numbers it cites
    run_id: str = ""
    trace_id: str = ""
    ms: float = 0.0
    # what the section was fed (core.reporting.provenance): engine paragraphs ("query-3") and forum message ids
    paragraphs: list[str] = field(default_factory=list)
    forum_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    as_dict = to_dict  # the name the job's checkpoint code knew

    @classmethod
    def from_dict(cls, d: Any, position: int = 0) -> "ReportSection":
        d = _dict(d)
        try:
            index = int(d.get("index", position + 1))
        except (TypeError, ValueError):
            index = position + 1
        try:
            ms = float(d.get("ms") or 0.0)
        except (TypeError, ValueError):
            ms = 0.0
        s = lambda k: str(d.get(k) or "")  # noqa: E731
        return cls(index, s("key") or f"section-{index}", s("kind"), s("title"), s("status") or "ok",
                   s("mode") or "offline", s("markdown"), s("note"), d.get("error") if isinstance(d.get("error"), str)
                   else None, [str(e) for e in _list(d.get("engines"))],
                   [n for n in _list(d.get("sources")) if isinstance(n, int) and not isinstance(n, bool)],
                   s("run_id"), s("trace_id"), ms, [str(r) for r in _list(d.get("paragraphs"))],
                   [n for n in _list(d.get("forum_ids")) if isinstance(n, int) and not isinstance(n, bool)])


@dataclass
class ReportChart:
    """A chart: its data (the figures it draws) and its inline SVG (drawn by core.reporting.charts)."""
    key: str
    title: str
    data: dict[str, Any] = field(default_factory=dict)
    svg: str = ""   # inline SVG: escaped text only, no script, no external reference
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "data": self.data, "note": self.note,
                "has_svg": bool(self.svg), "svg": self.svg}

    @classmethod
    def from_dict(cls, d: Any) -> "ReportChart":
        d = _dict(d)
        svg = d.get("svg") if isinstance(d.get("svg"), str) else ""
        return cls(str(d.get("key") or ""), str(d.get("title") or ""), _dict(d.get("data")), svg,
                   str(d.get("note") or ""))


@dataclass
class ReportDocument:
    """The report as data: written once as <slug>-<id>.json; the HTML and Markdown files are rendered
    from it, and the Report page reads it (never the HTML)."""
    report: dict[str, Any]            # id, run_id, job_id, title, topic, type, type_name, type_by, type_reason,
                                      # partial, forced, mode, language, generated_at, trace_id, run_trace_id
    banner: dict[str, Any]            # partial, missing (list), coverage (text or None)
    notices: list[str]
    sections: list[ReportSection]
    sources: list[dict[str, Any]]     # numbered sources: n, doc_id, title, snippet, url, link, platform, …
    charts: list[ReportChart]
    statistics: dict[str, Any]
    provenance: dict[str, Any]
    files: dict[str, str]
    claims: list[dict[str, Any]] = field(default_factory=list)
    claims_count: dict[str, int] = field(default_factory=lambda: {"total": 0, "supported": 0, "unsupported": 0})
    coverage: dict[str, Any] | None = None
    schema: str = SCHEMA

    @property
    def zh(self) -> bool:
        return self.report.get("language") == "zh"

    @property
    def title(self) -> str:
        return str(self.report.get("title") or "")

    def to_dict(self) -> dict[str, Any]:
        d = {"schema": self.schema, "report": self.report, "banner": self.banner, "notices": self.notices,
             "sections": [s.to_dict() for s in self.sections], "sources": self.sources,
             "charts": [c.to_dict() for c in self.charts], "statistics": self.statistics,
             "provenance": self.provenance, "files": self.files, "claims": self.claims,
             "claims_count": self.claims_count}
        if self.coverage is not None:
            d["coverage"] = self.coverage
        return d

    def to_json(self) -> str:
        """The document's file (<slug>-<id>.json)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1, default=str)

    @classmethod
    def from_json(cls, text: str) -> "ReportDocument":
        """A document file read back; raises ValueError when the text is not JSON."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, d: Any) -> "ReportDocument":
        """Tolerant: a document written by an older version (a key missing) still loads."""
        d = _dict(d)
        banner = {"partial": False, "missing": [], "coverage": None, **_dict(d.get("banner"))}
        counts = _dict(d.get("claims_count"))
        claims = [c for c in _list(d.get("claims")) if isinstance(c, dict)]
        if not counts:
            supported = sum(1 for c in claims if c.get("supported"))
            counts = {"total": len(claims), "supported": supported, "unsupported": len(claims) - supported}
        return cls(_dict(d.get("report")), banner, [str(x) for x in _list(d.get("notices"))],
                   [ReportSection.from_dict(s, i) for i, s in enumerate(_list(d.get("sections")))],
                   [s for s in _list(d.get("sources")) if isinstance(s, dict) and "n" in s],
                   [ReportChart.from_dict(c) for c in _list(d.get("charts"))], _dict(d.get("statistics")),
                   _dict(d.get("provenance")), _dict(d.get("files")), claims, counts,
                   d.get("coverage") if isinstance(d.get("coverage"), dict) else None,
                   str(d.get("schema") or SCHEMA))
