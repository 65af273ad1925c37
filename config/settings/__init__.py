"""Settings, split by topic. Every value comes from the environment (django-environ).

Defaults run on a laptop: with no DATABASE_URL / REDIS_URL / CELERY_BROKER_URL set, the URLs of the
embedded PostgreSQL and Redis (`python -m config.embedded start`) are read from `.data/services.env`.
"""

# isort: skip_file
# Order matters: later topics may read what earlier ones defined.
from .base import *  # noqa: F401,F403
from .database import *  # noqa: F401,F403
from .celery import *  # noqa: F401,F403
from .api import *  # noqa: F401,F403
from .parley import *  # noqa: F401,F403
from .carriers import *  # noqa: F401,F403
from .security import *  # noqa: F401,F403
from .logging import *  # noqa: F401,F403
