"""The runtime detectors inside the processes a server starts: an isolated server, workers.

The plugin's detectors watch the test process only. A handler that blocks an event loop or
leaves a thread running in another process (an isolated server, a worker of the ``processes``
model) is out of their sight, so such a process runs :func:`watching` around its server and
sends what it found back as text. The ``serve`` fixture then fails the test with it (or warns,
in warn mode), as for an in-process server.

What the server's own machinery starts (its loop thread, connection threads, worker
processes, pools) is made by this package, not by user code, so the leak detector never
records it: only what handlers start is checked, when the server has stopped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_concurrency.serve._app import ServeConfigError

if TYPE_CHECKING:
    from pytest_concurrency.detect._frames import Location

__all__ = ["LEAK_KINDS", "Findings", "WatchSettings", "leak_kinds", "watching"]

LEAK_KINDS = ("tasks", "threads", "processes")
"""The kinds of leak, as ``watch_leaks`` and the plugin's options name them."""


@dataclass(frozen=True)
class WatchSettings:
    """Which detectors run in a server's own processes, and how."""

    loop_ms: float | None = None
    """Loop-lag threshold in milliseconds; ``None``: loops are not watched."""
    leak_kinds: tuple[str, ...] = ()
    """Kinds of leak checked when the server stops; empty: none."""
    leak_grace_ms: float = 100.0
    """How long something still running when the server stops may take to finish."""
    leak_allow: tuple[str, ...] = ()
    """Shell-style patterns of thread or process names or targets never reported."""

    @property
    def active(self) -> bool:
        return self.loop_ms is not None or bool(self.leak_kinds)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> WatchSettings:
        if not data:
            return cls()
        return cls(
            loop_ms=data.get("loop_ms"),
            leak_kinds=tuple(data.get("leak_kinds", ())),
            leak_grace_ms=float(data.get("leak_grace_ms", 100.0)),
            leak_allow=tuple(data.get("leak_allow", ())),
        )


def leak_kinds(value: bool | Iterable[str]) -> tuple[str, ...]:
    """``watch_leaks=`` as kinds: True for all, False for none, or the kinds named."""
    if value is True:
        return LEAK_KINDS
    if value is False:
        return ()
    kinds = tuple(dict.fromkeys(str(kind) for kind in value))
    unknown = [kind for kind in kinds if kind not in LEAK_KINDS]
    if unknown:
        raise ServeConfigError(
            f"watch_leaks: unknown kind {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(LEAK_KINDS)} (or True for all)"
        )
    return kinds


Site = tuple[str, int]
"""A line of user code as a file name and a line number: where a warning points."""


@dataclass
class Findings:
    """What the detectors in a server's processes found, as the text users see."""

    loop_blocks: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    leak_kinds: list[str] = field(default_factory=list)
    """The kinds of the leaks found (``threads``, ...), for the ``allow_leaks`` advice."""
    block_sites: list[Site | None] = field(default_factory=list)
    """For each loop block, the line it names (the blocking line), if any."""
    leak_sites: list[Site | None] = field(default_factory=list)
    """For each leak report, where its first leak was created, if known."""

    def __bool__(self) -> bool:
        return bool(self.loop_blocks or self.leaks)

    def add(self, other: Findings, where: str = "") -> None:
        """Take in ``other``'s findings; ``where`` prefixes its loop blocks (a leak report
        names its owner already)."""
        self.block_sites = [site for _, site in self.blocks_with_sites()]
        self.block_sites.extend(site for _, site in other.blocks_with_sites())
        self.leak_sites = [site for _, site in self.leaks_with_sites()]
        self.leak_sites.extend(site for _, site in other.leaks_with_sites())
        self.loop_blocks.extend(where + text for text in other.loop_blocks)
        self.leaks.extend(other.leaks)
        self.leak_kinds.extend(k for k in other.leak_kinds if k not in self.leak_kinds)

    def blocks_with_sites(self) -> list[tuple[str, Site | None]]:
        """Each loop block's text with the line it names (None when unknown)."""
        return _with_sites(self.loop_blocks, self.block_sites)

    def leaks_with_sites(self) -> list[tuple[str, Site | None]]:
        """Each leak report's text with where its first leak was created (None when unknown)."""
        return _with_sites(self.leaks, self.leak_sites)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Findings:
        data = data or {}
        return cls(
            list(data.get("loop_blocks", [])),
            list(data.get("leaks", [])),
            list(data.get("leak_kinds", [])),
            [_site_from_json(site) for site in data.get("block_sites", [])],
            [_site_from_json(site) for site in data.get("leak_sites", [])],
        )


def _with_sites(texts: list[str], sites: list[Site | None]) -> list[tuple[str, Site | None]]:
    return [(text, sites[i] if i < len(sites) else None) for i, text in enumerate(texts)]


def _site_from_json(value: Any) -> Site | None:
    """A site as JSON gives it back (a two-item list), or None for anything else."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        filename, lineno = value
        if isinstance(filename, str) and isinstance(lineno, int):
            return (filename, lineno)
    return None


def _site_of(location: Location | None) -> Site | None:
    return None if location is None else (location.filename, location.lineno)


@contextlib.contextmanager
def watching(settings: WatchSettings, owner: str) -> Iterator[Findings]:
    """Run the detectors ``settings`` asks for around the block (a server's whole life).

    The findings are filled in when the block ends; ``owner`` names whose leaks they are
    (``"the threads server (isolated, pid 1234)"``).
    """
    findings = Findings()
    if not settings.active:
        yield findings
        return
    # Imported only when asked for: the detectors install hooks in this process.
    from pytest_concurrency.detect import LeakReport, watch_leaks, watch_loop

    loop_watch = leak_watch = None
    with contextlib.ExitStack() as stack:
        if settings.loop_ms is not None:
            loop_watch = stack.enter_context(
                watch_loop(threshold_ms=settings.loop_ms, raise_on_exit=False)
            )
        if settings.leak_kinds:
            # Entered last, so it is checked first: before the loop watch lets go of the hooks.
            leak_watch = stack.enter_context(
                watch_leaks(
                    settings.leak_kinds,
                    grace_ms=settings.leak_grace_ms,
                    allow=settings.leak_allow,
                    raise_on_exit=False,
                )
            )
        try:
            yield findings
        finally:
            if loop_watch is not None:
                findings.loop_blocks = [event.format() for event in loop_watch.events]
                findings.block_sites = [_site_of(event.location) for event in loop_watch.events]
    if leak_watch is not None and leak_watch.report is not None:
        report = leak_watch.report
        named = LeakReport(owner=owner, leaks=report.leaks, grace_ms=report.grace_ms)
        findings.leaks = [named.format()]
        findings.leak_sites = [_site_of(named.location)]
        found = {_KIND_OF_LEAK[leak.kind] for leak in report.leaks}
        findings.leak_kinds = [kind for kind in LEAK_KINDS if kind in found]


_KIND_OF_LEAK = {"task": "tasks", "thread": "threads", "process": "processes"}
