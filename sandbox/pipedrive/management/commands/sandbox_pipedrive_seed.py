from django.core.management.base import BaseCommand

from sandbox.pipedrive import services


class Command(BaseCommand):
    help = "Create the sandbox Pipedrive demo company (pipeline, stages, admin, OAuth app); print its tokens."

    def handle(self, *args, **options):
        company = services.ensure_demo_company()
        self.stdout.write(
            f"Sandbox Pipedrive company: {company} (daily budget {company.daily_budget} tokens)"
        )
        self.stdout.write(f"  API token (x-api-token): {services.DEMO_API_TOKEN}")
        self.stdout.write(
            f"  OAuth client id / secret: {services.DEMO_CLIENT_ID} / {services.DEMO_CLIENT_SECRET}"
        )
        self.stdout.write("  API base: <base>/sandbox/pipedrive  (api/v2/..., api/v1/...)")
