"""The three engines' names, in one place: key, label, forum source tag and what each one reads.

Pages, the forum (its senders), the research engine and the report all name the engines from here,
so a label cannot drift between them. Nothing here imports anything: every layer may use it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineName:
    key: str       # query | media | insight: job kind, run parameter, URL of its page
    label: str     # "Query": what people read
    source: str    # the forum's source tag (BettaFish's): QUERY | MEDIA | INSIGHT
    reads: str     # a few words on what it searches, for pickers

    @property
    def title(self) -> str:
        """"Query engine": headings and page titles."""
        return f"{self.label} engine"

    @property
    def sender(self) -> str:
        """"Query Engine": the forum's sender name, as BettaFish writes it in forum.log."""
        return f"{self.label} Engine"

    @property
    def choice(self) -> str:
        """"Query (news search)": the label in an engine picker."""
        return f"{self.label} ({self.reads})"


ENGINE_NAMES: dict[str, EngineName] = {
    "query": EngineName("query", "Query", "QUERY", "news search"),
    "media": EngineName("media", "Media", "MEDIA", "multimodal search"),
    "insight": EngineName("insight", "Insight", "INSIGHT", "own database"),
}
ENGINE_ORDER: tuple[str, ...] = tuple(ENGINE_NAMES)


def engine_label(key: str) -> str:
    """"Query" for "query"; an unknown key comes back title-cased."""
    name = ENGINE_NAMES.get(key)
    return name.label if name else key.title()
