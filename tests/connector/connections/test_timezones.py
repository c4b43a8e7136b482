"""Xero's Timezone names as IANA zones (connector/connections/timezones.py) and the connection's zone."""

import zoneinfo

import pytest
import responses

from connector.connections import timezones
from connector.connections.services import organisation_timezone
from connector.models import XeroConnection


@pytest.mark.parametrize(
    ("xero_name", "iana"),
    [
        ("NEWZEALANDSTANDARDTIME", "Pacific/Auckland"),
        ("EASTERNSTANDARDTIME", "America/New_York"),
        ("GMTSTANDARDTIME", "Europe/London"),
        ("AUSEASTERNSTANDARDTIME", "Australia/Sydney"),
        ("CENTRALSTANDARDTIME(MEXICO)", "America/Mexico_City"),
        ("UTC", "Etc/UTC"),
        ("UTC+12", "Etc/GMT-12"),
        ("UTC02", "Etc/GMT+2"),  # Xero's spelling of Windows' "UTC-02"
        ("KAMCHATKASTANDARDTIME", "Asia/Kamchatka"),  # retired by Windows, still listed by Xero
        ("New Zealand Standard Time", "Pacific/Auckland"),
        ("Pacific/Auckland", "Pacific/Auckland"),  # an IANA name passes through
    ],
)
def test_xero_names_map_to_iana_zones(xero_name, iana):
    assert timezones.iana_name(xero_name) == iana
    assert timezones.zone(xero_name) == zoneinfo.ZoneInfo(iana)


@pytest.mark.parametrize("unknown", ["", "MARSSTANDARDTIME", "Mars/Olympus", "   "])
def test_an_unknown_name_is_utc(unknown):
    assert timezones.iana_name(unknown) == ""
    assert timezones.zone(unknown) == zoneinfo.ZoneInfo("UTC")


def test_every_time_zone_of_xeros_spec_is_known():
    from specs import load_spec

    names = load_spec("xero", "accounting")["components"]["schemas"]["TimeZone"]["enum"]
    unknown = [name for name in names if not timezones.iana_name(name)]
    assert unknown == []


@pytest.mark.django_db
def test_a_stored_zone_is_used_without_asking_xero():
    conn = XeroConnection.objects.create(tenant_id="t-1", client_id="c", org_timezone="Pacific/Auckland")
    assert organisation_timezone(conn) == zoneinfo.ZoneInfo("Pacific/Auckland")


@pytest.mark.django_db
def test_without_the_settings_scope_the_zone_is_utc_and_xero_is_not_asked():
    conn = XeroConnection.objects.create(tenant_id="t-1", client_id="c", scopes="accounting.contacts.read")
    with responses.RequestsMock() as mock:  # any request would be refused
        assert organisation_timezone(conn) == zoneinfo.ZoneInfo("UTC")
        assert len(mock.calls) == 0
    conn.refresh_from_db()
    assert conn.org_timezone == ""
