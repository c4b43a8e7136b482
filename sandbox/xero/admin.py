"""Read-mostly admin pages to watch what the sandbox Xero holds. Secrets and tokens are never shown."""

import secrets

from django.contrib import admin

from sandbox import clock
from sandbox.admin_registration import register
from sandbox.xero import accounting, representation
from sandbox.xero.models import Connection, Contact, Invoice, Organisation, Payment, XeroApp


@register(XeroApp)
class XeroAppAdmin(admin.ModelAdmin):
    list_display = ["name", "client_id", "minute_limit", "day_limit", "app_minute_limit", "concurrent_limit"]
    exclude = ["client_secret"]
    readonly_fields = ["client_id", "created_at"]

    def save_model(self, request, obj, form, change):
        # A new app gets its credentials generated, as in the developer portal; the secret is
        # never shown here (the seed command prints the demo app's).
        if not obj.client_id:
            obj.client_id = secrets.token_hex(16).upper()
        if not obj.client_secret:
            obj.client_secret = secrets.token_urlsafe(36)
        super().save_model(request, obj, form, change)


class ConnectionInline(admin.TabularInline):
    model = Connection
    fields = ["grant", "created_at", "updated_at", "deleted_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "tenant_id",
        "base_currency",
        "timezone",
        "contact_count",
        "invoice_count",
        "created_at",
    ]
    readonly_fields = ["tenant_id", "created_at"]
    inlines = [ConnectionInline]

    @admin.display(description="contacts")
    def contact_count(self, obj):
        return obj.contacts.count()

    @admin.display(description="invoices")
    def invoice_count(self, obj):
        return obj.invoices.count()


@register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "email_address", "status", "outstanding", "overdue", "updated_at"]
    list_filter = ["organisation", "status"]
    search_fields = ["name", "email_address", "contact_number", "contact_id"]
    readonly_fields = ["contact_id", "updated_at", "outstanding", "overdue"]

    def save_model(self, request, obj, form, change):
        # This page stands in for Xero's web app, where an edit sends a webhook like an API write does.
        obj.updated_at = clock.now()
        super().save_model(request, obj, form, change)
        accounting.emit_event(obj.organisation, "CONTACT", "UPDATE" if change else "CREATE", obj.contact_id)

    def _balance(self, obj):
        return representation.balances([obj]).get(obj.pk, (0, 0))

    @admin.display(description="AR outstanding")
    def outstanding(self, obj):
        return self._balance(obj)[0]

    @admin.display(description="AR overdue")
    def overdue(self, obj):
        return self._balance(obj)[1]


class PaymentInline(admin.TabularInline):
    model = Payment
    fields = ["payment_id", "date", "amount", "reference", "status"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = [
        "invoice_number",
        "contact",
        "organisation",
        "status",
        "date",
        "due_date",
        "total",
        "amount_paid",
        "updated_at",
    ]
    list_filter = ["organisation", "status", "type"]
    search_fields = ["invoice_number", "reference", "contact__name", "invoice_id"]
    readonly_fields = [
        "invoice_id",
        "sub_total",
        "total_tax",
        "total",
        "amount_paid",
        "fully_paid_on",
        "updated_at",
    ]
    inlines = [PaymentInline]


@register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["payment_id", "invoice", "organisation", "date", "amount", "status", "updated_at"]
    list_filter = ["organisation", "status"]
    search_fields = ["payment_id", "invoice__invoice_number", "reference"]
    readonly_fields = ["payment_id", "updated_at"]
