"""Encrypted fields store ciphertext, refuse a wrong key, and the start-up check notices."""

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection

from connector.checks import check_field_encryption
from connector.models import EncryptionCanary
from connector.models.fields import EncryptionKeyError

pytestmark = pytest.mark.django_db

SECRET = "xero-refresh-token-0123456789abcdef"


def raw_value(pk):
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM connector_encryptioncanary WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_raw_table_holds_ciphertext_not_the_value():
    row = EncryptionCanary.objects.create(value=SECRET)
    stored = raw_value(row.pk)
    assert SECRET not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    assert EncryptionCanary.objects.get(pk=row.pk).value == SECRET


def test_wrong_key_raises_instead_of_returning_ciphertext(swap_encryption_keys):
    row = EncryptionCanary.objects.create(value=SECRET)
    swap_encryption_keys(Fernet.generate_key().decode())
    with pytest.raises(EncryptionKeyError, match=r"EncryptionCanary\.value cannot be decrypted"):
        EncryptionCanary.objects.get(pk=row.pk)


def test_rotation_reads_old_values_and_writes_with_the_new_key(swap_encryption_keys):
    old_key = settings.FIELD_ENCRYPTION_KEY[0]
    row = EncryptionCanary.objects.create(value=SECRET)
    new_key = Fernet.generate_key().decode()
    swap_encryption_keys(new_key, old_key)
    assert EncryptionCanary.objects.get(pk=row.pk).value == SECRET
    row.save()  # re-encrypts with the first (new) key
    assert Fernet(new_key).decrypt(raw_value(row.pk).encode()).decode() == SECRET


def test_plain_values_are_never_mistaken_for_ciphertext():
    field = EncryptionCanary._meta.get_field("value")
    token_lookalike = Fernet(settings.FIELD_ENCRYPTION_KEY[0]).encrypt(b"other").decode()
    assert field.to_python(token_lookalike) == token_lookalike


def test_migrate_stores_the_canary():
    canary = EncryptionCanary.objects.get()
    assert canary.value == EncryptionCanary.PLAINTEXT


def test_system_check_passes_with_the_right_key():
    assert check_field_encryption() == []


def test_system_check_fails_when_the_key_cannot_read_stored_data(swap_encryption_keys):
    swap_encryption_keys(Fernet.generate_key().decode())
    errors = check_field_encryption()
    assert [e.id for e in errors] == ["connector.E002"]
    assert "different FIELD_ENCRYPTION_KEY" in errors[0].msg


def test_system_check_fails_when_encryption_does_not_round_trip(monkeypatch):
    from encrypted_model_fields import fields as emf

    monkeypatch.setattr(emf, "decrypt_str", lambda token: "something else")
    assert [e.id for e in check_field_encryption()] == ["connector.E001"]


def test_manage_py_check_refuses_to_start_with_a_wrong_key(tmp_path):
    """End to end: migrate with one key, then `manage.py check` with another fails."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "CONNECTOR_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": "x",
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    env.pop("DATABASE_URL", None)  # a private SQLite file, whatever the suite runs on
    env.pop("REDIS_URL", None)
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "manage.py", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=settings.BASE_DIR,
    )
    migrated = run("migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    assert run("check").returncode == 0
    env["FIELD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    refused = run("check")
    assert refused.returncode != 0
    assert "connector.E002" in refused.stderr
