# ldnclinic: `make run` sets up and starts everything; `make test` runs the suite.
# DATABASE_URL / REDIS_URL in the environment switch from the embedded defaults to PostgreSQL / Redis.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test bench lint format migrate seed check-deploy clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@python="$$(PYTHON=$(PYTHON) .ci/find-python)" || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
		echo "Creating $(VENV) with $$python"; rm -rf $(VENV); "$$python" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

# Local run: DEBUG on (runserver serves static files, no HTTPS redirect) unless you set it.
run: export DEBUG := $(or $(DEBUG),1)
# seed_demo, web and worker build patient links (SITE_URL) from the address served, unless SITE_URL is set.
run: export HOST := $(HOST)
run: export PORT := $(PORT)
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo
	@echo "  ldnclinic is starting (web, Celery worker and beat; Ctrl-C stops all three):"
	@echo "    staff:    http://$(HOST):$(PORT)/clinic/"
	@echo "    patients: http://$(HOST):$(PORT)/me/login/"
	@echo
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" HOST=$(HOST) PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile

test: install
	$(VENV)/bin/pytest

# Benchmarks print JSON lines: each target next to a baseline measured in the same run.
bench: install
	@for bench in tests/benchmarks/bench_*.py; do \
		DJANGO_SETTINGS_MODULE=ldnclinic.test_settings $(PY) -m tests.benchmarks.$$(basename $$bench .py) || exit 1; \
	done

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check-deploy: install
	DEBUG=0 SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))')" \
	ALLOWED_HOSTS=clinic.example.org EMAIL_URL=smtp+tls://mailer@smtp.example.org:587 LDN_VAR_DIR="$$(mktemp -d)" \
	$(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var
