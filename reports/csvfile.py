"""CSV for spreadsheets: streamed, UTF-8 with a byte-order mark, and safe to open in Excel.

Formula injection (OWASP "CSV Injection"): a text cell that begins with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return is read as a formula by Excel, LibreOffice and Google Sheets, so such a
cell gets a leading single quote. Only text is escaped: numbers are written by the code, not typed
by a person, so a negative number stays a number the spreadsheet can sum.
"""

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from decimal import Decimal

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

BOM = "\ufeff"  # Excel reads a BOM-less CSV as the legacy code page and garbles accents
# OWASP's list, plus a line feed, which some spreadsheets also trim before reading a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def cell(value) -> str:
    """One value as a CSV cell. Text that a spreadsheet would run as a formula is neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"  # 1.500 -> 1.5, and never 1.5E+1
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file-like object whose write returns the line: csv.writer then yields what it would write."""

    def write(self, value: str) -> str:
        return value


def stream(header: list[str], rows: Iterable[Iterable]) -> Iterator[bytes]:
    writer = csv.writer(_Echo())
    rows = iter(rows)
    try:
        yield (BOM + writer.writerow([cell(h) for h in header])).encode()
        for row in rows:
            yield writer.writerow([cell(v) for v in row]).encode()
    finally:  # a download stopped half way closes the rows now (their cursor, the export log)
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def response(filename: str, header: list[str], rows: Iterable[Iterable]) -> StreamingHttpResponse:
    result = StreamingHttpResponse(stream(header, rows), content_type="text/csv; charset=utf-8")
    result["Content-Disposition"] = content_disposition_header(True, filename)
    return result
