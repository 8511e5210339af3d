"""The mutation score of each module after ``mutmut run`` (``make mutation``).

Reads mutmut's results in ``mutants/``. mutmut runs, for each mutant, the tests that called the
mutated function; code that runs at import time (the field declarations of the payload classes)
is called by no test, so each mutant mutmut reports as surviving is tried once more here against
the whole in-process suite, in a fresh interpreter that imports the package with the mutant
active. Then the mutants listed in ``tests/mutation_equivalent.txt`` (each with the reason it
changes no behaviour) are left out, the score of each module and every surviving mutant with its
diff are printed, and the exit status is 1 when a module scores under the target or an
equivalent entry is stale.
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


def suite_passes(mutant: str | None) -> bool:
    """Whether the in-process suite passes in ``mutants/`` with ``mutant`` active."""
    env = {**os.environ, "MUTANT_UNDER_TEST": mutant or ""}
    try:
        result = subprocess.run(
            SUITE, cwd=ROOT / "mutants", env=env, capture_output=True, timeout=600, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def recheck(found: dict[str, str], names: list[str]) -> None:
    """Try each of ``names`` against the whole suite in a fresh process; mark the killed ones.

    The verdicts are kept in ``mutants/recheck.json`` for later reports on the same run.
    """
    cache_file = ROOT / "mutants" / "recheck.json"
    cache: dict[str, bool] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    todo = [name for name in names if name not in cache]
    if todo:
        if not suite_passes(None):
            raise SystemExit("the suite fails in mutants/ without any mutant: cannot recheck")
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            cache.update(zip(todo, pool.map(suite_passes, todo)))
        cache_file.write_text(json.dumps(cache, indent=1))
    for name in names:
        if not cache[name]:
            found[name] = "killed"


def statuses() -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    found: dict[str, str] = {}
    for meta in (ROOT / "mutants").rglob("*.py.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            found[name] = status_by_exit_code[code]
    return found


def equivalents() -> dict[str, str]:
    """Mutant name -> reason, from lines ``name -- reason``."""
    listed: dict[str, str] = {}
    for number, line in enumerate(EQUIVALENT.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, reason = line.partition(" -- ")
        if not sep or not reason.strip():
            raise SystemExit(f"{EQUIVALENT.name}:{number}: expected 'mutant -- reason'")
        listed[name.strip()] = reason.strip()
    return listed


def module_of(name: str) -> str:
    return re.split(r"\.x[_\u01c1]", name, maxsplit=1)[0]


def main() -> int:
    found = statuses()
    if not found:
        print("No mutmut results in mutants/: run `make mutation`.")
        return 1
    listed = equivalents()
    recheck(
        found,
        [name for name, status in found.items() if status not in KILLED and name not in listed],
    )
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for name, status in sorted(found.items()):
        counts = totals[module_of(name)]
        counts["all"] += 1
        if name in listed:
            counts["equivalent"] += 1
        elif status in KILLED:
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
    stale = [name for name in listed if found.get(name, "killed") in KILLED]
    for name in stale:
        print(f"stale entry in {EQUIVALENT.name} (killed or gone): {name}")
    for name in survivors:
        print(f"\n{found[name]}: {name}")
        diff = subprocess.run(
            [sys.executable, "-m", "mutmut", "show", name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        print("\n".join(line for line in diff.splitlines() if line[:1] in "+-@"))
    print(f"\n{len(survivors)} surviving mutant(s), {len(listed)} listed as equivalent.")
    return 1 if failing or stale else 0


if __name__ == "__main__":
    sys.exit(main())
