"""The content-hash cache: facts of unchanged files are not recomputed.

Like ruff's cache, it lives in a directory at the project root
(``.concurrency-lint-cache`` unless configured), holds one pickle per linter version, and is
keyed by the file's path and a hash of its content and module name. A rerun on an unchanged
tree reads and hashes each file, and nothing else: no parsing, not even an import of libcst.
Positions computed for findings are stored alongside, so a warm rerun with findings is as
cheap as one without. A cache that cannot be read is ignored; one that cannot be written is
reported once on stderr and the run goes on.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path

from concurrency_lint.facts import FileFacts

#: Bump when the facts, the extractor or the catalogue change what a cached entry means.
FORMAT = 2

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


def _version_tag() -> str:
    from concurrency_lint.version import version

    python = f"{sys.version_info[0]}{sys.version_info[1]}"
    return f"v{version()}-f{FORMAT}-py{python}"


class Cache:
    """Entries by absolute path, loaded at start and saved once at the end."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.entries: dict[str, Entry] = {}
        self.dirty = False
        if directory is not None:
            self._load()

    @property
    def _file(self) -> Path:
        assert self.directory is not None
        return self.directory / f"facts-{_version_tag()}.pickle"

    def _load(self) -> None:
        try:
            with self._file.open("rb") as handle:
                entries = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, TypeError, ValueError):
            return
        if isinstance(entries, dict):
            self.entries = entries

    def get(self, path: str, key: str) -> Entry | None:
        entry = self.entries.get(path)
        if entry is not None and entry.key == key:
            return entry
        return None

    def put(self, path: str, entry: Entry) -> None:
        self.entries[path] = entry
        self.dirty = True

    def save(self) -> str | None:
        """Write the cache if anything changed; return an error message if it failed."""
        if self.directory is None or not self.dirty:
            return None
        # Forget files that no longer exist, so the cache does not grow forever.
        import tempfile

        entries = {path: entry for path, entry in self.entries.items() if os.path.exists(path)}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            ignore = self.directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Created by concurrency-lint.\n*\n", encoding="utf-8")
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as stream:
                    pickle.dump(entries, stream, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(temporary, self._file)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as error:
            return f"cannot write the cache in {self.directory}: {error.strerror or error}"
        self.dirty = False
        return None
