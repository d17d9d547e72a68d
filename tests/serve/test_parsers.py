"""The httptools parser: each request's HTTP version and keep-alive, as llhttp reads them.

It names the version without asking llhttp for it when the request's keep-alive already says
what it is; these cases pin that down, including what may not carry over from one request on
a connection to the next. (h11 differs on purpose here: it never keeps an HTTP/1.0 connection
alive and ignores ``Proxy-Connection``.)
"""

from __future__ import annotations

import pytest

from pytest_concurrency.serve._http import Response
from pytest_concurrency.serve._parsers import HttptoolsParser


def _no_response_error(request: object, error: Exception) -> None:
    raise AssertionError(f"unexpected response error: {error!r}")


def new_parser() -> HttptoolsParser:
    return HttptoolsParser(64 * 1024, 1024 * 1024, _no_response_error)


@pytest.mark.parametrize(
    ("version", "headers", "keep_alive"),
    [
        ("1.1", b"", True),
        ("1.1", b"Connection: close\r\n", False),
        ("1.1", b"connection: Keep-Alive\r\n", True),
        ("1.1", b"Proxy-Connection: close\r\n", False),
        ("1.1", b"Connection: upgrade\r\nUpgrade: foo\r\n", True),
        ("1.0", b"", False),
        ("1.0", b"Connection: keep-alive\r\n", True),
        ("1.0", b"Proxy-Connection: keep-alive\r\n", True),
        ("1.0", b"X-Connection: keep-alive\r\n", False),
    ],
)
def test_version_and_keep_alive(version: str, headers: bytes, keep_alive: bool) -> None:
    parser = new_parser()
    head = f"GET /a?b=1 HTTP/{version}\r\nHost: x\r\n".encode() + headers + b"\r\n"
    # Twice on one connection, after a request of the other version, so that nothing carries
    # over from one request to the next.
    other = "1.0" if version == "1.1" else "1.1"
    first = f"GET /first HTTP/{other}\r\nHost: x\r\nConnection: keep-alive\r\n\r\n".encode()
    [previous] = parser.feed(first)
    assert previous.http_version == other
    parser.encode(previous, Response(b"ok"))
    [request] = parser.feed(head)
    assert parser.error is None
    assert (request.http_version, request.keep_alive, request.target) == (
        version,
        keep_alive,
        "/a?b=1",
    )


@pytest.mark.parametrize("version", ["0.9", "1.2", "2.0", "3.0"])
def test_other_versions_are_refused(version: str) -> None:
    parser = new_parser()
    requests = parser.feed(f"GET / HTTP/{version}\r\nHost: x\r\n\r\n".encode())
    assert requests == []
    assert parser.error is not None
    assert parser.error.status in (400, 505)
