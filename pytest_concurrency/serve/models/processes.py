"""``processes``: N forked worker processes accept from one shared listening socket.

Each worker runs a whole server of its own: thread per connection for a sync handler, an
asyncio loop for an async one. The kernel hands each new connection to one worker, so N
workers use N cores for CPU-bound handlers, each with its own GIL. The parent talks to each
worker over a pipe (stats, stop); a worker whose pipe closes (the parent died) stops too.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar

from pytest_concurrency.serve._app import App, HandlerKind
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


def _worker_main(
    inner: type[Engine], app: App, listener: socket.socket, options: ServeOptions, pipe: _Pipe
) -> None:
    # Ctrl-C reaches the whole process group: let the parent stop us in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    engine = inner("processes", app, listener, options)
    try:
        engine.start()
    except BaseException as error:
        pipe.send(("error", f"{type(error).__name__}: {error}"))
        return
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
        problem = None
        try:
            engine.stop()
        except Exception as error:
            problem = str(error)
        with suppress(OSError):
            pipe.send(("stopped", problem, engine.stats()))


class ProcessesEngine(Engine):
    """N processes, each a full server, sharing one listening socket."""

    kinds: ClassVar[frozenset[HandlerKind]] = frozenset({"sync", "async"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._workers: list[tuple[BaseProcess, _Pipe]] = []
        self._final = EngineStats()
        self._stopped = False

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
        self.listener.setblocking(False)
        for index in range(self.worker_count):
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_worker_main,
                args=(inner, self.app, self.listener, self.options, child_end),
                name=self.thread_name(f"worker-{index + 1}"),
                daemon=True,
            )
            with quiet_fork_warning():
                process.start()
            child_end.close()
            self._workers.append((process, parent_end))
        problems = []
        for process, pipe in self._workers:
            message = pipe.recv() if pipe.poll(30.0) else ("error", "no answer within 30 s")
            if message[0] != "ready":
                problems.append(f"worker {process.pid}: {message[1]}")
        if problems:
            with suppress(ServerStopError):
                self.stop()
            raise ServerStartError("processes server failed to start: " + "; ".join(problems))

    def _ask(self, command: str) -> list[Any]:
        answers = []
        with self._lock:
            for _, pipe in self._workers:
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
        return [process.pid for process, _ in self._workers if process.pid is not None]

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        problems: list[str] = []
        final = EngineStats()
        with self._lock:
            for _, pipe in self._workers:
                with suppress(OSError):
                    pipe.send("stop")
            timeout = self.options.shutdown_timeout + 5.0
            for process, pipe in self._workers:
                try:
                    if pipe.poll(timeout):
                        _, problem, stats = pipe.recv()
                        final.add(stats)
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
        self.listener.close()
        final.connections_open = 0
        self._final = final
        if problems:
            raise ServerStopError("; ".join(problems))
