"""Blinker signals sent for received callbacks.

Every signal is sent with the Flask application as the sender. Per-type signals and
``callback_received`` carry ``callback=`` (a :class:`~flask_voxcallbacks.callbacks.Callback`).
Each per-type signal is named after its wire ``type``:
``min_balance_reached.name == "min_balance"``.

Unlike blinker's default, these signals hold their receivers strongly: a function connected
inside an application factory keeps receiving after the factory returns and the garbage
collector runs. Pass ``weak=True`` to ``connect`` for the weak reference blinker uses elsewhere.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from blinker import ANY, NamedSignal

__all__ = [
    "a2p_sms_activated",
    "account_activated",
    "account_document_status_updated",
    "account_document_uploaded",
    "account_document_verified",
    "account_frozen",
    "account_stagnant",
    "account_unfrozen",
    "agreement_expired",
    "agreement_expiring",
    "agreement_status_restored",
    "balance_changed",
    "batch_task_cancelled",
    "call_history_report_ready",
    "callback_duplicate",
    "callback_received",
    "callback_rejected",
    "callerids_expired",
    "callerids_expiring",
    "card_expired",
    "card_expiring",
    "card_payment_failed",
    "card_payment_received",
    "certificate_expired",
    "certificates_expired",
    "certificates_expiring",
    "invoice_issued",
    "invoice_received",
    "js_failed",
    "min_balance_reached",
    "next_charge_alert",
    "password_reset_requested",
    "phone_number_activation_status_changed",
    "plan_changed",
    "regulation_address_documents_requested",
    "regulation_address_uploaded",
    "regulation_address_verified",
    "robokassa_payment_received",
    "signal_for",
    "sip_registration_failed",
    "sip_registration_recovered",
    "sms_received",
    "subscription_detached",
    "subscription_frozen",
    "subscriptions_renewed",
    "tariff_uncharged",
    "transaction_history_report_ready",
    "transcription_completed",
    "unverified_subscription_detached",
    "wire_transfer_received",
]

F = TypeVar("F", bound=Callable[..., Any])


class VoxSignal(NamedSignal):
    """A named blinker signal whose ``connect`` holds the receiver strongly by default.

    A weakly held receiver vanishes once nothing else refers to it, and the callbacks meant for it
    would then be answered 200 and marked handled without any handler having run.
    """

    def connect(self, receiver: F, sender: Any = ANY, weak: bool = False) -> F:
        return super().connect(receiver, sender, weak)


_by_type: dict[str, NamedSignal] = {}


def _signal(name: str) -> VoxSignal:
    return VoxSignal(name)


def _for_type(type_name: str) -> NamedSignal:
    signal = _by_type[type_name] = _signal(type_name)
    return signal


#: Every authentic callback, known type or not. Keywords: ``callback``.
callback_received = _signal("callback_received")
#: Every inauthentic item. Keywords: ``callback`` (a ``RejectedItem``), ``reason``.
callback_rejected = _signal("callback_rejected")
#: An authentic callback already handled before; not dispatched again. Keywords: ``callback``,
#: as received this time: the hash does not cover the body, so do not trust its payload.
callback_duplicate = _signal("callback_duplicate")

# One signal per known type. Keywords: ``callback``.
#: ``a2p_sms_activated``
a2p_sms_activated = _for_type("a2p_sms_activated")
#: ``account_document_status_updated``
account_document_status_updated = _for_type("account_document_status_updated")
#: ``account_document_uploaded`` (deprecated type)
account_document_uploaded = _for_type("account_document_uploaded")
#: ``account_document_verified`` (deprecated type)
account_document_verified = _for_type("account_document_verified")
#: ``account_is_frozen``
account_frozen = _for_type("account_is_frozen")
#: ``account_is_unfrozen``
account_unfrozen = _for_type("account_is_unfrozen")
#: ``activate_successful``
account_activated = _for_type("activate_successful")
#: ``batch_task_cancelling_completed``
batch_task_cancelled = _for_type("batch_task_cancelling_completed")
#: ``call_history_report``
call_history_report_ready = _for_type("call_history_report")
#: ``card_expired``
card_expired = _for_type("card_expired")
#: ``card_expires_in_month``
card_expiring = _for_type("card_expires_in_month")
#: ``card_payment``
card_payment_received = _for_type("card_payment")
#: ``card_payment_failed``
card_payment_failed = _for_type("card_payment_failed")
#: ``certificate_expired`` (deprecated type)
certificate_expired = _for_type("certificate_expired")
#: ``expired_agreement``
agreement_expired = _for_type("expired_agreement")
#: ``expired_certificates``
certificates_expired = _for_type("expired_certificates")
#: ``expiring_agreement``
agreement_expiring = _for_type("expiring_agreement")
#: ``expiring_certificates``
certificates_expiring = _for_type("expiring_certificates")
#: ``expiring_callerid``
callerids_expiring = _for_type("expiring_callerid")
#: ``invoice_received``
invoice_received = _for_type("invoice_received")
#: ``js_fail``
js_failed = _for_type("js_fail")
#: ``min_balance``
min_balance_reached = _for_type("min_balance")
#: ``next_charge_alert``
next_charge_alert = _for_type("next_charge_alert")
#: ``phone_number_activation_status_changed``
phone_number_activation_status_changed = _for_type("phone_number_activation_status_changed")
#: ``regulation_address_documents_requested``
regulation_address_documents_requested = _for_type("regulation_address_documents_requested")
#: ``regulation_address_uploaded``
regulation_address_uploaded = _for_type("regulation_address_uploaded")
#: ``regulation_address_verified``
regulation_address_verified = _for_type("regulation_address_verified")
#: ``renewed_subscriptions``
subscriptions_renewed = _for_type("renewed_subscriptions")
#: ``reset_account_password_request``
password_reset_requested = _for_type("reset_account_password_request")
#: ``robokassa_payment``
robokassa_payment_received = _for_type("robokassa_payment")
#: ``sip_registration_fail``
sip_registration_failed = _for_type("sip_registration_fail")
#: ``sip_registration_recovered``
sip_registration_recovered = _for_type("sip_registration_recovered")
#: ``sms_inbound``
sms_received = _for_type("sms_inbound")
#: ``subscription_is_detached``
subscription_detached = _for_type("subscription_is_detached")
#: ``subscription_is_frozen``
subscription_frozen = _for_type("subscription_is_frozen")
#: ``transaction_history_report``
transaction_history_report_ready = _for_type("transaction_history_report")
#: ``transcription_complete``
transcription_completed = _for_type("transcription_complete")
#: ``unverified_subscription_detached``
unverified_subscription_detached = _for_type("unverified_subscription_detached")
#: ``wire_transfer``
wire_transfer_received = _for_type("wire_transfer")
#: ``restored_agreement_status``
agreement_status_restored = _for_type("restored_agreement_status")
#: ``stagnant_account`` (legacy type)
account_stagnant = _for_type("stagnant_account")
#: ``plan_config`` (legacy type)
plan_changed = _for_type("plan_config")
#: ``new_invoice`` (legacy type)
invoice_issued = _for_type("new_invoice")
#: ``balance_is_changed`` (legacy type)
balance_changed = _for_type("balance_is_changed")
#: ``expired_callerid`` (legacy type)
callerids_expired = _for_type("expired_callerid")
#: ``uncharged_tariff`` (legacy type)
tariff_uncharged = _for_type("uncharged_tariff")


def signal_for(type_name: str) -> NamedSignal:
    """The signal of a wire type, e.g. ``signal_for("sms_inbound") is sms_received``.

    Raises ``KeyError`` naming the type when it is not one of the known types; unknown types are
    delivered through ``callback_received`` only.
    """
    try:
        return _by_type[type_name]
    except KeyError:
        raise KeyError(f"no signal for unknown callback type {type_name!r}") from None


def type_signals() -> dict[str, NamedSignal]:
    """Every per-type signal by wire type."""
    return dict(_by_type)


def signal_names() -> dict[str, str]:
    """The exported name of each per-type signal, by wire type."""
    return {
        signal.name: name
        for name, signal in globals().items()
        if isinstance(signal, NamedSignal) and signal.name in _by_type
    }
