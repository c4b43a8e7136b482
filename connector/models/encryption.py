"""The encryption canary: proves at start-up that FIELD_ENCRYPTION_KEY still decrypts the stored secrets."""

from django.db import models

from connector.models.fields import EncryptedSecretField


class EncryptionCanary(models.Model):
    """A known value encrypted when the database is first migrated.

    The start-up check decrypts it: if FIELD_ENCRYPTION_KEY has been lost or swapped,
    the connector refuses to start instead of failing on the first credential it reads.
    """

    PLAINTEXT = "ml-connector encryption canary"

    value = EncryptedSecretField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "encryption canary"

    def __str__(self):
        return f"Encryption canary from {self.created_at:%Y-%m-%d}"
