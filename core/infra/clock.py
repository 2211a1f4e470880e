"""One clock for everything shown: stored times are naive UTC (core.infra.models.utcnow); the reader
sees them in one zone, named.

The zone comes from SHOAL_TIMEZONE: an IANA name (`Asia/Shanghai`), `UTC`, or `local` (the default):
the reader's browser zone when the page knows it, else this server's zone.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LOCAL = "local"


def zone_error(name: str) -> str | None:
    """Why a SHOAL_TIMEZONE value cannot be used, or None."""
    value = (name or "").strip()
    if not value or value.lower() == LOCAL:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {value!r}: use `local`, `UTC` or an IANA name such as Asia/Shanghai"
    return None


def server_zone() -> tzinfo:
    return datetime.now().astimezone().tzinfo or timezone.utc


def display_zone(setting: str | None, browser_zone: str | None = None) -> tzinfo:
    """The zone times are shown in: the setting's zone, or for `local` the browser's, else the server's."""
    value = (setting or LOCAL).strip()
    if value.lower() != LOCAL and zone_error(value) is None:
        return ZoneInfo(value)
    if browser_zone and zone_error(browser_zone) is None:
        return ZoneInfo(browser_zone)
    return server_zone()


def as_zone(ts: datetime, zone: tzinfo) -> datetime:
    """A stored time (naive means UTC) in `zone`."""
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)
    return aware.astimezone(zone)


def zone_name(zone: tzinfo, at: datetime | None = None) -> str:
    """`Asia/Shanghai (UTC+08:00)`, `UTC`: what a caption says the times are in."""
    moment = as_zone(at or datetime.now(timezone.utc), zone)
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    label = f"UTC{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    key = getattr(zone, "key", None) or moment.tzname() or ""
    if key in ("UTC", "Etc/UTC") or (not minutes and key in ("", "UTC")):
        return "UTC"
    return f"{key} ({label})" if key and key != label else label


def fmt_clock(ts: datetime | None, zone: tzinfo, with_date: bool = True) -> str:
    if ts is None:
        return "—"
    return as_zone(ts, zone).strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")

