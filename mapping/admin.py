"""Admin for the mapping rows finance staff edit: field mappings (validated against Xero's record shape
and the pair's live Pipedrive fields), stage mappings, credit limits, and the Pipedrive setup/preview page.

Pipedrive calls go through connector.pipedrive_setup; a failing call becomes a form error, never a 500.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from connector import pipedrive_setup
from connector.errors import ConnectorError
from connector.models import SyncPair
from connector.sync import credit
from mapping.choices import InvoiceStatus, PaymentState
from mapping.fields import STANDARD_FIELDS, is_custom_field_key
from mapping.models import CreditLimit, FieldMapping, RecordLink, StageMapping, Target
from mapping.rules import validate_field, validate_options, validate_source_path

TRANSFORM_HELP = (
    "text: the value as text (trimmed to 255 characters, 65 000 for long-text fields). "
    "number: a number (option decimals). "
    'money: {"value", "currency"} for monetary fields; currency from option currency, option currency_path, '
    "or the record's CurrencyCode / DefaultCurrency. "
    "date: YYYY-MM-DD from Xero's /Date()/ or ISO dates. "
    'lookup: option table {"Xero value": "Pipedrive value"} and optional default. '
    'join: the non-empty values of option sources (a list of paths) joined with option separator (", "). '
    "first_non_empty: the first non-empty value among option sources. "
    "Any transform: option clear_when_empty true sends an empty value to Pipedrive (clears the field)."
)


def _pair_from(form, data_key="pair"):
    """The sync pair the form is about: posted value, else the row's, else ?pair= in the URL."""
    raw = form.data.get(data_key) if form.is_bound else None
    if raw is None:
        raw = getattr(form.instance, f"{data_key}_id", None) or form.initial.get(data_key)
    try:
        return (
            SyncPair.objects.filter(pk=int(raw)).select_related("pipedrive_connection").first()
            if raw
            else None
        )
    except (TypeError, ValueError):
        return None


def fetch_live_fields(pair, target):
    """The live field list, or the reason Pipedrive could not give it (a string for the form error)."""
    try:
        return pipedrive_setup.live_fields(pair, target)
    except ConnectorError as exc:
        return f"Could not read the {target} fields of Pipedrive for {pair}: {exc}"


def _requested_pair_and_target(request, obj):
    source = request.POST if request.method == "POST" else request.GET
    raw_pair = source.get("pair") or (obj.pair_id if obj else None)
    target = source.get("target") or getattr(obj, "target", None)  # stage mappings have none
    try:
        pair = SyncPair.objects.filter(pk=int(raw_pair)).first() if raw_pair else None
    except (TypeError, ValueError):
        pair = None
    return pair, target if target in STANDARD_FIELDS else None


class FieldMappingForm(forms.ModelForm):
    """Edits one rule; the Pipedrive field is picked from the pair's live list (by name, stored by key)."""

    class Meta:
        model = FieldMapping
        fields = [
            "pair",
            "target",
            "source_path",
            "pipedrive_field",
            "transform",
            "transform_options",
            "enabled",
            "order",
        ]
        help_texts = {"transform": TRANSFORM_HELP}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.live_error = None
        self._live = {}
        pair = _pair_from(self)
        target = (self.data.get("target") if self.is_bound else None) or self.instance.target
        target = target or self.initial.get("target")
        choices = [("", "---------")]
        if target in STANDARD_FIELDS:
            if pair is None:
                choices += [(k, f"{name} ({k})") for k, (name, _) in STANDARD_FIELDS[target].items()]
            else:
                live = self.live_fields(pair, target)
                if live is not None:
                    choices += [(f["key"], f"{f['name']} ({f['field_type']})") for f in live]
        current = self.instance.pipedrive_field
        if current and current not in dict(choices):
            choices.append((current, self.instance.pipedrive_field_name or current))
        if len(choices) > 1:
            self.fields["pipedrive_field"].widget = forms.Select(choices=choices)
        self.fields["pipedrive_field"].help_text = (
            "Choose a sync pair and target, then save and continue, to pick from the pair's live Pipedrive "
            "fields. Default rows (no pair) may only target standard fields."
        )

    prefetched: dict = {}  # set per request by the admin: fetched before its transaction opens

    def live_fields(self, pair, target):
        """The pair's live fields, or None (with the reason kept for clean()) when Pipedrive fails."""
        if (pair.pk, target) not in self._live:
            result = self.prefetched.get((pair.pk, target))
            if result is None:
                result = fetch_live_fields(pair, target)
            if isinstance(result, str):
                self.live_error, result = result, None
            self._live[(pair.pk, target)] = result
        return self._live[(pair.pk, target)]

    def clean(self):
        data = super().clean()
        target, source = data.get("target"), (data.get("source_path") or "").strip()
        transform, options = data.get("transform"), data.get("transform_options")
        key = (data.get("pipedrive_field") or "").strip()
        if not target or not transform:
            return data
        options = {} if options in (None, "") else options
        try:
            validate_options(transform, options)
        except ValidationError as exc:
            self.add_error("transform_options", exc)
            return data
        paths = [
            source,
            *((options.get("sources") or []) if transform in ("join", "first_non_empty") else []),
        ]
        for item in paths:
            try:
                validate_source_path(target, item)
            except ValidationError as exc:
                self.add_error("source_path" if item == source else "transform_options", exc)
        pair = data.get("pair")
        live = None
        if pair is not None:
            live = self.live_fields(pair, target)
            if live is None:
                raise ValidationError(self.live_error)
        try:
            field = validate_field(target, key, transform, live)
        except ValidationError as exc:
            self.add_error("pipedrive_field", exc)
            return data
        data["source_path"], data["pipedrive_field"] = source, key
        self.instance.pipedrive_field_name = field["name"]
        options = {k: v for k, v in options.items() if k != "field_type"}
        if is_custom_field_key(key):
            options["field_type"] = field["field_type"]  # the engine's limits and shapes follow it
        data["transform_options"] = options
        return data


@admin.register(FieldMapping)
class FieldMappingAdmin(admin.ModelAdmin):
    form = FieldMappingForm
    list_display = ["target", "source_path", "field_label", "transform", "pair_label", "enabled", "order"]
    list_filter = ["target", "pair", "enabled", "transform"]
    list_editable = ["enabled", "order"]
    search_fields = ["source_path", "pipedrive_field", "pipedrive_field_name"]
    actions = ["preview_mapping"]
    change_list_template = "admin/mapping/fieldmapping/change_list.html"

    @admin.display(description="Pipedrive field")
    def field_label(self, obj):
        return obj.pipedrive_field_name or obj.pipedrive_field

    @admin.display(description="Sync pair")
    def pair_label(self, obj):
        return obj.pair or "(default)"

    @admin.action(description="Preview mapping for the selected rows' sync pair")
    def preview_mapping(self, request, queryset):
        pair_id = next((row.pair_id for row in queryset if row.pair_id), None)
        url = reverse("admin:mapping_fieldmapping_setup")
        return HttpResponseRedirect(f"{url}?pair={pair_id}" if pair_id else url)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Read Pipedrive before the admin opens its transaction: no database transaction (and, on
        # SQLite, no write lock) is held across an HTTP call.
        obj = (
            self.model.objects.filter(pk=object_id).first()
            if object_id and str(object_id).isdigit()
            else None
        )
        pair, target = _requested_pair_and_target(request, obj)
        request._mapping_live = (
            {(pair.pk, target): fetch_live_fields(pair, target)} if pair and target else {}
        )
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.prefetched = getattr(request, "_mapping_live", {})
        return form

    def get_urls(self):
        view = self.admin_site.admin_view(self.setup_view)
        return [path("setup/", view, name="mapping_fieldmapping_setup"), *super().get_urls()]

    def setup_view(self, request):
        """Pipedrive setup and preview for one sync pair: create recommended fields, the invoice pipeline,
        and show what a Xero contact/invoice maps to (nothing is written to Pipedrive by a preview)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        pairs = list(SyncPair.objects.select_related("xero_connection", "pipedrive_connection"))
        source = request.POST if request.method == "POST" else request.GET
        pair = next(
            (p for p in pairs if str(p.pk) == source.get("pair")), pairs[0] if len(pairs) == 1 else None
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Pipedrive setup and mapping preview",
            "opts": self.model._meta,
            "pairs": pairs,
            "pair": pair,
            "contact_id": source.get("contact_id", "").strip(),
            "invoice_id": source.get("invoice_id", "").strip(),
        }
        if request.method == "POST" and pair is not None:
            if not self.has_change_permission(request):
                raise PermissionDenied
            action = request.POST.get("action")
            try:
                if action == "recommended_fields":
                    created = pipedrive_setup.create_recommended_fields(pair)
                    messages.success(
                        request,
                        f"Created {len(created)} field(s): {', '.join(created)}"
                        if created
                        else "Every recommended field already exists; the pair's rules are in place.",
                    )
                elif action == "invoice_pipeline":
                    result = pipedrive_setup.create_invoice_pipeline(pair)
                    messages.success(
                        request,
                        f"Pipeline ready ({len(result['created'])} created); "
                        f"{result['mapped']} stage mapping(s) point at it.",
                    )
            except ConnectorError as exc:
                messages.error(request, f"Pipedrive refused or failed: {exc}")
            return HttpResponseRedirect(f"{request.path}?pair={pair.pk}")
        if pair is not None and (context["contact_id"] or context["invoice_id"]):
            try:
                result = pipedrive_setup.preview(
                    pair, contact_id=context["contact_id"], invoice_id=context["invoice_id"]
                )
                context["preview"] = _preview_rows(result)
            except ConnectorError as exc:
                context["error"] = f"Xero could not give that record: {exc}"
        elif pair is not None and source.get("list_contacts"):
            try:
                context["contacts"] = pipedrive_setup.recent_contacts(pair)
            except ConnectorError as exc:
                context["error"] = f"Xero could not list contacts: {exc}"
        return TemplateResponse(request, "admin/mapping/setup.html", context)


def _pretty(payload) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _preview_rows(result: dict) -> list[dict]:
    rows = []
    if "organization" in result:
        org = result["organization"]
        rows.append({"title": "Organization", "json": _pretty(org.payload), "fields": org.fields_mapped})
        for key, person in result["persons"]:
            rows.append(
                {"title": f"Person {key}", "json": _pretty(person.payload), "fields": person.fields_mapped}
            )
    if "deal" in result:
        deal, stage = result["deal"], result.get("stage")
        stage_text = (
            f"{stage} (status: {stage.deal_status or 'unchanged'})" if stage else "no stage rule applies"
        )
        state = result.get("payment_state") or "none"
        rows.append(
            {
                "title": f"Deal (payment state: {state}; stage: {stage_text})",
                "json": _pretty(deal.payload),
                "fields": deal.fields_mapped,
            }
        )
    return rows


class StageMappingForm(forms.ModelForm):
    """Pipeline and stage picked from the pair's live list; names are stored beside the ids."""

    prefetched: dict = {}  # pair pk -> live stages (or the error), read before the admin's transaction

    live_stage = forms.ChoiceField(
        required=False,
        label="Pipedrive stage",
        help_text="From the pair's live pipelines (sets ids and names).",
    )

    class Meta:
        model = StageMapping
        fields = [
            "pair",
            "kind",
            "xero_value",
            "live_stage",
            "pipeline_id",
            "pipeline_name",
            "stage_id",
            "stage_name",
            "deal_status",
            "lost_reason",
            "enabled",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stages = {}
        pair = _pair_from(self)
        choices = [("", "(keep the values below)")]
        if pair is not None:
            try:
                live = self.prefetched.get(pair.pk)
                if live is None:
                    live = pipedrive_setup.live_stages(pair)
                if isinstance(live, ConnectorError):
                    raise live
                for s in live:
                    self.stages[f"{s['pipeline_id']}:{s['stage_id']}"] = s
                    choices.append(
                        (f"{s['pipeline_id']}:{s['stage_id']}", f"{s['pipeline_name']} / {s['stage_name']}")
                    )
            except ConnectorError as exc:
                self.fields["live_stage"].help_text = f"Could not read Pipedrive's pipelines: {exc}"
        self.fields["live_stage"].choices = choices
        if self.instance.pipeline_id and self.instance.stage_id:
            self.initial.setdefault("live_stage", f"{self.instance.pipeline_id}:{self.instance.stage_id}")

    def clean(self):
        data = super().clean()
        value = (data.get("xero_value") or "").strip().upper()
        allowed = {
            StageMapping.Kind.INVOICE_STATUS: InvoiceStatus.values,
            StageMapping.Kind.PAYMENT_STATE: PaymentState.values,
        }.get(data.get("kind"), [])
        if data.get("kind") and value not in allowed:
            self.add_error(
                "xero_value", f"{value!r} is not a {data['kind']} value; use one of {', '.join(allowed)}."
            )
        data["xero_value"] = value
        chosen = self.stages.get(data.get("live_stage") or "")
        if chosen:
            for name in ("pipeline_id", "pipeline_name", "stage_id", "stage_name"):
                data[name] = chosen[name]
                setattr(self.instance, name, chosen[name])
        if data.get("deal_status") != StageMapping.DealStatus.LOST and data.get("lost_reason"):
            self.add_error("lost_reason", "A lost reason applies only when the deal status is Lost.")
        return data


@admin.register(StageMapping)
class StageMappingAdmin(admin.ModelAdmin):
    form = StageMappingForm
    list_display = [
        "kind",
        "xero_value",
        "pipeline_name",
        "stage_name",
        "deal_status",
        "pair_label",
        "enabled",
    ]
    list_filter = ["kind", "pair", "enabled"]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        obj = (
            self.model.objects.filter(pk=object_id).first()
            if object_id and str(object_id).isdigit()
            else None
        )
        pair, _ = _requested_pair_and_target(request, obj)
        request._mapping_stages = {}
        if pair is not None:
            try:
                request._mapping_stages[pair.pk] = pipedrive_setup.live_stages(pair)
            except ConnectorError as exc:
                request._mapping_stages[pair.pk] = exc
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.prefetched = getattr(request, "_mapping_stages", {})
        return form

    @admin.display(description="Sync pair")
    def pair_label(self, obj):
        return obj.pair or "(default)"


@admin.register(CreditLimit)
class CreditLimitAdmin(admin.ModelAdmin):
    list_display = ["__str__", "pair", "contact_id", "contact_name", "contact_group", "amount", "currency"]
    list_editable = ["amount", "currency"]
    list_filter = ["pair"]
    search_fields = ["contact_id", "contact_name", "contact_group"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.base_fields[
            "contact_id"
        ].help_text = "Xero ContactID. Leave contact and group blank for the pair's default limit."
        return form

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # The re-check itself is queued by a signal on every save or delete (connector.signals).
        contacts = credit.contacts_under_limit(obj)
        if contacts:
            messages.info(
                request,
                f"Credit re-check queued for {len(contacts)} contact(s): their organizations' available "
                "credit and their open deals' flags follow the new limit shortly (see Sync records).",
            )


@admin.register(RecordLink)
class RecordLinkAdmin(admin.ModelAdmin):
    list_display = [
        "xero_type",
        "xero_id",
        "pipedrive_type",
        "pipedrive_id",
        "state",
        "last_synced_at",
        "pair",
    ]
    list_filter = ["pair", "xero_type", "pipedrive_type", "state"]
    search_fields = ["xero_id"]
    readonly_fields = ["payload_hash", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        # A link pointed at another Pipedrive record by hand: the next sync must write it in full.
        if {"pipedrive_id", "pipedrive_type", "state"} & set(form.changed_data):
            obj.payload_hash = ""
        super().save_model(request, obj, form, change)


__all__ = ["CreditLimitAdmin", "FieldMappingAdmin", "StageMappingAdmin", "Target"]
