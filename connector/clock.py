"""The connector's one "today": the Xero organisation's local date and time.

Due dates are calendar dates in the Xero organisation's time zone, so "is this invoice overdue?" is
asked against the organisation's local date, not the server's: an invoice due on 3 Dec in Auckland is
overdue from midnight there, which is still 2 Dec in UTC. Everything that counts days overdue (the
stage table's Overdue rule, the daily overdue pass, the Pipedrive panel) reads the date from here.

The choice for tests and the sandbox: the connector's clock is ``timezone.now()`` and nothing else;
it never reads the sandbox's clock. The product may not import the sandbox (the architecture test),
and asking the sandbox over HTTP for the time on every check would put a sandbox-only call in the
production path. A test that moves time moves both sides: ``POST /sandbox/_clock`` for Xero (so
Xero's overdue balances follow) and a patched ``connector.clock.now`` (pytest's ``monkeypatch``) for
the connector, to the same moment.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import timezone

from connector.connections import timezones
from connector.connections.services import organisation_timezone


def now() -> dt.datetime:
    """The current moment (aware, UTC). Tests patch this one function to move the connector's time."""
    return timezone.now()


def organisation_zone(connection) -> ZoneInfo:
    """The time zone of the Xero organisation behind ``connection`` (a XeroConnection, or None)."""
    if connection is None:
        return ZoneInfo("UTC")
    return organisation_timezone(connection)


def local_now(connection) -> dt.datetime:
    """The organisation's local date and time now."""
    return now().astimezone(organisation_zone(connection))


def local_today(connection) -> dt.date:
    """The organisation's local date: the day against which due dates are compared."""
    return local_now(connection).date()


def stored_today(connection) -> dt.date:
    """The organisation's local date from the zone the connection has stored (never a Xero call: for
    pages answered from the connector's own records, such as the Pipedrive panel; UTC when unknown)."""
    name = getattr(connection, "org_timezone", "") if connection is not None else ""
    return now().astimezone(timezones.zone(name or "")).date()


def pair_today(pair) -> dt.date:
    """The local date of the pair's Xero organisation."""
    return local_today(pair.xero_connection)
