"""Records of the emulated Pipedrive: companies (the tenants), users and their tokens,
OAuth apps and grants, pipelines and stages, custom fields, CRM records, notes, webhooks."""

import secrets

from django.db import models


class Plan(models.TextChoices):
    LITE = "lite", "Lite"
    GROWTH = "growth", "Growth"
    PREMIUM = "premium", "Premium"
    ULTIMATE = "ultimate", "Ultimate"


# pipedrive-api.md §4: 30,000 base tokens x plan multiplier x seats; burst per 2 s by plan and token kind.
BASE_DAILY_TOKENS = 30_000
PLAN_MULTIPLIER = {Plan.LITE: 1, Plan.GROWTH: 2, Plan.PREMIUM: 5, Plan.ULTIMATE: 7}
BURST_PER_2S = {  # plan -> (API token, OAuth access token)
    Plan.LITE: (20, 80),
    Plan.GROWTH: (40, 160),
    Plan.PREMIUM: (100, 400),
    Plan.ULTIMATE: (120, 480),
}
SEARCH_BURST_PER_2S = 10
DAILY_WRITES_PER_USER = 10_000  # legacy POST/PUT limit still echoed by x-daily-requests-left


def new_api_token() -> str:
    return secrets.token_hex(20)


class Company(models.Model):
    """A Pipedrive company: the tenant whose plan and seats set the daily token budget."""

    name = models.CharField(max_length=200)
    domain = models.SlugField(max_length=60, unique=True, help_text="The company's subdomain, e.g. 'acme'.")
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.GROWTH)
    seats = models.PositiveIntegerField(default=3)
    extra_tokens = models.PositiveIntegerField(default=0, help_text="Purchased daily top-up tokens.")
    daily_budget_override = models.PositiveIntegerField(
        null=True, blank=True, help_text="Replace the computed daily budget (tests: exhaust it quickly)."
    )
    burst_override = models.PositiveIntegerField(
        null=True, blank=True, help_text="Replace the plan's requests per 2 s for every token."
    )

    class Meta:
        verbose_name_plural = "companies"

    def __str__(self):
        return f"{self.name} ({self.get_plan_display()}, {self.seats} seats)"

    @property
    def daily_budget(self) -> int:
        if self.daily_budget_override is not None:
            return self.daily_budget_override
        return BASE_DAILY_TOKENS * PLAN_MULTIPLIER[Plan(self.plan)] * self.seats + self.extra_tokens

    def burst_limit(self, oauth: bool) -> int:
        if self.burst_override is not None:
            return self.burst_override
        return BURST_PER_2S[Plan(self.plan)][1 if oauth else 0]


class User(models.Model):
    """A user of a company, with its personal API token (one active token per user)."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="users")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    is_admin = models.BooleanField(default=True)
    api_token = models.CharField(max_length=40, unique=True, default=new_api_token)

    def __str__(self):
        return f"{self.name} <{self.email}>"


class OAuthApp(models.Model):
    """A Marketplace/private app that users install through the OAuth consent page."""

    name = models.CharField(max_length=200)
    client_id = models.CharField(max_length=64, unique=True)
    client_secret = models.CharField(max_length=64)
    redirect_uri = models.URLField(max_length=500)
    scope = models.CharField(max_length=300, default="base deals:full contacts:full search:read admin")

    class Meta:
        verbose_name = "OAuth app"

    def __str__(self):
        return self.name


class OAuthGrant(models.Model):
    """One installation of an app by a user: its code, access token and refresh token."""

    app = models.ForeignKey(OAuthApp, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="grants")
    redirect_uri = models.URLField(max_length=500)
    code = models.CharField(max_length=64, unique=True, null=True, blank=True)
    code_expires_at = models.DateTimeField(null=True, blank=True)
    access_token = models.CharField(max_length=100, unique=True, null=True, blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token = models.CharField(max_length=100, unique=True, null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "OAuth grant"

    def __str__(self):
        return f"{self.app} for {self.user}"


class Pipeline(models.Model):
    """A sales pipeline of a company."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="pipelines")
    name = models.CharField(max_length=200)
    order_nr = models.PositiveIntegerField(default=1)
    is_deal_probability_enabled = models.BooleanField(default=False)
    add_time = models.DateTimeField()
    update_time = models.DateTimeField()

    def __str__(self):
        return self.name


class Stage(models.Model):
    """A stage of a pipeline; deals move along stages."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=200)
    order_nr = models.PositiveIntegerField(default=1)
    deal_probability = models.PositiveIntegerField(default=100)
    is_deal_rot_enabled = models.BooleanField(default=False)
    days_to_rotten = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days without an update after which a deal in this stage rots."
    )
    add_time = models.DateTimeField()
    update_time = models.DateTimeField()

    class Meta:
        ordering = ["pipeline_id", "order_nr", "id"]

    def __str__(self):
        return f"{self.pipeline}: {self.name}"


class Entity(models.TextChoices):
    ORGANIZATION = "organization", "Organization"
    PERSON = "person", "Person"
    DEAL = "deal", "Deal"


class CustomField(models.Model):
    """A custom field of organizations, persons or deals, keyed by a 40-hex-character code."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="custom_fields")
    entity = models.CharField(max_length=20, choices=Entity.choices)
    field_code = models.CharField(max_length=40)
    field_name = models.CharField(max_length=200)
    field_type = models.CharField(max_length=30)
    description = models.TextField(blank=True, help_text="Deal fields only; empty reads back as null.")
    options = models.JSONField(null=True, blank=True, help_text="[{id, label}] for enum and set fields.")
    namespaces = models.JSONField(
        default=dict,
        blank=True,
        help_text="ui_visibility, important_fields, required_fields as added (answered on include_fields).",
    )
    add_time = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "entity", "field_code"], name="sandbox_pd_field_key")
        ]

    def __str__(self):
        return f"{self.entity}.{self.field_name} ({self.field_type})"


class CrmRecord(models.Model):
    """Common columns of organizations, persons and deals.

    ``attributes`` keeps the other documented fields as sent (address, emails, value …);
    ``custom_fields`` maps field codes to values.
    """

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    attributes = models.JSONField(default=dict, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    is_deleted = models.BooleanField(default=False)
    add_time = models.DateTimeField()
    update_time = models.DateTimeField()

    class Meta:
        abstract = True


class Organization(CrmRecord):
    """An organization (a Xero contact becomes one)."""

    name = models.CharField(max_length=255)

    def __str__(self):
        return self.name


class Person(CrmRecord):
    """A person, optionally of an organization."""

    name = models.CharField(max_length=255)
    org = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name_plural = "persons"

    def __str__(self):
        return self.name


class Deal(CrmRecord):
    """A deal in a pipeline stage (a Xero invoice becomes one)."""

    title = models.CharField(max_length=255)
    stage = models.ForeignKey(
        Stage, on_delete=models.RESTRICT, related_name="+"
    )  # deleting a company takes its deals too
    person = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    org = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, default="open")

    def __str__(self):
        return self.title


class Note(models.Model):
    """A note (v1 only) attached to a deal, person or organization."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="notes")
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    content = models.TextField()
    deal = models.ForeignKey(Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    person = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    org = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    add_time = models.DateTimeField()
    update_time = models.DateTimeField()

    def __str__(self):
        return self.content[:60]


class Webhook(models.Model):
    """A webhook subscription (v1 endpoint), delivering v1 or v2 payloads with HTTP Basic auth."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="webhooks")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    subscription_url = models.URLField(max_length=500)
    event_action = models.CharField(max_length=10)
    event_object = models.CharField(max_length=20)
    version = models.CharField(max_length=3, default="2.0")
    http_auth_user = models.CharField(max_length=200, blank=True)
    http_auth_password = models.CharField(max_length=200, blank=True)
    type = models.CharField(max_length=20, default="general")
    add_time = models.DateTimeField()

    def __str__(self):
        return f"{self.event_action}.{self.event_object} -> {self.subscription_url}"


class PanelExtension(models.Model):
    """A JSON panel an app registered in Developer Hub (App extensions → JSON panel): its name, the API
    endpoint Pipedrive calls to draw it, the JWT secret it signs each call with, the JSON schema
    uploaded for it and the detail views it shows on. Registered only by a staff member (the admin)
    or a ``X-Sandbox-Token`` caller (``/sandbox/pipedrive/_panels``); the sandbox calls no other URL."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="panels")
    name = models.CharField(max_length=30)
    endpoint_url = models.URLField(max_length=500, help_text="The panel's API endpoint (GET).")
    jwt_secret = models.CharField(max_length=200, help_text="Signs the token sent with each request.")
    schema = models.JSONField(default=dict, blank=True, help_text="The panel's JSON data structure.")
    on_organization = models.BooleanField(default=True, help_text="Shown on organization detail views.")
    on_deal = models.BooleanField(default=True, help_text="Shown on deal detail views.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "JSON panel"

    def __str__(self):
        return self.name


class Activity(models.Model):
    """An activity (v2 ``/activities``): a call, meeting, task … with a due date, for one user, linked
    to a deal, a person and an organization. ``attributes`` keeps the other documented fields as sent
    (location, participants, attendees, priority …)."""

    TYPES = ("call", "meeting", "task", "deadline", "email", "lunch")  # a new company's activity types

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="activities")
    owner = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    creator = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    subject = models.CharField(max_length=255)
    type = models.CharField(max_length=30, default="task")
    due_date = models.DateField(null=True, blank=True)
    due_time = models.CharField(max_length=5, blank=True, help_text="HH:MM, empty for all day.")
    duration = models.CharField(max_length=5, blank=True, help_text="HH:MM.")
    done = models.BooleanField(default=False)
    marked_as_done_time = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    deal = models.ForeignKey(Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    person = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    org = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    attributes = models.JSONField(default=dict, blank=True)
    is_deleted = models.BooleanField(default=False)
    add_time = models.DateTimeField()
    update_time = models.DateTimeField()

    class Meta:
        verbose_name_plural = "activities"

    def __str__(self):
        return self.subject
