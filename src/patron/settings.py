"""Patron's settings: one module, read from the environment.

Every setting a deployment may change is a ``PATRON_*`` environment variable,
documented in the README's configuration table beside its default. The
defaults describe the embedded mode: a SQLite file under ``./var/``, the
database task queue, and mail captured into the Outbox.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


PACKAGE_DIR = Path(__file__).resolve().parent
# The project checkout (or the current directory when installed elsewhere).
BASE_DIR = Path(env("PATRON_HOME", str(Path.cwd()))).resolve()
VAR_DIR = Path(env("PATRON_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("PATRON_DEBUG", False)
# pytest imports these settings before any conftest runs, so it is detected here.
TESTING = env_bool("PATRON_TESTING", "pytest" in sys.modules)
# Production refuses to start on generated or default secrets.
PRODUCTION = env_bool("PATRON_PRODUCTION", False)


def _secret_key() -> str:
    """The configured key, or one generated once and kept in ``var/secret_key``."""
    configured = env("PATRON_SECRET_KEY")
    if configured:
        if len(configured) < 32:
            raise ImproperlyConfigured("PATRON_SECRET_KEY must be at least 32 characters long")
        return configured
    if PRODUCTION:
        raise ImproperlyConfigured("PATRON_SECRET_KEY is required when PATRON_PRODUCTION=1")
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # Created with owner-only permissions: the key signs sessions and links.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()
# Keys that encrypt stored credentials (SMTP passwords, ESP keys, DKIM private keys).
# The first encrypts; all of them decrypt, so a key is rotated by putting the new one
# first and running `patron manage rotate_secrets`. Without it, a key derived from
# SECRET_KEY is used (changing SECRET_KEY then means keeping the old one listed here).
ENCRYPTION_KEYS = [
    key.strip() for key in env("PATRON_ENCRYPTION_KEY").split(",") if key.strip()
] or [SECRET_KEY]

HOST = env("PATRON_HOST", "127.0.0.1")
PORT = int(env("PATRON_PORT", "8000"))
BASE_URL = env("PATRON_BASE_URL", f"http://{HOST}:{PORT}").rstrip("/")

_base = urlsplit(BASE_URL)
ALLOWED_HOSTS = [h.strip() for h in env("PATRON_ALLOWED_HOSTS", "").split(",") if h.strip()]
ALLOWED_HOSTS += [_base.hostname or "localhost", "127.0.0.1", "localhost", "[::1]"]
if TESTING:
    ALLOWED_HOSTS.append("testserver")
CSRF_TRUSTED_ORIGINS = [f"{_base.scheme}://{_base.netloc}"]
if PRODUCTION and _base.scheme == "https":
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "django_rq",
    "patron.core",
    "patron.activity",
    "patron.crm",
    "patron.audience",
    "patron.mail",
    "patron.capture",
    "patron.tracking",
    "patron.automation",
    "patron.insights",
    "patron.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "patron.core.middleware.WorkspaceMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "patron.urls"
WSGI_APPLICATION = "patron.wsgi.application"
ASGI_APPLICATION = "patron.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "patron.core.context_processors.workspace",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------
DATABASE_URL = env("PATRON_DATABASE_URL", f"sqlite:///{VAR_DIR / 'patron.sqlite3'}")
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=0 if TESTING else 60)
if _db["ENGINE"] == "django.db.backends.sqlite3":
    if _db["NAME"] != ":memory:":
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        # WAL lets readers carry on while one writer commits; IMMEDIATE makes a
        # write transaction take its lock up front instead of failing halfway.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    _db["TEST"] = {"NAME": env("PATRON_TEST_SQLITE_NAME") or None}
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db["ENGINE"] = "django.db.backends.postgresql"
    _db["CONN_HEALTH_CHECKS"] = True
    # PostgreSQL's JIT compiles segment and report queries for seconds (measured:
    # 2.4 s of a 7.6 s segment count) and saves nothing on the short queries of a
    # web request. PATRON_DATABASE_OPTIONS replaces these server options.
    _db.setdefault("OPTIONS", {})["options"] = env("PATRON_DATABASE_OPTIONS", "-c jit=off")
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = _db["ENGINE"] == "django.db.backends.postgresql"

AUTH_USER_MODEL = "core.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Fast hashing in tests only; production keeps PBKDF2's full cost.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "core:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "core:login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Internationalisation -------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("zh-hant", _("Traditional Chinese")),
    ("id", _("Indonesian")),
    ("vi", _("Vietnamese")),
]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

# --- Static files ---------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env("PATRON_STATIC_ROOT", str(VAR_DIR / "static")))
# Front-end libraries come from npm (package.json with its lock file).
NODE_MODULES = Path(env("PATRON_NODE_MODULES", str(BASE_DIR / "node_modules")))
STATICFILES_DIRS = [
    PACKAGE_DIR / "static",
    ("vendor/bootstrap", NODE_MODULES / "bootstrap" / "dist"),
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING
if WHITENOISE_USE_FINDERS:
    # whitenoise reads the directory at start-up even when finders serve the files.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env("PATRON_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"

# --- Mail -----------------------------------------------------------------
EMAIL_TRANSPORT = env("PATRON_EMAIL_TRANSPORT", "capture")
_EMAIL_BACKENDS = {
    "capture": "patron.mail.backends.CaptureBackend",
    "smtp": "patron.mail.backends.SMTPBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
}
if EMAIL_TRANSPORT not in _EMAIL_BACKENDS:
    raise ImproperlyConfigured(
        f"PATRON_EMAIL_TRANSPORT must be one of {', '.join(_EMAIL_BACKENDS)}, "
        f"got {EMAIL_TRANSPORT!r}"
    )
EMAIL_BACKEND = _EMAIL_BACKENDS[EMAIL_TRANSPORT]
_mail_host = _base.hostname or "localhost"
if _mail_host.replace(".", "").isdigit() or ":" in _mail_host:
    _mail_host = "localhost"  # an IP address is no mail domain
DEFAULT_FROM_EMAIL = env("PATRON_DEFAULT_FROM_EMAIL", f"Patron <patron@{_mail_host}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Campaign and automated mail (patron.mail.transports) and system mail share these.
# Several servers, comma separated: smtp://user:pass@host:587?tls=starttls&weight=3,...
SMTP_URLS = [
    url.strip()
    for url in (env("PATRON_SMTP_URLS") or env("PATRON_SMTP_URL", "smtp://127.0.0.1:25")).split(",")
    if url.strip()
]
# The host of every Message-ID Patron writes, and the domain of VERP return paths
# (bounce+<token>@...), whose mail must reach Patron's inbound server.
MAIL_DOMAIN = env("PATRON_MAIL_DOMAIN", _mail_host)
RETURN_PATH_DOMAIN = env("PATRON_RETURN_PATH_DOMAIN", MAIL_DOMAIN)
# DKIM: the installation's key signs mail whose From domain is DKIM_DOMAIN.
DKIM_DOMAIN = env("PATRON_DKIM_DOMAIN").lower()
DKIM_SELECTOR = env("PATRON_DKIM_SELECTOR", "patron")
DKIM_PRIVATE_KEY_FILE = env("PATRON_DKIM_PRIVATE_KEY_FILE")
# Sending speed limits, shared by every worker (through Redis when configured, else
# the database): messages per second overall (0: no limit), and per recipient
# domain "domain=rate/concurrency" pairs, comma separated; "*" sets the default.
SEND_RATE = float(env("PATRON_SEND_RATE", "0"))
DOMAIN_LIMITS = env("PATRON_DOMAIN_LIMITS", "")
if EMAIL_TRANSPORT == "smtp":
    # System mail (Django's mail API) goes through the first server.
    _smtp = urlsplit(SMTP_URLS[0])
    _tls = {"smtps": "tls", "smtp+starttls": "starttls"}.get(_smtp.scheme, "none")
    _tls = parse_qs(_smtp.query).get("tls", [_tls])[-1].lower()
    EMAIL_HOST = _smtp.hostname or "127.0.0.1"
    EMAIL_PORT = _smtp.port or {"tls": 465, "starttls": 587}.get(_tls, 25)
    EMAIL_HOST_USER = unquote(_smtp.username or "")
    EMAIL_HOST_PASSWORD = unquote(_smtp.password or "")
    EMAIL_USE_SSL = _tls == "tls"
    EMAIL_USE_TLS = _tls == "starttls"
    EMAIL_TIMEOUT = 30

# --- Inbound mail -----------------------------------------------------------
# Replies to one-to-one mail (reply+<token>@PATRON_INBOUND_DOMAIN), unsubscribe requests
# by mail and bounces (unsubscribe+/bounce+<token>@ the return-path domain) arrive at
# Patron's own SMTP server (`patron inbound`; started by `patron run` when
# PATRON_INBOUND_PORT is set). The domains' MX records point at it.
INBOUND_DOMAIN = env("PATRON_INBOUND_DOMAIN", RETURN_PATH_DOMAIN).strip().lower()
INBOUND_HOST = env("PATRON_INBOUND_HOST", "127.0.0.1")
INBOUND_PORT = int(env("PATRON_INBOUND_PORT") or "2525")
INBOUND_WITH_RUN = bool(env("PATRON_INBOUND_PORT"))
# The largest message accepted (bytes); a bigger one is refused with 552 during DATA.
INBOUND_MAX_BYTES = int(env("PATRON_INBOUND_MAX_BYTES", str(10 * 1024 * 1024)))
# A certificate and its key (PEM files) let senders switch to TLS (STARTTLS); without
# them the server takes mail in plain text, as an MX without a certificate does.
INBOUND_TLS_CERT_FILE = env("PATRON_INBOUND_TLS_CERT_FILE")
INBOUND_TLS_KEY_FILE = env("PATRON_INBOUND_TLS_KEY_FILE")
# Bounces: a hard bounce suppresses the address at once; soft bounces (mailbox full,
# a receiver refusing for a while) suppress it once there were this many in this many days.
SOFT_BOUNCE_LIMIT = int(env("PATRON_SOFT_BOUNCE_LIMIT", "3"))
SOFT_BOUNCE_DAYS = int(env("PATRON_SOFT_BOUNCE_DAYS", "30"))

# --- Inbound mail by IMAP polling -------------------------------------------
# For installations that cannot be an MX: the same addresses (reply+, unsubscribe+,
# bounce+) delivered to a mailbox at a mail provider (a catch-all or plus-addressing
# mailbox), fetched from it by IMAP. ``imaps://user:password@host:993/INBOX``, or
# ``imap://`` (port 143, STARTTLS when the server offers it). Empty: no polling.
IMAP_URL = env("PATRON_IMAP_URL").strip()
# Seconds between polls (the scheduler's periodic task and `patron imap-poll`).
IMAP_POLL_SECONDS = int(env("PATRON_IMAP_POLL_SECONDS", "60"))
# Where processed messages go ("/" separates levels; created when missing), or, with
# PATRON_IMAP_DELETE_PROCESSED=1, deleted instead.
IMAP_PROCESSED_FOLDER = env("PATRON_IMAP_PROCESSED_FOLDER", "Patron/Processed").strip()
IMAP_DELETE_PROCESSED = env_bool("PATRON_IMAP_DELETE_PROCESSED")
# A PEM bundle of the certificate authorities that sign the IMAP server's certificate
# (a private CA); the system's are used otherwise.
IMAP_CA_FILE = env("PATRON_IMAP_CA_FILE")

# --- Open and click tracking ----------------------------------------------
# Where the open pixel and click redirect of campaign mail point (a tracking
# host of its own in production, e.g. https://click.example.com); the app's own address by default.
TRACKING_BASE_URL = env("PATRON_TRACKING_BASE_URL", BASE_URL).rstrip("/")
# A click or open this soon after the message was made counts as a machine's
# (a receiving server's link scanner), not a person's.
TRACKING_MACHINE_SECONDS = float(env("PATRON_TRACKING_MACHINE_SECONDS", "3"))
# Two different links of one message clicked this close together: a scanner.
TRACKING_BURST_SECONDS = float(env("PATRON_TRACKING_BURST_SECONDS", "2"))
# Hits are judged (machine or person) once they are this old, so that a burst is seen whole.
TRACKING_SETTLE_SECONDS = float(env("PATRON_TRACKING_SETTLE_SECONDS", "5"))
# Behind a proxy that sets X-Forwarded-For, take the visitor's address from it.
TRACKING_FORWARDED_FOR = env_bool("PATRON_TRACKING_FORWARDED_FOR")
# Workflow webhooks call only public addresses unless this is set (receivers on the
# installation's own network).
WEBHOOK_ALLOW_PRIVATE = env_bool("PATRON_WEBHOOK_ALLOW_PRIVATE")
# Hits that could not be written to the database wait here (JSON lines) to be written later.
TRACKING_SPOOL_DIR = Path(env("PATRON_TRACKING_SPOOL_DIR", str(VAR_DIR / "tracking-spool")))
# The web tracker's collect endpoint (/t/e): the largest body it takes, and how long a
# process keeps a site's settings before reading them again.
TRACKING_COLLECT_MAX_BYTES = int(env("PATRON_TRACKING_COLLECT_MAX_BYTES", "16384"))
TRACKING_SITE_CACHE_SECONDS = float(env("PATRON_TRACKING_SITE_CACHE_SECONDS", "30"))

# --- Background work ------------------------------------------------------
REDIS_URL = env("PATRON_REDIS_URL")
if REDIS_URL:
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
if TESTING and not env_bool("PATRON_TEST_REAL_QUEUE"):
    # Tests run tasks inline unless a test opts into the real queue.
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
RQ_QUEUES = {"default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 3600}}
# Seconds between scheduler ticks (the scheduler enqueues periodic jobs).
SCHEDULER_TICK_SECONDS = float(env("PATRON_SCHEDULER_TICK", "5"))
# Seconds between looks at the activity log by the scoring loop that runs beside the
# scheduler (scores, lifecycle rules and hand-offs follow events this quickly); 0 = off,
# leaving the work to the periodic task (every 5 seconds).
SCORING_POLL_SECONDS = float(env("PATRON_SCORING_POLL", "0.5"))

# --- Campaign sending (the send pipeline) ---------------------------------
# Deliveries a worker claims, renders and sends at a time.
SEND_BATCH_SIZE = int(env("PATRON_SEND_BATCH_SIZE", "500"))
# Deliveries per chunk (the unit of work handed to a worker).
SEND_CHUNK_SIZE = int(env("PATRON_SEND_CHUNK_SIZE", "5000"))
# A worker works on a chunk this long, then queues the rest (graceful stops stay short).
SEND_CHUNK_SECONDS = float(env("PATRON_SEND_CHUNK_SECONDS", "20"))
# How long a claimed delivery stays a worker's; a dead worker's rows are claimed again after.
SEND_LEASE_SECONDS = float(env("PATRON_SEND_LEASE_SECONDS", "120"))
# A chunk queued this long without a worker taking it is queued again (a lost task).
SEND_QUEUED_TIMEOUT_SECONDS = float(env("PATRON_SEND_QUEUED_TIMEOUT", "900"))
# Temporary failures: first retry after this many seconds, doubling, at most this many attempts.
SEND_RETRY_SECONDS = float(env("PATRON_SEND_RETRY_SECONDS", "60"))
SEND_MAX_ATTEMPTS = int(env("PATRON_SEND_MAX_ATTEMPTS", "6"))

# --- Patron ---------------------------------------------------------------
WORKERS = int(env("PATRON_WORKERS", "1"))
WEB_WORKERS = int(env("PATRON_WEB_WORKERS", "1"))
# Threads per web process serving requests (WSGI runs each request on one).
WEB_THREADS = int(env("PATRON_WEB_THREADS", "8"))
ADMIN_EMAIL = env("PATRON_ADMIN_EMAIL")
ADMIN_PASSWORD = env("PATRON_ADMIN_PASSWORD")
SEED_DEMO = env_bool("PATRON_DEMO", True)
API_KEY_PREFIX = "ptn"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("PATRON_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Web forms (capture) --------------------------------------------------
# A form sent sooner than this after its page opened is refused (bots fill at once).
FORMS_MIN_FILL_SECONDS = float(env("PATRON_FORMS_MIN_FILL_SECONDS", "3"))
# A page open longer than this must be reloaded before its form is accepted.
FORMS_MAX_AGE_SECONDS = float(env("PATRON_FORMS_MAX_AGE_SECONDS", "86400"))
# Submissions per IP address per window (kept in the cache; all forms together).
FORMS_RATE_LIMIT = int(env("PATRON_FORMS_RATE_LIMIT", "20"))
FORMS_RATE_WINDOW_SECONDS = int(env("PATRON_FORMS_RATE_WINDOW_SECONDS", "600"))
# A submission's request body may not be larger than this.
FORMS_MAX_BODY_BYTES = int(env("PATRON_FORMS_MAX_BODY_BYTES", "65536"))
# The largest file the download library (gated content) accepts.
DOWNLOADS_MAX_BYTES = int(env("PATRON_DOWNLOADS_MAX_BYTES", str(50 * 1024 * 1024)))
