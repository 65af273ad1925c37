"""Random short codes: unguessable (secrets), URL-safe, no punctuation.

The alphabet is the 62 letters and digits: '-' and '_' are URL-safe too, but a link ending in one of them
is cut short by some phones' link detection. Codes are drawn from secrets.token_bytes with rejection
sampling (bytes >= 248 are dropped, so every character is exactly 1/62 likely), mapped by bytes.translate:
20,000 codes take a few milliseconds.
"""

from __future__ import annotations

import re
import secrets
import string

ALPHABET = string.ascii_letters + string.digits
_LIMIT = 256 - 256 % len(ALPHABET)  # 248
_TABLE = bytes(ALPHABET[b % len(ALPHABET)].encode()[0] if b < _LIMIT else 0 for b in range(256))
_DROP = bytes(range(_LIMIT, 256))
# The one short-code pattern: the redirect's check (views.py) and the SQL that finds codes in message
# bodies (processors.py, a PostgreSQL regular expression) are built from it.
CODE_CHARS = "A-Za-z0-9"  # ALPHABET as a regex class
CODE_PATTERN = rf"[{CODE_CHARS}]{{7,32}}"
CODE_RE = re.compile(CODE_PATTERN)


def codes_generate(count: int, length: int) -> list[str]:
    need = count * length
    chars = b""
    while len(chars) < need:
        # ~3 % of bytes are rejected; ask for a little more than needed.
        chars += secrets.token_bytes(need - len(chars) + need // 16 + 8).translate(_TABLE, _DROP)
    text = chars[:need].decode("ascii")
    return [text[i : i + length] for i in range(0, need, length)]
