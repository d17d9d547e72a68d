"""The event-loop models' own thread: a start-up failure reaches the caller, and a loop that
cannot stop is reported with the line it is stuck on, on every loop model."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from pytest_concurrency.serve import Request, Response, ServerStartError, ServerStopError
from pytest_concurrency.serve._app import App
from pytest_concurrency.serve.models import engine_class
from pytest_concurrency.serve.models._base import THREAD_PREFIX, ServeOptions

LOOP_MODELS = ["asyncio", "uvloop", "trio"]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown, so a loop stuck on purpose is let go and its thread ends."""
    event = threading.Event()
    yield event
    event.set()
    for thread in threading.enumerate():
        if thread.name.startswith(THREAD_PREFIX):
            thread.join(10)


@pytest.mark.parametrize("model", LOOP_MODELS)
def test_loop_that_fails_to_start_raises_in_the_caller(model: str) -> None:
    async def handle(request: Request) -> Response:
        return Response(b"")

    listener = socket.socket()
    listener.close()  # the loop's first use of it fails
    engine = engine_class(model)(model, App(handle), listener, ServeOptions())
    before = set(threading.enumerate())
    with pytest.raises(ServerStartError, match=rf"^{model} server failed to start: OSError"):
        engine.start()
    assert set(threading.enumerate()) <= before  # the loop thread has ended


@pytest.mark.allow_loop_lag
@pytest.mark.parametrize("model", LOOP_MODELS)
def test_loop_that_cannot_stop_is_reported_where_it_is_stuck(
    model: str, release: threading.Event
) -> None:
    entered = threading.Event()

    async def handle(request: Request) -> Response:
        entered.set()
        release.wait(30)  # noqa: CC107 - blocks the loop thread: stop() cannot get through
        return Response(b"")

    listener = socket.create_server(("127.0.0.1", 0))
    engine = engine_class(model)(model, App(handle), listener, ServeOptions(shutdown_timeout=0))
    engine.start()
    port = listener.getsockname()[1]
    client = threading.Thread(
        target=lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=30), daemon=True
    )
    client.start()
    assert entered.wait(10)
    with pytest.raises(ServerStopError) as stopped:
        engine.stop()
    release.set()
    client.join(30)
    message = str(stopped.value)
    assert f"the {model} event loop thread" in message
    assert "did not stop within 5 s; it is stuck here:" in message
    assert "release.wait(30)" in message


@pytest.mark.parametrize("model", ["asyncio", "uvloop"])
def test_handler_that_outlives_its_client_and_ignores_cancellation_is_reported_at_stop(
    model: str, release: threading.Event
) -> None:
    entered = threading.Event()
    cancelled = threading.Event()

    async def handle(request: Request) -> Response:
        entered.set()
        # Past the server's shutdown timeout, but it ends: the loop thread can still stop.
        for _ in range(50):
            try:
                await asyncio.sleep(0.02)
            except asyncio.CancelledError:  # the client went away; this handler goes on
                cancelled.set()
        return Response(b"")

    listener = socket.create_server(("127.0.0.1", 0))
    options = ServeOptions(shutdown_timeout=0.2)
    engine = engine_class(model)(model, App(handle), listener, options)
    engine.start()
    try:
        with socket.create_connection(listener.getsockname()[:2], timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert entered.wait(10)
        assert cancelled.wait(10)  # the server cancelled the handler of the closed connection
    finally:
        with pytest.raises(ServerStopError) as stopped:
            engine.stop()
        release.set()
    message = str(stopped.value)
    assert f"1 handler task(s) of the {model} server ignored cancellation for 0.2 s" in message
    # The handler's own line, not only the server's frame that awaits it.
    suspended = [line for line in message.splitlines() if "suspended at" in line]
    assert len(suspended) == 1
    assert "test_loop_engines.py:" in suspended[0]
    assert suspended[0].endswith(": await asyncio.sleep(0.02)")
