"""Pipedrive's side of a JSON panel: register one, and draw it on a record's page as Pipedrive does.

Drawing calls the panel's API endpoint server-side with GET and the query Pipedrive sends
(``resource``, ``view``, ``userId``, ``companyId``, ``selectedIds``, ``isShared``, ``token``), the token a
JWT (HS256) signed with the panel's secret, then checks the answer as Pipedrive does: JSON with a
``data`` list of at most ten objects, each with an ``id`` and only properties the panel's schema
declares (Pipedrive shows "Something went wrong" for the whole panel otherwise). An answer with a
non-success status shows its ``error`` title and subtitle.

Only URLs of registered panels are called (registration is a staff or control-token act), over
http(s), without following redirects, with a short timeout.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import jwt
import requests
from django.utils import timezone

from sandbox.pipedrive.models import Company, PanelExtension, User

TOKEN_LIFETIME = dt.timedelta(minutes=5)
TIMEOUT_SECONDS = 5.0
MAX_OBJECTS = 10
MAX_FIELDS = 20
LABEL_COLOURS = {"green", "red", "blue", "yellow", "purple", "grey"}


class PanelError(ValueError):
    """A registration that cannot be accepted (bad URL, name, schema)."""


@dataclass
class DrawnField:
    label: str
    kind: str  # the schema's type: text, numerical, currency, date, label, link, ...
    text: str
    colour: str = ""
    url: str = ""


@dataclass
class DrawnObject:
    header: str
    fields: list[DrawnField] = field(default_factory=list)


@dataclass
class DrawnPanel:
    """What a record's page shows for one panel: its objects, or why it could not be drawn."""

    name: str
    status: int | None = None
    objects: list[DrawnObject] = field(default_factory=list)
    error: str = ""
    error_detail: str = ""
    external_link: dict = field(default_factory=dict)


def register_panel(
    company: Company,
    *,
    name: str,
    endpoint_url: str,
    jwt_secret: str,
    schema: dict | None = None,
    on_organization: bool = True,
    on_deal: bool = True,
) -> PanelExtension:
    name = (name or "").strip()
    if not name or len(name) > 30:
        raise PanelError("name: 1 to 30 characters (Developer Hub's limit)")
    parts = urlsplit(endpoint_url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PanelError("endpoint_url: an http(s) URL")
    if not jwt_secret:
        raise PanelError("jwt_secret: required (the panel's requests are signed with it)")
    if schema is not None and not isinstance((schema.get("items") or {}).get("properties"), dict):
        raise PanelError('schema: a JSON panel structure ({"type": "array", "items": {"properties": …}})')
    return PanelExtension.objects.create(
        company=company,
        name=name,
        endpoint_url=endpoint_url,
        jwt_secret=jwt_secret,
        schema=schema or {},
        on_organization=on_organization,
        on_deal=on_deal,
    )


def panel_as_dict(panel: PanelExtension) -> dict:
    """A registered panel as the control endpoint shows it: never its secret."""
    return {
        "id": panel.pk,
        "company_id": panel.company_id,
        "name": panel.name,
        "endpoint_url": panel.endpoint_url,
        "has_jwt_secret": bool(panel.jwt_secret),
        "has_schema": bool(panel.schema),
        "on_organization": panel.on_organization,
        "on_deal": panel.on_deal,
    }


def panels_for(company_id: int, resource: str) -> list[PanelExtension]:
    rows = PanelExtension.objects.filter(company_id=company_id).order_by("pk")
    return list(
        rows.filter(on_organization=True) if resource == "organization" else rows.filter(on_deal=True)
    )


def viewing_user(company_id: int) -> User | None:
    """The company user a page is drawn for (the sandbox's admin pages have no Pipedrive user)."""
    return User.objects.filter(company_id=company_id).order_by("-is_admin", "pk").first()


def sign_token(panel: PanelExtension, user_id: int, now: dt.datetime | None = None) -> str:
    # Real time, not the sandbox clock: the receiving app checks the token against its own clock.
    issued = now or timezone.now()
    claims = {
        "userId": user_id,
        "companyId": panel.company_id,
        "iat": int(issued.timestamp()),
        "exp": int((issued + TOKEN_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, panel.jwt_secret, algorithm="HS256")


def panel_query(panel: PanelExtension, resource: str, record_id: int, user_id: int) -> dict:
    return {
        "resource": resource,
        "view": "details",
        "userId": str(user_id),
        "companyId": str(panel.company_id),
        "selectedIds": str(record_id),
        "isShared": "false",
        "token": sign_token(panel, user_id),
    }


def _number(value) -> str:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return f"{number:,.2f}" if number != number.to_integral_value() else f"{number:,.0f}"


def _declared(panel: PanelExtension) -> dict[str, dict]:
    return (panel.schema.get("items") or {}).get("properties") or {}


def _kind(definition: dict) -> str:
    return str(definition.get("$ref") or definition.get("type") or "text").rsplit("/", 1)[-1]


def drawn_field(name: str, definition: dict, value) -> DrawnField:
    """One property as Pipedrive shows it, by the type its schema declares."""
    kind = _kind(definition)
    label = str(definition.get("label") or name.replace("_", " ").capitalize())
    if value is None:
        return DrawnField(label, kind, "")
    if kind == "currency":
        if not isinstance(value, dict) or "value" not in value:
            raise ValueError(f"{name}: a currency is {{code, value}}")
        try:
            amount = f"{Decimal(str(value['value'])):,.2f}"
        except (InvalidOperation, ValueError):
            raise ValueError(f"{name}: a currency's value is a number") from None
        return DrawnField(label, kind, f"{amount} {value.get('code') or ''}".strip())
    if kind == "label":
        if not isinstance(value, dict) or value.get("color") not in LABEL_COLOURS:
            raise ValueError(f"{name}: a label is {{color, label}} with one of Pipedrive's colours")
        return DrawnField(label, kind, str(value.get("label") or "")[:40], colour=value["color"])
    if kind == "link":
        if isinstance(value, str):
            return DrawnField(label, kind, value, url=value)
        if not isinstance(value, dict) or not value.get("value"):
            raise ValueError(f"{name}: a link is a URL or {{label, value, external}}")
        url = str(value["value"])
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"{name}: a link must be http(s)")
        return DrawnField(label, kind, str(value.get("label") or url), url=url)
    if kind == "numerical":
        return DrawnField(label, kind, _number(value))
    if kind == "tags":
        return DrawnField(label, kind, ", ".join(str(tag) for tag in value))
    if isinstance(value, dict):  # text with markdown: {"markdown": true, "value": "…"}
        value = value.get("value", "")
    return DrawnField(label, kind, str(value)[:255])


def drawn_objects(panel: PanelExtension, data) -> list[DrawnObject]:
    """The answer's ``data`` checked against the panel's schema; ValueError when Pipedrive would refuse it."""
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError("data must be a list of objects")
    if len(data) > MAX_OBJECTS:
        raise ValueError(f"{len(data)} objects: a panel shows at most {MAX_OBJECTS}")
    declared = _declared(panel)
    objects = []
    for item in data:
        if not isinstance(item, dict) or "id" not in item:
            raise ValueError("every object needs an id")
        if declared:
            undeclared = sorted(set(item) - set(declared))
            if undeclared:
                raise ValueError(f"properties not in the panel's schema: {', '.join(undeclared)}")
        names = list(declared) if declared else list(item)
        shown = [name for name in names if name not in ("id", "header") and name in item]
        if len(shown) > MAX_FIELDS:
            raise ValueError(f"an object shows at most {MAX_FIELDS} fields")
        objects.append(
            DrawnObject(
                header=str(item.get("header") or ""),
                fields=[drawn_field(name, declared.get(name, {}), item[name]) for name in shown],
            )
        )
    return objects


def draw_panel(panel: PanelExtension, resource: str, record_id: int) -> DrawnPanel:
    """Call the panel's endpoint for one record and return what the page shows."""
    drawn = DrawnPanel(name=panel.name)
    user = viewing_user(panel.company_id)
    if user is None:
        drawn.error = "The company has no user to draw the panel for."
        return drawn
    try:
        response = requests.get(
            panel.endpoint_url,
            params=panel_query(panel, resource, record_id, user.pk),
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        drawn.error = f"The panel's endpoint could not be reached ({exc.__class__.__name__})."
        return drawn
    drawn.status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not 200 <= response.status_code < 300:
        error = (body or {}).get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            drawn.error = str(error.get("title") or "")[:30] or "Something went wrong"
            drawn.error_detail = str(error.get("subtitle") or "")
        else:
            drawn.error = f"Something went wrong (HTTP {response.status_code})."
        return drawn
    if not isinstance(body, dict) or "data" not in body:
        drawn.error = 'Something went wrong: the answer is not JSON with a "data" list.'
        return drawn
    try:
        drawn.objects = drawn_objects(panel, body["data"])
    except (ValueError, TypeError, KeyError) as exc:
        drawn.error = "Something went wrong"
        drawn.error_detail = f"The answer does not match the panel's schema: {exc}"
        return drawn
    link = body.get("external_link")
    if isinstance(link, dict) and urlsplit(str(link.get("url") or "")).scheme in ("http", "https"):
        drawn.external_link = {"url": str(link["url"]), "label": str(link.get("label") or "Open")[:40]}
    return drawn


def draw_panels(company_id: int, resource: str, record_id: int) -> list[DrawnPanel]:
    """Every panel registered for the company's ``resource`` detail view, drawn for one record."""
    return [draw_panel(panel, resource, record_id) for panel in panels_for(company_id, resource)]
