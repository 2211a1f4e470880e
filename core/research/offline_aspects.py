"""The offline analyst's vocabulary (core/research/offline.py): platforms, the aspects a paragraph can
cover per engine, the intent of a paragraph from its title, and the brief that carries a paragraph's
keywords, period and platforms from plan_structure to the later steps (the reasoner keeps no state).

Names with a leading underscore are private to the offline analyst's modules (core/research/offline*.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from core.research.reasoning import Paragraph

PLATFORMS = {
    "weibo": ("微博", "Weibo"), "douyin": ("抖音", "Douyin"), "bilibili": ("哔哩哔哩", "Bilibili"),
    "xhs": ("小红书", "Xiaohongshu"), "xiaohongshu": ("小红书", "Xiaohongshu"), "zhihu": ("知乎", "Zhihu"),
    "tieba": ("贴吧", "Tieba"), "kuaishou": ("快手", "Kuaishou"), "news": ("新闻", "News"),
    "web": ("网页", "Web"), "image": ("图片", "Images"), "video": ("视频", "Video"),
    "wechat": ("微信", "WeChat"), "toutiao": ("今日头条", "Toutiao"),
}
VIDEO_PLATFORMS = frozenset({"douyin", "bilibili", "kuaishou", "video"})
IMAGE_PLATFORMS = frozenset({"xhs", "xiaohongshu", "image"})
KIND_NAMES = {"post": ("帖子", "posts"), "comment": ("评论", "comments"), "news": ("新闻", "news"),
              "web": ("网页", "web pages"), "image": ("图片", "images"), "video": ("视频", "videos")}


def platform_name(code: str, zh: bool) -> str:
    code = (code or "").strip()
    if not code:
        return "未知" if zh else "unknown"
    names = PLATFORMS.get(code.lower())
    return (names[0] if zh else names[1]) if names else code


# --- aspects of a report, per engine --------------------------------------------------------

@dataclass(frozen=True)
class Aspect:
    intent: str
    zh: str
    en: str
    zh_brief: str
    en_brief: str


ASPECTS: dict[str, tuple[Aspect, ...]] = {
    "query": (
        Aspect("overview", "事件概览", "Overview", "发生了什么：主要事实、涉及各方与核心争议",
               "What happened: the main facts, the parties involved and the core dispute"),
        Aspect("timeline", "事件时间线", "Timeline", "按时间梳理事件的进展与关键节点",
               "How the story developed over time, with its key moments"),
        Aspect("official", "官方回应与权威信息", "Official statements", "官方、机构与当事方的回应和声明",
               "Statements and responses of officials, institutions and the parties"),
        Aspect("framing", "媒体报道框架", "Media framing", "媒体如何报道与解读：角度、措辞与立场",
               "How the media report and frame it: angles, wording, stance"),
        Aspect("outlook", "后续走向与展望", "Outlook", "最新进展与可能的后续走向",
               "Latest developments and what may come next"),
    ),
    "media": (
        Aspect("overview", "多媒体传播概览", "Multimedia coverage overview", "图文与视频内容中的主要信息",
               "The main information across pages, images and video"),
        Aspect("image", "图片与视觉呈现", "Images and visual coverage", "图片与视觉内容呈现了什么",
               "What the images and visual content show"),
        Aspect("video", "视频内容与传播", "Video coverage", "视频平台上的内容与传播情况",
               "Content and spread on video platforms"),
        Aspect("platform", "平台分布与内容形态", "Platforms and formats", "内容分布在哪些平台、以何种形态传播",
               "Which platforms carry the story and in which formats"),
        Aspect("influencer", "关键传播者与意见领袖", "Influencers and key spreaders",
               "哪些账号与内容带动了传播", "Which accounts and posts drove the spread"),
    ),
    "insight": (
        Aspect("overview", "舆情概览", "Public opinion overview", "社交媒体上讨论的规模、焦点与整体情绪",
               "Volume, focus and overall mood of the social-media discussion"),
        Aspect("sentiment", "公众情绪与态度", "Public sentiment", "正面与负面情绪的比例及其代表性观点",
               "Positive and negative shares and representative views"),
        Aspect("hot", "热门内容与高互动帖子", "Hot posts", "互动量最高的帖子及其内容",
               "The posts with the most engagement and what they say"),
        Aspect("platform", "平台差异", "Platform differences", "不同平台上的讨论量、情绪与关注点差异",
               "How volume, mood and focus differ between platforms"),
        Aspect("comments", "评论焦点", "Comment themes", "评论区的主要观点与争议",
               "The main views and disputes in the comments"),
        Aspect("risk", "风险与趋势研判", "Risks and trends", "潜在风险、争议升级迹象与近期趋势",
               "Potential risks, signs of escalation and recent trends"),
    ),
}
THEME = Aspect("theme", "子话题", "Sub-topic", "围绕以下关键词的相关讨论", "Discussion around these keywords")
EXTRA = Aspect("general", "补充观察", "Additional view", "其余相关讨论", "Other related discussion")

# intent of a paragraph from its title (label part) — my own titles and anyone else's
_INTENT_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("overview", ("概览", "overview")),
    ("timeline", ("时间线", "时间", "进展", "timeline", "chronolog")),
    ("official", ("官方", "回应", "声明", "official", "statement")),
    ("risk", ("风险", "risk")),
    ("outlook", ("展望", "走向", "趋势", "outlook", "trend")),
    ("comments", ("评论", "comment")),
    ("hot", ("热门", "热度", "高互动", "hot", "popular")),
    ("sentiment", ("情绪", "情感", "态度", "sentiment", "emotion")),
    ("platform", ("平台", "platform")),
    ("influencer", ("意见领袖", "传播者", "influencer")),
    ("video", ("视频", "video")),
    ("image", ("图片", "视觉", "image", "visual")),
    ("framing", ("媒体报道", "报道", "framing", "media")),
    ("theme", ("子话题", "sub-topic")),
)

# generic words that make a sentence fit an aspect (never topic-specific)
_FOCUS_WORDS: dict[str, tuple[str, ...]] = {
    "official": ("官方", "通报", "回应", "声明", "发布", "公告", "调查", "处理", "official", "statement", "announced"),
    "outlook": ("后续", "未来", "预计", "将", "计划", "趋势", "will", "expect", "plan", "future"),
    "risk": ("风险", "质疑", "担忧", "投诉", "争议", "不满", "隐患", "维权", "risk", "concern", "complaint"),
    "framing": ("报道", "媒体", "评论员", "指出", "认为", "report", "media", "editorial"),
    "sentiment": ("支持", "反对", "愤怒", "失望", "感动", "心疼", "满意", "support", "angry", "disappoint"),
    "comments": ("评论", "网友", "留言", "comment"),
    "image": ("图", "照片", "画面", "photo", "image", "picture"),
    "video": ("视频", "直播", "播放", "video", "live"),
}

# --- the brief of a paragraph carries what later steps need (no state on the reasoner) ---

def _brief(aspect: Aspect, zh: bool, keywords: list[str], span: tuple[str, str] | None,
           platforms: list[str]) -> str:
    parts = [aspect.zh_brief if zh else aspect.en_brief]
    if keywords:
        parts.append(("重点关键词：" + "、".join(keywords)) if zh else ("Key terms: " + ", ".join(keywords)))
    if span:
        parts.append(f"时间范围：{span[0]} 至 {span[1]}" if zh else f"Period: {span[0]} to {span[1]}")
    if platforms:
        shown = [f"{platform_name(p, zh)}（{p}）" if zh else f"{platform_name(p, zh)} ({p})" for p in platforms]
        parts.append(("主要平台：" + "、".join(shown)) if zh else ("Platforms: " + ", ".join(shown)))
    return ("。".join(parts) + "。") if zh else (". ".join(parts) + ".")


def parse_brief(brief: str) -> dict:
    """keywords, span (start, end) and platform codes written into a brief by plan_structure."""
    brief = brief or ""
    out: dict = {"keywords": [], "span": None, "platforms": []}
    m = re.search(r"(?:重点关键词|Key terms)[:：]\s*([^。\n]+?)(?:[。\n]|\.(?:\s|$)|$)", brief)
    if m:
        out["keywords"] = [k.strip() for k in re.split(r"[、,，]\s*", m.group(1)) if k.strip()]
    m = re.search(r"(\d{4}-\d{2}-\d{2})\s*(?:至|to)\s*(\d{4}-\d{2}-\d{2})", brief)
    if m:
        out["span"] = (m.group(1), m.group(2))
    m = re.search(r"(?:主要平台|Platforms)[:：]\s*([^。\n]+)", brief)
    if m:
        out["platforms"] = re.findall(r"[（(]([A-Za-z0-9_\-]+)[）)]", m.group(1))
    return out


def _label(title: str) -> str:
    t = re.sub(r"「[^」]*」|“[^”]*”|\"[^\"]*\"", " ", title or "")
    t = t.strip(" ：:·-—")
    return re.split(r"：|: ", t, maxsplit=1)[0].strip()


def intent_of(paragraph: Paragraph) -> str:
    label = _label(paragraph.title).lower()
    for intent, hints in _INTENT_HINTS:
        if any(h in label for h in hints):
            return intent
    return "general"
