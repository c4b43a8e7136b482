"""Encrypted model fields that fail loudly.

django-encrypted-model-fields hands back the ciphertext as if it were the value when
the key is wrong (it swallows ``InvalidToken``). For credentials that would mean
sending garbage to Xero and Pipedrive and, worse, re-encrypting the garbage on the
next save. These fields raise instead, naming the field and what to do.
"""

from typing import TYPE_CHECKING

from cryptography.fernet import InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from encrypted_model_fields import fields as emf

if TYPE_CHECKING:
    # The package is untyped (its classes are Any to mypy); to the type checker the
    # fields are what they store: text columns holding str values.
    _TextFieldBase = models.TextField
else:
    _TextFieldBase = object


class EncryptionKeyError(ImproperlyConfigured):
    """A stored value cannot be decrypted with any configured FIELD_ENCRYPTION_KEY."""


def encrypt_value(value: str) -> str:
    # Looked up on the module at call time so the package's single cipher is used.
    return emf.encrypt_str(value).decode("utf-8")


def decrypt_value(token: str, *, where: str = "a stored value") -> str:
    try:
        return emf.decrypt_str(token)
    except InvalidToken as exc:
        raise EncryptionKeyError(
            f"{where} cannot be decrypted with the configured FIELD_ENCRYPTION_KEY. "
            "The key has changed since it was stored: put the original key back, or list it "
            "after the new one (comma-separated) so both can read."
        ) from exc


class StrictEncryptedMixin(_TextFieldBase):
    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return decrypt_value(value, where=f"{self.model.__name__}.{self.name}")

    def to_python(self, value):
        # Values reaching to_python come from forms, fixtures or code: they are plain,
        # never ciphertext, so skip the package's "try to decrypt" guess.
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        return super(emf.EncryptedMixin, self).to_python(value)


class EncryptedSecretField(StrictEncryptedMixin, emf.EncryptedTextField):
    """A text secret (token, key, password) stored as Fernet ciphertext."""


class EncryptedJSONTextField(StrictEncryptedMixin, emf.EncryptedTextField):
    """Serialized JSON (for example an OAuth token set) stored as ciphertext."""
