"""Settings, read once from environment variables.

Every variable is parsed here; a value that does not parse stops start-up with an
ImproperlyConfigured error naming the variable. With no environment at all the product
runs embedded: SQLite and a Valkey server started by `manage.py serve` on a unix socket
in DATA_DIR.
"""

import hashlib
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_UNSET = object()


def _read(name: str, cast, default=_UNSET):
    """Read one variable; any parse failure names the variable and the bad value."""
    try:
        if default is _UNSET:
            return cast(name)
        return cast(name, default=default)
    except ImproperlyConfigured:
        raise
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name}={env.str(name)!r} is not valid: {exc}") from exc


def _strict_bool(name: str, default: bool) -> bool:
    # django-environ treats any unknown word as False; a typo must not silently turn DEBUG off.
    raw = env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not valid: use true/false, 1/0, yes/no, on/off")


def _port(name: str, default: int) -> int:
    value = _read(name, env.int, default)
    if not 0 < value < 65536:
        raise ImproperlyConfigured(f"{name}={value} is not valid: a TCP port is 1-65535")
    return value


def _embedded_valkey_socket(data_dir: Path) -> Path:
    # A unix socket path must fit in sun_path (108 bytes); deep checkouts fall back to /tmp.
    path = data_dir / "valkey.sock"
    if len(str(path)) < 100:
        return path
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"contactcenter-{digest}.sock"


def _redis_url(name: str, default: str) -> str:
    value = env.str(name, default="") or default
    scheme = urlsplit(value).scheme
    if scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not valid: use redis://, rediss:// or unix:// URLs"
        )
    return value


def celery_broker_url(redis_url: str) -> str:
    """Kombu spells a unix-socket Redis URL `redis+socket://`; redis-py spells it `unix://`."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


# --- Core -------------------------------------------------------------------------------

DEBUG = _strict_bool("DEBUG", default=False)
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / ".data"))).resolve()

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-development-only-key")
    ALLOWED_HOSTS = _read("ALLOWED_HOSTS", env.list, ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"])
else:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")
    ALLOWED_HOSTS = _read("ALLOWED_HOSTS", env.list, [])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS is required when DEBUG is off")

CSRF_TRUSTED_ORIGINS = _read("CSRF_TRUSTED_ORIGINS", env.list, [])
# Public base URL of this deployment (behind a proxy): used to build webhook URLs.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")

# Where `manage.py serve` binds daphne.
HOST = env.str("HOST", default="127.0.0.1")
PORT = _port("PORT", 8000)

INSTALLED_APPS = [
    "daphne",
    "contactcenter.core.admin_config.ContactCenterAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "messaging",
    "routing",
    "contactcenter.core",
    "contactcenter.accounts",
    "contactcenter.desk",
    "contactcenter.flows",
]

MIDDLEWARE = [
    "contactcenter.core.requestid.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "contactcenter.urls"
ASGI_APPLICATION = "contactcenter.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "contactcenter.accounts.context_processors.roles",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------

DB_POOL_MAX_SIZE = _read("DB_POOL_MAX_SIZE", env.int, 10)
_database_url = env.str("DATABASE_URL", default="")
if _database_url:
    try:
        _db = env.db_url_config(_database_url)
    except Exception as exc:  # django-environ raises several types for a bad URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
    if _db.get("ENGINE") not in {
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    }:
        raise ImproperlyConfigured(
            f"DATABASE_URL: unsupported database {_db.get('ENGINE')!r}; use postgres:// or sqlite://"
        )
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "contactcenter.sqlite3"),
        # A file, not memory: tests share it with the live server and Celery worker processes.
        "TEST": {"NAME": str(DATA_DIR / "test.sqlite3")},
    }

if _db["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI each request runs in a fresh thread, so CONN_MAX_AGE reuses nothing:
    # Django's psycopg pool keeps connections warm (REFERENCE.md 9: ~4.5x throughput).
    _db.setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": DB_POOL_MAX_SIZE}
    _db["CONN_MAX_AGE"] = 0
else:
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN,
    # so concurrent writers queue on busy_timeout instead of failing with "database is locked".
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker, cache -----------------------------------------

EMBEDDED_VALKEY_SOCKET = _embedded_valkey_socket(DATA_DIR)
_EMBEDDED_REDIS_URL = f"unix://{EMBEDDED_VALKEY_SOCKET}"
REDIS_URL = _redis_url("REDIS_URL", _EMBEDDED_REDIS_URL)
# True when no REDIS_URL was given: `manage.py serve` starts Valkey itself.
REDIS_EMBEDDED = REDIS_URL == _EMBEDDED_REDIS_URL

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8's default 5 s socket timeout equals the layer's blocking-read
            # timeout, which kills idle websocket consumers (REFERENCE.md 9).
            # redis-py 8's asyncio pool allows 100 connections and then raises "Too many
            # connections": a burst to 1,000 desk sockets hit it in the bench.
            "hosts": [{"address": REDIS_URL, "socket_timeout": None, "max_connections": 1000}],
            "prefix": "cc:asgi",
            # Every socket of one daphne shares one Redis key, and past `capacity` frames
            # waiting for that process group_send drops the rest (the default 100 dropped
            # frames in the desk bench; the desk then resyncs, but the frame is lost).
            "capacity": 1000,
        },
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cc",
    }
}

CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {
    # Scheduled messages live in the database; this tick releases the ones that are due.
    "messaging-scheduled-release": {
        "task": "messaging.tasks.scheduled_release",
        "schedule": _read("SCHEDULED_RELEASE_INTERVAL", env.float, 10.0),
    },
    "messaging-sticky-purge": {"task": "messaging.tasks.sticky_purge", "schedule": 86_400.0},
    # Inbound events a lost task left pending (a worker killed mid-way) are stored here.
    "messaging-inbound-sweep": {
        "task": "messaging.tasks.inbound_sweep",
        "schedule": _read("INBOUND_SWEEP_INTERVAL", env.float, 30.0),
        "options": {"expires": 60},
    },
    "messaging-webhook-log-purge": {
        "task": "messaging.tasks.webhook_log_purge",
        "schedule": 3_600.0,
    },
    # Delivery's safety net: expiry (30036), crashed claims, lost marks; starts pumps.
    "messaging-delivery-tick": {
        "task": "messaging.tasks.delivery_tick",
        "schedule": _read("DELIVERY_TICK_INTERVAL", env.float, 1.0),
        "options": {"expires": 5},
    },
    # Bot flows: reply timeouts, calls whose worker died, 30-day lifetimes.
    "flows-tick": {
        "task": "contactcenter.flows.tasks.flows_tick",
        "schedule": _read("FLOWS_TICK_INTERVAL", env.float, 5.0),
        "options": {"expires": 10},
    },
    # Routing's safety net: reservation and workflow timeouts, TTLs, missed assignments.
    "routing-tick": {
        "task": "routing.tick",
        "schedule": _read("ROUTING_TICK_INTERVAL", env.float, 1.0),
        "options": {"expires": 5},
    },
}
# Delivery engine (messaging/delivery): how many pumps may send at once, how long one runs
# before handing over, how far ahead it plans each sender, how long a claim may stay
# unfinished before the sweeper takes it back, and threads for network providers' calls.
DELIVERY_KEY_PREFIX = _read("DELIVERY_KEY_PREFIX", env.str, "cc:delivery")
DELIVERY_PUMPS = _read("DELIVERY_PUMPS", env.int, 1)
DELIVERY_PUMP_SECONDS = _read("DELIVERY_PUMP_SECONDS", env.float, 10.0)
DELIVERY_HORIZON_SECONDS = _read("DELIVERY_HORIZON_SECONDS", env.float, 0.5)
DELIVERY_LEASE_SECONDS = _read("DELIVERY_LEASE_SECONDS", env.float, 20.0)
DELIVERY_SEND_THREADS = _read("DELIVERY_SEND_THREADS", env.int, 16)
# Pace at (1 - margin) of each sender's rate: 1 % leaves 10 ms of slack in every second.
DELIVERY_PACING_MARGIN = _read("DELIVERY_PACING_MARGIN", env.float, 0.01)
# Hosts every flow's make-http-request may call, besides the admin's allow-list (comma list).
FLOWS_HTTP_ALLOWED_HOSTS = _read("FLOWS_HTTP_ALLOWED_HOSTS", env.list, [])
# The demo appointments API's bearer token (flows/demo_api.py), derived: nothing to set.
DEMO_APPOINTMENTS_TOKEN = hashlib.sha256(f"demo-appointments:{SECRET_KEY}".encode()).hexdigest()[
    :32
]
# Raw provider webhooks are kept this long for inspection (the messages stay).
WEBHOOK_LOG_RETENTION_DAYS = _read("WEBHOOK_LOG_RETENTION_DAYS", env.int, 7)
# Largest inbound media item downloaded from a provider.
INBOUND_MEDIA_MAX_BYTES = _read("INBOUND_MEDIA_MAX_BYTES", env.int, 16 * 1024 * 1024)
# Celery logs through LOGGING above, one line per event like everything else.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_CONCURRENCY = _read("CELERY_WORKER_CONCURRENCY", env.int, 2)
# Tasks a worker process runs before it recycles its database connections. Without it,
# Celery's Django fix-up closes Django's whole pool around every task in prefork children:
# two new PostgreSQL sessions per task (the flows bench counted 1,200 for 600 tasks).
CELERY_DB_REUSE_MAX = _read("CELERY_DB_REUSE_MAX", env.int, 100)

# --- Auth, i18n, static -----------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", _("English")), ("es", _("Spanish"))]
if LANGUAGE_CODE not in {code for code, _name in LANGUAGES}:
    raise ImproperlyConfigured(f"LANGUAGE_CODE={LANGUAGE_CODE!r} is not valid: use en or es")
LOCALE_PATHS = [BASE_DIR / "contactcenter" / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "media/"

SESSION_COOKIE_SECURE = _strict_bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- API --------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "contactcenter API",
    "VERSION": "1",
    "DESCRIPTION": "Native JSON API. A Twilio-compatible API lives under /2010-04-01/.",
    # Self-hosted means no CDN: Swagger UI's files are served from the sidecar package.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging: one line per event, with the request id where there is a request ----------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL={LOG_LEVEL!r} is not valid: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "contactcenter.core.requestid.RequestIdFilter"}},
    "formatters": {
        "line": {
            "()": "contactcenter.core.requestid.OneLineFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "line",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replace Django's own DEBUG-only console handler, which would print lines twice.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.db.backends": {"level": "INFO"},
        # Daphne/Twisted access lines already carry the path; keep them at INFO.
        "daphne": {"level": "INFO"},
    },
}
