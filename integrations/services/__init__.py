"""Integrations services (writes). See docs/integrations.md.

- NICE: `nice_messages_forward`, `nice_event_receive`, `nice_chat_start_polling`, `nice_chat_poll`,
  `nice_chat_end`, `nice_polls_rekick`,
  `nice_chats_end` / `nice_chats_to_end` / `nice_chats_stale` (end chats of closed conversations and
  opted-out contacts).
- RingCentral: `ringcentral_messages_mirror`, `ringcentral_webhook_receive`, `ringcentral_reply_send`,
  `ringcentral_reply_postpone`, `ringcentral_teams_sync` (team members kept in step with the organization),
  `ringcentral_connect` / `ringcentral_disconnect` (the organization-wide connection, services/connections.py).
- Forwards as rows (services/forwards.py): `forwards_decide` (the dispatcher's statement and its pending
  markers), `forward_record`, `forwards_settle`, `forwards_postpone`, and the beat's sweeps
  `pending_forwards_rekick` / `partner_replies_rekick`.
"""

from .connections import ringcentral_connect, ringcentral_disconnect
from .forwards import (
    Rekick,
    forward_record,
    forwards_decide,
    forwards_postpone,
    forwards_settle,
    partner_replies_rekick,
    pending_forwards_rekick,
)
from .nice import (
    PollOutcome,
    UnknownChat,
    nice_chat_end,
    nice_chat_poll,
    nice_chat_start_polling,
    nice_chats_end,
    nice_chats_stale,
    nice_chats_to_end,
    nice_event_receive,
    nice_messages_forward,
    nice_polls_rekick,
)
from .ringcentral import (
    ringcentral_messages_mirror,
    ringcentral_reply_postpone,
    ringcentral_reply_send,
    ringcentral_webhook_receive,
    team_members,
)
from .ringcentral_teams import SyncOutcome, ringcentral_organizations, ringcentral_teams_sync

__all__ = [
    "Rekick",
    "forward_record",
    "forwards_decide",
    "forwards_postpone",
    "forwards_settle",
    "partner_replies_rekick",
    "pending_forwards_rekick",
    "PollOutcome",
    "UnknownChat",
    "nice_chat_end",
    "nice_chat_poll",
    "nice_chat_start_polling",
    "nice_chats_end",
    "nice_chats_stale",
    "nice_chats_to_end",
    "nice_event_receive",
    "nice_messages_forward",
    "nice_polls_rekick",
    "SyncOutcome",
    "ringcentral_organizations",
    "ringcentral_teams_sync",
    "ringcentral_connect",
    "ringcentral_disconnect",
    "ringcentral_messages_mirror",
    "ringcentral_reply_postpone",
    "ringcentral_reply_send",
    "ringcentral_webhook_receive",
    "team_members",
]
