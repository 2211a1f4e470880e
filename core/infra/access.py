"""Who may use control actions: a local visitor, or anyone who knows the admin password.

Control actions change what the app does or spends: settings, starting, cancelling and resuming
runs, imports, alert rules and forum posts. The UI reads the request (headers, client address)
and passes plain values in, so this module never imports Streamlit.

    visitor_from(headers, ip_address)   the request as a Visitor
    is_local(visitor)                   reached on localhost, decided conservatively
    control_access(visitor, password, force_public)
                                        OPEN (local, no password), PASSWORD (ask for it) or DISABLED
    password_matches(typed, password)   constant-time comparison
    run_start_allowed(starts, now, limit)
                                        the per-session rate limit on starting runs
"""
from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Mapping
from urllib.parse import urlsplit

from core.i18n import Msg

OPEN, PASSWORD, DISABLED = "open", "password", "disabled"

# Headers a proxy adds when it forwards someone else's request: their presence with an address that
# is not loopback means the visitor is elsewhere, whatever the Host header says.
FORWARD_HEADERS = ("x-forwarded-for", "x-real-ip", "forwarded", "x-forwarded-host", "x-client-ip",
                   "cf-connecting-ip", "true-client-ip")
RATE_WINDOW_S = 3600.0

# Why control is off or asks for a password, in the reader's language (catalogue table [access]).
DISABLED_REASON = Msg("access.disabled_not_local")
PUBLIC_REASON = Msg("access.disabled_public")
PASSWORD_REASON = Msg("access.password_needed")


@dataclass(frozen=True)
class Visitor:
    """The parts of the request that tell where a visitor comes from.

    has_request is False when there is no browser request at all (a script run without a
    session): that visitor is not local either."""
    has_request: bool
    host: str = ""
    client_ip: str | None = None
    origin: str = ""
    forwarded: tuple[str, ...] = field(default=())


def visitor_from(headers: Mapping[str, str] | None, ip_address: str | None) -> Visitor:
    """A Visitor from a request's headers (any case) and the client address Streamlit reports
    (Streamlit gives None for a loopback client)."""
    lower = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    forwarded = tuple(lower[h] for h in FORWARD_HEADERS if lower.get(h, "").strip())
    return Visitor(has_request=bool(lower), host=lower.get("host", ""), client_ip=ip_address,
                   origin=lower.get("origin", ""), forwarded=forwarded)


def is_loopback(host: str | None) -> bool:
    """'localhost', 127.0.0.0/8 or ::1, with or without a port or brackets. Names other than
    'localhost' are not resolved: a name is not loopback."""
    text = (host or "").strip().lower()
    if not text:
        return False
    if text.startswith("["):  # [::1]:8501
        text = text[1:text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:  # host:port (an IPv6 address has more colons)
        text = text.split(":", 1)[0]
    text = text.rstrip(".")
    if text == "localhost":
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    # A dual-stack server (Tornado listening on ::) reports an IPv4 client as ::ffff:127.0.0.1, which
    # Python before 3.13 does not call loopback: judge the IPv4 address inside.
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _forwarded_addresses(values: Iterable[str]) -> list[str]:
    """Every address named in forwarding headers: 'a, b' lists and RFC 7239 'for=…;host=…' pairs."""
    out = []
    for value in values:
        for part in value.replace(";", ",").split(","):
            part = part.strip()
            if "=" in part:
                name, _, part = part.partition("=")
                if name.strip().lower() not in ("for", "host"):
                    continue
            out.append(part.strip().strip('"'))
    return [a for a in out if a]


def is_local(visitor: Visitor) -> bool:
    """True only when everything says localhost: a request exists, its Host is loopback (a
    DNS-rebinding page has its own name there), the client address is loopback, any Origin is
    loopback, and no proxy header names another address."""
    if not visitor.has_request or not is_loopback(visitor.host):
        return False
    if visitor.client_ip is not None and not is_loopback(visitor.client_ip):
        return False
    if visitor.origin and visitor.origin.lower() != "null":
        if not is_loopback(urlsplit(visitor.origin).netloc):
            return False
    return all(is_loopback(a) for a in _forwarded_addresses(visitor.forwarded))


@dataclass(frozen=True)
class ControlAccess:
    state: str  # OPEN | PASSWORD | DISABLED
    reason: Msg | None = None

    @property
    def open(self) -> bool:
        return self.state == OPEN


def control_access(visitor: Visitor, password: str | None, force_public: bool = False) -> ControlAccess:
    """A set password is asked for from everyone; without one, only a local visitor has control."""
    if password:
        return ControlAccess(PASSWORD, PASSWORD_REASON)
    if not force_public and is_local(visitor):
        return ControlAccess(OPEN)
    return ControlAccess(DISABLED, PUBLIC_REASON if force_public else DISABLED_REASON)


def password_matches(typed: str | None, password: str | None) -> bool:
    """Constant-time comparison; an empty password never matches."""
    if not typed or not password:
        return False
    return hmac.compare_digest(str(typed).encode("utf-8"), str(password).encode("utf-8"))


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    recent: tuple[float, ...]  # the starts still inside the window (with this one when allowed)
    wait_s: float = 0.0  # when refused: seconds until the oldest start leaves the window

    def message(self, limit: int) -> str:
        minutes = max(1, round(self.wait_s / 60))
        return (f"This session has started {limit} run(s) in the last hour, the limit "
                f"(SHOAL_RUNS_PER_SESSION_PER_HOUR). Try again in about {minutes} minute(s).")


def run_start_allowed(starts: Iterable[float], now: float, limit: int,
                      window_s: float = RATE_WINDOW_S) -> RateDecision:
    """Whether one more run may start, given this session's earlier start times; limit 0 is no limit."""
    recent = tuple(sorted(t for t in starts if now - t < window_s))
    if limit <= 0 or len(recent) < limit:
        return RateDecision(True, recent + (now,))
    return RateDecision(False, recent, wait_s=max(0.0, recent[-limit] + window_s - now))
