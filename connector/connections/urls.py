from django.urls import path

from connector.connections import views

app_name = "connector"

urlpatterns = [
    path("xero/", views.xero_start, name="xero-start"),
    path("xero/callback/", views.xero_callback, name="xero-callback"),
    path("xero/pick/<str:state>/", views.xero_pick, name="xero-pick"),
    path("pipedrive/", views.pipedrive_start, name="pipedrive-start"),
    path("pipedrive/callback/", views.pipedrive_callback, name="pipedrive-callback"),
]
