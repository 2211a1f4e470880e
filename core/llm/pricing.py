"""The LLM price table: USD per 1M input, cached input and output tokens, per model.

Where a price comes from, in this order (the first that knows the model wins):
  1. the operator's price file (SHOAL_PRICE_TABLE, or data/prices.json): their contract's prices;
  2. the maintained source, genai-prices' bundled data (core.llm.price_source; unless
     include_defaults=False), priced at the call's time when it is known.
A model neither knows has no price: its cost is None and the console says "unpriced", never $0.
A malformed file entry (an unknown key such as `inptu`, a negative number, text where a number
belongs, a missing side) is reported in `PriceTable.problems` and that model is left unpriced, even
when genai-prices knows it: the operator meant to override it, and a silent fallback would hide the
typo. Nothing here raises on bad input.

Cached input: providers bill prompt tokens served from their cache at a lower rate; usage reports
them inside the prompt tokens (OpenAI-compatible `prompt_tokens_details.cached_tokens`, DeepSeek's
`prompt_cache_hit_tokens`, Kimi's `cached_tokens`: `cached_tokens_of`). A call costs
(input - cached) x input rate + cached x cached rate + output x output rate; with no cached rate
known, cached tokens cost the input rate.

File shapes (JSON, or TOML by the `.toml` suffix):

    {"gpt-4o": {"input": 2.5, "output": 10, "cached_input": 1.25}}   # per 1M tokens, USD
    {"models": {"gpt-4o": {"input_per_m": 2.5, "output_per_m": 10}}}
    {"gpt-4o": [2.5, 10]}
    [models."gpt-4o"]            (TOML)
    input = 2.5
    output = 10

File model names match exactly, then case-insensitively, then without a provider prefix
(`openai/gpt-4o` -> `gpt-4o`). There is no prefix matching in the file: `gpt-4o-mini` is not
`gpt-4o`. genai-prices matches by its own maintained rules (core.llm.price_source).
"""
from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Mapping

from core.llm import price_source

_INPUT_KEYS = ("input", "input_per_m", "prompt", "in")
_OUTPUT_KEYS = ("output", "output_per_m", "completion", "out")
_CACHED_KEYS = ("cached_input", "cached_input_per_m", "cache_read")
_META_KEYS = ("source", "note", "currency")
UNPRICED = "unpriced"
INVALID_ENTRY = "invalid entry: unpriced"  # the source of a malformed file entry in rows()
FILE_SOURCE = "file"  # Price.kind of a price from the operator's file
MAINTAINED_SOURCE = "genai-prices"


@dataclass(frozen=True)
class Price:
    model: str
    input_per_m: float
    output_per_m: float
    source: str = ""
    cached_input_per_m: float | None = None  # None: cached tokens cost the input rate
    kind: str = FILE_SOURCE                   # FILE_SOURCE or MAINTAINED_SOURCE

    @property
    def is_default(self) -> bool:
        return self.kind == MAINTAINED_SOURCE

    def cost(self, input_tokens: float, output_tokens: float, cached_input_tokens: float = 0) -> float:
        tin = float(input_tokens or 0)
        cached = min(max(float(cached_input_tokens or 0), 0.0), tin)
        cached_rate = self.input_per_m if self.cached_input_per_m is None else self.cached_input_per_m
        return ((tin - cached) * self.input_per_m + cached * cached_rate
                + float(output_tokens or 0) * self.output_per_m) / 1e6


@dataclass
class PriceTable:
    prices: dict[str, Price] = field(default_factory=dict)   # the file's entries
    problems: list[str] = field(default_factory=list)
    # Models whose entry was malformed: unpriced even if genai-prices knows them.
    invalid: set[str] = field(default_factory=set)
    maintained: bool = True                 # consult genai-prices for models the file does not price
    file: str | None = None                 # the price file read (path), if any
    file_mtime: datetime | None = None      # its modification time (naive UTC)

    # -- lookup -------------------------------------------------------------------------------
    def _from_file(self, model: str) -> tuple[bool, Price | None]:
        """(decided, price): decided when the file prices the model or marks it invalid."""
        for candidate in _candidates(model):
            if candidate in self.invalid:
                return True, None
            p = self.prices.get(candidate)
            if p is not None:
                return True, p
        lowered = {k.lower(): v for k, v in self.prices.items()}
        invalid = {k.lower() for k in self.invalid}
        for candidate in _candidates(model.lower()):
            if candidate in invalid:
                return True, None
            if candidate in lowered:
                return True, lowered[candidate]
        return False, None

    def price(self, model: str | None, at: datetime | None = None) -> Price | None:
        """The model's price (the file's, else genai-prices' at `at`, naive UTC; None: the list price
        today), or None when unpriced."""
        if not model:
            return None
        decided, p = self._from_file(model)
        if decided or not self.maintained:
            return p
        rates = price_source.SOURCE.rates(model, at)
        if rates is None:
            return None
        version = price_source.SOURCE.version or "?"
        note = f"{MAINTAINED_SOURCE} {version} ({rates.provider}: {rates.model_id})"
        if rates.tiered:
            note += ", base tier"
        return Price(model, rates.input_per_m, rates.output_per_m, note, rates.cached_input_per_m, MAINTAINED_SOURCE)

    def cost(self, model: str | None, input_tokens: float, output_tokens: float, cached_input_tokens: float = 0,
             at: datetime | None = None) -> float | None:
        """USD for one call, or None when the model is unpriced (never 0 for an unknown model)."""
        p = self.price(model, at)
        return None if p is None else p.cost(input_tokens, output_tokens, cached_input_tokens)

    def changes_over_time(self, model: str | None) -> bool:
        """Whether price(model, at) depends on `at` (never for the file's prices)."""
        if not model or not self.maintained or self._from_file(model)[0]:
            return False
        return price_source.SOURCE.changes_over_time(model)

    def is_priced(self, model: str | None) -> bool:
        return self.price(model) is not None

    # -- where the prices come from --------------------------------------------------------------
    def sources(self) -> dict[str, Any]:
        """{'file': path or None, 'file_mtime': naive UTC or None, 'maintained': {name, version, date,
        error} or None}: what the console names as the prices' source and date."""
        return {"file": self.file, "file_mtime": self.file_mtime,
                "maintained": price_source.describe() if self.maintained else None}

    # -- editing and saving -------------------------------------------------------------------
    def rows(self, models: Any = ()) -> list[dict[str, Any]]:
        """One row per file entry, plus one per model in `models` (the models in use) with its
        price from wherever it comes, or none ("unpriced"). Malformed entries appear with no price."""
        out = [_row(p) for p in sorted(self.prices.values(), key=lambda p: p.model)]
        shown = set(self.prices) | set(self.invalid)
        out += [{"model": m, "input_per_m": None, "cached_input_per_m": None, "output_per_m": None,
                 "source": INVALID_ENTRY} for m in sorted(self.invalid)]
        for m in sorted({str(m) for m in models if m} - shown):
            p = self.price(m)
            out.append(_row(p, m) if p is not None else {"model": m, "input_per_m": None, "cached_input_per_m": None,
                                                         "output_per_m": None, "source": UNPRICED})
        return out

    def to_dict(self, include_defaults: bool = True) -> dict[str, dict[str, float]]:
        """The file's entries (genai-prices' are looked up, never copied: `include_defaults` is kept
        for callers and has no effect)."""
        out = {}
        for p in sorted(self.prices.values(), key=lambda p: p.model):
            entry = {"input": p.input_per_m, "output": p.output_per_m}
            if p.cached_input_per_m is not None:
                entry["cached_input"] = p.cached_input_per_m
            out[p.model] = entry
        return out

    def save(self, path: str | Path, include_defaults: bool = False) -> None:
        """Write the file's entries as JSON."""
        Path(path).write_text(json.dumps({"models": self.to_dict(include_defaults)}, indent=2, sort_keys=True) + "\n",
                              encoding="utf-8")


def _row(p: Price, model: str | None = None) -> dict[str, Any]:
    return {"model": model or p.model, "input_per_m": p.input_per_m, "cached_input_per_m": p.cached_input_per_m,
            "output_per_m": p.output_per_m, "source": p.source}


def cached_tokens_of(usage: Any) -> int:
    """Prompt tokens the provider served from its cache, from an OpenAI-compatible usage object or
    dict: `prompt_tokens_details.cached_tokens` (OpenAI, Qwen, GLM), `prompt_cache_hit_tokens`
    (DeepSeek) or `cached_tokens` (Kimi). 0 when not reported."""
    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)

    if usage is None:
        return 0
    details = get(usage, "prompt_tokens_details")
    for value in ((get(details, "cached_tokens") if details is not None else None),
                  get(usage, "prompt_cache_hit_tokens"), get(usage, "cached_tokens")):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def _candidates(model: str) -> list[str]:
    out = [model]
    if "/" in model:
        out.append(model.rsplit("/", 1)[1])
    return out


def default_table() -> PriceTable:
    """No price file: genai-prices' prices only."""
    return PriceTable()


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
        raw_cached = None
        note = source
    elif isinstance(entry, Mapping):
        unknown = [k for k in entry if k not in _INPUT_KEYS + _OUTPUT_KEYS + _CACHED_KEYS + _META_KEYS]
        if unknown:
            return None, (f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                          f"expected 'input', 'output' and optionally 'cached_input' (USD per 1M tokens)")
        cached_keys = [k for k in _CACHED_KEYS if k in entry]
        if len(cached_keys) > 1:
            return None, f"{where}: cached_input given twice"
        raw_cached = entry[cached_keys[0]] if cached_keys else None
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
    p_cached = None if raw_cached is None else _number(raw_cached)
    sides = [("input", raw_in, p_in), ("output", raw_out, p_out)]
    if raw_cached is not None:
        sides.append(("cached_input", raw_cached, p_cached))
    bad = [f"{side} {raw!r}" for side, raw, val in sides if val is None]
    if bad:
        return None, f"{where}: {' and '.join(bad)} is not a non-negative number"
    return Price(model, p_in, p_out, note, p_cached), None  # type: ignore[arg-type]


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
    """`source`'s prices (a path or a dict), then genai-prices' for other models (unless
    include_defaults=False). Never raises: see `.problems`."""
    # genai-prices is imported on the first lookup, not here (half a second a command may not need);
    # if it cannot be, sources()["maintained"]["error"] says so and the console shows it.
    table = PriceTable(maintained=include_defaults)
    if source is None:
        return table
    if not isinstance(source, Mapping):
        table.file = str(source)
        try:
            table.file_mtime = datetime.fromtimestamp(Path(source).stat().st_mtime, UTC).replace(tzinfo=None)
        except (OSError, TypeError, ValueError):
            table.file_mtime = None
    try:
        data, problem, label = _read_source(source)
    except Exception as exc:  # noqa: BLE001 - a price table never breaks the console
        data, problem, label = None, f"price table cannot be read: {exc}", "price table"
    if problem:
        table.problems.append(problem + (f"; using {MAINTAINED_SOURCE}' prices" if include_defaults else ""))
        table.file = table.file_mtime = None  # no file was read
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
