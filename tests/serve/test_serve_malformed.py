"""Malformed input gets a 4xx and a closed connection; the server keeps serving everyone else."""

from __future__ import annotations

import re
import socket

import httpx
import pytest
from serve_params import MODEL_KINDS

from fixtures.serve import clean_io

PARSERS = ["httptools", "h11"]


def exchange(url_port: int, payload: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", url_port), timeout=10) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def statuses(reply: bytes) -> list[int]:
    """The status codes of the responses in ``reply``, in order (bodies here are one line)."""
    return [int(code) for code in re.findall(rb"^HTTP/1\.1 (\d{3}) ", reply, re.MULTILINE)]


def handler_for(kind: str):
    return clean_io.handle_sync if kind == "sync" else clean_io.handle


@pytest.mark.parametrize(("model", "kind"), MODEL_KINDS)
def test_malformed_request_gets_400_and_the_server_keeps_serving(serve, model, kind):
    server = serve(handler_for(kind), model=model)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as healthy:
        # A second client, mid-conversation on its own connection, must not notice.
        healthy.sendall(b"GET /?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = exchange(server.port, b"NOT HTTP AT ALL\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert b"Connection: close" in reply
        assert b"malformed request" in reply
        assert healthy.recv(65536).startswith(b"HTTP/1.1 200 OK")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/", params={"ms": 1}).status_code == 200
    assert server.stats().bad_requests == 1


@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize("model", ["threadpool", "asyncio", "trio"])
def test_pipelined_requests_are_answered_in_order(serve, model, http):
    handler = clean_io.handle_sync if model == "threadpool" else clean_io.handle
    server = serve(handler, model=model, http=http)
    requests = b"".join(f"GET /?ms={ms} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for ms in (30, 1, 10))
    reply = exchange(
        server.port, requests + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    bodies = [part.split(b"\r\n\r\n", 1)[1][:20] for part in reply.split(b"HTTP/1.1 200 OK")[1:]]
    assert [b.split(b"\n")[0] for b in bodies] == [
        b"waited 30 ms",
        b"waited 1 ms",
        b"waited 10 ms",
        b"waited 10 ms",
    ]


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_oversized_headers_get_431(serve, http):
    server = serve(clean_io.handle, "asyncio", http=http, max_header_bytes=1024)
    reply = exchange(
        server.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 431 ")


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_oversized_body_gets_413(serve, http):
    server = serve(clean_io.handle_sync, "threads", http=http, max_body_bytes=100)
    reply = exchange(
        server.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n" + b"b" * 500
    )
    assert reply.startswith(b"HTTP/1.1 413 ")


def test_http_1_0_without_keep_alive_is_closed_after_the_response(serve):
    server = serve(clean_io.handle, "uvloop")
    reply = exchange(server.port, b"GET /?ms=1 HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in reply


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_expect_100_continue_is_honoured(serve, http):
    server = serve(lambda request: request.body, "threads", http=http)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"data")
        assert sock.recv(65536).endswith(b"\r\n\r\ndata")


@pytest.mark.parametrize("http", PARSERS)
@pytest.mark.parametrize(("model", "kind"), MODEL_KINDS)
def test_malformed_request_after_valid_ones_gets_400_once_they_are_answered(
    serve, model, kind, http
):
    server = serve(handler_for(kind), model=model, http=http)
    reply = exchange(
        server.port,
        b"GET /?ms=20 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"BLAH\r\n\r\n",
    )
    assert statuses(reply) == [200, 200, 400]
    assert reply.index(b"waited 20 ms") < reply.index(b"waited 1 ms") < reply.index(b" 400 ")
    rejection = reply[reply.index(b"HTTP/1.1 400 ") :]
    assert b"Connection: close" in rejection
    assert b"malformed request" in rejection
    assert server.stats().bad_requests == 1
    # The server goes on: a new connection is served (trio's used to be gone by now).
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/", params={"ms": 1}).status_code == 200
    assert server.stats().requests == 3


@pytest.mark.parametrize("http", PARSERS)
@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", id="1.1-without-host"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", id="1.1-two-hosts"),
        pytest.param(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", id="1.0-two-hosts"),
        pytest.param(b"GET /\r\n\r\n", id="0.9"),
        pytest.param(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", id="2.0"),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            id="length-and-chunked",
        ),
    ],
)
def test_both_parsers_refuse_what_rfc_9112_refuses(serve, http, payload):
    server = serve(clean_io.handle_sync, "threads", http=http)
    reply = exchange(server.port, payload)
    assert statuses(reply) == [400]
    assert b"Connection: close" in reply
    assert server.stats().bad_requests == 1


@pytest.mark.parametrize("http", PARSERS)
def test_http_1_0_without_host_is_served(serve, http):
    server = serve(clean_io.handle_sync, "threads", http=http)
    reply = exchange(server.port, b"GET /?ms=1 HTTP/1.0\r\n\r\n")
    assert statuses(reply) == [200]
    assert reply.endswith(b"waited 1 ms\n")


@pytest.mark.parametrize("http", PARSERS)
@pytest.mark.parametrize("model", ["threads", "asyncio"])
def test_expect_100_continue_over_the_body_limit_gets_413_at_once(serve, model, http):
    handler = clean_io.handle_sync if model == "threads" else clean_io.handle
    server = serve(handler, model, http=http, max_body_bytes=100)
    # The client waits for 100 Continue before sending the body: the 413 must come first.
    reply = exchange(
        server.port,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n",
    )
    assert statuses(reply) == [413]
    assert b"100 Continue" not in reply
    assert server.stats().bad_requests == 1
