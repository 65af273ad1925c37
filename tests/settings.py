"""The test suite's settings: the project's, with a secret key of its own (DEBUG is off in tests, and the
project refuses to start off DEBUG with the published development key: config/settings/security.py).
Set in the environment, so the workers and servers the tests start as processes inherit it."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-never-used-outside-the-test-suite-9f3a1c")
# PARLEY_TEST_BROKER=rabbitmq: the Celery broker of this run, and of every worker it starts, is RabbitMQ
# at TEST_AMQP_URL (quorum queues, publisher confirms: config/queues.broker_settings). `.ci/run` runs
# the pipeline's worker tests once so (docs/scaling.md). Not for the whole suite: some tests read Redis's
# queue lists (tests/worker.broker_tasks); the FLUSHDB and visibility-timeout ones skip themselves.
if os.environ.get("PARLEY_TEST_BROKER") == "rabbitmq":
    os.environ["CELERY_BROKER_URL"] = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

from config.settings import *  # noqa: E402,F401,F403
