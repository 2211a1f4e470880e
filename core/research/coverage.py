"""How much of the topic the data covers, measured before the engines write.

A run's coverage is counted once, by the run's ``coverage`` job, and kept in the run's params
(``params["coverage"]``, the dict form of ``Coverage``). Below the threshold the analysis ends
``insufficient_data`` with ``Coverage.message`` instead of writing a report; a report the analyst
asks for anyway opens with ``Coverage.banner``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Coverage:
    matching_posts: int  # corpus posts and comments about the topic (past the relevance floor)
    by_platform: dict[str, int] = field(default_factory=dict)
    web_results: int = 0  # web search results about the topic (LLM mode with search keys)
    threshold: int = 20
    corpus_total: int = 0  # every post in the corpus, for the message
    web_searched: bool = False  # whether a web search was counted at all
    web_errors: tuple[str, ...] = ()  # web searches that failed (their count is then unknown, not zero)

    @property
    def sources(self) -> int:
        return self.matching_posts + self.web_results

    @property
    def sufficient(self) -> bool:
        return self.sources >= self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {"matching_posts": self.matching_posts, "by_platform": dict(self.by_platform),
                "web_results": self.web_results, "threshold": self.threshold, "sufficient": self.sufficient,
                "corpus_total": self.corpus_total, "web_searched": self.web_searched,
                "web_errors": list(self.web_errors)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Coverage | None":
        if not isinstance(d, dict) or "matching_posts" not in d:
            return None
        return cls(matching_posts=int(d.get("matching_posts") or 0),
                   by_platform={str(k): int(v) for k, v in (d.get("by_platform") or {}).items()},
                   web_results=int(d.get("web_results") or 0), threshold=int(d.get("threshold") or 0),
                   corpus_total=int(d.get("corpus_total") or 0), web_searched=bool(d.get("web_searched")),
                   web_errors=tuple(str(e) for e in d.get("web_errors") or ()))

    def _counts(self, zh: bool) -> str:
        plats = "、".join(f"{k} {v}" for k, v in sorted(self.by_platform.items(), key=lambda kv: (-kv[1], kv[0])))
        if zh:
            text = f"本地语料库 {self.corpus_total} 条中有 {self.matching_posts} 条与主题相关"
            text += f"（{plats}）" if plats else ""
            if self.web_searched:
                text += f"，网络搜索结果 {self.web_results} 条"
            if self.web_errors:
                text += "（网络搜索失败：" + "；".join(self.web_errors) + "）"
            return text
        text = f"{self.matching_posts} of the {self.corpus_total} posts in the local corpus match the topic"
        text += f" ({plats.replace('、', ', ')})" if plats else ""
        if self.web_searched:
            text += f", and {self.web_results} web search results"
        if self.web_errors:
            text += " (web search failed: " + "; ".join(self.web_errors) + ")"
        return text

    def message(self, zh: bool) -> str:
        """What an insufficient run says: how much matched and how to get more."""
        if zh:
            return (f"数据不足，未生成分析：{self._counts(True)}，少于所需的 {self.threshold} 条"
                    f"（SHOAL_MIN_SOURCES）。可以导入更多数据（数据页或 `python -m core data import FILE`）、"
                    "连接 MindSpider/MediaCrawler 数据库，或配置网络搜索密钥（TAVILY_API_KEY、"
                    "BOCHA_WEB_SEARCH_API_KEY）后重试；也可以坚持生成报告，报告会注明数据不足。")
        return (f"Not enough data to analyse: {self._counts(False)}, fewer than the {self.threshold} needed "
                "(SHOAL_MIN_SOURCES). Import more posts (Data page or `python -m core data import FILE`), "
                "connect a MindSpider/MediaCrawler database, or set web search keys (TAVILY_API_KEY, "
                "BOCHA_WEB_SEARCH_API_KEY) and run again; or ask for a report anyway, which will say so.")

    def banner(self, zh: bool) -> str:
        """The opening line of a report written on insufficient data."""
        if zh:
            return (f"数据覆盖不足：{self._counts(True)}，少于分析所需的 {self.threshold} 条。"
                    "本报告应分析人员要求生成，结论仅基于这些来源，代表性有限。")
        return (f"Insufficient coverage: {self._counts(False)}, fewer than the {self.threshold} an analysis "
                "needs. This report was written because the analyst asked for it; its findings rest on these "
                "few sources only.")
