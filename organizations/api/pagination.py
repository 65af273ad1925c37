"""Keyset ("cursor") pagination for every list of the API. See docs/api.md.

DRF's CursorPagination positions on the first ordering field only and cannot handle a nullable one
(conversations order by last_message_at, NULL for a conversation without messages). This one
encodes the full sort key of the last row (e.g. (last_message_at, id)) in an opaque cursor and asks
for the rows strictly after it, so a page is one index range scan however deep the client goes, and
rows inserted meanwhile never shift or repeat a page.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from django.db.models import Q
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

DEFAULT_LIMIT = 50
# A page of 200 conversations with their contact is still one query and a few ms to serialize.
MAX_LIMIT = 200


class KeysetPagination(BasePagination):
    cursor_query_param = "cursor"
    limit_query_param = "limit"
    # Override per view with `pagination_ordering`; the last field must be unique (the pk).
    ordering: tuple[str, ...] = ("-id",)

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        ordering = tuple(getattr(view, "pagination_ordering", None) or self.ordering)
        self.fields = [(name.lstrip("-"), name.startswith("-")) for name in ordering]
        self.limit = self._limit(request)
        position = self._decode(request.query_params.get(self.cursor_query_param))
        queryset = queryset.order_by(*ordering)
        if position is not None:
            queryset = queryset.filter(self._after(position))
        rows = list(queryset[: self.limit + 1])
        self.has_next = len(rows) > self.limit
        self.page = rows[: self.limit]
        return self.page

    def get_paginated_response(self, data):
        return Response({"next": self.get_next_link(), "results": data})

    def get_next_link(self) -> str | None:
        if not self.has_next or not self.page:
            return None
        last = self.page[-1]
        cursor = self._encode([getattr(last, name) for name, _ in self.fields])
        return replace_query_param(self.request.build_absolute_uri(), self.cursor_query_param, cursor)

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque cursor from the previous page's `next`.",
                "schema": {"type": "string"},
            },
            {
                "name": self.limit_query_param,
                "required": False,
                "in": "query",
                "description": f"Page size, 1..{MAX_LIMIT} (default {DEFAULT_LIMIT}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            },
        ]

    # --- internals -------------------------------------------------------------------------------

    def _limit(self, request) -> int:
        raw = request.query_params.get(self.limit_query_param)
        if raw is None:
            return DEFAULT_LIMIT
        # ASCII digits only: int() also reads "١٢" and " 5 ", which no client means.
        value = int(raw) if raw.isascii() and raw.isdigit() else 0
        if not 1 <= value <= MAX_LIMIT:
            raise serializers.ValidationError({self.limit_query_param: [f"Must be an integer 1..{MAX_LIMIT}."]})
        return value

    def _after(self, position: list) -> Q:
        """Rows strictly after `position` in the sort order (PostgreSQL: NULLs sort as largest)."""
        result = Q(pk__in=[])
        equal = Q()
        for (name, desc), value in zip(self.fields, position, strict=True):
            if value is None:
                # NULL is the largest value: first in a descending order, last in an ascending one.
                beyond = Q(**{f"{name}__isnull": False}) if desc else Q(pk__in=[])
                same = Q(**{f"{name}__isnull": True})
            else:
                beyond = (
                    Q(**{f"{name}__lt": value})
                    if desc
                    else Q(**{f"{name}__gt": value}) | Q(**{f"{name}__isnull": True})
                )
                same = Q(**{name: value})
            result |= equal & beyond
            equal &= same
        return result

    def _encode(self, values: list) -> str:
        encoded = [{"dt": v.isoformat()} if isinstance(v, datetime) else v for v in values]
        return base64.urlsafe_b64encode(json.dumps(encoded, separators=(",", ":")).encode()).decode().rstrip("=")

    def _decode(self, cursor: str | None) -> list | None:
        if not cursor:
            return None
        try:
            raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if not isinstance(raw, list) or len(raw) != len(self.fields):
                raise ValueError
            values: list = []
            for v in raw:
                if isinstance(v, dict):
                    parsed = parse_datetime(v["dt"])
                    if parsed is None:
                        raise ValueError
                    values.append(parsed)
                elif v is None or isinstance(v, int | str):
                    values.append(v)
                else:
                    raise ValueError
            return values
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise serializers.ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None
