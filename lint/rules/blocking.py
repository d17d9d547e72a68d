"""CC1xx: calls that block the event loop, made in async code.

An ``async def`` runs on the event loop's thread. While one of its calls blocks that thread
(sleeping, waiting for a socket, a file, a lock or a child process), no other task runs:
every request the server is handling stalls behind it. These rules report such calls made
directly in the body of an ``async def`` (not in a nested ``def`` or ``lambda``, and not
when the blocking function is passed by reference to ``asyncio.to_thread`` and friends).
They also report calls to the project's own sync functions that end up blocking, naming
the chain of calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from concurrency_lint.catalogue import CALL, in_worker_thread, public_name
from concurrency_lint.rules.base import (
    SAFE,
    BlockingCall,
    Example,
    Fix,
    RawFinding,
    Rule,
    RuleContext,
    display,
)


class BlockingCallRule(Rule):
    """Shared logic: report the blocking calls of this rule's code."""

    def check(self, context: RuleContext) -> Iterator[RawFinding]:
        for blocking in context.blocking_calls:
            if blocking.entry.code == self.code:
                yield self.finding(context, blocking)

    def finding(self, context: RuleContext, blocking: BlockingCall) -> RawFinding:
        call, entry, chain = blocking.call, blocking.entry, blocking.chain
        framework = context.framework_of(call)
        fix_text = entry.fix.get(framework) or entry.fix["asyncio"]
        if chain is None:
            fix_text = fix_text.replace(CALL, call.spelling)
            message = (
                f"{display(call, context.resolved(call.target or ''))} blocks the event loop "
                f"while it {entry.doing}, so no other "
                f"task runs meanwhile; use {fix_text}"
            )
            return RawFinding(self.code, call.anchor, message, self.fix_for(blocking, framework))
        helper = call.spelling
        offload = in_worker_thread(helper)[framework]
        last = chain.steps[-1]
        fix_text = fix_text.replace(CALL, last.call.spelling)
        leaf = public_name(chain.leaf)
        message = (
            f"`{helper}()` blocks the event loop: it {entry.doing} through the project's "
            f"own sync code ({chain.describe('{0}')}); make that code async (use {fix_text} "
            f"instead of `{leaf}`), or call it in a worker thread: {offload}"
        )
        return RawFinding(self.code, call.anchor, message, None, ((last.path, last.call.anchor),))

    def fix_for(self, blocking: BlockingCall, framework: str) -> Fix | None:
        """The autofix for a direct blocking call, if the rule has one."""
        return None


class BlockingSleep(BlockingCallRule):
    """Blocking sleep in async code (``time.sleep``).

    ``time.sleep`` puts the whole event loop to sleep, not just the task that calls it:
    every other task waits too. Sleep with the framework's awaitable sleep instead
    (``asyncio.sleep``, ``trio.sleep`` or ``anyio.sleep``, depending on the framework the
    module imports). The fix is safe: ``time.sleep(x)`` becomes ``await asyncio.sleep(x)``
    (or the trio / anyio equivalent). The module's own name for the framework is used
    (``import asyncio as aio`` gives ``aio.sleep``, an import in ``try: ... except
    ImportError`` counts); otherwise the import is added. Where a parameter or a local
    variable has the module's name, or the statement is in a class body inside the function,
    no fix is offered; nor for arguments other than one positional delay
    (``time.sleep(secs=1)`` fails already, and what ``*delays`` holds is not known).
    """

    code = "CC101"
    name = "blocking-sleep"
    fix_safety = SAFE
    VALID = (
        """
import asyncio
import time

async def poll():
    await asyncio.sleep(1)

def sync_poll():
    time.sleep(1)
""",
        """
import time
import trio

async def main():
    await trio.to_thread.run_sync(time.sleep, 1)
    await trio.to_thread.run_sync(lambda: time.sleep(1))
""",
    )
    INVALID = (
        Example(
            """
import asyncio
import time

async def poll():
    time.sleep(1)  # error: CC101
""",
            fixed="""
import asyncio
import time

async def poll():
    await asyncio.sleep(1)  # error: CC101
""",
        ),
        Example(
            """
from time import sleep as nap
import trio

async def poll(delay):
    nap(delay)  # error: CC101
""",
            fixed="""
from time import sleep as nap
import trio

async def poll(delay):
    await trio.sleep(delay)  # error: CC101
""",
        ),
        """
import time

def backoff(attempt):
    time.sleep(2 ** attempt)

async def fetch_with_retry(attempt):
    backoff(attempt)  # error: CC101
""",
    )

    def fix_for(self, blocking: BlockingCall, framework: str) -> Fix | None:
        call = blocking.call
        if call.usage != "dropped" or call.target != "time.sleep" or call.nested_scope:
            return None  # (``await`` in a class body nested in the function is an error)
        name = call.framework_names.get(framework)
        if name is None:
            return None  # the module's name is taken there (a parameter called ``trio``)
        return Fix("async-sleep", SAFE, framework, name)


class BlockingSubprocess(BlockingCallRule):
    """Subprocess run and waited for in async code.

    ``subprocess.run``, ``check_output``, ``os.system``, ``os.popen``, ``os.wait*`` and
    ``os.spawn*`` wait for the child process with the event loop's thread, and so do
    ``Popen.wait()`` and ``Popen.communicate()``. ``subprocess.Popen`` itself does not wait
    for the child, but it starts it on the event loop's thread (fork and exec, which take
    milliseconds in a big process), so it is reported too, once per expression:
    ``Popen(args).wait()`` is one finding. Use the framework's subprocess support:
    ``asyncio.create_subprocess_exec``, ``trio.run_process`` or ``anyio.run_process``.
    """

    code = "CC102"
    name = "blocking-subprocess"
    VALID = (
        """
import asyncio

async def list_files():
    process = await asyncio.create_subprocess_exec("ls", stdout=asyncio.subprocess.PIPE)
    return await process.communicate()
""",
        """
import subprocess

def list_files():
    return subprocess.run(["ls"], check=True)
""",
    )
    INVALID = (
        """
import os
import subprocess as sp

async def deploy():
    sp.run(["make", "deploy"], check=True)  # error: CC102
    output = sp.check_output(["git", "rev-parse", "HEAD"])  # error: CC102
    os.system("sync")  # error: CC102
    process = sp.Popen(["sleep", "1"])  # error: CC102
    process.wait()  # error: CC102
""",
    )


class BlockingFileIO(BlockingCallRule):
    """File system I/O in async code.

    ``open()``, ``pathlib.Path.read_text`` and friends, the ``os`` and ``os.path`` calls
    that touch the disk (``os.path.exists``, ``os.stat``, ``os.listdir``; not the pure
    string functions like ``os.path.join``) and ``shutil`` wait for the disk with the event
    loop's thread; on a network file system or a busy disk that takes milliseconds to
    seconds. Reads and writes on a file opened elsewhere (in ``__init__``, at module level)
    are reported too; a file opened in the same function or expression
    (``open(path).read()``) is reported once, where it is opened; an archive opened over
    an in-memory buffer (``zipfile.ZipFile(io.BytesIO(data))``, ``tarfile.open(fileobj=buf)``
    with ``buf = io.BytesIO()``) is not reported. Generators
    (``os.walk``, ``Path.glob``, ``Path.iterdir``) are reported where async code iterates
    them, not where one is made to be iterated in a worker thread. Use ``trio.Path`` /
    ``trio.open_file``, ``anyio.Path`` / ``anyio.open_file``, or, with asyncio,
    ``asyncio.to_thread`` around the file work.
    """

    code = "CC103"
    name = "blocking-file-io"
    VALID = (
        """
import os.path
import anyio

async def load(name):
    path = os.path.join("data", name)
    return await anyio.Path(path).read_text()
""",
        """
import asyncio
from pathlib import Path

async def load(path: Path):
    return await asyncio.to_thread(path.read_text)
""",
    )
    INVALID = (
        """
import os
from pathlib import Path

async def load(name):
    with open(name) as handle:  # error: CC103
        data = handle.read()
    if os.path.exists(name + ".bak"):  # error: CC103
        os.remove(name + ".bak")  # error: CC103
    Path(name).write_text(data)  # error: CC103
    config = (Path(__file__).parent / "config.toml").read_text()  # error: CC103
    return data, config
""",
        """
from pathlib import Path

async def load(path: Path):
    return path.read_bytes()  # error: CC103
""",
        """
import io

TRACE = open("trace.log", "a")

class AuditLog:
    def __init__(self, path):
        self.handle = open(path, "a")

    async def record(self, line: str, memory: io.StringIO):
        self.handle.write(line)  # error: CC103
        TRACE.flush()  # error: CC103
        memory.write(line)  # in memory: not file I/O
""",
    )


class BlockingNetworkCall(BlockingCallRule):
    """Blocking socket, DNS or mail/FTP call in async code.

    A blocking socket's ``connect``, ``accept``, ``recv`` and ``send``,
    ``socket.create_connection``, ``socket.getaddrinfo`` and ``gethostbyname`` (DNS), and
    ``smtplib`` / ``ftplib`` all wait for the network with the event loop's thread. Use the
    framework's streams (``asyncio.open_connection``, ``trio.open_tcp_stream``,
    ``anyio.connect_tcp``) and its ``getaddrinfo``.
    """

    code = "CC104"
    name = "blocking-network-call"
    VALID = (
        """
import asyncio

async def ping(host):
    reader, writer = await asyncio.open_connection(host, 80)
    writer.write(b"ping")
    await writer.drain()
    return await reader.read(4)
""",
    )
    INVALID = (
        """
import socket

async def ping(host):
    address = socket.gethostbyname(host)  # error: CC104
    sock = socket.create_connection((address, 80))  # error: CC104
    sock.sendall(b"ping")  # error: CC104
    return sock.recv(4)  # error: CC104
""",
    )


class BlockingHttpClient(BlockingCallRule):
    """Synchronous HTTP client in async code.

    ``requests``, ``httpx``'s sync API (``httpx.get``, ``httpx.Client``), ``urllib3``,
    ``urllib.request`` and ``http.client`` wait for the whole HTTP exchange with the event
    loop's thread. Use an async client: ``httpx.AsyncClient`` (asyncio and trio) or
    aiohttp (asyncio).
    """

    code = "CC105"
    name = "blocking-http-client"
    VALID = (
        """
import httpx

async def fetch(url):
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    return response.text
""",
    )
    INVALID = (
        """
import requests as r
import httpx
from urllib.request import urlopen

async def fetch(url):
    first = r.get(url)  # error: CC105
    with r.Session() as session:
        second = session.post(url, json={})  # error: CC105
    third = httpx.get(url)  # error: CC105
    client = httpx.Client()
    fourth = client.get(url)  # error: CC105
    fifth = urlopen(url).read()  # error: CC105
    return first, second, third, fourth, fifth
""",
    )


class BlockingDatabaseClient(BlockingCallRule):
    """Synchronous database or cache client in async code.

    ``sqlite3``, ``psycopg2`` (and ``psycopg``'s sync API), ``pymysql`` and ``redis``'s
    sync client wait for each query with the event loop's thread. Use an async driver
    (``aiosqlite``, ``asyncpg`` or ``psycopg.AsyncConnection``, ``aiomysql``,
    ``redis.asyncio``), or run the whole query function in a worker thread.
    """

    code = "CC106"
    name = "blocking-database-client"
    VALID = (
        """
import redis.asyncio as redis

async def count_visit(client: redis.Redis):
    await client.incr("visits")
""",
    )
    INVALID = (
        """
import sqlite3
import redis

async def count_visit(user):
    db = sqlite3.connect("app.db")  # error: CC106
    db.execute("INSERT INTO visits VALUES (?)", (user,))  # error: CC106
    db.commit()  # error: CC106
    cache = redis.Redis()
    cache.incr("visits")  # error: CC106
""",
    )


class BlockingThreadWait(BlockingCallRule):
    """Waiting on a thread lock, event, queue, thread or future in async code.

    ``threading.Lock``/``RLock``/``Semaphore``/``Condition`` (acquired or used in
    ``with``), ``threading.Event.wait``, ``queue.Queue.get``/``put``, ``Thread.join``,
    ``Process.join`` and ``concurrent.futures.Future.result`` park the event loop's thread
    until another thread acts. If that thread is waiting for the event loop, the program
    deadlocks. Use the framework's primitives (``asyncio.Lock``, ``trio.Lock``,
    ``anyio.Lock``, ``asyncio.Queue``, memory channels), or wait in a worker thread. Calls
    that cannot block, such as ``acquire(blocking=False)`` or ``get(block=False)``, are not
    reported, nor is the first acquire of a lock the function has just created, as long as
    no other code can hold it: once it is passed (to a ``Thread``, say), stored, returned or
    captured by a nested function, or acquired again in a loop, acquiring it may wait.

    Through the project's own sync helpers, only waits for other threads' work are
    reported: ``Event.wait``, ``Condition.wait``, ``Semaphore`` and ``BoundedSemaphore``
    acquires (a holder keeps a slot for the whole of its work), queue ``get``/``put``,
    joins and futures. Taking a ``Lock``, ``RLock`` or a ``Condition``'s lock in a helper
    (``with lock:``, or ``acquire()`` without a timeout) is not: other code holds such a
    lock for a critical section of a few statements, which is not what stalls an event loop.
    Such a lock is still reported in the ``async def`` itself, and through a helper when the
    acquire has a timeout (its author expects a long wait) or arguments that are not
    literals, or when the helper made the lock and handed it to other code before
    acquiring it (``done.acquire()`` after ``Thread(target=work, args=(done,))`` waits for
    that thread's signal). A helper that holds a lock across slow work (I/O under
    ``with lock:``) is reported for that work, not for the lock its callers wait on.
    """

    code = "CC107"
    name = "blocking-thread-wait"
    VALID = (
        """
import asyncio
import queue
import threading

lock = threading.Lock()
jobs = queue.Queue()

async def worker(results: asyncio.Queue):
    if lock.acquire(blocking=False):
        lock.release()
    job = jobs.get(block=False)
    await results.put(job)
    await asyncio.Queue().get()

async def private_lock():
    lock = threading.Lock()
    lock.acquire()  # nothing else can hold a lock made a line above
    lock.release()
""",
        """
import threading

class Registry:
    def __init__(self):
        self.lock = threading.RLock()
        self.changed = threading.Condition()
        self.items = []

    def add(self, item):
        with self.lock:  # a critical section: not followed into async callers
            self.items.append(item)
        with self.changed:
            self.changed.notify_all()

    def pop(self):
        self.lock.acquire()
        try:
            return self.items.pop()
        finally:
            self.lock.release()

async def handle(registry: Registry, item):
    registry.add(item)
    return registry.pop()
""",
    )
    INVALID = (
        """
import queue
import threading

class Worker:
    def __init__(self):
        self.lock = threading.Lock()
        self.jobs = queue.Queue()
        self.thread = threading.Thread(target=print)

    async def run(self):
        with self.lock:  # error: CC107
            job = self.jobs.get()  # error: CC107
        self.thread.join()  # error: CC107
        queue.Queue(maxsize=1).put(job)  # error: CC107
        queue.Queue().put(job)  # unbounded: put() never waits
        return job
""",
        """
import threading

def worker(lock):
    with lock:
        pass

async def start():
    lock = threading.Lock()
    threading.Thread(target=worker, args=(lock,)).start()
    lock.acquire()  # error: CC107
""",
        """
import queue
import threading

class Pipeline:
    def __init__(self):
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.slots = threading.BoundedSemaphore(4)
        self.changed = threading.Condition()
        self.results = queue.Queue()

    def wait_ready(self):
        self.ready.wait()

    def take_slot(self):
        self.slots.acquire()

    def wait_for_change(self):
        with self.changed:
            self.changed.wait()

    def lock_within(self, seconds):
        return self.lock.acquire(timeout=seconds)

    def next_result(self):
        return self.results.get()

def run_and_wait(work):
    done = threading.Lock()
    done.acquire()
    threading.Thread(target=work, args=(done,)).start()
    done.acquire()  # waits until the thread releases it: a signal, not a critical section

async def serve(pipeline: Pipeline, work):
    pipeline.wait_ready()  # error: CC107
    pipeline.take_slot()  # error: CC107
    pipeline.wait_for_change()  # error: CC107
    pipeline.lock_within(5)  # error: CC107
    pipeline.next_result()  # error: CC107
    run_and_wait(work)  # error: CC107
    with pipeline.lock:  # error: CC107
        pass
""",
    )


class BlockingInput(BlockingCallRule):
    """Reading from the terminal in async code.

    ``input()``, ``getpass.getpass()`` and ``sys.stdin.readline()`` wait for the user with
    the event loop's thread: nothing else runs until they press Enter. Read in a worker
    thread (``asyncio.to_thread(input, ...)``, ``trio.to_thread.run_sync``,
    ``anyio.to_thread.run_sync``).
    """

    code = "CC108"
    name = "blocking-input"
    VALID = (
        """
import asyncio

async def ask(prompt):
    return await asyncio.to_thread(input, prompt)
""",
    )
    INVALID = (
        """
import sys

async def ask(prompt):
    answer = input(prompt)  # error: CC108
    more = sys.stdin.readline()  # error: CC108
    return answer + more
""",
    )


class BlockingConfiguredCall(BlockingCallRule):
    """Call listed in ``extra-blocking-calls``, made in async code.

    Projects have their own blocking functions (a sync SDK, a legacy client). List them
    by qualified name in ``[tool.concurrency-lint] extra-blocking-calls``, optionally with
    the replacement to suggest, and they are reported in async code like the built-in
    catalogue, also through the project's own sync helpers.
    """

    code = "CC109"
    name = "blocking-configured-call"
    SAMPLE_SETTINGS: ClassVar[dict[str, object]] = {
        "extra-blocking-calls": {"legacy_sdk.fetch_orders": "`await legacy_sdk.aio.fetch_orders()`"}
    }
    VALID = (
        """
import asyncio
import legacy_sdk

async def sync_orders():
    await asyncio.to_thread(legacy_sdk.fetch_orders)
""",
    )
    INVALID = (
        """
import legacy_sdk

async def sync_orders():
    return legacy_sdk.fetch_orders()  # error: CC109
""",
    )


RULES: tuple[type[Rule], ...] = (
    BlockingSleep,
    BlockingSubprocess,
    BlockingFileIO,
    BlockingNetworkCall,
    BlockingHttpClient,
    BlockingDatabaseClient,
    BlockingThreadWait,
    BlockingInput,
    BlockingConfiguredCall,
)
