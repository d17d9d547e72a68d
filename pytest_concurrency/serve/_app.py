"""The user's handler as the servers see it: its kind, how to call it, what went wrong.

Every model shares one :class:`App`: it knows whether the handler is ``def`` or ``async def``,
turns what the handler returns into a :class:`Response`, and turns an exception into a 500
response while keeping the traceback, so the fixture can fail the test with it. A response
that cannot be encoded counts as the handler's failure too; a failure of the server's own
connection code is recorded the same way (that connection is closed, the server goes on).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pytest_concurrency.serve._http import Request, Response

if TYPE_CHECKING:
    from pytest_concurrency.serve._parsers import ParserFactory

__all__ = [
    "App",
    "Handler",
    "HandlerError",
    "HandlerKind",
    "ServeConfigError",
    "coerce_response",
    "handler_kind",
    "resolve_handler",
]

HandlerKind = Literal["sync", "async"]
HandlerResult = Response | bytes | str
Handler = Callable[[Request], HandlerResult] | Callable[[Request], Awaitable[HandlerResult]]

_MAX_RECORDED_ERRORS = 20


class ServeConfigError(ValueError):
    """A server or load option is wrong; the message says what to use instead."""


@dataclass(frozen=True)
class HandlerError:
    """An exception raised by the handler while serving ``request``."""

    request: str
    """The request line, such as ``GET /items?id=3`` (empty if none was read)."""
    traceback: str
    """The formatted traceback."""
    summary: str = ""
    """What failed, when it was not the handler call itself."""

    def format(self) -> str:
        summary = self.summary or f"handler raised while serving {self.request}"
        return f"{summary}:\n{self.traceback.rstrip()}"


def handler_kind(handler: Callable[..., Any]) -> HandlerKind:
    """``"async"`` for ``async def`` handlers (also behind ``partial``), else ``"sync"``."""
    target: Any = handler
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.iscoroutinefunction(target):
        return "async"
    call = getattr(target, "__call__", None)  # noqa: B004 - callable instances
    if not inspect.isfunction(target) and call is not None and inspect.iscoroutinefunction(call):
        return "async"
    return "sync"


def resolve_handler(spec: str | Callable[..., Any]) -> Callable[..., Any]:
    """Return the handler named by ``"package.module:function"`` (or ``spec`` if callable)."""
    if callable(spec):
        return spec
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ServeConfigError(
            f"handler must be a callable or a 'module:function' string, got {spec!r}"
        )
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ServeConfigError(f"cannot import handler {spec!r}: {error}") from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ServeConfigError(
                f"cannot find handler {spec!r}: module {module_name!r} has no {attribute!r}"
            ) from None
    if not callable(target):
        raise ServeConfigError(f"handler {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


def coerce_response(result: object) -> Response:
    """What handlers may return: a :class:`Response`, ``bytes`` or ``str``."""
    if isinstance(result, Response):
        return result
    if isinstance(result, (bytes, bytearray, memoryview, str)):
        return Response(result if isinstance(result, str) else bytes(result))
    raise TypeError(f"handler returned {type(result).__name__}; return a Response, bytes or str")


class App:
    """The handler plus everything shared by the connections of one server."""

    def __init__(
        self,
        handler: Callable[..., Any],
        *,
        http: str = "httptools",
        max_head: int = 64 * 1024,
        max_body: int = 1024 * 1024,
    ) -> None:
        self.handler = handler
        self.kind: HandlerKind = handler_kind(handler)
        self.http = http
        # Imported here: the parsers (h11, httptools) are only needed once a server starts.
        from pytest_concurrency.serve._parsers import make_parser_factory

        self.new_parser: ParserFactory = make_parser_factory(
            http, max_head, max_body, self.response_failure
        )
        self._errors: list[HandlerError] = []
        self._error_count = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The handler's qualified name, for messages."""
        handler: Any = self.handler
        while isinstance(handler, functools.partial):
            handler = handler.func
        module = getattr(handler, "__module__", None) or "?"
        qualname = getattr(handler, "__qualname__", None) or type(handler).__qualname__
        return f"{module}:{qualname}"

    def failure(self, request: Request, error: BaseException | str) -> Response:
        """Record a handler failure and return the 500 response to send."""
        text = error if isinstance(error, str) else _format(error)
        self.record_error(HandlerError(f"{request.method} {request.target}", text))
        return Response("Internal Server Error\n", status=500)

    def response_failure(self, request: Request, error: Exception) -> None:
        """Record that the handler's response to ``request`` could not be encoded."""
        line = f"{request.method} {request.target}"
        self.record_error(
            HandlerError(
                line,
                _format(error),
                f"the handler's response to {line} cannot be sent (the client got a 500)",
            )
        )

    def connection_failure(self, error: Exception, model: str) -> None:
        """Record an exception that escaped a connection of the ``model`` server.

        Only a bug in the server can get here; the caller closes that one connection.
        """
        self.record_error(
            HandlerError(
                "",
                _format(error),
                f"the {model} server failed on a connection and closed it (a bug in "
                "pytest-concurrency-guard, not in the handler)",
            )
        )

    def record_error(self, error: HandlerError) -> None:
        with self._lock:
            self._error_count += 1
            if len(self._errors) < _MAX_RECORDED_ERRORS:
                self._errors.append(error)

    @property
    def errors(self) -> list[HandlerError]:
        """The first handler failures (at most 20)."""
        with self._lock:
            return list(self._errors)

    @property
    def error_count(self) -> int:
        """How many requests made the handler fail (raise, or return what cannot be sent)."""
        return self._error_count

    def call_sync(self, request: Request) -> Response:
        """Run a sync handler; exceptions become a recorded 500."""
        try:
            result = self.handler(request)
            return result if type(result) is Response else coerce_response(result)
        except Exception as error:
            return self.failure(request, error)


def _format(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))
