"""Partner webhooks: authorise by the secret in the path (unknown → 404), parse, call one service.

- POST /integrations/nice/<secret>/events: an agent-side event of a chat (starts polling when the
  line's "start polling on chat creation" flag is off; ends the chat on ChatEnded).
- POST /integrations/ringcentral/<secret>/webhook: the Team Messaging subscription. A validation
  request (Validation-Token header) is answered at once with the same header, as RingCentral requires
  within 3 s; a post is stored and sent as SMS by a task.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import wire
from .selectors import nice_connection_for_webhook, ringcentral_connection_for_webhook
from .services import UnknownChat, nice_event_receive, ringcentral_webhook_receive


def _json_body(request: HttpRequest) -> dict | None:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _bad(field: str, reason: str) -> JsonResponse:
    return JsonResponse({"error": "invalid", "field": field, "reason": reason}, status=400)


@csrf_exempt
@require_POST
def nice_events(request: HttpRequest, secret: str) -> HttpResponse:
    conn = nice_connection_for_webhook(secret)
    if conn is None:
        return HttpResponse(status=404)
    payload = _json_body(request)
    if payload is None:
        return _bad("body", "A JSON object is required.")
    if not payload.get(wire.NICE_EVENT_CHAT_FIELD):
        return _bad(wire.NICE_EVENT_CHAT_FIELD, "This field is required.")
    try:
        result = nice_event_receive(connection_id=conn.pk, payload=payload)
    except UnknownChat:
        return JsonResponse({"error": "not_found", "field": wire.NICE_EVENT_CHAT_FIELD}, status=404)
    return JsonResponse({"result": result})


@csrf_exempt
@require_POST
def ringcentral_webhook(request: HttpRequest, secret: str) -> HttpResponse:
    conn = ringcentral_connection_for_webhook(secret)
    if conn is None:
        return HttpResponse(status=404)
    token = request.headers.get(wire.RC_VALIDATION_HEADER)
    if token is not None:
        response = HttpResponse(status=200)
        response[wire.RC_VALIDATION_HEADER] = token
        return response
    payload = _json_body(request)
    if payload is None:
        return _bad("body", "A JSON object is required.")
    return JsonResponse({"result": ringcentral_webhook_receive(connection=conn, payload=payload)})
