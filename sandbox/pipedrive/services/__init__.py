"""Business logic of the emulated Pipedrive, one module per job; views parse requests and call these.

``common`` (errors, shared helpers), ``paging`` (cursors), ``records`` (organizations, persons, deals),
``fields`` (the *Fields endpoints), ``search``, ``pipelines`` (pipelines, stages), ``notes``,
``activities`` and ``demo`` (the demo company). The names below are the package's public interface.
"""

from sandbox.pipedrive.services.activities import (
    activities_of,
    create_activity,
    delete_activity,
    get_activity,
    list_activities,
    serialize_activity,
    update_activity,
)
from sandbox.pipedrive.services.common import MODELS, ApiError, entity_of, rfc3339
from sandbox.pipedrive.services.demo import (
    DEMO_API_TOKEN,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_DOMAIN,
    ensure_demo_company,
)
from sandbox.pipedrive.services.fields import (
    create_field,
    get_field,
    list_fields,
    namespaces_asked,
    serialize_field,
)
from sandbox.pipedrive.services.notes import create_note, list_notes, serialize_note
from sandbox.pipedrive.services.paging import (
    DEFAULT_PAGE,
    MAX_PAGE,
    cursor_page,
    decode_cursor,
    encode_cursor,
    page_limit,
    record_page,
)
from sandbox.pipedrive.services.pipelines import (
    create_pipeline,
    create_stage,
    serialize_pipeline,
    serialize_stage,
)
from sandbox.pipedrive.services.records import (
    create_record,
    custom_field_codes,
    delete_record,
    get_record,
    list_records,
    merge_records,
    serialize,
    update_record,
)
from sandbox.pipedrive.services.search import search_field, search_items, search_records

__all__ = [
    "DEFAULT_PAGE",
    "DEMO_API_TOKEN",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_DOMAIN",
    "MAX_PAGE",
    "MODELS",
    "ApiError",
    "activities_of",
    "create_activity",
    "create_field",
    "create_note",
    "create_pipeline",
    "create_record",
    "create_stage",
    "cursor_page",
    "custom_field_codes",
    "decode_cursor",
    "delete_activity",
    "delete_record",
    "encode_cursor",
    "ensure_demo_company",
    "entity_of",
    "get_activity",
    "get_field",
    "get_record",
    "list_activities",
    "list_fields",
    "list_notes",
    "list_records",
    "merge_records",
    "namespaces_asked",
    "page_limit",
    "record_page",
    "rfc3339",
    "search_field",
    "search_items",
    "search_records",
    "serialize",
    "serialize_activity",
    "serialize_field",
    "serialize_note",
    "serialize_pipeline",
    "serialize_stage",
    "update_activity",
    "update_record",
]
