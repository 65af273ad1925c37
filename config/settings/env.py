"""The one django-environ reader every settings module uses."""

import os

import environ

from config.embedded import BASE_DIR, ENV_FILE

env = environ.Env()
# Values already in the environment win; the embedded services file only fills the gaps.
if ENV_FILE.exists():
    for _line in ENV_FILE.read_text().splitlines():
        if "=" in _line:
            _key, _value = _line.split("=", 1)
            os.environ.setdefault(_key.strip(), _value.strip())

__all__ = ["BASE_DIR", "env"]
