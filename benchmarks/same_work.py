"""The yardstick of the in-process benchmark: the extension's work, written by hand for the five
callback types the benchmark posts, as a careful engineer would write it without the extension.

For each item of a batch it does what the extension does, and nothing more:

* authenticates it: md5 of salt, account id, API key and callback id, compared in constant time;
* pins it: the SHA-256 of the item's canonical JSON (keys sorted, no white space, ASCII), ``hash``
  left out;
* claims its ``(account_id, callback_id)`` in a dict: a key seen with the same pin is a
  duplicate, with another pin a forgery (rejected, never dispatched); the claim is completed once
  the receivers return;
* builds a frozen dataclass with the item's common fields and its nested payload, with money as
  ``Decimal`` and dates as ``date``;
* sends one blinker signal;

and answers with a JSON summary of the batch. ``tests/test_same_work.py`` checks that it answers
duplicates, altered bodies and forged hashes as the extension does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Callable, Union

from blinker import Signal
from flask import Flask, request

from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY, DEFAULT_SALT

PATH = "/voximplant/callbacks"


@dataclass(frozen=True)
class MinBalance:
    is_min_credit: bool | None
    is_repeated: bool | None


@dataclass(frozen=True)
class SmsInbound:
    source_number: str | None
    destination_number: str | None
    sms_body: str | None


@dataclass(frozen=True)
class PhoneNumber:
    phone_id: int | None
    phone_number: str | None


@dataclass(frozen=True)
class SubscriptionDetails:
    type: str | None
    phone_numbers: tuple[PhoneNumber, ...]
    sip_registration_ids: tuple[int, ...]


@dataclass(frozen=True)
class Subscription:
    type: str | None
    name: str | None
    cost: Decimal | None
    next_renewal: date | None
    details: tuple[SubscriptionDetails, ...]


@dataclass(frozen=True)
class RenewedSubscriptions:
    subscriptions: tuple[Subscription, ...]


@dataclass(frozen=True)
class AccountIsFrozen:
    pass


@dataclass(frozen=True)
class CardPayment:
    transaction_id: int | None
    transaction_type: str | None
    amount: Decimal | None


Payload = Union[MinBalance, SmsInbound, RenewedSubscriptions, AccountIsFrozen, CardPayment]


@dataclass(frozen=True)
class Callback:
    account_id: int
    callback_id: int
    type: str
    account_name: str | None
    account_email: str | None
    language_code: str | None
    account_first_name: str | None
    account_last_name: str | None
    balance: Decimal | None
    currency: str | None
    payload: Payload


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _day(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _subscription(data: dict[str, Any]) -> Subscription:
    return Subscription(
        data.get("type"),
        data.get("name"),
        _money(data.get("cost")),
        _day(data.get("next_renewal")),
        tuple(
            SubscriptionDetails(
                detail.get("type"),
                tuple(
                    PhoneNumber(phone.get("phone_id"), phone.get("phone_number"))
                    for phone in detail.get("phone_numbers", ())
                ),
                tuple(
                    sip["sip_registration_id"] for sip in detail.get("sip_registrations", ())
                ),
            )
            for detail in data.get("details", ())
        ),
    )


PAYLOADS: dict[str, Callable[[dict[str, Any]], Payload]] = {
    "min_balance": lambda d: MinBalance(d.get("is_min_credit"), d.get("is_repeated")),
    "sms_inbound": lambda d: SmsInbound(
        d["sms_inbound"].get("source_number"),
        d["sms_inbound"].get("destination_number"),
        d["sms_inbound"].get("sms_body"),
    ),
    "renewed_subscriptions": lambda d: RenewedSubscriptions(
        tuple(_subscription(s) for s in d.get("subscriptions", ()))
    ),
    "account_is_frozen": lambda d: AccountIsFrozen(),
    "card_payment": lambda d: CardPayment(
        d.get("transaction_id"), d.get("transaction_type"), _money(d.get("amount"))
    ),
}

callback_received = Signal("callback received")


def _expected_hash(account_id: Any, callback_id: Any) -> str:
    text = f"{DEFAULT_SALT}{account_id}{DEFAULT_API_KEY}{callback_id}"
    return hashlib.md5(text.encode()).hexdigest()


def _pin(item: dict[str, Any]) -> str:
    body = {key: value for key, value in item.items() if key != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def create_app() -> Flask:
    app = Flask("same_work")
    #: (account_id, callback_id) -> [pin, done]
    claims: dict[tuple[int, int], list[Any]] = {}

    @app.post(PATH)
    def receive() -> dict[str, int]:
        summary = {"accepted": 0, "rejected": 0, "duplicates": 0}
        for item in json.loads(request.get_data())["callbacks"]:
            account_id, callback_id = item.get("account_id"), item.get("callback_id")
            expected = _expected_hash(account_id, callback_id)
            if account_id != DEFAULT_ACCOUNT_ID or not hmac.compare_digest(
                expected, str(item.get("hash", ""))
            ):
                summary["rejected"] += 1
                continue
            pin = _pin(item)
            key = (account_id, callback_id)
            claim = claims.get(key)
            if claim is not None:
                summary["duplicates" if claim[0] == pin else "rejected"] += 1
                continue
            claim = claims[key] = [pin, False]
            callback = Callback(
                account_id,
                callback_id,
                item["type"],
                item.get("account_name"),
                item.get("account_email"),
                item.get("language_code"),
                item.get("account_first_name"),
                item.get("account_last_name"),
                _money(item.get("balance")),
                item.get("currency"),
                PAYLOADS[item["type"]](item.get(item["type"]) or {}),
            )
            callback_received.send(app, callback=callback)
            claim[1] = True
            summary["accepted"] += 1
        return summary

    return app
