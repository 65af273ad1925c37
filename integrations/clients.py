"""Thin HTTP clients of NICE CXone and RingCentral. Paths and field names come from wire.py.

Errors carry the status and the partner's Retry-After, never the token (it lives in a header of a
session object no exception or log line prints).
"""

from __future__ import annotations

from typing import Any

import requests

from . import wire

# Seconds to connect / to wait for an ordinary answer. A long poll waits its own timeout plus this.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0


class PartnerError(Exception):
    """A partner call that failed. `status` 0 = no answer (connection error, timeout)."""

    def __init__(self, partner: str, what: str, status: int = 0, retry_after: float | None = None):
        super().__init__(f"{partner} {what}: HTTP {status or 'no answer'}")
        self.status, self.retry_after = status, retry_after

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def rate_limited(self) -> bool:
        return self.status == 429


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: rare for these APIs; fall back to the caller's default
        return None


class _Client:
    partner = ""

    def __init__(self, base_url: str, token: str):
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base}>"

    def _call(self, method: str, path: str, what: str, *, timeout: float = READ_TIMEOUT, **kw) -> requests.Response:
        try:
            response = self.session.request(method, self.base + path, timeout=(CONNECT_TIMEOUT, timeout), **kw)
        except requests.RequestException:
            raise PartnerError(self.partner, what) from None  # the request (and its headers) stay out of it
        if response.status_code >= 400:
            raise PartnerError(self.partner, what, response.status_code, _retry_after(response))
        return response


class NiceClient(_Client):
    partner = "NICE"

    def chat_start(self, *, point_of_contact: str, from_address: str, parameters: list[str]) -> tuple[str, int | None]:
        body = {
            "pointOfContact": point_of_contact,
            "mediaType": wire.NICE_MEDIA_TYPE_CHAT,
            "fromAddress": from_address,
            "parameters": parameters,
        }
        data = self._call("POST", wire.NICE_START_CHAT, "start chat", json=body).json()
        return str(data["chatSessionId"]), data.get("contactId")

    def send_text(self, *, chat: str, label: str, message: str) -> None:
        self._call(
            "POST", wire.NICE_SEND_TEXT.format(chat=chat), "send text", json={"label": label, "message": message}
        )

    def poll(self, *, chat: str, timeout: int) -> list[dict[str, Any]]:
        """One long poll. Raises PartnerError(404) when the session is gone."""
        response = self._call(
            "GET", wire.NICE_CHAT.format(chat=chat), "poll", params={"timeout": timeout}, timeout=timeout + READ_TIMEOUT
        )
        if response.status_code in wire.NICE_EMPTY_STATUSES or not response.content:
            return []
        return list(response.json().get("messages") or [])

    def chat_end(self, *, chat: str) -> None:
        self._call("DELETE", wire.NICE_CHAT.format(chat=chat), "end chat")


class RingCentralClient(_Client):
    partner = "RingCentral"

    def team_create(self, *, name: str, description: str, member_emails: list[str]) -> str:
        body = {
            "public": False,
            "name": name,
            "description": description,
            "members": [{"email": e} for e in member_emails],
        }
        return str(self._call("POST", wire.RC_TEAMS, "create team", json=body).json()["id"])

    def post(self, *, chat: str, text: str) -> str:
        text = text[: wire.RC_MAX_POST_CHARS]
        return str(self._call("POST", wire.RC_POSTS.format(chat=chat), "post", json={"text": text}).json()["id"])

    def team_add(self, *, chat: str, member_emails: list[str]) -> None:
        body = {"members": [{"email": e} for e in member_emails]}
        self._call("POST", wire.RC_TEAM_ADD.format(chat=chat), "add team members", json=body)

    def team_remove(self, *, chat: str, person_ids: list[str]) -> None:
        body = {"members": [{"id": i} for i in person_ids]}
        self._call("POST", wire.RC_TEAM_REMOVE.format(chat=chat), "remove team members", json=body)

    def chat_member_ids(self, *, chat: str) -> list[str]:
        data = self._call("GET", wire.RC_CHAT.format(chat=chat), "chat").json()
        return [str(m["id"]) for m in data.get("members") or [] if isinstance(m, dict) and m.get("id")]

    def person_email(self, *, person_id: str) -> str:
        data = self._call("GET", wire.RC_PERSON.format(person=person_id), "person").json()
        return str(data.get("email") or "")
