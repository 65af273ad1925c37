"""Blast templates: per-recipient rendering and the split into a Sinch body + `parameters`.

A blast body such as "Hi {first_name}, see https://ex.com/sale" becomes the carrier template
"Hi ${f1}, see ${l1}": constant text stays in the body (so a long body still works), and only what
differs per recipient travels as a parameter — each {field} outside a URL as f1, f2..., each URL (with
any {field} inside it) as l1, l2... after link shortening. Sinch limits names to 16 characters (ours
are at most 3) and values to 160; a recipient whose value is longer is sent on its own with the
rendered body (see prepare.py). See docs/send-pipeline.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

FIELD_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
URL_RE = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
SINCH_PARAM_RE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
MAX_PARAM_VALUE = 160  # Sinch: parameter values ≤ 160 characters
STANDARD_FIELDS = ("first_name", "last_name", "email", "phone_number")


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
    """{first_name}-style fields from the contact (standard + custom_fields); a missing one is empty."""
    if "{" not in text:
        return text
    return FIELD_RE.sub(lambda m: fields.get(m.group(1), ""), text)


@lru_cache(maxsize=256)
def carrier_template(body: str) -> CarrierTemplate:
    slots: list[Slot] = []
    out: list[str] = []
    pos = 0
    n_field = 0
    field_slot: dict[str, str] = {}

    def fields_to_params(text: str) -> str:
        nonlocal n_field

        def sub(m: re.Match) -> str:
            nonlocal n_field
            name = m.group(1)
            if name not in field_slot:
                n_field += 1
                field_slot[name] = f"f{n_field}"
                slots.append(Slot(field_slot[name], name, False))
            return "${" + field_slot[name] + "}"

        return FIELD_RE.sub(sub, text)

    for n_link, m in enumerate(URL_RE.finditer(body), start=1):
        out.append(fields_to_params(body[pos : m.start()]))
        name = f"l{n_link}"
        slots.append(Slot(name, m.group(0), True))
        out.append("${" + name + "}")
        pos = m.end()
    out.append(fields_to_params(body[pos:]))
    return CarrierTemplate("".join(out), tuple(slots), usable="${" not in body)


def fill(template_body: str, values: dict[str, str]) -> str:
    """The text a recipient gets: the carrier template with its parameters substituted (as Sinch does)."""
    return SINCH_PARAM_RE.sub(lambda m: values.get(m.group(1), ""), template_body)
