"""Which search tool a paragraph's search uses, and its parameters, for the offline analyst
(core/research/offline.py): the tool that fits the paragraph's intent (hot / date / comments / platform /
image / video tools when the engine has them), else a general search tool; parameters only from the
tool's declared ones.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Callable, Sequence

from core.research.reasoning import ReasonContext, ToolSpec
from core.text.dates import parse_date

# tools that fit an intent: name fragments tried in order, then the general search tools
_GENERAL_TOOLS = ("global", "comprehensive", "basic", "web_search", "topic", "news", "search")
_TOOL_HINTS: dict[str, tuple[str, ...]] = {
    "official": ("deep",),
    "timeline": ("date", "last_week", "week"),
    "outlook": ("date", "last_week", "week", "24"),
    "risk": ("date", "last_week", "week"),
    "hot": ("hot", "热门"),
    "influencer": ("hot", "热门"),
    "comments": ("comment", "评论"),
    # Attitudes live in the comments: a sentiment paragraph reads them where a comment tool exists,
    # and so does not repeat the overview's documents.
    "sentiment": ("comment", "评论"),
    "platform": ("platform", "平台"),
    "image": ("image", "图片", "multimodal", "comprehensive"),
    "video": ("video", "视频", "multimodal", "comprehensive"),
    "framing": ("news",),
}


def find_tool(tools: Sequence[ToolSpec], hints: Sequence[str],
              accept: Callable[[ToolSpec], bool] = lambda t: True) -> ToolSpec | None:
    for hint in hints:
        h = hint.lower()
        for t in tools:
            if h in t.name.lower() and accept(t):
                return t
        for t in tools:
            if h in (t.description or "").lower() and accept(t):
                return t
    return None


def fill_params(tool: ToolSpec, span: tuple[str, str] | None, platform: str | None) -> dict:
    params = {}
    for name in tool.params:
        low = name.lower()
        if span and ("start" in low or low in ("from", "since", "begin")):
            params[name] = span[0]
        elif span and ("end" in low or low in ("to", "until")):
            params[name] = span[1]
        elif span and low == "date":
            params[name] = span[1]
        elif platform and "platform" in low:
            params[name] = platform
    return params


def has_date_params(tool: ToolSpec) -> bool:
    return any(("start" in p.lower() or "end" in p.lower() or p.lower() == "date") for p in tool.params)


def has_platform_param(tool: ToolSpec) -> bool:
    return any("platform" in p.lower() for p in tool.params)


def tool_for(ctx: ReasonContext, intent: str, info: dict, platform: str | None,
             reflection: bool = False) -> tuple[ToolSpec | None, dict]:
    tools = tuple(ctx.tools or ())
    if not tools:
        return None, {}
    span = info.get("span")
    if intent in ("outlook", "risk") and span:
        end = parse_date(span[1])
        start = max(parse_date(span[0]), end - timedelta(days=6))
        span = (start.isoformat(), span[1])
    hints: tuple[str, ...] = ()
    if not (reflection and intent in ("hot", "influencer", "image", "video")):
        hints = _TOOL_HINTS.get(intent, ())
    tool = None
    for hint in hints:
        def accept(t: ToolSpec, hint=hint) -> bool:
            # a date tool is useful only with dates; a platform tool only with a platform (whichever hint
            # found it: "news" is also in the platform tool's list of platforms)
            if has_platform_param(t) and not platform:
                return False
            if hint == "date":
                return bool(span) and has_date_params(t)
            if hint in ("platform", "平台"):
                return has_platform_param(t)
            return True
        tool = find_tool(tools, (hint,), accept)
        if tool:
            break
    if tool is None:
        tool = find_tool(tools, _GENERAL_TOOLS,
                         lambda t: not has_platform_param(t) and "hot" not in t.name.lower()
                         and "comment" not in t.name.lower()) or tools[0]
    return tool, fill_params(tool, span, platform)
