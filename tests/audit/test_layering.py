"""The audit record and its writer know nothing of the connector: the connector calls them, never the
other way round (replay, health and alerts, which drive the connector, live beside them)."""

from pathlib import Path

from django.conf import settings

from tests.test_architecture import imported_modules


def test_audit_models_and_services_do_not_import_the_connector():
    for name in ("models.py", "services.py", "redaction.py", "story.py"):
        path = Path(settings.BASE_DIR) / "audit" / name
        connector = {m for m in imported_modules(path) if m == "connector" or m.startswith("connector.")}
        assert connector == set(), f"audit/{name} imports {connector}"
