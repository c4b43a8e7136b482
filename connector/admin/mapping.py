"""Admin for the mapping rows finance staff edit (registered for mapping's models from connector, the app
that owns the Pipedrive calls): field mappings (validated against Xero's record shape
and the pair's live Pipedrive fields), stage mappings, credit limits, and the Pipedrive setup/preview page.

Pipedrive calls go through connector.setup.pipedrive_fields; a failing call becomes a form error, never a 500.
"""

import json
from typing import cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from connector.errors import ConnectorError
from connector.models import SyncPair
from connector.setup import pipedrive_fields as pipedrive_setup
from connector.sync import credit
from mapping.fields import COMPATIBLE_TYPES, STANDARD_FIELDS
from mapping.forms import (
    ALL_OPTION_FIELDS,
    OPTION_FIELDS,
    TRANSFORM_DESCRIPTIONS,
    FieldMappingForm,
    StageMappingForm,
    pipedrive_field_groups,
    rule_summary,
)
from mapping.models import CreditLimit, FieldMapping, StageMapping
from mapping.source_labels import source_choices


def fetch_live_fields(pair, target):
    """The live field list, or the reason Pipedrive could not give it (a string for the form error)."""
    try:
        return pipedrive_setup.live_fields(pair, target)
    except ConnectorError as exc:
        return f"Could not read the {target} fields of Pipedrive for {pair}: {exc}"


def fetch_live_stages(pair):
    """The live stages, or the reason Pipedrive could not give them (a string for the form)."""
    try:
        return pipedrive_setup.live_stages(pair)
    except ConnectorError as exc:
        return str(exc)


def _requested_pair_and_target(request, obj):
    source = request.POST if request.method == "POST" else request.GET
    raw_pair = source.get("pair") or (obj.pair_id if obj else None)
    target = source.get("target") or getattr(obj, "target", None)  # stage mappings have none
    try:
        pair = SyncPair.objects.filter(pk=int(raw_pair)).first() if raw_pair else None
    except (TypeError, ValueError):
        pair = None
    return pair, target if target in STANDARD_FIELDS else None


@admin.register(FieldMapping)
class FieldMappingAdmin(admin.ModelAdmin):
    form = FieldMappingForm
    list_display = ["rule", "target", "transform", "pair_label", "enabled", "order"]
    list_filter = ["target", "pair", "enabled", "transform"]
    list_editable = ["enabled", "order"]
    search_fields = ["source_path", "pipedrive_field", "pipedrive_field_name"]
    actions = ["preview_mapping"]
    change_list_template = "admin/mapping/fieldmapping/change_list.html"
    change_form_template = "admin/mapping/fieldmapping/change_form.html"
    fieldsets = [
        ("Which records", {"fields": ["pair", "target"]}),
        ("From Xero", {"fields": ["source_path", "other_source_path"]}),
        ("To Pipedrive", {"fields": ["pipedrive_field"]}),
        (
            "How the value is turned into the Pipedrive value",
            {"fields": ["transform", *ALL_OPTION_FIELDS]},
        ),
        ("Row", {"fields": ["enabled", "order"]}),
    ]

    @admin.display(description="Rule", ordering="source_path")
    def rule(self, obj):
        return rule_summary(obj)

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
        self._prefetch(request, obj)
        extra_context = {
            **(extra_context or {}),
            "editor": {
                "option_fields": OPTION_FIELDS,
                "descriptions": TRANSFORM_DESCRIPTIONS,
                "choices_url": reverse("admin:mapping_fieldmapping_choices"),
                "check_url": reverse("admin:mapping_fieldmapping_check"),
                "records_url": reverse("admin:mapping_fieldmapping_records"),
                "object_id": obj.pk if obj else None,
            },
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _prefetch(self, request, obj):
        pair, target = _requested_pair_and_target(request, obj)
        request._mapping_live = (
            {(pair.pk, target): fetch_live_fields(pair, target)} if pair and target else {}
        )
        return pair, target

    def get_form(self, request, obj=None, change=False, **kwargs):
        # self.form is FieldMappingForm, so the class built from it is one too.
        form = cast(type[FieldMappingForm], super().get_form(request, obj, change=change, **kwargs))
        form.prefetched = getattr(request, "_mapping_live", {})
        form.live_fields_for = staticmethod(fetch_live_fields)
        return form

    # --- the editor's JSON endpoints ------------------------------------------------------------------
    def choices_view(self, request):
        """The pick-lists for a pair and target: labelled Xero fields, the pair's live Pipedrive fields
        with their types, and which field types each transform can fill."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        pair, target = _requested_pair_and_target(request, None)
        if target is None:
            return JsonResponse({"error": "Choose the target first."}, status=400)
        live = fetch_live_fields(pair, target) if pair else None
        fields = [
            {
                "key": f["key"],
                "name": f["name"],
                "field_type": f["field_type"],
                "is_custom": f.get("is_custom"),
                "options": f.get("options") or [],
            }
            for f in (live if isinstance(live, list) else [])
        ]
        if pair is None:
            fields = [
                {"key": k, "name": name, "field_type": kind, "is_custom": False}
                for k, (name, kind) in STANDARD_FIELDS[target].items()
            ]
        return JsonResponse(
            {
                "sources": [
                    {"group": group, "options": [list(option) for option in options]}
                    for group, options in source_choices(target)
                ],
                "fields": fields,
                "field_groups": [
                    {"group": group, "options": [list(option) for option in options]}
                    for group, options in pipedrive_field_groups(
                        target, live if isinstance(live, list) else None
                    )
                ],
                "error": live if isinstance(live, str) else None,
                "compatible": {t: sorted(types) for t, types in COMPATIBLE_TYPES.items()},
            }
        )

    def check_view(self, request):
        """Validates the row as it stands on the page (nothing is saved) and, given a Xero record id,
        previews the value the row would give for it (Xero is read, nothing is written)."""
        if request.method != "POST":
            return JsonResponse({"error": "POST the row's form."}, status=405)
        raw_id = request.POST.get("object_id") or ""
        obj = self.model.objects.filter(pk=int(raw_id)).first() if raw_id.isdigit() else None
        if not (self.has_change_permission(request, obj) if obj else self.has_add_permission(request)):
            raise PermissionDenied
        pair, _ = self._prefetch(request, obj)
        form_class = self.get_form(request, obj, change=obj is not None, fields=None)
        form = form_class(request.POST, instance=obj or self.model())
        if not form.is_valid():
            errors = {
                (form[name].label if name in form.fields else "Row"): [str(m) for m in messages_]
                for name, messages_ in form.errors.items()
            }
            return JsonResponse({"ok": False, "errors": errors})
        answer = {"ok": True, "summary": rule_summary(form.instance)}
        record_id = (request.POST.get("record_id") or "").strip()
        if record_id and pair is None:
            answer["preview_error"] = "Choose a sync pair: the preview reads that pair's Xero organisation."
        elif record_id:
            try:
                result = pipedrive_setup.preview_rule(pair, form.instance, record_id=record_id)
            except ConnectorError as exc:
                answer["preview_error"] = f"Xero could not give that record: {exc}"
            else:
                answer["preview"] = {
                    "record": result["record"],
                    "value": result["value"],
                    "text": _preview_text(result),
                }
        return JsonResponse(answer, json_dumps_params={"default": str})

    def records_view(self, request):
        """A few recent Xero contacts (organization and person rules) or invoices (deal rules) of the
        pair, to preview a row against (one Xero call)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        pair, target = _requested_pair_and_target(request, None)
        if pair is None or target is None:
            return JsonResponse({"records": [], "error": "Choose a sync pair and a target."})
        try:
            if target == "deal":
                records = pipedrive_setup.recent_invoices(pair)
            else:
                records = pipedrive_setup.recent_contacts(pair)
        except ConnectorError as exc:
            return JsonResponse({"records": [], "error": f"Xero could not list records: {exc}"})
        return JsonResponse({"records": records, "error": None})

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("setup/", view(self.setup_view), name="mapping_fieldmapping_setup"),
            path("choices/", view(self.choices_view), name="mapping_fieldmapping_choices"),
            path("check/", view(self.check_view), name="mapping_fieldmapping_check"),
            path("records/", view(self.records_view), name="mapping_fieldmapping_records"),
            *super().get_urls(),
        ]

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


def _preview_text(result: dict) -> str:
    value = result["value"]
    if not result["sent"]:
        return "No value: the Pipedrive field is left as it is."
    if value is None:
        return "Empty in Xero: the Pipedrive field is cleared."
    return json.dumps(value, ensure_ascii=False, default=str)


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
    # The fields and their order are the form's (StageMappingForm.Meta.fields).

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        obj = (
            self.model.objects.filter(pk=object_id).first()
            if object_id and str(object_id).isdigit()
            else None
        )
        pair, _ = _requested_pair_and_target(request, obj)
        request._mapping_stages = {pair.pk: fetch_live_stages(pair)} if pair is not None else {}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        # self.form is StageMappingForm, so the class built from it is one too.
        form = cast(type[StageMappingForm], super().get_form(request, obj, change=change, **kwargs))
        form.prefetched = getattr(request, "_mapping_stages", {})
        form.live_stages_for = staticmethod(fetch_live_stages)
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

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields[
            "contact_id"
        ].help_text = "Xero ContactID. Leave contact and group blank for the pair's default limit."
        return form

    def save_model(self, request, obj, form, change):
        obj.changed_by = request.user.get_username()  # the re-check's records name who changed it
        super().save_model(request, obj, form, change)
        # The re-check itself is queued by a signal on every save or delete (connector.signals).
        contacts = credit.contacts_under_limit(obj)
        if contacts:
            messages.info(
                request,
                f"Credit re-check queued for {len(contacts)} contact(s): their organizations' available "
                "credit and their open deals' flags follow the new limit shortly (see Sync records).",
            )

    def delete_model(self, request, obj):
        obj.changed_by = request.user.get_username()
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        # One by one, so that each row's re-check names the user (a queryset delete loads fresh rows).
        for obj in queryset:
            self.delete_model(request, obj)


__all__ = ["CreditLimitAdmin", "FieldMappingAdmin", "StageMappingAdmin"]
