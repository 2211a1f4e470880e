"""Scrape a /metrics endpoint over HTTP and read it with prometheus_client's own parser."""
from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


class Page:
    """A parsed exposition: `families` {name: type}, `series` {(sample name, labels): value}."""

    def __init__(self, text: str):
        self.text = text
        self.families: dict[str, str] = {}
        self.series: dict[tuple[str, tuple], float] = {}
        for fam in text_string_to_metric_families(text):
            assert fam.name not in self.families, f"family {fam.name} twice"
            self.families[fam.name] = fam.type
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                assert key not in self.series, f"duplicate series {key}"
                self.series[key] = s.value

    def get(self, name: str, **labels) -> float:
        return self.series[(name, tuple(sorted(labels.items())))]

    def has(self, name: str, **labels) -> bool:
        return (name, tuple(sorted(labels.items()))) in self.series

    def samples(self, name: str) -> dict[tuple, float]:
        """Every series of one sample name, keyed by its labels."""
        return {labels: v for (n, labels), v in self.series.items() if n == name}


def scrape(url: str, timeout: float = 30) -> Page:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        assert resp.status == 200
        assert resp.headers.get("Content-Type", "").startswith("text/plain")
        return Page(resp.read().decode("utf-8"))
