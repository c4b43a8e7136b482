"""Connect pages: thin views over connector.connections.services, for staff holding the connection's change
permission (the "Integration admin" role; Finance gets 403)."""

from functools import wraps
from pathlib import Path

import requests
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.shortcuts import render as django_render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from connector.connections import oauth
from connector.connections import services as connections
from connector.connections.forms import (
    PipedriveApiTokenForm,
    PipedriveOAuthForm,
    TenantPickForm,
    XeroConnectForm,
)
from connector.errors import ConnectorError
from connector.models import OAuthState

# Where to go once a connection is made (the guided setup sends people here with ?next=).
NEXT_SESSION_KEY = "connector_connect_next"


def _admin_list(model_name: str) -> str:
    return reverse(f"admin:connector_{model_name}_changelist")


def _remember_next(request) -> None:
    target = request.GET.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        request.session[NEXT_SESSION_KEY] = target


def _next_or(request, default: str) -> str:
    return request.session.pop(NEXT_SESSION_KEY, None) or default


def render(request, template: str, context: dict, status: int = 200):
    """Render inside the admin's frame (header, menu, breadcrumbs) like every other admin page."""
    return django_render(request, template, {**admin.site.each_context(request), **context}, status=status)


def _sandbox_hint() -> str:
    """Where the run command wrote the sandbox's demo credentials, when the sandbox is on."""
    path = Path(settings.DATA_DIR) / "sandbox-credentials.txt"
    return str(path) if settings.SANDBOX_ENABLED else ""


XERO_PERMISSION = "connector.change_xeroconnection"
PIPEDRIVE_PERMISSION = "connector.change_pipedriveconnection"


def connection_permission_required(permission: str):
    """Anonymous (or non-staff) users go to the admin login; staff without ``permission`` get 403.

    Staff status alone is not enough: Finance is staff, and a connect page stores secrets and tokens.
    """

    def decorator(view):
        @wraps(view)
        def checked(request, *args, **kwargs):
            if not request.user.has_perm(permission):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return staff_member_required(checked)

    return decorator


@connection_permission_required(XERO_PERMISSION)
def xero_start(request):
    _remember_next(request)
    form = XeroConnectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        url = connections.start_xero_connect(
            form.cleaned_data["client_id"], form.cleaned_data["client_secret"], user_id=request.user.pk
        )
        return redirect(url)
    context = {"form": form, "title": "Connect Xero", "sandbox_hint": _sandbox_hint()}
    return render(request, "connector/connect_xero.html", context)


@connection_permission_required(XERO_PERMISSION)
def xero_callback(request):
    if request.GET.get("error"):
        messages.error(request, f"Xero did not grant access: {request.GET['error']}.")
        return redirect(_admin_list("xeroconnection"))
    try:
        row = connections.finish_xero_callback(
            request.GET.get("state", ""), request.GET.get("code", ""), user_id=request.user.pk
        )
    except oauth.BadState as exc:
        return render(
            request,
            "connector/connect_failed.html",
            {"message": str(exc), "title": "Connect Xero"},
            status=400,
        )
    except (ConnectorError, requests.RequestException) as exc:
        messages.error(request, f"Connecting Xero failed: {exc}")
        return redirect(_admin_list("xeroconnection"))
    return redirect("connector:xero-pick", state=row.state)


@connection_permission_required(XERO_PERMISSION)
def xero_pick(request, state):
    # Only the user who started this consent may pick its organisation.
    row = get_object_or_404(OAuthState, service="xero", state=state, user_id=request.user.pk)
    if not row.token_set:
        return render(
            request,
            "connector/connect_failed.html",
            {"message": "This authorization was already used; connect again.", "title": "Connect Xero"},
            status=400,
        )
    tenants = connections.list_xero_tenants(row)
    form = TenantPickForm(request.POST or None, tenants=tenants)
    if request.method == "POST" and form.is_valid():
        conn = connections.pick_xero_tenant(row, form.cleaned_data["tenant_id"])
        messages.success(request, f"Connected Xero organisation {conn}.")
        return redirect(_next_or(request, reverse("admin:connector_xeroconnection_change", args=[conn.pk])))
    return render(request, "connector/pick_tenant.html", {"form": form, "title": "Pick a Xero organisation"})


@connection_permission_required(PIPEDRIVE_PERMISSION)
def pipedrive_start(request):
    _remember_next(request)
    oauth_form = PipedriveOAuthForm(request.POST if request.POST.get("kind") == "oauth" else None)
    token_form = PipedriveApiTokenForm(request.POST if request.POST.get("kind") == "api_token" else None)
    if request.method == "POST" and oauth_form.is_bound and oauth_form.is_valid():
        return redirect(
            connections.start_pipedrive_connect(
                oauth_form.cleaned_data["client_id"],
                oauth_form.cleaned_data["client_secret"],
                request.user.pk,
            )
        )
    if request.method == "POST" and token_form.is_bound and token_form.is_valid():
        try:
            conn = connections.connect_pipedrive_api_token(
                token_form.cleaned_data["api_token"], token_form.cleaned_data["api_domain"]
            )
        except (ConnectorError, requests.RequestException) as exc:
            token_form.add_error("api_token", str(exc))
        else:
            messages.success(request, f"Connected Pipedrive company {conn} with an API token.")
            return redirect(
                _next_or(request, reverse("admin:connector_pipedriveconnection_change", args=[conn.pk]))
            )
    context = {
        "oauth_form": oauth_form,
        "token_form": token_form,
        "title": "Connect Pipedrive",
        "sandbox_hint": _sandbox_hint(),
    }
    return render(request, "connector/connect_pipedrive.html", context)


@connection_permission_required(PIPEDRIVE_PERMISSION)
def pipedrive_callback(request):
    if request.GET.get("error"):
        messages.error(request, f"Pipedrive did not grant access: {request.GET['error']}.")
        return redirect(_admin_list("pipedriveconnection"))
    try:
        conn = connections.finish_pipedrive_callback(
            request.GET.get("state", ""), request.GET.get("code", ""), user_id=request.user.pk
        )
    except oauth.BadState as exc:
        context = {"message": str(exc), "title": "Connect Pipedrive"}
        return render(request, "connector/connect_failed.html", context, status=400)
    except (ConnectorError, requests.RequestException) as exc:
        messages.error(request, f"Connecting Pipedrive failed: {exc}")
        return redirect(_admin_list("pipedriveconnection"))
    messages.success(request, f"Connected Pipedrive company {conn} with OAuth.")
    return redirect(_next_or(request, reverse("admin:connector_pipedriveconnection_change", args=[conn.pk])))
