"""The small v1 tables declared: accounts, users, lines (+ carrier accounts), contacts (+ opt-outs),
blasts, conversations. One `TableSpec` each — what is read, the temp table, the Python pass
(`transform`) and the set-based statements (`write`) — run by the one mechanism of services/tables.py.
One module per table; column rules: docs/migration_v1.md.
"""

from __future__ import annotations

from .accounts import ACCOUNTS
from .blasts import BLASTS
from .contacts import CONTACTS
from .conversations import CONVERSATIONS
from .lines import LINES
from .users import USERS

# In dependency order: a table's rows point at the tables before it.
TABLE_SPECS = (ACCOUNTS, USERS, LINES, CONTACTS, BLASTS, CONVERSATIONS)
