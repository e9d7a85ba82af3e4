#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ldnclinic.settings")
    # A bare checkout with no configuration at all is a developer's machine: run management commands
    # in development mode there. Servers (gunicorn, Celery) never pass through here and still refuse
    # to start without SECRET_KEY when DEBUG is off; any explicit DEBUG or SECRET_KEY is respected.
    if "SECRET_KEY" not in os.environ and "DEBUG" not in os.environ:
        os.environ["DEBUG"] = "1"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
