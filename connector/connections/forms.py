"""Forms of the connect pages; secrets use PasswordInput and are never rendered back."""

from typing import cast

from django import forms
from django.conf import settings

from connector.connections import hosts
from connector.models import PipedriveConnection
from mapping.rules import is_pipedrive_company_label


class AppCredentialsForm(forms.Form):
    """An OAuth app's client id and secret; blank fields fall back to the settings named below."""

    service = ""
    settings_prefix = ""

    def clean(self):
        super().clean()
        data = self.cleaned_data
        data["client_id"] = data.get("client_id") or getattr(settings, f"{self.settings_prefix}_CLIENT_ID")
        data["client_secret"] = data.get("client_secret") or getattr(
            settings, f"{self.settings_prefix}_CLIENT_SECRET"
        )
        if not data["client_id"] or not data["client_secret"]:
            raise forms.ValidationError(
                f"Enter the {self.service} app's client id and secret (or set them in settings)."
            )
        return data


class XeroConnectForm(AppCredentialsForm):
    service, settings_prefix = "Xero", "XERO"
    client_id = forms.CharField(
        max_length=100, required=False, help_text="Blank: XERO_CLIENT_ID from settings."
    )
    client_secret = forms.CharField(
        required=False, widget=forms.PasswordInput, help_text="Blank: XERO_CLIENT_SECRET from settings."
    )


class PipedriveOAuthForm(AppCredentialsForm):
    service, settings_prefix = "Pipedrive", "PIPEDRIVE"
    client_id = forms.CharField(max_length=100, required=False)
    client_secret = forms.CharField(required=False, widget=forms.PasswordInput)


class PipedriveApiTokenForm(forms.Form):
    api_token = forms.CharField(
        widget=forms.PasswordInput, help_text="Personal preferences → API in Pipedrive."
    )
    api_domain = forms.URLField(
        assume_scheme="https",
        required=False,
        help_text="e.g. https://yourcompany.pipedrive.com (blank: the default API address).",
    )

    def clean_api_domain(self):
        # Checked before the view calls anything: a token goes only to Pipedrive's own hosts.
        value = self.cleaned_data.get("api_domain") or ""
        if not value:
            return ""
        try:
            return hosts.pipedrive_base(value)
        except hosts.RefusedHost as exc:
            raise forms.ValidationError(str(exc)) from exc


class PipedriveConnectionAdminForm(forms.ModelForm):
    """The admin's edit form: the stored host and company domain obey the same rules as a connect."""

    api_domain = forms.URLField(
        assume_scheme="https", required=False, help_text="https://yourcompany.pipedrive.com"
    )

    class Meta:
        model = PipedriveConnection
        fields = ("company_domain", "api_domain")  # the admin adds the rest of its fieldsets

    def clean_api_domain(self):
        value = self.cleaned_data.get("api_domain") or ""
        if not value:
            return ""
        try:
            return hosts.pipedrive_base(value)
        except hosts.RefusedHost as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_company_domain(self):
        # Only the subdomain is stored: links are built on https://<it>.pipedrive.com.
        value = (self.cleaned_data.get("company_domain") or "").strip().lower()
        if value and not is_pipedrive_company_label(value):
            raise forms.ValidationError("Enter the company's Pipedrive subdomain only, e.g. “acme”.")
        return value


class TenantPickForm(forms.Form):
    tenant_id = forms.ChoiceField(widget=forms.RadioSelect, label="Organisation")

    def __init__(self, *args, tenants=(), **kwargs):
        super().__init__(*args, **kwargs)
        tenant_field = cast(forms.ChoiceField, self.fields["tenant_id"])  # declared above
        tenant_field.choices = [(t["tenantId"], t.get("tenantName") or t["tenantId"]) for t in tenants]


class WriteOnlySecretWidget(forms.PasswordInput):
    """Always renders empty: a stored secret never travels back to the browser."""

    def __init__(self, attrs=None):
        super().__init__(attrs, render_value=False)
