"""Names resolve through imports and types, never as bare strings; messages teach."""

from __future__ import annotations

from pathlib import Path

import pytest
from lint_helpers import lines_and_codes, lint, markers

from concurrency_lint import Settings, fix_source, lint_paths, lint_source

CRUNCH = """def crunch(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
"""
"""A pure-Python loop: the CPU-bound function handed to threads in the samples below."""


def test_aliased_imports_resolve() -> None:
    source = """
from time import sleep as nap
import requests as r
from os import path as p
import os.path

async def handler():
    nap(1)
    r.get("http://127.0.0.1/")
    p.exists("x")
    os.path.isfile("y")
"""
    assert lines_and_codes(lint_source(source)) == [
        (8, "CC101"),
        (9, "CC105"),
        (10, "CC103"),
        (11, "CC103"),
    ]


def test_message_names_the_alias_and_what_it_resolves_to() -> None:
    [finding] = lint_source("from time import sleep as nap\nasync def f():\n    nap(1)\n")
    assert finding.message.startswith("`nap()` (time.sleep) blocks the event loop while it sleeps")


def test_pure_path_functions_are_not_io() -> None:
    source = """
import os.path

async def build(name):
    return os.path.join("data", os.path.basename(name)), os.path.splitext(name)
"""
    assert lint_source(source) == []


def test_local_names_shadow_modules() -> None:
    source = """
import time

async def with_parameter(time):
    time.sleep(1)

async def with_local():
    open = lambda name: name
    open("x")

def sleep(seconds):
    return seconds

async def own_function():
    sleep(1)
"""
    assert lint_source(source) == []


def test_unknown_names_are_not_guessed() -> None:
    source = """
async def handler(client, sleep):
    client.get("http://127.0.0.1/")
    sleep(1)
    unknown_module.sleep(1)
"""
    assert lint_source(source) == []


@pytest.mark.parametrize(
    ("queue_expression", "reported"),
    [
        ("asyncio.Queue()", False),
        ("queue.Queue()", True),
        ("queue.Queue(maxsize=10)", True),
        ("queue.LifoQueue(10)", True),
    ],
)
def test_receiver_type_decides_whether_get_blocks(queue_expression: str, reported: bool) -> None:
    source = f"""
import asyncio
import queue

async def consume():
    items = {queue_expression}
    return items.get()
"""
    assert [f.code for f in lint_source(source)] == (["CC107"] if reported else [])


def test_put_on_an_unbounded_queue_never_waits() -> None:
    source = """
import queue

jobs = queue.Queue()

async def produce():
    jobs.put(1)
    return jobs.get()
"""
    assert lines_and_codes(lint_source(source)) == [(8, "CC107")]


def test_types_come_from_annotations_attributes_and_with_targets() -> None:
    source = """
import queue
import threading
from concurrent.futures import Future

class Worker:
    done: threading.Event

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()

    async def run(self, jobs: "queue.Queue[int]", future: Future) -> None:
        with self.lock:
            pass
        self.done.wait()
        future.result()
        with threading.Semaphore(2) as semaphore:
            semaphore.acquire()
"""
    assert lines_and_codes(lint_source(source)) == [
        (14, "CC107"),
        (16, "CC107"),
        (17, "CC107"),
        (19, "CC107"),
    ]


def test_optional_annotations_keep_their_type() -> None:
    source = """
from __future__ import annotations
import threading
from typing import Optional

async def wait(event: Optional[threading.Event], other: threading.Event | None):
    event.wait()
    other.wait()
"""
    assert lines_and_codes(lint_source(source)) == [(7, "CC107"), (8, "CC107")]


def test_only_direct_calls_in_async_bodies_count() -> None:
    source = """
import asyncio
import time

async def main():
    def helper_never_called():
        time.sleep(1)
    callback = lambda: time.sleep(1)
    await asyncio.to_thread(time.sleep, 1)
    await asyncio.get_running_loop().run_in_executor(None, callback)

def sync():
    time.sleep(1)

class NotAsync:
    def method(self):
        time.sleep(1)
"""
    assert lint_source(source) == []


def test_async_with_and_comprehensions_in_async_code() -> None:
    source = """
import asyncio
import threading
import time

lock = threading.Lock()
alock = asyncio.Lock()

async def main(delays):
    async with alock:
        pass
    with lock:
        pass
    return [time.sleep(d) for d in delays]
"""
    assert lines_and_codes(lint_source(source)) == [(12, "CC107"), (14, "CC101")]


@pytest.mark.parametrize(
    ("import_line", "expected"),
    [
        ("import asyncio", "use `await asyncio.sleep(...)`"),
        ("import trio", "use `await trio.sleep(...)`"),
        ("import anyio", "use `await anyio.sleep(...)`"),
        ("import asyncio, anyio", "use `await anyio.sleep(...)`"),
        ("", "use `await asyncio.sleep(...)`"),
    ],
)
def test_message_names_the_alternative_for_the_framework_in_use(
    import_line: str, expected: str
) -> None:
    [finding] = lint_source(f"{import_line}\nimport time\nasync def f():\n    time.sleep(1)\n")
    assert finding.message.endswith(expected)


def test_configured_framework_wins_over_imports() -> None:
    [finding] = lint(
        "import asyncio\nimport time\nasync def f():\n    time.sleep(1)\n", framework="trio"
    )
    assert finding.message.endswith("use `await trio.sleep(...)`")


@pytest.mark.parametrize(
    ("framework", "expected"),
    [
        ("asyncio", "`await asyncio.create_subprocess_exec(...)`"),
        ("trio", "`await trio.run_process(...)`"),
        ("anyio", "`await anyio.run_process(...)`"),
    ],
)
def test_subprocess_message_per_framework(framework: str, expected: str) -> None:
    source = f"import {framework}\nimport subprocess\nasync def f():\n    subprocess.run(['ls'])\n"
    [finding] = lint_source(source)
    assert expected in finding.message


def test_calls_that_cannot_block_are_not_reported() -> None:
    source = """
import queue
import threading

lock = threading.Lock()
items = queue.Queue(maxsize=1)
event = threading.Event()

async def main():
    lock.acquire(False)
    lock.acquire(blocking=False)
    lock.acquire(timeout=0)
    items.get(False)
    items.get(block=False)
    items.put(1, False)
    event.wait(0)
    fresh = threading.Lock()
    fresh.acquire()
"""
    assert lint_source(source) == []


def test_non_blocking_sockets_are_recognised() -> None:
    source = """
import contextlib
import socket
import trio

class Wakeup:
    def __init__(self):
        self.sock, self.other = socket.socketpair()
        self.sock.setblocking(False)

    async def drain(self):
        self.sock.recv(1)

async def main(a: socket.socket, b: socket.socket, c: socket.socket, d: socket.socket):
    a.setblocking(False)
    a.send(b"x")
    try:
        b.send(b"x")
    except BlockingIOError:
        pass
    with contextlib.suppress(BlockingIOError):
        c.recv(1)
    await trio.lowlevel.wait_readable(d)
    d.recv(1)
    socket.getaddrinfo("127.0.0.1", 80)
    socket.getaddrinfo("example.com", 80, flags=socket.AI_NUMERICHOST)
"""
    assert lint_source(source) == []


def test_blocking_sockets_are_reported() -> None:
    source = """
import socket

async def main(host: str, sock: socket.socket):
    sock.connect((host, 80))
    socket.getaddrinfo(host, 80)
"""
    assert lines_and_codes(lint_source(source)) == [(5, "CC104"), (6, "CC104")]


def test_transitive_blocking_names_the_chain_and_the_location() -> None:
    source = """
import time

def backoff(attempt):
    time.sleep(2 ** attempt)

def retry(attempt):
    backoff(attempt)

async def fetch():
    retry(1)
"""
    [finding] = lint_source(source, path="shop/api.py")
    assert finding.code == "CC101"
    assert finding.line == 11
    assert "(retry -> backoff -> time.sleep at shop/api.py:5)" in finding.message
    assert "`await asyncio.to_thread(retry, ...)`" in finding.message


def test_recursion_and_cycles_terminate() -> None:
    source = """
import time

def ping(n):
    return pong(n - 1) if n else time.sleep(1)

def pong(n):
    return ping(n)

def loop_forever(n):
    return loop_forever(n + 1)

async def main():
    ping(3)
    loop_forever(0)
"""
    assert lines_and_codes(lint_source(source)) == [(14, "CC101")]


def test_extra_blocking_calls_and_coroutine_functions_from_configuration() -> None:
    source = """
import vendor.sdk
from vendor.aio import fetch

def refresh():
    vendor.sdk.sync_call()

async def main():
    vendor.sdk.sync_call()
    refresh()
    fetch()
"""
    findings = lint(
        source,
        extra_blocking_calls={"vendor.sdk.sync_call": "`await vendor.aio.call()`"},
        extra_coroutine_functions=["vendor.aio.fetch"],
    )
    assert lines_and_codes(findings) == [(9, "CC109"), (10, "CC109"), (11, "CC201")]
    assert findings[0].message.endswith("use `await vendor.aio.call()`")


def test_extra_thread_offload_functions_from_configuration() -> None:
    source = f"""
import workers

{CRUNCH}
async def main():
    await workers.in_thread(crunch, 10)
    await workers.submit(5, job=crunch)
"""
    findings = lint(
        source, extra_thread_offload_functions={"workers.in_thread": 0, "workers.submit": "job"}
    )
    assert lines_and_codes(findings) == [(11, "CC302"), (12, "CC302")]


def test_cpu_message_explains_the_gil_and_suggests_processes() -> None:
    source = """
import trio

def crunch(n):
    return sum(i * i for i in range(n))

async def main():
    await trio.to_thread.run_sync(crunch, 10)
"""
    [finding] = lint_source(source)
    assert "holds the GIL" in finding.message
    assert "`await trio_parallel.run_sync(crunch, ...)`" in finding.message


def test_functions_releasing_the_gil_or_doing_io_are_not_cpu_bound() -> None:
    source = """
import asyncio
import hashlib
import numpy

def checksum(chunks):
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk * 2)
    return digest.digest()

def matrix(n):
    return [numpy.ones(n) * i for i in range(n)]

def unknown(n):
    return [helper(i) * 2 for i in range(n)]

async def main():
    await asyncio.to_thread(checksum, [b"x"])
    await asyncio.to_thread(matrix, 3)
    await asyncio.to_thread(unknown, 3)
"""
    assert lint_source(source) == []


def test_asyncio_only_libraries_imply_asyncio(tmp_path: Path) -> None:
    for name in ("worker.py", "scheduler.py"):
        (tmp_path / name).write_text("import trio\n\nasync def main():\n    await trio.sleep(1)\n")
    (tmp_path / "web.py").write_text(
        "import time\nfrom aiohttp import web\n\nasync def handler(request):\n    time.sleep(1)\n"
    )
    (tmp_path / "plain.py").write_text("import time\n\nasync def job():\n    time.sleep(1)\n")
    result = lint_paths([str(tmp_path)], Settings(root=tmp_path))
    messages = {Path(f.path).name: f.message for f in result.findings}
    assert messages["web.py"].endswith("use `await asyncio.sleep(...)`")
    # A module that imports no framework gets the project's most common one: trio here.
    assert messages["plain.py"].endswith("use `await trio.sleep(...)`")


def test_generators_block_where_they_are_iterated() -> None:
    source = """
import anyio
import os
from pathlib import Path

async def scan(root: Path):
    for entry in root.iterdir():
        pass
    names = sorted(root.glob("*.py"))
    walker = os.walk(root)
    pending = root.rglob("*")
    return await anyio.to_thread.run_sync(lambda: list(pending)), names, walker
"""
    assert lines_and_codes(lint_source(source)) == [(7, "CC103"), (9, "CC103")]


def test_decorators_that_may_change_the_function_are_not_guessed() -> None:
    source = """
import pytest
import tenacity
from hypothesis import given

@given(1)
async def property_test(n): ...

@pytest.mark.trio
async def marked(): ...

@tenacity.retry
async def fetch(): ...

def run():
    property_test()
    marked()
    fetch()
"""
    assert lines_and_codes(lint_source(source)) == [(17, "CC201"), (18, "CC201")]


def test_a_method_called_on_a_blocking_call_is_one_finding_per_expression() -> None:
    source = """
import subprocess as sp
import sqlite3
import threading

async def handler(path):
    data = open(path).read()
    sp.Popen(["make"]).wait()
    sqlite3.connect("app.db").execute("SELECT 1")
    threading.Lock().acquire()
    return data
"""
    findings = lint_source(source)
    assert [(f.line, f.column, f.code) for f in findings] == [
        (7, 12, "CC103"),
        (8, 5, "CC102"),
        (9, 5, "CC106"),
    ]
    assert findings[0].message.startswith("`open()` blocks the event loop while it opens a file")
    assert findings[1].message.startswith(
        "`sp.Popen().wait()` (subprocess.Popen.wait) blocks the event loop while it waits for a "
        "child process"
    )


def test_popen_is_said_to_start_the_child_not_to_wait_for_it() -> None:
    [finding] = lint_source("import subprocess\nasync def f():\n    subprocess.Popen(['ls'])\n")
    assert finding.code == "CC102"
    assert "while it starts a child process (fork and exec)" in finding.message
    assert "wait" not in finding.message.partition("; use")[0]


def test_super_calls_resolve_through_the_bases_of_the_class() -> None:
    source = """
import threading
import time

class Base:
    async def save(self): ...

    def slow(self):
        time.sleep(1)

class Child(Base):
    async def save(self):
        super().save()
        super(Child, self).save()

    async def go(self):
        super().slow()

class Worker(threading.Thread):
    async def stop(self):
        super().join()

class Plain:
    async def save(self):
        super().save()
"""
    findings = lint_source(source)
    assert lines_and_codes(findings) == [(13, "CC201"), (14, "CC201"), (17, "CC101"), (21, "CC107")]
    assert "(Base.slow -> time.sleep at" in findings[2].message


def test_super_calls_resolve_across_modules(tmp_path: Path) -> None:
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text("class Base:\n    async def save(self): ...\n")
    (package / "child.py").write_text(
        "from shop.base import Base\n\nclass Child(Base):\n"
        "    async def save(self):\n        super().save()\n"
    )
    result = lint_paths([str(package / "child.py")], Settings(root=tmp_path))
    assert [(f.line, f.code) for f in result.findings] == [(5, "CC201")]


def test_star_imports_resolve_to_what_the_star_module_defines(tmp_path: Path) -> None:
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("from .helpers import *\n")
    (package / "helpers.py").write_text(
        "import time\n"
        '__all__ = ["retry_later", "save"]\n'
        "def retry_later():\n    time.sleep(1)\n"
        "async def save(): ...\n"
        "def not_exported():\n    time.sleep(1)\n"
    )
    (package / "api.py").write_text(
        "from shop.helpers import *\n"
        "import shop\n"
        "async def main():\n"
        "    retry_later()\n"
        "    save()\n"
        "    shop.retry_later()\n"
        "    shop.save()\n"
        "    not_exported()\n"
    )
    result = lint_paths([str(package / "api.py")], Settings(root=tmp_path))
    assert [(f.line, f.code) for f in result.findings] == [
        (4, "CC101"),
        (5, "CC201"),
        (6, "CC101"),
        (7, "CC201"),
    ]
    assert "(retry_later -> time.sleep at" in result.findings[0].message


def test_star_imports_without_all_take_the_public_names(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text(
        "import time\ndef pause():\n    time.sleep(1)\ndef _hidden():\n    time.sleep(1)\n"
    )
    (tmp_path / "app.py").write_text(
        "from helpers import *\nasync def main():\n    pause()\n    _hidden()\n"
    )
    result = lint_paths([str(tmp_path / "app.py")], Settings(root=tmp_path))
    assert [(f.line, f.code) for f in result.findings] == [(3, "CC101")]


def test_star_imported_modules_are_read_only_for_the_names_they_may_provide(
    tmp_path: Path,
) -> None:
    (tmp_path / "first.py").write_text("import time\ndef pause():\n    time.sleep(1)\n")
    (tmp_path / "second.py").write_text("from first import *\n")
    (tmp_path / "unused.py").write_text("def other(): ...\n")
    (tmp_path / "app.py").write_text(
        "from unused import *\nfrom second import *\n"
        "async def main():\n    pause()\n    local()\n"
        "def local(): ...\n"
    )
    result = lint_paths([str(tmp_path / "app.py")], Settings(root=tmp_path))
    assert [(f.line, f.code) for f in result.findings] == [(4, "CC101")]
    assert result.followed == 2  # second.py, then first.py through it; not unused.py


def test_star_imports_of_known_modules_resolve_and_the_last_one_wins() -> None:
    assert lines_and_codes(lint_source("from time import *\nasync def f():\n    sleep(1)\n")) == [
        (3, "CC101")
    ]
    source = "from time import *\nfrom asyncio import *\nasync def f():\n    sleep(1)\n"
    assert lines_and_codes(lint_source(source)) == [(4, "CC201")]
    assert lint_source("from time import *\nasync def f():\n    unknown(1)\n") == []


def test_star_imported_task_spawners_and_thread_offloads_are_recognised() -> None:
    source = f"""\
from asyncio import *
from threading import *
from concurrent.futures import *


{CRUNCH}

async def main():
    create_task(sleep(1))  # error: CC203
    Thread(target=crunch, args=(10,)).start()  # error: CC301
    await to_thread(crunch, 10)  # error: CC302
    event = Event()
    event.wait()  # error: CC107
"""
    findings = lint_source(source)
    assert lines_and_codes(findings) == markers(source)
    # The message names what the star import brought in, not the importing module.
    assert "(threading.Event.wait)" in next(f.message for f in findings if f.code == "CC107")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            'import requests\nasync def f(c: "requests.Session", d: "requests.Session | None"):\n'
            '    c.get("x")\n    d.get("x")\n',
            [(3, "CC105"), (4, "CC105")],
            id="quoted-annotation",
        ),
        pytest.param(
            "import requests\n"
            "def get_session() -> requests.Session:\n    return requests.Session()\n"
            "class Repo:\n"
            "    def session(self) -> requests.Session:\n        return requests.Session()\n"
            "async def f():\n"
            '    get_session().get("x")\n'
            "    s = get_session()\n"
            '    s.post("x")\n'
            '    Repo().session().get("x")\n',
            [(8, "CC105"), (10, "CC105"), (11, "CC105")],
            id="return-annotation",
        ),
        pytest.param(
            "import threading, requests\n"
            "class W:\n"
            "    def __init__(self, lock=None, session=None):\n"
            "        self.lock = lock or threading.Lock()\n"
            "        self.session = session or requests.Session()\n"
            "    async def run(self, other=None):\n"
            "        with self.lock:\n            pass\n"
            '        self.session.get("x")\n'
            "        lock = other or threading.Lock()\n"
            "        for _ in range(2):\n            lock.acquire()\n",
            [(7, "CC107"), (9, "CC105"), (12, "CC107")],
            id="or-with-a-constructor",
        ),
        pytest.param(
            "import functools, subprocess, time, threading\n"
            "run = functools.partial(subprocess.run, check=True)\n"
            "class K:\n"
            "    pause = time.sleep\n"
            "    lock = threading.Lock()\n"
            "    async def go(self):\n"
            '        run(["ls"])\n'
            "        self.pause(1)\n"
            "        K.pause(1)\n"
            "        self.lock.acquire()\n",
            [(7, "CC102"), (8, "CC101"), (9, "CC101"), (10, "CC107")],
            id="partial-and-class-attribute-aliases",
        ),
        pytest.param(
            "from concurrent.futures import ThreadPoolExecutor\n"
            "class W:\n"
            "    def compute(self, n):\n"
            "        return sum(i * i for i in range(n))\n"
            "pool = ThreadPoolExecutor()\n"
            "pool.submit(W().compute, 3)\n",
            [(6, "CC301")],
            id="bound-method-on-thread",
        ),
    ],
)
def test_receiver_types_the_code_shows(source: str, expected: list[tuple[int, str]]) -> None:
    assert lines_and_codes(lint_source(source)) == expected


def test_return_annotations_of_functions_in_other_modules_type_their_results(
    tmp_path: Path,
) -> None:
    (tmp_path / "http_client.py").write_text(
        "import requests\n"
        "def get_session() -> requests.Session:\n    return requests.Session()\n"
        "async def open_session() -> requests.Session:\n    return requests.Session()\n"
    )
    (tmp_path / "app.py").write_text(
        "from http_client import get_session, open_session\n"
        "async def main():\n"
        '    get_session().get("x")\n'
        '    (await open_session()).get("x")\n'
    )
    result = lint_paths([str(tmp_path / "app.py")], Settings(root=tmp_path))
    assert [(f.line, f.code) for f in result.findings] == [(3, "CC105"), (4, "CC105")]


@pytest.mark.parametrize(
    ("between", "reported"),
    [
        ("", False),
        ("    with lock:\n        pass\n", False),
        ("    threading.Thread(target=worker, args=(lock,)).start()\n", True),
        ("    locks = [lock]\n", True),
        ("    self_lock = lock\n", True),
        ("    registry.add(lock)\n", True),
        ("    def inner():\n        lock.release()\n", True),
        ("    lock = shared\n", True),
        ("    lock.acquire()\n", True),  # the second acquire waits for the first
    ],
    ids=[
        "alone",
        "after-with",
        "thread",
        "list",
        "alias",
        "passed",
        "captured",
        "rebound",
        "twice",
    ],
)
def test_a_lock_made_in_the_function_is_free_only_while_nothing_else_can_hold_it(
    between: str, reported: bool
) -> None:
    source = (
        "import threading\n"
        "shared = threading.Lock()\n"
        "def worker(lock):\n    lock.acquire()\n"
        "async def handler(registry):\n"
        "    lock = threading.Lock()\n"
        f"{between}"
        "    lock.acquire()\n"
    )
    codes = [f.code for f in lint_source(source) if f.line == source.count("\n")]
    assert codes == (["CC107"] if reported else [])


def test_a_lock_made_before_a_loop_is_not_free_inside_it() -> None:
    source = """
import threading

async def handler(items):
    lock = threading.Lock()
    for item in items:
        lock.acquire()
    [lock.acquire() for item in items]
    inner = threading.Lock()
    for item in items:
        made = threading.Lock()
        made.acquire()
"""
    assert lines_and_codes(lint_source(source)) == [(7, "CC107"), (8, "CC107")]


@pytest.mark.parametrize(
    ("taking", "reported"),
    [
        ("with LOCK:\n        pass", False),
        ("LOCK.acquire()", False),
        ("LOCK.acquire(True)", False),
        ("LOCK.acquire(blocking=True, timeout=-1)", False),
        ("with CHANGED:\n        CHANGED.notify_all()", False),
        ("LOCK.acquire(timeout=5)", True),
        ("LOCK.acquire(True, 5)", True),
        ("LOCK.acquire(timeout=seconds)", True),
        ("LOCK.acquire(*arguments)", True),
        ("SLOTS.acquire()", True),
        ("with SLOTS:\n        pass", True),
        ("with CHANGED:\n        CHANGED.wait()", True),
        ("READY.wait()", True),
    ],
)
def test_a_sync_helper_taking_a_lock_for_a_critical_section_does_not_block_its_caller(
    taking: str, reported: bool
) -> None:
    source = (
        "import threading\n"
        "LOCK = threading.RLock()\n"
        "CHANGED = threading.Condition()\n"
        "SLOTS = threading.BoundedSemaphore(2)\n"
        "READY = threading.Event()\n"
        "def helper(seconds, arguments):\n"
        f"    {taking}\n"
        "async def handler():\n"
        "    LOCK.acquire()\n"
        "    helper(1, ())\n"
    )
    last = source.count("\n")
    expected = [(last - 1, "CC107")] + ([(last, "CC107")] if reported else [])
    assert lines_and_codes(lint_source(source)) == expected


@pytest.mark.parametrize(
    ("calls", "reported"),
    [
        ("s.setblocking(False)\n", False),
        ("s.settimeout(0)\n", False),
        ("s.setblocking(False)\n    s.setblocking(True)\n", True),
        ("s.setblocking(False)\n    s.settimeout(5)\n", True),
        ("s.setblocking(False)\n    s.settimeout(None)\n", True),
        ("s.setblocking(False)\n    if flag:\n        s.setblocking(True)\n", True),
        ("s.setblocking(True)\n    s.setblocking(False)\n", False),
        ("if flag:\n        s.setblocking(False)\n", True),
    ],
)
def test_the_last_setblocking_before_a_use_decides(calls: str, reported: bool) -> None:
    source = (
        f"import socket\nasync def f(flag):\n    s = socket.socket()\n    {calls}    s.recv(1)\n"
    )
    codes = [f.code for f in lint_source(source)]
    assert codes == (["CC104"] if reported else [])


def test_a_method_making_the_socket_blocking_again_cancels_the_class_wide_mark() -> None:
    source = """
import socket

class Connection:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.setblocking(False)

    def block(self):
        self.sock.setblocking(True)

    async def read(self):
        return self.sock.recv(1)
"""
    assert lines_and_codes(lint_source(source)) == [(13, "CC104")]


def test_the_advice_follows_the_framework_of_the_call_itself() -> None:
    source = f"""
import asyncio
import trio

{CRUNCH}
async def on_asyncio():
    return await asyncio.to_thread(crunch, 10)

async def on_trio():
    return await trio.to_thread.run_sync(crunch, 10)
"""
    first, second = lint_source(source)
    assert "`await loop.run_in_executor(ProcessPoolExecutor(), crunch, ...)`" in first.message
    assert "trio_parallel" not in first.message
    assert "`await trio_parallel.run_sync(crunch, ...)`" in second.message


def test_the_advice_follows_the_framework_the_function_uses() -> None:
    source = """
import asyncio
import trio
import time

async def on_asyncio():
    await asyncio.sleep(0)
    time.sleep(1)

async def on_trio():
    await trio.sleep(0)
    time.sleep(1)
"""
    first, second = lint_source(source)
    assert first.message.endswith("use `await asyncio.sleep(...)`")
    assert second.message.endswith("use `await trio.sleep(...)`")


@pytest.mark.parametrize(
    ("marking", "framework"),
    [
        ("@pytest.mark.trio\nasync def test_poll():", "trio"),
        ("@pytest.mark.anyio\nasync def test_poll():", "anyio"),
        ("pytestmark = pytest.mark.trio\n\nasync def test_poll():", "trio"),
        ("pytestmark = [pytest.mark.slow, pytest.mark.trio]\n\nasync def test_poll():", "trio"),
        ("@pytest.mark.trio\nclass TestPoll:\n  async def test_poll(self):", "trio"),
    ],
)
def test_a_pytest_framework_marker_is_evidence_of_the_framework(
    marking: str, framework: str
) -> None:
    source = f"import time\nimport pytest\n\n{marking}\n    time.sleep(1)\n"
    [finding] = lint_source(source)
    assert finding.message.endswith(f"use `await {framework}.sleep(...)`")
    fixed, _ = fix_source(source)
    assert f"await {framework}.sleep(1)" in fixed
    assert f"import {framework}\n" in fixed


def test_an_attribute_lock_made_a_line_above_is_free_until_its_object_is_used_otherwise() -> None:
    source = """
import threading

class Worker:
    def __init__(self):
        self.lock = threading.Lock()
        self.lock.acquire()

    async def restart(self, pool):
        self.other = threading.Lock()
        pool.register(self)
        self.other.acquire()

async def start():
    Worker()
"""
    assert lines_and_codes(lint_source(source)) == [(12, "CC107")]


def test_a_readiness_wait_in_a_with_block_still_covers_the_code_after_it() -> None:
    source = """
import socket
import trio

async def send(sock: socket.socket, data, checkpoints):
    while data:
        with checkpoints():
            await trio.lowlevel.wait_writable(sock)
        sent = sock.send(data)
        data = data[sent:]
"""
    assert lint_source(source) == []


def test_an_archive_over_an_in_memory_buffer_is_not_file_io() -> None:
    # aiohttp's tests/test_client_functional.py zips and tars a payload into a BytesIO.
    source = """
import gzip
import io
import tarfile
import zipfile

async def pack(data, path, handle):
    buf = io.BytesIO()
    with zipfile.ZipFile(file=buf, mode="w") as archive:
        archive.writestr("payload.txt", data)
    zipfile.ZipFile(io.BytesIO(data))
    tarfile.open(fileobj=buf, mode="r:")
    tarfile.open(None, "r|", io.BytesIO(data))
    gzip.open(buf)
    zipfile.ZipFile(path)  # error: CC103
    tarfile.open(fileobj=handle)  # error: CC103
    tarfile.open(path, fileobj=buf)
    tarfile.open(path, mode="r")  # error: CC103
"""
    assert lines_and_codes(lint_source(source)) == markers(source)
