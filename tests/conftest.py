import pytest
from cryptography.fernet import Fernet, MultiFernet
from encrypted_model_fields import fields as emf


@pytest.fixture
def swap_encryption_keys(monkeypatch):
    """Replace the package's cipher, as if the process had started with other keys."""

    def swap(*keys: str):
        monkeypatch.setattr(emf, "CRYPTER", MultiFernet([Fernet(k) for k in keys]))

    return swap
