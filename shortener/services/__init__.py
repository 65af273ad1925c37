"""Writes of the shortener. See docs/shortener.md.

- links.py: `link_create`, `links_create` (set-based), `link_update`, `link_validate_target`,
  `links_check_attribution`, `short_url`.
- bodies.py: `links_shorten_for_messages` + `LinkItem` (the send pipeline's seam), `links_preview_savings`.
Clicks (buffering and the batch writer) live in shortener/clicks.py.
"""

from .bodies import LinkItem, links_preview_savings, links_shorten_for_messages, urls_in
from .links import (
    LinkSpec,
    link_create,
    link_update,
    link_validate_target,
    links_check_attribution,
    links_create,
    short_url,
)

__all__ = [
    "LinkItem",
    "LinkSpec",
    "link_create",
    "link_update",
    "link_validate_target",
    "links_check_attribution",
    "links_create",
    "links_preview_savings",
    "links_shorten_for_messages",
    "short_url",
    "urls_in",
]
