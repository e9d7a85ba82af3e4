"""Settings come from the environment; a bad value stops the app and names the variable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from ldnclinic import env

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "conn_max_age": db.get("CONN_MAX_AGE"),
    "broker": settings.CELERY_BROKER_URL, "cache": settings.CACHES["default"]["BACKEND"],
    "debug": settings.DEBUG, "use_tz": settings.USE_TZ, "serializer": settings.CELERY_TASK_SERIALIZER,
    "accept": settings.CELERY_ACCEPT_CONTENT, "acks_late": settings.CELERY_TASK_ACKS_LATE,
    "ignore_result": settings.CELERY_TASK_IGNORE_RESULT, "time_limit": settings.CELERY_TASK_TIME_LIMIT,
    "beat": sorted(settings.CELERY_BEAT_SCHEDULE), "mailer": settings.MAILERS["default"],
    "site_url": settings.SITE_URL,
}))
"""


def bare_environment() -> dict[str, str]:
    """Only what a shell needs: none of the test run's own settings variables leak in."""
    return {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}


def load_settings(tmp_path, **variables) -> subprocess.CompletedProcess:
    clean = bare_environment()
    clean.update({"DJANGO_SETTINGS_MODULE": "ldnclinic.settings", "LDN_VAR_DIR": str(tmp_path)})
    clean.update(variables)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_zero_setup_defaults_are_sqlite_and_embedded_broker(tmp_path):
    result = load_settings(tmp_path, DEBUG="1")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["engine"] == "django.db.backends.sqlite3"
    assert config["name"] == str(tmp_path / "ldnclinic.sqlite3")
    assert config["broker"].startswith("filesystem://")
    assert config["cache"].endswith("FileBasedCache")  # shared by web, worker and beat processes
    assert config["use_tz"] is True
    assert config["site_url"] == "http://127.0.0.1:8000"  # what `make run` serves with no HOST or PORT


@pytest.mark.parametrize(
    ("variables", "site_url"),
    [
        ({"PORT": "8123"}, "http://127.0.0.1:8123"),
        ({"HOST": "clinic.local", "PORT": "9000"}, "http://clinic.local:9000"),
        ({"HOST": "::1"}, "http://[::1]:8000"),
        # Set, SITE_URL wins (a proxy's public address), and HOST/PORT are not even read.
        ({"SITE_URL": "https://clinic.example.org/", "HOST": "web", "PORT": "none"}, "https://clinic.example.org"),
    ],
)
def test_patient_links_follow_host_and_port_unless_site_url_is_set(tmp_path, variables, site_url):
    result = load_settings(tmp_path, DEBUG="1", **variables)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["site_url"] == site_url


def test_postgres_and_redis_urls_switch_the_stack(tmp_path):
    result = load_settings(
        tmp_path,
        SECRET_KEY="x" * 60,
        DATABASE_URL="postgres://ldn:pw@db.example:5432/ldnclinic",
        REDIS_URL="redis://cache.example:6379/2",
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["engine"] == "django.db.backends.postgresql"
    assert config["name"] == "ldnclinic"
    assert config["conn_max_age"] == 60  # persistent connections
    assert config["broker"] == "redis://cache.example:6379/2"
    assert config["cache"].endswith("RedisCache")
    assert config["debug"] is False


def test_celery_is_json_only_acks_late_and_time_limited(tmp_path):
    config = json.loads(load_settings(tmp_path, DEBUG="1").stdout)
    assert config["serializer"] == "json"
    assert config["accept"] == ["json"]
    assert config["acks_late"] is True
    assert config["ignore_result"] is True
    assert config["time_limit"] == 300
    assert "heartbeat" in config["beat"]


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"DEBUG": "ture"}, "DEBUG"),
        ({"DEBUG": "0"}, "SECRET_KEY"),
        ({"DEBUG": "1", "DATABASE_URL": "mysql://root@localhost/ldn"}, "DATABASE_URL"),
        ({"DEBUG": "1", "DATABASE_URL": "postgres://postgres@localhost:5432/"}, "DATABASE_URL"),
        ({"DEBUG": "1", "REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
        ({"DEBUG": "1", "CELERY_TASK_TIME_LIMIT": "five"}, "CELERY_TASK_TIME_LIMIT"),
        ({"DEBUG": "1", "EMAIL_URL": "pigeon://loft"}, "EMAIL_URL"),
        ({"DEBUG": "1", "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"DEBUG": "1", "PORT": "eighty"}, "PORT"),
        ({"DEBUG": "1", "PORT": "70000"}, "PORT"),
    ],
)
def test_bad_value_refuses_to_start_and_names_the_variable(tmp_path, variables, named):
    result = load_settings(tmp_path, **variables)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr.splitlines()[-1]


def test_email_url_builds_an_smtp_mailer(tmp_path):
    result = load_settings(tmp_path, DEBUG="1", EMAIL_URL="smtp+tls://mailer:s%40cret@smtp.example.org:587")
    mailer = json.loads(result.stdout)["mailer"]
    assert mailer["BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert mailer["OPTIONS"]["host"] == "smtp.example.org"
    assert mailer["OPTIONS"]["port"] == 587
    assert mailer["OPTIONS"]["password"] == "s@cret"
    assert mailer["OPTIONS"]["use_tls"] is True


def test_env_helpers_refuse_out_of_range(monkeypatch):
    monkeypatch.setenv("X_LIMIT", "0")
    with pytest.raises(ImproperlyConfigured, match="X_LIMIT"):
        env.env_int("X_LIMIT", 5, minimum=1)
    monkeypatch.setenv("X_FLAG", "Yes")
    assert env.env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_LIST", " a, b ,,c ")
    assert env.env_list("X_LIST", []) == ["a", "b", "c"]


def test_postgres_sessions_run_with_jit_off(monkeypatch, tmp_path):
    """Every PostgreSQL session of the app sets jit=off (short OLTP reads), beside options the URL gives."""
    monkeypatch.setenv("X_DB", "postgres://ldn@db.example:5432/ldnclinic")
    assert env.env_database("X_DB", tmp_path / "x.sqlite3")["OPTIONS"]["options"] == "-c jit=off"
    monkeypatch.setenv("X_DB", "postgres://ldn@db.example:5432/ldnclinic?options=-c%20statement_timeout%3D5000")
    options = env.env_database("X_DB", tmp_path / "x.sqlite3")["OPTIONS"]["options"]
    assert options == "-c statement_timeout=5000 -c jit=off"
    monkeypatch.delenv("X_DB")
    assert "options" not in env.env_database("X_DB", tmp_path / "x.sqlite3")["OPTIONS"]


def test_check_deploy_is_clean_with_the_documented_production_variables(tmp_path):
    variables = bare_environment()
    variables.update(
        {
            "DJANGO_SETTINGS_MODULE": "ldnclinic.settings",
            "LDN_VAR_DIR": str(tmp_path),
            "SECRET_KEY": "k3Y-" + "".join(chr(ord("a") + i % 26) + str(i % 10) for i in range(40)),
            "ALLOWED_HOSTS": "clinic.example.org",
            "DATABASE_URL": "postgres://ldn@127.0.0.1:5432/ldnclinic",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "EMAIL_URL": "smtp+tls://mailer@smtp.example.org:587",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=variables,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
