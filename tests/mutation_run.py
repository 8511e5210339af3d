"""``mutmut run`` for ``make mutation``, with one allowance for this package.

Before it tries any mutant, mutmut checks that a forced failure fails the tests: every mutated
function raises, and pytest must report failing tests. Here the first mutated functions run at
import time (the field declarations of the payload classes), so pytest stops earlier, while
loading the package's pytest plugin, and answers "usage error", which mutmut takes for a broken
test command. That answer is itself the forced failure showing, so it is accepted as one; any
other problem with the test command still stops the run.
"""

from __future__ import annotations

import sys

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

if __name__ == "__main__":
    sys.argv = ["mutmut", "run", *sys.argv[1:]]
    mutmut_main.cli()
