"""drf-spectacular customisation for the whole API (DEFAULT_SCHEMA_CLASS): the API key scheme, the
operations' descriptions, and the error answers every operation can give.

Imported by OrganizationsConfig.ready() (extensions register on import)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_doc

from .errors import ErrorSerializer


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "organizations.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <key>` (also `Api-Key <key>`). Keys: /api/v1/api-keys.",
        }


# The errors any operation of the API can answer, all in the error shape of organizations/api/errors.py.
COMMON_ERRORS = {
    "400": "Invalid input: `error.fields` names each offending field (or query parameter) and why.",
    "401": "No credentials, or an unknown or revoked API key.",
    "403": "Not allowed: the member's role or the API key's scope does not cover this operation.",
    "429": "Too many requests for this API key; retry after the `Retry-After` header's seconds.",
}
NOT_FOUND = "No such object in your organization (another organization's object answers the same)."
ERROR_DESCRIPTIONS = {**COMMON_ERRORS, "404": NOT_FOUND, "409": "Refused: conflicts with the current state."}
NO_BODY = "No response body"


class ParleyAutoSchema(AutoSchema):
    def get_description(self) -> str:  # type: ignore[override]
        """The action's docstring, else the view class's own: never one inherited from a mixin or base
        (those are written for developers, e.g. TenantAPIMixin's)."""
        action = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        action_doc = get_doc(action) if action is not None and _own_doc(action) else ""
        view_doc = get_doc(self.view.__class__) if vars(self.view.__class__).get("__doc__") else ""
        return action_doc or view_doc

    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            # An empty query parameter is refused (organizations.api.base.check_query_params): say so.
            schema = parameter.get("schema", {})
            if parameter["in"] == "query" and schema.get("type") == "string" and "enum" not in schema:
                schema.setdefault("minLength", 1)
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        errors = dict(COMMON_ERRORS)
        if "{" in self.path:
            errors["404"] = NOT_FOUND
        for code in errors:
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code, direction=direction)
        for code, response in responses.items():
            if code in ERROR_DESCRIPTIONS and not response.get("description"):
                response["description"] = ERROR_DESCRIPTIONS[code]
            if code == "204" and response.get("description") == NO_BODY:
                # A DELETE's 204 is an answer in itself; any other body-less answer must say what it means.
                response["description"] = "Deleted." if self.method == "DELETE" else NO_BODY
        return dict(sorted(responses.items()))


def _own_doc(method) -> bool:
    """A method defined on one of our classes (DRF's generic methods carry DRF's own docstrings)."""
    return not getattr(method, "__module__", "").startswith("rest_framework")
