"""Which hosts a short link may send people to (issue 12 item 16; docs/security.md).

A short link is a redirect the recipient's own browser follows, so a target on a loopback, private,
link-local or cloud-metadata address points our recipients at their own machine or network (a router's
admin page, an intranet) under our name, and a target on our short domain hides where a link goes (and
can loop). Both are refused by default, with the reason; an organization's allow-list
(shortener.AllowedTargetHost, in the admin) opens a host it really means to link to.

Decided here:
- Names are NOT resolved. Our server never fetches a target (the browser does, later, through its own DNS),
  so an answer we got at creation time would prove nothing — it can change right after (DNS rebinding) —
  while adding a lookup to every link created. What is checked is what the browser will see literally.
- Literal IPs are read the way browsers read them (the WHATWG URL host parser): decimal (2130706433),
  octal (0177.0.0.1), hexadecimal (0x7f.1), shortened (127.1) IPv4, and IPv6 in brackets including
  IPv4-mapped (::ffff:127.0.0.1), IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 forms of a refused IPv4.
  Any address that is not globally routable is refused (ipaddress's `is_global`): loopback, RFC 1918,
  link-local (169.254.169.254, the metadata address of AWS, GCP, Azure and others), shared (100.64/10,
  Alibaba's metadata at 100.100.100.200), unspecified, reserved, documentation and multicast.
- Names that only mean something inside a network are refused: localhost and *.localhost, *.local,
  *.internal (metadata.google.internal, EC2's *.ec2.internal), *.localdomain, *.home.arpa, and the bare
  metadata names (metadata, metadata.goog, instance-data).
- `user@host` URLs are refused outright (https://bank.example@evil.example/ opens evil.example), and so
  are backslashes, which browsers read as "/" (https://evil.example\\@bank.example/ opens evil.example).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from . import conf

INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
INTERNAL_NAMES = frozenset({"localhost", "metadata", "metadata.goog", "instance-data", "localhost.localdomain"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # browsers connect 0.0.0.0 to this machine
_IPV4_PART = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


class Refused(ValueError):
    """The reason a target is refused, in words for the API's 400 (without the host, which the caller names)."""

    def __init__(self, reason: str, host: str, *, allowable: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.host = host
        # False for look-alike URLs, which no allow-list opens.
        self.allowable = allowable and bool(host)


def _ipv4_whatwg(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a browser reads in `host`, or None when it is a name. WHATWG URL: 1 to 4 parts,
    each decimal, 0-prefixed octal or 0x-prefixed hexadecimal; the last part fills the remaining bytes."""
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts.pop()  # a trailing dot
    if not parts or len(parts) > 4 or not all(_IPV4_PART.match(p) for p in parts):
        return None
    numbers = []
    for part in parts:
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not all(c in "01234567" for c in part):
                return None
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):  # NAT64, IPv4-compatible (::a.b.c.d)
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _address_refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not embedded.is_global:
            return f"it embeds the non-public IPv4 address {embedded}"
    if ip.is_loopback or ip.is_unspecified or ip in _THIS_NETWORK:
        return "it is a loopback address (this machine)"
    if ip.is_link_local:
        return "it is a link-local address (cloud metadata services live there)"
    if ip.is_private:
        return "it is a private-network address"
    if ip.is_multicast or not ip.is_global:
        return "it is not a public internet address"
    return None


def refusal(url: str) -> Refused | None:
    """Why `url` may not be a short link's target, or None. `url` passed URLValidator or is about to."""
    if "\\" in url:
        return Refused("Backslashes are not allowed in a link: browsers read them as '/'.", host="")
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018  (raises on a malformed [IPv6] host)
    except ValueError:
        return None  # URLValidator names this one
    if "@" in parts.netloc:
        return Refused(
            "Links with a user name or password before '@' are refused: they show one host and open another.",
            host=parts.netloc.rsplit("@", 1)[-1],
            allowable=False,
        )
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return None  # URLValidator names this one
    if conf.is_short_host(host) or conf.is_short_host(parts.netloc):
        return Refused("Cannot shorten a link to the short-link domain itself.", host=host)
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    if ":" in host:
        try:
            ip = ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return Refused("Not a valid IPv6 address.", host=host)
    else:
        ip = _ipv4_whatwg(host)
    if ip is not None:
        reason = _address_refusal(ip)
        return Refused(f"The link's host {host} is refused: {reason}.", host=host) if reason else None
    if host in INTERNAL_NAMES or host.endswith(INTERNAL_SUFFIXES):
        return Refused(f"The link's host {host} is refused: it names a machine inside a private network.", host=host)
    return None
