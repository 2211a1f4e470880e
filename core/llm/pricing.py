"""The LLM price table: USD per 1M input and per 1M output tokens, per model.

A model that is not in the table has no price: its cost is None and the console says
"unpriced", never $0. A malformed entry (an unknown key such as `inptu`, a negative number,
text where a number belongs, a missing side) is reported in `PriceTable.problems` and that
model is left unpriced, even when a default exists for it: the operator meant to override
the default, and a silent fallback would hide the typo. Nothing here raises on bad input.

Sources, merged in this order (later wins): DEFAULT_PRICES (unless include_defaults=False),
then a file (JSON, or TOML by the `.toml` suffix) or a dict. Accepted shapes:

    {"gpt-4o": {"input": 2.5, "output": 10}}                     # per 1M tokens, USD
    {"models": {"gpt-4o": {"input_per_m": 2.5, "output_per_m": 10}}}
    {"gpt-4o": [2.5, 10]}
    [models."gpt-4o"]            (TOML)
    input = 2.5
    output = 10

Model names match exactly, then case-insensitively, then without a provider prefix
(`openai/gpt-4o` -> `gpt-4o`). There is no prefix matching: `gpt-4o-mini` is not `gpt-4o`.
"""
from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

# DEFAULTS: public list prices in USD per 1M tokens as published by the providers, checked on
# DEFAULT_PRICES_AS_OF. They change: the operator should load a table of their own contract's
# prices. Every default entry says so in its `source`.
DEFAULT_PRICES_AS_OF = "2025-10-01"
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "deepseek-chat": (0.28, 0.42),
    "deepseek-reasoner": (0.28, 0.42),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "kimi-k2-0905-preview": (0.60, 2.50),
    "qwen-plus": (0.40, 1.20),
}

_INPUT_KEYS = ("input", "input_per_m", "prompt", "in")
_OUTPUT_KEYS = ("output", "output_per_m", "completion", "out")
_META_KEYS = ("source", "note", "currency")
UNPRICED = "unpriced"


@dataclass(frozen=True)
class Price:
    model: str
    input_per_m: float
    output_per_m: float
    source: str = ""

    @property
    def is_default(self) -> bool:
        return self.source.startswith("default")

    def cost(self, input_tokens: float, output_tokens: float) -> float:
        return (float(input_tokens or 0) * self.input_per_m + float(output_tokens or 0) * self.output_per_m) / 1e6


@dataclass
class PriceTable:
    prices: dict[str, Price] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # Models whose entry was malformed: unpriced even if a default exists.
    invalid: set[str] = field(default_factory=set)

    # -- lookup -------------------------------------------------------------------------------
    def price(self, model: str | None) -> Price | None:
        if not model:
            return None
        for candidate in _candidates(model):
            if candidate in self.invalid:
                return None
            p = self.prices.get(candidate)
            if p is not None:
                return p
        lowered = {k.lower(): v for k, v in self.prices.items()}
        invalid = {k.lower() for k in self.invalid}
        for candidate in _candidates(model.lower()):
            if candidate in invalid:
                return None
            if candidate in lowered:
                return lowered[candidate]
        return None

    def cost(self, model: str | None, input_tokens: float, output_tokens: float) -> float | None:
        """USD for one call, or None when the model is unpriced (never 0 for an unknown model)."""
        p = self.price(model)
        return None if p is None else p.cost(input_tokens, output_tokens)

    def is_priced(self, model: str | None) -> bool:
        return self.price(model) is not None

    # -- editing and saving -------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One row per model (for st.data_editor); malformed models appear with no price."""
        out = [{"model": p.model, "input_per_m": p.input_per_m, "output_per_m": p.output_per_m,
                "source": p.source} for p in sorted(self.prices.values(), key=lambda p: p.model)]
        out += [{"model": m, "input_per_m": None, "output_per_m": None, "source": "invalid entry: unpriced"}
                for m in sorted(self.invalid)]
        return out

    def to_dict(self, include_defaults: bool = True) -> dict[str, dict[str, float]]:
        return {p.model: {"input": p.input_per_m, "output": p.output_per_m}
                for p in sorted(self.prices.values(), key=lambda p: p.model)
                if include_defaults or not p.is_default}

    def save(self, path: str | Path, include_defaults: bool = False) -> None:
        """Write the table as JSON (defaults left out unless asked: they load anyway)."""
        Path(path).write_text(json.dumps({"models": self.to_dict(include_defaults)}, indent=2, sort_keys=True) + "\n",
                              encoding="utf-8")


def _candidates(model: str) -> list[str]:
    out = [model]
    if "/" in model:
        out.append(model.rsplit("/", 1)[1])
    return out


def default_table() -> PriceTable:
    return PriceTable({m: Price(m, i, o, f"default (list price as of {DEFAULT_PRICES_AS_OF})")
                       for m, (i, o) in DEFAULT_PRICES.items()})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                return None
        else:
            return None
    value = float(value)
    if math.isnan(value) or math.isinf(value) or value < 0:
        return None
    return value


def _parse_entry(model: str, entry: Any, source: str) -> tuple[Price | None, str | None]:
    """A Price, or a problem message."""
    where = f"price of '{model}' ({source})"
    if isinstance(entry, (list, tuple)):
        if len(entry) != 2:
            return None, f"{where}: expected [input, output], got {len(entry)} values"
        raw_in, raw_out = entry
        note = source
    elif isinstance(entry, Mapping):
        unknown = [k for k in entry if k not in _INPUT_KEYS + _OUTPUT_KEYS + _META_KEYS]
        if unknown:
            return None, (f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                          f"expected 'input' and 'output' (USD per 1M tokens)")
        ins = [k for k in _INPUT_KEYS if k in entry]
        outs = [k for k in _OUTPUT_KEYS if k in entry]
        if len(ins) != 1 or len(outs) != 1:
            missing = "input" if not ins else "output" if not outs else "input/output given twice"
            return None, f"{where}: {'missing ' + missing if not (ins and outs) else missing}"
        raw_in, raw_out = entry[ins[0]], entry[outs[0]]
        note = str(entry.get("source") or entry.get("note") or source)
        currency = entry.get("currency")
        if currency is not None and str(currency).upper() != "USD":
            return None, f"{where}: currency {currency!r} is not supported (prices are USD)"
    else:
        return None, f"{where}: expected {{\"input\": ..., \"output\": ...}}, got {type(entry).__name__}"
    p_in, p_out = _number(raw_in), _number(raw_out)
    bad = [f"{side} {raw!r}" for side, raw, val in (("input", raw_in, p_in), ("output", raw_out, p_out)) if val is None]
    if bad:
        return None, f"{where}: {' and '.join(bad)} is not a non-negative number"
    return Price(model, p_in, p_out, note), None  # type: ignore[arg-type]


def _read_source(source: str | Path | Mapping) -> tuple[Any, str | None, str]:
    """(data, problem, label) for a dict, a JSON file or a TOML file."""
    if isinstance(source, Mapping):
        return source, None, "given table"
    path = Path(source)
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, f"price table {label} not found", label
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"price table {label} cannot be read: {exc}", label
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text), None, label
        return json.loads(text), None, label
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        return None, f"price table {label} is not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {exc}", label


def load_price_table(source: str | Path | Mapping | None = None, *, include_defaults: bool = True) -> PriceTable:
    """The defaults, overridden by `source` (a path or a dict). Never raises: see `.problems`."""
    table = default_table() if include_defaults else PriceTable()
    if source is None:
        return table
    try:
        data, problem, label = _read_source(source)
    except Exception as exc:  # noqa: BLE001 - a price table never breaks the console
        data, problem, label = None, f"price table cannot be read: {exc}", "price table"
    if problem:
        table.problems.append(problem + ("; using the defaults" if include_defaults else ""))
        return table
    if isinstance(data, Mapping) and isinstance(data.get("models"), Mapping):
        data = data["models"]
    if not isinstance(data, Mapping):
        table.problems.append(f"price table {label}: expected an object of model -> prices, got {type(data).__name__}")
        return table
    for model, entry in data.items():
        model = str(model).strip()
        if not model:
            table.problems.append(f"price table {label}: an entry has an empty model name")
            continue
        price, problem = _parse_entry(model, entry, label)
        if price is None:
            table.problems.append(problem + "; the model is unpriced")
            table.prices.pop(model, None)
            table.invalid.add(model)
        else:
            table.prices[model] = price
            table.invalid.discard(model)
    return table
