from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver


@receiver(post_migrate)
def ensure_encryption_canary(sender, app_config=None, using="default", **kwargs):
    """Store the canary once, on the first migrate, so later starts can prove the key."""
    if app_config is None or app_config.label != "connector":
        return
    from connector.models import EncryptionCanary

    if not EncryptionCanary.objects.using(using).exists():
        EncryptionCanary.objects.using(using).create(value=EncryptionCanary.PLAINTEXT)


@receiver(post_save, sender="connector.SyncPair")
def keep_reconciliation_schedule(sender, instance, **kwargs):
    """The pair's reconciliation schedule follows its options (interval, on/off) and its enabled flag."""
    from connector.reconciliation import on_pair_saved

    on_pair_saved(instance)


@receiver(post_delete, sender="connector.SyncPair")
def drop_reconciliation_schedule(sender, instance, **kwargs):
    from connector.reconciliation import drop_schedule

    drop_schedule(instance.pk)
