"""Credit: Xero's API has no credit limit, so the connector keeps one (or reads it from a Pipedrive
organization field) and works out the available credit and the over-limit flag of open deals.

Plain functions over explicit arguments, shared by the contact sync (organization fields) and the
invoice sync (deal fields). The figures themselves (``mapping.rules.contact_context``, ``deal_context``,
``over_credit``) are defined once in the mapping app, so the admin's preview shows what the sync writes;
rules read them as ``Connector.CreditLimit``, ``Connector.AvailableCredit`` and
``Connector.OverCreditLimit``.

Where the flag lands: a deal field, through a deal FieldMapping row with source path
``Connector.OverCreditLimit`` (a yes/no text, or any value through a lookup). Not a deal label:
label ids are options of Pipedrive's deal "label" field, which the sandbox and our spec copy do not
let us create, so a field is what finance staff can map and change in the admin.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation

from connector.errors import NotFound
from connector.options import pair_options
from mapping.models import CreditLimit, RecordLink
from mapping.rules import contact_context, credit_limit_for

BATCH_SIZE = 100  # ContactIDs per GET /Contacts?IDs=

# What a re-check of open deals follows, in the words its sync records show, by the run's trigger
# (a caller that knows better says so with ``recheck_reason``).
RECHECK_WORDS = {
    "webhook": "credit re-check after an invoice changed",
    "reconciliation": "credit re-check during reconciliation",
    "backfill": "credit re-check during a backfill",
    "replay": "credit re-check after a replay",
}
_recheck_reason: ContextVar[str] = ContextVar("credit_recheck_reason", default="")


@contextmanager
def recheck_reason(words: str):
    """Re-checks of open deals inside this block say what started them ("credit re-check after a
    payment"); the syncs of the records themselves keep their own trigger."""
    token = _recheck_reason.set(words)
    try:
        yield
    finally:
        _recheck_reason.reset(token)


def recheck_words(trigger: str) -> str:
    """The words of a re-check of open deals in a run started by ``trigger``."""
    return _recheck_reason.get() or RECHECK_WORDS.get(str(trigger), "credit re-check")


def _decimal(value) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    if isinstance(value, dict):  # a Pipedrive monetary field: {"value": 1000, "currency": "NZD"}
        value = value.get("value")
        if value is None:
            return None
    try:
        number = Decimal(str(value).replace(",", "").strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def credit_limit_field(pair) -> str:
    """The Pipedrive organization field (key) that holds credit limits for this pair, or ""."""
    return pair_options(pair).credit_limit_field


def credit_configured(pair) -> bool:
    """Whether any credit limit can apply to this pair (saves fetching balances when none can)."""
    return bool(credit_limit_field(pair)) or pair.credit_limits.exists()


def organization_limit(pair, organization: dict | None) -> Decimal | None:
    """The credit limit held in the Pipedrive organization's field named by ``credit_limit_field``
    (a number, or a monetary field's ``{"value": …}``); None when unset or not a number."""
    field = credit_limit_field(pair)
    if not field or not organization:
        return None
    value = (organization.get("custom_fields") or {}).get(field)
    if value is None:
        value = organization.get(field)
    return _decimal(value)


def credit_limit(pair, contact: dict, organization: dict | None = None) -> Decimal | None:
    """The contact's limit: the Pipedrive organization's field when the pair names one and it holds
    a number, else the connector's own (contact, contact group, pair default)."""
    limit = organization_limit(pair, organization)
    return limit if limit is not None else credit_limit_for(pair, contact)


def contact_credit_context(
    pair, contact: dict, organization: dict | None = None, limits: list | None = None
) -> dict:
    """The engine context of one contact (``mapping.rules.contact_context``), with the limit read from
    the Pipedrive ``organization`` when the pair keeps limits in an organization field; ``limits``: the
    pair's credit limit rows when the caller has read them."""
    return contact_context(pair, contact, organization_limit(pair, organization), limits=limits)


def contacts_under_limit(limit_row) -> list[str]:
    """The Xero contacts a credit limit row can affect: its contact, or (a group or default row) every
    contact of the pair; only those with an organization in Pipedrive (the others get their figures on
    their first sync)."""
    links = RecordLink.objects.filter(
        pair_id=limit_row.pair_id, xero_type="contact", pipedrive_type="organization"
    )
    if limit_row.contact_id:
        links = links.filter(xero_id__iexact=limit_row.contact_id)
    return list(links.values_list("xero_id", flat=True).order_by("xero_id"))


class ContactCredit:
    """The credit figures of the contacts one run deals with: full contacts (with balances) read once,
    one Xero call per 100, and the Pipedrive organization only when it holds the limit (1 token)."""

    def __init__(self, pair, xero, pipedrive):
        self.pair = pair
        self._xero = xero  # callables: the run's clients, made on first use
        self._pipedrive = pipedrive
        self.contacts: dict[str, dict] = {}  # ContactID -> full contact
        self.organizations: dict[int, dict] = {}  # organization id -> record (limit field only)
        self.limit_rows: list | None = None  # the pair's CreditLimit rows, read once per run

    def remember(self, contacts: dict[str, dict]) -> None:
        """Contacts already fetched (by the contact sync of the same run): not read again."""
        self.contacts.update({str(cid): contact for cid, contact in contacts.items()})

    def load(self, contact_ids: list[str]) -> None:
        wanted = [cid for cid in dict.fromkeys(contact_ids) if cid not in self.contacts]
        for start in range(0, len(wanted), BATCH_SIZE):
            chunk = wanted[start : start + BATCH_SIZE]
            for contact in self._xero().get_contacts(ids=chunk, include_archived=True):
                self.contacts[str(contact["ContactID"])] = contact

    def organization(self, org_id: int) -> dict | None:
        if not credit_limit_field(self.pair):
            return None
        if org_id not in self.organizations:
            try:
                self.organizations[org_id] = self._pipedrive().get("organization", org_id)
            except NotFound:
                self.organizations[org_id] = {}
        return self.organizations[org_id]

    def context(self, contact_id: str, org_id) -> dict:
        """The contact's figures for its deals ({} when the contact was not loaded)."""
        if contact_id not in self.contacts:
            return {}
        organization = self.organization(int(org_id)) if org_id else None
        if self.limit_rows is None:
            self.limit_rows = list(CreditLimit.objects.filter(pair=self.pair))
        return contact_credit_context(self.pair, self.contacts[contact_id], organization, self.limit_rows)
