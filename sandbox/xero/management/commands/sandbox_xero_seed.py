"""Create the sandbox Xero demo app and organisations (with demo data) and print the app's credentials."""

from django.core.management.base import BaseCommand

from sandbox.xero import services


class Command(BaseCommand):
    help = "Create the sandbox Xero demo app and organisations, and print the client id and secret."

    def add_arguments(self, parser):
        parser.add_argument(
            "--redirect-uri",
            action="append",
            default=[],
            help="Also allow this redirect URI for the demo app (repeatable).",
        )

    def handle(self, *args, redirect_uri, **options):
        app = services.ensure_demo_app()
        missing = [uri for uri in redirect_uri if uri not in app.redirect_uri_list]
        if missing:
            app.redirect_uris = "\n".join([*app.redirect_uri_list, *missing])
            app.save(update_fields=["redirect_uris"])
        self.stdout.write(f"XERO_CLIENT_ID={app.client_id}")
        self.stdout.write(f"XERO_CLIENT_SECRET={app.client_secret}")
        for organisation in services.Organisation.objects.order_by("name"):
            self.stdout.write(
                f"organisation {organisation.tenant_id} {organisation.name}: "
                f"{organisation.contacts.count()} contacts, {organisation.invoices.count()} invoices"
            )
        self.stdout.write("redirect URIs: " + ", ".join(app.redirect_uri_list))
