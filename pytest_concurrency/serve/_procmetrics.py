"""Resident and virtual memory, threads and CPU time of a set of processes.

CPU time is read from each process's kernel CPU-time clock (``clock_gettime`` on the clock
``clock_getcpuclockid(pid)`` names, Linux): nanoseconds of CPU used by all its threads, those
that have exited included, brought up to date for a thread running at that moment. Where that
clock cannot be read, psutil's user + system times are used, which the kernel reports in clock
ticks (10 ms on most systems): a run's CPU is then only stated when it is large enough for the
ticks to matter less than 10% (see :func:`cpu_between`). Memory and threads come from psutil.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass, field

import psutil

__all__ = ["CpuUsage", "ProcessGroup", "ProcessSample", "cpu_between", "raise_fd_limit"]

_CLOCK_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
_PRECISION = 0.10
"""A CPU figure is stated only when its possible error is at most this fraction of it."""


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time of process ``pid`` so far, to the nanosecond, or None where it cannot be read.

    Linux encodes the CPU-time clock of process ``pid`` (what ``clock_getcpuclockid`` returns)
    as ``(~pid << 3) | 2``; any process may read it.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        return time.clock_gettime_ns(((~pid) << 3) | 2) / 1e9
    except OSError:  # gone, or a kernel without per-process CPU clocks
        return None


@dataclass(frozen=True)
class ProcessSample:
    """One reading, summed over the processes of a server."""

    rss_bytes: int
    """Resident set size: memory really in RAM (shared pages count once per process)."""
    vsz_bytes: int
    """Virtual size: address space reserved, including untouched thread stacks."""
    threads: int
    cpu_seconds: float
    """User plus system CPU time consumed so far."""
    processes: int
    cpu_by_pid: dict[int, float] = field(default_factory=dict)
    """CPU time of each process read."""
    cpu_tick_s: float = 0.0
    """Resolution of the CPU times: 0 when every one came from a nanosecond clock, else the
    clock tick they were counted in."""
    cpus: int | None = None
    """How many CPUs the processes may run on (the union of their affinities)."""
    started: float = 0.0
    """``time.perf_counter()`` when the reading started."""
    ended: float = 0.0
    """``time.perf_counter()`` when it ended."""


@dataclass(frozen=True)
class CpuUsage:
    """A server's CPU time between two readings, or why it cannot be stated."""

    seconds: float | None
    window_s: float
    """Wall time from the start of the first reading to the end of the second."""
    cpus: int | None
    """CPUs the server may run on."""
    note: str | None = None
    """Why ``seconds`` is None."""

    @property
    def cores(self) -> float | None:
        """Average cores used over the window."""
        if self.seconds is None or self.window_s <= 0:
            return None
        return self.seconds / self.window_s


def cpu_between(first: ProcessSample, last: ProcessSample) -> CpuUsage:
    """The CPU the processes used from ``first`` to ``last``, when it can be stated honestly.

    A process that appeared in between counts from zero (it started during the window); one
    that disappeared took its CPU time with it, so then nothing is stated. With tick-based
    times (no nanosecond clock), each process's figure may be off by up to two ticks: the
    total is stated only when that is at most 10% of it. A result of more cores than the
    processes may run on is impossible, and is not stated either.
    """
    window = max(last.ended - first.started, 0.0)
    cpus = last.cpus
    if not first.processes or not last.processes:
        return CpuUsage(
            None, window, cpus, "the server's processes are not known (give server_pids)"
        )
    gone = sorted(set(first.cpu_by_pid) - set(last.cpu_by_pid))
    if gone:
        return CpuUsage(
            None,
            window,
            cpus,
            f"server process(es) {', '.join(map(str, gone))} exited during the run, taking "
            "their CPU time with them",
        )
    seconds = sum(cpu - first.cpu_by_pid.get(pid, 0.0) for pid, cpu in last.cpu_by_pid.items())
    tick = max(first.cpu_tick_s, last.cpu_tick_s)
    if tick:
        error = 2 * tick * len(last.cpu_by_pid)
        if seconds < error / _PRECISION:
            return CpuUsage(
                None,
                window,
                cpus,
                f"the server used {seconds * 1000:.0f} ms of CPU, counted in "
                f"{tick * 1000:g} ms clock ticks: at least {error / _PRECISION * 1000:.0f} ms "
                "are needed to state it within 10% (run longer)",
            )
    cores = seconds / window if window > 0 else 0.0
    if cpus is not None and cores > cpus * (1 + _PRECISION):
        return CpuUsage(
            None,
            window,
            cpus,
            f"measured {cores:.2f} cores on a server that may use {cpus} CPU(s), which is "
            "impossible: the CPU readings are not trustworthy here",
        )
    return CpuUsage(seconds, window, cpus)


class ProcessGroup:
    """The processes of one server: the given pids and, optionally, their descendants."""

    def __init__(self, pids: list[int], include_children: bool = False) -> None:
        self._pids = list(pids)
        self._include_children = include_children
        self._processes: dict[int, psutil.Process] = {}
        self._exclude: set[int] = set()
        self._members_cache: list[psutil.Process] | None = None
        self._members_at = 0.0

    def exclude(self, pid: int) -> None:
        """Never count ``pid`` (the load generator, when it is the server's child)."""
        self._exclude.add(pid)

    def _members(self, refresh: bool) -> list[psutil.Process]:
        # Finding children scans every process of the system: do it at most once a second,
        # unless the caller needs the exact set (the readings a CPU figure is made from).
        now = time.monotonic()
        if not refresh and self._members_cache is not None and now - self._members_at < 1.0:
            return self._members_cache
        self._members_cache = self._find_members()
        self._members_at = now
        return self._members_cache

    def _find_members(self) -> list[psutil.Process]:
        members: dict[int, psutil.Process] = {}
        for pid in self._pids:
            process = self._processes.get(pid)
            if process is None:
                try:
                    process = psutil.Process(pid)
                except psutil.Error:
                    continue
                self._processes[pid] = process
            members[pid] = process
            if self._include_children:
                try:
                    for child in process.children(recursive=True):
                        members.setdefault(child.pid, self._processes.setdefault(child.pid, child))
                except psutil.Error:
                    pass
        return [p for pid, p in members.items() if pid not in self._exclude]

    def sample(self, refresh: bool = False) -> ProcessSample:
        """Read every process now; ``refresh`` looks for new children first."""
        started = time.perf_counter()
        rss = vsz = threads = 0
        cpu_by_pid: dict[int, float] = {}
        tick = 0.0
        cpus: set[int] = set()
        for process in self._members(refresh):
            try:
                with process.oneshot():
                    memory = process.memory_info()
                    thread_count = process.num_threads()
                    cpu = process_cpu_seconds(process.pid)
                    if cpu is None:
                        times = process.cpu_times()
                        cpu = times.user + times.system
                        tick = _CLOCK_TICK_S
                    cpus.update(_affinity(process))
            except psutil.Error:  # exited meanwhile
                continue
            rss += memory.rss
            vsz += memory.vms
            threads += thread_count
            cpu_by_pid[process.pid] = cpu
        return ProcessSample(
            rss,
            vsz,
            threads,
            sum(cpu_by_pid.values()),
            len(cpu_by_pid),
            cpu_by_pid,
            tick,
            len(cpus) or None,
            started,
            time.perf_counter(),
        )


def _affinity(process: psutil.Process) -> list[int]:
    try:
        return list(process.cpu_affinity() or [])
    except (AttributeError, psutil.Error):  # no affinity on this platform
        return list(range(os.cpu_count() or 1))


def raise_fd_limit(needed: int) -> None:
    """Make sure this process may open ``needed`` file descriptors (raise the soft limit).

    The hard limit is raised too when we are allowed to (root); otherwise a clear error says
    what to do.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return
        except (ValueError, OSError):
            raise OSError(
                f"{needed} file descriptors are needed but the hard limit (ulimit -Hn) is "
                f"{hard}; raise it (for example `ulimit -n {needed}` as root, or "
                f"LimitNOFILE in systemd)"
            ) from None
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
