"""The web app's own state: how far each person has read each conversation (the inbox's unread marker).

Read state is per conversation *and* person, not per conversation: several agents share an inbox, and one
of them opening a thread must not make it look read to the others (nor to the one it is assigned to).
What the whole team shares — that the contact is waiting for an answer — is the needs-reply marker, which
is derived from the messages themselves (webapp/inbox.py), so any agent's reply clears it for everyone."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ConversationRead(models.Model):
    # Both CASCADE: a marker is worth nothing without its person or its conversation.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    conversation = models.ForeignKey("messaging.Conversation", on_delete=models.CASCADE, related_name="+")
    # Everything that came in up to here has been seen (only moved forward: webapp/reads.py).
    read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "conversation"], name="uniq_conversation_read")]

    def __str__(self) -> str:
        return f"user {self.user_id} read conversation {self.conversation_id} up to {self.read_at}"
