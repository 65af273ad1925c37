"""The partners' wire format, in one place: paths and field names our clients send and read, and the
fakes (integrations/fakes.py) serve. Everything marked ASSUMED could not be confirmed from the
partner's own documents (docs/integrations.md, "Partner facts we rely on", says which and why);
correct it here and both the client and the fake follow.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------- NICE CXone
NICE_START_CHAT = "/contacts/chats"  # POST {pointOfContact, mediaType, fromAddress, parameters}
NICE_SEND_TEXT = "/contacts/chats/{chat}/send-text"  # POST {label, message}
NICE_CHAT = "/contacts/chats/{chat}"  # GET ?timeout=N (long poll), DELETE (end)
NICE_MEDIA_TYPE_CHAT = 3
NICE_AGENT_PARTY = "Agent"  # PartyTypeValue of an agent's message
# ASSUMED: the long poll holds up to `timeout` seconds and answers {"chatSession", "messages": []} when
# nothing new arrived; each answer carries only messages not returned before (we dedupe anyway).
# ASSUMED: the end of a chat is a message whose "Type" is "ChatEnded" (or a 404 for the session).
NICE_MESSAGE_TYPE_FIELD = "Type"
NICE_CHAT_ENDED = "ChatEnded"
# ASSUMED: answers with nothing new may also come as 204 or 304 (treated as an empty list).
NICE_EMPTY_STATUSES = frozenset({204, 304})
# ASSUMED: the agent-event webhook (POST /integrations/nice/<secret>/events) carries
# {"chatSessionId": "...", "event": "AgentJoined" | "AgentMessage" | "ChatEnded" | ...}.
NICE_EVENT_CHAT_FIELD = "chatSessionId"
NICE_EVENT_TYPE_FIELD = "event"

# ------------------------------------------------------------------------------- RingCentral (Glip)
RC_TEAMS = "/team-messaging/v1/teams"  # POST {public, name, description, members: [{email}|{id}]}
RC_POSTS = "/team-messaging/v1/chats/{chat}/posts"  # POST {text} (≤ 10,000 chars)
RC_PERSON = "/team-messaging/v1/persons/{person}"  # GET → {id, email, firstName, lastName}
# Team members: POST {members: [{email}|{id}]} → 204; remove takes person ids only.
RC_TEAM_ADD = "/team-messaging/v1/teams/{chat}/add"
RC_TEAM_REMOVE = "/team-messaging/v1/teams/{chat}/remove"
# ASSUMED: a team's chat record lists its members as person ids: GET → {id, type, members: [{id}]}.
RC_CHAT = "/team-messaging/v1/chats/{chat}"
RC_MAX_POST_CHARS = 10_000
RC_VALIDATION_HEADER = "Validation-Token"
# Webhook notification: {"uuid", "event", "subscriptionId", "body": {post}}; the post carries
# id, groupId (the chat id), type ("TextMessage"), text, creatorId, eventType ("PostAdded").
RC_POST_ADDED = "PostAdded"
RC_TEXT_MESSAGE = "TextMessage"
