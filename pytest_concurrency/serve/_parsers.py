"""HTTP/1.1 request parsing with a well-kept library: httptools (llhttp, in C) or h11.

Both parsers present the same small interface to the servers: ``feed(data)`` returns the
requests completed by ``data``, ``encode(request, response)`` returns the response bytes and
whether the connection stays open, and ``resume()`` returns pipelined requests that became
available after a response. Neither raises for what a client sends or a handler returns:
malformed input sets ``error`` (a :class:`BadRequest`) once the requests before it have been
returned, so a server answers those in order, then sends the error's response and closes; a
response that cannot be encoded is reported to the parser's ``on_response_error`` and replaced
by a 500 that closes the connection. Both parsers accept the same requests: HTTP/1.0 or
HTTP/1.1 only, at most one ``Host`` header and exactly one in HTTP/1.1 (RFC 9112), a declared
body over the limit refused at once (before any ``100 Continue``).
httptools is the default: it keeps server overhead lowest (docs/benchmarks.md has the numbers);
h11 is pure Python and is kept for comparison and for platforms without httptools wheels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import h11
import httptools

from pytest_concurrency.serve._http import (
    HEAD_CACHE,
    Request,
    Response,
    check_header,
    encode_response,
    error_response_bytes,
    reason_phrase,
)

__all__ = ["PARSERS", "BadRequest", "RequestParser", "ResponseErrorHook", "make_parser_factory"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSED = httptools.HttpRequestParser(None)  # what a closed connection's parser points at
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}
_VERSIONS = frozenset({"1.0", "1.1"})
_CONNECTION_HEADERS = (b"connection", b"proxy-connection")
"""The headers that llhttp reads ``keep-alive`` and ``close`` from."""
_SERVER_ERROR = error_response_bytes(500, "Internal Server Error")
_SERVER_ERROR_HEAD = encode_response(Response(status=500), keep_alive=False, head_only=True)

ResponseErrorHook = Callable[[Request, Exception], None]
"""Called with the request and the exception when its response cannot be encoded."""


class BadRequest(Exception):
    """The client sent something that is not an acceptable HTTP/1.1 request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RequestParser(Protocol):
    """One connection's parser (see the module docstring)."""

    interim: bytes
    """Bytes to send right away (``100 Continue``), emptied by the caller."""
    pauses: bool
    """Whether the parser holds pipelined requests back until the one before is answered
    (then ``resume()`` returns them); when False, ``resume()`` always returns nothing."""
    error: BadRequest | None
    """Set when the input turned out malformed: answer the requests returned so far, then
    send this error's response and close the connection (feeding more changes nothing)."""

    def feed(self, data: bytes) -> list[Request]: ...

    def encode(self, request: Request, response: Response) -> tuple[bytes, bool]: ...

    def resume(self) -> list[Request]: ...

    def close(self) -> None: ...


class _Refused(Exception):
    """Raised in a callback to stop llhttp; the parser's ``_refusal`` says why."""


def _unsupported_version(version: str) -> BadRequest:
    return BadRequest(400, f"malformed request: unsupported HTTP version {version}")


def _host_error(http_version: str, hosts: int) -> BadRequest | None:
    """The error for a request with ``hosts`` Host headers, if it is one (RFC 9112, 3.2)."""
    if hosts > 1:
        return BadRequest(400, "malformed request: more than one Host header")
    if hosts == 0 and http_version == "1.1":
        return BadRequest(400, "malformed request: HTTP/1.1 request without a Host header")
    return None


def _server_error(request: Request) -> bytes:
    """The 500 sent instead of a response that cannot be encoded (it closes the connection)."""
    return _SERVER_ERROR_HEAD if request.method == "HEAD" else _SERVER_ERROR


def _body_too_large() -> BadRequest:
    return BadRequest(413, "request body too large")


class HttptoolsParser:
    """llhttp through httptools: callbacks collect each request as it is parsed."""

    pauses = False

    __slots__ = (
        "_body",
        "_connection_header",
        "_head_size",
        "_headers",
        "_hosts",
        "_max_body",
        "_max_head",
        "_on_response_error",
        "_parser",
        "_ready",
        "_refusal",
        "_url",
        "error",
        "interim",
    )

    def __init__(self, max_head: int, max_body: int, on_response_error: ResponseErrorHook) -> None:
        self._max_head = max_head
        self._max_body = max_body
        self._on_response_error = on_response_error
        self._parser = httptools.HttpRequestParser(self)
        self._ready: list[Request] = []
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._head_size = 0
        self._hosts = 0
        self._connection_header = False
        self._refusal: BadRequest | None = None
        self.error: BadRequest | None = None
        self.interim = b""

    # httptools callbacks (the state is reset when a message completes, not when the next
    # begins: one callback less per request) ----------------------------------------------
    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > self._max_head:
            self._refusal = BadRequest(414, "request target too long")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self._max_head:
            self._refusal = BadRequest(431, "request header fields too large")
            raise _Refused
        size = len(name)
        if size == 4:
            if name == b"Host" or name.lower() == b"host":
                self._hosts += 1
        elif size == 6:
            if name.lower() == b"expect" and value.lower() == b"100-continue":
                self.interim = _CONTINUE
        elif size == 10 or size == 16:
            if name.lower() in _CONNECTION_HEADERS:
                self._connection_header = True
        elif size == 14 and name.lower() == b"content-length" and int(value) > self._max_body:
            # llhttp has checked the digits. Refuse now what the body limit would refuse
            # later, without asking the client for the body first.
            self._refusal = _body_too_large()
            raise _Refused

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        if sum(map(len, self._body)) > self._max_body:
            self._refusal = _body_too_large()
            raise _Refused

    def on_message_complete(self) -> None:
        parser = self._parser
        keep_alive = parser.should_keep_alive()
        if keep_alive and not self._connection_header:
            # llhttp keeps a connection alive without a Connection header only for a version
            # whose numbers are both above 0, and of those it accepts only 1.1; asking for
            # the version costs a sixth of the parse (httptools formats it anew each time).
            version = "1.1"
        else:
            version = parser.get_http_version()
            self._connection_header = False
        hosts = self._hosts
        if hosts != 1 or version != "1.1":  # the usual request costs two comparisons
            if version not in _VERSIONS:
                self._refusal = _unsupported_version(version)
                raise _Refused
            self._refusal = _host_error(version, hosts)
            if self._refusal is not None:
                raise _Refused
        method = parser.get_method()
        body = self._body
        self._ready.append(
            Request(
                "GET" if method == b"GET" else _METHODS.get(method) or method.decode("ascii"),
                self._url.decode("latin-1"),
                self._headers,
                b"".join(body) if body else b"",
                version,
                keep_alive,
            )
        )
        self.interim = b""
        self._url = b""
        self._headers = []
        if body:
            self._body = []
        self._head_size = 0
        self._hosts = 0

    # parser interface ------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Request]:
        while True:
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserUpgrade as upgrade:
                # We do not switch protocols; answer the request as plain HTTP/1.1 (the
                # client must accept that) and go on parsing what followed it.
                offset = upgrade.args[0] if upgrade.args else len(data)
                data = data[offset:]
                if data:
                    continue
            except httptools.HttpParserCallbackError as error:
                self._fail(self._refusal or BadRequest(400, f"malformed request: {error}"))
            except httptools.HttpParserError as error:
                self._fail(BadRequest(400, f"malformed request: {error}"))
            break
        # Requests completed before any error are answered before it.
        ready = self._ready
        if ready:
            self._ready = []
        return ready

    def _fail(self, error: BadRequest) -> None:
        if self.error is None:
            self.error = error
        self.interim = b""

    def encode(self, request: Request, response: Response) -> tuple[bytes, bool]:
        keep_alive = request.keep_alive
        head_only = request.method == "HEAD"
        if response.headers is None and not head_only:
            # The usual response, written out: every response parsed here comes this way.
            head = HEAD_CACHE.get((response.status, response.content_type, keep_alive))
            if head is not None:
                body = response.body
                return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body), keep_alive
        try:
            return encode_response(response, keep_alive, head_only), keep_alive
        except Exception as error:
            self._on_response_error(request, error)
            return _server_error(request), False

    def resume(self) -> list[Request]:
        return []

    def close(self) -> None:
        """Drop the C parser: it holds our callbacks, a cycle the collector would have to break."""
        self._parser = _CLOSED


class H11Parser:
    """h11: a pure-Python HTTP/1.1 state machine that also writes the responses."""

    pauses = True

    def __init__(self, max_head: int, max_body: int, on_response_error: ResponseErrorHook) -> None:
        self._max_head = max_head
        self._max_body = max_body
        self._on_response_error = on_response_error
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head)
        self._start: h11.Request | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self.error: BadRequest | None = None
        self.interim = b""

    def _drain(self) -> list[Request]:
        """The next complete request, if any (h11 pauses after each one until it is answered)."""
        ready: list[Request] = []
        conn = self._conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as error:
                raise BadRequest(error.error_status_hint, f"malformed request: {error}") from None
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return ready
            if isinstance(event, h11.Request):
                version = event.http_version.decode("ascii")
                if version not in _VERSIONS:
                    raise _unsupported_version(version)
                # h11 bounds only incomplete heads; a complete one arriving at once is ours.
                head = len(event.target)
                length = -1  # no Content-Length
                chunked = False
                for name, value in event.headers:
                    head += len(name) + len(value) + 4
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"transfer-encoding":
                        chunked = True
                if head > self._max_head:
                    raise BadRequest(431, "request header fields too large")
                if chunked and length >= 0:
                    # llhttp refuses this too: the two framings could disagree (smuggling).
                    raise BadRequest(
                        400, "malformed request: both Content-Length and Transfer-Encoding"
                    )
                if length > self._max_body:
                    raise _body_too_large()
                self._start = event
                self._body = []
                self._body_size = 0
                if conn.they_are_waiting_for_100_continue:
                    self.interim = (
                        conn.send(
                            h11.InformationalResponse(
                                status_code=100, headers=[], reason=b"Continue"
                            )
                        )
                        or b""
                    )
            elif isinstance(event, h11.Data):
                self._body.append(event.data)
                self._body_size += len(event.data)
                if self._body_size > self._max_body:
                    raise _body_too_large()
            elif isinstance(event, h11.EndOfMessage):
                self.interim = b""
                start = self._start
                assert start is not None
                ready.append(
                    Request(
                        start.method.decode("ascii"),
                        start.target.decode("latin-1"),
                        list(start.headers),
                        b"".join(self._body),
                        start.http_version.decode("ascii"),
                        conn.their_state is not h11.MUST_CLOSE and _h11_keep_alive(start),
                    )
                )
                # h11 pauses after each request until its response is sent.
                return ready
            else:  # ConnectionClosed
                return ready

    def feed(self, data: bytes) -> list[Request]:
        try:
            self._conn.receive_data(data)
            return self._drain()
        except RuntimeError as error:  # data after the client closed its side
            self._fail(BadRequest(400, f"malformed request: {error}"))
        except BadRequest as error:
            self._fail(error)
        return []

    def _fail(self, error: BadRequest) -> None:
        if self.error is None:
            self.error = error
        self.interim = b""

    def encode(self, request: Request, response: Response) -> tuple[bytes, bool]:
        try:
            return self._encode(request, response)
        except Exception as error:
            # h11 refuses to go on after a failed send: close after the 500.
            self._on_response_error(request, error)
            return _server_error(request), False

    def _encode(self, request: Request, response: Response) -> tuple[bytes, bool]:
        conn = self._conn
        # Checked here too, so that both parsers refuse the same responses.
        check_header("Content-Type", response.content_type)
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
        ]
        if response.headers:
            for name, value in response.headers.items():
                check_header(name, value)
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    headers.append((name, value))
        if not request.keep_alive:
            headers.append(("Connection", "close"))
        reason = reason_phrase(response.status).encode("latin-1")
        out = (
            conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
            or b""
        )
        if request.method != "HEAD" and response.body:
            out += conn.send(h11.Data(data=response.body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            return out, True
        return out, False

    def resume(self) -> list[Request]:
        if self.error is None and self._conn.our_state is h11.IDLE:
            try:
                return self._drain()
            except BadRequest as error:
                self._fail(error)
        return []

    def close(self) -> None:
        pass


def _h11_keep_alive(start: h11.Request) -> bool:
    connection = b",".join(value for name, value in start.headers if name == b"connection")
    tokens = {token.strip() for token in connection.lower().split(b",")}
    if start.http_version == b"1.0":
        return b"keep-alive" in tokens
    return b"close" not in tokens


ParserFactory = Callable[[], RequestParser]

PARSERS: dict[str, type[HttptoolsParser] | type[H11Parser]] = {
    "httptools": HttptoolsParser,
    "h11": H11Parser,
}
"""The HTTP parsers a server can use, by the name the ``http=`` option takes."""


def make_parser_factory(
    name: str, max_head: int, max_body: int, on_response_error: ResponseErrorHook
) -> ParserFactory:
    """A callable creating one parser per connection (see :data:`ResponseErrorHook`)."""
    try:
        parser_class = PARSERS[name]
    except KeyError:
        raise ValueError(
            f"unknown HTTP parser {name!r}; choose one of: {', '.join(PARSERS)}"
        ) from None

    def factory() -> RequestParser:
        return parser_class(max_head, max_body, on_response_error)

    return factory
