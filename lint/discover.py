"""Which files to lint, and what module each one is.

Directories are walked for ``*.py`` files, skipping excluded names (the built-in defaults
such as ``.git``, ``.venv`` and ``build``, plus the configured ``exclude`` and
``extend-exclude`` patterns). A pattern without a slash matches a file or directory name; a
pattern with a slash matches the path relative to the project root (the directory of
``pyproject.toml``, else the working directory).

A path named on the command line is skipped when it is excluded itself or lies in an
excluded directory: its own name and the name of every directory between the project root
(or the working directory, when that is below the root) and it are checked; for a file
outside both, only its own name. pre-commit passes each staged file by name, so
``build/x.py`` or ``.venv/lib/y.py`` stay unlinted there too; ``--exclude ''`` lints
everything. Only regular files are read: a named pipe or a socket called ``x.py`` is
skipped (reading it could wait forever); a broken symbolic link is reported as unreadable.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path


class Excluder:
    """Decides whether a path is excluded."""

    def __init__(self, patterns: Sequence[str], root: Path) -> None:
        self.root = root
        self.name_patterns = [p for p in patterns if p.strip("/") and "/" not in p.strip("/")]
        self.path_patterns = [p.strip("/") for p in patterns if "/" in p.strip("/")]
        self._bases = tuple(
            dict.fromkeys(
                os.path.normcase(base)
                for base in (os.path.abspath(root), os.path.realpath(root), os.getcwd())
            )
        )

    def name_excluded(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self.name_patterns)

    def path_excluded(self, path: str) -> bool:
        if not self.path_patterns:
            return False
        try:
            relative = Path(path).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return False
        return any(
            fnmatchcase(relative, pattern) or fnmatchcase(relative, pattern + "/*")
            for pattern in self.path_patterns
        )

    def excluded(self, path: str) -> bool:
        """Whether a path named on the command line is excluded: by its own name, the name
        of a directory between the project root and it, or its path from the root."""
        if any(self.name_excluded(part) for part in self._parts(path)):
            return True
        return self.path_excluded(path)

    def _parts(self, path: str) -> list[str]:
        """The names below the project root, or below the working directory when that is
        deeper, down to ``path`` (so the directories above a project never exclude it)."""
        absolute = os.path.normcase(os.path.abspath(path))
        best: list[str] | None = None
        for base in self._bases:
            if absolute == base:
                return []
            prefix = base.rstrip(os.sep) + os.sep
            if absolute.startswith(prefix):
                parts = absolute[len(prefix) :].split(os.sep)
                if best is None or len(parts) < len(best):
                    best = parts
        return best if best is not None else [os.path.basename(absolute)]


def is_regular_file(path: str) -> bool:
    """Whether ``path`` is a regular file (symbolic links followed)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def python_files(
    paths: Iterable[str], excluder: Excluder, notes: list[str] | None = None
) -> Iterator[str]:
    """Every file to lint under the given paths, each once, in a stable order.

    Excluded paths are skipped even when named explicitly (see the module's documentation).
    A named directory that is excluded, or a named path that is neither a directory nor a
    regular file, gets a one-line note in ``notes``.
    """
    seen: set[str] = set()
    for given in paths:
        if excluder.excluded(given):
            if notes is not None and os.path.isdir(given):
                notes.append(
                    f"{given}: excluded by the exclude patterns, not linted "
                    "(--exclude '' lints everything)"
                )
            continue
        if os.path.isdir(given):
            found: Iterator[str] = _walk(given, excluder)
        elif is_regular_file(given):
            found = iter([given])
        else:
            if notes is not None:
                notes.append(f"{given}: not a regular file, skipped")
            continue
        for path in found:
            key = os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                yield path


def _walk(top: str, excluder: Excluder) -> Iterator[str]:
    """The ``*.py`` regular files below ``top``, depth first, each directory's files before
    its subdirectories, names sorted; symbolic links to directories are not followed."""
    pending = [top]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                listed = sorted(entries, key=lambda entry: entry.name)
        except OSError:
            continue
        subdirectories: list[str] = []
        for entry in listed:
            name = entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not excluder.name_excluded(name):
                        path = os.path.join(directory, name)
                        if not excluder.path_excluded(path):
                            subdirectories.append(path)
                    continue
                if not name.endswith(".py") or excluder.name_excluded(name):
                    continue
                path = os.path.join(directory, name)
                if not entry.is_file() and os.path.exists(path):
                    continue  # a named pipe or a socket (a broken link is reported unreadable)
            except OSError:
                continue
            if not excluder.path_excluded(path):
                yield path
        pending.extend(reversed(subdirectories))


class ModuleNamer:
    """The dotted module name of a file, as Python would import it.

    Walks up through directories that have an ``__init__.py``: ``src/shop/db.py`` is
    ``shop.db`` when ``src/shop/__init__.py`` exists. The directory above the top package
    is the file's import root, where its absolute imports are looked for.
    """

    def __init__(self) -> None:
        self._is_package: dict[str, bool] = {}

    def _package_dir(self, directory: str) -> bool:
        known = self._is_package.get(directory)
        if known is None:
            known = os.path.isfile(os.path.join(directory, "__init__.py"))
            self._is_package[directory] = known
        return known

    def name(self, path: str) -> tuple[str, bool, str]:
        """``(module name, is a package __init__, import root)`` of a file."""
        absolute = os.path.abspath(path)
        directory, filename = os.path.split(absolute)
        stem = filename[:-3] if filename.endswith(".py") else filename
        is_package = stem == "__init__"
        parts = [] if is_package else [_identifier(stem)]
        while self._package_dir(directory):
            directory, package = os.path.split(directory)
            parts.append(_identifier(package))
            if not package:
                break
        parts.reverse()
        return ".".join(parts) or "__init__", is_package, directory


_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")


def project_roots(root: str) -> tuple[str, ...]:
    """Further import roots for the files under ``root``: the project they belong to.

    A test file in ``tests/`` (without ``__init__.py``) has ``tests/`` as its import root, yet
    imports the project's package from the directory above, as pytest and an installed project
    let it. The nearest directory at or above ``root`` with ``pyproject.toml``, ``setup.py`` or
    ``setup.cfg`` is that project's; it and its ``src/`` (the src layout), when they are not
    ``root`` itself, are where such imports are looked for next.
    """
    if os.path.basename(root) in ("site-packages", "dist-packages"):
        return ()
    directory = root
    while True:
        if any(os.path.isfile(os.path.join(directory, name)) for name in _PROJECT_MARKERS):
            break
        parent = os.path.dirname(directory)
        if parent == directory:
            return ()
        directory = parent
    found = [directory, os.path.join(directory, "src")]
    return tuple(path for path in found if path != root and os.path.isdir(path))


def _identifier(name: str) -> str:
    return name.replace("-", "_").replace(".", "_") or "_"


def module_candidates(root: str, module: str) -> tuple[str, str]:
    """The files that would be ``module`` under an import root: a module or a package."""
    base = os.path.join(root, *module.split("."))
    return base + ".py", os.path.join(base, "__init__.py")


def module_file(root: str, module: str) -> str | None:
    """The file of ``module`` under an import root, if there is one."""
    for candidate in module_candidates(root, module):
        if os.path.isfile(candidate):
            return candidate
    return None
