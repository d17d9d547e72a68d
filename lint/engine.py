"""Lint a set of paths: discover, extract (in parallel, through the cache), index, check.

1. Discover the files and name their modules.
2. Extract each file's facts: from the cache when its content is unchanged, otherwise by
   parsing it once, in worker processes when there is enough work to share.
3. Follow the project's own imports outside the given paths, as far as the findings need:
   the modules defining the coroutine functions called, the sync helpers called from
   async code and, transitively, what those helpers call.
4. Index the whole project and run every enabled rule on every linted file.
5. Locate the findings (lines and columns), apply ``# noqa`` and per-file ignores.

No exception from one file stops the run: an unreadable, undecodable or unparsable file
is a CC000 finding, and so is (with a plea to report it) an internal error while analysing,
checking or locating the findings of a file; the other files' findings are still reported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from concurrency_lint import catalogue
from concurrency_lint.analyse import analyse_job, analyse_source, decode_source, failed
from concurrency_lint.cache import Cache, Entry, Span, content_key
from concurrency_lint.catalogue import Blocking, Offload
from concurrency_lint.config import ConfigError, Settings
from concurrency_lint.discover import (
    Excluder,
    ModuleNamer,
    module_candidates,
    module_file,
    project_roots,
    python_files,
)
from concurrency_lint.facts import DROPPED, STORED, FileFacts
from concurrency_lint.index import ProjectIndex
from concurrency_lint.locate import locate, noqa_comments, suppressed
from concurrency_lint.parallel import PARALLEL_THRESHOLD_BYTES, parallel_map
from concurrency_lint.rules import RULES
from concurrency_lint.rules.base import Fix, RawFinding, RuleContext

PARSE_ERROR = "CC000"
_BUG = "internal error"
_MAX_NAME_DEPTH = 16
_FRAMEWORK_PREFERENCE = ("anyio", "trio", "asyncio")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: where, which rule, what to do about it."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    message: str
    fix: Fix | None = None

    @property
    def fix_available(self) -> bool:
        return self.fix is not None


@dataclass
class LintResult:
    """The findings of a run, and what it took."""

    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    #: Files whose facts came from the cache.
    cached: int = 0
    #: Project modules outside the given paths read for the index.
    followed: int = 0
    #: Non-fatal problems worth a line on stderr (a cache that cannot be written).
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Read:
    """A file read and hashed, not analysed yet."""

    path: str
    absolute: str
    module: str
    is_package: bool
    root: str
    data: bytes | None  # None when it could not be read
    key: str


@dataclass(slots=True)
class _File:
    path: str  # as displayed
    absolute: str
    root: str  # import root
    entry: Entry | None = None
    linted: bool = True


def default_jobs() -> int:
    """All the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def display_path(path: str) -> str:
    """A path as messages show it: relative to the working directory when below it."""
    normalized = os.path.normpath(path)
    if os.path.isabs(normalized):
        try:
            relative = os.path.relpath(normalized)
        except ValueError:
            return normalized
        if not relative.startswith(".."):
            return relative
    return normalized


class Linter:
    """One run of the linter over some paths with some settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        jobs: int | None = None,
        cache_dir: Path | None = None,
        use_cache: bool = True,
        follow_imports: bool = True,
    ) -> None:
        self.settings = settings
        self.jobs = jobs or default_jobs()
        if use_cache:
            directory = cache_dir or Path(
                settings.cache_dir or settings.root / ".concurrency-lint-cache"
            )
            self.cache = Cache(directory)
        else:
            self.cache = Cache(None)
        self.follow_imports = follow_imports
        #: Below this many bytes of source to parse, stay in this process.
        self.parallel_threshold = PARALLEL_THRESHOLD_BYTES
        self.namer = ModuleNamer()
        self.files: dict[str, _File] = {}
        #: Source texts already in memory, by absolute path.
        self.texts: dict[str, str] = {}
        self._taken_modules: dict[str, str] = {}
        self._anchors: dict[Finding, int] = {}
        #: What following imports looked for and did not find, so that a replay notices
        #: when it appears: files (``shop/later.py``) and, per import root, top-level
        #: names (``later``) that were not there.
        self._absent_files: set[str] = set()
        self._absent_names: dict[str, set[str]] = {}
        #: Unexpected errors while checking or locating a file: reported as its CC000.
        self._internal_errors: dict[str, str] = {}
        #: Following imports failed: the findings must not be replayed.
        self._incomplete = False
        self.result = LintResult()
        extra_blocking = {
            name: Blocking(
                "CC109",
                "makes a call configured as blocking",
                dict.fromkeys(catalogue.FRAMEWORKS, suggestion)
                if suggestion
                else catalogue.in_worker_thread(),
            )
            for name, suggestion in settings.extra_blocking_calls.items()
        }
        self.index = ProjectIndex(
            (), extra_blocking=extra_blocking, extra_coroutines=settings.extra_coroutine_functions
        )
        self.offloads: dict[str, Offload] = dict(catalogue.THREAD_OFFLOADS)
        for name, argument in settings.extra_thread_offload_functions.items():
            if argument.isdigit():
                self.offloads[name] = Offload(argument, None, "async")
            else:
                self.offloads[name] = Offload(None, argument, "async")

    def run(self, paths: Sequence[str]) -> LintResult:
        for path in paths:
            if not os.path.exists(path):
                raise ConfigError(f"{path}: no such file or directory")
        excluder = Excluder(
            (*self.settings.exclude, *self.settings.extend_exclude), self.settings.root
        )
        reads = self._read(python_files(paths, excluder, self.result.warnings))
        signature = self._signature(reads)
        if self._replay(signature, len(reads)):
            return self.result
        self._load_reads(reads, linted=True)
        if self.follow_imports:
            try:
                self._follow()
            except Exception as exception:  # a bug of ours: lint what was read
                if os.environ.get("CONCURRENCY_LINT_DEBUG"):
                    raise
                self._incomplete = True
                self.result.warnings.append(
                    f"{_BUG} while following imports ({type(exception).__name__}: {exception}); "
                    "findings through other modules may be missing; please report it"
                )
        raw = self._check()
        self.result.findings = self._finish(raw)
        self._remember(signature)
        warning = self.cache.save()
        if warning:
            self.result.warnings.append(warning)
        return self.result

    # -- a rerun on an unchanged tree ------------------------------------------------------

    def _signature(self, reads: Sequence[_Read]) -> str:
        """What the findings of a run depend on: every linted file's content, the settings,
        the linter's version and the directory paths are shown relative to."""
        parts = [
            repr(dataclasses.astuple(self.settings)),
            repr(self.follow_imports),
            os.getcwd(),
            repr(sorted({extra for read in reads for extra in project_roots(read.root)})),
            *(f"{read.absolute}\0{read.key}" for read in sorted(reads, key=lambda r: r.absolute)),
        ]
        return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()

    def _replay(self, signature: str, file_count: int) -> bool:
        """Reuse the findings of an identical earlier run, if the modules it followed are
        unchanged too and the ones it looked for in vain still do not exist: no facts to
        decode, no rules to run."""
        stored = self.cache.get_run(signature)
        if stored is None:
            return False
        try:
            followed, (absent_files, absent_names), findings = stored
        except (TypeError, ValueError):
            return False  # stored by another version
        if not self._still_absent(absent_files, absent_names):
            return False
        for absolute, module, is_package, key in followed:
            try:
                with open(absolute, "rb") as handle:
                    data = handle.read()
            except OSError:
                return False
            if content_key(data, module, is_package) != key:
                return False
        for path, line, column, end_line, end_column, code, message, fix, anchor in findings:
            finding = Finding(
                path, line, column, end_line, end_column, code, message, fix and Fix(*fix)
            )
            self._anchors[finding] = anchor
            self.result.findings.append(finding)
        self.result.files = self.result.cached = file_count
        self.result.followed = len(followed)
        return True

    @staticmethod
    def _still_absent(files: Sequence[str], names: Sequence[tuple[str, Sequence[str]]]) -> bool:
        """Whether the modules an earlier run looked for in vain are still missing."""
        if any(os.path.exists(path) for path in files):
            return False
        for root, missing in names:
            try:
                listing = os.listdir(root)
            except OSError:
                return False
            present = {name[:-3] if name.endswith(".py") else name for name in listing}
            if not present.isdisjoint(missing):
                return False
        return True

    def _remember(self, signature: str) -> None:
        if self.cache.directory is None:
            return
        files = self.files.values()
        if any(f.entry is None or f.entry.key.startswith("unreadable") for f in files):
            return
        if (
            self._incomplete
            or self._internal_errors
            or any(
                not f.entry.key
                or (
                    f.entry.facts.error is not None and f.entry.facts.error.message.startswith(_BUG)
                )
                for f in files
                if f.entry is not None
            )
        ):
            return  # an internal error: do not make it permanent
        followed = tuple(
            (f.absolute, f.entry.facts.module, f.entry.facts.is_package, f.entry.key)
            for f in files
            if not f.linted and f.entry is not None
        )
        findings = tuple(
            (
                f.path, f.line, f.column, f.end_line, f.end_column, f.code, f.message,
                None if f.fix is None else (f.fix.kind, f.fix.safety, f.fix.framework, f.fix.name),
                self._anchors.get(f, -1),  # CC000 findings have no anchor
            )
            for f in self.result.findings
        )  # fmt: skip
        absent = (
            tuple(sorted(self._absent_files)),
            tuple((root, tuple(sorted(names))) for root, names in self._absent_names.items()),
        )
        self.cache.put_run(signature, (followed, absent, findings))

    # -- facts ------------------------------------------------------------------------------

    def _read(self, paths: Iterable[str]) -> list[_Read]:
        """Name, read and hash new files (the cache key is the hash of content and name)."""
        reads: list[_Read] = []
        for path, absolute, (module, is_package, root) in self._name_modules(paths):
            try:
                with open(absolute, "rb") as handle:
                    data: bytes | None = handle.read()
            except OSError as error:
                reason = error.strerror or str(error)
                reads.append(
                    _Read(path, absolute, module, is_package, root, None, f"unreadable:{reason}")
                )
                continue
            assert data is not None
            key = content_key(data, module, is_package)
            reads.append(_Read(path, absolute, module, is_package, root, data, key))
        return reads

    def _load(self, paths: Iterable[str], *, linted: bool) -> list[_File]:
        return self._load_reads(self._read(paths), linted=linted)

    def _load_reads(self, reads: Sequence[_Read], *, linted: bool) -> list[_File]:
        """Facts for files read: from the cache, or extracted (in parallel)."""
        loaded: list[_File] = []
        jobs: list[tuple[bytes, str, bool]] = []
        waiting: list[tuple[_File, str]] = []
        for read in reads:
            absolute, module, is_package, data, key = (
                read.absolute, read.module, read.is_package, read.data, read.key
            )  # fmt: skip
            file = _File(display_path(read.path), absolute, read.root, linted=linted)
            self.files[absolute] = file
            loaded.append(file)
            if linted:
                self.result.files += 1
            else:
                self.result.followed += 1
            if data is None:
                reason = key.partition(":")[2]
                facts = failed(module, is_package, f"cannot read: {reason}", 1, 1)
                file.entry = Entry(key, facts)
                continue
            entry = self.cache.get(absolute, key)
            if entry is not None:
                file.entry = entry
                self.result.cached += 1
                continue
            jobs.append((data, module, is_package))
            waiting.append((file, key))
        results = parallel_map(
            analyse_job,
            jobs,
            self.jobs,
            lambda job: len(job[0]),
            self.parallel_threshold,
            prepare=_import_parser,
        )
        for (file, key), facts in zip(waiting, results, strict=True):
            file.entry = Entry(key, facts)
            if facts.error is None or not facts.error.message.startswith(_BUG):
                self.cache.put(file.absolute, file.entry)
        for file in loaded:
            if file.entry is not None:
                self.index.add(file.absolute, file.entry.facts)
        return loaded

    def _name_modules(self, paths: Iterable[str]) -> list[tuple[str, str, tuple[str, bool, str]]]:
        """Module names for new files, made unique when two files would import as one.

        Two ``conftest.py`` in directories without ``__init__.py`` are both ``conftest`` to
        Python; here they become ``conftest@tests`` and ``conftest@tests/api`` so that each
        one's own names resolve to its own functions.
        """
        named: list[tuple[str, str, tuple[str, bool, str]]] = []
        counts: dict[str, int] = {}
        for path in paths:
            absolute = os.path.abspath(path)
            if absolute in self.files:
                continue
            module, is_package, root = self.namer.name(absolute)
            named.append((path, absolute, (module, is_package, root)))
            counts[module] = counts.get(module, 0) + 1
        unique: list[tuple[str, str, tuple[str, bool, str]]] = []
        for path, absolute, (module, is_package, root) in named:
            owner = self._taken_modules.get(module)
            if counts[module] > 1 or (owner is not None and owner != absolute):
                relative = display_path(root).replace(os.sep, "/")
                module = f"{module}@{relative}"
            self._taken_modules.setdefault(module, absolute)
            unique.append((path, absolute, (module, is_package, root)))
        return unique

    def _follow(self) -> None:
        """Index the project modules outside the given paths that the findings depend on.

        Starts from the names the linted files call from async code (followed deeply:
        what a sync helper calls matters too), the names whose result is dropped or stored
        (only whether they are coroutine functions matters), the functions handed to
        threads, and the base classes. Each name is looked at once; a name defined in a
        module not read yet is looked at again once that module is read.
        """
        find, project_names = self._module_finder()
        seen: set[tuple[bool, str]] = set()
        queue: list[tuple[bool, str]] = []
        for file in list(self.files.values()):
            if file.entry is None:
                continue
            for call in file.entry.facts.calls:
                if call.target is None:
                    continue
                top = call.target.partition(".")[0]
                if top not in project_names:
                    # The standard library, builtins, other distributions; or a project
                    # module that does not exist yet.
                    for names in self._absent_names.values():
                        names.add(top)
                    continue
                if call.in_async and call.usage != "awaited":
                    queue.append((True, call.target))
                elif call.usage in (DROPPED, STORED):
                    queue.append((False, call.target))
                if call.target in self.offloads:
                    queue.extend((True, ref.target) for ref in call.refs.values())
            queue.extend(
                (True, base) for c in file.entry.facts.classes.values() for base in c.bases
            )
        index = self.index
        while queue:
            waiting: dict[str, list[tuple[bool, str]]] = {}
            following: list[tuple[bool, str]] = []
            for item in queue:
                if item in seen:
                    continue
                seen.add(item)
                deep, target = item
                if target.count(".") > _MAX_NAME_DEPTH:
                    continue  # not a name any module defines
                located = index.function(target) or index.constructor(target)
                if located is not None:
                    if deep and not located.function.is_async:
                        calls = located.file.calls
                        for position in located.function.calls:
                            callee = calls[position].target
                            if callee is not None:
                                following.append((True, callee))
                    continue
                resolved = index.resolve(target)
                if resolved != target:
                    following.append((deep, resolved))
                    continue
                path = self._module_path_for(target, find)
                if path is None:
                    continue
                if path not in self.files:
                    waiting.setdefault(path, []).append(item)
                    continue
                # In a module already read that does not define it: it may come from a
                # module imported with ``from m import *``, read only when needed (trio's
                # _run.py star-imports five generated modules and calls into one).
                star_path = self._next_star_module(path, target, find)
                if star_path is not None:
                    waiting.setdefault(star_path, []).append(item)
            if waiting:
                loaded = self._load(sorted(waiting), linted=False)
                for file in loaded:
                    if file.entry is not None:
                        following.extend(
                            (True, base)
                            for class_facts in file.entry.facts.classes.values()
                            for base in class_facts.bases
                        )
                # Look again at the names that were waiting for these modules.
                for items in waiting.values():
                    seen.difference_update(items)
                    following.extend(items)
            queue = following

    def _next_star_module(
        self, path: str, target: str, find: Callable[[str], str | None]
    ) -> str | None:
        """The file of the next project module to read for a name of the module at
        ``path`` that it does not define itself. Star imports are looked at as Python and
        the index do: the last one first, and through those already read; None when the
        name is defined in one of them or no module is left to read."""
        file = self.files[path]
        if file.entry is None:
            return None
        facts = file.entry.facts
        if not target.startswith(facts.module + "."):
            return None  # (a module renamed apart from a namesake elsewhere)
        member = target[len(facts.module) + 1 :].partition(".")[0]
        if _defines(facts, member):
            return None
        seen = {path}
        stack = [reversed(facts.star_imports)]
        while stack:
            star = next(stack[-1], None)
            if star is None:
                stack.pop()
                continue
            star_path = find(star)
            if star_path is None or star_path in seen:
                continue
            seen.add(star_path)
            star_file = self.files.get(star_path)
            if star_file is None:
                return star_path
            if star_file.entry is None:
                continue
            star_facts = star_file.entry.facts
            names = star_facts.all_names
            if (member not in names) if names is not None else member.startswith("_"):
                continue  # not among the names ``import *`` takes from it
            if _defines(star_facts, member):
                return None
            stack.append(reversed(star_facts.star_imports))
        return None

    def _module_finder(self) -> tuple[Callable[[str], str | None], set[str]]:
        """A function from module name to its file among the project's import roots, and
        the top-level names the project's modules can have."""
        file_roots = sorted({file.root for file in self.files.values()})
        # The files' own import roots first, then those of the projects they belong to.
        roots = list(
            dict.fromkeys([*file_roots, *(extra for r in file_roots for extra in project_roots(r))])
        )
        top_names: dict[str, set[str]] = {}
        absent_names = self._absent_names
        absent_files = self._absent_files
        for root in roots:
            if os.path.basename(root) in ("site-packages", "dist-packages"):
                # Linting an installed package: its own modules, not its neighbours'.
                top_names[root] = {
                    file.entry.facts.module.partition(".")[0]
                    for file in self.files.values()
                    if file.root == root and file.entry is not None
                }
                continue
            absent_names.setdefault(root, set())
            try:
                top_names[root] = {
                    name[:-3] if name.endswith(".py") else name for name in os.listdir(root)
                }
            except OSError:
                top_names[root] = set()
        module_paths: dict[str, str | None] = {}
        for file in self.files.values():
            if file.entry is not None:
                module_paths[file.entry.facts.module] = file.absolute

        def find(module: str) -> str | None:
            if module in module_paths:
                return module_paths[module]
            found = None
            top = module.partition(".")[0]
            for root in roots:
                if top in top_names[root]:
                    found = module_file(root, module)
                    if found:
                        break
                    absent_files.update(module_candidates(root, module))
                elif root in absent_names:
                    absent_names[root].add(top)
            module_paths[module] = found
            return found

        project_names = set().union(*top_names.values()) if top_names else set()
        project_names.update(module.partition(".")[0] for module in module_paths)
        return find, project_names

    @staticmethod
    def _module_path_for(target: str, find: Callable[[str], str | None]) -> str | None:
        parts = target.split(".")
        for length in range(len(parts) - 1, 0, -1):
            found = find(".".join(parts[:length]))
            if found is not None:
                return found
        return None

    # -- rules ------------------------------------------------------------------------------

    def _framework(self, facts: FileFacts, project_default: str) -> str:
        if self.settings.framework != "auto":
            return self.settings.framework
        for framework in _FRAMEWORK_PREFERENCE:
            if framework in facts.frameworks:
                return framework
        return project_default

    def _project_framework(self) -> str:
        counts = dict.fromkeys(_FRAMEWORK_PREFERENCE, 0)
        for file in self.files.values():
            if file.linted and file.entry is not None:
                for framework in file.entry.facts.frameworks:
                    counts[framework] += 1
        best = max(_FRAMEWORK_PREFERENCE, key=lambda name: (counts[name], name == "asyncio"))
        return best if counts[best] else "asyncio"

    def _check(self) -> dict[str, list[RawFinding]]:
        settings = self.settings
        rules = [rule() for rule in RULES if settings.is_enabled(rule.code)]
        project_framework = self._project_framework()
        found: dict[str, list[RawFinding]] = {}
        for file in self.files.values():
            if not file.linted or file.entry is None:
                continue
            facts = file.entry.facts
            ignores = self._per_file_ignores(file.absolute)
            if facts.error is not None:
                continue
            context = RuleContext(
                path=file.absolute,
                facts=facts,
                index=self.index,
                framework=self._framework(facts, project_framework),
                offloads=self.offloads,
                framework_fixed=settings.framework != "auto",
            )
            findings: list[RawFinding] = []
            try:
                for rule in rules:
                    if ignores and not settings.is_enabled(rule.code, ignores):
                        continue
                    findings.extend(rule.check(context))
            except Exception as exception:  # a bug of ours must not lose the other files
                self._internal_error(file, "checking", exception)
                continue
            if findings:
                found[file.absolute] = findings
        return found

    def _internal_error(self, file: _File, doing: str, exception: Exception) -> None:
        """Report an unexpected error as this file's CC000 finding, and go on."""
        if os.environ.get("CONCURRENCY_LINT_DEBUG"):
            raise exception
        self._internal_errors[file.absolute] = (
            f"{_BUG} while {doing} this file ({type(exception).__name__}: "
            f"{exception}); please report it (CONCURRENCY_LINT_DEBUG=1 shows the traceback)"
        )

    def _per_file_ignores(self, absolute: str) -> tuple[str, ...]:
        if not self.settings.per_file_ignores:
            return ()
        try:
            relative = Path(absolute).relative_to(self.settings.root).as_posix()
        except ValueError:
            relative = Path(absolute).as_posix()
        name = os.path.basename(absolute)
        codes: list[str] = []
        for pattern, ignored in self.settings.per_file_ignores.items():
            pattern = pattern.strip("/")
            subject = relative if "/" in pattern else name
            if fnmatchcase(subject, pattern) or fnmatchcase(relative, pattern + "/*"):
                codes.extend(ignored)
        return tuple(codes)

    # -- positions and suppressions ---------------------------------------------------------

    def _finish(self, raw: dict[str, list[RawFinding]]) -> list[Finding]:
        needed: dict[str, set[int]] = {}
        for absolute, findings in raw.items():
            anchors = needed.setdefault(absolute, set())
            for finding in findings:
                anchors.add(finding.anchor)
                for place_path, place_anchor in finding.places:
                    needed.setdefault(place_path, set()).add(place_anchor)
        spans: dict[str, dict[int, Span]] = {}
        texts: dict[str, str] = {}
        for absolute, anchors in needed.items():
            try:
                spans[absolute] = self._spans(absolute, anchors, texts)
            except Exception as exception:  # a bug of ours must not lose the other files
                spans[absolute] = {}
                if absolute in self.files:
                    doing = "locating the findings of"
                    self._internal_error(self.files[absolute], doing, exception)

        results: list[Finding] = []
        for file in self.files.values():
            if not file.linted or file.entry is None:
                continue
            if file.absolute not in self._internal_errors:
                try:
                    located = self._finish_file(file, raw, spans, texts)
                except Exception as exception:  # a bug of ours must not lose the other files
                    self._internal_error(file, "locating the findings of", exception)
                else:
                    results.extend(located)
                    continue
            if self.settings.is_enabled(PARSE_ERROR, self._per_file_ignores(file.absolute)):
                message = self._internal_errors[file.absolute]
                results.append(Finding(file.path, 1, 1, 1, 1, PARSE_ERROR, message))
        results.sort(key=lambda f: (f.path, f.line, f.column, f.code))
        return results

    def _finish_file(
        self,
        file: _File,
        raw: dict[str, list[RawFinding]],
        spans: dict[str, dict[int, Span]],
        texts: dict[str, str],
    ) -> list[Finding]:
        """The located, unsuppressed findings of one linted file."""
        assert file.entry is not None
        error = file.entry.facts.error
        if error is not None:
            if not self.settings.is_enabled(PARSE_ERROR, self._per_file_ignores(file.absolute)):
                return []
            line, column = error.line, error.column
            return [Finding(file.path, line, column, line, column, PARSE_ERROR, error.message)]
        file_findings = raw.get(file.absolute)
        if not file_findings:
            return []
        file_spans = spans[file.absolute]
        lines = {file_spans[f.anchor][0] for f in file_findings if f.anchor in file_spans}
        noqa = self._noqa(file, lines, texts)
        results: list[Finding] = []
        for finding in file_findings:
            span = file_spans.get(finding.anchor)
            message = finding.message
            if span is None:
                # Neither parser could place it (absurdly deep nesting): say so rather
                # than drop the finding.
                span = (1, 1, 1, 1)
                message += " [position unknown: the file nests too deeply to locate it]"
            if suppressed(finding.code, noqa.get(span[0])):
                continue
            if finding.places:
                where = []
                for place_path, place_anchor in finding.places:
                    place_span = spans.get(place_path, {}).get(place_anchor)
                    line = place_span[0] if place_span else 0
                    where.append(f"{display_path(place_path)}:{line}")
                message = message.format(*where)
            located = Finding(file.path, *span, finding.code, message, finding.fix)
            self._anchors[located] = finding.anchor
            results.append(located)
        return results

    def anchors_of(self, path: str, findings: Iterable[Finding]) -> dict[int, Fix]:
        """The fixes of some findings of one file, by anchor, for the fixer."""
        return {
            self._anchors[finding]: finding.fix
            for finding in findings
            if finding.fix is not None and finding in self._anchors
        }

    def _text(self, absolute: str, texts: dict[str, str]) -> str | None:
        if absolute in self.texts:
            return self.texts[absolute]
        if absolute not in texts:
            try:
                with open(absolute, "rb") as handle:
                    texts[absolute] = decode_source(handle.read())
            except (OSError, SyntaxError, UnicodeDecodeError, LookupError):
                return None
        return texts[absolute]

    def _spans(self, absolute: str, anchors: set[int], texts: dict[str, str]) -> dict[int, Span]:
        file = self.files.get(absolute)
        if file is None or file.entry is None:
            return {}
        entry = file.entry
        missing = anchors - entry.spans.keys()
        if missing:
            text = self._text(absolute, texts)
            if text is None:
                return {}
            entry.spans.update(locate(text, entry.facts, missing))
            if entry.key:
                self.cache.put(absolute, entry)
        return {anchor: entry.spans[anchor] for anchor in anchors if anchor in entry.spans}

    def _noqa(
        self, file: _File, lines: set[int], texts: dict[str, str]
    ) -> dict[int, frozenset[str]]:
        assert file.entry is not None
        entry = file.entry
        missing = lines - entry.noqa_lines
        if missing:
            text = self._text(file.absolute, texts)
            if text is not None:
                entry.noqa.update(noqa_comments(text, missing))
                entry.noqa_lines.update(missing)
                if entry.key:
                    self.cache.put(file.absolute, entry)
        return entry.noqa


def _defines(facts: FileFacts, name: str) -> bool:
    """Whether a module defines or imports ``name`` (module-level variables aside)."""
    qualname = f"{facts.module}.{name}"
    return name in facts.exports or qualname in facts.functions or qualname in facts.classes


def _import_parser() -> None:
    """Import libcst and the extractor (so that forked workers share one import)."""
    import concurrency_lint.extract  # noqa: F401


def lint_paths(
    paths: Sequence[str],
    settings: Settings | None = None,
    *,
    jobs: int | None = None,
    use_cache: bool = False,
    follow_imports: bool = True,
) -> LintResult:
    """Lint files and directories; see :class:`Linter` for the options."""
    linter = Linter(
        settings or Settings(), jobs=jobs, use_cache=use_cache, follow_imports=follow_imports
    )
    return linter.run(paths)


def lint_source(
    source: str,
    settings: Settings | None = None,
    *,
    path: str = "<string>",
    module: str = "module",
) -> list[Finding]:
    """Lint one module's source text on its own (no cache, no other modules)."""
    linter = Linter(settings or Settings(), jobs=1, use_cache=False, follow_imports=False)
    facts = analyse_source(source.encode("utf-8"), module, False)
    linter.files[path] = _File(path, path, "", Entry("", facts))
    linter.texts[path] = source
    linter.index.add(path, facts)
    return linter._finish(linter._check())


def fix_source(
    source: str,
    settings: Settings | None = None,
    *,
    unsafe: bool = False,
    module: str = "module",
) -> tuple[str, list[Finding]]:
    """Lint one module's source, apply its fixes, and return the new source and findings.

    Safe fixes only, unless ``unsafe``. The findings are those of the original source.
    """
    from concurrency_lint.fix import apply_fixes

    linter = Linter(settings or Settings(), jobs=1, use_cache=False, follow_imports=False)
    facts = analyse_source(source.encode("utf-8"), module, False)
    path = "<string>"
    linter.files[path] = _File(path, path, "", Entry("", facts))
    linter.texts[path] = source
    linter.index.add(path, facts)
    findings = linter._finish(linter._check())
    chosen = [f for f in findings if f.fix is not None and (unsafe or f.fix.safety == "safe")]
    result = apply_fixes(source.encode("utf-8"), linter.anchors_of(path, chosen))
    return result.source.decode("utf-8"), findings
