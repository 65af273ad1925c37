"""Fake NICE CXone and RingCentral servers: real HTTP on a loopback port, in a thread, speaking the
wire format of integrations/wire.py (where the ASSUMED parts are). Used by tests/integrations; usable
by hand too:

    with FakeNice() as nice:           # nice.url is the base URL of a NiceConnection
        ...; nice.agent_says(session_id, "Hi, this is Ann"); nice.end_chat(session_id)
    with FakeRingCentral() as rc:      # rc.url is the base URL of a RingCentralConnection
        ...; rc.teams, rc.posts; rc.force(429, retry_after=1)

Both check the bearer token (401 otherwise) and record every request they got.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import wire


def _path_re(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", r"([^/]+)", re.escape(template)) + "$")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that hung up (a killed worker's long poll) is part of the tests, not an error


class _FakeServer:
    token = "fake-token"  # noqa: S105 - test value

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.requests: list[dict[str, Any]] = []
        self.forced: list[tuple[int, float | None]] = []  # next answers: (status, Retry-After)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status: int, body: Any = None, headers: dict | None = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self, method: str) -> None:
                url = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                with fake.lock:
                    fake.requests.append({"method": method, "path": url.path, "query": url.query, "json": body})
                    forced = fake.forced.pop(0) if fake.forced else None
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self.answer(401, {"error": "invalid_token"})
                if forced is not None:
                    status, retry_after = forced
                    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                    return self.answer(status, {"error": f"forced {status}"}, headers)
                status, payload = fake.route(method, url.path, parse_qs(url.query), body)
                self.answer(status, payload)

            def do_GET(self):  # noqa: N802
                self.handle_any("GET")

            def do_POST(self):  # noqa: N802
                self.handle_any("POST")

            def do_DELETE(self):  # noqa: N802
                self.handle_any("DELETE")

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def force(self, status: int, *, retry_after: float | None = None, times: int = 1) -> None:
        with self.lock:
            self.forced.extend([(status, retry_after)] * times)

    def calls(self, method: str, pattern: str) -> list[dict[str, Any]]:
        rx = _path_re(pattern)
        with self.lock:
            return [r for r in self.requests if r["method"] == method and rx.match(r["path"])]

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        with self.lock:
            self.lock.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class FakeNice(_FakeServer):
    """CXone Patron chat. Agent messages are queued per chat and handed to the next long poll."""

    _SEND = _path_re(wire.NICE_SEND_TEXT)
    _CHAT = _path_re(wire.NICE_CHAT)

    def __init__(self) -> None:
        super().__init__()
        self.chats: dict[str, dict[str, Any]] = {}
        self.polling_now: dict[str, int] = {}
        self.max_concurrent_polls: dict[str, int] = {}
        self._contact_ids = itertools.count(5001)

    # ---- scripting
    def agent_says(self, session: str, text: str, *, timestamp: str | None = None, label: str = "Ann") -> dict:
        item = {
            "Label": label,
            "PartyTypeId": 2,
            "PartyTypeValue": wire.NICE_AGENT_PARTY,
            "Text": text,
            "Timestamp": timestamp or datetime.now(UTC).isoformat(timespec="microseconds"),
            wire.NICE_MESSAGE_TYPE_FIELD: "Text",
        }
        with self.lock:
            self.chats[session]["pending"].append(item)
            self.lock.notify_all()
        return item

    def end_chat(self, session: str) -> None:
        """The agent ends the chat: the next poll gets a ChatEnded message, later ones 404."""
        with self.lock:
            chat = self.chats[session]
            chat["pending"].append(
                {"PartyTypeValue": "System", wire.NICE_MESSAGE_TYPE_FIELD: wire.NICE_CHAT_ENDED, "Text": ""}
            )
            chat["ended"] = True
            self.lock.notify_all()

    def forget_chat(self, session: str) -> None:
        """The session disappears (expired on NICE's side): 404 from now on."""
        with self.lock:
            self.chats.pop(session, None)
            self.lock.notify_all()

    def sessions(self) -> list[str]:
        with self.lock:
            return list(self.chats)

    def texts(self, session: str) -> list[str]:
        with self.lock:
            return [t["message"] for t in self.chats[session]["texts"]]

    # ---- wire
    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        if method == "POST" and path == wire.NICE_START_CHAT:
            session = uuid.uuid4().hex
            with self.lock:
                contact_id = next(self._contact_ids)
                self.chats[session] = {"start": body, "texts": [], "pending": [], "ended": False, "contact": contact_id}
            return 202, {"chatSessionId": session, "contactId": contact_id}
        if method == "POST" and (m := self._SEND.match(path)):
            with self.lock:
                chat = self.chats.get(m.group(1))
                if chat is None or chat["ended"]:
                    return 404, {"error": "chat session not found"}
                chat["texts"].append(body)
            return 202, None
        if method == "GET" and (m := self._CHAT.match(path)):
            return self._poll(m.group(1), float((query.get("timeout") or ["0"])[0]))
        if method == "DELETE" and (m := self._CHAT.match(path)):
            with self.lock:
                if m.group(1) in self.chats:
                    self.chats[m.group(1)]["ended"] = True
            return 202, None
        return 404, {"error": "no such route"}

    def _poll(self, session: str, timeout: float) -> tuple[int, Any]:
        deadline = time.monotonic() + timeout
        with self.lock:
            self.polling_now[session] = self.polling_now.get(session, 0) + 1
            self.max_concurrent_polls[session] = max(
                self.max_concurrent_polls.get(session, 0), self.polling_now[session]
            )
            try:
                while True:
                    chat = self.chats.get(session)
                    if chat is None or (chat["ended"] and not chat["pending"]):
                        return 404, {"error": "chat session not found"}
                    if chat["pending"]:
                        items, chat["pending"] = chat["pending"], []
                        return 200, {"chatSession": session, "messages": items}
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return 200, {"chatSession": session, "messages": []}
                    self.lock.wait(left)
            finally:
                self.polling_now[session] -= 1


class FakeRingCentral(_FakeServer):
    """Team Messaging: teams, posts (created by the bot), persons; webhook notifications built by
    `notification()` in the subscription's format."""

    _POSTS = _path_re(wire.RC_POSTS)
    _PERSON = _path_re(wire.RC_PERSON)
    _ADD = _path_re(wire.RC_TEAM_ADD)
    _REMOVE = _path_re(wire.RC_TEAM_REMOVE)
    _CHAT = _path_re(wire.RC_CHAT)

    def __init__(self, *, bot_id: str = "bot-1") -> None:
        super().__init__()
        self.bot_id = bot_id
        self.teams: dict[str, dict[str, Any]] = {}
        self.posts: list[dict[str, Any]] = []
        self.persons: dict[str, str] = {}  # person id → email
        self._ids = itertools.count(100_000)

    def add_person(self, person_id: str, email: str) -> None:
        with self.lock:
            self.persons[person_id] = email

    def member_emails(self, chat: str) -> list[str]:
        """The team's members as emails, sorted (members are kept as person ids, as RingCentral does)."""
        with self.lock:
            return sorted(self.persons[i] for i in self.teams[chat]["member_ids"])

    def _person_id(self, member: dict) -> str | None:
        """A member given as {"id"} or {"email"} → person id (an unknown email becomes a new person,
        as RingCentral invites it). Call with the lock held."""
        if member.get("id"):
            return str(member["id"]) if str(member["id"]) in self.persons else None
        email = str(member.get("email") or "").lower()
        if not email:
            return None
        for pid, known in self.persons.items():
            if known.lower() == email:
                return pid
        pid = f"p-{next(self._ids)}"
        self.persons[pid] = email
        return pid

    def posts_in(self, chat: str) -> list[str]:
        with self.lock:
            return [p["text"] for p in self.posts if p["groupId"] == chat]

    def notification(self, *, chat: str, text: str, creator: str, post_id: str | None = None) -> dict[str, Any]:
        post = {
            "id": post_id or str(next(self._ids)),
            "groupId": chat,
            "type": wire.RC_TEXT_MESSAGE,
            "text": text,
            "creatorId": creator,
            "eventType": wire.RC_POST_ADDED,
            "creationTime": datetime.now(UTC).isoformat(),
        }
        return {
            "uuid": uuid.uuid4().hex,
            "event": "/team-messaging/v1/posts",
            "subscriptionId": "sub-1",
            "timestamp": post["creationTime"],
            "body": post,
        }

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        if method == "POST" and path == wire.RC_TEAMS:
            if not isinstance(body, dict) or not body.get("name"):
                return 400, {"errorCode": "InvalidParameter", "message": "name is required"}
            team_id = str(next(self._ids))
            with self.lock:
                ids = [self._person_id(m) for m in body.get("members") or []]
                self.teams[team_id] = {**body, "id": team_id, "member_ids": [i for i in ids if i]}
            return 201, {"id": team_id, "name": body["name"], "public": body.get("public"), "type": "Team"}
        if method == "POST" and (m := self._POSTS.match(path)):
            chat = m.group(1)
            text = (body or {}).get("text", "")
            with self.lock:
                if chat not in self.teams:
                    return 404, {"errorCode": "NotFound"}
                if len(text) > wire.RC_MAX_POST_CHARS:
                    return 400, {"errorCode": "InvalidParameter", "message": "text too long"}
                post = {"id": str(next(self._ids)), "groupId": chat, "creatorId": self.bot_id, "text": text}
                self.posts.append(post)
            return 201, {**post, "type": wire.RC_TEXT_MESSAGE}
        if method == "POST" and ((m := self._ADD.match(path)) or (m := self._REMOVE.match(path))):
            adding = self._ADD.match(path) is not None
            members = (body or {}).get("members") if isinstance(body, dict) else None
            if not isinstance(members, list) or not members:
                return 400, {"errorCode": "InvalidParameter", "message": "members is required"}
            if not adding and any(not isinstance(x, dict) or not x.get("id") for x in members):
                return 400, {"errorCode": "InvalidParameter", "message": "members must be given by id"}
            with self.lock:
                team = self.teams.get(m.group(1))
                if team is None:
                    return 404, {"errorCode": "NotFound"}
                ids = [self._person_id(x) for x in members]
                if adding:
                    team["member_ids"] += [i for i in ids if i and i not in team["member_ids"]]
                else:
                    team["member_ids"] = [i for i in team["member_ids"] if i not in ids]
            return 204, None
        if method == "GET" and (m := self._CHAT.match(path)):
            with self.lock:
                team = self.teams.get(m.group(1))
                if team is None:
                    return 404, {"errorCode": "NotFound"}
                return 200, {"id": team["id"], "type": "Team", "members": [{"id": i} for i in team["member_ids"]]}
        if method == "GET" and (m := self._PERSON.match(path)):
            with self.lock:
                email = self.persons.get(m.group(1))
            return (200, {"id": m.group(1), "email": email}) if email else (404, {"errorCode": "NotFound"})
        return 404, {"errorCode": "NotFound"}
