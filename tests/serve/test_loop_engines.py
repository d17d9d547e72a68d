"""The event-loop models' own thread: a start-up failure reaches the caller, and a loop that
cannot stop is reported with the line it is stuck on, on every loop model."""

from __future__ import annotations

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
