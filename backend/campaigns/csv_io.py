"""Reading CSVs people actually upload (BOMs, Latin-1 from old spreadsheets, semicolons) and writing CSVs that are
safe to open in a spreadsheet (no formula injection)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

_DELIMITERS = (",", ";", "\t", "|")
# Cells a spreadsheet would run as a formula (OWASP CSV injection): prefixed with a quote on the way out.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class CsvFileError(ValueError):
    """The file as a whole cannot be read (not a row-level problem)."""


@dataclass(frozen=True)
class DecodedCsv:
    text: str
    encoding: str
    delimiter: str


def decode_csv_bytes(data: bytes) -> tuple[str, str]:
    """Text and the encoding it was read with: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252
    (a superset of Latin-1's printable range), else Latin-1 which accepts any byte."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise CsvFileError(f"file starts with a UTF-16 mark but is not UTF-16: {exc.reason}") from None
    if b"\x00" in data:
        raise CsvFileError("file contains NUL bytes: it looks binary (save it as CSV, UTF-8)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header line into the most fields (outside quotes)."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    best, best_count = ",", 0
    for delim in _DELIMITERS:
        try:
            count = len(next(csv.reader([header], delimiter=delim), []))
        except csv.Error:
            continue  # e.g. a field over csv's size limit when split this way (was a 500 before)
        if count > best_count:
            best, best_count = delim, count
    return best


def read_csv(data: bytes) -> DecodedCsv:
    text, encoding = decode_csv_bytes(data)
    if not text.strip():
        raise CsvFileError("file is empty")
    return DecodedCsv(text=text, encoding=encoding, delimiter=sniff_delimiter(text))


def iter_records(decoded: DecodedCsv) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(record number, fields, parse error). Record 1 is the header. Blank lines are skipped."""
    reader = csv.reader(io.StringIO(decoded.text, newline=""), delimiter=decoded.delimiter, strict=True)
    number = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            yield number, None, f"malformed CSV near line {reader.line_num}: {exc}"
            return  # the reader cannot resynchronise after a broken quote
        if not fields or all(not f.strip() for f in fields):
            continue
        number += 1
        yield number, fields, None


_NON_IDENT = re.compile(r"[^0-9a-zA-Z]+")


def normalize_header(name: str) -> str:
    """`First Name` -> `first_name`: usable as a {{variable}} in the agent's prompt."""
    cleaned = _NON_IDENT.sub("_", name.strip().lstrip("\ufeff")).strip("_").lower()
    if cleaned and cleaned[0].isdigit():
        cleaned = "_" + cleaned
    return cleaned


def neutralize_cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def write_safe_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralize_cell(h) for h in header])
    for row in rows:
        writer.writerow([neutralize_cell(cell) for cell in row])
    return out.getvalue()


def shorten(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
