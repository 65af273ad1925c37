"""Errors the tool reports as one clean line (the command exits 2): bad input, not a bug."""

from __future__ import annotations


class V1InputError(RuntimeError):
    """Bad input to the migration: the message is complete and safe to print (no secrets)."""


class V1Unavailable(V1InputError):
    """The v1 database cannot be reached (unset, unreachable, wrong credentials, no such database)."""


class V1SchemaError(V1InputError):
    """The preflight found v1 tables or columns missing or typed in a way the tool cannot read."""


class ScopeNotFound(V1InputError):
    """--account / --line names no v1 row."""
