"""Resident and virtual memory, threads and CPU time of a set of processes (via psutil)."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import psutil

__all__ = ["ProcessGroup", "ProcessSample", "raise_fd_limit"]


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

    def _members(self) -> list[psutil.Process]:
        # Finding children scans every process of the system: do it at most once a second.
        now = time.monotonic()
        if self._members_cache is not None and now - self._members_at < 1.0:
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

    def sample(self) -> ProcessSample:
        rss = vsz = threads = count = 0
        cpu = 0.0
        for process in self._members():
            try:
                with process.oneshot():
                    memory = process.memory_info()
                    times = process.cpu_times()
                    thread_count = process.num_threads()
            except psutil.Error:  # exited meanwhile
                continue
            rss += memory.rss
            vsz += memory.vms
            threads += thread_count
            cpu += times.user + times.system
            count += 1
        return ProcessSample(rss, vsz, threads, cpu, count)


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
