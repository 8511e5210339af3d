"""A short chaos soak (``make chaos`` runs the long one): callbacks posted as Voximplant posts
them, redelivered until answered 200, while gunicorn workers are SIGKILLed; none may be lost."""

from __future__ import annotations

import sys

import pytest
from servers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

from chaos import BATCH, SCENARIOS, SENDERS, soak


@pytest.mark.subprocess
@pytest.mark.parametrize("name", ["sqlite", "redis", "postgres"])
def test_a_short_soak_with_workers_killed_loses_nothing(name: str) -> None:
    report = soak(SCENARIOS[name], callbacks=1000, kill_every=0.3, seconds=120)
    assert report.sent == 1000
    assert report.kills >= 3, report.line()
    assert report.lost == 0, report.line()
    # Each kill runs again at most the callbacks of its last few milliseconds; a crash of the
    # store's server, which forgets its last second or so of claims and completions, at most
    # those of the batches then in flight, which the sender posts again.
    in_flight = SENDERS * BATCH
    assert report.handled_twice <= report.kills + report.store_restarts * in_flight, report.line()
