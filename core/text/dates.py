"""The one date parser: times and dates as written by files, databases, crawlers and search APIs.

    parse_time(value)                 a datetime as naive UTC; ValueError when unreadable
    parse_time(value, lenient=True)   the same, None when unreadable (search API results)
    parse_date(value, name)           a strict 'YYYY-MM-DD' date (tool parameters); ValueError naming ``name``

Times are naive UTC, the project's convention (core/infra/models.py): a time with an offset is
converted, a time written without one is kept as written.
"""
from __future__ import annotations

import email.utils
import math
import re
from datetime import date, datetime, timezone
from typing import Any

__all__ = ["parse_time", "parse_date", "MIN_YEAR", "MAX_YEAR"]

MIN_YEAR, MAX_YEAR = 1990, 2100   # a publish time outside these years is a misread field

_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y%m%d", "%Y-%m-%d %H:%M:%S.%f",
                 "%a %b %d %H:%M:%S %z %Y")  # the last: Weibo's API ("Tue Mar 05 12:00:00 +0800 2024")
_DATE_RE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
_EMPTY = ("null", "none", "nan", "-")


def parse_time(value: Any, *, lenient: bool = False) -> datetime | None:
    """A time as naive UTC from a datetime, a date, epoch seconds / milliseconds / micro- / nanoseconds
    (number or digits), 'YYYYMMDD', ISO 8601 (with 'Z' or an offset), 'YYYY-MM-DD HH:MM[:SS]',
    'YYYY/MM/DD', 'YYYY.MM.DD', '2024年5月1日 10:00', RFC 2822 ('Tue, 18 Feb 2025 04:48:30 GMT') or
    Weibo's API format. '' / None / 'null' -> None.

    A value that is not a time, or one outside MIN_YEAR..MAX_YEAR, raises ValueError, or gives None
    with ``lenient``.
    """
    try:
        return _parse_time(value)
    except ValueError:
        if lenient:
            return None
        raise


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, bool):
        raise ValueError(f"cannot read {value!r} as a time")
    elif isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"cannot read {value!r} as a time")
        dt = _from_number(float(value))
    else:
        s = str(value).strip()
        if not s or s.lower() in _EMPTY:
            return None
        if re.fullmatch(r"(19|20)\d{6}", s):
            dt = datetime.strptime(s, "%Y%m%d")
        elif re.fullmatch(r"-?\d+(\.\d+)?", s):
            dt = _from_number(float(s))
        else:
            dt = _parse_time_text(s)
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    if not MIN_YEAR <= dt.year <= MAX_YEAR:
        raise ValueError(f"implausible time {str(value)[:40]!r} (year {dt.year})")
    return dt


def _from_number(x: float) -> datetime:
    ax = abs(x)
    if ax >= 1e17:
        x /= 1e9  # nanoseconds
    elif ax >= 1e14:
        x /= 1e6  # microseconds
    elif ax >= 1e11:
        x /= 1e3  # milliseconds
    try:
        return datetime.fromtimestamp(x, timezone.utc).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"timestamp out of range: {x!r}") from None


def _parse_time_text(s: str) -> datetime:
    candidates = [s]
    t = s.replace("/", "-").replace(".", "-") if re.match(r"^\d{4}[/.]\d{1,2}[/.]\d{1,2}", s) else s
    t = re.sub(r"(\d{4})年(\d{1,2})月(\d{1,2})日?", r"\1-\2-\3", t)
    t = re.sub(r"^(\d{4})-(\d)(?=\D|$)", r"\1-0\2", t)
    t = re.sub(r"^(\d{4}-\d{2})-(\d)(?=\D|$)", r"\1-0\2", t)
    candidates.append(t.strip())
    for c in candidates:
        try:
            return datetime.fromisoformat(c[:-1] + "+00:00" if c.endswith(("Z", "z")) else c)
        except ValueError:
            pass
        for fmt in _TIME_FORMATS:
            try:
                return datetime.strptime(c, fmt)
            except ValueError:
                pass
    try:
        return email.utils.parsedate_to_datetime(s)   # RFC 2822, as Tavily's news results have it
    except (TypeError, ValueError, IndexError):
        pass
    raise ValueError(f"cannot read {s[:40]!r} as a time (use ISO 8601, YYYY-MM-DD HH:MM:SS or epoch seconds/ms)")


def parse_date(value: Any, name: str = "date") -> date:
    """A 'YYYY-MM-DD' string (or a date; a datetime's day) as a date; a clear ValueError otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    s = str(value or "").strip()
    if not _DATE_RE.fullmatch(s):
        raise ValueError(f"{name} must be a date in the form YYYY-MM-DD, got {str(value)[:40]!r}")
    try:
        return datetime.strptime(s, "%Y-%m-%d").date()
    except ValueError:
        raise ValueError(f"{name} {s!r} is not a real date (YYYY-MM-DD)") from None
