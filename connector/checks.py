"""Start-up checks: refuse to run with a key that cannot read the stored credentials."""

import secrets

from django.core.checks import Error, register
from django.db import DatabaseError

from connector.models import EncryptionCanary
from connector.models.fields import EncryptionKeyError, decrypt_value, encrypt_value


@register()
def check_field_encryption(app_configs=None, **kwargs):
    """Round-trip a fresh value, then decrypt the canary stored at first migrate."""
    probe = secrets.token_hex(16)
    try:
        if decrypt_value(encrypt_value(probe)) != probe:
            raise EncryptionKeyError("round trip returned a different value")
    except Exception as exc:
        return [
            Error(
                f"Encrypted fields do not round-trip: {exc}",
                hint="Check FIELD_ENCRYPTION_KEY (a comma-separated list of Fernet keys).",
                id="connector.E001",
            )
        ]

    try:
        canary = EncryptionCanary.objects.only("value").first()
    except EncryptionKeyError:
        return [
            Error(
                "The data in this database was encrypted with a different FIELD_ENCRYPTION_KEY.",
                hint="Restore the key the credentials were stored with, or list it after the new key "
                "(comma-separated) so both can read. Starting now would leave every connection unreadable.",
                id="connector.E002",
            )
        ]
    except DatabaseError:
        return []  # not migrated yet: nothing stored, nothing to prove
    if canary is not None and canary.value != EncryptionCanary.PLAINTEXT:
        return [Error("The encryption canary decrypted to an unexpected value.", id="connector.E003")]
    return []
