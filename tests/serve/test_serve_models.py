"""Every model serves real HTTP/1.1 to httpx: bodies, headers, status codes, keep-alive."""

from __future__ import annotations

import httpx
import pytest

from pytest_concurrency.serve import (
    MODELS,
    ModelError,
    Request,
    Response,
    ServeConfigError,
    start_server,
)

# (model, handler kind) for every kind each model runs.
MODEL_KINDS = [
    pytest.param(name, kind, id=f"{name}-{kind}")
    for name, info in MODELS.items()
    for kind in sorted(info.kinds)
]


def echo_sync(request: Request) -> Response:
    if request.path == "/missing":
        return Response("nothing here\n", status=404)
    return Response.json(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "body": request.text,
            "agent": request.headers.get("x-test-agent"),
        }
    )


async def echo_async(request: Request) -> Response:
    return echo_sync(request)


@pytest.mark.parametrize(("model", "kind"), MODEL_KINDS)
def test_every_model_answers_httpx(serve, model, kind):
    server = serve(echo_sync if kind == "sync" else echo_async, model=model)
    with httpx.Client(base_url=server.url) as client:
        first = client.get("/items/a%20b", params={"id": "3"}, headers={"X-Test-Agent": "t"})
        second = client.post("/submit", content="payload")
        missing = client.get("/missing")
    assert first.status_code == 200
    assert first.json() == {
        "method": "GET",
        "path": "/items/a b",
        "query": {"id": "3"},
        "body": "",
        "agent": "t",
    }
    assert second.json()["body"] == "payload"
    assert second.json()["method"] == "POST"
    assert missing.status_code == 404
    assert missing.text == "nothing here\n"
    # Keep-alive: the three requests shared one connection.
    assert server.stats().connections_total == 1
    assert server.stats().requests == 3


def test_handler_may_return_text_or_bytes(serve):
    server = serve(lambda request: "plain" if request.path == "/text" else b"raw", "threads")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/text").text == "plain"
        assert client.get("/bytes").content == b"raw"
        assert client.head("/text").headers["content-length"] == "5"


def test_a_model_that_cannot_run_the_handler_names_the_models_that_can():
    with pytest.raises(ModelError) as raised:
        start_server(echo_async, "threads")
    message = str(raised.value)
    assert "model 'threads' runs sync handlers" in message
    assert "asyncio, uvloop, trio, processes, asyncio+processes" in message


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match="unknown concurrency model 'fibers'; choose from: threads"
    ):
        start_server(echo_sync, "fibers")


def test_servers_listen_only_on_loopback():
    with pytest.raises(ValueError, match="loopback"):
        start_server(echo_sync, "threads", host="0.0.0.0")


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_both_http_parsers_serve(serve, http):
    server = serve(echo_async, "asyncio", http=http)
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/p", params={"q": "1"}).json()["query"] == {"q": "1"}
        assert client.post("/p", content=b"x" * 5000).json()["body"] == "x" * 5000


def test_isolated_server_runs_the_handler_in_its_own_process(serve):
    server = serve("fixtures.serve.clean_io:handle", "asyncio", isolated=True)
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/", params={"ms": "1"}).text == "waited 1 ms\n"
    import os

    assert server.pids[0] != os.getpid()
    assert server.stats().requests == 1


def test_isolated_needs_an_importable_handler(serve):
    with pytest.raises(ValueError, match="'module:function'"):
        serve(lambda request: "x", "threads", isolated=True)


@pytest.mark.parametrize(
    ("handler", "model", "error"),
    [
        ("fixtures.serve.clean_io:handle_sync", "asyncio", ModelError),
        ("fixtures.serve.clean_io:handle", "threads", ModelError),
        ("fixtures.serve.clean_io:no_such_handler", "threads", ServeConfigError),
    ],
)
def test_an_isolated_server_raises_what_an_in_process_one_raises(handler, model, error):
    with pytest.raises(error) as in_process:
        start_server(handler, model)
    with pytest.raises(error) as isolated:
        start_server(handler, model, isolated=True)
    assert type(isolated.value) is type(in_process.value)
    assert str(isolated.value) == str(in_process.value)
