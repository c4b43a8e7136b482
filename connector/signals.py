from django.db.models.signals import post_delete, post_migrate, post_save, pre_save
from django.dispatch import receiver

from connector.models import EncryptionCanary
from connector.operations.reconciliation import drop_schedule, on_pair_saved
from connector.sync.credit_recheck import contacts_to_recheck, limit_change_words, queue_credit_recheck
from mapping.models import CreditLimit


@receiver(post_migrate)
def ensure_encryption_canary(sender, app_config=None, using="default", **kwargs):
    """Store the canary once, on the first migrate, so later starts can prove the key."""
    if app_config is None or app_config.label != "connector":
        return
    if not EncryptionCanary.objects.using(using).exists():
        EncryptionCanary.objects.using(using).create(value=EncryptionCanary.PLAINTEXT)


@receiver(post_save, sender="connector.SyncPair")
def keep_reconciliation_schedule(sender, instance, **kwargs):
    """The pair's reconciliation schedule follows its options (interval, on/off) and its enabled flag."""
    on_pair_saved(instance)


@receiver(post_delete, sender="connector.SyncPair")
def drop_reconciliation_schedule(sender, instance, **kwargs):
    drop_schedule(instance.pk)


# A credit limit saved or deleted anywhere (admin form, bulk delete, shell): the organizations' available
# credit and their open deals' flags follow it, re-checked by a worker after the commit.
@receiver(pre_save, sender=CreditLimit)
def remember_limit_scope(sender, instance, raw=False, **kwargs):
    previous = None if raw or not instance.pk else sender.objects.filter(pk=instance.pk).first()
    instance._previous_row = previous


@receiver(post_save, sender=CreditLimit)
def recheck_after_limit_saved(sender, instance, raw=False, **kwargs):
    if not raw:
        queue_credit_recheck(
            instance.pair_id,
            contacts_to_recheck(instance, getattr(instance, "_previous_row", None)),
            limit_change_words(instance),
        )


@receiver(post_delete, sender=CreditLimit)
def recheck_after_limit_deleted(sender, instance, **kwargs):
    queue_credit_recheck(
        instance.pair_id, contacts_to_recheck(instance), limit_change_words(instance, deleted=True)
    )
