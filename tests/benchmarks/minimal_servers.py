"""Minimal hand-written HTTP servers, one per concurrency model: the baselines of bench_serve.

Each does the least a keep-alive HTTP/1.1 server of its model can do for the I/O workload:
find the end of each request head, wait ``ms`` milliseconds (from ``?ms=N`` in the request
line) the model's way, write a canned response. No parser library, no request object, no
handler call, no error handling beyond closing the connection. The gap between these and the
real servers is the cost of everything the real ones do. The ``asyncio+processes`` one also
sends a small CPU part of each request to its process pool first, as that model does for
``bench_handlers.offload_io`` (``offload_cpu``), so both sides count the pool workers' CPU.

Run: ``python minimal_servers.py MODEL`` prints the port on stdout and serves until stdin
closes. ``MODEL`` is a model name, or ``blast`` (uvloop, answers at once: a server fast enough
to measure a load generator against).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import selectors
import socket
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import ClassVar

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def wait_ms(head: bytes) -> float:
    """Seconds to wait, from ``?ms=N`` in the request line (10 ms by default)."""
    start = head.find(b"ms=")
    if start < 0:
        return 0.01
    end = start + 3
    while end < len(head) and head[end : end + 1].isdigit():
        end += 1
    return int(head[start + 3 : end]) / 1000.0


def split_heads(buffer: bytes) -> tuple[list[bytes], bytes]:
    heads = []
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return heads, buffer
        heads.append(buffer[:end])
        buffer = buffer[end + 4 :]


def listen() -> socket.socket:
    sock = socket.create_server(("127.0.0.1", 0), backlog=8192)
    print(sock.getsockname()[1], flush=True)
    return sock


def wait_for_stdin_eof() -> None:
    while sys.stdin.buffer.read(1):
        pass


# threads: one OS thread per connection ---------------------------------------------------
def serve_threads(sock: socket.socket) -> None:
    def connection(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                heads, buffer = split_heads(buffer + data)
                for head in heads:
                    time.sleep(wait_ms(head))
                    conn.sendall(RESPONSE)

    def accept() -> None:
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=connection, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    wait_for_stdin_eof()


# threadpool: a selector thread reads, a ThreadPoolExecutor answers ------------------------
def serve_threadpool(sock: socket.socket) -> None:
    pool = ThreadPoolExecutor(max_workers=256)
    selector = selectors.DefaultSelector()
    sock.setblocking(False)
    selector.register(sock, selectors.EVENT_READ, None)
    buffers: dict[socket.socket, bytes] = {}

    def answer(conn: socket.socket, delay: float) -> None:
        time.sleep(delay)
        with contextlib.suppress(OSError):
            conn.sendall(RESPONSE)

    def loop() -> None:
        while True:
            for key, _ in selector.select():
                if key.data is None:
                    try:
                        conn, _ = sock.accept()
                    except BlockingIOError:
                        continue
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conn.setblocking(False)
                    buffers[conn] = b""
                    selector.register(conn, selectors.EVENT_READ, True)
                    continue
                conn = key.fileobj  # type: ignore[assignment]
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(conn)
                    del buffers[conn]
                    conn.close()
                    continue
                heads, buffers[conn] = split_heads(buffers[conn] + data)
                for head in heads:
                    pool.submit(answer, conn, wait_ms(head))

    threading.Thread(target=loop, daemon=True).start()
    wait_for_stdin_eof()


# asyncio / uvloop / asyncio+processes: a Protocol, a task per request ---------------------
class _Minimal(asyncio.Protocol):
    tasks: ClassVar[set[asyncio.Task[None]]] = set()  # the loop keeps only weak references

    def __init__(self, immediate: bool = False) -> None:
        self.buffer = b""
        self.immediate = immediate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        heads, self.buffer = split_heads(self.buffer + data)
        for head in heads:
            if self.immediate:
                self.transport.write(RESPONSE)
            else:
                task = asyncio.get_running_loop().create_task(self.respond(wait_ms(head)))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def respond(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self.transport.is_closing():
            self.transport.write(RESPONSE)


def serve_asyncio(
    sock: socket.socket,
    loop_factory: object = None,
    immediate: bool = False,
    protocol: type[_Minimal] = _Minimal,
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(lambda: protocol(immediate), sock=sock, backlog=8192)
        await loop.run_in_executor(None, wait_for_stdin_eof)

    if loop_factory is not None:
        loop = loop_factory()  # type: ignore[operator]
        loop.run_until_complete(main())
    else:
        asyncio.run(main())


def serve_uvloop(sock: socket.socket, immediate: bool = False) -> None:
    import uvloop

    serve_asyncio(sock, uvloop.new_event_loop, immediate)


def ok_body() -> bytes:
    """The CPU part of a request: runs in a pool process, as offload_cpu's functions do."""
    return b"ok"


class _Offloading(_Minimal):
    """Sends each request's CPU part to the process pool, then waits, as the real model does
    for an async handler that calls ``offload_cpu``."""

    pool: ClassVar[ProcessPoolExecutor | None] = None

    async def respond(self, delay: float) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, ok_body)
        await asyncio.sleep(delay)
        if not self.transport.is_closing():
            self.transport.write(RESPONSE)


def serve_asyncio_processes() -> None:
    # Forked workers, one per CPU, all running before the port is announced: as in the real
    # model, no load ever waits for (or pays for) their start.
    pool = ProcessPoolExecutor(
        max_workers=os.cpu_count(), mp_context=multiprocessing.get_context("fork")
    )
    pool.submit(ok_body).result()
    _Offloading.pool = pool
    serve_asyncio(listen(), protocol=_Offloading)
    pool.shutdown()


# trio: a task per connection ------------------------------------------------------------
def serve_trio(sock: socket.socket) -> None:
    import trio

    async def connection(conn: trio.socket.SocketType) -> None:
        buffer = b""
        with conn:
            while True:
                data = await conn.recv(65536)
                if not data:
                    return
                heads, buffer = split_heads(buffer + data)
                for head in heads:
                    await trio.sleep(wait_ms(head))
                    await conn.send(RESPONSE)

    async def main() -> None:
        listener = trio.socket.from_stdlib_socket(sock)
        async with trio.open_nursery() as nursery:

            async def accept() -> None:
                while True:
                    conn, _ = await listener.accept()
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    nursery.start_soon(connection, conn)

            nursery.start_soon(accept)
            await trio.to_thread.run_sync(wait_for_stdin_eof)
            nursery.cancel_scope.cancel()

    trio.run(main)


# processes: N forked workers, each a minimal asyncio server on its own SO_REUSEPORT socket,
# so the kernel spreads connections over the workers (a single shared listening socket lets
# whichever worker wakes first take a whole burst, which is cheaper but leaves workers idle).
def serve_processes(port: int) -> None:
    children = []
    for _ in range(os.cpu_count() or 1):
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(_child(port))
            finally:
                os._exit(0)
        children.append(pid)
    time.sleep(0.5)  # the workers are listening
    print(port, flush=True)
    wait_for_stdin_eof()
    for pid in children:
        os.kill(pid, 15)
        os.waitpid(pid, 0)


def _reuseport_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


async def _child(port: int) -> None:
    sock = _reuseport_socket(port)
    sock.listen(8192)
    loop = asyncio.get_running_loop()
    await loop.create_server(_Minimal, sock=sock, backlog=8192)
    await asyncio.Event().wait()


SERVERS = {
    "threads": serve_threads,
    "threadpool": serve_threadpool,
    "asyncio": serve_asyncio,
    "uvloop": serve_uvloop,
    "trio": serve_trio,
    "blast": lambda sock: serve_uvloop(sock, immediate=True),
}


if __name__ == "__main__":
    if sys.argv[1] == "processes":
        reserved = _reuseport_socket(0)  # bound, never listening: it only holds the port
        serve_processes(reserved.getsockname()[1])
    elif sys.argv[1] == "asyncio+processes":
        serve_asyncio_processes()
    else:
        SERVERS[sys.argv[1]](listen())
