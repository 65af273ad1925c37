"""What the reply box's counter shows, computed by the code that sends: messaging.segments for characters,
encoding and segments, the shortener's own preview for what shortening the links will change (the send
pipeline shortens every shortenable http(s) URL of a conversation message before the carrier call,
docs/shortener.md). Serving it from the server (htmx) rather than porting the GSM-7 rule to JavaScript
keeps one implementation: the count on screen is the count billed."""

from __future__ import annotations

from dataclasses import dataclass

from messaging import segments
from messaging.services.sending import MAX_BODY
from shortener.services import links_preview_savings, urls_in
from shortener.services.links import org_short_domain


@dataclass(frozen=True)
class ComposeInfo:
    characters: int
    encoding: str
    segments: int
    left_in_segment: int
    too_long: bool
    max_body: int
    links: int  # http(s) URLs found in the text
    segments_after_links: int | None  # segments once links are short (None: no link)
    chars_saved: int


def compose_info(body: str, *, organization_id: int) -> ComposeInfo:
    info = segments.count(body)
    used = info.units - (info.segments - 1) * info.per_segment if info.segments > 1 else info.units
    found = urls_in(body)
    after, saved = None, 0
    if found:
        saved, _, after = links_preview_savings(body, domain=org_short_domain(organization_id))
    return ComposeInfo(
        characters=len(body),
        encoding=info.encoding,
        segments=info.segments,
        left_in_segment=max(info.per_segment - used, 0) if info.segments else info.per_segment,
        too_long=len(body) > MAX_BODY,
        max_body=MAX_BODY,
        links=len(found),
        segments_after_links=after,
        chars_saved=saved,
    )
