"""The demo company the sandbox starts with: admin user with a known API token, pipeline, OAuth app."""

from django.conf import settings
from django.db import transaction

from sandbox import clock
from sandbox.pipedrive.models import Company, OAuthApp, Pipeline, Plan, Stage, User

DEMO_DOMAIN = "sandbox-demo"
# 40 chars like a real token; printed by the seed command.
DEMO_API_TOKEN = "sandbox0pipedrive0dev0token0000000000000"  # noqa: S105 (published dev token)
DEMO_CLIENT_ID = "sandbox-pipedrive-client"
DEMO_CLIENT_SECRET = "sandbox-pipedrive-secret"  # noqa: S105 (a sandbox's published demo credential)


@transaction.atomic
def ensure_demo_company() -> Company:
    """The demo company with its admin user (known API token), a pipeline with stages and an OAuth app."""
    company, _ = Company.objects.get_or_create(
        domain=DEMO_DOMAIN, defaults={"name": "Sandbox Demo Ltd", "plan": Plan.GROWTH, "seats": 3}
    )
    User.objects.get_or_create(
        api_token=DEMO_API_TOKEN,
        defaults={
            "company": company,
            "name": "Demo Admin",
            "email": "admin@sandbox-demo.example",
            "is_admin": True,
        },
    )
    if not company.pipelines.exists():
        now = clock.now()
        pipeline = Pipeline.objects.create(
            company=company, name="Sales", order_nr=1, add_time=now, update_time=now
        )
        for order, (name, probability) in enumerate(
            [("Invoice drafted", 20), ("Invoice sent", 60), ("Partly paid", 80), ("Paid", 100)], start=1
        ):
            Stage.objects.create(
                pipeline=pipeline,
                name=name,
                order_nr=order,
                deal_probability=probability,
                add_time=now,
                update_time=now,
            )
    OAuthApp.objects.get_or_create(
        client_id=DEMO_CLIENT_ID,
        defaults={
            "name": "ml-connector (sandbox)",
            "client_secret": DEMO_CLIENT_SECRET,
            "redirect_uri": f"{settings.PUBLIC_BASE_URL}/connect/pipedrive/callback/",
        },
    )
    return company
