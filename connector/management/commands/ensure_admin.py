"""Create the first admin user, once, and say how to log in."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an admin user on first run (ADMIN_USERNAME, default 'admin') and print its login."

    def handle(self, *args, **options):
        User = get_user_model()
        login_file = Path(settings.DATA_DIR) / "first-run-login.txt"
        admin_url = f"{settings.PUBLIC_BASE_URL}/admin/"
        if User.objects.filter(is_superuser=True).exists():
            names = ", ".join(User.objects.filter(is_superuser=True).values_list("username", flat=True)[:3])
            hint = f" (first-run password in {login_file})" if login_file.exists() else ""
            self.stdout.write(f"Admin: {admin_url} — log in as {names}{hint}.")
            return
        username = os.environ.get("ADMIN_USERNAME", "admin")
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        # Kept beside the database (mode 600) so a second run can point to it; change
        # the password in the admin and delete the file.
        fd = os.open(login_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{admin_url}\nusername: {username}\npassword: {password}\n")
        self.stdout.write(self.style.SUCCESS("Created the admin user for this installation."))
        self.stdout.write(f"  Open     {admin_url}")
        self.stdout.write(f"  Username {username}")
        self.stdout.write(f"  Password {password}")
        self.stdout.write(
            f"  (also saved in {login_file}; change the password in the admin, then delete that file)"
        )
        if settings.REQUIRE_2FA:
            self.stdout.write(
                "  Two-factor login is on: after the password, scan the QR code shown with an "
                "authenticator app and enter its code."
            )
