"""/api/v1/conversations: the inbox (filters + cursor pagination), a conversation, its messages.

Sending into a conversation (POST /api/v1/conversations/{id}/messages) is in messaging/api/sending.py.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .. import selectors
from ..models import Conversation
from ..services.conversations import conversation_assign, conversation_reopen, conversations_close
from .serializers import (
    ConversationAssignSerializer,
    ConversationFilterSerializer,
    ConversationSerializer,
    MessageSerializer,
)
from .views import TenantAPIMixin


@extend_schema_view(list=extend_schema(parameters=[ConversationFilterSerializer]))
class ConversationViewSet(TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ConversationSerializer
    queryset = Conversation.objects.none()
    # Newest activity first; conversations without any message (NULL) come first, as PostgreSQL
    # sorts NULL highest. Served by the conv_org_recent index.
    pagination_ordering = ("-last_message_at", "-id")

    def get_queryset(self):
        organization = self.organization
        if self.action != "list":
            return selectors.conversations_for(organization=organization)
        params = ConversationFilterSerializer(data=self.request.query_params, context={"request": self.request})
        params.is_valid(raise_exception=True)
        f = params.validated_data
        assignee = f.get("assignee")
        return selectors.conversations_for(
            organization=organization,
            status=f.get("status"),
            line_id=f.get("line"),
            assignee_id=None if assignee in (None, "none") else assignee,
            unassigned=assignee == "none",
            contact_phone=f.get("contact_phone"),
            updated_since=f.get("updated_since"),
        )

    @extend_schema(summary="Messages of a conversation, newest first", responses=MessageSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="messages", pagination_ordering=("-created_at", "-id"))
    def messages(self, request, pk=None):
        conversation = self.get_object()
        page = self.paginate_queryset(selectors.conversation_messages(conversation=conversation))
        return self.get_paginated_response(MessageSerializer(page, many=True).data)

    @extend_schema(
        summary="Close a conversation",
        description="Closes it (idempotent); a partner chat of the conversation (NICE) is ended. "
        "The contact's next text reopens it.",
        request=None,
        responses=ConversationSerializer,
    )
    @action(detail=True, methods=["post"], url_path="close")
    def close(self, request, pk=None):
        conversation = self.get_object()  # tenant-scoped: another organization's id is a 404
        conversations_close(conversation_ids=[conversation.pk], organization_id=self.organization.pk)
        conversation.refresh_from_db(fields=["status"])
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(
        summary="Reopen a conversation",
        description="Opens a closed conversation again (idempotent).",
        request=None,
        responses=ConversationSerializer,
    )
    @action(detail=True, methods=["post"], url_path="reopen")
    def reopen(self, request, pk=None):
        conversation = conversation_reopen(conversation=self.get_object())
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(
        summary="Assign a conversation",
        description="`assignee`: the id of a member of your organization, or null to unassign.",
        request=ConversationAssignSerializer,
        responses=ConversationSerializer,
    )
    @action(detail=True, methods=["post"], url_path="assign")
    def assign(self, request, pk=None):
        conversation = self.get_object()
        data = ConversationAssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = conversation_assign(conversation=conversation, assignee_id=data.validated_data["assignee"])
        return Response(ConversationSerializer(conversation).data)
