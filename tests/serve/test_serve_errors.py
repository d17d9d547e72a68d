"""What the server cannot send, and its own failures, never take a server down.

A response that cannot be encoded is the handler's failure (a 500, counted and shown by the
``serve`` fixture); an exception in a server's connection code closes that connection only.
"""

from __future__ import annotations

import socket

import httpx
import pytest
from serve_params import MODEL_KINDS

from pytest_concurrency.serve import Request, Response
from pytest_concurrency.serve._parsers import PARSERS, HttptoolsParser


def unsendable_sync(request: Request) -> Response | str:
    if request.path == "/bad":
        return Response("x", headers={"X-Name": "caf\u20ac"})  # not even latin-1
    return "ok"


async def unsendable(request: Request) -> Response | str:
    return unsendable_sync(request)


def handler_for(kind: str):
    return unsendable_sync if kind == "sync" else unsendable


@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize(("model", "kind"), MODEL_KINDS)
def test_a_response_that_cannot_be_encoded_is_a_handler_error(serve, model, kind, http):
    server = serve(handler_for(kind), model=model, http=http, fail_on_handler_error=False)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        bad = client.get("/bad")
        assert bad.status_code == 500
        assert bad.headers["connection"] == "close"
        assert client.get("/ok").text == "ok"
    assert server.stats().handler_errors == 1
    [error] = server.handler_errors
    assert error.format().startswith(
        "the handler's response to GET /bad cannot be sent (the client got a 500):\n"
    )
    assert "X-Name" in error.traceback


@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize(
    "response",
    [
        pytest.param(Response("x", headers={"X-Count": 3}), id="int-value"),  # type: ignore[dict-item]
        pytest.param(Response("x", headers={"X-A": "1\r\nX-Injected: 2"}), id="line-break"),
        pytest.param(Response("x", headers={"Bad Name": "1"}), id="bad-name"),
        pytest.param(Response("x", headers={"X-A": " padded"}), id="padded-value"),
        pytest.param(Response("x", content_type="text/plain\r\nX-B: 1"), id="content-type"),
        pytest.param(Response("x", status=99), id="status-99"),
        pytest.param(Response("x", status="200"), id="status-str"),  # type: ignore[arg-type]
    ],
)
def test_both_parsers_refuse_the_same_responses(serve, http, response):
    server = serve(lambda request: response, "threads", http=http, fail_on_handler_error=False)
    reply = httpx.get(server.url, timeout=10)
    assert reply.status_code == 500
    assert b"X-Injected" not in reply.content
    assert server.stats().handler_errors == 1


def test_the_serve_fixture_fails_the_test_showing_the_unsendable_response(pytester):
    pytester.makepyfile(
        """
import httpx
from pytest_concurrency.serve import Response

def greet(request):
    return Response("hi", headers={"X-Name": "caf\\u20ac"})

def test_greet(serve):
    server = serve(greet, "threads")
    assert httpx.get(server.url + "/greet").status_code == 500
"""
    )
    result = pytester.runpytest_subprocess("-rA")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_greet*",
            "*threads server at http://127.0.0.1:*: the handler's response to GET /greet "
            "cannot be sent (the client got a 500):",
            "ValueError: invalid value for response header 'X-Name': *",
        ]
    )


class CrashingParser(HttptoolsParser):
    """A parser with a bug: it raises on a request for /crash-feed or after /crash-resume."""

    __slots__ = ("_crash_on_resume",)
    pauses = True  # the servers call resume() after each request, as for h11

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._crash_on_resume = False

    def feed(self, data):
        if b"/crash-feed" in data:
            raise RuntimeError("parser bug in feed")
        self._crash_on_resume = b"/crash-resume" in data
        return super().feed(data)

    def resume(self):
        if self._crash_on_resume:
            raise RuntimeError("parser bug in resume")
        return super().resume()


def read_until_closed(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


@pytest.mark.parametrize("where", ["feed", "resume"])
@pytest.mark.parametrize(("model", "kind"), MODEL_KINDS)
def test_a_server_bug_closes_one_connection_and_is_reported(serve, monkeypatch, model, kind, where):
    monkeypatch.setitem(PARSERS, "httptools", CrashingParser)
    server = serve(handler_for(kind), model=model, fail_on_handler_error=False)
    reply = read_until_closed(
        server.port, f"GET /crash-{where} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    # The connection was closed, after the answer if the model sent it before resume().
    assert reply == b"" or reply.startswith(b"HTTP/1.1 200 OK")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/ok").text == "ok"
    assert server.stats().handler_errors == 1
    [error] = server.handler_errors
    assert error.format().startswith(
        f"the {model} server failed on a connection and closed it (a bug in "
        "pytest-concurrency-guard, not in the handler):\n"
    )
    assert f"RuntimeError: parser bug in {where}" in error.traceback
