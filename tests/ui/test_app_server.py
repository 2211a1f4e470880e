"""Home.py's st.App lifespan (ui/app_server.py): SIGTERM stops uvicorn without the signal being raised
again (the app exits 0 and runs its exit hooks: tests/ui/test_app_faults.py checks that on a real
server); a handler that is not a server's is left alone."""
from __future__ import annotations

import signal

import pytest

from ui import app_server


class FakeServer:
    should_exit = False

    def handle_exit(self, signum, frame):  # what uvicorn.Server installs
        raise AssertionError("uvicorn's handler would record the signal and raise it again after shutdown")


@pytest.fixture
def restore_sigterm():
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def test_sigterm_asks_the_server_to_stop_instead(restore_sigterm):
    server = FakeServer()
    signal.signal(signal.SIGTERM, server.handle_exit)
    assert app_server._graceful_sigterm() is True
    handler = signal.getsignal(signal.SIGTERM)
    assert handler != server.handle_exit
    handler(signal.SIGTERM, None)
    assert server.should_exit is True


def test_a_handler_that_is_not_a_servers_is_left_alone(restore_sigterm):
    def mine(signum, frame):
        pass

    signal.signal(signal.SIGTERM, mine)
    assert app_server._graceful_sigterm() is False
    assert signal.getsignal(signal.SIGTERM) is mine
