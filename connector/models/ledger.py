from django.db import models


class KnownContact(models.Model):
    """What the connector last read of one Xero contact: its name and receivable balances.

    Kept by every contact sync so that pages answered from the connector's own records (the
    Pipedrive panel, the overdue roll-over's choice of what to re-read) need no Xero call.
    """

    pair = models.ForeignKey("connector.SyncPair", on_delete=models.CASCADE, related_name="known_contacts")
    contact_id = models.CharField(max_length=64, help_text="Xero ContactID (lower case).")
    name = models.CharField(max_length=255, blank=True)
    outstanding = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    overdue = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    read_at = models.DateTimeField(help_text="When the connector last read this contact from Xero.")

    class Meta:
        verbose_name = "known Xero contact"
        constraints = [models.UniqueConstraint(fields=["pair", "contact_id"], name="known_contact_unique")]

    def __str__(self):
        return self.name or self.contact_id


class KnownInvoice(models.Model):
    """What the connector last read of one Xero sales invoice (ACCREC).

    Kept by every invoice sync (and payment, which re-reads its invoice). The overdue roll-over finds
    open invoices whose due date passed from these rows, without scanning Xero; the Pipedrive panel
    lists a customer's invoices from them.
    """

    pair = models.ForeignKey("connector.SyncPair", on_delete=models.CASCADE, related_name="known_invoices")
    invoice_id = models.CharField(max_length=64, help_text="Xero InvoiceID (lower case).")
    contact_id = models.CharField(max_length=64, help_text="Xero ContactID (lower case).")
    number = models.CharField(max_length=255, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, blank=True, help_text="Xero status: DRAFT, AUTHORISED, PAID…")
    currency = models.CharField(max_length=3, blank=True)
    total = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    amount_due = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    amount_paid = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    issued_on = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    fully_paid_on = models.DateField(null=True, blank=True)
    last_payment_on = models.DateField(null=True, blank=True)
    last_payment_amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    xero_updated_at = models.DateTimeField(null=True, blank=True, help_text="Xero's UpdatedDateUTC.")
    read_at = models.DateTimeField(help_text="When the connector last read this invoice from Xero.")
    rolled_over_due_on = models.DateField(
        null=True,
        blank=True,
        help_text="The due date whose passing the daily overdue pass has handled (a new due date is "
        "handled again once it passes).",
    )

    class Meta:
        verbose_name = "known Xero invoice"
        constraints = [models.UniqueConstraint(fields=["pair", "invoice_id"], name="known_invoice_unique")]
        indexes = [
            models.Index(fields=["pair", "contact_id"], name="known_invoice_by_contact"),
            models.Index(fields=["pair", "status", "due_on"], name="known_invoice_by_due"),
        ]

    def __str__(self):
        return self.number or self.invoice_id
