"""The maintained price source: the data bundled in the `genai-prices` package (pydantic/genai-prices).

Why genai-prices: it is maintained by the Pydantic team with a changelog and frequent releases,
covers the providers BettaFish users call (DeepSeek, Moonshot/Kimi, Zhipu/Z.ai GLM, OpenAI,
Anthropic, Google, Mistral, ...), records cached-input ("cache read") rates, price changes by date
and DeepSeek's time-of-day prices, and ships its data as Python inside the wheel: it works offline.
(LiteLLM's model_prices JSON is the other maintained list; it drags in the whole LiteLLM package.)

Offline only, never a fetch at run time: genai-prices downloads newer data only through its opt-in
`UpdatePrices` background task, which Shoal never starts. To be safe even if another library in the
process starts it (it swaps the package's global snapshot), Shoal builds its own snapshot from the
bundled `genai_prices.data.providers` and never reads `genai_prices.data_snapshot.get_snapshot()`:
the prices used are always the pinned version's, so the version and date the console names are true.

genai-prices does not record a snapshot date; PINNED_VERSION/PINNED_ON are the version pinned in
requirements.txt and the day its data was checked into Shoal (a test keeps the pin and this in step).
An installed version other than the pinned one is named by its version alone.

Lookup: the model name as genai-prices matches it (its own rules: dated names such as
`gpt-4o-2024-08-06` are `gpt-4o`), then without a `vendor/` prefix, then against first-party model
makers only (`glm-4.5` is Z.ai's). Resellers and aggregators (OpenRouter, Together, cloud
marketplaces...) are never used to price a model: their prices are not the ones a direct caller pays.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

PINNED_VERSION = "0.2.3"
PINNED_ON = "2026-12-04"
NAME = "genai-prices"

# Providers whose lists are the model maker's own prices (the fallback search uses only these).
FIRST_PARTY = ("openai", "anthropic", "google", "deepseek", "moonshotai", "zai", "zhipuai", "mistral", "x-ai",
               "minimax", "cohere", "meta")


@dataclass(frozen=True)
class Rates:
    """USD per 1M tokens; cached_input_per_m None when the source lists no cache-read rate."""
    input_per_m: float
    output_per_m: float
    cached_input_per_m: float | None
    provider: str
    model_id: str
    tiered: bool = False  # the source lists higher rates above a prompt size: these are the base tier's


class _Source:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Any = None
        self._error: str | None = None
        self._version: str | None = None
        self._found: dict[str, tuple[Any, Any] | None] = {}

    def _load(self) -> Any:
        with self._lock:
            if self._snapshot is None and self._error is None:
                try:  # the bundled data only (see the module's docstring): never get_snapshot()
                    from importlib.metadata import version

                    from genai_prices.data import providers
                    from genai_prices.data_snapshot import DataSnapshot
                    self._snapshot = DataSnapshot(providers=providers, from_auto_update=False)
                    self._version = version("genai-prices")
                except Exception as exc:  # noqa: BLE001 - no maintained prices: every model is unpriced
                    self._error = f"{NAME} cannot be loaded ({type(exc).__name__}: {exc}); only the price file's models are priced"
            return self._snapshot

    @property
    def error(self) -> str | None:
        self._load()
        return self._error

    @property
    def version(self) -> str | None:
        self._load()
        return self._version

    def _find(self, model: str) -> tuple[Any, Any] | None:
        if model in self._found:
            return self._found[model]
        snap = self._load()
        found = None
        if snap is not None:
            names = [model] + ([model.split("/", 1)[1]] if "/" in model else [])
            for name in names:
                try:
                    found = snap.find_provider_model(name, None, None, None)
                    break
                except LookupError:
                    pass
            if found is None:
                by_id = {p.id: p for p in snap.providers}
                for pid in FIRST_PARTY:
                    prov = by_id.get(pid)
                    mi = prov.find_model(names[-1]) if prov is not None else None
                    if mi is not None:
                        found = (prov, mi)
                        break
        with self._lock:
            self._found[model] = found
        return found

    def changes_over_time(self, model: str) -> bool:
        """Whether the model's price depends on when it is called (a price change, off-peak hours)."""
        found = self._find(model) if model else None
        return found is not None and isinstance(found[1].prices, list) and len(found[1].prices) > 1

    def rates(self, model: str, at: datetime | None = None) -> Rates | None:
        """The model's rates at `at` (naive = UTC). None: the source does not know the model.

        at=None: the list price today, time-of-day discounts (DeepSeek's off-peak) not applied, so a
        total priced this way never goes down between two reads (Prometheus counters)."""
        if not model:
            return None
        found = self._find(model)
        if found is None:
            return None
        provider, info = found
        price = _resolve(info, at)
        inp, out = _base(getattr(price, "input_mtok", None)), _base(getattr(price, "output_mtok", None))
        if inp is None or out is None:
            return None  # an image or audio model priced per unit: not a chat model's price
        cached = _base(getattr(price, "cache_read_mtok", None))
        tiered = any(type(getattr(price, k, None)).__name__ == "TieredPrices"
                     for k in ("input_mtok", "output_mtok", "cache_read_mtok"))
        return Rates(float(inp), float(out), None if cached is None else float(cached), provider.id, info.id, tiered)


def _base(value: Any) -> Decimal | None:
    if value is None:
        return None
    return getattr(value, "base", value)  # TieredPrices: the rate below the first tier


def _resolve(info: Any, at: datetime | None) -> Any:
    """The ModelPrice in force at `at` (genai-prices' rule: the last active conditional price wins)."""
    prices = info.prices
    if not isinstance(prices, list):
        return prices
    when = (at if at is not None else datetime.now(UTC))
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    for conditional in reversed(prices):
        c = conditional.constraint
        if c is None:
            return conditional.prices
        if at is None and type(c).__name__ == "TimeOfDateConstraint":
            return conditional.prices  # the standard hours' price, not the off-peak discount
        if c.active(when):
            return conditional.prices
    return prices[0].prices


SOURCE = _Source()


def describe() -> dict[str, str | None]:
    """What the console names: {'name', 'version', 'date', 'error'} (date None unless pinned)."""
    version = SOURCE.version
    return {"name": NAME, "version": version, "date": PINNED_ON if version == PINNED_VERSION else None,
            "error": SOURCE.error}
