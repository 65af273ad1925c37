"""Carrier webhook endpoints: authenticate, store, answer. Everything else happens in the apply task.

Answers: 200 stored; 400 never processable (stored as invalid); 401 bad basic auth; 404 unknown
secret; 503 when we could not store (the carrier retries). Never a 4xx for a report we could
process later. See docs/carriers.md.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.lanes import Answer, answer_to_response

from .models import WebhookKind
from .selectors import WebhookAccount, account_for_webhook
from .services import WebhookRejected, webhook_receive

log = logging.getLogger(__name__)


def _basic_auth_ok(authorization: str, account: WebhookAccount) -> bool:
    if not account.username:
        return True
    if not authorization.startswith("Basic "):
        return False
    try:
        username, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    # Both compared in full (no short-circuit), in constant time.
    user_ok = hmac.compare_digest(username.encode(), account.username.encode())
    password_ok = hmac.compare_digest(password.encode(), account.password.encode())
    return user_ok & password_ok


_UNAUTHORIZED = Answer(401, headers=(("WWW-Authenticate", 'Basic realm="parley-webhooks"'),))


def webhook_answer(*, secret: str, kind: str, authorization: str, body: bytes) -> Answer:
    """The whole endpoint, transport aside: the Django views below and the WSGI fast lane
    (carriers/wsgi.py) both answer with this."""
    try:
        account = account_for_webhook(secret)
    except DatabaseError:
        log.exception("webhook account lookup failed")
        return Answer(503)
    if account is None:
        return Answer(404)
    if not _basic_auth_ok(authorization, account):
        return _UNAUTHORIZED
    try:
        webhook_receive(account_id=account.id, kind=kind, body=body)
    except WebhookRejected as exc:
        payload = json.dumps({"error": "invalid_body", "reason": str(exc)}).encode()
        return Answer(400, payload, (("Content-Type", "application/json"),))
    except DatabaseError:
        log.exception("could not store a %s webhook for carrier account %s", kind, account.id)
        return Answer(503)
    return Answer(200)


def _receive(request: HttpRequest, secret: str, kind: str) -> HttpResponse:
    answer = webhook_answer(
        secret=secret, kind=kind, authorization=request.META.get("HTTP_AUTHORIZATION", ""), body=request.body
    )
    return answer_to_response(answer)


@csrf_exempt
@require_POST
def sinch_delivery(request: HttpRequest, secret: str) -> HttpResponse:
    return _receive(request, secret, WebhookKind.DELIVERY)


@csrf_exempt
@require_POST
def sinch_inbound(request: HttpRequest, secret: str) -> HttpResponse:
    return _receive(request, secret, WebhookKind.INBOUND)
