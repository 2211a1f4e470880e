"""core/research/offline_tools.py: which corpus tool an offline paragraph searches with."""
from core.research.corpus_tools import INSIGHT_TOOLS
from core.research.offline_tools import tool_for
from core.research.reasoning import ReasonContext


def _ctx():
    return ReasonContext(topic="新能源汽车价格战", engine="insight", engine_title="Insight", focus="", tools=INSIGHT_TOOLS,
                         n_paragraphs=5)


def test_a_framing_paragraph_without_a_platform_never_gets_the_platform_tool():
    # "news" (the framing hint) is also one of the platforms the platform tool's description lists
    tool, params = tool_for(_ctx(), "framing", {"span": ("2025-08-01", "2025-10-20")}, None)
    assert tool.name != "search_topic_on_platform"
    assert "platform" not in params


def test_a_platform_paragraph_with_a_platform_gets_the_platform_tool():
    tool, params = tool_for(_ctx(), "platform", {"span": None}, "weibo")
    assert tool.name == "search_topic_on_platform"
    assert params["platform"] == "weibo"
