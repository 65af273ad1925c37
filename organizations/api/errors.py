"""One error shape for every 4xx of the API (see docs/api.md):

    {"error": {"code": "invalid", "message": "...", "fields": {"phone_number": ["... reason ..."]}}}

`fields` names every offending input (nested inputs as dotted paths: "audience.contact_ids",
"rows.3.email") and is {} for errors that are not about one field (404, 401, 403, 429).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.views import exception_handler as drf_exception_handler

NON_FIELD = "non_field_errors"


class RequestRefused(exceptions.APIException):
    """A request Django refuses to read (too many form fields or files, a body past its size limit).
    Django would answer these with its own HTML 400; the API answers in its error shape instead."""

    status_code = 400


# Django's request-size guards (DATA_UPLOAD_MAX_NUMBER_FIELDS/FILES, DATA_UPLOAD_MAX_MEMORY_SIZE) → our code.
_REQUEST_LIMITS = {
    TooManyFieldsSent: ("too_many_fields", "Too many form fields in the request."),
    TooManyFilesSent: ("too_many_files", "Too many files in the request."),
    RequestDataTooBig: ("too_large", "The request body is too large."),
}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        # Services raise Django's ValidationError (they know nothing of DRF); same shape as a serializer's.
        exc = exceptions.ValidationError(_django_detail(exc))
    for kind, (code, message) in _REQUEST_LIMITS.items():
        if isinstance(exc, kind):
            exc = RequestRefused(detail=message, code=code)
            break
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = {"error": error_body(exc, response.data)}
    return response


def error_body(exc, data) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_fields(exc.detail)
        first = next(iter(fields.items()), None)
        message = "Invalid input."
        if first:
            message = f"Invalid input: {first[0]}: {first[1][0]}" if first[0] != NON_FIELD else first[1][0]
        return {"code": "invalid", "message": message, "fields": fields}
    if isinstance(exc, Http404 | exceptions.NotFound):
        return {"code": "not_found", "message": "Not found.", "fields": {}}
    if isinstance(exc, DjangoPermissionDenied):
        return {"code": "permission_denied", "message": str(exc) or "Permission denied.", "fields": {}}
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes()
        if not isinstance(code, str):
            code = getattr(exc, "default_code", "error")
        message = _text(exc.detail)
        # Any APIException may name the input at fault by carrying `field` (e.g. a 409 refusal), and add
        # keys of its own with `extra` (a duplicate's `existing_id`).
        field = getattr(exc, "field", None)
        body = {"code": code, "message": message, "fields": {field: [message]} if field else {}}
        return {**body, **(getattr(exc, "extra", None) or {})}
    return {"code": "error", "message": _text(data), "fields": {}}


def flatten_fields(detail, prefix: str = "") -> dict[str, list[str]]:
    """{"audience": {"contact_ids": ["..."]}} → {"audience.contact_ids": ["..."]}; lists of objects get
    their index in the path ("rows.3.email"); a bare list of messages goes under non_field_errors."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = str(key) if not prefix else (prefix if key == NON_FIELD else f"{prefix}.{key}")
            out.update(flatten_fields(value, path))
    elif isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            if detail:
                out.setdefault(prefix or NON_FIELD, []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(flatten_fields(item, f"{prefix}.{index}" if prefix else str(index)))
    elif detail is not None:
        out.setdefault(prefix or NON_FIELD, []).append(str(detail))
    return out


def _django_detail(exc: DjangoValidationError):
    if hasattr(exc, "error_dict"):
        return {
            (NON_FIELD if field == "__all__" else field): [str(m) for m in messages]
            for field, messages in exc.message_dict.items()
        }
    return {NON_FIELD: [str(m) for m in exc.messages]}


def _text(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_text(v) for v in detail)
    return str(detail)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    # An API field named "fields": DRF's metaclass takes declared fields off the class, so the
    # Serializer attribute of that name is untouched (mypy sees the class body only).
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class ErrorSerializer(serializers.Serializer):
    """The error envelope, for the OpenAPI schema."""

    error = ErrorDetailSerializer()


class Conflict(exceptions.APIException):
    """409: the request conflicts with what exists (a duplicate, a state that forbids it)."""

    status_code = 409
    default_code = "conflict"

    def __init__(self, message: str, *, code: str = "conflict", field: str | None = None, extra: dict | None = None):
        super().__init__(detail=message, code=code)
        self.field, self.extra = field, extra


class DuplicateDetailSerializer(ErrorDetailSerializer):
    existing_id = serializers.IntegerField(help_text="The id of the object that already exists.")


class DuplicateErrorSerializer(serializers.Serializer):
    """409 `duplicate`: the error envelope with the existing object's id."""

    error = DuplicateDetailSerializer()


def not_found_handler(request, exception=None):
    """Django's 404 handler: unmatched /api/ URLs answer in the API's error shape, the rest as HTML."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "not_found", "message": "Not found.", "fields": {}}}, status=404)
    return page_not_found(request, exception)
