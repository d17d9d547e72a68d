"""``processes``: N forked worker processes, each a whole server with its own GIL.

Each worker runs thread per connection for a sync handler, or an asyncio loop for an async
one. The parent accepts every connection and hands it to the next worker in turn over a Unix
socket (``SCM_RIGHTS``), as Node's cluster module does: with a listening socket shared by all
workers, whichever worker wakes first takes a whole burst of connections and the others idle,
which on a busy machine leaves most of the work on one core. The parent talks to each worker
over a pipe (stats, stop); a worker whose pipe closes (the parent died) stops too.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar

from pytest_concurrency.serve._app import App, HandlerKind
from pytest_concurrency.serve._watch import Findings, watching
from pytest_concurrency.serve.models._acceptor import Acceptor
from pytest_concurrency.serve.models._base import (
    Engine,
    EngineStats,
    ServeOptions,
    ServerStartError,
    ServerStopError,
)

__all__ = ["ProcessesEngine", "fork_context", "quiet_fork_warning"]

_Pipe = multiprocessing.connection.Connection


def fork_context() -> Any:
    """The ``fork`` multiprocessing context: workers inherit the handler, closures included."""
    if "fork" not in multiprocessing.get_all_start_methods():
        raise ServerStartError(
            "the processes and asyncio+processes models need os.fork(), which this platform "
            "lacks; use threads, threadpool, asyncio, uvloop or trio"
        )
    return multiprocessing.get_context("fork")


@contextmanager
def quiet_fork_warning() -> Iterator[None]:
    """Python 3.12+ warns when forking a multi-threaded process (pytest always is one).

    The children only run the server they were forked for, never code that could hold a lock
    of another thread, so the warning does not apply.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning
        )
        yield


def _receive_connections(engine: Engine, channel: socket.socket) -> None:
    """Worker side: serve every connection the parent sends, until the channel closes."""
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(channel, 1, 1)
        except OSError:
            return
        if not message:
            return
        for fd in fds:
            engine.adopt(socket.socket(fileno=fd))


def _worker_main(
    inner: type[Engine],
    app: App,
    options: ServeOptions,
    channel: socket.socket,
    pipe: _Pipe,
    inherited: list[Any],
) -> None:
    # Ctrl-C reaches the whole process group: let the parent stop us in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Close what fork copied from the parent: the listener, the other workers' pipes and our
    # own pipe's parent end (kept open here, it would hide the parent's death from us).
    for resource in inherited:
        with contextlib.suppress(OSError):
            resource.close()
    # The test process cannot see into this one: watch its loop and what its handlers start
    # here, and send the findings back with the final stats.
    owner = f"the processes server (worker process {os.getpid()})"
    with watching(options.watch, owner) as findings:
        stopped = _serve_in_worker(inner, app, options, channel, pipe)
    if stopped is not None:
        with contextlib.suppress(OSError):
            pipe.send(("stopped", *stopped, findings))


def _serve_in_worker(
    inner: type[Engine], app: App, options: ServeOptions, channel: socket.socket, pipe: _Pipe
) -> tuple[str | None, EngineStats] | None:
    """Serve until the parent says stop; the stop problem and final stats (None: no start)."""
    engine = inner("processes", app, None, options)
    try:
        engine.start()
    except BaseException as error:
        pipe.send(("error", f"{type(error).__name__}: {error}"))
        return None
    receiver = threading.Thread(
        target=_receive_connections,
        args=(engine, channel),
        name=engine.thread_name("receiver"),
        daemon=True,
    )
    receiver.start()
    pipe.send(("ready", os.getpid()))
    try:
        while True:
            try:
                command = pipe.recv()
            except (EOFError, OSError):
                break
            if command == "stats":
                pipe.send(("stats", engine.stats()))
            elif command == "reset":
                engine.reset_peaks()
                pipe.send(("ok", None))
            else:
                break
    finally:
        with contextlib.suppress(OSError):
            channel.shutdown(socket.SHUT_RDWR)
        receiver.join(5.0)
        channel.close()
        problem = None
        try:
            engine.stop()
        except Exception as error:
            problem = str(error)
    return problem, engine.stats()


class ProcessesEngine(Engine):
    """N processes, each a full server; the parent deals connections out in turn."""

    kinds: ClassVar[frozenset[HandlerKind]] = frozenset({"sync", "async"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._workers: list[tuple[BaseProcess, _Pipe, socket.socket]] = []
        self._final = EngineStats()
        self._stopped = False
        self._acceptor: Acceptor | None = None
        self._channels: Iterator[socket.socket] = iter(())
        self._findings = Findings()

    @property
    def worker_count(self) -> int:
        return self.options.workers or os.cpu_count() or 1

    def _inner_engine(self) -> type[Engine]:
        if self.app.kind == "sync":
            from pytest_concurrency.serve.models.threads import ThreadsEngine

            return ThreadsEngine
        from pytest_concurrency.serve.models.asyncio_loop import AsyncioEngine

        return AsyncioEngine

    def start(self) -> None:
        context = fork_context()
        inner = self._inner_engine()
        for index in range(self.worker_count):
            parent_end, child_end = context.Pipe()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            inherited: list[Any] = [self.bound_listener]
            inherited += [parent_end, ours]
            for _, other_pipe, other_channel in self._workers:
                inherited += [other_pipe, other_channel]
            process = context.Process(
                target=_worker_main,
                args=(inner, self.app, self.options, theirs, child_end, inherited),
                name=self.thread_name(f"worker-{index + 1}"),
                daemon=True,
            )
            with quiet_fork_warning():
                process.start()
            child_end.close()
            theirs.close()
            self._workers.append((process, parent_end, ours))
        problems = []
        for process, pipe, _ in self._workers:
            message = pipe.recv() if pipe.poll(30.0) else ("error", "no answer within 30 s")
            if message[0] != "ready":
                problems.append(f"worker {process.pid}: {message[1]}")
        if problems:
            with contextlib.suppress(ServerStopError):
                self.stop()
            raise ServerStartError("processes server failed to start: " + "; ".join(problems))
        self._channels = itertools.cycle([channel for _, _, channel in self._workers])
        self._acceptor = Acceptor(self.bound_listener, self._deal, self.thread_name("acceptor"))
        self._acceptor.start()

    def _deal(self, conn: socket.socket) -> None:
        """Hand a connection to the next worker (the parent's copy is closed)."""
        # OSError: that worker is gone; the client sees a reset.
        with conn, contextlib.suppress(OSError):
            socket.send_fds(next(self._channels), [b"c"], [conn.fileno()])

    def _ask(self, command: str) -> list[Any]:
        answers = []
        with self._lock:
            for _, pipe, _ in self._workers:
                try:
                    pipe.send(command)
                    if pipe.poll(5.0):
                        answers.append(pipe.recv()[1])
                except (OSError, EOFError):
                    continue
        return answers

    def stats(self) -> EngineStats:
        if self._stopped:
            return self._final
        total = EngineStats()
        for stats in self._ask("stats"):
            total.add(stats)
        return total

    def reset_peaks(self) -> None:
        self._ask("reset")

    def loop_lag_max_ms(self) -> float | None:
        return self.stats().loop_lag_max_ms

    def child_pids(self) -> list[int]:
        return [process.pid for process, _, _ in self._workers if process.pid is not None]

    def findings(self) -> Findings:
        return self._findings

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._acceptor is not None:
            self._acceptor.stop()
        self.bound_listener.close()
        problems: list[str] = []
        final = EngineStats()
        with self._lock:
            for _, pipe, channel in self._workers:
                channel.close()
                with contextlib.suppress(OSError):
                    pipe.send("stop")
            timeout = self.options.shutdown_timeout + 5.0
            for process, pipe, _ in self._workers:
                try:
                    if pipe.poll(timeout):
                        _, problem, stats, findings = pipe.recv()
                        final.add(stats)
                        self._findings.add(findings, f"worker process {process.pid}: ")
                        if problem:
                            problems.append(f"worker {process.pid}: {problem}")
                except (OSError, EOFError):
                    pass
                process.join(5.0)
                if process.is_alive():
                    problems.append(f"worker {process.pid} did not exit; killed it")
                    process.kill()
                    process.join(5.0)
                pipe.close()
        final.connections_open = 0
        self._final = final
        if problems:
            raise ServerStopError("; ".join(problems))
