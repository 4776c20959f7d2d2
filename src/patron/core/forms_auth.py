"""Django's auth forms, adapted: email as the login name, audit on reset requests."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import forms as auth_forms
from django.utils.translation import gettext_lazy as _

from patron.core.models import AuditAction, User
from patron.core.services import record_audit


class LoginForm(auth_forms.AuthenticationForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("Email")
        self.fields["username"].widget.attrs.update({"autocomplete": "email", "autofocus": True})


class PasswordResetForm(auth_forms.PasswordResetForm):
    def save(self, *args: Any, **kwargs: Any) -> None:
        email = self.cleaned_data["email"].lower()
        self.cleaned_data["email"] = email
        super().save(*args, **kwargs)
        user = User.objects.filter(email=email, is_active=True).first()
        if user is not None:
            record_audit(
                action=AuditAction.PASSWORD_RESET_REQUESTED,
                workspace=None,
                actor=user,
                target=email,
            )
