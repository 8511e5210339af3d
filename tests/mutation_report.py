"""The mutation score of each module after ``mutmut run`` (``make mutation``).

Reads mutmut's results in ``mutants/``. mutmut forks each mutant's test run from a process that
has already imported the package, so what the package builds once (the field declarations of the
payload classes at import, a payload's converter on first use) was built by the original code and
a mutant of it looks like a survivor. Each mutant mutmut reports as surviving is therefore tried
once more here, in a fresh interpreter that imports the package with the mutant active: against
the tests that call it, then the tests of its module (where tests written since the run are);
for a function that runs at import, against the tests of its module and the whole in-process
suite. Then the mutants listed in ``tests/mutation_equivalent.txt``
(each with the reason it changes no behaviour) are left out, the score of each module and every
surviving mutant with its diff are printed, and the exit status is 1 when any mutant survives,
a module scores under the target or an equivalent entry is stale.

An equivalent mutant is named by what survives edits elsewhere: its module, its function and the
lines it changes, not by mutmut's sequence number (which every edit of the function renumbers)::

    flask_voxcallbacks.dispatch _name -- every receiver has a __module__
    -    module = getattr(receiver, "__module__", "?")
    +    module = getattr(receiver, "__module__", "XX?XX")

Entries are separated by blank lines; lines are compared without their indentation.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "tests" / "mutation_equivalent.txt"
TARGET = 0.95

KILLED = {"killed", "timeout", "caught by type check", "segfault"}
SUITE = [
    sys.executable,
    "-m",
    "pytest",
    "-x",
    "-q",
    "-p",
    "no:cacheprovider",
    "-m",
    "not subprocess",
]


def suite_passes(mutant: str, first: list[str], whole_suite: bool) -> bool:
    """Whether the in-process suite passes in ``mutants/`` with ``mutant`` active, in a fresh
    interpreter: the tests ``first`` and, when ``whole_suite`` (or ``first`` is empty), every
    test."""
    env = {**os.environ, "MUTANT_UNDER_TEST": mutant}
    stages = ([first] if first else []) + ([[]] if whole_suite or not first else [])
    for selection in stages:
        try:
            result = subprocess.run(
                SUITE + selection,
                cwd=ROOT / "mutants",
                env=env,
                capture_output=True,
                timeout=900,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        if result.returncode == 1:  # a test failed: killed
            return False
        if result.returncode != 0:
            # Not an answer about the mutant (a test that no longer exists, a usage error):
            # counting it as a kill would hide a survivor.
            tail = result.stdout.decode(errors="replace").splitlines()[-5:]
            raise SystemExit(
                f"pytest exited with {result.returncode} for {mutant or 'the unmutated code'}"
                f" ({' '.join(selection) or 'the whole suite'}):\n" + "\n".join(tail)
            )
    return True


def _module_tests(mutant: str) -> list[str]:
    """The test files named after the mutant's module or its package: ``auth``,
    ``test_auth*.py``; ``queue.celery`` (or ``queue``), every ``test_queue*.py``. A module of a
    package gets the package's files too: its tests may call it only from a thread (a queue's
    enqueue runs on one), where mutmut does not see the call."""
    parts = module_of(mutant).split(".")[1:]
    found = (ROOT / "tests").glob(f"test_{parts[0]}*.py")
    return sorted(f"tests/{path.name}" for path in found)


def _tests_calling(mutant: str, existing: set[str]) -> list[str]:
    """The tests mutmut saw calling the mutated function that still exist (``existing``), their
    files when there are many."""
    stats = json.loads((ROOT / "mutants" / "mutmut-stats.json").read_text())
    by_function = stats["tests_by_mangled_function_name"]
    tests = [
        t for t in sorted(by_function.get(mutant.partition("__mutmut_")[0], ())) if t in existing
    ]
    if len(tests) > 200:
        return sorted({test.partition("::")[0] for test in tests})
    return tests


def collected() -> set[str]:
    """The node ids of every test in ``mutants/`` now."""
    output = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT / "mutants",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.strip() for line in output.splitlines() if "::" in line}


def recheck(found: dict[str, str], names: list[str], at_import: set[tuple[str, str]]) -> None:
    """Try each of ``names`` again in a fresh interpreter; mark the killed ones.

    mutmut forks each mutant's test run from a process that has already imported the package and
    run the suite once, so what the package computes once (at import, or on first use and then
    kept) was computed by the original code, and a mutant of it looks like a survivor. Here each
    is tried with the mutant active from the first import, against the tests mutmut saw calling
    it, then the test files of its module (tests written since the run, which mutmut never saw);
    a mutant of a function that runs at import against the tests of its module, then the whole
    suite, since mutmut cannot tell which tests use what it built. Only a failing test counts as
    a kill. Kills are kept in ``mutants/recheck.json``: a later report on the same run (after new
    tests) tries only the mutants that survived.
    """
    cache_file = ROOT / "mutants" / "recheck.json"
    killed: list[str] = json.loads(cache_file.read_text()) if cache_file.exists() else []
    todo = [name for name in names if name not in killed]
    if todo:
        if not suite_passes("", [], whole_suite=True):
            raise SystemExit("the suite fails in mutants/ without any mutant: cannot recheck")

        existing = collected()

        def passes(name: str) -> bool:
            if (module_of(name), function_of(name)) in at_import:
                return suite_passes(name, _module_tests(name), whole_suite=True)
            calling = _tests_calling(name, existing)
            if calling and not suite_passes(name, calling, whole_suite=False):
                return False
            # Tests written since mutmut's run are found in the module's test files.
            module = [path for path in _module_tests(name) if path not in calling]
            return not module or suite_passes(name, module, whole_suite=False)

        # Several at a time per core: a store's tests spend most of their time waiting for its
        # server.
        with ThreadPoolExecutor(max_workers=4 * (os.cpu_count() or 2)) as pool:
            # Kept as they come: an interrupted recheck resumes where it stopped.
            for name, survived in zip(todo, pool.map(passes, todo)):
                if not survived:
                    killed.append(name)
                    cache_file.write_text(json.dumps(killed, indent=1))
    for name in names:
        if name in killed:
            found[name] = "killed"


_AT_IMPORT = r"""
import importlib.util, json, pkgutil, sys

locations = importlib.util.find_spec("flask_voxcallbacks").submodule_search_locations
root = list(locations)[0]
ran = set()

def hook(frame, event, arg):
    code = frame.f_code
    if event == "call" and code.co_filename.startswith(root):
        path = code.co_filename[len(root) :].removesuffix(".py").replace("/", ".")
        module = ("flask_voxcallbacks" + path).removesuffix(".__init__")
        ran.add(f"{module} {getattr(code, 'co_qualname', code.co_name)}")

sys.setprofile(hook)
for info in [*pkgutil.walk_packages([root], "flask_voxcallbacks.")]:
    try:
        __import__(info.name)
    except ImportError:  # an optional package that is not installed
        pass
sys.setprofile(None)
print(json.dumps(sorted(ran)))
"""


def ran_at_import() -> set[tuple[str, str]]:
    """``(module, function)`` of every function of the package that runs while its modules are
    imported (with the original sources)."""
    output = subprocess.run(
        [sys.executable, "-c", _AT_IMPORT], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    pairs = (line.split(" ", 1) for line in json.loads(output))
    return {(module, function) for module, function in pairs}


def statuses() -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    found: dict[str, str] = {}
    for meta in (ROOT / "mutants").rglob("*.py.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            found[name] = status_by_exit_code[code]
    return found


class Change(NamedTuple):
    """A mutant as the equivalents file names it: where it is and what it changes."""

    module: str
    function: str
    removed: tuple[str, ...]
    added: tuple[str, ...]


def equivalents() -> dict[Change, str]:
    """Each listed change -> the reason it changes no behaviour."""
    listed: dict[Change, str] = {}
    entries = re.split(r"\n\s*\n", EQUIVALENT.read_text())
    for entry in entries:
        lines = [line for line in entry.splitlines() if not line.startswith("#")]
        if not lines:
            continue
        head, sep, reason = lines[0].partition(" -- ")
        where = head.split()
        diff = lines[1:]
        if not sep or not reason.strip() or len(where) != 2 or not diff:
            raise SystemExit(
                f"{EQUIVALENT.name}: expected 'module function -- reason' and a diff:"
                f"\n{entry.strip()}"
            )
        if any(line[:1] not in "-+" for line in diff):
            raise SystemExit(f"{EQUIVALENT.name}: diff lines start with - or +:\n{entry.strip()}")
        listed[_change(where[0], where[1], diff)] = reason.strip()
    return listed


def _change(module: str, function: str, diff: list[str]) -> Change:
    removed = [line[1:].strip() for line in diff if line.startswith("-")]
    added = [line[1:].strip() for line in diff if line.startswith("+")]
    return Change(module, function, tuple(removed), tuple(added))


def module_of(name: str) -> str:
    return re.split(r"\.x[_\u01c1]", name, maxsplit=1)[0]


def function_of(name: str) -> str:
    """``module.xǁClassǁmethod__mutmut_3`` -> ``Class.method``; ``module.x_func__mutmut_3`` ->
    ``func``."""
    mangled = name[len(module_of(name)) + 1 :]
    mangled = re.sub(r"__mutmut_\d+$", "", mangled)
    if mangled.startswith("x\u01c1"):
        return mangled[2:].replace("\u01c1", ".")
    return mangled[2:]


def diff_of(name: str) -> list[str]:
    """The lines ``name`` removes and adds, from mutmut's diff of the function (the renamed
    ``def`` line left out)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    lines = get_diff_for_mutant(name).splitlines()
    changed = [
        re.sub(r"__mutmut_(orig|\d+)", "", line)
        for line in lines
        if line[:1] in "-+" and not line.startswith(("---", "+++"))
    ]
    removed = [line[1:] for line in changed if line.startswith("-")]
    added = [line[1:] for line in changed if line.startswith("+")]
    for line in list(removed):
        if line in added:
            removed.remove(line)
            added.remove(line)
    return [f"-{line}" for line in removed] + [f"+{line}" for line in added]


def change_of(name: str) -> Change:
    return _change(module_of(name), function_of(name), diff_of(name))


def main() -> int:
    found = statuses()
    if not found:
        print("No mutmut results in mutants/: run `make mutation`.")
        return 1
    os.chdir(ROOT)  # mutmut reads its configuration and the mutants from here
    listed = equivalents()
    changes = {name: change_of(name) for name, status in found.items() if status not in KILLED}
    equivalent = {name for name, change in changes.items() if change in listed}
    at_import = ran_at_import()
    recheck(found, [name for name in changes if name not in equivalent], at_import)
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for name, status in sorted(found.items()):
        counts = totals[module_of(name)]
        counts["all"] += 1
        if name in equivalent:
            counts["equivalent"] += 1
        elif found[name] in KILLED:
            counts["killed"] += 1
        else:
            survivors.append(name)
            counts[status.replace(" ", "_")] += 1
    failing = False
    print(f"{'module':40s} {'mutants':>7s} {'equiv.':>6s} {'killed':>6s} {'score':>6s}")
    for module, counts in sorted(totals.items()):
        relevant = counts["all"] - counts["equivalent"]
        score = counts["killed"] / relevant if relevant else 1.0
        failing |= score < TARGET
        print(
            f"{module:40s} {counts['all']:7d} {counts['equivalent']:6d} {counts['killed']:6d}"
            f" {score:6.1%}{'' if score >= TARGET else '  < ' + format(TARGET, '.0%')}"
        )
    stale = [change for change in listed if change not in {changes[n] for n in equivalent}]
    for change in stale:
        print(
            f"stale entry in {EQUIVALENT.name} (killed or gone): {change.module}"
            f" {change.function} {change.removed} -> {change.added}"
        )
    for name in survivors:
        change = changes[name]
        print(f"\n{found[name]}: {name}\n{change.module} {change.function} -- ")
        print("\n".join(diff_of(name)))
    print(f"\n{len(survivors)} surviving mutant(s), {len(listed)} listed as equivalent.")
    return 1 if failing or stale or survivors else 0


if __name__ == "__main__":
    sys.exit(main())
