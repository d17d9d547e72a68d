"""Whole-project analysis: coroutine functions and blocking helpers across modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lint_helpers import FIXTURES, file_markers

from concurrency_lint import Settings, lint_paths


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(FIXTURES / "shop", root)
    monkeypatch.chdir(root)
    return root


def _found(root: Path, *paths: str, follow: bool = True) -> list[tuple[str, int, str]]:
    result = lint_paths(list(paths), Settings(root=root), follow_imports=follow)
    return sorted((Path(f.path).as_posix(), f.line, f.code) for f in result.findings)


def test_the_whole_shop_gives_exactly_the_marked_findings(shop: Path) -> None:
    assert _found(shop, ".") == file_markers(shop.rglob("*.py"), shop)


def test_one_file_as_pre_commit_passes_it_still_sees_the_other_modules(shop: Path) -> None:
    expected = file_markers([shop / "shop" / "api.py"], shop)
    assert _found(shop, "shop/api.py") == expected
    result = lint_paths(["shop/api.py"], Settings(root=shop))
    assert (result.files, result.followed) == (1, 3)


def test_without_following_imports_only_the_file_itself_counts(shop: Path) -> None:
    assert _found(shop, "shop/api.py", follow=False) == []


def test_chain_message_names_each_step_and_where_it_blocks(shop: Path) -> None:
    result = lint_paths(["shop/api.py"], Settings(root=shop))
    [retry] = [f for f in result.findings if f.line == 11]
    assert retry.code == "CC101"
    assert "(retry_later -> backoff -> time.sleep at shop/helpers.py:5)" in retry.message
    [insert_sync] = [f for f in result.findings if f.line == 12]
    assert "(insert_sync -> sqlite3.connect at shop/db.py:13)" in insert_sync.message


def test_methods_inherited_from_another_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text(
        "import time\n\nclass Repository:\n    async def save(self, row): ...\n\n"
        "    def flush(self):\n        time.sleep(1)\n"
    )
    (package / "orders.py").write_text(
        "from app.base import Repository\n\n"
        "class Orders(Repository):\n"
        "    async def place(self, row):\n"
        "        self.save(row)\n"
        "        self.flush()\n"
    )
    assert _found(tmp_path, "app/orders.py") == [
        ("app/orders.py", 5, "CC201"),
        ("app/orders.py", 6, "CC101"),
    ]


def test_same_named_scripts_in_different_directories_do_not_mix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for directory, helper in (("one", "async def helper(): ..."), ("two", "def helper(): ...")):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "conftest.py").write_text(
            f"{helper}\n\nasync def test_it():\n    helper()\n"
        )
    assert _found(tmp_path, ".") == [("one/conftest.py", 4, "CC201")]


def test_a_package_re_exporting_a_submodule_name_does_not_loop(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .main import main\n")
    (package / "main.py").write_text("class TestProgram:\n    pass\n\nmain = TestProgram\n")
    (tmp_path / "app.py").write_text(
        "import pkg.main\n\nasync def run():\n    pkg.main.main()\n    pkg.main.main.main.x()\n"
    )
    # In a subprocess with a timeout: a regression here is an endless loop, not a failure.
    completed = subprocess.run(
        [sys.executable, "-m", "concurrency_lint", "--no-cache", "app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (completed.returncode, completed.stdout) == (0, ""), completed.stderr


@pytest.mark.parametrize("layout", ["flat", "src"])
def test_a_test_file_alone_sees_the_package_of_its_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    # tests/ has no __init__.py: its import root is tests/, yet it imports the project's
    # package from the project root (or src/), as pytest lets it.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    package = tmp_path / ("src/shop" if layout == "src" else "shop")
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text(
        "import time\n\ndef backoff():\n    time.sleep(1)\n\nasync def fetch(): ...\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_shop.py").write_text(
        "from shop.helpers import backoff, fetch\n\n"
        "async def test_it():\n    backoff()\n    fetch()\n"
    )
    assert _found(tmp_path, "tests/test_shop.py") == [
        ("tests/test_shop.py", 4, "CC101"),
        ("tests/test_shop.py", 5, "CC201"),
    ]
    # Without a project file above it, tests/ stays the only place its imports are looked for.
    (tmp_path / "pyproject.toml").unlink()
    assert _found(tmp_path, "tests/test_shop.py") == []
