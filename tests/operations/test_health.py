"""/healthz and /readyz against the real PostgreSQL, Redis and broker; failures are real too: a Redis
or broker URL nobody listens on, and this process's database connection killed by the server."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from tests.worker import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_readyz_is_ok_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok" and set(body["checks"]) == {"database", "redis", "broker"}
    assert all(v.startswith("ok") for v in body["checks"].values())


@pytest.mark.parametrize("what", ["redis", "broker"])
def test_readyz_names_redis_or_the_broker_when_it_is_down(client, settings, what):
    dead = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    if what == "redis":
        settings.REDIS_URL = dead
    else:
        settings.CELERY_BROKER_URL = dead
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == [what] and body["checks"][what].startswith("failed: ")
    assert "s3cret-pw" not in response.content.decode() and str(dead) not in response.content.decode()


def test_readyz_names_the_database_when_its_connection_dies_and_recovers(client):
    # given: this thread's database connection, killed by the server (a restart, a failover)
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"], dbname=s["NAME"], autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    # then: not ready, naming the database
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failed"] == ["database"]
    # and the next probe reconnects
    assert client.get("/readyz").status_code == 200
