"""/api/v1/ lines, contacts (+ bulk import), opt-outs, blasts. Conversations are in conversations.py.

Every queryset goes through messaging.selectors with request.organization: another tenant's object
answers 404; foreign ids in payloads are refused with 400 naming the field. See docs/api.md.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiRequest, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from organizations.api.base import TenantAPIMixin
from organizations.api.errors import Conflict, DuplicateErrorSerializer, ErrorSerializer
from organizations.api.parsers import BoundedJSONParser
from organizations.auth import IsOrganizationAdminOrReadOnly

from .. import selectors
from ..models import Blast, Contact, Line, OptOut
from ..phone import try_normalize
from ..services import blasts as blast_services
from ..services import contacts as contact_services
from ..services import erasure
from ..services import lines as line_services
from .serializers import (
    BlastSerializer,
    CarrierUnavailable,
    ContactImportCsvSerializer,
    ContactImportResultSerializer,
    ContactImportSerializer,
    ContactSerializer,
    LineSerializer,
    OptOutSerializer,
)


class CsvParser(parsers.BaseParser):
    """A raw `text/csv` request body, handed over as text."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return stream.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise exceptions.ParseError("The CSV must be UTF-8.") from None


def _phone_query_param(request, name: str = "phone_number") -> str | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    phone = try_normalize(raw)
    if phone is None:
        raise DjangoValidationError({name: [f"'{raw}' is not a valid phone number."]})
    return phone


_PHONE_FILTER = OpenApiParameter("phone_number", str, description="Exact number, any common format.")


class LineViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Lines are archived (is_active=false), never deleted: their history stays. Any member reads them;
    only admins (and full-scope API keys) add or change one, as on the web app's settings pages."""

    permission_classes = [IsOrganizationAdminOrReadOnly]
    serializer_class = LineSerializer
    queryset = Line.objects.none()
    pagination_ordering = ("id",)

    def get_queryset(self):
        return selectors.lines_for(organization=self.organization)

    def perform_create(self, serializer):
        with _carrier_unavailable_is_503():
            serializer.instance = line_services.line_save(organization=self.organization, **serializer.validated_data)

    def perform_update(self, serializer):
        with _carrier_unavailable_is_503():
            line_services.line_save(
                organization=self.organization, line=serializer.instance, **serializer.validated_data
            )


@contextmanager
def _carrier_unavailable_is_503():
    try:
        yield
    except line_services.LineNumberUnverifiable:
        raise CarrierUnavailable() from None


_DUPLICATE = OpenApiResponse(DuplicateErrorSerializer, description="Another contact has this number: `existing_id`.")


@extend_schema_view(
    list=extend_schema(parameters=[_PHONE_FILTER]),
    create=extend_schema(responses={201: ContactSerializer, 409: _DUPLICATE}),
    update=extend_schema(responses={200: ContactSerializer, 409: _DUPLICATE}),
    partial_update=extend_schema(responses={200: ContactSerializer, 409: _DUPLICATE}),
)
class ContactViewSet(TenantAPIMixin, viewsets.ModelViewSet):
    serializer_class = ContactSerializer
    queryset = Contact.objects.none()
    pagination_ordering = ("id",)
    parser_classes = [BoundedJSONParser, CsvParser, parsers.MultiPartParser, parsers.FormParser]

    def get_queryset(self):
        phone = _phone_query_param(self.request) if self.action == "list" else None
        # A privacy request often comes after the delete: erase finds archived contacts too.
        return selectors.contacts_for(
            organization=self.organization, phone_number=phone, include_archived=self.action == "erase"
        )

    def perform_create(self, serializer):
        with self._duplicate_is_409():
            serializer.instance = contact_services.contact_create(
                organization=self.organization, **serializer.validated_data
            )

    def perform_update(self, serializer):
        with self._duplicate_is_409():
            contact_services.contact_update(contact=serializer.instance, **serializer.validated_data)

    @contextmanager
    def _duplicate_is_409(self):
        """The number is another contact's: 409 with that contact's id, so the client can use it."""
        try:
            yield
        except contact_services.ContactExists as exc:
            existing = (
                selectors.contacts_for(organization=self.organization, phone_number=exc.phone_number)
                .values_list("id", flat=True)
                .first()
            )
            raise Conflict(
                exc.messages[0], code="duplicate", field="phone_number", extra={"existing_id": existing}
            ) from None

    @extend_schema(
        summary="Delete a contact (archive: hidden, never texted again, history kept)",
        description=(
            "The contact disappears from lists, audiences and lookups and is never texted again; its "
            "messages, conversations, blast membership and link clicks are kept (texting records are "
            "compliance records). Adding the number again brings the contact back. To remove personal "
            "data for a privacy request use `POST /contacts/{id}/erase`."
        ),
        responses={204: None},
    )
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        erasure.contact_archive(contact=instance)

    @extend_schema(
        summary="Erase a contact's personal data (privacy request)",
        description=(
            "Irreversible. Redacts the name, email, custom fields and number of the contact and the text "
            "of its messages (and the data its short links carried); keeps every message's status, times "
            "and segment count, blast and link counts, and the opt-out as proof (a keyed hash of the "
            "number: the number stays opted out if it comes back). The contact is archived too."
        ),
        request=None,
        responses={200: ContactSerializer},
    )
    @action(detail=True, methods=["post"], url_path="erase")
    def erase(self, request, pk=None):
        contact = erasure.contact_erase(contact=self.get_object())
        return Response(ContactSerializer(contact).data)

    @extend_schema(
        summary="Import contacts in bulk",
        description=(
            f'Up to {contact_services.IMPORT_MAX_ROWS} contacts per request, as JSON (`{{"contacts": [...]}}`), '
            "a `text/csv` body, or a multipart `file`. Good rows are inserted in one statement; bad rows are "
            "reported one by one with the reason per field. `?on_conflict=update` (CSV) or the `on_conflict` "
            "key overwrites existing contacts instead of skipping them."
        ),
        request={
            "application/json": ContactImportSerializer,
            "text/csv": OpenApiRequest({"type": "string"}),
            "multipart/form-data": ContactImportCsvSerializer,
        },
        parameters=[OpenApiParameter("on_conflict", str, enum=list(contact_services.OnConflict.choices))],
        responses={200: ContactImportResultSerializer},
    )
    @action(detail=False, methods=["post"], url_path="import")
    def import_contacts(self, request):
        rows, on_conflict = self._import_input(request)
        result = contact_services.contacts_import(organization=self.organization, rows=rows, on_conflict=on_conflict)
        return Response(ContactImportResultSerializer(result).data)

    def _import_input(self, request) -> tuple[list, str]:
        on_conflict = request.query_params.get("on_conflict", contact_services.OnConflict.SKIP)
        data = request.data
        if isinstance(data, str):  # text/csv
            return contact_services.contact_rows_from_csv(data), on_conflict
        if "file" in request.FILES:
            form = ContactImportCsvSerializer(data=data)
            form.is_valid(raise_exception=True)
            try:
                text = form.validated_data["file"].read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise DjangoValidationError({"file": ["The CSV must be UTF-8."]}) from None
            return contact_services.contact_rows_from_csv(text), form.validated_data["on_conflict"]
        # JSON object. The row limit and on_conflict are checked by the service, the same for every format.
        if not hasattr(data, "get"):  # a bare JSON array or scalar: the documented body is an object
            raise DjangoValidationError({"contacts": ['Send an object: {"contacts": [...], "on_conflict": ...}.']})
        contacts = data.get("contacts")
        if not isinstance(contacts, list) or not contacts:
            raise DjangoValidationError({"contacts": ["A non-empty list of contact objects is required."]})
        return contacts, data.get("on_conflict", on_conflict)


@extend_schema_view(list=extend_schema(parameters=[_PHONE_FILTER]))
class OptOutViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Creating is idempotent: 201 for a new opt-out, 200 with the existing one otherwise.
    Deleting lets the number be texted again."""

    serializer_class = OptOutSerializer
    queryset = OptOut.objects.none()
    pagination_ordering = ("-created_at", "-id")

    def get_queryset(self):
        phone = _phone_query_param(self.request) if self.action == "list" else None
        return selectors.opt_outs_for(organization=self.organization, phone_number=phone)

    @extend_schema(responses={201: OptOutSerializer, 200: OptOutSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        opt_out, created = contact_services.opt_out_create(organization=self.organization, **serializer.validated_data)
        return Response(
            OptOutSerializer(opt_out).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    def perform_destroy(self, instance):
        contact_services.opt_out_delete(opt_out=instance)


def _audience(data: dict) -> blast_services.Audience:
    return blast_services.Audience(
        contact_ids=data.get("contact_ids"),
        all_contacts=data.get("all", False),
        custom_fields=data.get("custom_fields") or {},
        created_since=data.get("created_since"),
    )


_NOT_DRAFT = OpenApiResponse(ErrorSerializer, description="Only a draft can be changed (`conflict`, naming `status`).")


@extend_schema_view(
    partial_update=extend_schema(
        summary="Edit a draft blast",
        description="Any of line, name, body, send_at; `audience` chooses the recipients again, now.",
        responses={200: BlastSerializer, 409: _NOT_DRAFT},
    ),
    destroy=extend_schema(summary="Delete a draft blast", responses={204: None, 409: _NOT_DRAFT}),
)
class BlastViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """A blast is created as a draft, with its audience chosen at that moment (an audience that matches
    no contact is refused). A draft can be edited and deleted; launch, preview and cancel are their own
    operations. Once launched, a blast is a record of what was sent: it can only be canceled."""

    serializer_class = BlastSerializer
    queryset = Blast.objects.none()
    pagination_ordering = ("-created_at", "-id")
    # PATCH only: a blast is never replaced whole (its counters and status are not the client's).
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.blasts_for(organization=self.organization)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        audience = data.pop("audience")
        serializer.instance = blast_services.blast_create(
            organization=self.organization, created_by=self.request.user, audience=_audience(audience), **data
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        audience = data.pop("audience", None)
        with _not_draft_is_409():
            serializer.instance = blast_services.blast_update(
                organization=self.organization,
                blast_id=serializer.instance.pk,
                audience=_audience(audience) if audience is not None else None,
                **data,
            )

    def perform_destroy(self, instance):
        with _not_draft_is_409():
            blast_services.blast_delete(organization=self.organization, blast_id=instance.pk)


@contextmanager
def _not_draft_is_409():
    try:
        yield
    except blast_services.BlastNotDraft as exc:
        raise Conflict(str(exc), field="status") from None
