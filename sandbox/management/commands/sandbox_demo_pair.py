"""Join the sandbox's demo Xero organisation and demo Pipedrive company in a ready sync pair.

For the demo run (`make run`) only. It does what an admin does by hand with real accounts, through
the connector's own setup services and over HTTP against the running emulators: connect Xero
(OAuth2 with PKCE; the emulator's consent is given as its consent page would give it), connect
Pipedrive with an API token, add the pair, register its Xero webhook in the emulated developer
portal and store the key, create the recommended fields and the invoice pipeline, register the
Pipedrive webhooks, pass Xero's intent to receive, and queue an initial load of the demo organisation's
records. The steps go through the guided setup's actions (``connector.setup.status``), so its page
shows the demo pair set up, as it would after an admin's clicks. Needs the web server up (``--wait`` waits for
it). Idempotent: nothing is done when the demo pair exists.
"""

import signal
import time
from urllib.parse import parse_qs, urlsplit

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from connector.connections import services as connections
from connector.errors import ConnectorError
from connector.models import SyncPair
from connector.setup import pairs
from connector.setup import status as setup_status
from sandbox import webhooks
from sandbox.pipedrive import services as pipedrive_sandbox
from sandbox.xero import identity
from sandbox.xero import services as xero_sandbox
from sandbox.xero.models import Organisation

DEMO_PAIR = "Demo (sandbox)"


class Command(BaseCommand):
    help = "Create a ready sync pair between the sandbox's demo Xero organisation and Pipedrive company."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help="wait up to this long for the web server (PUBLIC_BASE_URL) to answer first",
        )

    def handle(self, *args, wait: float = 0, **options):
        # Started in the background by scripts/run.sh, where a shell without job control makes a
        # background job ignore SIGINT: Ctrl-C on the run command must stop this too.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if not settings.SANDBOX_ENABLED:
            raise CommandError("The sandbox is off (SANDBOX_ENABLED): there is nothing to join.")
        pair = SyncPair.objects.filter(name=DEMO_PAIR).first()
        if pair is not None:
            self.stdout.write(f"Sync pair '{pair}' already joins the sandbox's demo accounts.")
            return
        if wait:
            try:
                self._wait_for_server(wait)
            except KeyboardInterrupt:  # the run command was stopped before its web server answered
                raise CommandError("Stopped before the web server answered: no demo pair made.") from None
        try:
            pair = self._set_up()
            loaded = pairs.queue_initial_load(pair)
        except (ConnectorError, requests.RequestException) as exc:
            raise CommandError(f"The demo pair could not be set up: {exc}") from exc
        self.stdout.write(
            f"Sync pair '{pair}' joins Xero '{pair.xero_connection}' and Pipedrive "
            f"'{pair.pipedrive_connection}'; {loaded} records queued for the first sync."
        )

    @staticmethod
    def _wait_for_server(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                requests.get(settings.PUBLIC_BASE_URL, timeout=2)
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise CommandError(f"No web server answered at {settings.PUBLIC_BASE_URL}.") from None
                time.sleep(0.5)

    def _set_up(self) -> SyncPair:
        app = xero_sandbox.ensure_demo_app()
        organisation = Organisation.objects.order_by("name").first()
        authorize_url = connections.start_xero_connect(app.client_id, app.client_secret)
        state, code = self._consent(app, organisation, authorize_url)
        consent = connections.finish_xero_callback(state, code)
        xero = connections.pick_xero_tenant(consent, str(organisation.tenant_id))

        pipedrive_sandbox.ensure_demo_company()
        pipedrive = connections.connect_pipedrive_api_token(pipedrive_sandbox.DEMO_API_TOKEN)

        pair = pairs.create_pair(DEMO_PAIR, xero, pipedrive)
        subscription = webhooks.register_xero_webhook(  # the developer portal's "add a webhook"
            app.client_id, pairs.xero_webhook_url(pair), categories="CONTACT,INVOICE,PAYMENT"
        )
        setup_status.save_xero_webhook_key(pair, subscription.signing_key)
        setup_status.run_pipedrive_setup(pair)
        setup_status.register_webhooks(pair)
        # Xero's portal button; the connector answers it over HTTP, so the web server must be up.
        setup_status.sandbox_intent_to_receive(pair)
        return pair

    @staticmethod
    def _consent(app, organisation, authorize_url: str) -> tuple[str, str]:
        """The user's "Allow" on the emulator's consent page for one organisation: the same grant
        and code its consent view makes. Returns the callback's state and code."""
        query = {name: values[0] for name, values in parse_qs(urlsplit(authorize_url).query).items()}
        with transaction.atomic():
            grant = xero_sandbox.connect(app, [organisation], query["scope"])
            code = identity.issue_code(
                grant,
                query["redirect_uri"],
                query.get("code_challenge", ""),
                query.get("code_challenge_method", ""),
            )
        return query["state"], code.code
