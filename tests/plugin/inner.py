"""Run a sample suite from ``fixtures/detect`` in its own pytest process and read the results.

Each run is a real pytest session in a subprocess (so the plugin under test installs its hooks
in a clean interpreter), with a JUnit XML report from which every test's outcome and the full
text of its failures are read.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "detect"

INI = """\
[pytest]
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
"""


@dataclass
class Case:
    """One test of an inner session."""

    name: str
    outcome: str  # "passed", "failed" (call), "error" (setup/teardown), "skipped"
    text: str = ""
    phases: list[str] = field(default_factory=list)  # "failure" and/or "error"


@dataclass
class InnerRun:
    """The result of one inner session."""

    root: Path
    returncode: int
    output: str
    cases: dict[str, Case]

    def case(self, name: str) -> Case:
        """A test by name (``test_x``, ``TestClass.test_x`` or ``test_x[param]``)."""
        try:
            return self.cases[name]
        except KeyError:
            raise AssertionError(
                f"no test {name!r} in the inner session; it ran: {sorted(self.cases)}\n"
                f"{self.output}"
            ) from None

    def line(self, relative_file: str, tag: str) -> str:
        """``file:LINE`` of the line carrying the comment ``# <tag>`` in a sample file."""
        path = self.root / relative_file
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            if re.search(rf"#\s*{re.escape(tag)}\s*($|#)", text):
                return f"{relative_file}:{number}"
        raise AssertionError(f"no line tagged {tag!r} in {relative_file}")


def run_suite(
    tmp_path: Path, folder: str, *args: str, ini: str = INI, timeout: float = 240.0
) -> InnerRun:
    """Copy ``fixtures/detect/<folder>`` into ``tmp_path`` and run pytest on it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    target = tmp_path / folder
    shutil.copytree(FIXTURES / folder, target)
    (tmp_path / "pytest.ini").write_text(ini)
    report = tmp_path / "report.xml"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PY_COLORS": "0"}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            folder,
            f"--junitxml={report}",
            "-p",
            "no:cacheprovider",
            "-rA",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = completed.stdout + completed.stderr
    cases = _read_junit(report) if report.exists() else {}
    return InnerRun(tmp_path, completed.returncode, output, cases)


def _read_junit(report: Path) -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for element in ElementTree.parse(report).iter("testcase"):
        classname = element.get("classname", "")
        name = element.get("name", "")
        # "pkg.test_module.TestClass" -> "TestClass.test_x"; plain module tests keep their name.
        last = classname.rsplit(".", 1)[-1]
        key = f"{last}.{name}" if last[:1].isupper() else name
        case = cases.setdefault(key, Case(key, "passed"))
        for child in element:
            if child.tag in ("failure", "error"):
                case.phases.append(child.tag)
                case.text += (child.get("message", "") + "\n" + (child.text or "")) + "\n"
                if child.tag == "failure" or case.outcome == "passed":
                    case.outcome = "failed" if child.tag == "failure" else "error"
            elif child.tag == "skipped":
                case.outcome = "skipped"
            elif child.tag in ("system-out", "system-err"):
                case.text += child.text or ""
    return cases
