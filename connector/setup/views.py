"""The "Set up a sync" page: thin over connector.setup.status (state and actions live there)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from connector.connections.forms import WriteOnlySecretWidget
from connector.errors import ConnectorError
from connector.models import ConnectionStatus, PipedriveConnection, SyncPair, XeroConnection
from connector.setup import status as setup_status


class PairForm(forms.Form):
    xero_connection = forms.ModelChoiceField(
        queryset=XeroConnection.objects.filter(status=ConnectionStatus.ACTIVE),
        label="Xero organisation",
        empty_label=None,
    )
    pipedrive_connection = forms.ModelChoiceField(
        queryset=PipedriveConnection.objects.filter(status=ConnectionStatus.ACTIVE),
        label="Pipedrive company",
        empty_label=None,
    )
    name = forms.CharField(
        max_length=200,
        required=False,
        help_text="How this sync is named in the admin (blank: “organisation → company”).",
    )


class XeroKeyForm(forms.Form):
    xero_webhook_key = forms.CharField(
        label="Webhook key",
        widget=WriteOnlySecretWidget(attrs={"autocomplete": "off", "size": 60}),
        help_text=(
            "Shown in Xero's developer portal under your app's Webhooks. Stored encrypted, never shown again."
        ),
    )


def _pair_from(request) -> SyncPair | None:
    raw = request.POST.get("pair") or request.GET.get("pair")
    if raw and str(raw).isdigit():
        return (
            SyncPair.objects.select_related("xero_connection", "pipedrive_connection").filter(pk=raw).first()
        )
    return None


# The permission each action needs; every other action (the steps of one pair) changes that pair.
ACTION_PERMISSIONS = {"create_pair": "connector.add_syncpair"}
PAIR_PERMISSION = "connector.change_syncpair"


def setup_page(request, site):
    """GET shows every step and changes nothing; POST (CSRF-checked) runs one step's action for a
    user holding its permission and comes back here (safe to repeat)."""
    pair = _pair_from(request)
    if request.method == "POST":
        action = request.POST.get("action", "")
        if not request.user.has_perm(ACTION_PERMISSIONS.get(action, PAIR_PERMISSION)):
            raise PermissionDenied
        pair = _run_action(request, pair)
        return HttpResponseRedirect(setup_status.setup_url(pair))
    status = setup_status.setup_status(pair)
    context = {
        **site.each_context(request),
        "title": "Set up a sync",
        "status": status,
        "pairs": SyncPair.objects.order_by("name"),
        "pair_form": PairForm(),
        "key_form": XeroKeyForm(),
        "sandbox": bool(setup_status.sandbox_base()),
    }
    return TemplateResponse(request, "admin/connector/setup.html", context)


def _run_action(request, pair):
    action = request.POST.get("action", "")
    try:
        if action == "create_pair":
            form = PairForm(request.POST)
            if not form.is_valid():
                errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
                messages.error(request, f"The sync pair was not created: {errors}")
                return pair
            data = form.cleaned_data
            pair = setup_status.create_pair(
                data["xero_connection"], data["pipedrive_connection"], data["name"]
            )
            messages.success(
                request, f"Sync pair “{pair}” is ready. Next: the Pipedrive fields and pipeline."
            )
        elif pair is None:
            messages.error(request, "Choose the sync pair to set up first.")
        elif action == "pipedrive_setup":
            messages.success(request, setup_status.run_pipedrive_setup(pair))
        elif action == "pipedrive_webhooks":
            messages.success(request, setup_status.register_webhooks(pair))
        elif action == "xero_key":
            key = XeroKeyForm(request.POST).data.get("xero_webhook_key", "")
            setup_status.save_xero_webhook_key(pair, key)
            messages.success(request, "Webhook key saved. Next: Xero's intent to receive.")
        elif action == "sandbox_intent":
            messages.success(request, setup_status.sandbox_intent_to_receive(pair))
        else:
            messages.error(request, f"Unknown setup action {action[:40]!r}.")
    except ConnectorError as exc:
        messages.error(request, str(exc))
    return pair
