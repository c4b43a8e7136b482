from django.db.models.signals import post_migrate
from django.dispatch import receiver

from connector.models import EncryptionCanary


@receiver(post_migrate)
def ensure_encryption_canary(sender, app_config=None, using="default", **kwargs):
    """Store the canary once, on the first migrate, so later starts can prove the key."""
    if app_config is None or app_config.label != "connector":
        return
    if not EncryptionCanary.objects.using(using).exists():
        EncryptionCanary.objects.using(using).create(value=EncryptionCanary.PLAINTEXT)
