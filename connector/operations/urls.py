"""Mounted under /admin/ before the admin site: /admin/health/ is ``audit:health``."""

from django.contrib import admin
from django.urls import path

from connector.operations import views

app_name = "audit"

urlpatterns = [path("health/", admin.site.admin_view(views.health_page), name="health")]
