"""Send endpoints: thin views over messaging.services.sending. See docs/send-pipeline.md.

    POST /api/v1/conversations/{id}/messages   {body, send_at?, media?}        → 202 message
    POST /api/v1/messages                      {line, to, body, send_at?}      → 202 message
    POST /api/v1/blasts/{id}/launch                                            → 202 blast
    GET|POST /api/v1/blasts/{id}/preview                                       → 200 counts
    POST /api/v1/blasts/{id}/cancel                                            → 200 blast

A send to an opted-out number answers 409 naming the field ("conversation" or "to").
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from organizations.api.errors import ErrorSerializer
from organizations.auth import ApiKeyRateThrottle, IsOrganizationMember

from .. import selectors
from ..services import sending
from .conversations import ConversationViewSet
from .serializers import BlastPreviewSerializer, BlastSerializer, MessageSerializer, OrganizationDateTimeField


class _Refused(APIException):
    """A refused send (409 opted out, 409 wrong blast state, 400 ...) in the API's error envelope, with
    `fields` naming the input at fault (organizations/api/errors.py fills `fields` only for validation
    errors, so the envelope is completed here)."""

    def __init__(self, exc: sending.SendRefused):
        self.status_code = exc.http_status
        self.field = exc.field
        super().__init__(detail=exc.message, code=exc.code)


def refused_response(exc: _Refused) -> Response:
    return Response(
        {
            "error": {
                "code": exc.get_codes(),
                "message": f"{exc.field}: {exc.detail}",
                "fields": {exc.field: [str(exc.detail)]},
            }
        },
        status=exc.status_code,
    )


def _call(fn, **kwargs):
    try:
        return fn(**kwargs)
    except ObjectDoesNotExist:
        raise Http404 from None
    except sending.SendRefused as exc:
        raise _Refused(exc) from None


_OPTED_OUT = OpenApiResponse(ErrorSerializer, description="The recipient has opted out (code `opted_out`).")
_WRONG_STATE = OpenApiResponse(
    ErrorSerializer, description="The blast is not in a state that allows this (`conflict`)."
)


class ConversationMessageInSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=sending.MAX_BODY, trim_whitespace=False)
    send_at = OrganizationDateTimeField(
        required=False,
        allow_null=True,
        help_text="Send later (beat releases it). Without an offset: the organization's time zone.",
    )
    media = serializers.ListField(child=serializers.DictField(), required=False, default=list)


class NewMessageInSerializer(ConversationMessageInSerializer):
    line = serializers.IntegerField(min_value=1)
    to = serializers.CharField(max_length=32, help_text="Recipient number; E.164 or a national US number.")


class _RefusalMixin:
    def handle_exception(self, exc):
        if isinstance(exc, _Refused):
            return refused_response(exc)
        return super().handle_exception(exc)  # type: ignore[misc]  # a mixin: the view's APIView has it


class _SendView(_RefusalMixin, APIView):
    permission_classes = [IsOrganizationMember]
    throttle_classes = [ApiKeyRateThrottle]


class ConversationMessagesSendViewSet(_RefusalMixin, ConversationViewSet):
    # The conversations viewset's `messages` route with the send pipeline's POST added (GET stays
    # theirs). A comment, not a docstring: a docstring would be the operations' description in the schema.

    @extend_schema(
        summary="Send a message in a conversation",
        request=ConversationMessageInSerializer,
        responses={202: MessageSerializer, 409: _OPTED_OUT},
    )
    def send_message(self, request, pk=None):
        data = ConversationMessageInSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        try:
            conversation_id = int(pk)
        except (TypeError, ValueError):
            raise Http404 from None
        message = _call(
            sending.message_send,
            organization=request.organization,
            conversation_id=conversation_id,
            sent_by=request.user,
            **data.validated_data,
        )
        return Response(MessageSerializer(message).data, status=status.HTTP_202_ACCEPTED)


class MessageSendView(_SendView):
    @extend_schema(
        summary="Send a message to a number (starts or continues the conversation)",
        request=NewMessageInSerializer,
        responses={202: MessageSerializer, 409: _OPTED_OUT},
    )
    def post(self, request):
        data = NewMessageInSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        message = _call(
            sending.message_send_to_number,
            organization=request.organization,
            line_id=v.pop("line"),
            sent_by=request.user,
            **v,
        )
        return Response(MessageSerializer(message).data, status=status.HTTP_202_ACCEPTED)


class BlastLaunchView(_SendView):
    @extend_schema(
        summary="Launch a draft blast (now, or at its send_at)",
        request=None,
        responses={202: BlastSerializer, 409: _WRONG_STATE},
    )
    def post(self, request, pk: int):
        blast = _call(sending.blast_launch, organization=request.organization, blast_id=pk)
        return Response(BlastSerializer(blast).data, status=status.HTTP_202_ACCEPTED)


class BlastPreviewView(_SendView):
    @extend_schema(
        summary="What a launch would do: recipients, opt-out exclusions, segments",
        request=None,
        responses={200: BlastPreviewSerializer},
    )
    def get(self, request, pk: int):
        return Response(_call(selectors.blast_preview, organization=request.organization, blast_id=pk))

    post = get


class BlastCancelView(_SendView):
    @extend_schema(
        summary="Cancel a blast: what has not reached the carrier is not sent",
        request=None,
        responses={200: BlastSerializer, 409: _WRONG_STATE},
    )
    def post(self, request, pk: int):
        blast = _call(sending.blast_cancel, organization=request.organization, blast_id=pk)
        return Response(BlastSerializer(blast).data)


_conversation_messages = ConversationMessagesSendViewSet.as_view(
    {"get": "messages", "post": "send_message"}, **ConversationViewSet.messages.kwargs
)

# Listed before the router's routes (messaging/api/urls.py) so that POST .../messages reaches us;
# GET on the same path is still the conversations viewset's `messages` action.
urlpatterns = [
    path("conversations/<str:pk>/messages", _conversation_messages, name="conversation-messages"),
    path("messages", MessageSendView.as_view(), name="message-send"),
    path("blasts/<int:pk>/launch", BlastLaunchView.as_view(), name="blast-launch"),
    path("blasts/<int:pk>/preview", BlastPreviewView.as_view(), name="blast-preview"),
    path("blasts/<int:pk>/cancel", BlastCancelView.as_view(), name="blast-cancel"),
]
