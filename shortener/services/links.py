"""Creating and changing links: one, many (set-based), their validation. See docs/shortener.md."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from config.sql import binding_cursor

from .. import conf, targets
from ..cache import link_payload, links_cache
from ..codes import codes_generate
from ..models import AllowedTargetHost, Link
from .rollups import rollups_add_links, rollups_retarget

log = logging.getLogger(__name__)

__all__ = [
    "LinkSpec",
    "link_create",
    "link_update",
    "link_validate_target",
    "links_redact_for_contact",
    "links_check_attribution",
    "links_create",
    "short_url",
]

# Attempts at drawing fresh codes for rows whose code collided. With 8 characters a collision is a
# ~1-in-10^6 event per insert at 100 million links, so a second round is already rare.
MAX_CODE_ROUNDS = 5
_url_validator = URLValidator(schemes=["http", "https"])


@dataclass(slots=True)
class LinkSpec:
    """One link to create (validated already by link_validate_target)."""

    target_url: str
    fallback_url: str = ""
    expires_at: datetime | None = None
    message_id: int | None = None
    contact_id: int | None = None
    blast_id: int | None = None
    created_by_id: int | None = None
    code: str = field(default="")
    id: int | None = None


# --- validation ----------------------------------------------------------------------------------


def link_validate_target(url: str, *, field_name: str = "target_url", organization_id: int | None = None) -> str:
    """http/https only, a real URL, at most TARGET_URL_MAX_LENGTH, and a host shortener/targets.py accepts:
    never one of our own short hosts (a short link to a short link would be a redirect loop or a way to hide
    a target), nor a loopback, private, link-local or metadata host, nor a user@host look-alike. The
    organization's allow-list (AllowedTargetHost) opens a refused host; it is read only for a refused one."""
    url = (url or "").strip()
    if not url:
        raise ValidationError({field_name: ["This field is required."]})
    if len(url) > conf.TARGET_URL_MAX_LENGTH:
        raise ValidationError({field_name: [f"At most {conf.TARGET_URL_MAX_LENGTH} characters."]})
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ValidationError({field_name: ["Only http and https URLs can be shortened."]})
    refused = targets.refusal(url)
    if refused is not None and not (
        refused.allowable
        and organization_id is not None
        and AllowedTargetHost.objects.filter(organization_id=organization_id, host=refused.host).exists()
    ):
        raise ValidationError({field_name: [refused.reason]})
    try:
        _url_validator(url)
    except ValidationError:
        raise ValidationError({field_name: ["Not a valid URL."]}) from None
    return url


# --- creating links ------------------------------------------------------------------------------


def short_url(code: str, *, domain: str | None = None) -> str:
    """The link as texted. An organization's own domain is used only if the redirect answers on it
    (SHORT_LINK_EXTRA_DOMAINS): a domain set on the organization but not deployed would make dead links."""
    if not domain or not conf.is_short_host(domain):
        if domain:
            log.warning(
                "shortener: short domain %s is not served (SHORT_LINK_EXTRA_DOMAINS); using the default", domain
            )
        domain = conf.default_domain()
    return f"{conf.scheme()}://{domain}/{code}"


def org_short_domain(organization_id: int) -> str:
    from organizations.models import Organization

    domain = Organization.objects.filter(pk=organization_id).values_list("short_link_domain", flat=True).first()
    if domain and conf.is_short_host(domain):
        return domain
    return conf.default_domain()


_INSERT_SQL = """
    INSERT INTO shortener_link
        (code, organization_id, target_url, fallback_url, expires_at, message_id, contact_id, blast_id,
         created_by_id)
    SELECT * FROM unnest(%b::varchar[], %b::bigint[], %b::text[], %b::text[], %b::timestamptz[],
                         %b::bigint[], %b::bigint[], %b::bigint[], %b::integer[])
    ON CONFLICT (code) DO NOTHING
    RETURNING id, code
"""


def links_create(*, organization_id: int, specs: list[LinkSpec]) -> list[LinkSpec]:
    """Inserts every spec in one statement (unnest arrays: one parse, no per-row SQL), draws fresh
    codes for the few that collided and inserts those again; fills spec.code and spec.id.

    The links are cached in Redis after commit, so their first click asks the database nothing."""
    if not specs:
        return specs
    length = conf.code_length()
    pending = list(specs)
    with transaction.atomic(), binding_cursor() as cursor:
        for _round in range(MAX_CODE_ROUNDS):
            codes = codes_generate(len(pending), length)
            by_code: dict[str, LinkSpec] = {}
            for spec, code in zip(pending, codes, strict=True):
                spec.code = code
                by_code[code] = spec
            if len(by_code) < len(pending):  # a collision inside the batch itself: redraw all
                continue
            cursor.execute(
                _INSERT_SQL,
                [
                    list(by_code),
                    [organization_id] * len(pending),
                    [s.target_url for s in pending],
                    [s.fallback_url for s in pending],
                    [s.expires_at for s in pending],
                    [s.message_id for s in pending],
                    [s.contact_id for s in pending],
                    [s.blast_id for s in pending],
                    [s.created_by_id for s in pending],
                ],
            )
            for link_id, code in cursor.fetchall():
                by_code.pop(code).id = link_id
            pending = list(by_code.values())
            if not pending:
                break
        else:
            raise RuntimeError(f"Could not draw unique short codes for {len(pending)} links")
        # A blast's links per target, for its report (rollups.py): every spec is a new row by now.
        rollups_add_links(cursor, [(s.blast_id, s.target_url) for s in specs])

    default_fallback = conf.default_fallback_url()
    cached = [
        (
            s.code,
            link_payload(
                link_id=cast(int, s.id),
                target_url=s.target_url,
                fallback_url=s.fallback_url or default_fallback,
                expires_at=s.expires_at,
            ),
        )
        for s in specs
    ]
    transaction.on_commit(lambda: links_cache(cached))
    return specs


def link_create(
    *,
    organization_id: int,
    target_url: str,
    fallback_url: str = "",
    expires_at: datetime | None = None,
    message_id: int | None = None,
    contact_id: int | None = None,
    blast_id: int | None = None,
    created_by_id: int | None = None,
) -> Link:
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["Must be in the future."]})
    spec = LinkSpec(
        target_url=link_validate_target(target_url, organization_id=organization_id),
        fallback_url=(
            link_validate_target(fallback_url, field_name="fallback_url", organization_id=organization_id)
            if fallback_url
            else ""
        ),
        expires_at=expires_at,
        message_id=message_id,
        contact_id=contact_id,
        blast_id=blast_id,
        created_by_id=created_by_id,
    )
    errors = links_check_attribution(organization_id=organization_id, specs=[spec])
    if errors:
        raise ValidationError(errors[0])
    links_create(organization_id=organization_id, specs=[spec])
    return Link.objects.get(pk=cast(int, spec.id))


_KEEP = object()


def link_update(*, link: Link, expires_at: datetime | None | object = _KEEP, fallback_url: str | None = None) -> Link:
    """Changes what a code does when expired (expires_at: a time, None = never; omitted = unchanged);
    the cached copy is replaced after commit."""
    if fallback_url is not None:
        link.fallback_url = (
            link_validate_target(fallback_url, field_name="fallback_url", organization_id=link.organization_id)
            if fallback_url
            else ""
        )
    if expires_at is not _KEEP:
        link.expires_at = cast(datetime | None, expires_at)
    link.save(update_fields=["expires_at", "fallback_url"])
    payload = link_payload(
        link_id=link.pk,
        target_url=link.target_url,
        fallback_url=link.fallback_url or conf.default_fallback_url(),
        expires_at=link.expires_at,
    )
    transaction.on_commit(lambda: links_cache([(link.code, payload)]))
    return link


def links_check_attribution(*, organization_id: int, specs: list[LinkSpec]) -> dict[int, dict[str, list[str]]]:
    """Errors by spec index for message/contact/blast ids that are not the organization's (one query per
    kind present, whatever the number of specs). A message fills in its own contact and blast when the
    spec names none; a spec naming a different one is refused."""
    from messaging.models import Blast, Contact, Message

    def owned(model, ids, *fields):
        if not ids:
            return {}
        rows = model.objects.filter(organization_id=organization_id, pk__in=ids).values_list("pk", *fields)
        return {row[0]: row[1:] for row in rows}

    messages = owned(Message, {s.message_id for s in specs if s.message_id}, "contact_id", "blast_id")
    contacts = owned(Contact, {s.contact_id for s in specs if s.contact_id})
    blasts = owned(Blast, {s.blast_id for s in specs if s.blast_id})
    errors: dict[int, dict[str, list[str]]] = {}
    for index, spec in enumerate(specs):
        problems: dict[str, list[str]] = {}
        if spec.message_id:
            if spec.message_id not in messages:
                problems["message_id"] = [f"No message {spec.message_id} in this organization."]
            else:
                contact_id, blast_id = messages[spec.message_id]
                if spec.contact_id and spec.contact_id != contact_id:
                    problems["contact_id"] = [f"Message {spec.message_id} was sent to another contact."]
                if spec.blast_id and spec.blast_id != blast_id:
                    problems["blast_id"] = [f"Message {spec.message_id} is not part of blast {spec.blast_id}."]
                spec.contact_id = spec.contact_id or contact_id
                spec.blast_id = spec.blast_id or blast_id
        # ids filled in from a message of this organization are its own; only explicit ones are checked
        from_message = bool(spec.message_id and spec.message_id in messages)
        if spec.contact_id and spec.contact_id not in contacts and "contact_id" not in problems and not from_message:
            problems["contact_id"] = [f"No contact {spec.contact_id} in this organization."]
        if spec.blast_id and spec.blast_id not in blasts and "blast_id" not in problems and not from_message:
            problems["blast_id"] = [f"No blast {spec.blast_id} in this organization."]
        if problems:
            errors[index] = problems
    return errors


def links_redact_for_contact(*, organization_id: int, contact_id: int, **_signal) -> int:
    """A contact was erased (messaging.signals.contact_erased): its links' targets may carry its data in
    the path, query or fragment (merge fields), so they keep only scheme://host/ and no fallback. Clicks
    and counters stay (the link report stays true); the cached copies are replaced after commit."""
    # Locked (in id order, as the click writer's counter update takes them) so the counters that move with
    # a link's target in its blast's rollup are the ones it has.
    with transaction.atomic(savepoint=False):
        links = list(
            Link.objects.select_for_update()
            .filter(organization_id=organization_id, contact_id=contact_id)
            .order_by("pk")
        )
        if not links:
            return 0
        moved = []
        for link in links:
            parts = urlsplit(link.target_url)
            redacted = f"{parts.scheme}://{parts.netloc}/"
            moved.append(
                (
                    link.blast_id,
                    link.target_url,
                    redacted,
                    link.click_count,
                    link.unique_click_count,
                    link.bot_click_count,
                )
            )
            link.target_url = redacted
            link.fallback_url = ""
        Link.objects.bulk_update(links, ["target_url", "fallback_url"])
        with binding_cursor() as cursor:
            rollups_retarget(cursor, moved)
    payloads = [
        (
            link.code,
            link_payload(
                link_id=link.pk,
                target_url=link.target_url,
                fallback_url=conf.default_fallback_url(),
                expires_at=link.expires_at,
            ),
        )
        for link in links
    ]
    transaction.on_commit(lambda: links_cache(payloads))
    return len(links)
