"""A server's own failures never take it down.

An exception in a server's connection code closes that connection only, and is reported.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from pytest_concurrency.serve import MODELS, Request
from pytest_concurrency.serve._parsers import PARSERS, HttptoolsParser

MODEL_KINDS = [
    pytest.param(
        name,
        sorted(info.kinds)[0],
        id=name,
        marks=pytest.mark.skipif(not info.available, reason=f"needs {info.requires}"),
    )
    for name, info in MODELS.items()
]


def ok_sync(request: Request) -> str:
    return "ok"


async def ok(request: Request) -> str:
    return "ok"


def ok_handler_for(kind: str):
    return ok_sync if kind == "sync" else ok


class CrashingParser(HttptoolsParser):
    """A parser with a bug: it raises on a request for /crash-feed or after /crash-resume."""

    __slots__ = ("_crash_on_resume",)

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
    server = serve(ok_handler_for(kind), model=model, fail_on_handler_error=False)
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
