"""Real servers on loopback for the end-to-end tests: free ports, start, wait, stop."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def start(
    args: list[str], port: int, log: IO[bytes], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,
    )
    try:
        wait_for_port(port, process)
    except Exception:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def voxcallbacks_cli(
    app: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``flask --app APP voxcallbacks ARGS...`` in a process of its own, from the project root."""
    return subprocess.run(
        [str(BIN / "flask"), "--app", app, "voxcallbacks", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def post(url: str, body: bytes, timeout: float = 30) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException):
        # No answer, or one cut off (a worker killed while it answered): not delivered.
        return 0, b""


class RedisServer:
    """A private redis-server on a free loopback port, with its data in ``directory``."""

    def __init__(self, directory: Path, appendfsync: str = "always") -> None:
        self.directory = directory
        self.appendfsync = appendfsync
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; `make test` installs it")
        with (self.directory / "redis.log").open("ab") as log:
            self.process = self._start(binary, log)
        self._wait_until_loaded()

    def _wait_until_loaded(self, seconds: float = 60) -> None:
        """A restarted server answers LOADING while it reads its append-only file back."""
        import time

        import redis

        deadline = time.monotonic() + seconds
        with redis.Redis.from_url(self.url) as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.BusyLoadingError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def _start(self, binary: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
        return start(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                self.appendfsync,
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
            self.port,
            log,
        )

    def flush(self) -> None:
        """Forget every key."""
        import redis

        with redis.Redis.from_url(self.url) as client:
            client.flushall()

    def stop(self) -> None:
        if self.process is not None:
            self._wait_for_rewrites()
            stop(self.process)
            self.process = None

    def _wait_for_rewrites(self, seconds: float = 10) -> None:
        """Redis refuses to stop while it writes the first append-only file after ``CONFIG SET
        appendonly yes``; a test that turned it off and on again leaves one being written."""
        import time

        import redis

        deadline = time.monotonic() + seconds
        try:
            with redis.Redis.from_url(self.url, socket_timeout=5) as client:
                while time.monotonic() < deadline:
                    info = client.info("persistence")
                    if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                        return
                    time.sleep(0.05)
        except redis.RedisError:
            return  # not answering: stop() ends it all the same


class PostgresServer:
    """A private PostgreSQL cluster on a free loopback port: ``initdb`` into a temporary folder,
    ``pg_ctl`` to start and stop it, run as the ``postgres`` user when the tests run as root
    (PostgreSQL refuses to run as root)."""

    def __init__(self, fsync: bool = True) -> None:
        import tempfile

        self.fsync = fsync
        self.port = free_port()
        # Not under pytest's temporary folder, nor under a TMPDIR such as nox's (inside the
        # checkout): those can be private to root, and the server runs as postgres.
        shared = "/tmp" if os.geteuid() == 0 and os.path.isdir("/tmp") else None
        self.directory = Path(tempfile.mkdtemp(prefix="vox-pg-", dir=shared))
        self.data = self.directory / "data"
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def binary(name: str) -> str:
        """A PostgreSQL server program: on the PATH, or in Debian's versioned folder."""
        import glob
        import shutil

        found = shutil.which(name)
        if found is None:
            candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
            found = candidates[-1] if candidates else None
        if found is None:
            raise RuntimeError(f"{name} is not installed; `make test` installs postgresql")
        return found

    def _as_owner(self, args: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return args
        return ["runuser", "-u", "postgres", "--", *args]

    def start(self) -> None:
        import shutil

        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        if not self.data.exists():
            self._copy_template()
        self._pg_ctl("start")
        self.running = True

    def _copy_template(self) -> None:
        """A new cluster's data folder, copied from a pristine one that ``initdb`` made once for
        this machine's PostgreSQL: a copy takes about a tenth of the second ``initdb`` does, and
        the tests and the mutation run start many servers."""
        template = self.directory.parent / f"vox-pg-template-{self._version()}-{os.geteuid()}"
        if not template.exists():
            import tempfile

            building = Path(tempfile.mkdtemp(prefix="vox-pg-building-", dir=self.directory.parent))
            if os.geteuid() == 0:
                import shutil

                shutil.chown(building, "postgres", "postgres")
            self._initdb(building / "data")
            try:
                os.rename(building, template)
            except OSError:  # another process made it first: use theirs
                subprocess.run(["rm", "-rf", str(building)], check=False)
        subprocess.run(["cp", "-a", str(template / "data"), str(self.data)], check=True)

    def _version(self) -> str:
        answer = subprocess.run(
            [self.binary("initdb"), "--version"], check=True, capture_output=True, text=True
        )
        return answer.stdout.split()[2]  # "initdb (PostgreSQL) 15.18 (Debian ...)"

    def _initdb(self, data: Path) -> None:
        subprocess.run(
            self._as_owner(
                [
                    self.binary("initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def _pg_ctl(self, action: str, mode: str = "fast") -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port}"
            f" -c unix_socket_directories={self.data} -c fsync={'on' if self.fsync else 'off'}"
            " -c max_connections=200"
        )
        subprocess.run(
            self._as_owner(
                [
                    self.binary("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.directory / "server.log"),
                    "-o",
                    options,
                    "-m",
                    mode,
                    "-w",
                    "-t",
                    "60",
                    action,
                ]
            ),
            check=action != "stop",
            capture_output=True,
        )

    def pid(self) -> int:
        """The process id of the running server (its postmaster)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def restart(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as a crash would) and start it on the same data."""
        self._pg_ctl("stop", mode)
        self._pg_ctl("start")

    def stop(self) -> None:
        import shutil

        if self.running:
            # Immediate: the data is about to be deleted, so nothing needs writing first.
            self._pg_ctl("stop", "immediate")
            self.running = False
        shutil.rmtree(self.directory, ignore_errors=True)

    def execute(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            for statement in statements:
                db.execute(statement)  # type: ignore[arg-type]
