"""Links in message bodies: the send pipeline's link step (queue time) and the blast preview's savings.

The implementation of messaging's port `messaging.links.LinkStep` (registered in ShortenerConfig.ready);
`LinkItem` is the port's, re-exported here."""

from __future__ import annotations

import re
from typing import cast
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from messaging import segments
from messaging.links import LinkItem

from .. import conf
from .links import LinkSpec, link_validate_target, links_create, org_short_domain, short_url

# Any http(s) URL in a text: up to whitespace, quotes or angle brackets; trailing punctuation that ends
# a sentence ("see https://x.com/a.") is trimmed afterwards, a closing parenthesis only if unbalanced.
URL_IN_TEXT_RE = re.compile(r"""https?://[^\s<>"'`{}|\\^]+""", re.IGNORECASE)
_TRAILING = ".,;:!?'\"*"


def urls_in(body: str) -> list[tuple[int, int, str]]:
    """(start, end, url) of every http(s) URL in body, sentence punctuation trimmed."""
    found = []
    for match in URL_IN_TEXT_RE.finditer(body):
        url = match.group(0)
        while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))):
            url = url[:-1]
        if len(url) > len("https://"):
            found.append((match.start(), match.start() + len(url), url))
    return found


def _shortenable(url: str, verdicts: dict[str, bool], organization_id: int | None = None) -> bool:
    """link_validate_target, remembered per scheme://host: URLValidator's cost is its host pattern, and
    the rest of a URL found by URL_IN_TEXT_RE is free of the characters it refuses (whitespace). A blast
    with personalised URLs (utm per recipient) then validates each host once, not 20,000 times."""
    if len(url) > conf.TARGET_URL_MAX_LENGTH:
        return False
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}/"
    ok = verdicts.get(origin)
    if ok is None:
        try:
            link_validate_target(origin, organization_id=organization_id)
            ok = True
        except ValidationError:
            ok = False
        verdicts[origin] = ok
    return ok


def _fill_attribution(*, organization_id: int, specs: list[LinkSpec]) -> None:
    """Items handed over without a contact (conversation sends pass contact_id=0) get their message's
    contact and blast: one query for the call, none when every item names its contact."""
    from messaging.models import Message

    missing = {int(s.message_id) for s in specs if s.contact_id is None and s.message_id}
    if not missing:
        return
    rows = Message.objects.filter(organization_id=organization_id, pk__in=missing).values_list(
        "pk", "contact_id", "blast_id"
    )
    found = {pk: (contact_id, blast_id) for pk, contact_id, blast_id in rows}
    for spec in specs:
        if spec.contact_id is None and spec.message_id in found:
            contact_id, blast_id = found[spec.message_id]
            spec.contact_id = contact_id
            spec.blast_id = spec.blast_id or blast_id


def links_shorten_for_messages(*, organization_id: int, items: list[LinkItem]) -> dict[int, str]:
    """The send pipeline's seam (queue time): every http(s) URL of each body becomes a short link made
    for that very message (its contact and blast too), so a click names all three.

    Returns {message_id: body with the links replaced} for every item (unchanged bodies included).
    Set-based: one INSERT for all links of the call (plus one per rare collision round), one query for
    the organization's domain. A URL that cannot be shortened (invalid, too long, already ours) stays."""
    result: dict[int, str] = {}
    specs: list[LinkSpec] = []
    # Per item: its URLs' spans and the spec each becomes (the same URL twice in one body: one link).
    plans: list[tuple[LinkItem, list[tuple[int, int, LinkSpec]]]] = []
    verdicts: dict[str, bool] = {}
    for item in items:
        spans = urls_in(item.body)
        if not spans:
            result[item.message_id] = item.body
            continue
        per_url: dict[str, LinkSpec] = {}
        plan = []
        for start, end, url in spans:
            if not _shortenable(url, verdicts, organization_id):
                continue
            spec = per_url.get(url)
            if spec is None:
                spec = per_url[url] = LinkSpec(
                    target_url=url,
                    message_id=item.message_id,
                    contact_id=item.contact_id or None,  # conversation sends pass 0: filled in below
                    blast_id=item.blast_id or None,
                )
                specs.append(spec)
            plan.append((start, end, spec))
        plans.append((item, plan))
    domain = None
    if specs:
        _fill_attribution(organization_id=organization_id, specs=specs)
        links_create(organization_id=organization_id, specs=specs)
        domain = org_short_domain(organization_id)
    for item, plan in plans:
        body, pieces, last = item.body, [], 0
        for start, end, spec in plan:
            pieces.append(body[last:start])
            pieces.append(short_url(spec.code, domain=domain))
            last = end
        pieces.append(body[last:])
        result[item.message_id] = "".join(pieces)
    return result


def links_preview_savings(body: str, *, domain: str | None = None) -> tuple[int, int, int]:
    """(chars_saved, segments_before, segments_after) if every shortenable URL of body became a short link
    (for the blast preview). chars_saved is negative when the URLs are shorter than short links."""
    placeholder = short_url("x" * conf.code_length(), domain=domain)
    pieces: list[str] = []
    last, verdicts = 0, cast(dict[str, bool], {})
    for start, end, url in urls_in(body):
        if not _shortenable(url, verdicts):
            continue
        pieces.append(body[last:start])
        pieces.append(placeholder)
        last = end
    pieces.append(body[last:])
    after = "".join(pieces)
    return len(body) - len(after), segments.count(body).segments, segments.count(after).segments
