# ldnclinic: one image for the web app (gunicorn), the Celery worker and Celery beat.
# docker-compose.yml wires them to PostgreSQL and Redis; every setting comes from the environment.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The app runs unprivileged. It owns only /app/var (collected static files, beat's schedule) and
# its home (where gunicorn puts its control socket); the code stays root-owned and read-only to it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so a code change reuses this layer.
# [tool.setuptools] packages = [] makes this install the pinned [project].dependencies and nothing else.
# psycopg[binary] ships its own libpq: no compiler or -dev packages needed.
COPY pyproject.toml /tmp/deps/
RUN pip install --no-cache-dir /tmp/deps && rm -rf /tmp/deps

COPY . .
RUN mkdir -p /app/var && chown app:app /app/var

USER app

# Static files are collected into /app/var/static at build time and served by whitenoise.
# Settings refuse to load without SECRET_KEY when DEBUG is off: this throwaway key exists for
# this one command only and is not part of the image's environment.
RUN SECRET_KEY=build-only-collectstatic-key-never-used-at-runtime-0000000000 DEBUG=0 \
    python manage.py collectstatic --noinput

EXPOSE 8000
CMD ["gunicorn", "ldnclinic.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
