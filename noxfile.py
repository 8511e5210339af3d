"""The test matrix, run by ``make test-matrix`` (and by CI after ``make test``).

- ``tests``: on every supported Python, the in-process suite (every test but those that run the
  package in other processes) at the newest versions pip finds; on the oldest and the newest
  Python also ``mypy --strict`` and the subprocess suite (gunicorn, workers, the example app).
- ``lowest``: the in-process suite on the oldest Python with every dependency and extra at the
  lowest version ``setup.cfg`` declares (``tests/constraints-lowest.txt``).
- ``sdist``: the source distribution passes ``twine check --strict``, and the in-process suite
  runs from it, unpacked in a temporary folder.

A supported Python that is missing fails the run: a version is never skipped in silence.
"""

from __future__ import annotations

import glob
import os
import tarfile
from pathlib import Path

import nox

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
OLDEST, NEWEST = PYTHONS[0], PYTHONS[-1]
IN_PROCESS = ["-q", "-p", "no:cacheprovider", "-m", "not subprocess"]

nox.options.sessions = ["tests", "lowest", "sdist"]
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
nox.options.reuse_venv = "yes"

# pyenv's interpreters (the shims answer only for the active version) come first on the PATH.
_found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin")))
os.environ["PATH"] = os.pathsep.join([*_found, os.environ.get("PATH", "")])


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    session.install("--upgrade", "--upgrade-strategy", "eager", "-e", ".[test]")
    session.run("python", "-c", "import sys, flask; print(sys.version)")
    session.run("python", "-m", "pytest", *IN_PROCESS)
    if session.python in (OLDEST, NEWEST):
        session.run("mypy", "--strict", "flask_voxcallbacks")
        session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "subprocess")


@nox.session(python=OLDEST)
def lowest(session: nox.Session) -> None:
    session.install("-c", "tests/constraints-lowest.txt", "-e", ".[test]")
    session.run("python", "-m", "pip", "list")
    session.run("python", "-m", "pytest", *IN_PROCESS)


@nox.session(python=NEWEST)
def sdist(session: nox.Session) -> None:
    session.install("build", "twine")
    out = Path(session.create_tmp()).resolve()
    for old in out.glob("*"):
        if old.is_file():
            old.unlink()
    session.run("python", "-m", "build", "--sdist", "--outdir", str(out))
    (archive,) = out.glob("*.tar.gz")
    session.run("twine", "check", "--strict", str(archive))
    unpacked = out / "unpacked"
    session.run("rm", "-rf", str(unpacked), external=True)
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    (source,) = unpacked.iterdir()
    session.install(f"{source}[test]")
    session.chdir(source)
    session.run(
        "python",
        "-c",
        "import flask_voxcallbacks, pathlib, sys;"
        " sys.exit(pathlib.Path.cwd() not in pathlib.Path(flask_voxcallbacks.__file__).parents)",
    )
    session.run("python", "-m", "pytest", *IN_PROCESS)
