"""The chaos soak: callbacks sent as Voximplant sends them, while workers are SIGKILLed.

Run with ``make chaos`` or ``python benchmarks/chaos.py [--callbacks N] [SCENARIO ...]``. Each
scenario starts the soak application (``chaos_app.py``) on 127.0.0.1 and:

* a sender posts the callbacks in batches of 10 from 8 threads, and posts a batch again, after
  50 ms, until it is answered 200, as Voximplant redelivers whatever was not;
* the receiver takes 5 ms and appends the callback id to a ledger;
* every 0.3 s a random worker is killed with SIGKILL: a gunicorn worker (gunicorn starts
  another), or in queue mode an RQ or Celery worker process (started again);
* in the Redis scenario, the Redis server (``appendfsync everysec``) is killed and restarted
  once, two seconds in; in the PostgreSQL one, the PostgreSQL server is stopped as a crash
  would stop it (``pg_ctl stop -m immediate``) and started again, two seconds in (both may forget
  their last second of claims and completions, never a failed or queued callback);
* in queue mode, once every batch has been answered, the workers go on being killed while they
  run the jobs, and ``flask voxcallbacks replay --all`` runs every second, as the queue docs
  recommend running it from cron, until every callback has run or the time is up.

The report gives, per scenario: callbacks sent, lost (never run), handled twice (run more than
once: the crash window), the faults injected, and duplicates per kill. Every run is bounded in
time; the exit status is 1 when a callback was lost. The figures go to the ``chaos`` entry of
``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT), str(HERE)]

from servers import BIN, PostgresServer, RedisServer, free_port, post, start, stop  # noqa: E402

from flask_voxcallbacks.testing import make_batch, make_callback  # noqa: E402

ENDPOINT = "/voximplant/callbacks"
BATCH = 10
SENDERS = 8
REDELIVER_AFTER = 0.05


@dataclass(frozen=True)
class Scenario:
    name: str
    store: str  # memory, sqlite, redis or postgres
    mode: str = "inline"  # inline, rq or celery
    web_workers: int = 4
    queue_workers: int = 2
    restart_store: bool = False


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("sqlite", "sqlite"),
        Scenario("redis", "redis", restart_store=True),
        Scenario("postgres", "postgres", restart_store=True),
        Scenario("memory", "memory", web_workers=1),
        Scenario("rq", "redis", mode="rq", web_workers=2),
        Scenario("celery", "redis", mode="celery", web_workers=2),
    ]
}


@dataclass
class Report:
    scenario: str
    sent: int
    lost: int
    handled_twice: int
    kills: int
    store_restarts: int
    seconds: float

    @property
    def per_kill(self) -> float:
        return self.handled_twice / self.kills if self.kills else 0.0

    def line(self) -> str:
        return (
            f"{self.scenario:<8} sent {self.sent:>6}  lost {self.lost:>3}  handled twice"
            f" {self.handled_twice:>4}  kills {self.kills:>3}  store restarts"
            f" {self.store_restarts}  duplicates per kill {self.per_kill:.2f}"
            f"  ({self.seconds:.0f} s)"
        )


class Soak:
    """One scenario: its servers, workers, sender and killer."""

    def __init__(self, scenario: Scenario, callbacks: int, kill_every: float, work: Path) -> None:
        self.scenario = scenario
        self.callbacks = callbacks
        self.kill_every = kill_every
        self.work = work
        self.ledger = work / "ledger.txt"
        self.log: IO[bytes] = (work / "soak.log").open("ab")
        self.redis: RedisServer | None = None
        self.postgres: PostgresServer | None = None
        self.web: subprocess.Popen[bytes] | None = None
        self.queue_workers: list[subprocess.Popen[bytes]] = []
        self.kills = 0
        self.store_restarts = 0
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.random = random.Random(1)

    # -- set-up -----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        scenario = self.scenario
        if scenario.store == "memory":
            store = "memory://"
        elif scenario.store == "sqlite":
            store = f"sqlite:///{self.work}/vox.db"
        elif scenario.store == "postgres":
            assert self.postgres is not None
            store = self.postgres.url
        else:
            assert self.redis is not None
            store = self.redis.url
        env = {
            "VOXCALLBACKS_STORE": store,
            "CHAOS_LEDGER": str(self.ledger),
            "PYTHONPATH": f"{HERE}:{ROOT / 'tests'}:{ROOT}",
        }
        if scenario.mode != "inline":
            assert self.redis is not None
            broker = self.redis.url.rsplit("/", 1)[0] + "/1"
            env["CHAOS_BROKER"] = broker
            env["VOXCALLBACKS_QUEUE"] = (
                "celery" if scenario.mode == "celery" else "rq://" + broker[len("redis://") :]
            )
        return env

    def start(self) -> None:
        if self.scenario.store == "redis" or self.scenario.mode != "inline":
            directory = self.work / "redis"
            directory.mkdir()
            self.redis = RedisServer(directory, appendfsync="everysec")
            self.redis.start()
        if self.scenario.store == "postgres":
            self.postgres = PostgresServer()
            self.postgres.start()
            subprocess.run(
                [str(BIN / "flask"), "--app", "chaos_app:create_app", "voxcallbacks", "init-db"],
                cwd=HERE,
                env={**os.environ, **self.env()},
                stdout=self.log,
                stderr=subprocess.STDOUT,
                check=True,
            )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{ENDPOINT}"
        args = [str(BIN / "gunicorn"), "-w", str(self.scenario.web_workers)]
        args += ["-b", f"127.0.0.1:{self.port}", "--timeout", "30", "chaos_app:create_app()"]
        self.web = start(args, self.port, self.log, self.env())
        for _ in range(self.scenario.queue_workers if self.scenario.mode != "inline" else 0):
            self.queue_workers.append(self.start_queue_worker())

    def start_queue_worker(self) -> subprocess.Popen[bytes]:
        if self.scenario.mode == "celery":
            args = [str(BIN / "celery"), "-A", "chaos_app:celery_app", "worker", "--pool=prefork"]
            args += ["--concurrency=2", "--without-gossip", "--without-mingle", "-l", "WARNING"]
            extra = {"CHAOS_CELERY": "1"}
        else:
            args = [str(BIN / "flask"), "--app", "chaos_app:create_app", "voxcallbacks", "worker"]
            extra = {}
        return subprocess.Popen(
            args,
            cwd=HERE,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env(), **extra},
            start_new_session=True,
        )

    def stop(self) -> None:
        self.stopping.set()
        if self.web is not None:
            stop(self.web)
        for worker in self.queue_workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()
        self.log.close()

    # -- faults -----------------------------------------------------------------------------

    def victims(self) -> list[int]:
        """The processes the killer chooses from."""
        if self.scenario.mode == "inline":
            assert self.web is not None
            return _children(self.web.pid)
        if self.scenario.mode == "celery":
            # The pool's processes, which run the tasks; the main process starts new ones.
            return [child for w in self.queue_workers for child in _children(w.pid)]
        return [w.pid for w in self.queue_workers if w.poll() is None]

    def kill_one(self) -> None:
        victims = self.victims()
        if not victims:
            return
        victim = self.random.choice(victims)
        try:
            if self.scenario.mode == "rq":
                os.killpg(victim, signal.SIGKILL)  # the worker and the job it runs
            else:
                os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.kills += 1
        if self.scenario.mode == "rq":
            with self.lock:
                for index, worker in enumerate(self.queue_workers):
                    if worker.pid == victim:
                        worker.wait()
                        self.queue_workers[index] = self.start_queue_worker()

    def killer(self, restart_at: float) -> None:
        while not self.stopping.wait(self.kill_every):
            self.kill_one()
            due = self.scenario.restart_store and time.monotonic() >= restart_at
            if due and not self.store_restarts:
                self.restart_store()

    def restart_store(self) -> None:
        """Crash the store's server and start it again on the same port and files: Redis is
        SIGKILLed (what its last second wrote may be lost); PostgreSQL stops at once, without a
        checkpoint, and replays its log when it starts (what was flushed to it survives: every
        failed and queued callback; claims and completions of the last moments may not)."""
        if self.postgres is not None:
            self.postgres.restart("immediate")
        else:
            assert self.redis is not None and self.redis.process is not None
            os.killpg(self.redis.process.pid, signal.SIGKILL)
            self.redis.process.wait()
            time.sleep(0.5)
            self.redis.start()
        self.store_restarts += 1

    # -- the sender -------------------------------------------------------------------------

    def deliver(self, body: bytes, deadline: float) -> None:
        """Post one batch until it is answered 200, as Voximplant redelivers."""
        while time.monotonic() < deadline:
            if post(self.url, body)[0] == 200:
                return
            time.sleep(REDELIVER_AFTER)
        raise TimeoutError("a batch was not accepted before the soak's deadline")

    def run(self, seconds: float) -> Report:
        started = time.monotonic()
        deadline = started + seconds
        base = secrets.randbelow(2**40) * 1000
        ids = [base + n for n in range(1, self.callbacks + 1)]
        bodies = [
            json.dumps(
                make_batch(
                    *(make_callback("min_balance", callback_id=i) for i in ids[n : n + BATCH])
                )
            ).encode()
            for n in range(0, len(ids), BATCH)
        ]
        restart_at = started + 2.0
        killer = threading.Thread(target=self.killer, args=(restart_at,), daemon=True)
        killer.start()
        try:
            with ThreadPoolExecutor(max_workers=SENDERS) as pool:
                list(pool.map(lambda body: self.deliver(body, deadline), bodies))
            if self.scenario.mode != "inline":
                # The workers are still being killed while they run the queued jobs.
                self.recover(set(ids), deadline)
        finally:
            self.stopping.set()
            killer.join()
        handled = collections.Counter(int(line) for line in self.ledger.read_text().split())
        return Report(
            scenario=self.scenario.name,
            sent=len(ids),
            lost=sum(1 for i in ids if i not in handled),
            handled_twice=sum(1 for i in ids if handled[i] > 1),
            kills=self.kills,
            store_restarts=self.store_restarts,
            seconds=time.monotonic() - started,
        )

    def recover(self, ids: set[int], deadline: float) -> None:
        """Queue mode: wait for the workers, and replay what their killed jobs left queued."""
        env = {**os.environ, **self.env()}
        while time.monotonic() < deadline:
            handled = {int(line) for line in self.ledger.read_text().split()}
            if ids <= handled:
                return
            subprocess.run(
                [
                    str(BIN / "flask"),
                    "--app",
                    "chaos_app:create_app",
                    "voxcallbacks",
                    "replay",
                    "--all",
                ],
                cwd=HERE,
                env=env,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
            time.sleep(1)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def soak(
    scenario: Scenario, callbacks: int, kill_every: float = 0.3, seconds: float = 240
) -> Report:
    """Run one scenario in a temporary folder; raise if it cannot finish within ``seconds``."""
    with tempfile.TemporaryDirectory(prefix="voxchaos-") as folder:
        run = Soak(scenario, callbacks, kill_every, Path(folder))
        try:
            run.start()
            return run.run(seconds)
        except BaseException:
            log = Path(folder) / "soak.log"
            run.log.flush()
            sys.stderr.write(log.read_text(errors="replace")[-3000:])
            raise
        finally:
            run.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], default=[])
    parser.add_argument("--callbacks", type=int, default=5000)
    parser.add_argument("--kill-every", type=float, default=0.3)
    parser.add_argument(
        "--record-every",
        type=float,
        help="seconds between completion records, instead of the library's bound",
    )
    options = parser.parse_args()
    if options.record_every is not None:
        os.environ["CHAOS_RECORD_EVERY"] = str(options.record_every)
    names = options.scenarios or list(SCENARIOS)
    reports = []
    for name in names:
        report = soak(SCENARIOS[name], options.callbacks, options.kill_every)
        print(report.line(), flush=True)
        reports.append(report)
    from results import save

    save("chaos", {r.scenario: {**asdict(r), "per_kill": round(r.per_kill, 3)} for r in reports})
    return 1 if any(r.lost for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
