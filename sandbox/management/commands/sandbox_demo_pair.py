"""Join the sandbox's demo Xero organisation and demo Pipedrive company in a ready sync pair.

For the demo run (`make run`) only: what an admin would do by hand with real accounts (connect
Xero and Pipedrive, add a pair, paste the Xero webhook key, create the invoice pipeline, let the
connector register its Pipedrive webhooks), done directly on the emulators' tables, plus an
initial load: the demo organisation's contacts, invoices and payments are put in the pair's inbox
as if Xero had just sent them, and a drain is scheduled for when the server is up. Idempotent.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from connector.drain import schedule_drain
from connector.models import (
    ConnectionStatus,
    PipedriveConnection,
    SyncPair,
    WebhookEvent,
    XeroConnection,
)
from sandbox import clock, webhooks
from sandbox.pipedrive import services as pd_services
from sandbox.pipedrive.models import Pipeline, Stage, User, Webhook
from sandbox.xero import identity
from sandbox.xero import services as xero_services
from sandbox.xero.models import Organisation

DEMO_PAIR = "Demo (sandbox)"
SCOPE = "offline_access accounting.contacts.read accounting.invoices.read accounting.payments.read"
INVOICE_STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


class Command(BaseCommand):
    help = "Create a ready sync pair between the sandbox's demo Xero organisation and Pipedrive company."

    def handle(self, *args, **options):
        if not settings.SANDBOX_ENABLED:
            raise CommandError("The sandbox is off (SANDBOX_ENABLED): there is nothing to join.")
        pair = SyncPair.objects.filter(name=DEMO_PAIR).first()
        if pair is not None:
            self.stdout.write(f"Sync pair '{pair}' already joins the sandbox's demo accounts.")
            return
        with transaction.atomic():
            pair, loaded = self._create()
        # Once the web server answers (the sync reads the emulators over HTTP), not at once.
        schedule_drain(pair.pk, timezone.now() + timedelta(seconds=15))
        self.stdout.write(
            f"Sync pair '{pair}' joins Xero '{pair.xero_connection}' and Pipedrive "
            f"'{pair.pipedrive_connection}'; {loaded} records queued for the first sync."
        )

    def _create(self):
        app = xero_services.ensure_demo_app()
        organisation = Organisation.objects.order_by("name").first()
        grant = xero_services.connect(app, [organisation], SCOPE)
        access, refresh = identity._access_token(grant), identity._refresh_token(grant)
        xero = XeroConnection.objects.create(
            tenant_id=str(organisation.tenant_id),
            tenant_name=organisation.name,
            client_id=app.client_id,
            client_secret=app.client_secret,
            access_token=access.token,
            refresh_token=refresh.token,
            expires_at=access.expires_at,
            scopes=SCOPE,
            status=ConnectionStatus.ACTIVE,
            secrets_set_at=timezone.now(),
            last_refreshed_at=timezone.now(),
        )
        company = pd_services.ensure_demo_company()
        admin = User.objects.get(api_token=pd_services.DEMO_API_TOKEN)
        pipedrive = PipedriveConnection.objects.create(
            company_id=company.id,
            company_name=company.name,
            company_domain=company.domain,
            api_domain=settings.PIPEDRIVE_API_URL,
            auth_type=PipedriveConnection.AuthType.API_TOKEN,
            api_token=pd_services.DEMO_API_TOKEN,
            user_name=admin.name,
            user_email=admin.email,
            status=ConnectionStatus.ACTIVE,
            secrets_set_at=timezone.now(),
        )
        pair = SyncPair.objects.create(name=DEMO_PAIR, xero_connection=xero, pipedrive_connection=pipedrive)
        base = settings.PUBLIC_BASE_URL
        subscription = webhooks.register_xero_webhook(
            app.client_id,
            base + reverse("webhooks:xero", args=[pair.key]),
            categories="CONTACT,INVOICE,PAYMENT",
        )
        pair.xero_webhook_key = subscription.signing_key
        pair.secrets_set_at = timezone.now()
        pair.save()
        self._invoice_pipeline(company)
        for event_object in ("organization", "person", "deal"):
            Webhook.objects.create(
                company=company,
                user=admin,
                name=f"ml-connector: {pair.name}",
                subscription_url=base + reverse("webhooks:pipedrive", args=[pair.key]),
                event_action="*",
                event_object=event_object,
                version="2.0",
                http_auth_user=pair.pipedrive_webhook_user,
                http_auth_password=pair.pipedrive_webhook_password,
                add_time=clock.now(),
            )
        return pair, self._initial_load(pair, organisation)

    @staticmethod
    def _invoice_pipeline(company):
        """The pipeline the default stage mappings name (the admin's "Create the invoice pipeline")."""
        if Pipeline.objects.filter(company=company, name="Xero invoices").exists():
            return
        now = clock.now()
        order = Pipeline.objects.filter(company=company).count() + 1
        pipeline = Pipeline.objects.create(
            company=company, name="Xero invoices", order_nr=order, add_time=now, update_time=now
        )
        for number, name in enumerate(INVOICE_STAGES, start=1):
            Stage.objects.create(pipeline=pipeline, name=name, order_nr=number, add_time=now, update_time=now)

    @staticmethod
    def _initial_load(pair, organisation) -> int:
        now = timezone.now()
        records = [("CONTACT", c.contact_id) for c in organisation.contacts.all()]
        records += [("INVOICE", i.invoice_id) for i in organisation.invoices.filter(type="ACCREC")]
        records += [("PAYMENT", p.payment_id) for p in organisation.payments.all()]
        WebhookEvent.objects.bulk_create(
            WebhookEvent(
                pair=pair,
                source=WebhookEvent.Source.XERO,
                tenant_id=pair.xero_connection.tenant_id,
                category=category,
                resource_id=str(resource_id),
                event_type="CREATE",
                event_time=now,
                payload={"initial_load": "sandbox demo"},
            )
            for category, resource_id in records
        )
        return len(records)
