"""The content-hash cache: facts of unchanged files are not recomputed.

Like ruff's cache, it lives in a directory at the project root
(``.concurrency-lint-cache`` unless configured), holds one file per linter version, and is
keyed by the file's path and a hash of its content and module name. A rerun on an unchanged
tree reads and hashes each file, and nothing else: no parsing, not even an import of libcst.
Entries are stored as plain tuples with :mod:`marshal` (several times faster to load than
pickled objects) and turned back into facts only for the files the run looks at.
Positions computed for findings are stored alongside, so a warm rerun with findings is as
cheap as one without. A cache that cannot be read is ignored; one that cannot be written is
reported once on stderr and the run goes on.
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from concurrency_lint.facts import (
    ArgRef,
    CallFact,
    ClassFacts,
    FileFacts,
    FunctionFacts,
    ParseError,
)

#: Bump when the facts, the extractor or the catalogue change what a cached entry means.
FORMAT = 6

Span = tuple[int, int, int, int]  # line, column, end line, end column (1-based)


@dataclass(slots=True)
class Entry:
    """What the cache knows about one file."""

    key: str
    facts: FileFacts
    spans: dict[int, Span] = field(default_factory=dict)
    #: Line -> codes its noqa comment suppresses (empty: every code), for the lines
    #: looked at so far.
    noqa: dict[int, frozenset[str]] = field(default_factory=dict)
    noqa_lines: set[int] = field(default_factory=set)


def content_key(data: bytes, module: str, is_package: bool) -> str:
    """The cache key of a file's content as a given module."""
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    return f"{module}:{int(is_package)}:{digest}"


#: The modules whose code decides what a file's facts are.
_FACT_SOURCES = ("analyse.py", "catalogue.py", "extract.py", "facts.py", "walk.py")


@functools.cache
def _version_tag() -> str:
    """Version, format, Python, and a hash of the code that computes facts (so that an
    edited checkout never reads facts its old code computed)."""
    from concurrency_lint.version import version

    digest = hashlib.blake2b(digest_size=6)
    here = Path(__file__).parent
    for name in _FACT_SOURCES:
        try:
            digest.update((here / name).read_bytes())
        except OSError:
            digest.update(name.encode())
    python = f"{sys.version_info[0]}{sys.version_info[1]}"
    return f"v{version()}-f{FORMAT}-py{python}-{digest.hexdigest()}"


#: How many recent runs (different sets of files, or settings) to remember.
_KEPT_RUNS = 16

_CALL_FIELDS = tuple(f.name for f in fields(CallFact))
_FUNCTION_FIELDS = tuple(f.name for f in fields(FunctionFacts))
_CLASS_FIELDS = tuple(f.name for f in fields(ClassFacts))
_REFS = _CALL_FIELDS.index("refs")


def _encode_call(call: CallFact) -> tuple[Any, ...]:
    values = [getattr(call, name) for name in _CALL_FIELDS]
    values[_REFS] = {key: (ref.kind, ref.target) for key, ref in call.refs.items()}
    return tuple(values)


def _decode_call(values: tuple[Any, ...]) -> CallFact:
    call = CallFact(*values)
    if call.refs:
        call.refs = {key: ArgRef(*ref) for key, ref in call.refs.items()}  # type: ignore[misc]
    return call


def encode_facts(facts: FileFacts) -> tuple[Any, ...]:
    """Facts as nested builtins that :mod:`marshal` can store."""
    error = facts.error
    return (
        facts.module,
        facts.is_package,
        None if error is None else (error.message, error.line, error.column),
        tuple(facts.frameworks),
        facts.exports,
        tuple(facts.star_imports),
        facts.all_names,
        tuple(facts.imported_modules),
        facts.framework_names,
        tuple(
            tuple(getattr(f, name) for name in _FUNCTION_FIELDS) for f in facts.functions.values()
        ),
        tuple(tuple(getattr(c, name) for name in _CLASS_FIELDS) for c in facts.classes.values()),
        tuple(_encode_call(call) for call in facts.calls),
        facts.anchor_count,
        facts.line_count,
    )


def decode_facts(values: tuple[Any, ...]) -> FileFacts:
    """The inverse of :func:`encode_facts`."""
    (module, is_package, error, frameworks, exports, stars, all_names, imported,
     framework_names, functions, classes, calls, anchor_count, line_count) = values  # fmt: skip
    function_facts = [FunctionFacts(*function) for function in functions]
    class_facts = [ClassFacts(*class_values) for class_values in classes]
    return FileFacts(
        module=module,
        is_package=is_package,
        error=None if error is None else ParseError(*error),
        frameworks=set(frameworks),
        exports=exports,
        star_imports=list(stars),
        all_names=all_names,
        imported_modules=set(imported),
        framework_names=framework_names,
        functions={function.qualname: function for function in function_facts},
        classes={class_.qualname: class_ for class_ in class_facts},
        calls=[_decode_call(call) for call in calls],
        anchor_count=anchor_count,
        line_count=line_count,
    )


class Cache:
    """Entries by absolute path, loaded at start and saved once at the end."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        #: Entries as stored, decoded on demand.
        self.stored: dict[str, tuple[Any, ...]] = {}
        self._entries_loaded = False
        self.entries: dict[str, Entry] = {}
        #: Findings of recent runs, by what they depend on (see ``Linter._signature``).
        self.runs: dict[str, Any] = {}
        self.dirty = False
        if directory is not None:
            self._load()

    @property
    def _file(self) -> Path:
        assert self.directory is not None
        return self.directory / f"facts-{_version_tag()}.marshal"

    @property
    def _runs_file(self) -> Path:
        assert self.directory is not None
        return self.directory / f"runs-{_version_tag()}.marshal"

    def _load(self) -> None:
        # The runs file is small and read first: a rerun on an unchanged tree needs only it.
        self.runs = self._read(self._runs_file) or {}

    def _read(self, path: Path) -> Any:
        try:
            data = marshal.loads(path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if isinstance(data, tuple) and len(data) == 2 and data[0] == FORMAT:
            return data[1]
        return None

    def _load_entries(self) -> None:
        if self.directory is not None and not self._entries_loaded:
            self._entries_loaded = True
            self.stored = self._read(self._file) or {}

    def get_run(self, signature: str) -> Any:
        """The stored findings of an identical earlier run, if any."""
        return self.runs.get(signature)

    def put_run(self, signature: str, value: Any) -> None:
        self.runs.pop(signature, None)
        self.runs[signature] = value
        while len(self.runs) > _KEPT_RUNS:
            del self.runs[next(iter(self.runs))]
        self.dirty = True

    def get(self, path: str, key: str) -> Entry | None:
        self._load_entries()
        entry = self.entries.get(path)
        if entry is not None:
            return entry if entry.key == key else None
        stored = self.stored.get(path)
        if stored is None or stored[0] != key:
            return None
        try:
            stored_key, facts, spans, noqa, noqa_lines = stored
            entry = Entry(stored_key, decode_facts(facts), spans, noqa, noqa_lines)
        except (TypeError, ValueError):
            return None  # written by an incompatible version: treat as missing
        self.entries[path] = entry
        return entry

    def put(self, path: str, entry: Entry) -> None:
        self.entries[path] = entry
        self.dirty = True

    def save(self) -> str | None:
        """Write the cache if anything changed; return an error message if it failed."""
        if self.directory is None or not self.dirty:
            return None
        import tempfile

        self._load_entries()
        stored = dict(self.stored)
        for path, entry in self.entries.items():
            stored[path] = (
                entry.key,
                encode_facts(entry.facts),
                entry.spans,
                entry.noqa,
                entry.noqa_lines,
            )
        # Forget files that no longer exist, so the cache does not grow forever.
        stored = {path: values for path, values in stored.items() if os.path.exists(path)}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            ignore = self.directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Created by concurrency-lint.\n*\n", encoding="utf-8")
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(marshal.dumps((FORMAT, stored)))
                os.replace(temporary, self._file)
            except BaseException:
                os.unlink(temporary)
                raise
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(marshal.dumps((FORMAT, self.runs)))
                os.replace(temporary, self._runs_file)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as error:
            return f"cannot write the cache in {self.directory}: {error.strerror or error}"
        self.dirty = False
        return None
