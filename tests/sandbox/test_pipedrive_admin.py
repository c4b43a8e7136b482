"""The sandbox Pipedrive records are browsable in the admin (the sandbox pages link there)."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from sandbox import clock
from sandbox.pipedrive import services
from sandbox.pipedrive.models import Company, Deal, Organization, Stage


@pytest.mark.django_db
def test_every_record_type_has_a_working_admin_list(admin_client):
    services.ensure_demo_company()
    models = list(apps.get_app_config("sandbox_pipedrive").get_models())
    registered = [m for m in models if admin.site.is_registered(m)]
    assert registered == models
    for model in registered:
        response = admin_client.get(reverse(f"admin:sandbox_pipedrive_{model._meta.model_name}_changelist"))
        assert response.status_code == 200, model
    page = admin_client.get(reverse("admin:sandbox_pipedrive_company_changelist")).content.decode()
    assert str(Company.objects.get().daily_budget) in page.replace(",", "")


@pytest.mark.django_db
def test_deleting_a_company_takes_its_records():
    company = services.ensure_demo_company()
    now = clock.now()
    org = Organization.objects.create(company=company, name="Acme", add_time=now, update_time=now)
    Deal.objects.create(
        company=company, title="INV-1", org=org, stage=Stage.objects.first(), add_time=now, update_time=now
    )
    company.delete()
    assert not Deal.objects.exists() and not Stage.objects.exists() and not Organization.objects.exists()


@pytest.mark.django_db
def test_the_deal_and_organization_pages_list_their_activities(admin_client):
    from sandbox.pipedrive.models import Activity, User

    company = services.ensure_demo_company()
    now = clock.now()
    org = Organization.objects.create(company=company, name="Acme", add_time=now, update_time=now)
    deal = Deal.objects.create(
        company=company, title="INV-1", org=org, stage=Stage.objects.first(), add_time=now, update_time=now
    )
    owner = User.objects.filter(company=company).first()
    for subject, linked in (("INV-1 overdue", {"deal": deal, "org": org}), ("Elsewhere", {})):
        Activity.objects.create(
            company=company, owner=owner, subject=subject, add_time=now, update_time=now, **linked
        )
    for page in (
        reverse("admin:sandbox_pipedrive_deal_change", args=[deal.pk]),
        reverse("admin:sandbox_pipedrive_organization_change", args=[org.pk]),
    ):
        text = admin_client.get(page).content.decode()
        assert 'id="activities"' in text and "INV-1 overdue" in text and "Elsewhere" not in text
