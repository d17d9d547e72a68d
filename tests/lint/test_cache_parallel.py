"""The content-hash cache and parallel extraction give the same answers, faster."""

from __future__ import annotations

import marshal
import shutil
from pathlib import Path

import pytest
from lint_helpers import FIXTURES

from concurrency_lint import Settings
from concurrency_lint.engine import Linter


def _run(root: Path, cache: Path | None, jobs: int = 1, threshold: int | None = None) -> Linter:
    linter = Linter(Settings(root=root), jobs=jobs, cache_dir=cache, use_cache=cache is not None)
    if threshold is not None:
        linter.parallel_threshold = threshold
    linter.run([str(root)])
    return linter


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    shutil.copytree(FIXTURES / "corpus", root)
    return root


def test_warm_run_reads_every_file_from_the_cache(corpus: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cold = _run(corpus, cache)
    assert cold.result.cached == 0
    assert (cache / ".gitignore").read_text().endswith("*\n")
    warm = _run(corpus, cache)
    assert warm.result.cached == warm.result.files == len(list(corpus.glob("*.py")))
    assert warm.result.findings == cold.result.findings


def test_an_unchanged_tree_replays_the_last_findings_without_decoding_facts(
    corpus: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cold = _run(corpus, cache)
    warm = _run(corpus, cache)
    assert warm.files == {}  # nothing was read back from the facts
    assert warm.result.findings == cold.result.findings
    fixes = [f for f in warm.result.findings if f.fix is not None]
    assert fixes
    assert warm.anchors_of(fixes[0].path, fixes) == cold.anchors_of(fixes[0].path, fixes)


def test_a_changed_module_outside_the_linted_files_is_noticed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(FIXTURES / "shop", shop)
    monkeypatch.chdir(shop)
    cache = tmp_path / "cache"

    def lint_api() -> Linter:
        linter = Linter(Settings(root=shop), cache_dir=cache)
        linter.run(["shop/api.py"])
        return linter

    assert [f.line for f in lint_api().result.findings if f.code == "CC101"] == [11]
    helpers = shop / "shop" / "helpers.py"
    helpers.write_text(helpers.read_text().replace("time.sleep(0.1 * 2**attempt)", "pass"))
    rerun = lint_api()
    assert rerun.files  # not replayed: a module it had followed changed
    assert [f.line for f in rerun.result.findings if f.code == "CC101"] == []


def test_a_changed_file_is_analysed_again(corpus: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _run(corpus, cache)
    target = corpus / "trio_worker.py"
    target.write_text(target.read_text().replace("await trio.sleep(5)", "time.sleep(5)"))
    warm = _run(corpus, cache)
    assert warm.result.cached == len(list(corpus.glob("*.py"))) - 1
    assert [f.line for f in warm.result.findings if f.path.endswith("trio_worker.py")] == [
        14,
        15,
        16,
        23,
    ]


def test_a_corrupt_cache_is_ignored(corpus: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    expected = _run(corpus, cache).result.findings
    for stored in cache.glob("*.marshal"):
        stored.write_bytes(b"not a cache")
    again = _run(corpus, cache)
    assert again.result.cached == 0
    assert again.result.findings == expected
    [facts] = cache.glob("facts-*")
    _format, entries = marshal.loads(facts.read_bytes())
    assert len(entries) == len(list(corpus.glob("*.py")))


def test_an_unwritable_cache_is_a_warning_not_a_failure(corpus: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    linter = _run(corpus, blocker)
    assert linter.result.findings
    [warning] = linter.result.warnings
    assert warning.startswith(f"cannot write the cache in {blocker}")


def test_parallel_workers_give_the_same_findings(corpus: Path) -> None:
    serial = _run(corpus, None, jobs=1)
    parallel = _run(corpus, None, jobs=2, threshold=0)
    assert parallel.result.findings == serial.result.findings
    assert len(serial.result.findings) > 20


def test_an_unparsable_file_survives_the_replay(tmp_path: Path) -> None:
    root = tmp_path / "code"
    root.mkdir()
    (root / "broken.py").write_text("def broken(:\n")
    (root / "fine.py").write_text("import time\nasync def f():\n    time.sleep(1)\n")
    cache = tmp_path / "cache"
    cold = _run(root, cache)
    warm = _run(root, cache)
    assert warm.files == {}
    assert [f.code for f in warm.result.findings] == [f.code for f in cold.result.findings]
    assert [f.code for f in warm.result.findings] == ["CC000", "CC101"]


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("shop/later.py", "shop.later"),
        ("later.py", "later"),
        ("shop/later/__init__.py", "shop.later"),
    ],
)
def test_a_module_that_appears_after_a_run_that_looked_for_it_is_noticed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, imported: str
) -> None:
    root = tmp_path / "project"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "api.py").write_text(
        f"from {imported} import go\n\nasync def main():\n    go()\n"
    )
    monkeypatch.chdir(root)
    cache = tmp_path / "cache"

    def lint_api() -> Linter:
        linter = Linter(Settings(root=root), cache_dir=cache)
        linter.run(["shop/api.py"])
        return linter

    assert lint_api().result.findings == []
    assert lint_api().files == {}  # replayed while nothing changed
    (root / module).parent.mkdir(parents=True, exist_ok=True)
    (root / module).write_text("async def go(): ...\n")
    rerun = lint_api()
    assert [(f.line, f.code) for f in rerun.result.findings] == [(4, "CC201")]
