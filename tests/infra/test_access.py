"""Who gets control actions: local visitors, password holders; and the per-session run limit."""
from __future__ import annotations

import pytest

from core.infra.access import (DISABLED, OPEN, PASSWORD, Visitor, control_access, is_local, is_loopback,
                               password_matches, run_start_allowed, visitor_from)

LOCAL_HEADERS = {"Host": "localhost:8501", "Origin": "http://localhost:8501", "User-Agent": "x"}


@pytest.mark.parametrize("host", ["localhost", "localhost:8501", "LOCALHOST:80", "127.0.0.1", "127.0.0.1:8501",
                                  "127.1.2.3:9", "[::1]:8501", "::1", "[::1]", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]:8501"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["", None, "example.com", "localhost.example.com", "evil.localhost.attacker.com",
                                  "10.0.0.1", "192.168.1.2:8501", "0.0.0.0", "[2001:db8::1]:80", "shoal.streamlit.app",
                                  "::ffff:10.0.0.1", "::ffff:192.168.1.2"])
def test_other_hosts_are_not_loopback(host):
    assert not is_loopback(host)


def test_a_browser_on_the_same_machine_is_local():
    assert is_local(visitor_from(LOCAL_HEADERS, None))  # Streamlit reports a loopback client as None


def test_a_browser_on_127_0_0_1_of_a_dual_stack_server_is_local():
    # what Streamlit reports for Chromium opening http://127.0.0.1:PORT (seen: '::ffff:127.0.0.1')
    headers = {"Host": "127.0.0.1:8501", "Origin": "http://127.0.0.1:8501", "User-Agent": "x"}
    assert is_local(visitor_from(headers, "::ffff:127.0.0.1"))
    assert not is_local(visitor_from(headers, "::ffff:192.168.1.20"))
    assert is_local(visitor_from({"host": "127.0.0.1:8501"}, "127.0.0.1"))


@pytest.mark.parametrize("headers, ip", [
    ({}, None),  # no request at all (a script run, a test): not local
    ({"Host": "shoal.streamlit.app"}, None),  # Community Cloud: the public name in Host
    ({"Host": "localhost:8501"}, "203.0.113.7"),  # the client is elsewhere
    ({"Host": "attacker.example:8501", "Origin": "http://attacker.example:8501"}, None),  # DNS rebinding
    ({"Host": "localhost:8501", "Origin": "https://evil.example"}, None),  # a foreign page's websocket
    ({"Host": "localhost:8501", "X-Forwarded-For": "203.0.113.7"}, None),  # a same-machine proxy
    ({"Host": "localhost:8501", "X-Forwarded-For": "127.0.0.1, 203.0.113.7"}, None),
    ({"Host": "localhost:8501", "Forwarded": 'for="203.0.113.7";proto=https'}, None),
    ({"Host": "localhost:8501", "X-Real-IP": "10.1.2.3"}, None),
    ({"Host": "localhost:8501", "X-Forwarded-Host": "shoal.example.com"}, None),
])
def test_anything_pointing_elsewhere_is_remote(headers, ip):
    assert not is_local(visitor_from(headers, ip))


def test_a_proxy_header_naming_only_loopback_stays_local():
    assert is_local(visitor_from({**LOCAL_HEADERS, "X-Forwarded-For": "127.0.0.1"}, None))


LOCAL = visitor_from(LOCAL_HEADERS, None)
REMOTE = visitor_from({"Host": "shoal.streamlit.app"}, "203.0.113.7")


def test_access_without_a_password_is_open_locally_and_off_remotely():
    assert control_access(LOCAL, "").state == OPEN
    off = control_access(REMOTE, "")
    assert off.state == DISABLED and "SHOAL_ADMIN_PASSWORD" in off.reason.render("en") and "管理员密码" in off.reason.render("zh")
    assert control_access(Visitor(has_request=False), None).state == DISABLED


def test_a_set_password_is_asked_from_everyone():
    assert control_access(LOCAL, "pw-1").state == PASSWORD
    assert control_access(REMOTE, "pw-1").state == PASSWORD


def test_shoal_public_treats_a_local_visitor_as_remote():
    access = control_access(LOCAL, "", force_public=True)
    assert access.state == DISABLED and "SHOAL_PUBLIC" in access.reason.render("en")


def test_password_matching():
    assert password_matches("open-sesame-42", "open-sesame-42")
    assert password_matches("密码", "密码")
    assert not password_matches("open-sesame-4", "open-sesame-42")
    assert not password_matches("", "")
    assert not password_matches("x", None)


def test_run_starts_are_limited_per_hour():
    starts: list[float] = []
    for i in range(3):
        d = run_start_allowed(starts, 1000.0 + i, limit=3)
        assert d.allowed
        starts.append(1000.0 + i)
    refused = run_start_allowed(starts, 1010.0, limit=3)
    assert not refused.allowed and refused.wait_s == pytest.approx(3600 - 10)
    assert "SHOAL_RUNS_PER_SESSION_PER_HOUR" in refused.message(3) and "60 minute" in refused.message(3)
    assert run_start_allowed(starts, 1000.0 + 3600, limit=3).allowed  # the oldest left the window


def test_run_limit_zero_is_no_limit():
    assert run_start_allowed([1.0] * 500, 2.0, limit=0).allowed
