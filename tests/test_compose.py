"""docker-compose.yml and the Dockerfile, checked for what `docker compose up` on a user's machine needs.

There is no Docker here. The compose file is parsed with PyYAML (which resolves its anchors and merge
keys), compose's ${VAR:-default} interpolation is reproduced, and the parts that can run without
containers run for real: the settings under the containers' environment (`check --deploy`), the
Dockerfile's collectstatic step, and the web healthcheck against gunicorn started with web's command.
"""

import importlib
import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

DATA_SERVICES = ("postgres", "redis")
APP_SERVICES = ("migrate", "web", "worker", "beat")
LONG_RUNNING = ("postgres", "redis", "web", "worker", "beat")
# What the settings need in production (DEBUG off): see ldnclinic/settings.py and ldnclinic/env.py.
REQUIRED_APP_ENV = {
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "BEHIND_TLS_PROXY",
    "SECURE_SSL_REDIRECT",
    "EMAIL_URL",
    "DEFAULT_FROM_EMAIL",
}
PRODUCTION_OVERRIDES = {
    "POSTGRES_PASSWORD": "c0ffee" * 8,
    "ALLOWED_HOSTS": "clinic.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://clinic.example.org",
    "BEHIND_TLS_PROXY": "1",
    "EMAIL_URL": "smtp+tls://mailer:app-password@smtp.example.org:587",
    "DEFAULT_FROM_EMAIL": "Clinic <clinic@example.org>",
}


# --- compose interpolation, as `docker compose` does it ------------------------------------------


class MissingVariable(Exception):
    """A ${VAR:?message} whose variable is unset: compose refuses to start."""


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<invalid>))"
)


def interpolate(text: str, env: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        if match["braced"] is None:
            raise ValueError(f"invalid interpolation in {text!r}")
        name, op, arg = match["braced"], match["op"] or "", match["arg"]
        value = env.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if unset and op.endswith("-"):
            return arg
        if unset and op.endswith("?"):
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    return _INTERPOLATION.sub(replace, text)


def resolved_env(service: dict, user_env: dict[str, str]) -> dict[str, str]:
    environment = service["environment"]
    assert isinstance(environment, dict), "environment should be a mapping (NAME: value)"
    return {name: interpolate(str(value), user_env) for name, value in environment.items()}


def argv(command) -> list[str]:
    return list(command) if isinstance(command, list) else shlex.split(command)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without anything the app reads, plus ``extra``."""
    reads = REQUIRED_APP_ENV | {"DJANGO_SETTINGS_MODULE", "LDN_VAR_DIR", "LOG_LEVEL", "FORWARDED_ALLOW_IPS"}
    env = {name: value for name, value in os.environ.items() if name not in reads}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture
def secret_key() -> str:
    return secrets.token_urlsafe(64)


# --- services, healthchecks, start order -----------------------------------------------------------


def test_the_stack_has_its_services(services):
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "beat"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name in APP_SERVICES:
        assert services[name]["build"] == ".", name
    # One image for all app services, so compose builds it once and they cannot run different code.
    assert len({services[name]["image"] for name in APP_SERVICES}) == 1


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_restart_and_have_a_healthcheck(services, name):
    service = services[name]
    assert service["restart"] == "unless-stopped"
    healthcheck = service["healthcheck"]
    assert not healthcheck.get("disable", False)
    test = healthcheck["test"]
    assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"}, test
    assert len(test) >= 2 and all(part.strip() for part in test[1:]), test
    for key in ("interval", "timeout", "retries"):
        assert healthcheck[key], f"{name}: healthcheck {key}"


def test_migrate_is_a_one_shot_that_waits_for_postgres(services):
    migrate = services["migrate"]
    assert argv(migrate["command"]) == ["python", "manage.py", "migrate", "--noinput"]
    # A restart policy would rerun it forever and service_completed_successfully would never hold.
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (ROOT / "manage.py").is_file()


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_app_services_wait_for_healthy_postgres_redis_and_migrations(services, name):
    depends_on = services[name]["depends_on"]
    assert isinstance(depends_on, dict), "depends_on needs the long form to carry conditions"
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["redis"]["condition"] == "service_healthy"
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"


def test_data_services_healthchecks_and_volumes(compose, services):
    postgres, redis = services["postgres"], services["redis"]
    pg_test = postgres["healthcheck"]["test"]
    assert "pg_isready" in pg_test
    # Checks the role and database the app connects as, over TCP (the init-time server is socket-only).
    assert pg_test[pg_test.index("-U") + 1] == postgres["environment"]["POSTGRES_USER"]
    assert pg_test[pg_test.index("-d") + 1] == postgres["environment"]["POSTGRES_DB"]
    assert pg_test[pg_test.index("-h") + 1] == "127.0.0.1"
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"][1:])

    volume, _, target = postgres["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in compose["volumes"], "a named volume, so the database outlives the container"
    assert "ports" not in postgres and "ports" not in redis, "the data services stay on the compose network"


# --- environment ------------------------------------------------------------------------------------


def test_app_services_share_one_environment(services):
    first = services[APP_SERVICES[0]]["environment"]
    for name in APP_SERVICES:
        assert services[name]["environment"] == first, name
    assert set(first) >= REQUIRED_APP_ENV, REQUIRED_APP_ENV - set(first)


@pytest.mark.parametrize("user_env", [{}, PRODUCTION_OVERRIDES], ids=["defaults", "production"])
@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_points_at_the_compose_services(services, name, user_env, secret_key):
    env = resolved_env(services[name], {"SECRET_KEY": secret_key, **user_env})
    postgres = resolved_env(services["postgres"], user_env)

    database = urlparse(env["DATABASE_URL"])
    assert database.scheme in {"postgres", "postgresql"}
    assert database.hostname == "postgres" and database.hostname in services
    assert database.port == 5432
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path == "/" + postgres["POSTGRES_DB"]
    if "POSTGRES_PASSWORD" in user_env:
        assert database.password == user_env["POSTGRES_PASSWORD"]

    redis = urlparse(env["REDIS_URL"])
    assert redis.scheme == "redis"
    assert redis.hostname == "redis" and redis.hostname in services
    assert redis.port == 6379

    assert env["SECRET_KEY"] == secret_key
    assert env["DEBUG"].strip().lower() in {"0", "false", "no", "off"}
    assert [host for host in env["ALLOWED_HOSTS"].split(",") if host.strip()]
    for variable, value in user_env.items():
        if variable in env:
            assert env[variable] == value, f"{variable} from the user's environment is not passed through"


def test_compose_refuses_to_start_without_a_secret_key(services):
    with pytest.raises(MissingVariable, match="SECRET_KEY"):
        resolved_env(services["web"], {})
    # Set but empty counts as unset (":?"), so an empty line in .env cannot slip through either.
    with pytest.raises(MissingVariable, match="SECRET_KEY"):
        resolved_env(services["web"], {"SECRET_KEY": ""})


def test_postgres_password_default_is_only_a_local_fallback(services):
    raw = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert raw.startswith("${POSTGRES_PASSWORD:-"), "the user's POSTGRES_PASSWORD must take precedence"
    assert interpolate(raw, {"POSTGRES_PASSWORD": "s3cret"}) == "s3cret"


# --- commands and the modules they name ---------------------------------------------------------------


def test_web_runs_gunicorn_on_the_wsgi_application(services):
    command = argv(services["web"]["command"])
    assert command[:2] == ["gunicorn", "ldnclinic.wsgi:application"]
    assert command[command.index("--bind") + 1] == "0.0.0.0:8000"
    assert any(str(port).split(":")[-1] == "8000" for port in services["web"]["ports"])

    module_name, _, attribute = command[1].partition(":")
    application = getattr(importlib.import_module(module_name), attribute)
    assert callable(application)


def test_worker_and_beat_run_celery_on_the_ldnclinic_app(services):
    from celery.app.utils import find_app

    import ldnclinic.celery

    worker, beat = argv(services["worker"]["command"]), argv(services["beat"]["command"])
    assert worker[:4] == ["celery", "-A", "ldnclinic", "worker"]
    assert beat[:4] == ["celery", "-A", "ldnclinic", "beat"]
    # `-A ldnclinic` is resolved the way the celery command resolves it.
    assert find_app("ldnclinic") is ldnclinic.celery.app
    # The schedule goes to var/, the one directory the image's user may write to.
    assert beat[beat.index("--schedule") + 1] == "/app/var/celerybeat-schedule"


def test_worker_healthcheck_pings_its_own_node(services):
    from celery.utils.nodenames import default_nodename

    test = services["worker"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL", "a shell is needed to expand HOSTNAME"
    # $$ is compose's escape: the container's shell gets $HOSTNAME, not the host's (empty) value.
    shell_command = interpolate(test[1], {"HOSTNAME": "the-host-machine"})
    assert argv(shell_command)[:4] == ["celery", "-A", "ldnclinic", "inspect"]
    assert "ping" in argv(shell_command)
    assert "-d celery@$HOSTNAME" in shell_command
    # The worker runs without -n, so its node is celery@<hostname>.
    assert "-n" not in argv(services["worker"]["command"])
    assert default_nodename(None).startswith("celery@")


def test_beat_healthcheck_pings_beat_with_remote_control_enabled(services):
    from celery.beat import beat_nodename
    from celery.bin.beat import beat as beat_command

    beat = argv(services["beat"]["command"])
    assert "--enable-remote-control" in beat
    options = {option for param in beat_command.params for option in param.opts}
    assert "--enable-remote-control" in options, "the pinned Celery no longer offers beat remote control"

    test = services["beat"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    shell_command = interpolate(test[1], {"HOSTNAME": "the-host-machine"})
    assert argv(shell_command)[:5] == ["celery", "-A", "ldnclinic", "inspect", "ping"]
    assert "-d celerybeat@$HOSTNAME" in shell_command
    assert beat_nodename("container-id") == "celerybeat@container-id"


# --- Dockerfile ---------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    instructions, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        keyword, _, rest = (current + stripped).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def test_dockerfile_base_image_is_a_supported_python():
    instructions = dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) == 1
    match = re.fullmatch(r"python:(\d+)\.(\d+)(?:\.\d+)?-slim", froms[0])
    assert match, froms[0]
    version = (int(match[1]), int(match[2]))
    assert version >= (3, 12)
    pyproject = (ROOT / "pyproject.toml").read_text()
    minimum = re.search(r'requires-python\s*=\s*">=(\d+)\.(\d+)"', pyproject)
    assert version >= (int(minimum[1]), int(minimum[2]))


def test_dockerfile_installs_dependencies_and_runs_as_a_user():
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    assert any("pip install" in run and "--no-cache-dir" in run for run in runs)
    assert ("COPY", "pyproject.toml /tmp/deps/") in instructions
    assert ("WORKDIR", "/app") in instructions

    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("CMD")
    # var/ (static files, beat's schedule) is writable by that user.
    assert any("chown" in run and "/app/var" in run and users[-1] in run for run in runs)

    # The build-time key must not become part of the image's environment.
    for keyword, rest in instructions:
        if keyword in {"ENV", "ARG"}:
            assert "SECRET_KEY" not in rest


def test_dockerfile_cmd_serves_the_wsgi_application(services):
    instructions = dockerfile_instructions()
    assert ("EXPOSE", "8000") in instructions
    cmd = json.loads(next(rest for keyword, rest in instructions if keyword == "CMD"))
    assert cmd[:2] == ["gunicorn", "ldnclinic.wsgi:application"]
    assert cmd[2:] == ["--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
    assert argv(services["web"]["command"]) == cmd
    assert callable(importlib.import_module("ldnclinic.wsgi").application)


def test_dockerignore_keeps_local_state_out_and_the_source_in():
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch(path, pattern) or fnmatch(path.split("/")[0], pattern) for pattern in patterns)

    for path in (".venv", "var", ".git", ".env", "ldnclinic/__pycache__", ".pytest_cache"):
        assert ignored(path), path
    needed = ("manage.py", "pyproject.toml", "ldnclinic", "patients", "symptoms", "titration", "templates", "static")
    for path in needed:
        assert (ROOT / path).exists(), path
        assert not ignored(path), f"{path} is needed in the image"


def test_collectstatic_runs_as_in_the_dockerfile(tmp_path):
    run = next(rest for keyword, rest in dockerfile_instructions() if keyword == "RUN" and "collectstatic" in rest)
    words = shlex.split(run)
    start = words.index("python")
    assignments = dict(word.split("=", 1) for word in words[:start])
    assert set(assignments) == {"SECRET_KEY", "DEBUG"}
    assert words[start:] == ["python", "manage.py", "collectstatic", "--noinput"]

    env = clean_environ(**assignments, DJANGO_SETTINGS_MODULE="ldnclinic.settings", LDN_VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, *words[start + 1 :]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # DEBUG off: the manifest storage whitenoise serves from, in var/static as the image has it.
    assert (tmp_path / "static" / "staticfiles.json").is_file()


# --- the settings under the containers' environment -------------------------------------------------------


def check_deploy(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    # No connection is made by `check`, but keep the hosts resolvable anyway.
    env = dict(env)
    env["DATABASE_URL"] = env["DATABASE_URL"].replace("@postgres:", "@127.0.0.1:")
    env["REDIS_URL"] = env["REDIS_URL"].replace("//redis:", "//127.0.0.1:")
    assert "127.0.0.1" in env["DATABASE_URL"] and "127.0.0.1" in env["REDIS_URL"]
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean_environ(**env, DJANGO_SETTINGS_MODULE="ldnclinic.settings", LDN_VAR_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize(
    "user_env",
    [{"EMAIL_URL": PRODUCTION_OVERRIDES["EMAIL_URL"]}, PRODUCTION_OVERRIDES],
    ids=["defaults-with-smtp", "production"],
)
def test_check_deploy_accepts_the_compose_environment(services, user_env, secret_key, tmp_path):
    env = resolved_env(services["web"], {"SECRET_KEY": secret_key, **user_env})
    result = check_deploy(env, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNING" not in output and "?: (" not in output


def test_check_deploy_flags_only_the_console_mail_default(services, secret_key, tmp_path):
    """EMAIL_URL defaults to consolemail:// for a local try: mail goes to the log, and Django 6.1's
    deploy check says so (mail.E001). Nothing else in the defaults is flagged."""
    env = resolved_env(services["web"], {"SECRET_KEY": secret_key})
    assert env["EMAIL_URL"] == "consolemail://"
    result = check_deploy(env, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.findall(r"\?: \((\w+\.\w+)\)", output) == ["mail.E001"], output
    assert "identified 1 issue" in output


# --- the web healthcheck, run against gunicorn started with web's command ---------------------------------


@pytest.fixture
def run_web(services, secret_key, tmp_path):
    started: list[subprocess.Popen] = []

    def start(user_env: dict[str, str], **overrides: str) -> tuple[int, dict[str, str]]:
        """web's command on a free loopback port, with web's environment; SQLite and the file cache
        stand in for PostgreSQL and Redis unless ``overrides`` says otherwise."""
        env = resolved_env(services["web"], {"SECRET_KEY": secret_key, **user_env})
        del env["DATABASE_URL"], env["REDIS_URL"]
        env.update(overrides)
        port = free_port()
        command = argv(services["web"]["command"])
        command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
        log = (tmp_path / f"gunicorn-{port}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=ROOT,
            # XDG_RUNTIME_DIR: gunicorn's control socket goes there, not into the home directory.
            env=clean_environ(**env, LDN_VAR_DIR=str(tmp_path / "var"), XDG_RUNTIME_DIR=str(tmp_path)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / f"gunicorn-{port}.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port, env
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start listening"
                time.sleep(0.2)

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_web_healthcheck(services, port: int, env: dict[str, str]) -> subprocess.CompletedProcess:
    test = services["web"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    code = interpolate(test[3], {})
    assert code.count("127.0.0.1:8000") == 1
    code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    # The healthcheck runs inside the container, with the container's environment.
    return subprocess.run(
        [sys.executable, "-c", code], env=clean_environ(**env), capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(
    "user_env",
    [{}, {"ALLOWED_HOSTS": ".example.org,localhost", "BEHIND_TLS_PROXY": "1"}],
    ids=["defaults", "behind-tls-proxy"],
)
def test_web_healthcheck_passes_with_ssl_redirect_on(services, run_web, user_env):
    port, env = run_web(user_env)
    assert env["SECURE_SSL_REDIRECT"] == "1"
    # Without the healthcheck's care, /healthz over plain http is only a redirect to https.
    plain = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"})
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(plain, timeout=10)
    assert redirect.value.code == 301

    result = run_web_healthcheck(services, port, env)
    assert result.returncode == 0, result.stderr


def test_web_healthcheck_fails_when_the_database_is_down(services, run_web):
    # Nothing listens on port 9: /healthz answers 503 and the healthcheck must exit non-zero.
    port, env = run_web({}, DATABASE_URL="postgres://ldnclinic:pw@127.0.0.1:9/ldnclinic")
    result = run_web_healthcheck(services, port, env)
    assert result.returncode != 0
    assert "503" in result.stderr


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
