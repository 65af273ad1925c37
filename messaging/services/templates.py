"""Blast templates: per-recipient rendering and the split into a Sinch body + `parameters`.

A blast body such as "Hi {first_name}, see https://ex.com/sale?n={first_name}" becomes the carrier
template "Hi ${f1}, see ${l1}": constant text stays in the body (so a long body still works), and only
what differs per recipient travels as a parameter — each {field} outside a URL as f1, f2..., each URL
(with any {field} inside it) as l1, l2... after link shortening. Sinch limits names to 16 characters
(ours are at most 3) and values to 160; a recipient whose value is longer is sent on its own with the
rendered body (see prepare.py). See docs/send-pipeline.md and docs/messaging.md.

A value substituted inside a URL is data, not URL syntax: it is percent-encoded for the part of the URL
it lands in (`url_quote`), so "Ann & Bo" in `?n={first_name}` becomes `n=Ann%20%26%20Bo` and cannot end
the query parameter, start a fragment or read as a space ("+"). A value outside a URL is inserted as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

FIELD_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
URL_RE = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
SINCH_PARAM_RE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
MAX_PARAM_VALUE = 160  # Sinch: parameter values ≤ 160 characters
STANDARD_FIELDS = ("first_name", "last_name", "email", "phone_number")

# What stays literal in a substituted value, per URL part (RFC 3986: everything else is %XX-encoded,
# UTF-8 first). Path and host: nothing but the unreserved characters (a value is one segment: "/" too
# is encoded). Query and fragment: "/" is plain data there; "&", "=", "+", "#", ";" and "%" are not,
# and neither are "?" and ":" (legal there, but a link finder takes them at a URL's end for sentence
# punctuation and would cut them off).
_SAFE = {"authority": "", "path": "", "query": "/", "fragment": "/"}


@dataclass(frozen=True, slots=True)
class Slot:
    name: str  # Sinch parameter name: f<n> (a field) or l<n> (a URL, shortened per recipient)
    source: str  # the field name, or the URL as written (may hold {fields})
    is_link: bool


@dataclass(frozen=True, slots=True)
class CarrierTemplate:
    body: str  # with ${name} placeholders
    slots: tuple[Slot, ...]
    usable: bool  # False: the body already holds "${" and would be misread by the carrier
    # The body as literal text and slot names in order: what a recipient gets is these joined with the
    # slots' values (`assemble`), whether or not the carrier template is usable.
    parts: tuple[tuple[bool, str], ...] = ()  # (is_slot, literal text or slot name)

    @property
    def has_links(self) -> bool:
        return any(s.is_link for s in self.slots)


def contact_fields(first_name: str, last_name: str, email: str, phone_number: str, custom: dict | None) -> dict:
    fields = {k: "" if v is None else str(v) for k, v in (custom or {}).items()}
    fields.update(
        first_name=first_name or "", last_name=last_name or "", email=email or "", phone_number=phone_number or ""
    )
    return fields


def render(text: str, fields: dict) -> str:
    """{first_name}-style fields from the contact (standard + custom_fields); a missing one is empty.
    Plain substitution: for a message body use `render_message` (values inside URLs get encoded)."""
    if "{" not in text:
        return text
    return FIELD_RE.sub(lambda m: fields.get(m.group(1), ""), text)


def url_part(prefix: str) -> str:
    """Which part of a URL the text after `prefix` (the URL so far) is in."""
    if "#" in prefix:
        return "fragment"
    if "?" in prefix:
        return "query"
    rest = prefix.split("://", 1)[1] if "://" in prefix else prefix
    return "path" if "/" in rest else "authority"


def url_quote(value: str, part: str) -> str:
    encoded = quote(value, safe=_SAFE[part])
    # A trailing "." would read as the sentence's full stop to a link finder: "%2E" is the same URL
    # (RFC 3986 2.3) and stays inside it.
    stripped = encoded.rstrip(".")
    return stripped + "%2E" * (len(encoded) - len(stripped))


def render_url(url: str, fields: dict) -> str:
    """A URL as written with its {fields} filled, each value percent-encoded for the part it lands in.
    Encoded values hold no delimiter ("/", "?", "#" are encoded where they would change the part), so
    the part is decided by the URL's own literal text."""
    if "{" not in url:
        return url
    out: list[str] = []
    pos = 0
    for m in FIELD_RE.finditer(url):
        out.append(url[pos : m.start()])
        out.append(url_quote(fields.get(m.group(1), ""), url_part("".join(out))))
        pos = m.end()
    out.append(url[pos:])
    return "".join(out)


@lru_cache(maxsize=256)
def carrier_template(body: str) -> CarrierTemplate:
    slots: list[Slot] = []
    parts: list[tuple[bool, str]] = []
    pos = 0
    n_field = 0
    field_slot: dict[str, str] = {}

    def add_text(text: str) -> None:
        nonlocal n_field
        last = 0
        for m in FIELD_RE.finditer(text):
            parts.append((False, text[last : m.start()]))
            name = m.group(1)
            if name not in field_slot:
                n_field += 1
                field_slot[name] = f"f{n_field}"
                slots.append(Slot(field_slot[name], name, False))
            parts.append((True, field_slot[name]))
            last = m.end()
        parts.append((False, text[last:]))

    for n_link, m in enumerate(URL_RE.finditer(body), start=1):
        add_text(body[pos : m.start()])
        name = f"l{n_link}"
        slots.append(Slot(name, m.group(0), True))
        parts.append((True, name))
        pos = m.end()
    add_text(body[pos:])
    parts = [p for p in parts if p[0] or p[1]]
    carrier_body = "".join("${" + text + "}" if is_slot else text for is_slot, text in parts)
    return CarrierTemplate(carrier_body, tuple(slots), usable="${" not in body, parts=tuple(parts))


def slot_values(template: CarrierTemplate, fields: dict) -> dict[str, str]:
    """Each slot's value for one recipient (links rendered and encoded, not yet shortened)."""
    return {s.name: render_url(s.source, fields) if s.is_link else fields.get(s.source, "") for s in template.slots}


def assemble(template: CarrierTemplate, values: dict[str, str]) -> str:
    """The text a recipient gets: the template's literal text with the slots' values in place."""
    return "".join(values.get(text, "") if is_slot else text for is_slot, text in template.parts)


def render_message(body: str, fields: dict) -> str:
    """A blast body rendered for one recipient, before link shortening (preview, sample)."""
    if "{" not in body:
        return body
    template = carrier_template(body)
    return assemble(template, slot_values(template, fields))


def fill(template_body: str, values: dict[str, str]) -> str:
    """The carrier template with its parameters substituted (as Sinch does)."""
    return SINCH_PARAM_RE.sub(lambda m: values.get(m.group(1), ""), template_body)
