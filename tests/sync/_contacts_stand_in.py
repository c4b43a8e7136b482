"""TEMPORARY test-only stand-in for connector.sync.contacts until the sync-contacts branch lands.

Creates/updates the organization and persons of each contact through links (no matching), with the
credit context, so the invoice and payment tests can run. Deleted once the real module is merged.
"""

import importlib.util
import sys
import types

import pytest

from connector.connections import pipedrive_client, xero_client
from connector.sync import credit
from connector.sync.common import RecordOutcome, get_link, save_link, write_record
from mapping.engine import map_organization, map_persons, payload_hash
from mapping.rules import field_rules


def _sync_contacts(pair, ids, *, trigger="webhook"):
    xero, pipedrive = xero_client(pair.xero_connection), pipedrive_client(pair.pipedrive_connection)
    outcomes = {}
    for contact in xero.get_contacts(ids=list(ids), include_archived=True):
        cid = str(contact["ContactID"])
        link = get_link(pair, "contact", cid, "organization")
        organization = (
            pipedrive.get("organization", link.pipedrive_id)
            if link and credit.credit_limit_field(pair)
            else None
        )
        context = credit.contact_credit_context(pair, contact, organization)
        org = map_organization(contact, field_rules(pair, "organization"), context).payload
        digest = payload_hash(org)
        write = write_record(pipedrive, "organization", org, digest, existing_id=link and link.pipedrive_id,
                             last_hash=link.payload_hash if link else "")  # fmt: skip
        save_link(pair, "contact", cid, "organization", write.pipedrive_id, digest)
        for key, mapped in map_persons(contact, field_rules(pair, "person")):
            body = {**mapped.payload, "org_id": write.pipedrive_id}
            person_digest = payload_hash(body)
            plink = get_link(pair, "contact_person", f"{cid}:{key}", "person")
            pwrite = write_record(pipedrive, "person", body, person_digest,
                                  existing_id=plink and plink.pipedrive_id,
                                  last_hash=plink.payload_hash if plink else "")  # fmt: skip
            save_link(pair, "contact_person", f"{cid}:{key}", "person", pwrite.pipedrive_id, person_digest)
        outcomes[cid] = RecordOutcome("done", pipedrive_id=write.pipedrive_id, action=write.action)
    return outcomes


@pytest.fixture(autouse=True)
def contacts_stand_in(monkeypatch):
    if importlib.util.find_spec("connector.sync.contacts") is None:
        module = types.ModuleType("connector.sync.contacts")
        module.sync_contacts = _sync_contacts
        monkeypatch.setitem(sys.modules, "connector.sync.contacts", module)
    yield
