"""JSON out of LLM replies: `<think>` removed, fences and prose dropped, common breakage repaired.

    extract_json('好的，结果如下：\n```json\n{"title": "舆情", "items": [1, 2,],}\n```')
    -> {"title": "舆情", "items": [1, 2]}

What is repaired (outside the happy path, which is plain `json.loads`):
  - `<think>…</think>` (also `<thinking>`, `<reasoning>`), an orphan `</think>` whose opening tag
    was in the prompt, and an unclosed `<think>` (truncated reasoning);
  - Markdown fences (```json … ```, closed or not), prose before and after;
  - trailing and doubled commas, missing commas between lines;
  - single-quoted strings, unquoted keys, Python literals (True/False/None), NaN;
  - raw newlines and tabs inside strings, invalid escapes, unescaped inner double quotes
    (`{"a": "他说"好"的"}`): a quote only closes a string where JSON structure follows it;
  - literal `\\n`/`\\r\\n`/`\\t` between tokens and a whole reply escaped once (`{\\"a\\": 1}`);
  - full-width structure: “ ” as quotes, ： as colon, ， as comma, outside strings only;
  - `//`, `/* */` and `# ` comments;
  - truncation: open strings, arrays and objects are closed; a key left without a value dropped.

Among several JSON-looking fragments the largest wins (a `[1]` citation in prose does not beat
the object after it). Nothing usable raises JsonRepairError with a short, redacted excerpt.
"""
from __future__ import annotations

import json
import re
from typing import Any

from core.infra.redact import redact

__all__ = ["extract_json", "strip_think", "split_think", "repair_json", "JsonRepairError"]

_MAX_DEPTH = 200
_EXCERPT = 120

_THINK_TAGS = "think|thinking|reasoning"
_THINK_BLOCK = re.compile(rf"<({_THINK_TAGS})\b[^>]*>.*?</\1\s*>", re.S | re.I)
_THINK_OPEN = re.compile(rf"<({_THINK_TAGS})\b[^>]*>", re.I)
_THINK_CLOSE = re.compile(rf"</({_THINK_TAGS})\s*>", re.I)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n?(.*?)(?:```|\Z)", re.S)
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"), None)

_OPEN_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d\u201c", "\u201d": "\u201d\u201c"}
_COLONS = ":\uff1a"
_COMMAS = ",\uff0c"
_WS = " \t\r\n\f\v\u00a0\u3000"
_LITERALS = {"true": True, "false": False, "null": None, "none": None, "nil": None, "undefined": None,
             "nan": None}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "'": "'"}
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z_]+")
_EXPONENT_CUT = re.compile(r"[eE][-+]?\s*")
_BARE_KEY = re.compile(r"([^\s:\uff1a,\uff0c{}\[\]\"'\u201c\u201d/#][^:\uff1a,\uff0c{}\[\]\"'\u201c\u201d\n]{0,100}?)"
                       r"[ \t]*[:\uff1a]")
_QUOTED_KEY = re.compile(r"[\"'\u201c\u201d][^\"'\u201c\u201d\n]{0,200}[\"'\u201c\u201d][ \t]*[:\uff1a]")
# NaN and Infinity are not JSON: a database JSON column or a page would choke on them later.
_DECODER = json.JSONDecoder(strict=False, parse_constant=lambda _name: None)
_OPENER = re.compile(r"[{\[]")
_ESCAPED_START = re.compile(r"[{\[](?:\s|\\[nrt])*\\\"")


class JsonRepairError(ValueError):
    """No usable JSON object or array in the text. `excerpt` is short and redacted."""

    def __init__(self, reason: str, text: str = ""):
        self.reason = reason
        self.excerpt = _excerpt(text)
        super().__init__(f"{reason}: {self.excerpt!r}" if self.excerpt else reason)


def _excerpt(text: str) -> str:
    flat = " ".join((text or "").split())
    if len(flat) > _EXCERPT:
        flat = flat[:_EXCERPT] + "…"
    return redact(flat)


# ---------------------------------------------------------------------------------------------
# <think>

def _split_think(text: str) -> tuple[str, str | None]:
    """(text without reasoning, content of an unclosed <think> or None)."""
    out = _THINK_BLOCK.sub("", text)
    closes = list(_THINK_CLOSE.finditer(out))
    if closes:  # the opening tag was part of the prompt (chat templates of reasoning models)
        out = out[closes[-1].end():]
    unclosed = None
    m = _THINK_OPEN.search(out)
    if m:  # reasoning that never ended: the reply was cut off while thinking
        unclosed = out[m.end():]
        out = out[:m.start()]
    return out, unclosed


def split_think(text: str) -> tuple[str, str]:
    """(answer, reasoning): the reply without its reasoning, and the reasoning, both stripped."""
    if not text:
        return "", ""
    parts = [m.group(0) for m in _THINK_BLOCK.finditer(text)]
    thoughts = [_THINK_CLOSE.sub("", _THINK_OPEN.sub("", p, count=1)).strip() for p in parts]
    rest = _THINK_BLOCK.sub("", text)
    closes = list(_THINK_CLOSE.finditer(rest))
    if closes:
        thoughts.append(_THINK_CLOSE.sub("", rest[:closes[-1].start()]).strip())
    answer, unclosed = _split_think(text)
    if unclosed:
        thoughts.append(unclosed.strip())
    return answer.strip(), "\n".join(t for t in thoughts if t)


def strip_think(text: str) -> str:
    """The reply without its reasoning blocks, stripped of surrounding whitespace."""
    if not text:
        return ""
    return _split_think(text)[0].strip()


# ---------------------------------------------------------------------------------------------
# The tolerant parser

class _Fail(Exception):
    pass


class _Incomplete(Exception):
    """The text ended inside a value that cannot be salvaged (`tr`, `-`, `1e`)."""


class _Parser:
    def __init__(self, s: str):
        self.s = s
        self.n = len(s)
        self.i = 0
        self.truncated = False

    # whitespace, comments, literal escapes between tokens ------------------------------------
    def skip(self, i: int | None = None) -> int:
        s, n = self.s, self.n
        i = self.i if i is None else i
        while i < n:
            c = s[i]
            if c in _WS:
                i += 1
            elif c == "\\" and i + 1 < n and s[i + 1] in "nrt":
                i += 2
            elif c == "/" and i + 1 < n and s[i + 1] == "/":
                j = s.find("\n", i)
                i = n if j < 0 else j + 1
            elif c == "/" and i + 1 < n and s[i + 1] == "*":
                j = s.find("*/", i + 2)
                i = n if j < 0 else j + 2
            elif c == "#" and i + 1 < n and s[i + 1] in " #":
                j = s.find("\n", i)
                i = n if j < 0 else j + 1
            else:
                break
        return i

    def ws(self) -> None:
        self.i = self.skip()

    # values ----------------------------------------------------------------------------------
    def value(self, container: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise _Fail("nested too deeply")
        self.ws()
        if self.i >= self.n:
            raise _Incomplete
        c = self.s[self.i]
        if c == "{":
            return self.obj(depth + 1)
        if c == "[":
            return self.arr(depth + 1)
        if c in _OPEN_QUOTES:
            return self.string("value", container)
        if c in "-+.0123456789":
            return self.number(container)
        if c.isalpha() or c == "_":
            return self.word(container)
        if container == "object":
            return self.bare(container)
        raise _Fail(f"unexpected {c!r}")

    def obj(self, depth: int) -> dict:
        s = self.s
        self.i += 1
        out: dict[str, Any] = {}
        while True:
            self.ws()
            if self.i >= self.n:
                self.truncated = True
                return out
            c = s[self.i]
            if c == "}":
                self.i += 1
                return out
            if c == "]":  # the object's own closer is missing: leave `]` to the array around it
                return out
            if c in _COMMAS:
                self.i += 1
                continue
            if c in _OPEN_QUOTES:
                key = self.string("key", "object")
                if self.i >= self.n and self.truncated:
                    return out
            else:
                m = _BARE_KEY.match(s, self.i)
                if not m:
                    if self._is_truncated_tail(self.i):
                        self.truncated = True
                        return out
                    raise _Fail(f"expected a key at {self.i}")
                key = m.group(1).strip()
                self.i = m.end(1)
            self.ws()
            if self.i >= self.n:
                self.truncated = True
                return out
            if s[self.i] not in _COLONS and s[self.i] != "=":
                raise _Fail(f"expected ':' after key {key!r}")
            self.i += 1
            self.ws()
            if self.i >= self.n:
                self.truncated = True
                return out
            try:
                out[key] = self.value("object", depth)
            except _Incomplete:
                self.truncated = True
                return out

    def arr(self, depth: int) -> list:
        s = self.s
        self.i += 1
        out: list[Any] = []
        while True:
            self.ws()
            if self.i >= self.n:
                self.truncated = True
                return out
            c = s[self.i]
            if c == "]":
                self.i += 1
                return out
            if c == "}":  # closer of an enclosing object: this array's `]` is missing
                return out
            if c in _COMMAS:
                self.i += 1
                continue
            try:
                out.append(self.value("array", depth))
            except _Incomplete:
                self.truncated = True
                return out

    def _is_truncated_tail(self, i: int) -> bool:
        """A bare key cut off by the end of the text (`{"a": 1, tit`)."""
        rest = self.s[i:]
        return "\n" not in rest and len(rest) <= 100 and not any(ch in rest for ch in ":\uff1a{}[]")

    def string(self, role: str, container: str) -> str:
        s, n = self.s, self.n
        opener = s[self.i]
        closers = _OPEN_QUOTES[opener]
        self.i += 1
        buf: list[str] = []
        while self.i < n:
            c = s[self.i]
            if c == "\\":
                if self.i + 1 >= n:
                    self.i = n
                    break
                e = s[self.i + 1]
                if e == "u":
                    code = s[self.i + 2:self.i + 6]
                    if len(code) == 4 and all(h in "0123456789abcdefABCDEF" for h in code):
                        cp = int(code, 16)
                        self.i += 6
                        # a surrogate pair written as two escapes
                        if 0xD800 <= cp <= 0xDBFF and s[self.i:self.i + 2] == "\\u":
                            low = s[self.i + 2:self.i + 6]
                            if len(low) == 4 and all(h in "0123456789abcdefABCDEF" for h in low) \
                                    and 0xDC00 <= int(low, 16) <= 0xDFFF:
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (int(low, 16) - 0xDC00)
                                self.i += 6
                        buf.append(chr(cp) if not 0xD800 <= cp <= 0xDFFF else "\ufffd")
                        continue
                    if self.i + 2 + len(code) >= n:  # `\u12` cut off by the end
                        self.i = n
                        break
                    buf.append("\\u")
                    self.i += 2
                    continue
                if e in _ESCAPES:
                    buf.append(_ESCAPES[e])
                else:  # an invalid escape (`\d`, `\_`): keep it as written
                    buf.append("\\" + e)
                self.i += 2
                continue
            if c in closers and self._closes(self.i + 1, role, container):
                self.i += 1
                return "".join(buf)
            buf.append(c)
            self.i += 1
        self.truncated = True
        return "".join(buf)

    def _closes(self, j: int, role: str, container: str) -> bool:
        """Does the quote just before `j` end the string? Only if JSON structure follows it."""
        s, n = self.s, self.n
        k = self.skip(j)
        if k >= n:
            return True
        c = s[k]
        if c in _COLONS:
            return role == "key"
        if role == "key":
            return c == "="
        if c in "}]":
            return True
        if c in _COMMAS:
            m = self.skip(k + 1)
            if m >= n:
                return True
            return self._starts_item(m, container)
        # a missing comma at the end of a line: `"a": "x"\n  "b": "y"`
        if "\n" in s[j:k] or "\\n" in s[j:k]:
            return self._starts_item(k, container)
        return False

    def _starts_item(self, m: int, container: str) -> bool:
        s = self.s
        d = s[m]
        if d in "}]":
            return True
        if container == "object":
            if d in _OPEN_QUOTES:
                return bool(_QUOTED_KEY.match(s, m)) or self._quoted_tail(m)
            return bool(_BARE_KEY.match(s, m))
        if d in _OPEN_QUOTES or d in "{[-0123456789":
            return True
        w = _WORD.match(s, m)
        return bool(w) and w.group(0).lower() in _LITERALS

    def _quoted_tail(self, m: int) -> bool:
        """A key cut off by the end of the text: `"a": "x", "tit`."""
        rest = self.s[m + 1:]
        return len(rest) <= 200 and "\n" not in rest and not any(q in rest for q in "\"'\u201c\u201d")

    def number(self, container: str) -> Any:
        s, n = self.s, self.n
        m = _NUMBER.match(s, self.i)
        if not m:  # a lone sign or dot
            if self.skip(self.i + 1) >= n:
                raise _Incomplete
            if container == "object":
                return self.bare(container)
            raise _Fail("bad number")
        text, end = m.group(0), m.end()
        if _EXPONENT_CUT.fullmatch(s, end):  # `1e` / `1e-` cut off by the end
            raise _Incomplete
        k = self.skip(end)
        if k >= n:
            self.i = end
            return self._to_number(text)
        if s[k] in ",}]\uff0c" or (k > end and s[k] in "\"'\u201c{["):  # (a missing comma after a newline)
            self.i = end
            return self._to_number(text)
        if container == "object":  # `85%`, `3.5亿`: keep it as text
            return self.bare(container)
        raise _Fail(f"bad number {text!r}")

    @staticmethod
    def _to_number(text: str) -> Any:
        text = text.lstrip("+")
        if any(ch in text for ch in ".eE"):
            return float(text)
        return int(text)

    def word(self, container: str) -> Any:
        s = self.s
        m = _WORD.match(s, self.i)
        word = m.group(0) if m else ""
        end = self.i + len(word)
        low = word.lower()
        if low in _LITERALS or low in ("infinity",):
            k = self.skip(end)
            if k >= self.n or s[k] in ",}]\uff0c":
                self.i = end
                return _LITERALS.get(low)
        if end >= self.n and any(lit.startswith(low) for lit in _LITERALS):
            raise _Incomplete  # `tr` at the very end
        if container == "object":
            return self.bare(container)
        raise _Fail(f"unexpected word {word!r}")

    def bare(self, container: str) -> str:
        """An unquoted value in an object (`"score": 85%`, `"tone": positive`): up to , } ] or newline."""
        s = self.s
        start = self.i
        i = start
        while i < self.n and s[i] not in ",}]\n":
            i += 1
        text = s[start:i].strip()
        if not text:
            raise _Fail("empty value")
        if i >= self.n:
            self.truncated = True
        self.i = i
        return text


def _parse_at(text: str, start: int) -> tuple[tuple[Any, int, bool] | None, int]:
    """((value, end, truncated) or None, characters examined) for the value starting at `start`."""
    try:
        value, end = _DECODER.raw_decode(text, start)
        return (value, end, False), end - start
    except json.JSONDecodeError as exc:
        work = max(1, exc.pos - start)
    except RecursionError:  # nested deeper than the C decoder goes: garbage, and costly to retry inside
        return None, len(text) - start
    p = _Parser(text)
    p.i = start
    try:
        value = p.obj(1) if text[start] == "{" else p.arr(1)
    except (_Fail, _Incomplete, RecursionError):
        return None, work + max(1, p.i - start)
    return (value, p.i, p.truncated), work + max(1, p.i - start)


def _unescape_once(text: str) -> str:
    """A reply that is itself an escaped JSON string body: `{\\"a\\": \\"b\\"}`."""
    try:
        return json.loads('"' + text.replace('"', '\\"').replace('\\\\"', '\\"') + '"')
    except ValueError:
        return text.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r")


def _best(text: str) -> Any | None:
    """The largest JSON object or array in `text` (None when there is none)."""
    best: tuple[int, Any] | None = None  # (score, value); earlier wins ties
    budget = 8 * len(text) + 20_000  # characters the parser may examine, in all
    pos = 0
    while budget > 0:
        m = _OPENER.search(text, pos)
        if m is None:
            break
        start = m.start()
        if _ESCAPED_START.match(text, start):
            # The rest of the reply is one JSON text escaped once: parse its unescaped form.
            origin = 0
            parsed, work = _parse_at(_unescape_once(text[start:]), origin)
            next_pos = len(text)
        else:
            origin = start
            parsed, work = _parse_at(text, start)
            next_pos = start + 1 if parsed is None else max(parsed[1], start + 1)
        budget -= work
        if parsed is not None:
            value, end, truncated = parsed
            span = end - origin
            # An empty result (often a truncated `{"ok` in prose) counts only when nothing else does.
            score = (span if value not in ({}, []) else 0) + (0 if truncated else 1)
            if best is None or score > best[0]:
                best = (score, value)
        pos = next_pos
    return None if best is None else best[1]


def _candidates(text: str) -> list[str]:
    """Fenced blocks first (those that look like JSON), then the whole text."""
    out = []
    for m in _FENCE.finditer(text):
        lang, body = m.group(1).lower(), m.group(2)
        if lang in ("", "json", "json5", "jsonc", "javascript", "js") and ("{" in body or "[" in body):
            out.append(body)
    out.append(text)
    return out


def extract_json(text: str) -> dict | list:
    """The JSON object or array in an LLM reply, repaired; raises JsonRepairError if there is none."""
    if not isinstance(text, str):
        raise JsonRepairError(f"expected text, got {type(text).__name__}")
    original = text
    text = text.translate(_INVISIBLE)
    body, unclosed = _split_think(text)
    body = body.strip()
    # The happy path: the reply is exactly JSON.
    if body[:1] in ("{", "[", '"'):
        try:
            value = _DECODER.decode(body)
        except (ValueError, RecursionError):
            pass
        else:
            if isinstance(value, (dict, list)):
                return value
            if isinstance(value, str) and value.strip()[:1] in ("{", "["):  # JSON encoded twice
                return extract_json(value)
    sources = [body] if body else []
    if unclosed and unclosed.strip():
        sources.append(unclosed)  # only the cut-off reasoning holds anything
    empty = None
    for source in sources:
        for candidate in _candidates(source):
            value = _best(candidate)
            if value is None:
                continue
            if value in ({}, []):
                empty = value if empty is None else empty
                continue
            return value
    if empty is not None:
        return empty
    if not body and not unclosed:
        raise JsonRepairError("the reply is empty" if not original.strip() else
                              "the reply holds only reasoning (<think>), no answer", original)
    raise JsonRepairError("no JSON object or array found", original)


def repair_json(text: str) -> str:
    """extract_json, serialised back to strict JSON (UTF-8 text, not ASCII-escaped)."""
    return json.dumps(extract_json(text), ensure_ascii=False)
