"""In-process LLM instruments (prometheus_client): latency and time to first token as histograms.

The LLM client observes every call it records (`observe_call`, from core/llm/client.py), success or
failure, so each process that makes calls exports real bucketed histograms that Prometheus can sum
across processes (`sum by (le) (rate(shoal_llm_latency_seconds_bucket[5m]))`). They cover this
process since it started; the database-backed figures (calls, tokens, cost) are read by
core.console.metrics at each scrape.

The histograms are created unregistered: core.console.metrics puts them in the registry it serves.
"""
from __future__ import annotations

from typing import Iterable

from prometheus_client import Histogram, disable_created_metrics

# No `_created` series: they double the exposition for a figure no dashboard here uses.
disable_created_metrics()

LABELS = ("role", "model")
# From a fast small reply to a long report section through a slow local model (bounded by LLM_TIMEOUT).
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0)


def new_histograms() -> tuple[Histogram, Histogram]:
    """A fresh (latency, ttft) pair, unregistered (the process has one pair, LATENCY and TTFT)."""
    latency = Histogram("shoal_llm_latency_seconds", "LLM call latency in this process, by role and model "
                        "(failed calls included)", LABELS, buckets=LATENCY_BUCKETS, registry=None)
    ttft = Histogram("shoal_llm_ttft_seconds", "LLM time to first token in this process (streamed calls)",
                     LABELS, buckets=TTFT_BUCKETS, registry=None)
    return latency, ttft


LATENCY, TTFT = new_histograms()


def observe_call(role: str, model: str, latency_ms: float | None, ttft_ms: float | None, *,
                 latency: Histogram | None = None, ttft: Histogram | None = None) -> None:
    """Count one recorded call; never raises (a metric must not fail a call)."""
    latency, ttft = latency or LATENCY, ttft or TTFT
    try:
        if latency_ms is not None:
            latency.labels(role, model).observe(max(0.0, float(latency_ms)) / 1000)
        first = ttft.labels(role, model)  # the pair's series exists (at zero) even if it never streamed
        if ttft_ms is not None:
            first.observe(max(0.0, float(ttft_ms)) / 1000)
    except Exception:  # noqa: BLE001
        pass


def seed(pairs: Iterable[tuple[str, str]], *, latency: Histogram | None = None,
         ttft: Histogram | None = None) -> None:
    """Create the series of known (role, model) pairs at zero, so they exist before the first call."""
    latency, ttft = latency or LATENCY, ttft or TTFT
    for role, model in pairs:
        latency.labels(role, model)
        ttft.labels(role, model)
