"""What the linter knows about the standard library and popular packages.

Everything here is keyed by fully qualified name, as the extractor resolves it through the
file's imports: ``time.sleep``, ``queue.Queue.get`` (a method on an instance of a known
type), ``builtins.open``. Methods are listed on the public class users write
(``threading.Lock``); :data:`TYPE_ALIASES` maps the other spellings onto it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from concurrency_lint.facts import CallFact, Literal

FRAMEWORKS = ("asyncio", "trio", "anyio")

#: Libraries that only run on one framework: importing them says which one is in use.
FRAMEWORK_OF_LIBRARY: dict[str, str] = {
    "asyncio": "asyncio",
    "trio": "trio",
    "anyio": "anyio",
    "aiohttp": "asyncio",
    "uvloop": "asyncio",
    "asyncpg": "asyncio",
    "aiosqlite": "asyncio",
    "aiofiles": "asyncio",
    "aiomysql": "asyncio",
    "motor": "asyncio",
    "pytest_asyncio": "asyncio",
    "trio_websocket": "trio",
    "pytest_trio": "trio",
    "trio_parallel": "trio",
}


@dataclass(frozen=True, slots=True)
class Blocking:
    """A call that blocks the calling thread, and what to use instead."""

    code: str
    #: What the call does, completing "... blocks the event loop while it ...".
    doing: str
    #: The fix per framework.
    fix: Mapping[str, str]
    #: Literal arguments that make the call return at once, e.g. ``(("blocking", False),)``.
    nonblocking: tuple[tuple[str, Literal], ...] = ()
    #: Reported where the object is made when that is in the same function (a file).
    free_when_fresh: bool = False
    #: Acquiring an object that no other code can hold yet cannot wait (a new Lock).
    free_when_private: bool = False
    #: Decides from the call's argument hints that it does not block (a numeric host).
    exempt: Callable[[CallFact], bool] | None = None
    #: Returns a generator: the I/O happens where it is iterated, so only a call iterated
    #: on the spot (``for p in path.glob("*")``, ``list(os.walk(top))``) blocks.
    lazy: bool = False
    #: Takes a mutual-exclusion lock, which other code holds for a critical section: not
    #: followed through the project's sync helpers (see ``index.is_critical_section``).
    critical_section: bool = False


def _per_framework(asyncio: str, trio: str, anyio: str) -> dict[str, str]:
    return {"asyncio": asyncio, "trio": trio, "anyio": anyio}


#: In fix texts, replaced by how the code spells the callee (``worker.join``).
CALL = "{call}"


def in_worker_thread(name: str = CALL) -> dict[str, str]:
    """The fix of last resort: run the blocking callable in a worker thread."""
    return _per_framework(
        f"`await asyncio.to_thread({name}, ...)`",
        f"`await trio.to_thread.run_sync({name}, ...)`",
        f"`await anyio.to_thread.run_sync({name}, ...)`",
    )


BLOCKING: dict[str, Blocking] = {}


def _add(
    code: str,
    names: Iterable[str],
    doing: str,
    fix: Mapping[str, str] | None = None,
    nonblocking: tuple[tuple[str, Literal], ...] = (),
    *,
    free_when_fresh: bool = False,
    free_when_private: bool = False,
    exempt: Callable[[CallFact], bool] | None = None,
    critical_section: bool = False,
) -> None:
    for name in names:
        BLOCKING[name] = Blocking(
            code,
            doing,
            fix or in_worker_thread(),
            nonblocking,
            free_when_fresh,
            free_when_private,
            exempt,
            lazy=name in _LAZY,
            critical_section=critical_section,
        )


#: Generator functions among the blocking calls.
_LAZY = frozenset(
    {
        "os.walk",
        "os.fwalk",
        "glob.iglob",
        "pathlib.Path.iterdir",
        "pathlib.Path.glob",
        "pathlib.Path.rglob",
        "pathlib.Path.walk",
    }
)


def _numeric_host(call: CallFact) -> bool:
    """``getaddrinfo`` of an IP address, or with ``AI_NUMERICHOST``: no DNS lookup."""
    for hint in call.hints:
        if "NUMERIC" in hint:
            return True
        try:
            ipaddress.ip_address(hint)
        except ValueError:
            continue
        return True
    return False


#: File objects that live in memory: reading or writing them touches no disk.
IN_MEMORY_FILES = frozenset({"io.BytesIO", "io.StringIO"})

#: Where archive and compressed-file openers take an open file object instead of a path.
_FILE_OBJECT_ARGUMENTS = {
    "zipfile.ZipFile": ("0", "file"),
    "tarfile.open": ("2", "fileobj"),  # given, it is read instead of the name
    "gzip.open": ("0", "filename"),
    "bz2.open": ("0", "filename"),
    "lzma.open": ("0", "filename"),
}


def _over_memory(call: CallFact) -> bool:
    """``zipfile.ZipFile(io.BytesIO(data))``: an archive over an in-memory buffer."""
    for key in _FILE_OBJECT_ARGUMENTS.get(call.target or "", ()):
        ref = call.refs.get(key)
        if ref is not None and ref.kind == "type" and ref.target in IN_MEMORY_FILES:
            return True
    return False


# CC101: sleeping.
_add(
    "CC101",
    ["time.sleep"],
    "sleeps",
    _per_framework(
        "`await asyncio.sleep(...)`", "`await trio.sleep(...)`", "`await anyio.sleep(...)`"
    ),
)

# CC102: running a subprocess and waiting for it.
_SUBPROCESS_FIX = _per_framework(
    "`await asyncio.create_subprocess_exec(...)` and `await process.communicate()`",
    "`await trio.run_process(...)`",
    "`await anyio.run_process(...)`",
)
_add(
    "CC102",
    [
        "subprocess.run",
        "subprocess.call",
        "subprocess.check_call",
        "subprocess.check_output",
        "subprocess.getoutput",
        "subprocess.getstatusoutput",
        "os.system",
        "os.popen",
        *(f"os.spawn{suffix}" for suffix in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")),
    ],
    "runs a subprocess and waits for it",
    _SUBPROCESS_FIX,
)
# Popen does not wait for the child, but starting it (fork or spawn, then exec, and
# reading whether exec succeeded) runs on the calling thread, and copying the page tables of
# a big parent takes milliseconds; wait() and communicate() then wait for the child to exit.
_add(
    "CC102",
    ["subprocess.Popen"],
    "starts a child process (fork and exec)",
    _SUBPROCESS_FIX,
)
_add(
    "CC102",
    ["subprocess.Popen.wait", "subprocess.Popen.communicate"],
    "waits for a child process",
    _SUBPROCESS_FIX,
)
_add(
    "CC102",
    ["os.wait", "os.wait3", "os.wait4", "os.waitpid", "os.waitid"],
    "waits for a child process",
    _per_framework(
        "an asyncio subprocess and `await process.wait()`",
        "`trio.run_process(...)` or `await process.wait()` on a `trio.Process`",
        "`anyio.open_process(...)` and `await process.wait()`",
    ),
)

# CC103: file system I/O.
_FILE_FIX = _per_framework(
    "`await asyncio.to_thread(...)` around the file work (or aiofiles)",
    "`await trio.open_file(...)` or `trio.Path`",
    "`await anyio.open_file(...)` or `anyio.Path`",
)
_PATH_FIX = _per_framework(
    "`await asyncio.to_thread(...)` around the path operation",
    "the same method on `trio.Path`, awaited",
    "the same method on `anyio.Path`, awaited",
)
_add(
    "CC103",
    [
        "builtins.open",
        "io.open",
        "io.open_code",
        "io.FileIO",
        "codecs.open",
        "os.fdopen",
        *_FILE_OBJECT_ARGUMENTS,
        "shelve.open",
        "dbm.open",
        "tempfile.TemporaryFile",
        "tempfile.NamedTemporaryFile",
        "tempfile.SpooledTemporaryFile",
        "tempfile.TemporaryDirectory",
        "tempfile.mkstemp",
        "tempfile.mkdtemp",
    ],
    "opens a file",
    _FILE_FIX,
    exempt=_over_memory,
)
_add(
    "CC103",
    [
        *(
            f"os.path.{name}"
            for name in (
                "exists",
                "lexists",
                "isfile",
                "isdir",
                "islink",
                "ismount",
                "getsize",
                "getmtime",
                "getatime",
                "getctime",
                "samefile",
                "realpath",
            )
        ),
        *(
            f"os.{name}"
            for name in (
                "stat",
                "lstat",
                "listdir",
                "scandir",
                "walk",
                "remove",
                "unlink",
                "rename",
                "replace",
                "mkdir",
                "makedirs",
                "rmdir",
                "removedirs",
                "chmod",
                "chown",
                "utime",
                "access",
                "readlink",
                "symlink",
                "link",
                "truncate",
                "fsync",
            )
        ),
        *(
            f"shutil.{name}"
            for name in (
                "copy",
                "copy2",
                "copyfile",
                "copyfileobj",
                "copytree",
                "copymode",
                "copystat",
                "rmtree",
                "move",
                "disk_usage",
                "make_archive",
                "unpack_archive",
                "which",
            )
        ),
        "glob.glob",
        "glob.iglob",
    ],
    "touches the file system",
    _PATH_FIX,
)
_add(
    "CC103",
    [
        f"pathlib.Path.{name}"
        for name in (
            "read_text",
            "read_bytes",
            "write_text",
            "write_bytes",
            "open",
            "exists",
            "is_file",
            "is_dir",
            "is_symlink",
            "is_mount",
            "is_socket",
            "is_fifo",
            "is_block_device",
            "is_char_device",
            "is_junction",
            "lchmod",
            "stat",
            "lstat",
            "iterdir",
            "glob",
            "rglob",
            "walk",
            "mkdir",
            "unlink",
            "rmdir",
            "rename",
            "replace",
            "touch",
            "resolve",
            "samefile",
            "chmod",
            "owner",
            "group",
            "readlink",
            "symlink_to",
            "hardlink_to",
        )
    ],
    "touches the file system",
    _PATH_FIX,
)

_add(
    "CC103",
    [
        f"io.IOBase.{name}"
        for name in (
            "read",
            "read1",
            "readline",
            "readlines",
            "readinto",
            "write",
            "writelines",
            "flush",
            "truncate",
        )
    ],
    "reads or writes a file",
    _FILE_FIX,
    # A file opened in the same function is reported where it is opened.
    free_when_fresh=True,
)

# CC104: sockets, DNS and other network protocols.
_SOCKET_FIX = _per_framework(
    "`await asyncio.open_connection(...)` streams or the `loop.sock_*` methods",
    "`await trio.open_tcp_stream(...)` or `trio.socket`",
    "`await anyio.connect_tcp(...)`",
)
_DNS_FIX = _per_framework(
    "`await loop.getaddrinfo(...)`",
    "`await trio.socket.getaddrinfo(...)`",
    "`await anyio.getaddrinfo(...)`",
)
_add(
    "CC104",
    ["socket.create_connection"],
    "opens a network connection",
    _SOCKET_FIX,
)
_add(
    "CC104",
    [
        f"socket.socket.{name}"
        for name in (
            "connect",
            "connect_ex",
            "accept",
            "recv",
            "recvfrom",
            "recv_into",
            "recvfrom_into",
            "recvmsg",
            "send",
            "sendall",
            "sendto",
            "sendmsg",
            "sendfile",
        )
    ],
    "waits on a socket",
    _SOCKET_FIX,
)
_add(
    "CC104",
    [
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
        "socket.getfqdn",
    ],
    "resolves a host name",
    _DNS_FIX,
    exempt=_numeric_host,
)
_add(
    "CC104",
    [
        "smtplib.SMTP",
        "smtplib.SMTP_SSL",
        *(
            f"smtplib.SMTP.{name}"
            for name in ("connect", "sendmail", "send_message", "login", "ehlo", "starttls")
        ),
        "ftplib.FTP",
        *(f"ftplib.FTP.{name}" for name in ("connect", "login", "retrbinary", "storbinary")),
    ],
    "talks to a server",
    _SOCKET_FIX,
)

# CC105: synchronous HTTP clients.
_HTTP_FIX = _per_framework(
    "an async client: `httpx.AsyncClient` or aiohttp",
    "an async client: `httpx.AsyncClient`",
    "an async client: `httpx.AsyncClient`",
)
_HTTP_VERBS = ("get", "post", "put", "patch", "delete", "head", "options", "request")
_add(
    "CC105",
    [
        *(f"requests.{verb}" for verb in _HTTP_VERBS),
        *(f"requests.Session.{verb}" for verb in (*_HTTP_VERBS, "send")),
        *(f"httpx.{verb}" for verb in (*_HTTP_VERBS, "stream")),
        *(f"httpx.Client.{verb}" for verb in (*_HTTP_VERBS, "send", "stream")),
        "urllib3.request",
        *(
            f"urllib3.PoolManager.{name}"
            for name in ("request", "urlopen", "request_encode_url", "request_encode_body")
        ),
        "urllib3.HTTPConnectionPool.urlopen",
        "urllib3.HTTPConnectionPool.request",
        "urllib.request.urlopen",
        "urllib.request.urlretrieve",
        "urllib.request.OpenerDirector.open",
        *(
            f"http.client.HTTPConnection.{name}"
            for name in ("connect", "request", "getresponse", "send")
        ),
        "http.client.HTTPResponse.read",
    ],
    "waits for an HTTP response",
    _HTTP_FIX,
)


# CC106: synchronous database and cache clients.
def _db_fix(asyncio_client: str) -> dict[str, str]:
    return _per_framework(
        asyncio_client,
        "a worker thread for the whole query: `await trio.to_thread.run_sync(...)`",
        "a worker thread for the whole query: `await anyio.to_thread.run_sync(...)`",
    )


_SQL_CURSOR = ("execute", "executemany", "executescript", "fetchone", "fetchmany", "fetchall")
_add(
    "CC106",
    [
        "sqlite3.connect",
        *(
            f"sqlite3.Connection.{name}"
            for name in ("execute", "executemany", "executescript", "commit", "rollback", "backup")
        ),
        *(f"sqlite3.Cursor.{name}" for name in _SQL_CURSOR),
    ],
    "waits on a SQLite database",
    _db_fix("`aiosqlite`"),
)
_add(
    "CC106",
    [
        "psycopg2.connect",
        *(f"psycopg2.extensions.connection.{name}" for name in ("commit", "rollback")),
        *(
            f"psycopg2.extensions.cursor.{name}"
            for name in (*_SQL_CURSOR, "callproc", "copy_from", "copy_to", "copy_expert")
        ),
        "psycopg.connect",
        *(f"psycopg.Connection.{name}" for name in ("execute", "commit", "rollback")),
        *(f"psycopg.Cursor.{name}" for name in _SQL_CURSOR),
    ],
    "waits on a PostgreSQL server",
    _db_fix("`asyncpg` or `await psycopg.AsyncConnection.connect(...)`"),
)
_add(
    "CC106",
    [
        "pymysql.connect",
        *(f"pymysql.connections.Connection.{name}" for name in ("commit", "rollback", "ping")),
        *(f"pymysql.cursors.Cursor.{name}" for name in (*_SQL_CURSOR, "callproc")),
    ],
    "waits on a MySQL server",
    _db_fix("`aiomysql` or `asyncmy`"),
)
_add(
    "CC106",
    ["redis.client.Pipeline.execute"],
    "waits on a Redis server",
    _db_fix("`redis.asyncio`"),
)

#: Types whose every method is a blocking round trip, except the listed ones.
BLOCKING_TYPES: dict[str, tuple[Blocking, frozenset[str]]] = {
    "redis.Redis": (
        Blocking("CC106", "waits on a Redis server", _db_fix("`redis.asyncio.Redis`")),
        frozenset(
            {
                "pipeline",
                "pubsub",
                "lock",
                "register_script",
                "get_encoder",
                "get_connection_kwargs",
                "set_response_callback",
                "from_url",
                "from_pool",
            }
        ),
    ),
}

# CC107: waiting on threads and thread synchronisation.
_LOCK_FIX = _per_framework("`asyncio.Lock`", "`trio.Lock`", "`anyio.Lock`")
_ACQUIRE_NONBLOCKING: tuple[tuple[str, Literal], ...] = (
    ("0", False),
    ("blocking", False),
    ("timeout", 0),
)
_add(
    "CC107",
    [
        f"threading.{kind}.{method}"
        for kind in ("Lock", "RLock")
        for method in ("acquire", "__enter__")
    ],
    "waits for a thread lock",
    _LOCK_FIX,
    _ACQUIRE_NONBLOCKING,
    free_when_private=True,
    critical_section=True,
)
_add(
    "CC107",
    ["threading.Semaphore.acquire", "threading.Semaphore.__enter__"],
    "waits for a thread semaphore",
    _per_framework("`asyncio.Semaphore`", "`trio.Semaphore`", "`anyio.Semaphore`"),
    _ACQUIRE_NONBLOCKING,
)
_CONDITION_FIX = _per_framework("`asyncio.Condition`", "`trio.Condition`", "`anyio.Condition`")
_add(
    "CC107",
    ["threading.Condition.acquire", "threading.Condition.__enter__"],
    "waits for a thread condition's lock",
    _CONDITION_FIX,
    _ACQUIRE_NONBLOCKING,
    critical_section=True,
)
_add(
    "CC107",
    ["threading.Condition.wait", "threading.Condition.wait_for"],
    "waits on a thread condition",
    _CONDITION_FIX,
    (("timeout", 0),),
)
_add(
    "CC107",
    ["threading.Event.wait"],
    "waits for a thread event",
    _per_framework("`asyncio.Event`", "`trio.Event`", "`anyio.Event`"),
    (("0", 0), ("timeout", 0)),
)
_add(
    "CC107",
    ["threading.Barrier.wait"],
    "waits at a thread barrier",
    _per_framework(
        "`asyncio.Barrier`", "`trio` tasks and an `Event`", "`anyio` tasks and an `Event`"
    ),
)
_QUEUE_FIX = _per_framework(
    "`asyncio.Queue`",
    "a memory channel: `trio.open_memory_channel(...)`",
    "a memory object stream: `anyio.create_memory_object_stream(...)`",
)
_add(
    "CC107",
    ["queue.Queue.get", "queue.UnboundedQueue.get", "multiprocessing.Queue.get"],
    "waits for a queue item",
    _QUEUE_FIX,
    (("0", False), ("block", False), ("timeout", 0)),
)
_add(
    "CC107",
    ["queue.Queue.put", "multiprocessing.Queue.put"],
    "waits for room in a queue",
    _QUEUE_FIX,
    (("1", False), ("block", False), ("timeout", 0)),
)
_add(
    "CC107",
    ["queue.Queue.join", "queue.UnboundedQueue.join"],
    "waits for a queue to drain",
    _QUEUE_FIX,
)
_add(
    "CC107",
    ["threading.Thread.join", "threading.Timer.join"],
    "waits for a thread to finish",
    in_worker_thread(),
    (("0", 0), ("timeout", 0)),
)
_add(
    "CC107",
    ["multiprocessing.Process.join"],
    "waits for a process to finish",
    in_worker_thread(),
    (("0", 0), ("timeout", 0)),
)
_add(
    "CC107",
    ["concurrent.futures.Future.result", "concurrent.futures.Future.exception"],
    "waits for a future from an executor",
    _per_framework(
        "`await asyncio.wrap_future(future)`",
        "`await trio.to_thread.run_sync(future.result)`",
        "`await anyio.to_thread.run_sync(future.result)`",
    ),
    (("0", 0), ("timeout", 0)),
)
_add(
    "CC107",
    ["concurrent.futures.wait", "concurrent.futures.as_completed"],
    "waits for futures from an executor",
    _per_framework(
        "`await asyncio.wait([asyncio.wrap_future(f) for f in futures])`",
        "`await trio.to_thread.run_sync(concurrent.futures.wait, futures)`",
        "`await anyio.to_thread.run_sync(concurrent.futures.wait, futures)`",
    ),
    (("timeout", 0),),
)
_add(
    "CC107",
    ["concurrent.futures.Executor.shutdown"],
    "waits for the executor's work to finish",
    in_worker_thread(),
    (("0", False), ("wait", False)),
)
_add(
    "CC107",
    [f"multiprocessing.pool.Pool.{name}" for name in ("apply", "map", "starmap", "join")]
    + [f"multiprocessing.pool.AsyncResult.{name}" for name in ("get", "wait")],
    "waits for a process pool",
    in_worker_thread(),
)

# CC108: waiting for the user.
_add("CC108", ["builtins.input", "getpass.getpass"], "waits for the user to type a line")
_add(
    "CC108",
    ["sys.stdin.read", "sys.stdin.readline", "sys.stdin.readlines", "sys.stdin.buffer.read"],
    "waits for input on stdin",
    _per_framework(
        "`await asyncio.to_thread(sys.stdin.readline)` or a `StreamReader` on stdin",
        "`await trio.to_thread.run_sync(sys.stdin.readline)`",
        "`await anyio.to_thread.run_sync(sys.stdin.readline)`",
    ),
)

#: Other spellings of the types and functions above, mapped onto the listed one.
TYPE_ALIASES: dict[str, str] = {
    "io.open": "builtins.open",
    # Files on disk. The abstract types (``typing.IO``, ``io.TextIOBase``) are left out on
    # purpose: a ``StringIO`` is one too.
    **dict.fromkeys(
        [
            "io.TextIOWrapper",
            "io.BufferedReader",
            "io.BufferedWriter",
            "io.BufferedRandom",
            "io.FileIO",
        ],
        "io.IOBase",
    ),
    "threading._RLock": "threading.RLock",
    "threading.BoundedSemaphore": "threading.Semaphore",
    "_thread.allocate_lock": "threading.Lock",
    "_thread.LockType": "threading.Lock",
    "queue.LifoQueue": "queue.Queue",
    "queue.PriorityQueue": "queue.Queue",
    "queue.SimpleQueue": "queue.UnboundedQueue",
    "multiprocessing.JoinableQueue": "multiprocessing.Queue",
    "multiprocessing.SimpleQueue": "multiprocessing.Queue",
    "multiprocessing.queues.Queue": "multiprocessing.Queue",
    "multiprocessing.context.Process": "multiprocessing.Process",
    "multiprocessing.Pool": "multiprocessing.pool.Pool",
    "multiprocessing.dummy.Pool": "multiprocessing.pool.ThreadPool",
    "multiprocessing.pool.ApplyResult": "multiprocessing.pool.AsyncResult",
    "multiprocessing.pool.MapResult": "multiprocessing.pool.AsyncResult",
    "concurrent.futures.thread.ThreadPoolExecutor": "concurrent.futures.ThreadPoolExecutor",
    "concurrent.futures.process.ProcessPoolExecutor": "concurrent.futures.ProcessPoolExecutor",
    "concurrent.futures._base.Future": "concurrent.futures.Future",
    "concurrent.futures._base.Executor": "concurrent.futures.Executor",
    "concurrent.futures.ThreadPoolExecutor.shutdown": "concurrent.futures.Executor.shutdown",
    "concurrent.futures.ProcessPoolExecutor.shutdown": "concurrent.futures.Executor.shutdown",
    "ssl.SSLSocket": "socket.socket",
    "socket.SocketType": "socket.socket",
    "pathlib.PosixPath": "pathlib.Path",
    "pathlib.WindowsPath": "pathlib.Path",
    "requests.sessions.Session": "requests.Session",
    "http.client.HTTPSConnection": "http.client.HTTPConnection",
    "urllib3.HTTPSConnectionPool": "urllib3.HTTPConnectionPool",
    "urllib3.poolmanager.PoolManager": "urllib3.PoolManager",
    "redis.StrictRedis": "redis.Redis",
    "redis.client.Redis": "redis.Redis",
    "redis.client.StrictRedis": "redis.Redis",
    "pymysql.Connect": "pymysql.connect",
    "pymysql.Connection": "pymysql.connections.Connection",
    "asyncio.events.AbstractEventLoop": "asyncio.AbstractEventLoop",
    "asyncio.BaseEventLoop": "asyncio.AbstractEventLoop",
    "asyncio.base_events.BaseEventLoop": "asyncio.AbstractEventLoop",
    "asyncio.queues.Queue": "asyncio.Queue",
    "asyncio.LifoQueue": "asyncio.Queue",
    "asyncio.PriorityQueue": "asyncio.Queue",
    "asyncio.locks.Lock": "asyncio.Lock",
    "asyncio.locks.Event": "asyncio.Event",
    "asyncio.BoundedSemaphore": "asyncio.Semaphore",
    "asyncio.streams.StreamReader": "asyncio.StreamReader",
    "asyncio.streams.StreamWriter": "asyncio.StreamWriter",
    "asyncio.taskgroups.TaskGroup": "asyncio.TaskGroup",
    "trio.StrictFIFOLock": "trio.Lock",
    "anyio.streams.memory.MemoryObjectSendStream": "anyio.abc.ObjectSendStream",
    "anyio.streams.memory.MemoryObjectReceiveStream": "anyio.abc.ObjectReceiveStream",
    "anyio.abc.SocketStream": "anyio.abc.ByteStream",
}

#: What calling a function or constructor returns, when that is not simply an instance of
#: the callee. A tuple describes a returned tuple, element by element.
RETURNS: dict[str, str | tuple[str, ...]] = {
    "builtins.open": "io.IOBase",
    "asyncio.get_event_loop": "asyncio.AbstractEventLoop",
    "asyncio.get_running_loop": "asyncio.AbstractEventLoop",
    "asyncio.new_event_loop": "asyncio.AbstractEventLoop",
    "asyncio.Queue": "asyncio.Queue",
    "socket.socket": "socket.socket",
    "socket.create_connection": "socket.socket",
    "socket.create_server": "socket.socket",
    "socket.fromfd": "socket.socket",
    "socket.socket.accept": ("socket.socket", "builtins.tuple"),
    "socket.socketpair": ("socket.socket", "socket.socket"),
    "ssl.SSLContext.wrap_socket": "socket.socket",
    "pathlib.Path": "pathlib.Path",
    "pathlib.Path.cwd": "pathlib.Path",
    "pathlib.Path.home": "pathlib.Path",
    "pathlib.Path.resolve": "pathlib.Path",
    "pathlib.Path.absolute": "pathlib.Path",
    "pathlib.Path.expanduser": "pathlib.Path",
    "pathlib.Path.with_name": "pathlib.Path",
    "pathlib.Path.with_suffix": "pathlib.Path",
    "pathlib.Path.with_stem": "pathlib.Path",
    "pathlib.Path.joinpath": "pathlib.Path",
    "pathlib.Path.relative_to": "pathlib.Path",
    "requests.session": "requests.Session",
    "urllib3.connection_from_url": "urllib3.HTTPConnectionPool",
    "urllib.request.build_opener": "urllib.request.OpenerDirector",
    "http.client.HTTPConnection.getresponse": "http.client.HTTPResponse",
    "sqlite3.connect": "sqlite3.Connection",
    "sqlite3.Connection.cursor": "sqlite3.Cursor",
    "sqlite3.Connection.execute": "sqlite3.Cursor",
    "psycopg2.connect": "psycopg2.extensions.connection",
    "psycopg2.extensions.connection.cursor": "psycopg2.extensions.cursor",
    "psycopg.connect": "psycopg.Connection",
    "psycopg.Connection.connect": "psycopg.Connection",
    "psycopg.Connection.cursor": "psycopg.Cursor",
    "pymysql.connect": "pymysql.connections.Connection",
    "pymysql.connections.Connection.cursor": "pymysql.cursors.Cursor",
    "redis.Redis.from_url": "redis.Redis",
    "redis.from_url": "redis.Redis",
    "redis.Redis.pipeline": "redis.client.Pipeline",
    "subprocess.Popen": "subprocess.Popen",
    "concurrent.futures.ThreadPoolExecutor.submit": "concurrent.futures.Future",
    "concurrent.futures.ProcessPoolExecutor.submit": "concurrent.futures.Future",
    "concurrent.futures.Executor.submit": "concurrent.futures.Future",
    "multiprocessing.pool.Pool.apply_async": "multiprocessing.pool.AsyncResult",
    "multiprocessing.pool.Pool.map_async": "multiprocessing.pool.AsyncResult",
    "trio.open_nursery": "trio.Nursery",
    "trio.open_memory_channel": ("trio.MemorySendChannel", "trio.MemoryReceiveChannel"),
    "anyio.create_task_group": "anyio.abc.TaskGroup",
    "anyio.create_memory_object_stream": (
        "anyio.abc.ObjectSendStream",
        "anyio.abc.ObjectReceiveStream",
    ),
    "builtins.str": "builtins.str",
    "builtins.bytes": "builtins.bytes",
    "builtins.list": "builtins.list",
    "builtins.dict": "builtins.dict",
    "builtins.set": "builtins.set",
    "builtins.tuple": "builtins.tuple",
    "builtins.int": "builtins.int",
    "builtins.float": "builtins.float",
    "builtins.sorted": "builtins.list",
}

#: What awaiting a call returns, for the async APIs whose result is worth typing.
AWAIT_RETURNS: dict[str, str | tuple[str, ...]] = {
    "asyncio.open_connection": ("asyncio.StreamReader", "asyncio.StreamWriter"),
    "asyncio.open_unix_connection": ("asyncio.StreamReader", "asyncio.StreamWriter"),
    "asyncio.create_subprocess_exec": "asyncio.subprocess.Process",
    "asyncio.create_subprocess_shell": "asyncio.subprocess.Process",
    "asyncio.start_server": "asyncio.Server",
    "trio.open_tcp_stream": "trio.SocketStream",
    "trio.open_unix_socket": "trio.SocketStream",
    "trio.open_ssl_over_tcp_stream": "trio.SSLStream",
    "trio.lowlevel.open_process": "trio.Process",
    "anyio.connect_tcp": "anyio.abc.ByteStream",
    "anyio.connect_unix": "anyio.abc.ByteStream",
    "anyio.open_process": "anyio.abc.Process",
}

#: Types more precise than a declared one: ``q: queue.Queue = queue.Queue()`` is unbounded.
REFINEMENTS: dict[str, frozenset[str]] = {"queue.Queue": frozenset({"queue.UnboundedQueue"})}

#: Attributes of known types, for chains like ``Path(__file__).parent.read_text()``.
ATTRIBUTE_TYPES: dict[str, str] = {
    "pathlib.Path.parent": "pathlib.Path",
}

#: Types whose ``__enter__`` returns something other than the instance itself.
ENTER_RETURNS: dict[str, str] = {
    "builtins.open": "io.IOBase",
    "io.open": "io.IOBase",
}

# CC2xx: coroutine functions of the frameworks and the standard library. Calling one
# without ``await`` creates a coroutine object that never runs.
COROUTINE_FUNCTIONS: frozenset[str] = frozenset(
    [
        *(
            f"asyncio.{name}"
            for name in (
                "sleep",
                "wait",
                "wait_for",
                "open_connection",
                "open_unix_connection",
                "start_server",
                "start_unix_server",
                "create_subprocess_exec",
                "create_subprocess_shell",
                "to_thread",
            )
        ),
        *(f"asyncio.Queue.{name}" for name in ("get", "put", "join")),
        "asyncio.Lock.acquire",
        "asyncio.Semaphore.acquire",
        "asyncio.Event.wait",
        "asyncio.Barrier.wait",
        *(f"asyncio.Condition.{name}" for name in ("acquire", "wait", "wait_for")),
        *(f"asyncio.StreamWriter.{name}" for name in ("drain", "wait_closed", "start_tls")),
        *(
            f"asyncio.StreamReader.{name}"
            for name in ("read", "readline", "readexactly", "readuntil")
        ),
        *(f"asyncio.subprocess.Process.{name}" for name in ("wait", "communicate")),
        *(f"asyncio.Server.{name}" for name in ("serve_forever", "wait_closed", "start_serving")),
        *(
            f"asyncio.AbstractEventLoop.{name}"
            for name in (
                "sock_recv",
                "sock_recv_into",
                "sock_recvfrom",
                "sock_sendall",
                "sock_sendto",
                "sock_connect",
                "sock_accept",
                "sock_sendfile",
                "getaddrinfo",
                "getnameinfo",
                "create_connection",
                "create_server",
                "create_unix_connection",
                "create_unix_server",
                "create_datagram_endpoint",
                "connect_read_pipe",
                "connect_write_pipe",
                "subprocess_exec",
                "subprocess_shell",
                "sendfile",
                "start_tls",
                "shutdown_asyncgens",
                "shutdown_default_executor",
            )
        ),
        *(
            f"trio.{name}"
            for name in (
                "sleep",
                "sleep_forever",
                "sleep_until",
                "open_tcp_stream",
                "open_ssl_over_tcp_stream",
                "open_tcp_listeners",
                "open_ssl_over_tcp_listeners",
                "open_unix_socket",
                "serve_tcp",
                "serve_listeners",
                "serve_ssl_over_tcp",
                "run_process",
                "open_file",
                "aclose_forcefully",
                "to_thread.run_sync",
                "socket.getaddrinfo",
                "socket.getnameinfo",
                "lowlevel.checkpoint",
                "lowlevel.checkpoint_if_cancelled",
                "lowlevel.cancel_shielded_checkpoint",
                "lowlevel.wait_readable",
                "lowlevel.wait_writable",
                "lowlevel.wait_task_rescheduled",
                "lowlevel.open_process",
            )
        ),
        "trio.Event.wait",
        "trio.Lock.acquire",
        "trio.Semaphore.acquire",
        "trio.CapacityLimiter.acquire",
        "trio.CapacityLimiter.acquire_on_behalf_of",
        "trio.Condition.acquire",
        "trio.Condition.wait",
        "trio.Nursery.start",
        "trio.Process.wait",
        "trio.MemorySendChannel.send",
        "trio.MemorySendChannel.aclose",
        "trio.MemoryReceiveChannel.receive",
        "trio.MemoryReceiveChannel.aclose",
        *(
            f"trio.SocketStream.{name}"
            for name in (
                "send_all",
                "receive_some",
                "aclose",
                "send_eof",
                "wait_send_all_might_not_block",
            )
        ),
        *(
            f"trio.SSLStream.{name}"
            for name in ("send_all", "receive_some", "aclose", "do_handshake")
        ),
        *(
            f"anyio.{name}"
            for name in (
                "sleep",
                "sleep_forever",
                "sleep_until",
                "connect_tcp",
                "connect_unix",
                "create_tcp_listener",
                "create_unix_listener",
                "create_udp_socket",
                "create_connected_udp_socket",
                "open_file",
                "run_process",
                "open_process",
                "getaddrinfo",
                "getnameinfo",
                "wait_all_tasks_blocked",
                "wait_readable",
                "wait_writable",
                "wait_socket_readable",
                "wait_socket_writable",
                "aclose_forcefully",
                "to_thread.run_sync",
                "to_process.run_sync",
                "to_interpreter.run_sync",
                "lowlevel.checkpoint",
                "lowlevel.checkpoint_if_cancelled",
                "lowlevel.cancel_shielded_checkpoint",
            )
        ),
        "anyio.Event.wait",
        "anyio.Lock.acquire",
        "anyio.Semaphore.acquire",
        "anyio.Condition.acquire",
        "anyio.Condition.wait",
        "anyio.CapacityLimiter.acquire",
        "anyio.abc.TaskGroup.start",
        "anyio.abc.ObjectSendStream.send",
        "anyio.abc.ObjectSendStream.aclose",
        "anyio.abc.ObjectReceiveStream.receive",
        "anyio.abc.ObjectReceiveStream.aclose",
        *(f"anyio.abc.ByteStream.{name}" for name in ("send", "receive", "aclose", "send_eof")),
        "anyio.abc.Process.wait",
        *(
            f"{path}.{name}"
            for path in ("trio.Path", "anyio.Path")
            for name in (
                "read_text",
                "read_bytes",
                "write_text",
                "write_bytes",
                "open",
                "exists",
                "is_file",
                "is_dir",
                "stat",
                "mkdir",
                "unlink",
                "rmdir",
                "rename",
                "replace",
                "touch",
                "resolve",
                "iterdir",
                "glob",
                "rglob",
            )
        ),
    ]
)

#: Calls that start a task and return it. If the result is dropped, the event loop keeps
#: only a weak reference and the task can be garbage-collected before it finishes.
TASK_SPAWNERS: frozenset[str] = frozenset(
    {"asyncio.create_task", "asyncio.ensure_future", "asyncio.AbstractEventLoop.create_task"}
)


@dataclass(frozen=True, slots=True)
class Offload:
    """A call that runs a callable on another thread."""

    #: Where the callable is: a position (``"0"``) and/or a keyword name.
    position: str | None
    keyword: str | None
    #: ``"thread"`` for thread and thread-pool APIs (CC301), ``"async"`` for event-loop
    #: offloads awaited from async code (CC302).
    kind: str
    #: Position of an executor argument that must be ``None`` or a thread pool.
    executor: str | None = None


THREAD_OFFLOADS: dict[str, Offload] = {
    "threading.Thread": Offload("1", "target", "thread"),
    "threading.Timer": Offload("1", "function", "thread"),
    "_thread.start_new_thread": Offload("0", "function", "thread"),
    "concurrent.futures.ThreadPoolExecutor.submit": Offload("0", "fn", "thread"),
    "concurrent.futures.ThreadPoolExecutor.map": Offload("0", "fn", "thread"),
    **{
        f"multiprocessing.pool.ThreadPool.{name}": Offload("0", "func", "thread")
        for name in (
            "apply",
            "apply_async",
            "map",
            "map_async",
            "imap",
            "imap_unordered",
            "starmap",
            "starmap_async",
        )
    },
    "asyncio.to_thread": Offload("0", "func", "async"),
    "asyncio.AbstractEventLoop.run_in_executor": Offload("1", None, "async", executor="0"),
    "trio.to_thread.run_sync": Offload("0", "sync_fn", "async"),
    "anyio.to_thread.run_sync": Offload("0", "func", "async"),
    "starlette.concurrency.run_in_threadpool": Offload("0", "func", "async"),
}

#: Executor types that run work on threads (``run_in_executor(None, ...)`` does too).
THREAD_POOLS: frozenset[str] = frozenset(
    {"concurrent.futures.ThreadPoolExecutor", "multiprocessing.pool.ThreadPool"}
)

# CC3xx: what pure-Python computation may call and still count as pure computation.
PURE_FUNCTIONS: frozenset[str] = frozenset(
    f"builtins.{name}"
    for name in (
        "abs",
        "all",
        "any",
        "bin",
        "bool",
        "bytearray",
        "bytes",
        "callable",
        "chr",
        "complex",
        "dict",
        "divmod",
        "enumerate",
        "filter",
        "float",
        "format",
        "frozenset",
        "getattr",
        "hasattr",
        "hash",
        "hex",
        "id",
        "int",
        "isinstance",
        "issubclass",
        "iter",
        "len",
        "list",
        "map",
        "max",
        "min",
        "next",
        "oct",
        "ord",
        "pow",
        "range",
        "repr",
        "reversed",
        "round",
        "set",
        "slice",
        "sorted",
        "str",
        "sum",
        "tuple",
        "type",
        "zip",
    )
) | frozenset(
    {
        "functools.reduce",
        "collections.deque",
        "collections.Counter",
        "collections.defaultdict",
        "collections.OrderedDict",
        "fractions.Fraction",
        "decimal.Decimal",
        "copy.copy",
        "copy.deepcopy",
        "struct.pack",
        "struct.unpack",
    }
)
#: Modules all of whose functions are pure computation.
PURE_MODULES: tuple[str, ...] = (
    "math.",
    "cmath.",
    "operator.",
    "itertools.",
    "statistics.",
    "bisect.",
    "heapq.",
    "random.",
    "builtins.str.",
    "builtins.bytes.",
    "builtins.list.",
    "builtins.dict.",
    "builtins.set.",
    "builtins.tuple.",
    "builtins.int.",
    "builtins.float.",
)
#: Method names that are pure computation whatever the receiver (container and string
#: methods). Deliberately leaves out names like ``get``, ``put``, ``join``, ``read`` or
#: ``wait`` that blocking objects also have.
PURE_METHODS: frozenset[str] = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "insert",
        "pop",
        "popleft",
        "add",
        "discard",
        "setdefault",
        "items",
        "keys",
        "values",
        "copy",
        "index",
        "count",
        "sort",
        "reverse",
        "startswith",
        "endswith",
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "rsplit",
        "lower",
        "upper",
        "replace",
        "isdigit",
        "isalpha",
        "bit_length",
        "bit_count",
        "to_bytes",
        "from_bytes",
        "is_integer",
        "conjugate",
        "most_common",
    }
)

#: Decorators that leave a function returning what its body returns.
TRANSPARENT_DECORATORS: frozenset[str] = frozenset(
    {
        "builtins.staticmethod",
        "builtins.classmethod",
        "functools.wraps",
        "abc.abstractmethod",
        "typing.final",
        "typing.override",
        "typing_extensions.override",
        "typing_extensions.final",
        "typing.no_type_check",
        "tenacity.retry",
        "backoff.on_exception",
        "backoff.on_predicate",
        "trio.lowlevel.enable_ki_protection",
        "trio.lowlevel.disable_ki_protection",
    }
)

#: Decorators after which calling the function does something else than calling it.
OPAQUE_DECORATORS: frozenset[str] = frozenset(
    {
        "contextlib.asynccontextmanager",
        "contextlib.contextmanager",
        "builtins.property",
        "functools.cached_property",
        "typing.overload",
        "typing_extensions.overload",
        "functools.singledispatch",
        "functools.lru_cache",
        "functools.cache",
    }
)


def canonical(name: str) -> str:
    """Map another spelling of a known name onto the catalogued one.

    ``queue.LifoQueue.get`` becomes ``queue.Queue.get``; unknown names come back unchanged.
    """
    alias = TYPE_ALIASES.get(name)
    if alias is not None:
        return alias
    owner, _, member = name.rpartition(".")
    if owner:
        owner_alias = TYPE_ALIASES.get(owner)
        if owner_alias is not None:
            return f"{owner_alias}.{member}"
    return name


def public_name(target: str) -> str:
    """A qualified name as users know it (no ``builtins.``, no internal type names)."""
    return target.removeprefix("builtins.").replace("queue.UnboundedQueue", "queue.Queue")


def blocking_entry(target: str) -> Blocking | None:
    """The catalogue entry for a fully qualified callee, if it blocks."""
    entry = BLOCKING.get(target)
    if entry is not None:
        return entry
    owner, _, method = target.rpartition(".")
    typed = BLOCKING_TYPES.get(owner)
    if typed is not None and method not in typed[1] and not method.startswith("_"):
        return typed[0]
    return None


@functools.cache
def _known_names() -> frozenset[str]:
    names: set[str] = {
        *BLOCKING,
        *BLOCKING_TYPES,
        *COROUTINE_FUNCTIONS,
        *TASK_SPAWNERS,
        *THREAD_OFFLOADS,
        *RETURNS,
        *PURE_FUNCTIONS,
        *TYPE_ALIASES,
    }
    # The types and modules these belong to: ``threading.Lock``, ``os.path``.
    names.update([name.rpartition(".")[0] for name in names])
    names.discard("")
    return frozenset(names)


def is_known(name: str) -> bool:
    """Whether the catalogue says anything about a qualified name (or its members)."""
    return name in _known_names()


def is_pure_call(target: str | None, method: str) -> bool:
    """Whether a call is plain computation (for the CPU-bound rules)."""
    if target is None:
        return method in PURE_METHODS
    if target in PURE_FUNCTIONS:
        return True
    return target.startswith(PURE_MODULES)
