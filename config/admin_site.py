"""The admin site: the home and the side menu grouped the way finance and the admin use them.

What finance works with (sync records, mappings, credit limits, the inbox) comes first, then the
connections and the guided setup, then users; the technical tables (rate windows, the Pipedrive
index, the task queue, deferred jobs, OAuth states) sit under "Advanced", and the emulators under
"Sandbox" only while the sandbox is on. Labels and one-line descriptions are set here, in finance's
words; the models keep their own names (and the URL names stay ``admin:...``).
"""

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache

SANDBOX_APPS = ("sandbox", "sandbox_xero", "sandbox_pipedrive")

# group key -> (heading, description)
GROUPS = {
    "finance": ("Finance", "What is synced from Xero to Pipedrive, and the rules that decide it."),
    "connections": ("Connections and setup", "The Xero organisation and Pipedrive company being joined."),
    "access": ("Users and access", ""),
    "advanced": ("Advanced", "Technical tables for troubleshooting: limits, queues, indexes."),
    "sandbox": ("Sandbox (emulated Xero and Pipedrive)", "Demo data: nothing here is a real account."),
}

# "app_label.ModelName" -> (group, label, description); the order here is the order on the page.
MODEL_PLACES = {
    "audit.SyncRecord": (
        "finance",
        "Sync records",
        "Every customer, invoice and payment synced, when, and why when not. Replay from here.",
    ),
    "mapping.FieldMapping": (
        "finance",
        "Field mappings",
        "Which Xero field fills which Pipedrive field: customers (Xero contacts) → organizations and "
        "persons, invoices → deals.",
    ),
    "mapping.StageMapping": (
        "finance",
        "Deal stages",
        "Which Pipedrive stage a deal moves to for each invoice status and payment.",
    ),
    "mapping.CreditLimit": (
        "finance",
        "Credit limits",
        "A customer's credit limit; deals over the available credit are flagged.",
    ),
    "connector.WebhookEvent": (
        "finance",
        "Inbox",
        "Changes received from Xero and Pipedrive, waiting, done or failed (with the reason).",
    ),
    "connector.BackfillRun": (
        "finance",
        "Backfill runs",
        "Bringing in what Xero already holds: dry runs first, then the real runs, with progress.",
    ),
    "connector.SyncPair": (
        "connections",
        "Sync pairs",
        "One Xero organisation ↔ one Pipedrive company, with its settings.",
    ),
    "connector.XeroConnection": ("connections", "Xero connections", "Organisations the connector may read."),
    "connector.PipedriveConnection": (
        "connections",
        "Pipedrive connections",
        "Companies the connector writes to.",
    ),
    "auth.User": ("access", "Users", ""),
    "auth.Group": ("access", "Groups", ""),
    "mapping.RecordLink": (
        "advanced",
        "Record links",
        "Customers (Xero contacts) → organizations, invoices → deals: which record was made from which.",
    ),
    "connector.DeferredJob": ("advanced", "Deferred jobs", "Work put off until a daily API budget resets."),
    "connector.ApiRateWindow": ("advanced", "API rate windows", "Calls spent per minute and day."),
    "connector.PipedriveIndexState": (
        "advanced",
        "Pipedrive index",
        "The local copy of Pipedrive's organizations and persons used for matching.",
    ),
    "connector.ReconciliationState": (
        "advanced",
        "Reconciliation states",
        "When each pair was last compared with Xero to catch missed changes.",
    ),
    "connector.OverduePassState": (
        "advanced",
        "Overdue checks",
        "When each pair's daily overdue check last ran and what it did.",
    ),
    "connector.OverdueReminder": (
        "advanced",
        "Overdue reminders",
        "Pipedrive activities given to deal owners for overdue invoices.",
    ),
    "connector.OAuthState": ("advanced", "OAuth states", "Sign-ins to Xero or Pipedrive in progress."),
    "django_q.OrmQ": ("advanced", "Task queue: queued", ""),
    "django_q.Schedule": ("advanced", "Task queue: scheduled", ""),
    "django_q.Success": ("advanced", "Task queue: succeeded", ""),
    "django_q.Failure": ("advanced", "Task queue: failed", ""),
}

SANDBOX_PREFIXES = {"sandbox": "Emulators", "sandbox_xero": "Xero", "sandbox_pipedrive": "Pipedrive"}


class ConnectorAdminSite(admin.AdminSite):
    site_header = "ml-connector"
    site_title = "ml-connector"
    index_title = "Xero → Pipedrive"
    login_template = "admin/login_2fa.html"

    @property
    def login_form(self):  # type: ignore[override]
        # at use: this module is the admin's default_site, loaded while the apps load
        from config.two_factor import AdminLoginForm

        return AdminLoginForm

    def has_permission(self, request):
        """Active staff, and with REQUIRE_2FA a session verified by the second factor."""
        # at use: this module is the admin's default_site, loaded while the apps load
        from config.two_factor import needs_second_factor

        return super().has_permission(request) and not needs_second_factor(request.user)

    @method_decorator(never_cache)
    def login(self, request, extra_context=None):
        """A signed-in staff user without an authenticator app goes to set one up (REQUIRE_2FA)."""
        # at use: this module is the admin's default_site, loaded while the apps load
        from django_otp import user_has_device

        # at use: this module is the admin's default_site, loaded while the apps load
        from config.two_factor import needs_second_factor

        user = request.user
        if (
            request.method == "GET"
            and needs_second_factor(user)
            and not user_has_device(user, confirmed=True)
        ):
            return redirect(reverse("admin:two_factor_enrol", current_app=self.name))
        extra_context = {**(extra_context or {}), "require_2fa": settings.REQUIRE_2FA}
        return super().login(request, extra_context)

    def get_urls(self):
        # at use: this module is the admin's default_site, loaded while the apps load
        from config.two_factor import enrol

        # at use: this module is the admin's default_site, loaded while the apps load
        from connector.setup.views import setup_page

        setup = self.admin_view(lambda request: setup_page(request, self))
        two_factor = never_cache(lambda request: enrol(request, self))
        return [
            path("setup/", setup, name="setup"),
            path("two-factor/", two_factor, name="two_factor_enrol"),
            *super().get_urls(),
        ]

    def index(self, request, extra_context=None):
        # at use: this module is the admin's default_site, loaded while the apps load
        from connector.setup.status import setup_status

        extra_context = {**(extra_context or {}), "setup_status": setup_status()}
        return super().index(request, extra_context)

    def get_app_list(self, request, app_label=None):
        if app_label is not None:  # an app's own page lists that app, as Django does
            return super().get_app_list(request, app_label)
        return grouped_app_list(self._build_app_dict(request), request)


def grouped_app_list(app_dict: dict, request) -> list[dict]:
    """Regroup Django's per-app dict into the groups above; models not placed keep their app's group."""
    index_url = reverse("admin:index")
    groups: dict[str, dict[str, Any]] = {
        key: {
            "name": heading,
            "description": description,
            "app_label": key,
            "app_url": f"{index_url}#group-{key}",
            "has_module_perms": True,
            "models": [],
        }
        for key, (heading, description) in GROUPS.items()
    }
    own_groups: list[dict[str, Any]] = []
    order = {label: number for number, label in enumerate(MODEL_PLACES)}
    for label, app in app_dict.items():
        leftovers = []
        for model in app["models"]:
            key = f"{model['model']._meta.app_label}.{model['object_name']}"
            if label in SANDBOX_APPS:
                if settings.SANDBOX_ENABLED:
                    groups["sandbox"]["models"].append(
                        {**model, "name": f"{SANDBOX_PREFIXES[label]}: {model['name']}"}
                    )
                continue
            place = MODEL_PLACES.get(key)
            if place is None:
                leftovers.append(model)
                continue
            group, name, description = place
            groups[group]["models"].append(
                {**model, "name": name, "description": description, "order": order[key]}
            )
        if leftovers:
            own_groups.append({**app, "models": sorted(leftovers, key=lambda m: m["name"])})
    if request.user.has_perm("connector.view_syncpair"):
        groups["connections"]["models"].insert(
            0,
            {
                "name": "Set up a sync",
                "object_name": "GuidedSetup",
                "description": "Step by step: connect both services, create the pair, webhooks, first sync.",
                "admin_url": reverse("admin:setup"),
                "add_url": None,
                "view_only": True,
                "perms": {"view": True},
                "order": -1,
            },
        )
    for grouped in groups.values():
        if grouped["app_label"] != "sandbox":
            grouped["models"].sort(key=lambda m: m.get("order", 0))
    ordered = [groups["finance"], groups["connections"], *own_groups, groups["access"], groups["advanced"]]
    ordered.append(groups["sandbox"])
    return [group for group in ordered if group["models"]]
