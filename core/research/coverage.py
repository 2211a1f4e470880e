"""How much of the topic the data covers, measured before the engines write.

A run's coverage is counted once, by the run's ``coverage`` job, and kept in the run's params
(``params["coverage"]``, the dict form of ``Coverage``). Below the threshold the analysis ends
``insufficient_data`` with ``Coverage.notice`` instead of writing a report; a report the analyst
asks for anyway opens with ``Coverage.banner_msg``. Both are core.i18n.Msg (key and arguments), shown
in the reader's language; ``message(lang)`` and ``banner(lang)`` render them in one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.i18n import Msg


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

    def _counts(self) -> Msg:
        plats = [f"{k} {v}" for k, v in sorted(self.by_platform.items(), key=lambda kv: (-kv[1], kv[0]))]
        return Msg("coverage.counts", {
            "matching": self.matching_posts, "total": self.corpus_total,
            "platforms": Msg("coverage.platforms", {"list": _join("coverage.list_join", plats)}) if plats else "",
            "web": Msg("coverage.web", {"n": self.web_results}) if self.web_searched else "",
            "errors": Msg("coverage.web_errors", {"list": _join("coverage.error_join", list(self.web_errors))})
            if self.web_errors else ""})

    def notice(self) -> Msg:
        """What an insufficient run says: how much matched and how to get more (shown in the reader's
        language; `message` is the same text in one language, for the command line and the run's error)."""
        return Msg("coverage.insufficient", {"counts": self._counts(), "threshold": self.threshold})

    def banner_msg(self) -> Msg:
        """The opening line of a report written on insufficient data."""
        return Msg("coverage.banner", {"counts": self._counts(), "threshold": self.threshold})

    def message(self, lang: "bool | str") -> str:
        """`notice` in one language: `zh`/`en` (True means Chinese, False English, as before)."""
        return self.notice().render(_lang(lang))

    def banner(self, lang: "bool | str") -> str:
        """`banner_msg` in one language: `zh`/`en` (True means Chinese, False English, as before)."""
        return self.banner_msg().render(_lang(lang))


def _lang(lang: "bool | str") -> str:
    if isinstance(lang, bool):
        return "zh" if lang else "en"
    return lang


def _join(key: str, items: list[str]) -> "Msg | str":
    """A list in the reader's language (`a、b、c` or `a, b, c`): each separator is a Msg."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return Msg(key, {"a": items[0], "b": _join(key, items[1:])})
