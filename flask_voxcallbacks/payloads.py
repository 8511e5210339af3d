"""The 47 known Voximplant callback types (the 46 of today's reference and the legacy
``classification_complete``), each declared once, with its signal.

Each payload class is registered under its wire ``type`` with :func:`callback_type`, and its
signal follows it (``min_balance_reached = type_signal(MinBalance)``). Its fields carry the wire
names, so ``callback.payload.is_min_credit`` reads as the protocol does. The registry
``CALLBACK_TYPES`` drives parsing, the signals table in the docs, the CLI's ``types`` and the
samples of the test kit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Mapping

from .fields import (
    Record,
    boolean,
    date_field,
    identifier,
    integer,
    integer_list,
    items,
    money,
    text,
    text_list,
    timestamp,
)
from .registry import (
    CALLBACK_TYPES,
    DEPRECATED,
    LEGACY,
    Payload,
    UnknownPayload,
    callback_type,
)
from .signals import CallbackSignal, type_signal

__all__ = [
    "CALLBACK_TYPES",
    "A2PSmsActivated",
    "AccountDocumentStatusUpdated",
    "AccountDocumentUploaded",
    "AccountDocumentVerified",
    "AccountIsFrozen",
    "AccountIsUnfrozen",
    "ActivateSuccessful",
    "BalanceIsChanged",
    "BatchTaskCancellingCompleted",
    "CallHistoryReport",
    "CardExpired",
    "CardExpiresInMonth",
    "CardPayment",
    "CardPaymentFailed",
    "CertificateExpired",
    "ClassificationComplete",
    "ExpiredAgreement",
    "ExpiredCallerId",
    "ExpiredCertificates",
    "ExpiringAgreement",
    "ExpiringCallerId",
    "ExpiringCertificates",
    "InvoiceReceived",
    "JsFail",
    "MinBalance",
    "NewInvoice",
    "NextChargeAlert",
    "Payload",
    "PhoneNumberActivationStatusChanged",
    "PlanConfig",
    "RegulationAddressDocumentsRequested",
    "RegulationAddressUploaded",
    "RegulationAddressVerified",
    "RenewedSubscriptions",
    "ResetAccountPasswordRequest",
    "RestoredAgreementStatus",
    "RobokassaPayment",
    "SipRegistrationFail",
    "SipRegistrationRecovered",
    "SmsInbound",
    "StagnantAccount",
    "SubscriptionIsDetached",
    "SubscriptionIsFrozen",
    "TransactionHistoryReport",
    "TranscriptionComplete",
    "UnchargedTariff",
    "UnknownPayload",
    "UnverifiedSubscriptionDetached",
    "WireTransfer",
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
    "signal_names",
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

DOCUMENT_STATUSES = (
    "AWAITING_DOCUMENTS_UPLOADING",
    "AWAITING_AGREEMENT_UPLOADING",
    "AWAITING_VERIFICATION",
    "WAITING_FOR_CONFIRMATION_DOCUMENTS",
    "VERIFIED",
    "REJECTED",
    "WAITING_PERIOD_EXPIRED",
    "WAITING_CONFIRMATION_DOCS",
)
LEGAL_STATUSES = (
    "LEGAL_ENTITY",
    "INDIVIDUAL",
    "ENTREPRENEUR",
    "individual",
    "entrepreneur",
    "legal entity",
)
ADDRESS_STATUSES = ("VERIFIED", "DECLINED", "IN_PROGRESS", "PENDING")


# Nested items --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneNumberRef(Record):
    """A phone number in a subscription's details."""

    phone_id: int | None = integer("Phone number id", 55501)
    phone_number: str | None = text("The number", "12025550143")


@dataclass(frozen=True)
class SipRegistrationRef(Record):
    """A SIP registration referred to by id."""

    sip_registration_id: int | None = integer("SIP registration id", 7001)


@dataclass(frozen=True)
class SubscriptionDetails(Record):
    """What a subscription covers (SubscriptionCallbackDetails)."""

    type: str | None = text("What is covered", choices=("PHONE", "SIP_REGISTRATION"))
    phone_numbers: tuple[PhoneNumberRef, ...] | None = items(
        PhoneNumberRef, "Phone numbers (when type is PHONE)"
    )
    sip_registrations: tuple[SipRegistrationRef, ...] | None = items(
        SipRegistrationRef, "SIP registrations (when type is SIP_REGISTRATION)"
    )


@dataclass(frozen=True)
class Subscription(Record):
    """A subscription named in a subscription callback."""

    type: str | None = text("Subscription kind", choices=("PHONE_NUM", "SIP_REGISTRATION", "PLAN"))
    name: str | None = text("Subscription name, e.g. the phone number", "12025550143")
    cost: Decimal | None = money("Cost in the account currency", 1.0)
    next_renewal: date | None = date_field("Next renewal date")
    details: tuple[SubscriptionDetails, ...] | None = items(SubscriptionDetails, "What it covers")


@dataclass(frozen=True)
class SipRegistrationFailure(Record):
    """A SIP registration that failed."""

    sip_registration_id: int | None = integer("SIP registration id", 7001)
    status_code: str | None = text("SIP status code, as a string", "403")
    error_message: str | None = text("Error text", "Forbidden")


@dataclass(frozen=True)
class CertificateInfo(Record):
    """An Apple VoIP push certificate (CertificateInfoType)."""

    push_credential_id: int | None = integer("Push credential id", 42)
    cert_file_name: str | None = text("Certificate file name", "voip.p12")
    expiration_date: date | None = date_field("Expiration date")
    applications: tuple[str, ...] | None = text_list("Application names", ("com.example.app",))


@dataclass(frozen=True)
class PlanPackage(Record):
    """A package of a plan."""

    price_group_id: tuple[int, ...] | None = integer_list("Price group ids", (11, 12))
    package_name: str | None = text("Package name", "Starter")
    package_uuid: str | None = text("Package UUID", "3f1c2d4e-0000-4000-8000-000000000001")
    may_overrun: bool | None = boolean("Whether usage may overrun the package")
    package_size: int | None = integer("Package size", 1000)


@dataclass(frozen=True)
class InvoiceUnit(Record):
    """A line of a legacy invoice."""

    description: str | None = text("Line description", "Phone number rental")
    amount: Decimal | None = money("Line amount", 10.0)
    vat_rate: Decimal | None = money("VAT rate between 0 and 1", 0.2)
    tax_amount: Decimal | None = money("Tax amount", 2.0)


# Current and deprecated types -----------------------------------------------------------------


@callback_type("a2p_sms_activated")
@dataclass(frozen=True)
class A2PSmsActivated(Payload):
    """One-way (A2P) SMS was enabled or disabled."""

    a2p_enabled: bool | None = boolean("Whether A2P SMS is now allowed", True)


a2p_sms_activated = type_signal(A2PSmsActivated)


@callback_type("account_document_status_updated")
@dataclass(frozen=True)
class AccountDocumentStatusUpdated(Payload):
    """The verification status of an uploaded document changed."""

    account_document_id: int | None = integer("Uploaded document id", 31337)
    previous_account_document_status: str | None = text(
        "Status before the change", choices=DOCUMENT_STATUSES[2:]
    )
    account_document_status: str | None = text("New status", choices=DOCUMENT_STATUSES[4:])
    update_time: datetime | None = timestamp("When the status changed (UTC)")
    comment: str | None = text("Reviewer note", "")
    legal_status: str | None = text("Person type", choices=LEGAL_STATUSES)


account_document_status_updated = type_signal(AccountDocumentStatusUpdated)


@callback_type("account_document_uploaded", DEPRECATED)
@dataclass(frozen=True)
class AccountDocumentUploaded(Payload):
    """A verification document was uploaded (deprecated: see account_document_status_updated)."""

    account_document_id: int | None = integer("Uploaded document id", 31337)
    uploaded: datetime | None = timestamp("Upload time (UTC)")
    verification_name: str | None = text("Verification type name", "Passport")
    legal_status: str | None = text("Person type", choices=LEGAL_STATUSES[3:])
    is_individual: bool | None = boolean("The account owner is a person (Java client)")


account_document_uploaded = type_signal(AccountDocumentUploaded)


@callback_type("account_document_verified", DEPRECATED)
@dataclass(frozen=True)
class AccountDocumentVerified(Payload):
    """A verification document was reviewed (deprecated: see account_document_status_updated)."""

    account_document_id: int | None = integer("Uploaded document id", 31337)
    account_document_status: str | None = text("New status", choices=DOCUMENT_STATUSES[4:])
    uploaded: datetime | None = timestamp("Upload time (UTC)")
    comment: str | None = text("Reviewer note", "")
    verification_name: str | None = text("Verification type name", "Passport")
    legal_status: str | None = text("Person type", choices=LEGAL_STATUSES[3:])
    is_individual: bool | None = boolean("The account owner is a person (Java client)")


account_document_verified = type_signal(AccountDocumentVerified)


@callback_type("account_is_frozen")
@dataclass(frozen=True)
class AccountIsFrozen(Payload):
    """The account was frozen."""


account_frozen = type_signal(AccountIsFrozen)


@callback_type("account_is_unfrozen")
@dataclass(frozen=True)
class AccountIsUnfrozen(Payload):
    """The account was unfrozen."""


account_unfrozen = type_signal(AccountIsUnfrozen)


@callback_type("activate_successful")
@dataclass(frozen=True)
class ActivateSuccessful(Payload):
    """A new (non-child) account was activated."""


account_activated = type_signal(ActivateSuccessful)


@callback_type("batch_task_cancelling_completed")
@dataclass(frozen=True)
class BatchTaskCancellingCompleted(Payload):
    """Cancelling a batch of tasks finished."""

    batch_id: int | str | None = identifier("Id of the cancelled batch (number or UUID string)")
    cancelled_tasks_number: int | None = integer("How many tasks were cancelled", 12)


batch_task_cancelled = type_signal(BatchTaskCancellingCompleted)


@callback_type("call_history_report")
@dataclass(frozen=True)
class CallHistoryReport(Payload):
    """A requested call history report is ready (or failed)."""

    history_report_id: int | None = integer("Report id", 4242)
    success: bool | None = boolean("Whether the report was built", True)
    order_date: datetime | None = timestamp("When the report was ordered (UTC)")


call_history_report_ready = type_signal(CallHistoryReport)


@callback_type("card_expired")
@dataclass(frozen=True)
class CardExpired(Payload):
    """The saved bank card expired."""


card_expired = type_signal(CardExpired)


@callback_type("card_expires_in_month")
@dataclass(frozen=True)
class CardExpiresInMonth(Payload):
    """The saved bank card expires within a month."""


card_expiring = type_signal(CardExpiresInMonth)


@callback_type("card_payment")
@dataclass(frozen=True)
class CardPayment(Payload):
    """A card payment was received."""

    transaction_id: int | None = integer("Transaction id", 880011)
    transaction_type: str | None = text("Transaction type", "card_payment")
    amount: Decimal | None = money("Amount in the account currency", 50.0)


card_payment_received = type_signal(CardPayment)


@callback_type("card_payment_failed")
@dataclass(frozen=True)
class CardPaymentFailed(Payload):
    """A card payment failed."""


card_payment_failed = type_signal(CardPaymentFailed)


@callback_type("certificate_expired", DEPRECATED)
@dataclass(frozen=True)
class CertificateExpired(Payload):
    """A push certificate expired (deprecated: see expired_certificates)."""


certificate_expired = type_signal(CertificateExpired)


@callback_type("expired_agreement")
@dataclass(frozen=True)
class ExpiredAgreement(Payload):
    """The confirmation-document waiting period of agreements ended."""

    document_ids: tuple[int, ...] | None = integer_list("Agreement document ids", (5001, 5002))


agreement_expired = type_signal(ExpiredAgreement)


@callback_type("expired_certificates")
@dataclass(frozen=True)
class ExpiredCertificates(Payload):
    """Apple VoIP push certificates expired."""

    certificates: tuple[CertificateInfo, ...] | None = items(
        CertificateInfo, "Expired certificates"
    )


certificates_expired = type_signal(ExpiredCertificates)


@callback_type("expiring_agreement")
@dataclass(frozen=True)
class ExpiringAgreement(Payload):
    """An agreement expires soon (sent 20, 15, 10, 5 and 1 days before)."""

    expiration_date: date | None = date_field("Expiration date")
    until_expiration: int | None = integer("Days left", 10)


agreement_expiring = type_signal(ExpiringAgreement)


@callback_type("expiring_certificates")
@dataclass(frozen=True)
class ExpiringCertificates(Payload):
    """Apple VoIP push certificates expire within 14 days."""

    certificates: tuple[CertificateInfo, ...] | None = items(
        CertificateInfo, "Certificates about to expire"
    )


certificates_expiring = type_signal(ExpiringCertificates)


@callback_type("expiring_callerid")
@dataclass(frozen=True)
class ExpiringCallerId(Payload):
    """Caller IDs are about to expire."""

    callerids: tuple[str, ...] | None = text_list("Caller IDs", ("12025550143",))
    expiration_date: date | None = date_field("Expiration date")


callerids_expiring = type_signal(ExpiringCallerId)


@callback_type("invoice_received")
@dataclass(frozen=True)
class InvoiceReceived(Payload):
    """An invoice was issued."""

    invoice_id: int | None = integer("Invoice id", 9001)
    invoice_date: datetime | None = timestamp("When the invoice was created (UTC)")
    receival_date: datetime | None = timestamp("When it was received (UTC)")
    amount: Decimal | None = money("Net amount (a string on the wire)", "100.00")
    tax_amount: Decimal | None = money("Tax amount (a string on the wire)", "20.00")
    currency: str | None = text("Currency code", "USD")


invoice_received = type_signal(InvoiceReceived)


@callback_type("js_fail")
@dataclass(frozen=True)
class JsFail(Payload):
    """A VoxEngine scenario raised a JavaScript error (with send_js_error enabled)."""


js_failed = type_signal(JsFail)


@callback_type("min_balance")
@dataclass(frozen=True)
class MinBalance(Payload):
    """The balance fell below the notification threshold."""

    is_min_credit: bool | None = boolean("The credit threshold was crossed")
    is_repeated: bool | None = boolean("This is a repeated notification")


min_balance_reached = type_signal(MinBalance)


@callback_type("next_charge_alert")
@dataclass(frozen=True)
class NextChargeAlert(Payload):
    """Funds are short for the plans renewing on the 1st (sent 3 days before)."""

    required_money: Decimal | None = money("Price of all plans renewing", 25.0)
    insufficient_funds_amount: Decimal | None = money("Money still needed", 20.5)


next_charge_alert = type_signal(NextChargeAlert)


@callback_type("phone_number_activation_status_changed", nested=True)
@dataclass(frozen=True)
class PhoneNumberActivationStatusChanged(Payload):
    """The activation status of a phone number changed."""

    phone_number: str | None = text("The number", "12025550143")
    activation_status: str | None = text("New activation status", "ACTIVE")


phone_number_activation_status_changed = type_signal(PhoneNumberActivationStatusChanged)


@callback_type("regulation_address_documents_requested")
@dataclass(frozen=True)
class RegulationAddressDocumentsRequested(Payload):
    """Documents are requested for a proof of address (its status became PENDING)."""

    regulation_address_id: int | None = integer("Address id", 6001)
    regulation_address_name: str | None = text("Address name", "Main office")
    regulation_address_status: str | None = text("Address status", choices=ADDRESS_STATUSES[3:])
    update_time: datetime | None = timestamp("When the status changed (UTC)")
    is_individual: bool | None = boolean("Whether the owner is an individual")
    comment: str | None = text("Reviewer note", "")


regulation_address_documents_requested = type_signal(RegulationAddressDocumentsRequested)


@callback_type("regulation_address_uploaded")
@dataclass(frozen=True)
class RegulationAddressUploaded(Payload):
    """A proof of address was uploaded."""

    regulation_address_id: int | None = integer("Address id", 6001)
    uploaded: datetime | None = timestamp("Upload time (UTC)")
    is_individual: bool | None = boolean("Whether the owner is an individual")
    regulation_address_name: str | None = text("Address name", "Main office")


regulation_address_uploaded = type_signal(RegulationAddressUploaded)


@callback_type("regulation_address_verified")
@dataclass(frozen=True)
class RegulationAddressVerified(Payload):
    """A proof of address was verified or declined."""

    regulation_address_id: int | None = integer("Address id", 6001)
    regulation_address_status: str | None = text("Address status", choices=ADDRESS_STATUSES[:2])
    uploaded: datetime | None = timestamp("Upload time (UTC)")
    is_individual: bool | None = boolean("Whether the owner is an individual")
    comment: str | None = text("Reviewer note", "")
    regulation_address_name: str | None = text("Address name", "Main office")


regulation_address_verified = type_signal(RegulationAddressVerified)


@callback_type("renewed_subscriptions")
@dataclass(frozen=True)
class RenewedSubscriptions(Payload):
    """Subscriptions were renewed."""

    subscriptions: tuple[Subscription, ...] | None = items(Subscription, "Renewed subscriptions")


subscriptions_renewed = type_signal(RenewedSubscriptions)


@callback_type("reset_account_password_request")
@dataclass(frozen=True)
class ResetAccountPasswordRequest(Payload):
    """A password reset was requested for the account."""


password_reset_requested = type_signal(ResetAccountPasswordRequest)


@callback_type("robokassa_payment")
@dataclass(frozen=True)
class RobokassaPayment(Payload):
    """A Robokassa payment was received."""

    transaction_id: int | None = integer("Transaction id", 880012)
    transaction_type: str | None = text("Transaction type", "robokassa_payment")
    amount: Decimal | None = money("Amount in the account currency", 50.0)


robokassa_payment_received = type_signal(RobokassaPayment)


def _single_sip_registration(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Clients up to 2020 described one ``sip_registration_id`` instead of a list."""
    if "sip_registrations" in data or "sip_registration_id" not in data:
        return data
    failure = {
        k: v
        for k, v in data.items()
        if k in ("sip_registration_id", "status_code", "error_message")
    }
    return {"sip_registrations": [failure]}


@callback_type("sip_registration_fail", older_shape=_single_sip_registration)
@dataclass(frozen=True)
class SipRegistrationFail(Payload):
    """SIP registrations failed."""

    sip_registrations: tuple[SipRegistrationFailure, ...] | None = items(
        SipRegistrationFailure, "Failed registrations"
    )


sip_registration_failed = type_signal(SipRegistrationFail)


@callback_type("sip_registration_recovered")
@dataclass(frozen=True)
class SipRegistrationRecovered(Payload):
    """Failed SIP registrations recovered."""

    sip_registrations: tuple[SipRegistrationRef, ...] | None = items(
        SipRegistrationRef, "Recovered registrations"
    )


sip_registration_recovered = type_signal(SipRegistrationRecovered)


@callback_type("sms_inbound", nested=True)
@dataclass(frozen=True)
class SmsInbound(Payload):
    """An SMS arrived at one of the account's numbers."""

    source_number: str | None = text("Sender number", "447700900123")
    destination_number: str | None = text("Receiving number", "12025550143")
    sms_body: str | None = text("Message text", "Hello")


sms_received = type_signal(SmsInbound)


@callback_type("subscription_is_detached")
@dataclass(frozen=True)
class SubscriptionIsDetached(Payload):
    """Subscriptions were cancelled."""

    subscriptions: tuple[Subscription, ...] | None = items(Subscription, "Cancelled subscriptions")


subscription_detached = type_signal(SubscriptionIsDetached)


@callback_type("subscription_is_frozen")
@dataclass(frozen=True)
class SubscriptionIsFrozen(Payload):
    """Subscriptions were frozen for lack of funds."""

    subscriptions: tuple[Subscription, ...] | None = items(Subscription, "Frozen subscriptions")


subscription_frozen = type_signal(SubscriptionIsFrozen)


@callback_type("transaction_history_report")
@dataclass(frozen=True)
class TransactionHistoryReport(Payload):
    """A requested transaction history report is ready (or failed)."""

    history_report_id: int | None = integer("Report id", 4243)
    success: bool | None = boolean("Whether the report was built", True)
    order_date: datetime | None = timestamp("When the report was ordered (UTC)")


transaction_history_report_ready = type_signal(TransactionHistoryReport)


@callback_type("transcription_complete", nested=True)
@dataclass(frozen=True)
class TranscriptionComplete(Payload):
    """A call recording transcription finished."""

    record_url: str | None = text("Recording URL", "https://records.example/r/1.mp3")
    transcription_url: str | None = text(
        "Transcription URL (add auth parameters and record_id to open it)",
        "https://records.example/t/1.txt",
    )
    call_session_history_id: int | None = integer("Call session history id", 777001)
    transcription_cost: Decimal | None = money("Cost of the transcription", 0.05)


transcription_completed = type_signal(TranscriptionComplete)


@callback_type("unverified_subscription_detached")
@dataclass(frozen=True)
class UnverifiedSubscriptionDetached(Payload):
    """Unverified subscriptions were cancelled."""

    subscriptions: tuple[Subscription, ...] | None = items(Subscription, "Cancelled subscriptions")


unverified_subscription_detached = type_signal(UnverifiedSubscriptionDetached)


@callback_type("wire_transfer")
@dataclass(frozen=True)
class WireTransfer(Payload):
    """A wire transfer was received."""

    transaction_id: int | None = integer("Transaction id", 880013)
    transaction_type: str | None = text("Transaction type", "wire_transfer")
    amount: Decimal | None = money("Amount in the account currency", 500.0)


wire_transfer_received = type_signal(WireTransfer)


@callback_type("restored_agreement_status")
@dataclass(frozen=True)
class RestoredAgreementStatus(Payload):
    """An agreement's deadline moved."""

    document_id: int | None = integer("Agreement document id", 5001)
    expiration_date: date | None = date_field("New expiration date")


agreement_status_restored = type_signal(RestoredAgreementStatus)


# Legacy types: no longer documented, still parsed ----------------------------------------------


@callback_type("stagnant_account", LEGACY)
@dataclass(frozen=True)
class StagnantAccount(Payload):
    """No activity on the account since it was created."""


account_stagnant = type_signal(StagnantAccount)


@callback_type("plan_config", LEGACY)
@dataclass(frozen=True)
class PlanConfig(Payload):
    """The account's plan changed."""

    plan_type: str | None = text("Plan type", choices=("IM", "MAU"))
    plan_name: str | None = text("Plan name", "Business")
    packages: tuple[PlanPackage, ...] | None = items(PlanPackage, "Packages of the plan")


plan_changed = type_signal(PlanConfig)


@callback_type("new_invoice", LEGACY, nested=True)
@dataclass(frozen=True)
class NewInvoice(Payload):
    """An invoice was issued (legacy form)."""

    invoice_number: str | None = text("Invoice number", "INV-2025-0042")
    invoice_date: str | None = text("Invoice date, as sent", "2025-03-01")
    prepayment: bool | None = boolean("Whether it is a prepayment invoice")
    currency: str | None = text("Currency code", "USD")
    total_amount: Decimal | None = money("Total amount", 120.0)
    total_tax_amount: Decimal | None = money("Total tax", 20.0)
    units: tuple[InvoiceUnit, ...] | None = items(InvoiceUnit, "Invoice lines")


invoice_issued = type_signal(NewInvoice)


@callback_type("balance_is_changed", LEGACY)
@dataclass(frozen=True)
class BalanceIsChanged(Payload):
    """The account was topped up."""


balance_changed = type_signal(BalanceIsChanged)


@callback_type("expired_callerid", LEGACY)
@dataclass(frozen=True)
class ExpiredCallerId(Payload):
    """Caller IDs expired."""

    callerids: tuple[str, ...] | None = text_list("Caller IDs", ("12025550143",))


callerids_expired = type_signal(ExpiredCallerId)


@callback_type("uncharged_tariff", LEGACY)
@dataclass(frozen=True)
class UnchargedTariff(Payload):
    """A tariff could not be charged."""


tariff_uncharged = type_signal(UnchargedTariff)


@dataclass(frozen=True)
class ClassificationUnit(Record):
    """One result of a call classification."""

    type: str | None = text("Classification type", "speech")
    info: str | None = text("Classification result", "voicemail")
    error_code: str | None = text("Error code, if any", "")


@callback_type("classification_complete", LEGACY, nested=True)
@dataclass(frozen=True)
class ClassificationComplete(Payload):
    """A call record was classified (legacy: described by clients from 2020 to 2023)."""

    record_id: int | None = integer("Record id", 90210)
    classification_info: tuple[ClassificationUnit, ...] | None = items(
        ClassificationUnit, "Classification results"
    )
    classification_cost: Decimal | None = money("Cost of the classification", 0.05)


classification_completed = type_signal(ClassificationComplete)


def signal_names() -> dict[str, str]:
    """The exported name of each per-type signal, by wire type."""
    return {
        signal.name: name
        for name, signal in globals().items()
        if isinstance(signal, CallbackSignal) and signal.name in CALLBACK_TYPES
    }
