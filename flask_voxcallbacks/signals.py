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

from typing import Any, Callable, Generic, Protocol, TypeVar

from blinker import ANY, NamedSignal
from flask import Flask

from .callbacks import Callback
from .payloads import (
    A2PSmsActivated,
    AccountDocumentStatusUpdated,
    AccountDocumentUploaded,
    AccountDocumentVerified,
    AccountIsFrozen,
    AccountIsUnfrozen,
    ActivateSuccessful,
    BalanceIsChanged,
    BatchTaskCancellingCompleted,
    CallHistoryReport,
    CardExpired,
    CardExpiresInMonth,
    CardPayment,
    CardPaymentFailed,
    CertificateExpired,
    ClassificationComplete,
    ExpiredAgreement,
    ExpiredCallerId,
    ExpiredCertificates,
    ExpiringAgreement,
    ExpiringCallerId,
    ExpiringCertificates,
    InvoiceReceived,
    JsFail,
    MinBalance,
    NewInvoice,
    NextChargeAlert,
    Payload,
    PhoneNumberActivationStatusChanged,
    PlanConfig,
    RegulationAddressDocumentsRequested,
    RegulationAddressUploaded,
    RegulationAddressVerified,
    RenewedSubscriptions,
    ResetAccountPasswordRequest,
    RestoredAgreementStatus,
    RobokassaPayment,
    SipRegistrationFail,
    SipRegistrationRecovered,
    SmsInbound,
    StagnantAccount,
    SubscriptionIsDetached,
    SubscriptionIsFrozen,
    TransactionHistoryReport,
    TranscriptionComplete,
    UnchargedTariff,
    UnverifiedSubscriptionDetached,
    WireTransfer,
)

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
    "classification_completed",
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
P = TypeVar("P", bound=Payload)
P_contra = TypeVar("P_contra", bound=Payload, contravariant=True)


class VoxSignal(NamedSignal):
    """A named blinker signal whose ``connect`` holds the receiver strongly by default.

    A weakly held receiver vanishes once nothing else refers to it, and the callbacks meant for it
    would then be answered 200 and marked handled without any handler having run.
    """

    def connect(self, receiver: F, sender: Any = ANY, weak: bool = False) -> F:
        return super().connect(receiver, sender, weak)


class Receiver(Protocol[P_contra]):
    """What a receiver of a callback signal is: ``(sender, *, callback, **extra)``.

    ``def on_low_balance(sender: Flask, callback: Callback[MinBalance], **extra: Any) -> None``
    is a ``Receiver[MinBalance]``. It may be a coroutine function.
    """

    def __call__(self, sender: Flask, /, *, callback: Callback[P_contra]) -> Any: ...


class CallbackSignal(VoxSignal, Generic[P]):
    """A signal that sends ``callback=`` a ``Callback[P]``; its ``connect`` and ``connect_via``
    accept only receivers of that payload class (or of a base class, such as ``Payload``)."""

    def connect(  # type: ignore[override]
        self, receiver: Receiver[P], sender: Any = ANY, weak: bool = False
    ) -> Receiver[P]:
        return super().connect(receiver, sender, weak)

    def connect_via(  # type: ignore[override]
        self, sender: Any, weak: bool = False
    ) -> Callable[[Receiver[P]], Receiver[P]]:
        return super().connect_via(sender, weak)


_by_type: dict[str, CallbackSignal[Payload]] = {}


def _signal(name: str) -> VoxSignal:
    return VoxSignal(name)


def _for_type(payload: type[P]) -> CallbackSignal[P]:
    signal: CallbackSignal[P] = CallbackSignal(payload.wire_type)
    _by_type[payload.wire_type] = signal  # type: ignore[assignment]
    return signal


#: Every authentic callback, known type or not. Keywords: ``callback``.
callback_received: CallbackSignal[Payload] = CallbackSignal("callback_received")
#: Every inauthentic item. Keywords: ``callback`` (a ``RejectedCallback``), ``reason``.
callback_rejected = _signal("callback_rejected")
#: An authentic callback already handled before; not dispatched again. Keywords: ``callback``,
#: as received this time: the hash does not cover the body, so do not trust its payload.
callback_duplicate: CallbackSignal[Payload] = CallbackSignal("callback_duplicate")

# One signal per known type, typed by its payload class. Keywords: ``callback``.
#: ``a2p_sms_activated``
a2p_sms_activated = _for_type(A2PSmsActivated)
#: ``account_document_status_updated``
account_document_status_updated = _for_type(AccountDocumentStatusUpdated)
#: ``account_document_uploaded`` (deprecated type)
account_document_uploaded = _for_type(AccountDocumentUploaded)
#: ``account_document_verified`` (deprecated type)
account_document_verified = _for_type(AccountDocumentVerified)
#: ``account_is_frozen``
account_frozen = _for_type(AccountIsFrozen)
#: ``account_is_unfrozen``
account_unfrozen = _for_type(AccountIsUnfrozen)
#: ``activate_successful``
account_activated = _for_type(ActivateSuccessful)
#: ``batch_task_cancelling_completed``
batch_task_cancelled = _for_type(BatchTaskCancellingCompleted)
#: ``call_history_report``
call_history_report_ready = _for_type(CallHistoryReport)
#: ``card_expired``
card_expired = _for_type(CardExpired)
#: ``card_expires_in_month``
card_expiring = _for_type(CardExpiresInMonth)
#: ``card_payment``
card_payment_received = _for_type(CardPayment)
#: ``card_payment_failed``
card_payment_failed = _for_type(CardPaymentFailed)
#: ``certificate_expired`` (deprecated type)
certificate_expired = _for_type(CertificateExpired)
#: ``expired_agreement``
agreement_expired = _for_type(ExpiredAgreement)
#: ``expired_certificates``
certificates_expired = _for_type(ExpiredCertificates)
#: ``expiring_agreement``
agreement_expiring = _for_type(ExpiringAgreement)
#: ``expiring_certificates``
certificates_expiring = _for_type(ExpiringCertificates)
#: ``expiring_callerid``
callerids_expiring = _for_type(ExpiringCallerId)
#: ``invoice_received``
invoice_received = _for_type(InvoiceReceived)
#: ``js_fail``
js_failed = _for_type(JsFail)
#: ``min_balance``
min_balance_reached = _for_type(MinBalance)
#: ``next_charge_alert``
next_charge_alert = _for_type(NextChargeAlert)
#: ``phone_number_activation_status_changed``
phone_number_activation_status_changed = _for_type(PhoneNumberActivationStatusChanged)
#: ``regulation_address_documents_requested``
regulation_address_documents_requested = _for_type(RegulationAddressDocumentsRequested)
#: ``regulation_address_uploaded``
regulation_address_uploaded = _for_type(RegulationAddressUploaded)
#: ``regulation_address_verified``
regulation_address_verified = _for_type(RegulationAddressVerified)
#: ``renewed_subscriptions``
subscriptions_renewed = _for_type(RenewedSubscriptions)
#: ``reset_account_password_request``
password_reset_requested = _for_type(ResetAccountPasswordRequest)
#: ``robokassa_payment``
robokassa_payment_received = _for_type(RobokassaPayment)
#: ``sip_registration_fail``
sip_registration_failed = _for_type(SipRegistrationFail)
#: ``sip_registration_recovered``
sip_registration_recovered = _for_type(SipRegistrationRecovered)
#: ``sms_inbound``
sms_received = _for_type(SmsInbound)
#: ``subscription_is_detached``
subscription_detached = _for_type(SubscriptionIsDetached)
#: ``subscription_is_frozen``
subscription_frozen = _for_type(SubscriptionIsFrozen)
#: ``transaction_history_report``
transaction_history_report_ready = _for_type(TransactionHistoryReport)
#: ``transcription_complete``
transcription_completed = _for_type(TranscriptionComplete)
#: ``unverified_subscription_detached``
unverified_subscription_detached = _for_type(UnverifiedSubscriptionDetached)
#: ``wire_transfer``
wire_transfer_received = _for_type(WireTransfer)
#: ``restored_agreement_status``
agreement_status_restored = _for_type(RestoredAgreementStatus)
#: ``stagnant_account`` (legacy type)
account_stagnant = _for_type(StagnantAccount)
#: ``plan_config`` (legacy type)
plan_changed = _for_type(PlanConfig)
#: ``new_invoice`` (legacy type)
invoice_issued = _for_type(NewInvoice)
#: ``balance_is_changed`` (legacy type)
balance_changed = _for_type(BalanceIsChanged)
#: ``expired_callerid`` (legacy type)
callerids_expired = _for_type(ExpiredCallerId)
#: ``uncharged_tariff`` (legacy type)
tariff_uncharged = _for_type(UnchargedTariff)
#: ``classification_complete`` (legacy type)
classification_completed = _for_type(ClassificationComplete)


def signal_for(type_name: str) -> CallbackSignal[Payload]:
    """The signal of a wire type, e.g. ``signal_for("sms_inbound") is sms_received``.

    Raises ``KeyError`` naming the type when it is not one of the known types; unknown types are
    delivered through ``callback_received`` only.
    """
    try:
        return _by_type[type_name]
    except KeyError:
        raise KeyError(f"no signal for unknown callback type {type_name!r}") from None


def type_signals() -> dict[str, CallbackSignal[Payload]]:
    """Every per-type signal by wire type."""
    return dict(_by_type)


def signal_names() -> dict[str, str]:
    """The exported name of each per-type signal, by wire type."""
    return {
        signal.name: name
        for name, signal in globals().items()
        if isinstance(signal, NamedSignal) and signal.name in _by_type
    }
