"""The link step of the send pipeline: a port messaging declares and the shortener fills.

Prepare replaces every URL of a message with a short link made for that message
(`LinkStep.shorten_for_messages`), and the blast preview counts what shortening saves
(`preview_savings`, `short_domain`). The shortener implements them and registers the implementation
from ShortenerConfig.ready (`link_step_register`).

Why a port rather than the shortener below messaging: a link is attributed to a message, its blast
and its contact, the click counter and link attribution read messaging's rows, and the shortener
redacts on messaging's `contact_erased` signal — it is a feature built on messages, so it sits above
them (docs/architecture.md), and messaging knows only this seam. `LinkItem` is declared here because it
is what messaging hands over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LinkItem:
    """One message of a send, as the send pipeline hands it over at queue time."""

    message_id: int
    contact_id: int | None
    blast_id: int | None
    body: str


@dataclass(frozen=True)
class LinkStep:
    # (*, organization_id, items: list[LinkItem]) -> {message_id: body with its links replaced}, every item.
    shorten_for_messages: Callable[..., dict[int, str]]
    # (body, *, domain) -> (chars_saved, segments_before, segments_after) if every URL became a short link.
    preview_savings: Callable[..., tuple[int, int, int]]
    # (organization_id) -> the host the organization's short links are made on.
    short_domain: Callable[[int], str]


_STEP: list[LinkStep] = []


def link_step_register(step: LinkStep) -> None:
    """Install the link step (the shortener's, from its AppConfig.ready). A second call replaces it."""
    _STEP[:] = [step]


def link_step() -> LinkStep:
    if not _STEP:
        raise RuntimeError("no link step registered: the shortener app registers it in ShortenerConfig.ready")
    return _STEP[0]
