"""Reading settings from the environment, loudly.

django-environ parses URLs well but quietly turns a typo such as ``DEBUG=ture`` into False.
These helpers refuse bad values and name the variable, so a misconfigured deploy fails at start.
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = _raw(name)
    if value is None or value == "":
        if required:
            raise ImproperlyConfigured(f"{name} must be set")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ImproperlyConfigured(f"{name}={number} is outside {minimum}..{maximum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_database(name: str, sqlite_path: Path) -> dict:
    """DATABASE_URL -> a Django DATABASES entry; unset -> the embedded SQLite file."""
    url = env_str(name)
    if url is None:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(sqlite_path),
            # Web, worker and beat share one file: WAL lets readers run beside a writer, IMMEDIATE
            # transactions take the write lock up front so concurrent writers wait instead of failing.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            "TEST": {"NAME": str(sqlite_path.with_name("test-" + sqlite_path.name))},
        }
    scheme = urlparse(url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(f"{name} has unsupported scheme {scheme!r}; use postgres://user@host:port/db")
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # environ raises several types for a malformed URL
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from exc
    if config["ENGINE"].endswith("postgresql"):
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"{name} names no database (postgres://user@host:port/DBNAME)")
        # Persistent connections with a health check; psycopg 3 is the driver Django picks.
        config["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
        config["CONN_HEALTH_CHECKS"] = True
        # JIT off for every session: the app's queries are short OLTP reads, where compiling a plan
        # costs more than it saves (tens of ms on a page's bigger joins). Kept beside any options the URL gives.
        options = config.setdefault("OPTIONS", {})
        options["options"] = " ".join(filter(None, [options.get("options", ""), "-c jit=off"]))
    return config


def env_redis_url(name: str) -> str | None:
    url = env_str(name)
    if url is not None and urlparse(url).scheme not in {"redis", "rediss"}:
        raise ImproperlyConfigured(f"{name}={url!r} is not a redis:// or rediss:// URL")
    return url


def env_email(name: str) -> dict:
    """EMAIL_URL -> a MAILERS entry; unset -> mail printed to the console (development)."""
    url = env_str(name)
    if url is None:
        return {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    scheme = urlparse(url).scheme
    if scheme == "consolemail":
        return {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if scheme not in {"smtp", "smtps", "smtp+tls", "smtp+ssl"}:
        raise ImproperlyConfigured(f"{name} has unsupported scheme {scheme!r}; use smtp://, smtp+tls:// or smtp+ssl://")
    parsed = urlparse(url)
    if not parsed.hostname:
        raise ImproperlyConfigured(f"{name} names no host")
    try:
        port = parsed.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has an invalid port") from None
    options = {
        "host": parsed.hostname,
        "port": port or 25,
        "username": unquote(parsed.username or ""),
        "password": unquote(parsed.password or ""),
        "use_tls": scheme == "smtp+tls",
        "use_ssl": scheme in {"smtps", "smtp+ssl"},
        "timeout": env_int("EMAIL_TIMEOUT", 10, minimum=1),
    }
    return {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": options}
