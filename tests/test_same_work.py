"""The hand-written route the in-process benchmark compares the extension with
(benchmarks/same_work.py) answers as the extension does, and builds the same values."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from servers import ROOT

from flask_voxcallbacks import callback_received
from flask_voxcallbacks.testing import make_batch, make_callback

sys.path.insert(0, str(ROOT / "benchmarks"))
import same_work
from apps import extension

sys.path.pop(0)

TYPES = ["min_balance", "sms_inbound", "renewed_subscriptions", "account_is_frozen", "card_payment"]


def summary(app: Any, *items: dict[str, Any]) -> dict[str, int]:
    answer = app.test_client().post(same_work.PATH, json=make_batch(*items)).get_json()
    return {key: answer[key] for key in ("accepted", "rejected", "duplicates")}


@pytest.mark.parametrize("type_name", TYPES)
def test_it_answers_as_the_extension_does(type_name: str) -> None:
    hand, ext = same_work.create_app(), extension()
    item = make_callback(type_name)
    altered = {**make_callback(type_name, callback_id=item["callback_id"]), "currency": "EUR"}
    forged = {**make_callback(type_name), "hash": "0" * 32}
    for app in (hand, ext):
        assert summary(app, item) == {"accepted": 1, "rejected": 0, "duplicates": 0}
        assert summary(app, item) == {"accepted": 0, "rejected": 0, "duplicates": 1}
        assert summary(app, altered) == {"accepted": 0, "rejected": 1, "duplicates": 0}
        assert summary(app, forged) == {"accepted": 0, "rejected": 1, "duplicates": 0}


def test_it_builds_the_values_the_extension_builds() -> None:
    hand, ext = same_work.create_app(), extension()
    items = [make_callback(type_name) for type_name in TYPES]
    built: list[Any] = []
    seen: list[Any] = []
    with same_work.callback_received.connected_to(
        lambda sender, callback: built.append(callback), hand
    ), callback_received.connected_to(lambda sender, callback: seen.append(callback), ext):
        assert summary(hand, *items)["accepted"] == 5
        assert summary(ext, *items)["accepted"] == 5
    common = [field for field in same_work.Callback.__dataclass_fields__ if field != "payload"]
    assert len(common) == 10
    for mine, theirs in zip(built, seen):
        for field in common:
            assert getattr(mine, field) == getattr(theirs, field), field
    card = built[4].payload
    assert (card.amount, card.transaction_id) == (seen[4].payload.amount, 880011)
    renewed = built[2].payload.subscriptions[0]
    theirs = seen[2].payload.subscriptions[0]
    assert (renewed.cost, renewed.next_renewal) == (theirs.cost, theirs.next_renewal)
