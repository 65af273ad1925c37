"""Carrier webhook endpoints: authenticate, store, answer. Everything else happens in the apply task.

Answers: 200 stored; 400 never processable (stored as invalid); 401 bad basic auth; 404 unknown
secret; 503 when we could not store (the carrier retries). Never a 4xx for a report we could
process later. See docs/carriers.md.
"""

from __future__ import annotations

import base64
import hmac
import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import WebhookKind
from .selectors import WebhookAccount, account_for_webhook
from .services import WebhookRejected, webhook_receive

log = logging.getLogger(__name__)


def _basic_auth_ok(request: HttpRequest, account: WebhookAccount) -> bool:
    if not account.username:
        return True
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Basic "):
        return False
    try:
        username, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    # Both compared in full (no short-circuit), in constant time.
    user_ok = hmac.compare_digest(username.encode(), account.username.encode())
    password_ok = hmac.compare_digest(password.encode(), account.password.encode())
    return user_ok & password_ok


def _receive(request: HttpRequest, secret: str, kind: str) -> HttpResponse:
    try:
        account = account_for_webhook(secret)
    except DatabaseError:
        log.exception("webhook account lookup failed")
        return HttpResponse(status=503)
    if account is None:
        return HttpResponse(status=404)
    if not _basic_auth_ok(request, account):
        response = HttpResponse(status=401)
        response["WWW-Authenticate"] = 'Basic realm="parley-webhooks"'
        return response
    try:
        webhook_receive(account_id=account.id, kind=kind, body=request.body)
    except WebhookRejected as exc:
        return JsonResponse({"error": "invalid_body", "reason": str(exc)}, status=400)
    except DatabaseError:
        log.exception("could not store a %s webhook for carrier account %s", kind, account.id)
        return HttpResponse(status=503)
    return HttpResponse(status=200)


@csrf_exempt
@require_POST
def sinch_delivery(request: HttpRequest, secret: str) -> HttpResponse:
    return _receive(request, secret, WebhookKind.DELIVERY)


@csrf_exempt
@require_POST
def sinch_inbound(request: HttpRequest, secret: str) -> HttpResponse:
    return _receive(request, secret, WebhookKind.INBOUND)
