"""Where things happen: tell user code from library code, capture and format source locations.

Detectors report "where" as ``path/to/file.py:LINE: source line``, always pointing at the
innermost frame of *user* code: code that is neither the standard library, nor an installed
package, nor this plugin. Classification is cached per file name, so capturing a location
costs a short walk up the stack and a few dictionary look-ups.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import site
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from types import CodeType, FrameType
from typing import NamedTuple

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The working directory when we were imported, to make relative code paths absolute without
# a system call: classification runs inside event loops, where tools such as blockbuster
# rightly object to os.getcwd() or os.path.abspath().
_START_DIR = os.getcwd()


def absolute(filename: str) -> str:
    """``filename`` made absolute and normalised, by string operations only."""
    if not os.path.isabs(filename):
        filename = os.path.join(_START_DIR, filename)
    return os.path.normpath(filename)


def _library_prefixes() -> tuple[str, ...]:
    scheme = sysconfig.get_paths()  # expands every path of the scheme: call it once
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    paths = {scheme[key] for key in keys if scheme.get(key)}
    # Some embedded interpreters have no site.getsitepackages.
    with contextlib.suppress(AttributeError):
        paths.update(site.getsitepackages())
    user_site = getattr(site, "USER_SITE", None)
    if user_site:
        paths.add(user_site)
    normalised = {os.path.realpath(p) for p in paths} | {os.path.abspath(p) for p in paths}
    return tuple(sorted(p.rstrip(os.sep) + os.sep for p in normalised if p))


_LIBRARY_PREFIXES = _library_prefixes()
_PACKAGE_PREFIX = _PACKAGE_DIR + os.sep
_is_user_cache: dict[str, bool] = {}


def is_user_file(filename: str) -> bool:
    """True when ``filename`` is user code: not stdlib, not an installed package, not us."""
    cached = _is_user_cache.get(filename)
    if cached is not None:
        return cached
    result = _classify(filename)
    _is_user_cache[filename] = result
    return result


def _classify(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return False
    path = absolute(filename)
    if path.startswith(_PACKAGE_PREFIX):
        # Our own sample apps and tests live beside the package, not in it.
        return False
    if f"{os.sep}site-packages{os.sep}" in path or f"{os.sep}dist-packages{os.sep}" in path:
        return False
    return not any(path.startswith(prefix) for prefix in _LIBRARY_PREFIXES)


class Location(NamedTuple):
    """One line of code: a file, a line number and the function it is in.

    A named tuple rather than a dataclass: one is made for every task, thread and process
    created during a test, and a tuple is several times cheaper to make.
    """

    filename: str
    lineno: int
    function: str = ""

    @property
    def is_user(self) -> bool:
        return is_user_file(self.filename)

    def source(self) -> str:
        """The stripped source text of the line, or an empty string when unavailable."""
        return linecache.getline(self.filename, self.lineno).strip()

    def short(self, root: str | None = None) -> str:
        """``path:LINE`` with the path relative to ``root`` (default: the working directory)."""
        return f"{display_path(self.filename, root)}:{self.lineno}"

    def describe(self, root: str | None = None) -> str:
        """``path:LINE: source line``, the form every report uses."""
        text = self.source()
        return f"{self.short(root)}: {text}" if text else self.short(root)


def display_path(filename: str, root: str | None = None) -> str:
    """Show ``filename`` relative to ``root`` when it lies under it, absolute otherwise."""
    if filename.startswith("<"):
        return filename
    base = os.path.abspath(root or os.getcwd())
    path = os.path.abspath(filename)
    if path == base or path.startswith(base + os.sep):
        return os.path.relpath(path, base)
    return path


Stack = tuple[Location, ...]


_boundary_codes: dict[int, object] = {}
"""Code objects that run a loop step, by ``id`` (a code object's hash is slow: see
:data:`_code_kind`); the values keep them alive."""
_boundary_functions: dict[str, tuple[str, ...]] = {}
"""Functions that run a loop step: their name, and the ends of the file names they are in."""


def add_step_boundary(code: object = None, *, function: str = "", file_suffix: str = "") -> None:
    """Declare a frame that runs one loop step: stacks sampled during a step stop below it.

    Either a code object (our own step wrappers) or a function name with the end of its file
    name (a library's scheduler, such as trio's ``unrolled_run`` in ``trio/_core/_run.py``).
    """
    added = False
    if code is not None and id(code) not in _boundary_codes:
        _boundary_codes[id(code)] = code
        added = True
    suffixes = _boundary_functions.get(function, ())
    if function and file_suffix not in suffixes:
        _boundary_functions[function] = (*suffixes, file_suffix)
        added = True
    if added:  # uvloop's hooks declare the same code for every callback they wrap
        _forget_code_kinds()


def _is_boundary(code: CodeType) -> bool:
    if id(code) in _boundary_codes:
        return True
    suffixes = _boundary_functions.get(code.co_name)
    return suffixes is not None and code.co_filename.endswith(suffixes)


def walk(frame: FrameType | None, limit: int = 200) -> Stack:
    """The stack from ``frame`` outwards (innermost first), stopping at a step boundary."""
    out: list[Location] = []
    while frame is not None and len(out) < limit:
        code = frame.f_code
        if _is_boundary(code):
            break
        out.append(Location(code.co_filename, frame.f_lineno or code.co_firstlineno, code.co_name))
        frame = frame.f_back
    return tuple(out)


_LIBRARY, _USER, _RUNNER, _STEP, _OURS = 0, 1, 2, 3, 4
_code_kind: dict[int, int] = {}
"""The kind of each code object seen, by ``id``: a code object's hash is worked out anew on
every look-up, from its name, bytecode and constants, which costs more than the walk itself.
:data:`_codes_seen` keeps each of them alive, so that no ``id`` is reused while cached."""
_codes_seen: list[CodeType] = []


def _forget_code_kinds() -> None:
    _code_kind.clear()
    _codes_seen.clear()


# Test runners and their async plugins: a creation reached through these with no user code in
# between is the runner's own (the task pytest-asyncio runs a test in, anyio's runner task),
# even when a decorator such as hypothesis's @given lies further out with the test's file name.
_RUNNER_PACKAGES = ("pluggy", "_pytest", "pytest_asyncio", "pytest_trio")
_RUNNER_MODULES = ("anyio.pytest_plugin",)
_runner_paths: tuple[str, ...] = ()


def refresh_runner_paths() -> None:
    """Find the test runners imported so far (called when the hooks are installed)."""
    global _runner_paths
    paths = []
    for name in _RUNNER_PACKAGES:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            paths.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    for name in _RUNNER_MODULES:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            paths.append(os.path.abspath(path))
    if tuple(paths) != _runner_paths:
        _runner_paths = tuple(paths)
        _forget_code_kinds()


def _kind_of(code: CodeType) -> int:
    kind = _code_kind.get(id(code))
    if kind is None:
        filename = code.co_filename
        if _is_boundary(code):
            kind = _STEP
        elif is_user_file(filename):
            kind = _USER
        elif _runner_paths and absolute(filename).startswith(_runner_paths):
            kind = _RUNNER
        elif filename.startswith(_PACKAGE_PREFIX):
            kind = _OURS
        else:
            kind = _LIBRARY
        _codes_seen.append(code)
        _code_kind[id(code)] = kind
    return kind


CodeSite = tuple[CodeType, int]
"""A line as the creation-time walk finds it: the code and the offset of the instruction
running in it. :func:`location_of` turns it into a :class:`Location` when a report needs
one: working out a line number costs more than the rest of the walk."""


def location_of(site: CodeSite) -> Location:
    """The :class:`Location` of a :data:`CodeSite` (the line a frame's ``f_lineno`` gives)."""
    code, offset = site
    lineno = code.co_firstlineno
    for start, end, line in code.co_lines():
        if start <= offset < end:
            if line is not None:
                lineno = line
            break
    return Location(code.co_filename, lineno, code.co_name)


SiteKind = int
"""What :func:`caller_site` found: :data:`USER_CODE`, :data:`LOOP_STEP` or :data:`NO_USER_CODE`."""
NO_USER_CODE: SiteKind = 0
USER_CODE: SiteKind = 1
LOOP_STEP: SiteKind = 2
"""No user code within the current event-loop step: the loop made it on a callback's behalf."""


def caller_site(
    skip: int = 1, limit: int = 60, fallback: bool = True
) -> tuple[CodeSite | None, SiteKind]:
    """The innermost *user* frame calling us, skipping ``skip`` frames of our own.

    Used at creation time (``create_task``, ``Thread.start``, ``Popen``): a short walk
    outwards that stops at the first frame of user code. It gives up at a test runner's own
    frames (pluggy, pytest, its async plugins), beyond which there is no code of the test, and
    at the start of the running event-loop step, beyond which lies the code that started the
    loop, not the code that made this. Returns the site and what was found; without user
    code, the innermost frame outside this plugin is returned when ``fallback`` is true or the
    walk reached the start of a loop step (else None: a location the caller would not use).
    """
    try:
        frame: FrameType | None = sys._getframe(skip + 1)
    except ValueError:
        return None, NO_USER_CODE
    library_frame: FrameType | None = None
    found = NO_USER_CODE
    depth = 0
    code_kind = _code_kind
    while frame is not None and depth < limit:
        code = frame.f_code
        kind = code_kind.get(id(code))
        if kind is None:
            kind = _kind_of(code)
        if kind == _USER:
            return (code, frame.f_lasti), USER_CODE
        if kind == _RUNNER:
            break
        if kind == _STEP:
            found = LOOP_STEP
            break
        if kind == _LIBRARY and library_frame is None:
            library_frame = frame
        frame = frame.f_back
        depth += 1
    if library_frame is None or not (fallback or found == LOOP_STEP):
        return None, found
    return (library_frame.f_code, library_frame.f_lasti), found


def user_frames(stack: Sequence[Location]) -> list[Location]:
    """The user frames of ``stack``, innermost first."""
    return [loc for loc in stack if loc.is_user]


def innermost_user(stack: Iterable[Location]) -> Location | None:
    for loc in stack:
        if loc.is_user:
            return loc
    return None


def code_location(func: object) -> Location | None:
    """Where a callable is defined, seeing through bound methods and ``functools.partial``."""
    seen = 0
    while seen < 10:
        seen += 1
        inner = getattr(func, "func", None)  # functools.partial
        if inner is not None and callable(inner):
            func = inner
            continue
        inner = getattr(func, "__func__", None)  # bound method
        if inner is not None:
            func = inner
            continue
        inner = getattr(func, "__wrapped__", None)
        if inner is not None:
            func = inner
            continue
        break
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    return Location(code.co_filename, code.co_firstlineno, code.co_name)


def callable_name(func: object) -> str:
    """A readable name for a callable: its qualified name, or its repr as a last resort."""
    inner = getattr(func, "func", None)
    if inner is not None and callable(inner):
        return f"functools.partial({callable_name(inner)})"
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if isinstance(name, str):
        return name
    return type(func).__qualname__
