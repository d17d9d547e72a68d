"""HTTP/1.1 messages as handlers see them: :class:`Request` in, :class:`Response` out.

Both are deliberately small. A request keeps its raw header list and decodes it into a
dictionary only when a handler asks, so serving a request that nobody inspects costs little.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = [
    "Request",
    "Response",
    "check_header",
    "encode_response",
    "error_response_bytes",
    "reason_phrase",
]


class Request:
    """One HTTP request received by a server.

    Attributes: ``method`` (``"GET"``), ``target`` (the raw request target, ``"/a%20b?x=1"``),
    ``body`` (bytes), ``http_version`` (``"1.1"``) and ``keep_alive`` (whether the client keeps
    the connection open after the response). ``path``, ``query`` and ``headers`` are decoded on
    first use.
    """

    __slots__ = (
        "_headers",
        "body",
        "http_version",
        "keep_alive",
        "method",
        "raw_headers",
        "target",
    )

    def __init__(
        self,
        method: str,
        target: str,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        http_version: str = "1.1",
        keep_alive: bool = True,
    ) -> None:
        self.method = method
        self.target = target
        self.raw_headers = raw_headers
        self.body = body
        self.http_version = http_version
        self.keep_alive = keep_alive
        self._headers: dict[str, str] | None = None

    @property
    def path(self) -> str:
        """The percent-decoded path, without the query string."""
        return unquote(self.target.partition("?")[0])

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (the last value wins when a name repeats)."""
        return dict(parse_qsl(self.target.partition("?")[2], keep_blank_values=True))

    @property
    def headers(self) -> dict[str, str]:
        """Headers with lower-case names; repeated headers are joined with ``", "``."""
        if self._headers is None:
            headers: dict[str, str] = {}
            for raw_name, raw_value in self.raw_headers:
                name = raw_name.decode("latin-1").lower()
                value = raw_value.decode("latin-1")
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self._headers = headers
        return self._headers

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def __getstate__(self) -> tuple[Any, ...]:
        return (
            self.method,
            self.target,
            self.raw_headers,
            self.body,
            self.http_version,
            self.keep_alive,
        )

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} HTTP/{self.http_version}>"


class Response:
    """What a handler returns: ``Response("hello")``, ``Response(b"...", status=404)``.

    A ``str`` body is encoded as UTF-8. ``headers`` adds or overrides headers (names and
    values are ASCII text); the server always sets ``Content-Length`` itself. A response the
    server cannot send (a header value with a line break or a non-ASCII character, a status
    outside 200-999) counts as the handler's failure: the client gets a 500. Handlers may
    also return plain ``bytes`` or ``str``, which mean ``Response(body)``.
    """

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        body: bytes | str = b"",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        self.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.status = status
        self.content_type = content_type
        self.headers: dict[str, str] | None = None
        if headers:
            self.headers = {}
            for name, value in headers.items():
                if name.lower() == "content-type":
                    self.content_type = value
                else:
                    self.headers[name] = value

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        """A JSON response."""
        return cls(json.dumps(data), status=status, content_type="application/json")

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.body, self.status, self.headers, self.content_type)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.body, self.status, self.headers, self.content_type = state

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status`` (``"Unknown"`` for unregistered codes)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# What h11 accepts in a header given as text, so both parsers refuse the same responses: a
# token for the name; for the value, ASCII without control characters other than tab, and no
# white space at either end.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"(?:[!-~]+(?:[ \t]+[!-~]+)*)?")
_SERVER_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})
"""Headers the server writes itself; a handler's are dropped."""


def check_header(name: object, value: object) -> None:
    """Raise if ``name: value`` cannot be sent as an HTTP/1.1 header line."""
    if type(name) is not str or type(value) is not str:
        raise TypeError(f"response header names and values must be str, got {name!r}: {value!r}")
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"invalid response header name {name!r}")
    if not _FIELD_VALUE.fullmatch(value):
        raise ValueError(
            f"invalid value for response header {name!r}: {value!r} (ASCII only, without "
            "control characters or white space at either end)"
        )


HEAD_CACHE: dict[tuple[int, str, bool], bytes] = {}
"""The status line and the headers every response carries, by ``(status, content type,
keep-alive)``: a response whose head is here (it was valid) and that adds no headers of its
own is one bytes formatting operation (the parsers' ``encode`` does that itself)."""


def _head(status: int, content_type: str, keep_alive: bool) -> bytes:
    key = (status, content_type, keep_alive)
    head = HEAD_CACHE.get(key)
    if head is None:
        # Checked once per distinct head: a cached one was valid.
        if type(status) is not int or not 200 <= status <= 999:
            raise ValueError(f"response status must be an int from 200 to 999, not {status!r}")
        check_header("Content-Type", content_type)
        connection = "keep-alive" if keep_alive else "close"
        head = (
            f"HTTP/1.1 {status} {reason_phrase(status)}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Connection: {connection}\r\n"
        ).encode("latin-1")
        if len(HEAD_CACHE) < 256:
            HEAD_CACHE[key] = head
    return head


def encode_response(response: Response, keep_alive: bool, head_only: bool = False) -> bytes:
    """Serialise ``response`` as HTTP/1.1 bytes (``head_only`` for a HEAD request)."""
    head = _head(response.status, response.content_type, keep_alive)
    body = response.body
    if response.headers:
        lines = []
        for name, value in response.headers.items():
            check_header(name, value)
            if name.lower() not in _SERVER_HEADERS:
                lines.append(f"{name}: {value}\r\n")
        head += "".join(lines).encode("ascii")
    if head_only:
        return b"%sContent-Length: %d\r\n\r\n" % (head, len(body))
    return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)


def error_response_bytes(status: int, message: str) -> bytes:
    """A complete response that closes the connection, for requests the server rejects."""
    return encode_response(Response(message + "\n", status=status), keep_alive=False)
