"""Which files to lint, and what module each one is.

Directories are walked for ``*.py`` files, skipping excluded names (the built-in defaults
such as ``.git``, ``.venv`` and ``build``, plus the configured ``exclude`` patterns).
A pattern without a slash matches a file or directory name anywhere below the directory
being walked; a pattern with a slash matches the path relative to the project root.
Explicitly named files are checked against the same patterns (so a pre-commit run skips
excluded files), explicitly named directories are always walked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path


class Excluder:
    """Decides whether a path is excluded."""

    def __init__(self, patterns: Sequence[str], root: Path) -> None:
        self.root = root
        self.name_patterns = [p for p in patterns if "/" not in p.strip("/")]
        self.path_patterns = [p.strip("/") for p in patterns if "/" in p.strip("/")]

    def name_excluded(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self.name_patterns)

    def path_excluded(self, path: str) -> bool:
        if not self.path_patterns:
            return False
        try:
            relative = Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return False
        return any(
            fnmatchcase(relative, pattern) or fnmatchcase(relative, pattern + "/*")
            for pattern in self.path_patterns
        )


def python_files(paths: Iterable[str], excluder: Excluder) -> Iterator[str]:
    """Every file to lint under the given paths, each once, in a stable order."""
    seen: set[str] = set()
    for given in paths:
        if os.path.isdir(given):
            found = _walk(given, excluder)
        else:
            name = os.path.basename(given)
            found = (
                iter(())
                if excluder.name_excluded(name) or excluder.path_excluded(given)
                else iter([given])
            )
        for path in found:
            key = os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                yield path


def _walk(top: str, excluder: Excluder) -> Iterator[str]:
    for directory, subdirectories, files in os.walk(top):
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if not excluder.name_excluded(name)
            and not excluder.path_excluded(os.path.join(directory, name))
        )
        for name in sorted(files):
            if not name.endswith(".py") or excluder.name_excluded(name):
                continue
            path = os.path.join(directory, name)
            if not excluder.path_excluded(path):
                yield path


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


def _identifier(name: str) -> str:
    return name.replace("-", "_").replace(".", "_") or "_"


def module_file(root: str, module: str) -> str | None:
    """The file of ``module`` under an import root, if there is one."""
    base = os.path.join(root, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None
