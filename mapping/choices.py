"""Xero's vocabulary that mapping rules are keyed by: invoice statuses and the payment state.

One place for the lists that stage mappings, the sync and the credit rules share.
"""

from django.db import models


class InvoiceStatus(models.TextChoices):
    """A Xero invoice's ``Status``."""

    DRAFT = "DRAFT", "Draft"
    SUBMITTED = "SUBMITTED", "Submitted for approval"
    AUTHORISED = "AUTHORISED", "Approved, awaiting payment"
    PAID = "PAID", "Paid"
    VOIDED = "VOIDED", "Voided"
    DELETED = "DELETED", "Deleted"


class PaymentState(models.TextChoices):
    """What the connector derives from an invoice's amounts (``mapping.engine.payment_state``)."""

    PART_PAID = "PART_PAID", "Part paid"
    PAID = "PAID", "Paid"


class DueState(models.TextChoices):
    """What the connector derives from an invoice's due date and the organisation's local date."""

    OVERDUE = "OVERDUE", "Overdue: approved, due date passed, amount still due"


# Statuses whose deal stays open (the credit flag is re-checked for these).
OPEN_STATUSES = (InvoiceStatus.DRAFT, InvoiceStatus.SUBMITTED, InvoiceStatus.AUTHORISED)
# An invoice in these never gets a new deal.
CLOSED_WITHOUT_DEAL = frozenset({InvoiceStatus.VOIDED, InvoiceStatus.DELETED})
# Approved and unpaid: counted in the contact's outstanding receivables.
IN_RECEIVABLES = frozenset({InvoiceStatus.AUTHORISED})
