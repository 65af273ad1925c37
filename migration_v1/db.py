"""Connection strings for psycopg used directly (seeding, COPY): built from Django's DATABASES."""

from __future__ import annotations

import psycopg
from django.conf import settings
from django.db import connections

V1_ALIAS = "v1"
DEFAULT_V1_NAME = "parley_v1"


def dsn_for(settings_dict: dict) -> str:
    params = {
        "dbname": settings_dict["NAME"],
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
    }
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v})


def v1_dsn() -> str:
    """The v1 alias when configured, else a database named parley_v1 on the v2 server."""
    if V1_ALIAS in connections.settings:
        return dsn_for(connections[V1_ALIAS].settings_dict)
    return psycopg.conninfo.make_conninfo(dsn_for(settings.DATABASES["default"]), dbname=DEFAULT_V1_NAME)


def ensure_v1_alias(dsn: str | None = None) -> None:
    """Make the "v1" alias exist (pointing at `dsn`, or at v1_dsn()), e.g. in the benchmark and tests."""
    dsn = dsn or v1_dsn()
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    base = dict(connections["default"].settings_dict)
    base.update(
        {
            "NAME": info["dbname"],
            "HOST": info.get("host", base.get("HOST")),
            "PORT": info.get("port", base.get("PORT")),
            "USER": info.get("user", base.get("USER")),
            "PASSWORD": info.get("password", base.get("PASSWORD")),
            "CONN_MAX_AGE": 0,
        }
    )
    base["TEST"] = {"MIRROR": None, "NAME": info["dbname"]}
    if V1_ALIAS in connections.settings:
        connections[V1_ALIAS].close()
        del connections[V1_ALIAS]
    connections.settings[V1_ALIAS] = base
    settings.DATABASES[V1_ALIAS] = base
