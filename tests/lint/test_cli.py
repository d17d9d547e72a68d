"""The command line: output formats, selection, noqa, configuration, exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from concurrency_lint.cli import main

BLOCKING = """\
import time
import asyncio

async def handler():
    time.sleep(1)
    asyncio.sleep(1)
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["--no-cache", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(BLOCKING)
    (tmp_path / "clean.py").write_text("async def ok():\n    return 1\n")
    return tmp_path


def test_clean_code_exits_zero(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "clean.py")
    assert (status, out) == (0, "")
    assert "All checks passed (1 file)." in err


def test_findings_are_printed_like_ruff_and_exit_one(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys)
    assert status == 1
    lines = out.splitlines()
    assert lines[0].startswith("app.py:5:5: CC101 `time.sleep()` blocks the event loop")
    assert lines[1].startswith("app.py:6:5: CC201 `asyncio.sleep()` is a coroutine function")
    assert len(lines) == 2
    assert "Found 2 findings in 1 of 2 files. 2 fixable with --fix" in err


def test_json_output_has_the_documented_fields(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "--format", "json", "app.py")
    assert status == 1
    first, second = json.loads(out)
    assert first == {
        "path": "app.py",
        "line": 5,
        "column": 5,
        "end_line": 5,
        "end_column": 18,
        "code": "CC101",
        "message": first["message"],
        "fix_available": True,
    }
    assert second["code"] == "CC201"


def test_github_output_is_workflow_commands(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "--format", "github", "--select", "CC101", "app.py")
    assert out.startswith(
        "::error title=concurrency-lint (CC101),file=app.py,line=5,col=5,endLine=5,endColumn=18::"
        "CC101 `time.sleep()` blocks"
    )


def test_sarif_output_is_a_sarif_log(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--format", "sarif", "app.py")
    log = json.loads(out)
    assert log["version"] == "2.1.0"
    [run_] = log["runs"]
    rule_ids = [rule["id"] for rule in run_["tool"]["driver"]["rules"]]
    assert "CC101" in rule_ids
    assert "CC302" in rule_ids
    result = run_["results"][0]
    assert result["ruleId"] == "CC101"
    assert rule_ids[result["ruleIndex"]] == "CC101"
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 5, "startColumn": 5, "endLine": 5, "endColumn": 18}


def test_statistics_counts_per_code(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "more.py").write_text("import time\nasync def f():\n    time.sleep(1)\n")
    status, out, _ = run(capsys, "--statistics")
    assert status == 1
    assert out.splitlines() == [
        "2  CC101  [*] blocking-sleep",
        "1  CC201  [*] coroutine-not-awaited",
    ]


def test_select_and_ignore_by_code_and_prefix(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "--select", "CC2", "app.py")[1].count("CC201") == 1
    assert "CC101" not in run(capsys, "--select", "CC2", "app.py")[1]
    status, out, _ = run(capsys, "--ignore", "CC1,CC20", "app.py")
    assert (status, out) == (0, "")
    _, out, _ = run(capsys, "--select", "CC101", "--ignore", "CC1", "app.py")
    assert "CC101" in out  # the more specific code wins


def test_unknown_code_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--select", "CC999")
    assert (status, out) == (2, "")
    assert err.startswith("concurrency-lint: error: --select: unknown rule code or prefix 'CC999'")


def test_noqa_comments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "noqa.py").write_text(
        """\
import time

async def handler():
    time.sleep(1)  # noqa
    time.sleep(2)  # noqa: CC101
    time.sleep(3)  # noqa: CC1
    time.sleep(4)  # NOQA:CC201,CC101
    time.sleep(5)  # noqa: ASYNC251 (same problem, flake8-async's code)
    time.sleep(6)  # noqa: CC201
    time.sleep(7); x = "# noqa"
"""
    )
    _, out, _ = run(capsys, "noqa.py")
    assert [line.split(":")[1] for line in out.splitlines()] == ["9", "10"]


def test_syntax_errors_and_bad_encodings_are_reported_and_others_still_linted(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "broken.py").write_text("def broken(:\n    pass\n")
    (project / "latin1.py").write_bytes(b"name = '\xe9t\xe9'\n")
    (project / "declared.py").write_bytes(b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\n")
    (project / "dangling.py").symlink_to(project / "missing.py")
    status, out, err = run(capsys)
    assert status == 1
    assert "Traceback" not in err
    lines = out.splitlines()
    assert "app.py:5:5: CC101" in out
    assert "broken.py:1:12: CC000 syntax error: invalid syntax" in lines
    assert "dangling.py:1:1: CC000 cannot read: No such file or directory" in lines
    [latin] = [line for line in lines if line.startswith("latin1.py")]
    assert latin.startswith(
        "latin1.py:1:9: CC000 cannot decode: 'utf-8' codec can't decode byte 0xe9"
    )
    assert not any(line.startswith("declared.py") for line in lines)


def test_nonexistent_path_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "nowhere.py")
    assert status == 2
    assert err == "concurrency-lint: error: nowhere.py: no such file or directory\n"


def test_configuration_from_pyproject(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pyproject.toml").write_text(
        """\
[tool.concurrency-lint]
select = ["CC1", "CC2"]
ignore = ["CC201"]
extend-exclude = ["generated"]
per-file-ignores = { "tests/*" = ["CC101"] }
framework = "trio"
"""
    )
    (project / "generated").mkdir()
    (project / "generated" / "out.py").write_text(BLOCKING)
    (project / "tests").mkdir()
    (project / "tests" / "test_app.py").write_text(BLOCKING)
    status, out, _ = run(capsys)
    assert status == 1
    assert out.splitlines() == [
        "app.py:5:5: CC101 `time.sleep()` blocks the event loop while it sleeps, so no other "
        "task runs meanwhile; use `await trio.sleep(...)`"
    ]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("colour = 'red'", "unknown key 'colour'; valid keys: select, ignore"),
        ("select = 'CC1'", "'select' must be a list of strings, got 'CC1'"),
        ("ignore = ['CC42']", "unknown rule code or prefix 'CC42'"),
        ("framework = 'twisted'", "'framework' must be one of auto, asyncio, trio, anyio"),
        ("extra-blocking-calls = ['sleep']", "is not a qualified name"),
        ("extra-thread-offload-functions = { 'pool.run' = -1 }", "must be an argument position"),
        ("per-file-ignores = { 'tests/*' = 'CC1' }", "must be a list of rule codes"),
        ("select = [", "invalid TOML"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_two(
    project: Path, capsys: pytest.CaptureFixture[str], table: str, expected: str
) -> None:
    (project / "pyproject.toml").write_text(f"[tool.concurrency-lint]\n{table}\n")
    status, out, err = run(capsys)
    assert (status, out) == (2, "")
    assert err.startswith("concurrency-lint: error: ")
    assert expected in err
    assert err.count("\n") == 1


def test_isolated_ignores_the_configuration(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text("[tool.concurrency-lint]\nunknown = 1\n")
    assert run(capsys, "--isolated", "clean.py")[0] == 0
    (project / "other.toml").write_text("[tool.concurrency-lint]\nignore = ['CC']\n")
    assert run(capsys, "--config", "other.toml")[0] == 0
    assert run(capsys, "--config", "missing.toml")[0] == 2


@pytest.mark.parametrize(
    "arguments",
    [["--jobs", "0"], ["--unsafe-fixes"], ["--format", "xml"], ["--explain", "CC999"]],
)
def test_usage_errors_exit_two(
    project: Path, capsys: pytest.CaptureFixture[str], arguments: list[str]
) -> None:
    with pytest.raises(SystemExit) if arguments[0] == "--format" else _no_exit():
        status = main(arguments)
        assert status == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error" in err


class _no_exit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_explain_prints_the_rule_documentation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--explain", "cc203"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CC203 task-dropped (unsafe autofix (--fix --unsafe-fixes))\n\n")
    assert "weak" in out


def test_console_script_never_shows_a_traceback(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.concurrency-lint]\nselect = 3\n")
    script = Path(sys.executable).with_name("concurrency-lint")
    completed = subprocess.run(
        [os.fspath(script), "."],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert "Traceback" not in completed.stderr
    assert "'select' must be a list of strings, got 3" in completed.stderr


def test_default_excludes_can_be_extended_or_replaced(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for directory in ("build", ".venv", "vendor"):
        (project / directory).mkdir()
        (project / directory / "copy.py").write_text(BLOCKING)
    _, out, _ = run(capsys, "--select", "CC101")
    assert {line.split(":")[0] for line in out.splitlines()} == {"app.py", "vendor/copy.py"}
    _, out, _ = run(capsys, "--select", "CC101", "--extend-exclude", "vendor")
    assert {line.split(":")[0] for line in out.splitlines()} == {"app.py"}
    _, out, _ = run(capsys, "--select", "CC101", "--exclude", "")
    assert {line.split(":")[0] for line in out.splitlines()} == {
        "app.py",
        "build/copy.py",
        ".venv/copy.py",
        "vendor/copy.py",
    }


def test_an_internal_error_is_one_line_not_a_traceback(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something we did not foresee")

    monkeypatch.setattr("concurrency_lint.engine.Linter.run", broken)
    status, out, err = run(capsys, "app.py")
    assert (status, out) == (2, "")
    assert err == (
        "concurrency-lint: internal error: RuntimeError: something we did not foresee "
        "(please report it; set CONCURRENCY_LINT_DEBUG=1 for the traceback)\n"
    )


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ([], ["build/copy.py", ".venv/lib/site.py", "pkg/build/deep/copy.py"]),
        (["--extend-exclude", "migrations"], ["migrations/0001.py"]),
        (["--extend-exclude", "generated/*.py"], ["generated/out.py"]),
    ],
)
def test_excluded_files_named_on_the_command_line_are_skipped(
    project: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], named: list[str]
) -> None:
    # pre-commit passes every staged file by name: the exclusions must hold for them too,
    # through any directory between the project root and the file.
    for name in named:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(BLOCKING)
    status, out, err = run(capsys, *arguments, *named, "app.py")
    assert status == 1
    assert {line.split(":")[0] for line in out.splitlines()} == {"app.py"}
    assert "(1 file" in err or "of 1 files" in err
    status, out, _ = run(capsys, "--exclude", "", *named)
    assert {line.split(":")[0] for line in out.splitlines()} == set(named)


def test_an_excluded_directory_named_on_the_command_line_gets_a_note(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "build").mkdir()
    (project / "build" / "copy.py").write_text(BLOCKING)
    status, out, err = run(capsys, "build")
    assert (status, out) == (0, "")
    assert "concurrency-lint: warning: build: excluded by the exclude patterns" in err


@pytest.mark.parametrize("repository_above", [False, True])
def test_the_directories_above_the_project_do_not_exclude_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    repository_above: bool,
) -> None:
    project = tmp_path / "build" / "project"
    project.mkdir(parents=True)
    if repository_above:  # a home directory kept in git, say: the project root moves up
        (tmp_path / ".git").mkdir()
    (project / "app.py").write_text(BLOCKING)
    monkeypatch.chdir(project)
    assert run(capsys, "app.py")[0] == 1
    assert run(capsys, str(project / "app.py"))[0] == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_called_like_a_module_is_skipped_not_waited_on(project: Path) -> None:
    os.mkfifo(project / "pipe.py")
    script = Path(sys.executable).with_name("concurrency-lint")
    for arguments in (["."], ["pipe.py", "clean.py"]):
        completed = subprocess.run(
            [os.fspath(script), "--no-cache", "--select", "CC000", *arguments],
            capture_output=True,
            text=True,
            cwd=project,
            check=False,
            timeout=60,
        )
        assert (completed.returncode, completed.stdout) == (0, "")
    assert "pipe.py: not a regular file, skipped" in completed.stderr


@pytest.mark.parametrize("marker", ["pyproject.toml", "setup.cfg", ".git"])
def test_without_configuration_the_cache_is_at_the_project_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], marker: str
) -> None:
    root = tmp_path / "project"
    (root / "src" / "app").mkdir(parents=True)
    if marker == ".git":
        (root / marker).mkdir()
    else:
        (root / marker).write_text("[project]\nname = 'app'\n" if marker.endswith("toml") else "")
    (root / "src" / "app" / "handler.py").write_text(BLOCKING)
    monkeypatch.chdir(root / "src")
    assert main(["app/handler.py"]) == 1
    capsys.readouterr()
    assert (root / ".concurrency-lint-cache").is_dir()
    assert not (root / "src" / ".concurrency-lint-cache").exists()


def test_without_a_project_the_cache_is_in_the_working_directory(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["app.py"]) == 1
    capsys.readouterr()
    assert (project / ".concurrency-lint-cache").is_dir()
