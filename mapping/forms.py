"""The forms finance staff edit mapping rows with: pick-lists instead of typed paths and keys, the
transform's options as form fields instead of JSON, and every invalid combination explained before saving.

Pure with respect to the outside world: the pair's live Pipedrive fields and stages are given to the
forms by whoever shows them (the admin in connector reads them from Pipedrive), as a list or as the
reason they could not be read.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join

from mapping.choices import DueState, InvoiceStatus, PaymentState
from mapping.fields import STANDARD_FIELDS, is_custom_field_key
from mapping.models import FieldMapping, StageMapping, Transform
from mapping.rules import validate_field, validate_options, validate_source_path
from mapping.source_labels import source_choices, source_label

# Which option fields belong to which transform (the page shows only the chosen transform's).
# Keyed by Transform; looked up with the form's plain str value (Transform is a str enum).
OPTION_FIELDS: dict[str, list[str]] = {
    Transform.TEXT: ["max_length", "clear_when_empty"],
    Transform.NUMBER: ["decimals", "clear_when_empty"],
    Transform.MONEY: ["decimals", "currency", "currency_path", "clear_when_empty"],
    Transform.DATE: ["clear_when_empty"],
    Transform.LOOKUP: ["table", "default", "clear_when_empty"],
    Transform.JOIN: ["sources", "separator", "max_length", "clear_when_empty"],
    Transform.FIRST_NON_EMPTY: ["sources", "clear_when_empty"],
}
ALL_OPTION_FIELDS = ["sources", "separator", "table", "default", "max_length", "decimals", "currency"]
ALL_OPTION_FIELDS += ["currency_path", "clear_when_empty"]

TRANSFORM_DESCRIPTIONS = {
    Transform.TEXT: "The value as text (an address becomes one line), trimmed to the field's length.",
    Transform.NUMBER: "A number, for numeric fields; optionally rounded.",
    Transform.MONEY: "An amount with its currency, for monetary fields (the currency of the invoice or "
    "the customer unless you fix one).",
    Transform.DATE: "A date (YYYY-MM-DD), for date fields.",
    Transform.LOOKUP: "Translates Xero values to Pipedrive values with the table below (exact match "
    "first, then ignoring capitals); anything else becomes the default.",
    Transform.JOIN: "The non-empty values of several Xero fields joined into one text.",
    Transform.FIRST_NON_EMPTY: "The first of several Xero fields that has a value.",
}

# Pipedrive field types whose values are option ids (a lookup translates to one of the field's options).
OPTION_TYPES = {"enum", "set"}
NUMBER_TYPES = {"double", "int"}


def _options_html(choices, selected) -> str:
    """<option>s (and <optgroup>s) for grouped choices, ``selected`` marked."""

    def one(value, label):
        return format_html(
            '<option value="{}"{}>{}</option>', value, " selected" if value == selected else "", label
        )

    parts = []
    for value, label in choices:
        if isinstance(label, list | tuple):
            inner = format_html_join("", "{}", ((one(v, text),) for v, text in label))
            parts.append(format_html('<optgroup label="{}">{}</optgroup>', value, inner))
        else:
            parts.append(one(value, label))
    return format_html_join("", "{}", ((p,) for p in parts))


def _with_current(choices: list, current: str, label: str) -> list:
    """The choices plus ``current`` (a value typed by hand or no longer offered), so it stays selected."""
    flat = {
        v for v, text in choices for v in ([v for v, _ in text] if isinstance(text, list | tuple) else [v])
    }
    if current and current not in flat:
        choices = [*choices, (label, [(current, current)])]
    return choices


class FilterableSelect(forms.Select):
    """A select with a filter box above it (the page's script hides the options that do not match)."""

    def render(self, name, value, attrs=None, renderer=None):
        select = super().render(name, value, attrs, renderer)
        box_id = f"{(attrs or {}).get('id') or name}_filter"
        return format_html(
            '<div class="mapping-widget"><input type="search" class="mapping-filter" id="{}" '
            'data-filter-for="{}" placeholder="Type to filter the list…" aria-label="Filter the list">'
            "{}</div>",
            box_id,
            (attrs or {}).get("id") or name,
            select,
        )


class SourceListWidget(forms.Widget):
    """Several source pick-lists under one name, in order (the page's script adds more rows)."""

    extra = 2

    def __init__(self, attrs=None, choices=()):
        super().__init__(attrs)
        self.choices = list(choices)

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else data.get(name) or []
        return [v for v in values if isinstance(v, str)]

    def render(self, name, value, attrs=None, renderer=None):
        values = [v for v in (value or []) if v]
        rows = []
        for current in [*values, *([""] * self.extra)]:
            choices = _with_current([("", "---------"), *self.choices], current, "Typed path")
            rows.append(
                format_html(
                    '<li><select name="{}" class="mapping-source">{}</select></li>',
                    name,
                    _options_html(choices, current),
                )
            )
        element_id = (attrs or {}).get("id") or name
        return format_html(
            '<div class="mapping-widget"><ol class="source-list" id="{}">{}</ol>'
            '<button type="button" class="button add-source" data-list="{}">Add another source</button>'
            "</div>",
            element_id,
            format_html_join("", "{}", ((r,) for r in rows)),
            element_id,
        )


class SourceListField(forms.Field):
    widget = SourceListWidget

    def to_python(self, value):
        return [v.strip() for v in value or [] if v and v.strip()]


class LookupTableWidget(forms.Widget):
    """Rows of "Xero value → Pipedrive value"; the Pipedrive side is a pick-list for option fields."""

    extra = 3

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.value_choices: list[tuple[str, str]] = []  # a Pipedrive option field's (id, label)

    def value_from_datadict(self, data, files, name):
        getlist = data.getlist if hasattr(data, "getlist") else lambda key: data.get(key) or []
        return list(zip(getlist(f"{name}_from"), getlist(f"{name}_to"), strict=False))

    def _to_input(self, name, current):
        if not self.value_choices:
            return format_html('<input type="text" name="{}_to" value="{}">', name, current)
        choices = _with_current([("", "---------"), *self.value_choices], str(current), "Not an option")
        return format_html('<select name="{}_to">{}</select>', name, _options_html(choices, str(current)))

    def render(self, name, value, attrs=None, renderer=None):
        rows = [(str(k), "" if v is None else str(v)) for k, v in (value or []) if str(k).strip()]
        rows += [("", "")] * self.extra
        body = format_html_join(
            "",
            '<tr><td><input type="text" name="{}_from" value="{}"></td><td>{}</td></tr>',
            ((name, key, self._to_input(name, to)) for key, to in rows),
        )
        element_id = (attrs or {}).get("id") or name
        return format_html(
            '<div class="mapping-widget"><table class="lookup-table" id="{}"><thead><tr><th>Xero value</th>'
            "<th>Pipedrive value</th></tr></thead><tbody>{}</tbody></table>"
            '<button type="button" class="button add-lookup-row" data-table="{}">Add a row</button></div>',
            element_id,
            body,
            element_id,
        )


class LookupTableField(forms.Field):
    widget = LookupTableWidget

    def to_python(self, value):
        rows = [((k or "").strip(), (v or "").strip()) for k, v in value or []]
        return [(k, v) for k, v in rows if k or v]

    def validate(self, value):
        super().validate(value)
        seen = set()
        for key, to in value:
            if not key:
                raise ValidationError(f"The row turning into {to!r} has no Xero value: type the Xero value.")
            if key.casefold() in seen:
                raise ValidationError(f"The Xero value {key!r} is in the table twice: keep one row.")
            seen.add(key.casefold())


def pipedrive_field_groups(target: str, live: list[dict] | None) -> list:
    """The Pipedrive fields a rule may fill, grouped: standard, custom, then Pipedrive's other fields."""
    if live is None:
        standard = [(k, f"{name} ({kind})") for k, (name, kind) in STANDARD_FIELDS[target].items()]
        return [("Standard fields", standard)]
    groups: dict[str, list] = {"Standard fields": [], "Custom fields": [], "Other Pipedrive fields": []}
    for field in live:
        label = f"{field['name']} ({field['field_type']})"
        if field["key"] in STANDARD_FIELDS[target]:
            groups["Standard fields"].append((field["key"], label))
        elif field.get("is_custom") or is_custom_field_key(field["key"]):
            groups["Custom fields"].append((field["key"], label))
        else:
            groups["Other Pipedrive fields"].append((field["key"], label))
    return [(name, sorted(rows, key=lambda r: r[1].casefold())) for name, rows in groups.items() if rows]


def _pair_from(form, queryset):
    """The sync pair the form is about: posted value, else the row's, else ?pair= in the URL."""
    raw = form.data.get("pair") if form.is_bound else None
    if raw is None:
        raw = getattr(form.instance, "pair_id", None) or form.initial.get("pair")
    try:
        return queryset.filter(pk=int(raw)).first() if raw else None
    except (TypeError, ValueError):
        return None


class FieldMappingForm(forms.ModelForm):
    """One rule: a Xero field (picked from the labelled list) → a Pipedrive field (picked from the pair's
    live list, stored by key), with the chosen transform's options as fields.

    ``live_fields_for(pair, target)`` gives the pair's live fields or the reason they could not be read
    (a string); ``prefetched`` holds answers read before the admin's transaction. Both are set by the
    admin that shows the form."""

    live_fields_for: Callable[..., Any] | None = None
    prefetched: dict = {}

    other_source_path = forms.CharField(
        required=False,
        label="Or type a Xero path",
        help_text="Only for a field the list does not offer, e.g. ContactPersons[1].EmailAddress "
        "(the second contact person). Wins over the list.",
    )
    sources = SourceListField(
        required=False,
        label="Xero fields to combine",
        help_text="In order. Join: their non-empty values joined; first non-empty: the first with a value.",
    )
    separator = forms.CharField(
        required=False, strip=False, initial=", ", help_text='Put between joined values (", " unless set).'
    )
    table = LookupTableField(
        required=False,
        label="Lookup table",
        help_text="Each Xero value and the Pipedrive value it becomes. For an option field pick the option.",
    )
    default = forms.CharField(
        required=False, label="Otherwise", help_text="The value when no row matches (empty: leave the field)."
    )
    max_length = forms.IntegerField(
        required=False, min_value=1, label="Trim to", help_text="Characters (empty: the field's own limit)."
    )
    decimals = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=10,
        help_text="Round to this many decimals (empty: as in Xero).",
    )
    currency = forms.CharField(
        required=False,
        max_length=3,
        label="Fixed currency",
        help_text="A three-letter code such as NZD; empty: the invoice's or the customer's currency.",
    )
    currency_path = forms.CharField(
        required=False,
        label="Currency from",
        help_text="A Xero field holding the currency (empty: CurrencyCode, then DefaultCurrency).",
    )
    clear_when_empty = forms.BooleanField(
        required=False,
        label="Clear the Pipedrive field when Xero has no value",
        help_text="Unticked: an empty Xero value leaves the Pipedrive field as it is.",
    )

    class Meta:
        model = FieldMapping
        fields = ["pair", "target", "source_path", "pipedrive_field", "transform", "enabled", "order"]
        labels = {"source_path": "Xero field", "pipedrive_field": "Pipedrive field"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.live_error: str | None = None
        self._live: dict = {}
        # "pair" is the model's ForeignKey, so its form field is a ModelChoiceField.
        pair_field = cast(forms.ModelChoiceField, self.fields["pair"]) if "pair" in self.fields else None
        self.pair = _pair_from(self, pair_field.queryset) if pair_field is not None else None
        target = (self.data.get("target") if self.is_bound else None) or self.instance.target
        self.target = target or self.initial.get("target")
        self.fields["source_path"].required = False
        self.fields["source_path"].help_text = (
            "Pick from the list (type in the box above it to filter). "
            "Choose the target first: organization and person read the Xero contact, deal the invoice."
        )
        transform = (self.data.get("transform") if self.is_bound else None) or self.instance.transform
        self.fields["transform"].help_text = TRANSFORM_DESCRIPTIONS.get(transform, "")
        options = self.instance.transform_options or {}
        for name in ALL_OPTION_FIELDS:
            if name in options and name != "table":
                self.initial.setdefault(name, options[name])
        self.initial.setdefault("table", list((options.get("table") or {}).items()))
        sources = list(source_choices(self.target)) if self.target in STANDARD_FIELDS else []
        current = self.instance.source_path
        self.fields["source_path"].widget = FilterableSelect(
            choices=_with_current([("", "---------"), *sources], current, "Typed path")
        )
        self.fields["sources"].widget.choices = sources
        self.fields["pipedrive_field"].widget = forms.Select(choices=self._pipedrive_choices())
        self.fields["pipedrive_field"].help_text = (
            "The pair's live Pipedrive fields with their types. Rows without a sync pair (the defaults) "
            "may only fill standard fields."
        )
        chosen = self._chosen_field()
        if chosen and chosen.get("field_type") in OPTION_TYPES:
            self.fields["table"].widget.value_choices = [
                (str(o.get("id")), o.get("label") or str(o.get("id"))) for o in chosen.get("options") or []
            ]

    # --- the pair's live fields ---------------------------------------------------------------------
    def live_fields(self, pair, target):
        """The pair's live fields, or None (with the reason kept for clean()) when Pipedrive fails."""
        if (pair.pk, target) not in self._live:
            result = self.prefetched.get((pair.pk, target))
            if result is None:
                reader = type(self).live_fields_for
                result = (
                    reader(pair, target) if reader else "The live Pipedrive fields are not available here."
                )
            if isinstance(result, str):
                self.live_error, result = result, None
            self._live[(pair.pk, target)] = result
        return self._live[(pair.pk, target)]

    def _pipedrive_choices(self) -> list:
        if self.target not in STANDARD_FIELDS:
            return [("", "Choose the target first")]
        live = self.live_fields(self.pair, self.target) if self.pair else None
        if self.pair and live is None:
            return _with_current(
                [("", "(Pipedrive's fields could not be read)")], self.instance.pipedrive_field, "Current"
            )
        choices = [("", "---------"), *pipedrive_field_groups(self.target, live)]
        current = self.instance.pipedrive_field
        return _with_current(choices, current, "Current")

    def _chosen_field(self) -> dict | None:
        key = (self.data.get("pipedrive_field") if self.is_bound else None) or self.instance.pipedrive_field
        if not key or not self.pair or self.target not in STANDARD_FIELDS:
            return None
        live = self.live_fields(self.pair, self.target) or []
        return next((f for f in live if f["key"] == key), None)

    # --- validation ---------------------------------------------------------------------------------
    def clean(self):
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean() returns, typed as set here
        target, transform = data.get("target"), data.get("transform")
        if not target or not transform:
            return data
        typed = (data.get("other_source_path") or "").strip()
        source_field = "other_source_path" if typed else "source_path"
        source = typed or (data.get("source_path") or "").strip()
        options = self._transform_options(transform, data)
        if transform in (Transform.JOIN, Transform.FIRST_NON_EMPTY) and options.get("sources"):
            # The engine reads the sources, not the rule's own path: keep the path the first source.
            source, source_field = options["sources"][0], "sources"
        if not source:
            self.add_error("source_path", "Choose the Xero field to read.")
        elif not self._path_ok(target, source, source_field):
            return data
        for name, paths in (
            ("sources", options.get("sources") or []),
            ("currency_path", [options.get("currency_path")]),
        ):
            for item in paths:
                if item:
                    self._path_ok(target, item, name)
        try:
            validate_options(transform, options)
        except ValidationError as exc:
            self.add_error(None, exc)
        if self.errors:
            return data
        live = None
        if data.get("pair") is not None:
            live = self.live_fields(data["pair"], target)
            if live is None:
                raise ValidationError(self.live_error or "Pipedrive's fields could not be read.")
        key = (data.get("pipedrive_field") or "").strip()
        try:
            field = validate_field(target, key, transform, live)
        except ValidationError as exc:
            self.add_error("pipedrive_field", exc)
            return data
        if transform == Transform.LOOKUP and not self._lookup_values_fit(options, field, live):
            return data
        data["source_path"], data["pipedrive_field"] = source, key
        self.instance.pipedrive_field_name = field["name"]
        if is_custom_field_key(key):
            options["field_type"] = field["field_type"]  # the engine's limits and shapes follow it
        self.instance.transform_options = options
        return data

    def _path_ok(self, target, path, field_name) -> bool:
        try:
            validate_source_path(target, path)
        except ValidationError as exc:
            self.add_error(field_name, exc)
            return False
        return True

    def _transform_options(self, transform: str, data: dict) -> dict:
        """The stored options of the chosen transform, from its fields (other transforms' are dropped)."""
        options: dict = {}
        wanted = OPTION_FIELDS.get(transform, [])
        if "sources" in wanted and data.get("sources"):
            options["sources"] = data["sources"]
        if "separator" in wanted and data.get("separator") not in (None, "", ", "):
            options["separator"] = data["separator"]
        if "table" in wanted:
            rows = data.get("table") or []
            if not rows and "table" not in self.errors:
                self.add_error(
                    "table",
                    "A lookup needs at least one row: a Xero value and the Pipedrive value it becomes.",
                )
            options["table"] = dict(rows)
            if (data.get("default") or "").strip():
                options["default"] = data["default"].strip()
        for name in ("max_length", "decimals"):
            if name in wanted and data.get(name) is not None:
                options[name] = data[name]
        if "currency" in wanted and (data.get("currency") or "").strip():
            options["currency"] = data["currency"].strip().upper()
        if "currency_path" in wanted and (data.get("currency_path") or "").strip():
            options["currency_path"] = data["currency_path"].strip()
        if data.get("clear_when_empty"):
            options["clear_when_empty"] = True
        return options

    def _lookup_values_fit(self, options: dict, field: dict, live) -> bool:
        """A lookup into an option field stores option ids (an option's label is accepted); into a number
        field, numbers. Anything else is explained."""
        kind = field.get("field_type")
        label = f"{field['name']!r}"
        if kind in OPTION_TYPES:
            found = next((f for f in live or [] if f["key"] == field["key"]), field)
            choices = {str(o.get("id")): o.get("id") for o in found.get("options") or []}
            by_label = {str(o.get("label") or "").casefold(): o.get("id") for o in found.get("options") or []}

            def convert(value):
                text = str(value).strip()
                if text in choices:
                    return choices[text]
                if text.casefold() in by_label:
                    return by_label[text.casefold()]
                names = ", ".join(str(o.get("label")) for o in found.get("options") or []) or "none"
                raise ValidationError(
                    f"{text!r} is not an option of the Pipedrive field {label} (its options: {names})."
                )
        elif kind in NUMBER_TYPES:

            def convert(value):
                try:
                    number = Decimal(str(value).strip().replace(",", ""))
                except InvalidOperation:
                    raise ValidationError(
                        f"{value!r} is not a number, and the Pipedrive field {label} holds numbers."
                    ) from None
                return int(number) if kind == "int" and number == number.to_integral() else float(number)
        else:
            return True
        try:
            options["table"] = {k: convert(v) for k, v in options["table"].items()}
            if "default" in options:
                options["default"] = convert(options["default"])
        except ValidationError as exc:
            self.add_error("table", exc)
            return False
        return True


def rule_summary(row: FieldMapping) -> str:
    """A rule in finance's words: "Address (street) → City → City (text)"."""
    field = row.pipedrive_field_name or row.pipedrive_field
    paths = (row.transform_options or {}).get("sources") or [row.source_path]
    sources = " + ".join(source_label(row.target, p) for p in paths)
    return f"{sources} → {field} ({row.get_transform_display().lower()})"


XERO_VALUE_CHOICES = [
    ("", "---------"),
    ("Invoice status", InvoiceStatus.choices),
    ("Payment state", PaymentState.choices),
    ("Due state", DueState.choices),
]


class StageMappingForm(forms.ModelForm):
    """Which invoice status or payment state (picked from Xero's values) puts the deal in which pipeline
    stage, picked from the pair's live pipelines (ids and names are stored).

    ``live_stages_for(pair)`` gives the live stages or the reason they could not be read (a string);
    ``prefetched`` maps a pair's pk to that answer, read before the admin's transaction."""

    live_stages_for: Callable[..., Any] | None = None
    prefetched: dict = {}

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
        labels = {"xero_value": "When the invoice is"}
        help_texts = {
            "xero_value": "An invoice status for the kind Invoice status, a payment state for Payment state. "
            "A payment-state rule wins for approved and paid invoices; the due state OVERDUE (approved, "
            "due date passed in the Xero organisation's time zone, amount still due) wins over both."
        }
        widgets = {"xero_value": forms.Select(choices=XERO_VALUE_CHOICES)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stages = {}
        # "pair" is the model's ForeignKey, so its form field is a ModelChoiceField.
        pair = _pair_from(self, cast(forms.ModelChoiceField, self.fields["pair"]).queryset)
        choices = [("", "(keep the values below)")]
        if pair is not None:
            live = self.prefetched.get(pair.pk)
            reader = type(self).live_stages_for
            if live is None and reader is not None:
                live = reader(pair)
            if isinstance(live, str):
                self.fields["live_stage"].help_text = f"Could not read Pipedrive's pipelines: {live}"
            for s in live if isinstance(live, list) else []:
                self.stages[f"{s['pipeline_id']}:{s['stage_id']}"] = s
                choices.append(
                    (f"{s['pipeline_id']}:{s['stage_id']}", f"{s['pipeline_name']} / {s['stage_name']}")
                )
        cast(forms.ChoiceField, self.fields["live_stage"]).choices = choices  # declared as a ChoiceField
        if self.instance.pipeline_id and self.instance.stage_id:
            self.initial.setdefault("live_stage", f"{self.instance.pipeline_id}:{self.instance.stage_id}")

    def clean(self):
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean() returns, typed as set here
        value = (data.get("xero_value") or "").strip().upper()
        kind = data.get("kind") or ""
        values_by_kind: dict[str, type[InvoiceStatus] | type[PaymentState] | type[DueState]] = {
            StageMapping.Kind.INVOICE_STATUS: InvoiceStatus,
            StageMapping.Kind.PAYMENT_STATE: PaymentState,
            StageMapping.Kind.DUE_STATE: DueState,
        }
        allowed = values_by_kind.get(kind)
        if allowed is not None and value not in allowed.values:
            names = ", ".join(f"{v} ({label})" for v, label in allowed.choices)
            self.add_error(
                "xero_value",
                f"{value!r} is not a {StageMapping.Kind(kind).label.lower()} value; choose one of {names}.",
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
