"""The connector's admin, one module per concern; importing the package registers them all
(Django's autodiscovery imports ``connector.admin``)."""

from connector.admin import backfill, connections, inbox, limits, mapping, overdue, sync_records, tasks  # noqa: F401
