"""The test suite's settings: the project's, with a secret key of its own (DEBUG is off in tests, and the
project refuses to start off DEBUG with the published development key: config/settings/security.py).
Set in the environment, so the workers and servers the tests start as processes inherit it."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-never-used-outside-the-test-suite-9f3a1c")

from config.settings import *  # noqa: E402,F401,F403
