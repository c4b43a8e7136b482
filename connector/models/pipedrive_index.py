"""The local index of a Pipedrive company's organizations and persons, to match Xero contacts against."""

from django.db import models

from connector.models.connections import PipedriveConnection


class PipedriveIndexState(models.Model):
    """How fresh one Pipedrive company's local index is, and which custom field holds the Xero ContactID.

    The sync matches Xero contacts against the index instead of spending a search call (20 tokens)
    per record; the index is filled by listing (10 tokens per 500 records).
    """

    connection = models.OneToOneField(
        PipedriveConnection, on_delete=models.CASCADE, related_name="index_state"
    )
    filled_at = models.DateTimeField(
        null=True, blank=True, help_text="Start of the last full listing (every record)."
    )
    refreshed_at = models.DateTimeField(
        null=True, blank=True, help_text="Start of the last listing, full or of records updated since."
    )
    contact_id_field = models.CharField(
        max_length=64, blank=True, help_text="Key of the organization field holding the Xero ContactID."
    )
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = "Pipedrive index state"

    def __str__(self):
        return f"Index of {self.connection}"


class PipedriveIndexEntry(models.Model):
    """One Pipedrive organization or person with the keys a Xero contact is matched by."""

    class Entity(models.TextChoices):
        ORGANIZATION = "organization", "Organization"
        PERSON = "person", "Person"

    connection = models.ForeignKey(
        PipedriveConnection, on_delete=models.CASCADE, related_name="index_entries"
    )
    entity = models.CharField(max_length=20, choices=Entity.choices)
    record_id = models.BigIntegerField()
    name = models.CharField(max_length=255, blank=True)
    name_key = models.CharField(
        max_length=255, blank=True, help_text="Organizations: the normalized name; persons: the folded name."
    )
    xero_contact_id = models.CharField(
        max_length=64, blank=True, help_text="The organization's Xero ContactID field value."
    )
    org_id = models.BigIntegerField(null=True, blank=True, help_text="A person's organization.")
    add_time = models.DateTimeField(null=True, blank=True)
    indexed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Pipedrive index entry"
        verbose_name_plural = "Pipedrive index entries"
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "entity", "record_id"], name="pipedrive_index_entry_unique"
            )
        ]
        indexes = [
            models.Index(fields=["connection", "entity", "name_key"], name="pipedrive_index_by_name"),
            models.Index(fields=["connection", "entity", "xero_contact_id"], name="pipedrive_index_by_cid"),
        ]

    def __str__(self):
        return f"{self.entity} {self.record_id} {self.name}"


class PipedriveIndexEmail(models.Model):
    """One e-mail address (normalized) of an indexed person."""

    entry = models.ForeignKey(PipedriveIndexEntry, on_delete=models.CASCADE, related_name="emails")
    email = models.CharField(max_length=255, db_index=True)

    class Meta:
        verbose_name = "Pipedrive index e-mail"

    def __str__(self):
        return self.email
