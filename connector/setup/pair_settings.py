"""A sync pair's settings as form fields: every option of ``PairOptions`` with its own field, help text
and validation, stored through ``PairOptions.to_raw()``.

The credit limit field is picked from the pair's live Pipedrive organization fields (read before the
admin's transaction and passed in); the deal title template is checked against Xero's invoice fields.
"""

from __future__ import annotations

import string
from typing import cast

from django import forms
from django.core.exceptions import ValidationError

from connector.options import (
    BOUNDS,
    DEFAULT_DEAL_TITLE,
    DEFAULT_OVERDUE_CHECK_AT,
    PairOptions,
    clock_time_problem,
    option_names,
    pair_options,
)
from mapping.rules import validate_source_path

# Pipedrive organization field types that can hold a credit limit (a number, or an amount).
CREDIT_LIMIT_TYPES = ("double", "int", "monetary")
TITLE_PLACEHOLDERS = [
    ("{InvoiceNumber}", "the invoice number"),
    ("{Reference}", "the invoice's reference"),
    ("{Contact.Name}", "the customer's name"),
    ("{Total}", "the invoice total"),
    ("{AmountDue}", "the amount still due"),
    ("{CurrencyCode}", "the currency"),
    ("{DueDate}", "the due date"),
]


def title_template_problem(template: str) -> str | None:
    """Why ``template`` cannot make deal titles (None when it can): bad braces or an unknown field."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return f"The braces do not pair up ({exc}); write each placeholder as {{Name}}."
    for name in names:
        if not name:
            return (
                "A placeholder is empty: write a Xero invoice field between the braces, e.g. {InvoiceNumber}."
            )
        try:
            validate_source_path("deal", name)
        except ValidationError:
            return f"{{{name}}} is not a field of a Xero invoice (e.g. {{InvoiceNumber}}, {{Contact.Name}})."
    return None


class PairSettingsForm(forms.ModelForm):
    """The pair's options as fields (mixed into the sync pair's admin form). ``credit_fields`` is the
    live list of organization fields, or the reason it could not be read (a string)."""

    credit_fields: list[dict] | str | None = None

    deal_value_from = forms.ChoiceField(
        choices=[
            ("Total", "The invoice total"),
            ("AmountDue", "The amount still due (changes as it is paid)"),
        ],
        label="Deal value from",
        help_text="Which invoice amount becomes the deal's value.",
    )
    deal_title_template = forms.CharField(
        label="Deal title",
        max_length=255,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Xero invoice fields in braces. Available: "
        + ", ".join(f"{p} ({words})" for p, words in TITLE_PLACEHOLDERS)
        + f"; any other invoice field works too. Default: {DEFAULT_DEAL_TITLE}",
    )
    create_deals = forms.BooleanField(
        required=False,
        label="Create deals for new invoices",
        help_text="Unticked: deals already made are kept up to date, no new deal is made.",
    )
    create_notes = forms.BooleanField(
        required=False,
        label="Add a note to the deal for each payment",
        help_text="One note per payment (and one when a payment is removed).",
    )
    archived_contacts = forms.ChoiceField(
        choices=[
            ("mark", 'Mark the organization ("[archived in Xero]" after its name)'),
            ("clear", "Clear its persons' names, e-mails and phones (for GDPR requests)"),
            ("leave", "Leave it: sync it like any other customer"),
        ],
        label="Archived customers",
        help_text="What happens in Pipedrive when a customer is archived in Xero or asks to be forgotten.",
    )
    credit_limit_field = forms.ChoiceField(
        required=False,
        label="Credit limit from",
        help_text="A Pipedrive organization field where sales keep each customer's credit limit (a number "
        "or amount field), or the connector's own Credit limits.",
    )
    on_pipedrive_delete = forms.ChoiceField(
        choices=[
            ("flag", "Keep the link, marked “deleted in Pipedrive” (nothing is recreated)"),
            ("drop", "Forget the link: the next sync finds or recreates the record"),
        ],
        label="When someone deletes a synced record in Pipedrive",
    )
    webhook_silence_alert_hours = forms.IntegerField(
        min_value=BOUNDS["webhook_silence_alert_hours"][0],
        max_value=BOUNDS["webhook_silence_alert_hours"][1],
        label="Alert after webhook silence (hours)",
        help_text="Raise an alert when Xero or Pipedrive has sent nothing for this long while changes are "
        "expected. 0: never.",
    )
    reconciliation_interval_minutes = forms.IntegerField(
        min_value=BOUNDS["reconciliation_interval_minutes"][0],
        max_value=BOUNDS["reconciliation_interval_minutes"][1],
        label="Reconcile every (minutes)",
        help_text="How often the connector compares Xero with Pipedrive to catch anything a webhook missed. "
        "0: no scheduled reconciliation.",
    )
    reconciliation_only = forms.BooleanField(
        required=False,
        label="Reconciliation only (no webhooks)",
        help_text="For a Xero app without webhooks: the scheduled reconciliation alone keeps Pipedrive "
        "level.",
    )

    overdue_check_at = forms.CharField(
        required=False,
        label="Daily overdue check at",
        widget=forms.TextInput(attrs={"size": 6, "placeholder": "HH:MM"}),
        help_text="Local time (HH:MM, 24-hour) in the Xero organisation's time zone: once a day after it, "
        "the invoices whose due date passed are re-read so overdue figures, deal stages and credit "
        f"flags follow. Default: {DEFAULT_OVERDUE_CHECK_AT}.",
    )
    overdue_reminders = forms.BooleanField(
        required=False,
        label="Remind the deal owner when an invoice is overdue",
        help_text="One Pipedrive activity per overdue invoice, due the day it falls overdue, for the "
        "deal's owner; marked done when the invoice is paid or voided.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound and not self._options_posted():
            for name in option_names():
                if name in self.fields:
                    self.fields[name].required = False
        options = (
            pair_options(self.instance) if self.instance.pk else PairOptions.from_raw(self.instance.options)
        )
        for name in option_names():
            if name in self.fields:
                self.fields[name].initial = getattr(options, name)
        current = options.credit_limit_field
        choices = [("", "The connector's Credit limits (per customer, group or default)")]
        fields = self.credit_fields
        if isinstance(fields, list):
            choices += [
                (f["key"], f"{f['name']} ({f['field_type']})")
                for f in fields
                if f.get("field_type") in CREDIT_LIMIT_TYPES
            ]
        elif isinstance(fields, str):
            self.fields["credit_limit_field"].help_text += f" Pipedrive's fields could not be read: {fields}"
        if current and current not in dict(choices):
            choices.append((current, f"{current} (not found in Pipedrive's number fields)"))
        # credit_limit_field is declared as a ChoiceField on this form.
        cast(forms.ChoiceField, self.fields["credit_limit_field"]).choices = choices

    def _options_posted(self) -> bool:
        """A client that shows no settings (an older script posting only the pair) keeps them as stored."""
        return any(
            name in self.data for name in ("deal_value_from", "archived_contacts", "on_pipedrive_delete")
        )

    def clean_deal_title_template(self):
        template = self.cleaned_data.get("deal_title_template") or ""
        problem = title_template_problem(template)
        if problem:
            raise ValidationError(problem)
        return template

    def clean_overdue_check_at(self):
        value = (self.cleaned_data.get("overdue_check_at") or "").strip()
        if not value:  # left empty (or a client that does not show it): the default time
            return (
                pair_options(self.instance).overdue_check_at if self.instance.pk else DEFAULT_OVERDUE_CHECK_AT
            )
        problem = clock_time_problem(value)
        if problem:
            raise ValidationError(f"Daily overdue check at: {problem}.")
        return value

    def clean_credit_limit_field(self):
        key = self.cleaned_data.get("credit_limit_field") or ""
        fields = self.credit_fields
        if key and isinstance(fields, list):
            found = next((f for f in fields if f["key"] == key), None)
            if found is None:
                raise ValidationError(
                    f"The organization field {key!r} is not in this Pipedrive company (deleted?): "
                    "choose another."
                )
            if found.get("field_type") not in CREDIT_LIMIT_TYPES:
                raise ValidationError(
                    f"{found['name']!r} is a {found['field_type']!r} field; a credit limit needs a number or "
                    "amount field."
                )
        return key

    def clean(self):
        super().clean()
        data = self.cleaned_data  # what super().clean() returns, typed as set (clean runs after the fields)
        if not self._options_posted():
            return data
        if any(name in self.errors for name in option_names()):
            return data
        values = {name: data[name] for name in option_names() if name in data}
        options = PairOptions.from_raw(values)
        if options.problems:
            raise ValidationError(list(options.problems))
        self.instance.options = options.to_raw()
        return data
