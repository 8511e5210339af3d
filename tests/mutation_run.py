"""``mutmut run`` for ``make mutation``, with one allowance for this package.

Before it tries any mutant, mutmut checks that a forced failure fails the tests: every mutated
function raises, and pytest must report failing tests. Here the first mutated functions run at
import time (the field declarations of the payload classes), so pytest stops earlier, while
loading the package's pytest plugin, and answers "usage error", which mutmut takes for a broken
test command. That answer is itself the forced failure showing, so it is accepted as one; any
other problem with the test command still stops the run.

The mutants listed in ``tests/mutation_equivalent.txt`` (each reviewed, with the reason it
changes no behaviour) are not run: they are recorded as skipped, and the report counts them as
equivalent. Running one would take the whole of the tests that call its function, minutes for
the functions every request goes through, for an answer known in advance. ``--run-equivalents``
runs them too, so that the report can name any listed mutant that a test now kills; a mutant
named on the command line is always run.
"""

from __future__ import annotations

import sys
from typing import Any

import mutmut.__main__ as mutmut_main
from mutmut.mutation.trampoline import set_mutant_under_test
from mutmut.runners.harness import BadTestExecutionCommandsException

checked = mutmut_main.run_forced_fail_test


def run_forced_fail_test(runner: object) -> None:
    try:
        checked(runner)
    except BadTestExecutionCommandsException:
        set_mutant_under_test("")
        print("    done (the package failed at import, while pytest loaded its plugin)")


mutmut_main.run_forced_fail_test = run_forced_fail_test

SKIPPED = 34  # mutmut's exit code for a mutant it was told not to run
collected = mutmut_main.collect_source_file_mutation_data


def skipping_equivalents(
    *, mutant_names: tuple[str, ...] | list[str]
) -> tuple[list[tuple[Any, str, int | None]], dict[str, Any]]:
    """mutmut's list of mutants to run, with those listed as equivalent marked skipped."""
    from mutation_report import change_of, equivalents, function_of, module_of

    mutants, by_path = collected(mutant_names=mutant_names)
    if mutant_names:
        return mutants, by_path
    listed = equivalents()
    places = {(change.module, change.function) for change in listed}
    kept = []
    for data, name, result in mutants:
        if result is None and (module_of(name), function_of(name)) in places:
            try:
                equivalent = change_of(name) in listed
            except FileNotFoundError:  # not in the mutated file: mutmut tells what it is
                equivalent = False
            if equivalent:
                data.exit_code_by_key[name] = result = SKIPPED
                data.save()
        kept.append((data, name, result))
    skipped = sum(result == SKIPPED for _, _, result in kept)
    print(f"    {skipped} mutants listed as equivalent are not run")
    return kept, by_path


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if "--run-equivalents" in arguments:
        arguments.remove("--run-equivalents")
    else:
        mutmut_main.collect_source_file_mutation_data = skipping_equivalents
    sys.argv = ["mutmut", "run", *arguments]
    mutmut_main.cli()
