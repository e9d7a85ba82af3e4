"""python manage.py check_opioid [--json] NAME ... | --file PATH

Classifies medicine names with the opioid matcher (domain.md section 2). With --json, one JSON
object per line: {"name", "class", "ingredients", "washout_days", "release", "evidence", ...}.
Exit status 0 always for a completed check; "unavailable" is reported in the output, loudly.
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from patients.opioids import UNAVAILABLE, match


class Command(BaseCommand):
    help = "Check medicine names against the opioid catalog (conflict, caution, antagonist, opioid_context, none)."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="medicine names as written, e.g. 'norco 10/325'")
        parser.add_argument("--file", help="a file with one name per line ('-' for standard input)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object per line")

    def handle(self, *args, names, file, as_json: bool = False, **options):
        items = list(names)
        if file:
            try:
                stream = sys.stdin if file == "-" else open(file, encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise CommandError(f"cannot read {file}: {exc}") from exc
            with stream:
                items.extend(line.strip() for line in stream if line.strip())
        if not items:
            raise CommandError("give one or more names, or --file PATH")
        for name in items:
            result = match(name)
            if as_json:
                self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False))
            else:
                self.stdout.write(self._line(result))

    def _line(self, result) -> str:
        text = f"{result.name}: {result.klass.upper()}"
        if result.ingredients:
            text += f" [{', '.join(result.ingredients)}]"
        if result.washout_days is not None:
            text += f" washout {result.washout_days} days"
        if result.release:
            text += f" ({result.release})"
        if result.notes:
            text += " — " + "; ".join(result.notes)
        style = {
            "conflict": self.style.ERROR,
            UNAVAILABLE: self.style.ERROR,
            "caution": self.style.WARNING,
        }.get(result.klass, str)
        return style(text)
