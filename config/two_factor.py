"""The admin's second factor (TOTP, django-otp) when ``REQUIRE_2FA`` is on.

- The login form (``AdminLoginForm``) checks the password and, for a user with a confirmed
  authenticator app, the code from it; a right code marks the session verified (``otp_login``).
- A staff user who has no authenticator app yet logs in with the password only and is sent to
  the enrolment page (``enrol``): a QR code and the secret for the app, then a code from it, which
  confirms the device and verifies the session. Until then no admin page opens
  (``ConnectorAdminSite.has_permission``).
"""

from __future__ import annotations

import base64

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import mark_safe
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.forms import OTPAuthenticationFormMixin
from django_otp.plugins.otp_totp.models import TOTPDevice

DEVICE_NAME = "Authenticator app"


def needs_second_factor(user) -> bool:
    """A signed-in staff user the admin still refuses for want of a verified second factor."""
    return bool(
        settings.REQUIRE_2FA
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and not user.is_verified()
    )


class AdminLoginForm(OTPAuthenticationFormMixin, AdminAuthenticationForm):
    """The admin's login: the password, and the authenticator code when the user has an app."""

    otp_device = forms.CharField(required=False, widget=forms.HiddenInput)
    otp_token = forms.CharField(
        required=False,
        label="Authentication code",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="The 6-digit code from your authenticator app (leave empty if you have not set one up).",
    )
    otp_challenge = forms.CharField(required=False)
    otp_error_messages = {
        **OTPAuthenticationFormMixin.otp_error_messages,
        "token_required": "Please enter the 6-digit code from your authenticator app.",
        "invalid_token": "That code is not right (or has expired). Please enter the current code.",
    }

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if settings.REQUIRE_2FA and user is not None and user_has_device(user, confirmed=True):
            if not cleaned.get("otp_device"):  # one app per user: its code, no device to pick
                device = TOTPDevice.objects.devices_for_user(user, confirmed=True).first()
                cleaned["otp_device"] = device.persistent_id if device else ""
            self.clean_otp(user)
        return cleaned


class EnrolForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


def _pending_device(user) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def enrol(request, site):
    """Set up the authenticator app of the signed-in staff user, then open the admin."""
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return redirect(f"{reverse('admin:login', current_app=site.name)}?next={request.path}")
    if user.is_verified():
        return redirect(reverse("admin:index", current_app=site.name))
    if user_has_device(user, confirmed=True):
        # An app is set up already: its code is asked at login, not replaced from a password-only session.
        return redirect(reverse("admin:login", current_app=site.name))
    device = _pending_device(user)
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"].strip().replace(" ", "")):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            return redirect(reverse("admin:index", current_app=site.name))
        form.add_error("code", "That code is not right (or has expired). Enter the code the app shows now.")
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    context = {
        **site.each_context(request),
        "title": "Set up two-factor authentication",
        "form": form,
        "qr_svg": mark_safe(qr_svg(device.config_url)),  # noqa: S308 - our own SVG
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "secret_raw": secret,
    }
    return TemplateResponse(request, "admin/two_factor_enrol.html", context)
