"""What a reader sees on a page run by AppTest, and the two ways it can be untranslated.

`untranslated_keys` finds catalogue keys shown raw (core.i18n renders a missing key as ⟦key⟧).
`english_leaks` finds, on a page shown in Chinese, text that is English words and no Chinese: a
string that never went through the catalogue. Product and protocol names are not words to translate.
"""
from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

# element types whose value is text the page wrote (a widget's value is the reader's data instead)
TEXT_TYPES = {"title", "header", "subheader", "caption", "markdown", "text", "info", "warning", "error",
              "success", "exception", "toast", "latex"}
LABELS = ("label", "help", "placeholder")
NAMES = {  # proper names and notations kept as they are in Chinese text
    "shoal", "bettafish", "llm", "llms", "api", "url", "urls", "tavily", "bocha", "deepseek", "qwen", "dashscope",
    "kimi", "moonshot", "glm", "zhipu", "openai", "ollama", "llama", "cpp", "mysql", "sqlite", "mariadb",
    "postgresql", "json", "csv", "toml", "html", "pdf", "markdown", "env", "weibo", "bilibili", "douyin",
    "xhs", "zhihu", "tieba", "kuaishou", "http", "https", "utc", "trace", "id", "ids", "cpu", "ram", "rss",
    "ttl", "sql", "sqlalchemy", "pymysql", "prometheus", "streamlit", "asia", "shanghai", "etc",
    "query", "media", "insight", "forum", "report",  # engine names are shown in both languages
    "min", "max", "mb", "gb", "kb", "tokens", "token", "usd", "qps", "ms",
}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CODE = re.compile(r"`[^`]*`|https?://\S+|\b[A-Z][A-Z0-9_]{2,}\b|\b[\w.-]+\.(?:py|json|toml|csv|log|db|env)\b")
_WORD = re.compile(r"[A-Za-z]{3,}")


def shown(at: AppTest) -> list[str]:
    """Every text on the page: text elements' values and every element's label, help and placeholder."""
    out: list[str] = []
    for node in at:
        kind = getattr(node, "type", "")
        if kind in TEXT_TYPES:
            value = getattr(node, "value", None)
            if isinstance(value, str):
                out.append(value)
        for attr in LABELS:
            try:
                value = getattr(node, attr)
            except Exception:  # noqa: BLE001 - not every element has every attribute
                continue
            if isinstance(value, str) and value:
                out.append(value)
    return out


def untranslated_keys(at: AppTest) -> list[str]:
    return [text for text in shown(at) if "⟦" in text]


def english_leaks(at: AppTest, allowed: tuple[str, ...] = ()) -> list[str]:
    """Texts on a Chinese page with two or more English words and no Chinese at all. `allowed` are
    data the test itself put on the page (a topic, a file name)."""
    leaks = []
    for text in shown(at):
        rest = text
        for data in allowed:
            rest = rest.replace(data, " ")
        rest = _CODE.sub(" ", rest)
        if _CJK.search(rest):
            continue
        words = [w for w in _WORD.findall(rest) if w.lower() not in NAMES]
        if len(words) >= 2:
            leaks.append(text)
    return leaks
