"""The webhook inbox: everything a receiver decides, so the views only translate outcomes into HTTP.

- ``pairs``: the pair a request is for (by URL key), with only its source's secrets read.
- ``auth``: Xero signatures and Pipedrive Basic auth (constant time); refused ones counted
  (written at most once an interval).
- ``parsing``: the Xero batch checks (a bad batch stores nothing).
- ``storage``: a request's events stored in one transaction; redeliveries are no-ops (unique key).
- ``drain_requests``: one drain task enqueued after the commit, without a storm of duplicates.
"""

from connector.intake.inbox.auth import (
    count_rejection,
    flush_rejections,
    pipedrive_auth_valid,
    xero_signature_valid,
)
from connector.intake.inbox.drain_requests import enqueue_drain, request_drain, request_drain_on_commit
from connector.intake.inbox.pairs import ReceiverPair, find_pair
from connector.intake.inbox.parsing import InvalidBatch, XeroEvent, parse_xero_batch, parse_xero_time
from connector.intake.inbox.storage import XERO_SYNCED_CATEGORIES, store_pipedrive_event, store_xero_batch

__all__ = [
    "XERO_SYNCED_CATEGORIES",
    "InvalidBatch",
    "ReceiverPair",
    "XeroEvent",
    "count_rejection",
    "enqueue_drain",
    "find_pair",
    "flush_rejections",
    "parse_xero_batch",
    "parse_xero_time",
    "pipedrive_auth_valid",
    "request_drain",
    "request_drain_on_commit",
    "store_pipedrive_event",
    "store_xero_batch",
    "xero_signature_valid",
]
