"""A host project written from the documentation (tests/host_project): its typed handlers pass
``mypy --strict``, mismatched receivers are mypy errors, and its plugin-based tests pass twice in
a row."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import ROOT

pytestmark = pytest.mark.subprocess

HOST = ROOT / "tests" / "host_project"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(HOST, copy)
    return copy


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": str(ROOT), "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_typed_handlers_pass_mypy_strict(project: Path) -> None:
    result = run(
        ["mypy", "--strict", "--cache-dir", str(project / ".mypy"), "hostapp", "tests"], project
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mismatched_receivers_are_mypy_errors(project: Path) -> None:
    source = (project / "typing_errors.py").read_text().splitlines()
    expected = {number for number, line in enumerate(source, 1) if "# E:" in line}
    result = run(
        ["mypy", "--strict", "--cache-dir", str(project / ".mypy"), "typing_errors.py"], project
    )
    reported = {
        int(match.group(1))
        for match in re.finditer(r"^typing_errors\.py:(\d+): error:", result.stdout, re.M)
    }
    assert reported == expected, result.stdout
    assert len(expected) == 4


def test_host_tests_pass_twice_in_a_row(project: Path) -> None:
    for attempt in (1, 2):
        result = run(["pytest", "-p", "no:cacheprovider", "-q"], project)
        assert result.returncode == 0, f"run {attempt}:\n{result.stdout}{result.stderr}"
        assert "3 passed" in result.stdout
    # The factory configures a SQLite file in the instance folder; the tests never touch it.
    assert not (project / "instance" / "voxcallbacks.db").exists()
