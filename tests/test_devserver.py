"""`make run` (config/devserver.py) wires the sandbox carrier's inbound URL (issue 14 item 10): a text
posted to the sandbox's /_sandbox/inbound — the customer's phone — reaches Parley, as the sandbox, the
served app and a worker running as separate processes."""

from __future__ import annotations

import os
import time

import pytest
import requests

from config.devserver import sandbox_inbound_env
from demo.services import LINE_NUMBER, demo_seed
from messaging.models import Message, OptOut
from tests.worker import (  # noqa: F401  (celery_worker_proc: the fixture)
    _test_database_url,
    celery_worker_proc,
    connection_name,
    served_web,
    start_sandbox,
    stop_process,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CUSTOMER = "+15125550123"


def _wait(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def test_a_text_posted_to_the_sandbox_reaches_parley(celery_worker_proc):  # noqa: F811
    # given: the demo account (make run seeds it), the served app, and a worker applying webhooks
    demo_seed()
    celery_worker_proc.start(queues="webhooks,default")
    with served_web() as base_url:
        env = dict(
            os.environ,
            DATABASE_URL=_test_database_url(),
            DATABASE_TEST_NAME=connection_name(),
            PUBLIC_BASE_URL=base_url,
        )
        env.pop("SANDBOX_INBOUND_URL", None)
        # when: the sandbox starts with the environment make run gives it, and the customer texts STOP
        wired = sandbox_inbound_env(env)
        sandbox = start_sandbox(env={"SANDBOX_INBOUND_URL": wired.get("SANDBOX_INBOUND_URL", "")})
        try:
            answer = requests.post(
                f"http://127.0.0.1:{sandbox.port}/_sandbox/inbound",
                json={"from": CUSTOMER, "to": LINE_NUMBER, "body": "STOP"},
                timeout=10,
            )
            assert answer.status_code == 202
            # then: stored as an inbound message of the demo line, and the number opted out
            arrived = _wait(lambda: Message.objects.filter(direction="in", body="STOP").exists())
            opted_out = _wait(lambda: OptOut.objects.filter(phone_number=CUSTOMER).exists())
        finally:
            stop_process(sandbox.proc)
    assert wired["SANDBOX_INBOUND_URL"].startswith(f"{base_url}/webhooks/sinch/")
    assert arrived and opted_out, celery_worker_proc.log()


def test_an_inbound_url_given_by_hand_is_kept():
    env = {"SANDBOX_INBOUND_URL": "http://example.test/hook"}
    assert sandbox_inbound_env(env) == env


def test_make_run_serves_the_app_on_its_printed_url_and_short_links_on_their_own_host():
    # given: the environment `make run` gives its processes (on a free port), and a short link
    from config.devserver import dev_env
    from shortener.models import Link
    from tests import factories
    from tests.worker import free_port

    port = free_port()
    env = dev_env({}, port=port, sandbox_port=free_port())
    link = Link.objects.create(
        organization=factories.OrganizationFactory(), code="DevRun1x", target_url="https://example.com/dev"
    )
    with served_web(
        port=port, PUBLIC_BASE_URL=env["PUBLIC_BASE_URL"], SHORT_LINK_DOMAIN=env["SHORT_LINK_DOMAIN"]
    ) as base_url:
        # when: the newcomer's first clicks, on both loopback names, and a short link on its host
        printed = requests.get(f"{base_url}/login/", timeout=10)
        by_name = requests.get(f"http://localhost:{port}/login/", timeout=10)
        short = requests.get(
            f"{base_url}/{link.code}",
            headers={"Host": env["SHORT_LINK_DOMAIN"]},
            allow_redirects=False,
            timeout=10,
        )
        stranger = requests.get(f"{base_url}/login/", headers={"Host": "evil.example"}, timeout=10)
    # then: the web app answers on its URL, the short link redirects, an unknown host is still refused
    assert base_url == env["PUBLIC_BASE_URL"]
    assert printed.status_code == 200 and b"<form" in printed.content
    assert by_name.status_code == 200 and b"<form" in by_name.content
    assert env["SHORT_LINK_DOMAIN"] == f"prly.localhost:{port}"
    assert short.status_code == 302 and short.headers["Location"] == "https://example.com/dev"
    assert stranger.status_code == 400


def test_make_run_prints_the_demo_links_on_the_port_it_serves(capfd):
    # given: `make run` with a port of the newcomer's choosing (no PUBLIC_BASE_URL of their own), on the test database
    from config.devserver import dev_env, seed_demo
    from organizations.models import Membership

    environ = {k: v for k, v in os.environ.items() if k != "PUBLIC_BASE_URL"}
    environ.update(DATABASE_URL=_test_database_url(), DATABASE_TEST_NAME=connection_name())
    env = dev_env(environ, port=8123, sandbox_port=8124)
    # when: the devserver seeds the demo account
    printed = seed_demo(env)
    # then: the login and API links it prints are on that port, and the demo admin exists
    assert "http://127.0.0.1:8123/login/" in printed and "http://127.0.0.1:8123/api/docs/" in printed
    assert ":8000" not in printed and printed in capfd.readouterr().out
    assert Membership.objects.filter(
        organization__name=printed.split("Demo organization: ")[1].split(" (id")[0]
    ).exists()
