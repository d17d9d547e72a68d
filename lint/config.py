"""Settings from ``[tool.concurrency-lint]`` in pyproject.toml, validated strictly.

An unknown key, a value of the wrong type or an unknown rule code is a
:class:`ConfigError` with a one-line message naming the file, the key and what is
accepted; the command line turns it into exit status 2.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 has no tomllib
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

from concurrency_lint.catalogue import FRAMEWORKS

SECTION = "tool.concurrency-lint"
DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    "__pycache__",
    "build",
    "dist",
    "node_modules",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".concurrency-lint-cache",
    "site-packages",
)
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")


class ConfigError(Exception):
    """A configuration or usage mistake: reported in one line, exit status 2."""


@dataclass
class Settings:
    """Everything that changes what the linter reports."""

    select: tuple[str, ...] = ("CC",)
    ignore: tuple[str, ...] = ()
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Patterns of paths not to lint; the default skips VCS, virtualenv and build
    #: directories. ``extend_exclude`` adds to it without replacing it.
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    #: Qualified name -> suggested replacement ("" for the generic advice).
    extra_blocking_calls: dict[str, str] = field(default_factory=dict)
    extra_coroutine_functions: tuple[str, ...] = ()
    #: Qualified name -> where the callable is: a position ("0") or a keyword name.
    extra_thread_offload_functions: dict[str, str] = field(default_factory=dict)
    #: "auto" (from each module's imports) or one of FRAMEWORKS.
    framework: str = "auto"
    cache_dir: str | None = None
    #: Directory the relative patterns are relative to (the pyproject.toml's).
    root: Path = field(default_factory=Path.cwd)
    #: The file the settings came from, if any.
    source: Path | None = None

    def is_enabled(self, code: str, extra_ignores: Sequence[str] = ()) -> bool:
        """Whether a code is selected: the most specific matching prefix decides.

        ``select = ["CC1"]`` with ``ignore = ["CC103"]`` reports CC101 but not CC103;
        ``select = ["CC103"]`` with ``ignore = ["CC1"]`` reports CC103. On a tie, ignore
        wins.
        """
        selected = max((len(p) for p in self.select if code.startswith(p)), default=-1)
        ignored = max(
            (len(p) for p in (*self.ignore, *extra_ignores) if code.startswith(p)), default=-1
        )
        return selected > ignored


def known_codes() -> tuple[str, ...]:
    from concurrency_lint.rules import CODES

    return CODES


def check_codes(codes: Sequence[str], where: str) -> tuple[str, ...]:
    """Validate rule codes or prefixes (``CC101``, ``CC1``, ``CC``, ``ALL``)."""
    known = known_codes()
    result: list[str] = []
    for code in codes:
        code = code.strip().upper()
        if code == "ALL":
            code = "CC"
        if not code or not any(known_code.startswith(code) for known_code in known):
            raise ConfigError(
                f"{where}: unknown rule code or prefix {code!r}; known codes: {', '.join(known)}"
            )
        result.append(code)
    return tuple(result)


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` that has our section."""
    directory = start if start.is_dir() else start.parent
    for candidate in (directory, *directory.parents):
        path = candidate / "pyproject.toml"
        if path.is_file():
            try:
                data = _read_toml(path)
            except ConfigError:
                return path  # let load() report the broken file
            if "concurrency-lint" in data.get("tool", {}):
                return path
    return None


#: What marks the root of a project that has no ``[tool.concurrency-lint]`` table.
_PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git", ".hg")


def project_root(start: Path) -> Path:
    """The project a path belongs to, when no configuration names it: the nearest directory
    at or above ``start`` with a ``pyproject.toml``, ``setup.cfg``, ``setup.py`` or a VCS
    directory; else the working directory. The cache goes there, and exclude patterns with
    a slash are relative to it."""
    directory = start.resolve() if start.is_dir() else start.resolve().parent
    for candidate in (directory, *directory.parents):
        if any(os.path.exists(candidate / marker) for marker in _PROJECT_MARKERS):
            return candidate
    return Path.cwd().resolve()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
            return data
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None


def load(path: Path | None, *, root: Path | None = None) -> Settings:
    """Settings from a pyproject.toml (or defaults when ``path`` is None)."""
    if path is None:
        return Settings(root=(root or Path.cwd()).resolve())
    data = _read_toml(path)
    section = data.get("tool", {}).get("concurrency-lint", {})
    where = f"{path}: [{SECTION}]"
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be a table")
    return parse_section(section, where, root=path.parent.resolve(), source=path)


_KEYS = (
    "select",
    "ignore",
    "per-file-ignores",
    "exclude",
    "extend-exclude",
    "extra-blocking-calls",
    "extra-coroutine-functions",
    "extra-thread-offload-functions",
    "framework",
    "cache-dir",
)


def parse_section(
    section: Mapping[str, Any], where: str, *, root: Path, source: Path | None = None
) -> Settings:
    """Validate a ``[tool.concurrency-lint]`` table and build the settings."""
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(_KEYS)}")
    settings = Settings(root=root, source=source)
    if "select" in section:
        settings.select = check_codes(_strings(section, "select", where), f"{where} select")
    if "ignore" in section:
        settings.ignore = check_codes(_strings(section, "ignore", where), f"{where} ignore")
    if "per-file-ignores" in section:
        table = section["per-file-ignores"]
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: 'per-file-ignores' must be a table of pattern = [codes]")
        for pattern, codes in table.items():
            key_where = f"{where} per-file-ignores.{pattern!r}"
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise ConfigError(f"{key_where} must be a list of rule codes")
            settings.per_file_ignores[pattern] = check_codes(codes, key_where)
    if "exclude" in section:
        settings.exclude = tuple(_strings(section, "exclude", where))
    if "extend-exclude" in section:
        settings.extend_exclude = tuple(_strings(section, "extend-exclude", where))
    if "extra-blocking-calls" in section:
        settings.extra_blocking_calls = _names_with_values(
            section["extra-blocking-calls"], "extra-blocking-calls", where, str, ""
        )
    if "extra-coroutine-functions" in section:
        names = _strings(section, "extra-coroutine-functions", where)
        for name in names:
            _check_dotted(name, "extra-coroutine-functions", where)
        settings.extra_coroutine_functions = tuple(names)
    if "extra-thread-offload-functions" in section:
        offloads = _names_with_values(
            section["extra-thread-offload-functions"],
            "extra-thread-offload-functions",
            where,
            (int, str),
            0,
        )
        for name, argument in offloads.items():
            if isinstance(argument, str) and not _IDENTIFIER.match(argument):
                raise ConfigError(
                    f"{where}: extra-thread-offload-functions.{name!r} must be an argument "
                    f"position or keyword name, got {argument!r}"
                )
            if isinstance(argument, int) and (isinstance(argument, bool) or argument < 0):
                raise ConfigError(
                    f"{where}: extra-thread-offload-functions.{name!r} must be an argument "
                    f"position (0, 1, ...) or keyword name, got {argument!r}"
                )
        settings.extra_thread_offload_functions = {
            name: str(argument) for name, argument in offloads.items()
        }
    if "framework" in section:
        framework = section["framework"]
        choices = ("auto", *FRAMEWORKS)
        if framework not in choices:
            raise ConfigError(
                f"{where}: 'framework' must be one of {', '.join(choices)}, got {framework!r}"
            )
        settings.framework = framework
    if "cache-dir" in section:
        cache_dir = section["cache-dir"]
        if not isinstance(cache_dir, str) or not cache_dir:
            raise ConfigError(f"{where}: 'cache-dir' must be a path string, got {cache_dir!r}")
        settings.cache_dir = os.path.join(root, cache_dir)
    return settings


def _strings(section: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = section[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: {key!r} must be a list of strings, got {value!r}")
    return list(value)


def _check_dotted(name: str, key: str, where: str) -> None:
    if not _DOTTED.match(name):
        raise ConfigError(
            f"{where}: {key} entry {name!r} is not a qualified name like 'package.module.function'"
        )


def _names_with_values(
    value: Any, key: str, where: str, value_type: type | tuple[type, ...], default: Any
) -> dict[str, Any]:
    """A list of qualified names, or a table of qualified name = value."""
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{where}: {key!r} must be a list of qualified names or a table")
        result = dict.fromkeys(value, default)
    elif isinstance(value, dict):
        result = {}
        for name, item in value.items():
            if not isinstance(item, value_type) or isinstance(item, bool):
                raise ConfigError(
                    f"{where}: {key}.{name!r} has a value of the wrong type: {item!r}"
                )
            result[name] = item
    else:
        raise ConfigError(f"{where}: {key!r} must be a list of qualified names or a table")
    for name in result:
        _check_dotted(name, key, where)
    return result
