"""What every search returns and every report cites: one document shape for web, media and posts."""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from core.text.dates import parse_time


def hotness(likes: int, comments: int, shares: int, views: int) -> float:
    """BettaFish's engagement score, as its analysts know it."""
    return likes + 5 * comments + 10 * shares + 0.1 * views


@dataclass
class Document:
    title: str
    content: str
    url: str = ""
    published: datetime | None = None
    platform: str = ""  # weibo, douyin, bilibili, xhs, zhihu, tieba, kuaishou, news, web, image, video, …
    author: str = ""
    likes: int = 0
    comments: int = 0
    shares: int = 0
    views: int = 0
    sentiment: float | None = None  # probability of positive, when known
    source: str = ""  # the provider: corpus | tavily | bocha
    kind: str = "post"  # post | comment | news | web | image | video
    score: float = 0.0  # the provider's relevance score, when it gives one
    doc_id: str = ""  # stable id for citations and de-duplication
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.doc_id:
            basis = self.url or f"{self.platform}|{self.title}|{self.content[:200]}"
            self.doc_id = hashlib.sha1(basis.encode("utf-8", "replace")).hexdigest()[:16]

    @property
    def hotness(self) -> float:
        return hotness(self.likes, self.comments, self.shares, self.views)

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.content}".strip() if self.title and self.title not in self.content else self.content

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["published"] = self.published.isoformat() if self.published else None
        d["hotness"] = self.hotness
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Document":
        d = dict(d)
        d.pop("hotness", None)
        if isinstance(d.get("published"), str):
            d["published"] = parse_time(d["published"], lenient=True)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})
