from .env import BASE_DIR, env

# SECRET_KEY, ALLOWED_HOSTS, cookies, HSTS and login lockout: config/settings/security.py.
DEBUG = env.bool("DJANGO_DEBUG", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's static files, served by WhiteNoise (no CDN)
    "django_htmx",
    "django_prometheus",
    "axes",
    "organizations",
    "messaging",
    "carriers",
    "postprocessing",
    "shortener",
    "migration_v1",
    "backfill",
    "integrations",
    "webapp",
    "operations",  # /metrics' own collector (docs/operations.md)
    "demo",  # manage.py seed_demo, the account `make run` shows (docs/architecture.md)
]

MIDDLEWARE = [
    "config.logs.RequestIdMiddleware",  # first: every log line of the request carries its id
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "shortener.middleware.ShortLinkHostMiddleware",  # first: short-link hosts skip the whole stack
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and API docs' static files from the app server without a separate web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username/IP before any password is checked (docs/security.md).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".data" / "static"
# Static files are served by WhiteNoise from the app folders too, so a fresh checkout works before
# collectstatic (make run collects them; the folder must exist for WhiteNoise to start quietly).
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
