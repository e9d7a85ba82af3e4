"""ldnclinic settings: everything that differs between machines comes from the environment.

Zero setup: no variables at all gives SQLite under var/ and an embedded filesystem Celery broker.
Production: see README "Configuration".
"""

from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from .csp import STRICT as CSP_STRICT
from .env import env_bool, env_database, env_email, env_int, env_list, env_redis_url, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LDN_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "django-insecure-local-development-only-" + "x" * 20  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "axes",
    "ldnclinic",
    "patients",
    "symptoms",
    "titration",
    "reports",
    "clinic",
    "django_htmx",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Sessions end after SESSION_IDLE_MINUTES idle and SESSION_MAX_HOURS after login (ldnclinic/sessions.py).
    "ldnclinic.sessions.SessionLimitsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Cache-Control: no-store and a Permissions-Policy on every dynamic response (ldnclinic/headers.py).
    "ldnclinic.headers.PrivacyHeadersMiddleware",
    # Content-Security-Policy: enforced on the clinic pages and the portal, report-only elsewhere (ldnclinic/csp.py).
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "ldnclinic.csp.StrictPagesCSPMiddleware",
    # Records the request's user on every history row (who changed what).
    "simple_history.middleware.HistoryRequestMiddleware",
    # Answers a locked-out login with the lockout page (django-axes; last, as its docs ask).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ldnclinic.urls"
SECURE_CSP_REPORT_ONLY = CSP_STRICT
WSGI_APPLICATION = "ldnclinic.wsgi.application"
ASGI_APPLICATION = "ldnclinic.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {"default": env_database("DATABASE_URL", VAR_DIR / "ldnclinic.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "patients.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Stored times are UTC; each patient carries their own zone (Patient.time_zone) for reminders.
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on a missing folder before collectstatic
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "portal-login"
LOGIN_REDIRECT_URL = "portal-home"

# --- Password guessing (django-axes): every login form (admin, patient portal, API token) -----------
# After LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that username is locked
# from that address for LOGIN_LOCKOUT_MINUTES (a correct password included); a success clears the count.
# Locking the pair, not the username alone, keeps a stranger from locking a patient out everywhere.
# ldnclinic.lockout: axes' per-username lockout, and a per-address one across usernames (password spraying).
AUTHENTICATION_BACKENDS = ["ldnclinic.lockout.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env_bool("LOGIN_LOCKOUT", True)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username"]  # from any address; addresses: LOGIN_ADDRESS_FAILURE_LIMIT
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20, minimum=1)
# Reverse proxies in front of the app that append the client's address to X-Forwarded-For (the compose
# layout's TLS proxy: 1). The lockout counts by the address the nearest of them saw.
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "ldnclinic.lockout.client_ip"
# axes.W006 asks for 'ip_address' among the lockout parameters; the address is counted, across usernames
# and with its own higher limit, by ldnclinic.lockout instead (axes' one limit would lock an office at 5).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "locked_out.html"
# Email sent on request (ldnclinic.throttle), per hour: password reset emails to one address, reset
# requests from one client address, and portal invitations to one patient.
PASSWORD_RESETS_PER_ADDRESS = env_int("PASSWORD_RESETS_PER_ADDRESS", 3, minimum=1)
PASSWORD_RESETS_PER_CLIENT = env_int("PASSWORD_RESETS_PER_CLIENT", 20, minimum=1)
PORTAL_INVITES_PER_HOUR = env_int("PORTAL_INVITES_PER_HOUR", 3, minimum=1)
AXES_VERBOSE = False  # no banner on every manage.py command

# --- Redis: Celery broker and cache when REDIS_URL is set -------------------------------------
REDIS_URL = env_redis_url("REDIS_URL")
# "pages" keeps drawn worklists and charts until their clinic's data changes (ldnclinic/stamps.py), apart
# from "default" (throttle counts, sessions' helpers), so its many entries never crowd those out.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "ldn",
        },
        "pages": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "ldn-pages",
        },
    }
else:
    # A file cache, not local memory: web, worker and beat are separate processes.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        },
        "pages": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache-pages"),
            "OPTIONS": {"MAX_ENTRIES": env_int("PAGE_CACHE_ENTRIES", 2000, minimum=10)},
        },
    }

# --- Celery ----------------------------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Longer than any task's time limit, so acks_late never redelivers a task still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    # Embedded broker: kombu's filesystem transport works across processes on one machine.
    _broker_dir = VAR_DIR / "celery" / "broker"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"
    for _folder in (_broker_dir, _processed_dir, _control_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost//"  # a host silences kombu's "no hostname" warning
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
        "control_folder": str(_control_dir),
        # The filesystem transport polls; once a second made a burst of checks take a minute.
        "polling_interval": 0.2,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# Tasks are idempotent, so acknowledging after the work is done is safe and loses nothing.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {
        "task": "ldnclinic.tasks.heartbeat",
        "schedule": timedelta(seconds=env_int("HEARTBEAT_SECONDS", 60, minimum=1)),
    },
    # Re-evaluate every screening and active patient: catalog changes, washouts elapsing, expiries.
    "opioid-sweep": {"task": "patients.opioid_sweep", "schedule": crontab(hour=2, minute=30)},
    # The reminder outbox: claim and send what is due, every minute by default (no Celery ETAs).
    "reminder-tick": {
        "task": "titration.reminder_tick",
        "schedule": timedelta(seconds=env_int("REMINDER_TICK_SECONDS", 60, minimum=1)),
    },
    # Write the coming days' reminder rows for every active patient (idempotent by key).
    "reminder-plan": {"task": "titration.reminder_plan_all", "schedule": timedelta(minutes=15)},
    # EFF-1: a review task for each patient reaching 12 weeks on the maintenance dose (idempotent by key).
    "efficacy-reviews": {"task": "titration.efficacy_reviews", "schedule": crontab(hour=3, minute=10)},
    # The worklist's stored plan outlooks, rebuilt from the plans (each change rewrites its own already).
    "outlook-rebuild": {"task": "titration.outlook_rebuild", "schedule": crontab(hour=3, minute=40)},
}

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    # Deny by default: every view must be reached by an authenticated clinic member unless it
    # says otherwise (patient-facing endpoints opt in explicitly).
    "DEFAULT_PERMISSION_CLASSES": ["ldnclinic.api.IsClinicStaff"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ldnclinic API",
    "DESCRIPTION": "Low-dose naltrexone clinic record. All patient data is scoped to the caller's clinic.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["ldnclinic.api.IsClinicStaff"],  # the API is for clinic staff; so are its docs
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Email (Django 6.1 MAILERS) ---------------------------------------------------------------
# EMAIL_URL: smtp://user:pass@host:25, smtp+tls://...:587, smtp+ssl://...:465, or consolemail://
MAILERS = {"default": env_email("EMAIL_URL")}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ldnclinic <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Text messages: the console (log) by default, or ldnclinic.messaging.FileSMSBackend (SMS_FILE_PATH);
# a provider backend is a class with send(to, body, key), named here once it is configured.
SMS_BACKEND = env_str("SMS_BACKEND", "ldnclinic.messaging.ConsoleSMSBackend")
SMS_FILE_PATH = env_str("SMS_FILE_PATH", str(VAR_DIR / "sms.jsonl"))
# ldnclinic.messaging.TwilioSMSBackend reads these; it refuses to start without all three.
SMS_TWILIO_ACCOUNT_SID = env_str("SMS_TWILIO_ACCOUNT_SID", "")
SMS_TWILIO_AUTH_TOKEN = env_str("SMS_TWILIO_AUTH_TOKEN", "")
SMS_FROM_NUMBER = env_str("SMS_FROM_NUMBER", "")
# A check-in link in a reminder works for this many hours (single use).
CHECKIN_LINK_HOURS = env_int("CHECKIN_LINK_HOURS", 72, minimum=1)
# Links in reminders point here (the patient's check-in page). Unset, they follow the address `make run`
# serves: HOST and PORT, as the Procfile's runserver reads them (an IPv6 host goes in brackets).
SITE_URL = env_str("SITE_URL")
if SITE_URL is None:
    _host = env_str("HOST", "127.0.0.1")
    SITE_URL = f"http://{f'[{_host}]' if ':' in _host else _host}:{env_int('PORT', 8000, minimum=1, maximum=65535)}"
SITE_URL = SITE_URL.rstrip("/")
# Reminder outbox: how many rows one beat tick sends, and how long a claimed row may stay "sending"
# before another tick takes it back (a worker killed mid-send).
REMINDER_BATCH_SIZE = env_int("REMINDER_BATCH_SIZE", 500, minimum=1)
# The lease may be short in tests (a killed worker's rows come back within seconds); a worker that
# outlives its lease cannot send twice, because it commits with the claim it holds (see deliver).
REMINDER_LEASE_SECONDS = env_int("REMINDER_LEASE_SECONDS", 300, minimum=1)
REMINDER_MAX_ATTEMPTS = env_int("REMINDER_MAX_ATTEMPTS", 6, minimum=1)
# SMTP connections each tick keeps open: a group of this many reminders is sent side by side, one per
# connection, and marked sent by one statement before the dots (ldnclinic.messaging.TwoPhaseSMTP).
REMINDER_SMTP_CONNECTIONS = env_int("REMINDER_SMTP_CONNECTIONS", 8, minimum=1)

# --- Security (on by default whenever DEBUG is off) ------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 30, minimum=1)
SESSION_MAX_HOURS = env_int("SESSION_MAX_HOURS", 8, minimum=1)
SESSION_COOKIE_AGE = SESSION_MAX_HOURS * 3600  # the cookie outlives no session
X_FRAME_OPTIONS = "DENY"

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not a logging level")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# History is read-only in the admin: a revert would be a silent bulk change to a clinical record.
SIMPLE_HISTORY_REVERT_DISABLED = True
