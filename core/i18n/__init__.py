"""Two languages, one catalogue each: `zh.toml` and `en.toml` beside this module.

Keys are dotted (`home.start`), grouped in TOML tables by page or area. Values are `str.format`
templates with named fields (`"{n} posts"`). `tr(lang, key, **args)` renders one; a key missing
from the catalogue, or a template whose fields the caller did not supply, renders as `⟦key⟧` so a
page test can find it on screen (tests/ui/test_i18n.py) instead of the user finding it.

Core code that produces text shown later (a job's progress message, a run's problems) hands a
typed `Msg` (key and arguments) on; the page renders it in the reader's language. Core code that
writes a document (the report) takes the language as an argument.

Stdlib `tomllib` reads the catalogues; gettext would need a compile step (.po → .mo) for no gain
at this size, and Babel's plural rules are not needed for Chinese and the few English plurals here.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

LANGUAGES = ("zh", "en")
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "en"
MISSING_OPEN, MISSING_CLOSE = "⟦", "⟧"

_HERE = Path(__file__).resolve().parent
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, key + "."))
        else:
            out[key] = str(value)
    return out


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    """Every key of one language, flattened (`{"home.start": "开始"}`)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; one of {', '.join(LANGUAGES)}")
    with open(_HERE / f"{lang}.toml", "rb") as fh:
        return _flatten(tomllib.load(fh))


def missing(key: str) -> str:
    return f"{MISSING_OPEN}{key}{MISSING_CLOSE}"


def normalise(lang: str | None) -> str:
    """A language code from a setting, a browser locale (`zh-CN`, `en_US`) or a query parameter."""
    code = (lang or "").strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def tr(lang: str, key: str, /, **args: Any) -> str:
    """The text of `key` in `lang`, formatted with `args`."""
    template = catalogue(normalise(lang)).get(key)
    if template is None:
        return missing(key)
    try:
        return template.format(**args)
    except (KeyError, IndexError, ValueError):  # a field the caller did not give: visible, not a crash
        return missing(key)


def has(key: str) -> bool:
    return all(key in catalogue(lang) for lang in LANGUAGES)


@dataclass(frozen=True)
class Msg:
    """Text to be shown later in the reader's language: a catalogue key and its arguments."""

    key: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def render(self, lang: str) -> str:
        # an argument that is itself a Msg (a status name inside a sentence) renders in the same language
        args = {k: v.render(lang) if isinstance(v, Msg) else v for k, v in self.args.items()}
        return tr(lang, self.key, **args)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "args": {k: v.to_json() if isinstance(v, Msg) else v for k, v in self.args.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "Msg | None":
        if not data or not isinstance(data.get("key"), str):
            return None
        args = {k: (cls.from_json(v) if isinstance(v, Mapping) and "key" in v else v)
                for k, v in (data.get("args") or {}).items()}
        return cls(data["key"], args)


def text_language(text: str) -> str:
    """`zh` when the text is mostly Chinese (a topic like "武汉大学 AI" is Chinese), else `en`."""
    cjk = len(_CJK.findall(text or ""))
    latin = len(_LATIN_WORD.findall(text or ""))
    return "zh" if cjk and cjk >= latin else ("en" if latin else DEFAULT_LANGUAGE if not cjk else "zh")


def pick_language(override: str | None, setting: str | None, browser: str | None) -> str:
    """The language a reader sees: their own choice this session, else the setting (`zh`/`en`), else
    (setting `auto`) Chinese when the browser asks for it, else English."""
    if override and normalise(override) == override.strip().lower():
        return normalise(override)
    if setting and setting.strip().lower() in LANGUAGES:
        return setting.strip().lower()
    return "zh" if (browser or "").strip().lower().startswith("zh") else DEFAULT_LANGUAGE
