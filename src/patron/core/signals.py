"""Framework glue: Django's login signals feed the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from patron.core.models import AuditAction, User
from patron.core.services import RequestInfo, record_audit


def request_info(request: HttpRequest | None) -> RequestInfo:
    if request is None:
        return RequestInfo()
    return RequestInfo(
        ip_address=request.META.get("REMOTE_ADDR") or None,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


@receiver(user_logged_in)
def audit_login(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    record_audit(
        action=AuditAction.LOGIN, workspace=None, actor=user, request_info=request_info(request)
    )


@receiver(user_logged_out)
def audit_logout(sender: Any, request: HttpRequest, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        record_audit(
            action=AuditAction.LOGOUT,
            workspace=None,
            actor=user,
            request_info=request_info(request),
        )


@receiver(user_login_failed)
def audit_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    email = str(credentials.get("username") or credentials.get("email") or "")
    record_audit(
        action=AuditAction.LOGIN_FAILED,
        workspace=None,
        actor=User.objects.filter(email=email.lower()).first(),
        target=email,
        request_info=request_info(request),
    )
