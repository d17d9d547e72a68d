"""The detectors' small parts: patches, allow lists, sample choice, frames, public names."""

from __future__ import annotations

import asyncio
import sys

import pytest

import pytest_concurrency
import pytest_concurrency.detect
from pytest_concurrency.detect._findings import Leak, LeakReport, LoopBlocked
from pytest_concurrency.detect._frames import Location, display_path, is_user_file, location_of
from pytest_concurrency.detect._leaks import AllowList
from pytest_concurrency.detect._patches import Patch
from pytest_concurrency.detect._steps import choose_sample


class Base:
    def greet(self) -> str:
        return "base"


class Child(Base):
    def own(self) -> str:
        return "own"


def test_patch_of_an_inherited_method_is_removed_again() -> None:
    patch = Patch(Child, "greet", lambda self: "patched")
    patch.apply()
    assert Child().greet() == "patched"
    patch.restore()
    assert "greet" not in vars(Child)
    assert Child().greet() == "base"


def test_patch_of_an_own_method_is_put_back() -> None:
    original = Child.own
    patch = Patch(Child, "own", lambda self: "patched")
    patch.apply()
    patch.restore()
    assert Child.own is original


def test_patch_wrapped_by_someone_else_is_left_in_place() -> None:
    patch = Patch(Child, "own", lambda self: "ours")
    patch.apply()
    theirs = lambda self: "theirs"  # noqa: E731
    Child.own = theirs  # type: ignore[method-assign]
    patch.restore()
    assert Child.own is theirs
    del Child.own  # type: ignore[attr-defined]


def test_allow_list_matches_names_and_targets_with_shell_patterns() -> None:
    allow = AllowList(["my-pool-*", "app.workers.*"])
    assert allow.allows(["my-pool-3"])
    assert allow.allows(["Thread-1", "app.workers.poll"])
    assert not allow.allows(["Thread-1 (serve)", "app.server.serve"])


def test_allow_list_always_allows_the_reused_worker_pools() -> None:
    allow = AllowList()
    assert allow.allows(["asyncio_0"])
    assert allow.allows(["AnyIO worker thread"])
    assert allow.allows(["Trio thread 4"])
    assert not allow.allows(["ThreadPoolExecutor-0_0"])


def loc(line: int, filename: str = "/project/app.py") -> Location:
    return Location(filename, line, "f")


def test_sample_choice_prefers_the_most_frequent_user_line() -> None:
    samples = [(loc(10),), (loc(20),), (loc(20),), (loc(10),), (loc(20),)]
    stack, agreeing, others = choose_sample(samples)
    assert stack[0].lineno == 20
    assert agreeing == 3
    assert others == ((Location("/project/app.py", 10), 2),)


def test_sample_choice_breaks_ties_by_the_latest_sample() -> None:
    stack, agreeing, _ = choose_sample([(loc(10),), (loc(20),)])
    assert (stack[0].lineno, agreeing) == (20, 1)


def test_sample_choice_with_no_samples_is_empty() -> None:
    assert choose_sample([]) == ((), 0, ())


def test_stdlib_and_installed_packages_are_not_user_code() -> None:
    assert not is_user_file(asyncio.__file__)
    assert not is_user_file(pytest.__file__)
    assert not is_user_file(pytest_concurrency.detect.__file__)
    assert not is_user_file("<frozen importlib._bootstrap>")
    assert is_user_file(__file__)


def test_creation_sites_resolve_to_the_line_each_frame_is_running() -> None:
    # Creation sites keep (code, offset) and find the line later: it must be f_lineno's line,
    # for every calling frame of a real stack (pytest's long functions included) and for a
    # suspended coroutine.
    frame = sys._getframe(1)
    checked = 0
    while frame is not None:
        where = location_of((frame.f_code, frame.f_lasti))
        assert (where.lineno, where.function) == (frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
        checked += 1
    assert checked > 10

    async def suspended() -> None:
        await asyncio.sleep(0)

    coro = suspended()
    coro.send(None)
    resumes_at = coro.cr_frame
    assert location_of((resumes_at.f_code, resumes_at.f_lasti)).lineno == resumes_at.f_lineno
    coro.close()


def test_paths_are_shown_relative_to_the_root_when_inside_it() -> None:
    assert display_path("/srv/app/tests/test_x.py", "/srv/app") == "tests/test_x.py"
    assert display_path("/elsewhere/x.py", "/srv/app") == "/elsewhere/x.py"


def test_public_names_are_pinned() -> None:
    assert sorted(pytest_concurrency.detect.__all__) == [
        "DEFAULT_ALLOW",
        "DEFAULT_GRACE_MS",
        "InternalError",
        "Leak",
        "LeakError",
        "LeakReport",
        "LeakWatch",
        "Location",
        "LoopBlocked",
        "LoopBlockedError",
        "LoopWatch",
        "watch_leaks",
        "watch_loop",
    ]
    for name in pytest_concurrency.__all__:
        assert getattr(pytest_concurrency, name) is not None


def test_warning_categories_are_pytest_warnings() -> None:
    assert issubclass(pytest_concurrency.LoopLagWarning, pytest.PytestWarning)
    assert issubclass(pytest_concurrency.LeakWarning, pytest_concurrency.ConcurrencyWarning)


def test_identical_leaks_are_listed_once_with_their_count() -> None:
    site = Location("tests/test_jobs.py", 7, "spawn")
    leaks = [Leak("task", "'child' running sleep()", site)] * 3 + [
        Leak("thread", "'worker' running loop()", site)
    ]
    text = LeakReport("test t", leaks, grace_ms=100).format()
    assert "left 3 tasks, 1 thread running" in text or "3 tasks" in text
    assert text.count("'child' running sleep()") == 1
    assert "created at tests/test_jobs.py:7 (3 of these)" in text
    assert "'worker' running loop(), started at tests/test_jobs.py:7\n" in text


def test_time_spent_waiting_for_a_cpu_is_stated_apart_from_the_block() -> None:
    event = LoopBlocked(
        duration_ms=133.0,
        threshold_ms=50.0,
        loop="asyncio",
        running="callback tick()",
        running_at=None,
        stack=(),
        samples=0,
        agreeing=0,
        thread="MainThread",
        waited_ms=67.0,
    )
    head = event.format().splitlines()[0]
    assert "blocked for 133 ms" in head
    assert "not counting 67 ms waiting for a CPU on a busy machine" in head
