"""Fakes for tests: real servers on loopback with scripted behaviour and fault injection."""
from .http_server import FakeHTTPServer, RecordedRequest, Reply, fake_http_server

__all__ = ["FakeHTTPServer", "RecordedRequest", "Reply", "fake_http_server"]
