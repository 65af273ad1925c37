"""Carrier webhook endpoints: authenticate, store, answer. Everything else happens in the apply task.

Answers: 200 stored (also for a deactivated account: flagged on the row); 400 never processable
(stored as invalid); 401 bad basic auth; 404 a secret that never existed; 413 too large; 503 when
we could not look the account up or store the body (the carrier retries). Never a 4xx for a report
we could process later. Every answer but 200 is logged and counted (carriers/health.py).
See docs/carriers.md.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.lanes import Answer, answer_to_response

from .health import webhook_refusal_record
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


def _refused(answer: Answer, *, account_id: int | None, kind: str, reason: str) -> Answer:
    webhook_refusal_record(account_id=account_id, kind=kind, status=answer.status, reason=reason)
    return answer


def webhook_answer(*, secret: str, kind: str, authorization: str, body: bytes | None) -> Answer:
    """The whole endpoint, transport aside: the Django views below and the WSGI fast lane
    (carriers/wsgi.py) both answer with this. body None: larger than DATA_UPLOAD_MAX_MEMORY_SIZE."""
    try:
        account = account_for_webhook(secret)
    except DatabaseError as exc:
        # Not a 404: the secret may well exist, and Sinch drops a report answered with a 4xx.
        reason = f"carrier account lookup failed: {type(exc).__name__}"
        return _refused(Answer(503), account_id=None, kind=kind, reason=reason)
    if account is None:
        return _refused(Answer(404), account_id=None, kind=kind, reason="no carrier account has this webhook secret")
    if not _basic_auth_ok(authorization, account):
        reason = "basic auth missing" if not authorization else "basic auth does not match"
        return _refused(_UNAUTHORIZED, account_id=account.id, kind=kind, reason=reason)
    if body is None:
        reason = f"body larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
        return _refused(Answer(413), account_id=account.id, kind=kind, reason=reason)
    try:
        webhook_receive(account_id=account.id, kind=kind, body=body, account_inactive=not account.is_active)
    except WebhookRejected as exc:
        payload = json.dumps({"error": "invalid_body", "reason": str(exc)}).encode()
        answer = Answer(400, payload, (("Content-Type", "application/json"),))
        return _refused(answer, account_id=account.id, kind=kind, reason=f"invalid body: {exc}")
    except DatabaseError as exc:
        log.exception("could not store a %s webhook for carrier account %s", kind, account.id)
        reason = f"could not store the body: {type(exc).__name__}"
        return _refused(Answer(503), account_id=account.id, kind=kind, reason=reason)
    return Answer(200)


def _receive(request: HttpRequest, secret: str, kind: str) -> HttpResponse:
    try:
        body: bytes | None = request.body
    except RequestDataTooBig:
        body = None
    answer = webhook_answer(
        secret=secret, kind=kind, authorization=request.META.get("HTTP_AUTHORIZATION", ""), body=body
    )
    response = answer_to_response(answer)
    # Refusals are logged by webhook_answer without the secret; django.request would log the path with it.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


@csrf_exempt
@require_POST
def sinch_delivery(request: HttpRequest, secret: str) -> HttpResponse:
    return _receive(request, secret, WebhookKind.DELIVERY)


@csrf_exempt
@require_POST
def sinch_inbound(request: HttpRequest, secret: str) -> HttpResponse:
    return _receive(request, secret, WebhookKind.INBOUND)
