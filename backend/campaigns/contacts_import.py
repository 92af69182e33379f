"""Parsing and validating an uploaded contact list (or do-not-call list) before anything is stored.

The whole file is checked first; if any row is bad the caller stores nothing and returns every row's errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.campaigns.csv_io import CsvFileError, iter_records, normalize_header, read_csv, shorten
from backend.campaigns.models import RowError, check_timezone
from backend.campaigns.phones import PhoneError, normalize_phone

PHONE_COLUMNS = ("phone", "phone_number", "number", "mobile", "mobile_number", "msisdn", "telephone", "tel", "cell",
                 "to")
TIMEZONE_COLUMNS = ("timezone", "time_zone", "tz")
MAX_COLUMNS = 60
MAX_VALUE_CHARS = 500
MAX_REPORTED_ERRORS = 1000


@dataclass
class ParsedContact:
    row: int
    phone: str
    variables: dict[str, str]
    timezone: str | None = None


@dataclass
class ParsedList:
    contacts: list[ParsedContact] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    rows: int = 0
    duplicates_in_file: int = 0
    phone_column: str | None = None
    variables: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


def parse_phone_list(
    data: bytes,
    *,
    default_region: str,
    phone_column: str | None = None,
    max_rows: int,
    keep_variables: bool = True,
) -> ParsedList:
    """Validates every row. `keep_variables=False` (do-not-call lists) keeps only an optional `reason` column."""
    result = ParsedList()
    try:
        decoded = read_csv(data)
    except CsvFileError as exc:
        result.add_error(RowError(row=1, message=str(exc)))
        return result
    result.encoding, result.delimiter = decoded.encoding, decoded.delimiter

    records = iter_records(decoded)
    first = next(records, None)
    if first is None or first[1] is None:
        result.add_error(RowError(row=1, message=first[2] if first and first[2] else "file has no header row"))
        return result
    raw_header = first[1]
    header = [normalize_header(h) for h in raw_header]
    if len(header) > MAX_COLUMNS:
        result.add_error(RowError(row=1, message=f"too many columns ({len(header)}; at most {MAX_COLUMNS})"))
        return result
    for index, (raw, name) in enumerate(zip(raw_header, header, strict=True)):
        if not name:
            result.add_error(RowError(row=1, column=f"#{index + 1}", message="column has no usable name",
                                      value=shorten(raw)))
    seen: dict[str, int] = {}
    for index, name in enumerate(header):
        if name and name in seen:
            result.add_error(RowError(row=1, column=name, message=f"duplicate column name (columns {seen[name] + 1} "
                                                                  f"and {index + 1})"))
        seen.setdefault(name, index)
    wanted = normalize_header(phone_column) if phone_column else None
    if wanted:
        phone_name = wanted if wanted in seen else None
        if phone_name is None:
            result.add_error(RowError(row=1, column=phone_column, message="phone column not found in the header"))
    else:
        phone_name = next((c for c in PHONE_COLUMNS if c in seen), None)
        if phone_name is None:
            result.add_error(RowError(row=1, message="no phone column; name one of: " + ", ".join(PHONE_COLUMNS[:6])))
    if result.error_count:
        return result
    assert phone_name is not None
    result.phone_column = phone_name
    phone_index = seen[phone_name]
    tz_name = next((c for c in TIMEZONE_COLUMNS if c in seen), None)
    if keep_variables:
        variable_names = [h for h in header if h not in (phone_name, tz_name)]
    else:
        variable_names = [h for h in header if h == "reason"]
    result.variables = variable_names

    firsts: dict[str, int] = {}
    for number, fields, parse_error in records:
        if parse_error is not None or fields is None:
            result.add_error(RowError(row=number, message=parse_error or "unreadable row"))
            break
        result.rows += 1
        if result.rows > max_rows:
            result.add_error(RowError(row=number, message=f"too many rows (at most {max_rows})"))
            break
        if len(fields) != len(header):
            result.add_error(RowError(row=number, message=f"row has {len(fields)} fields, the header has {len(header)}"))
            continue
        row_ok = True
        try:
            phone = normalize_phone(fields[phone_index], default_region)
        except PhoneError as exc:
            result.add_error(RowError(row=number, column=phone_name, message=str(exc),
                                      value=shorten(fields[phone_index])))
            row_ok = False
            phone = ""
        timezone: str | None = None
        if tz_name is not None:
            tz_value = fields[seen[tz_name]].strip()
            if tz_value:
                try:
                    timezone = check_timezone(tz_value)
                except ValueError as exc:
                    result.add_error(RowError(row=number, column=tz_name, message=str(exc), value=shorten(tz_value)))
                    row_ok = False
        variables: dict[str, str] = {}
        for name in variable_names:
            value = fields[seen[name]].strip()
            if len(value) > MAX_VALUE_CHARS:
                result.add_error(RowError(row=number, column=name,
                                          message=f"value longer than {MAX_VALUE_CHARS} characters",
                                          value=shorten(value)))
                row_ok = False
            variables[name] = value
        if not row_ok:
            continue
        if phone in firsts:
            result.duplicates_in_file += 1
            continue
        firsts[phone] = number
        result.contacts.append(ParsedContact(row=number, phone=phone, variables=variables, timezone=timezone))
    if result.rows == 0 and not result.error_count:
        result.add_error(RowError(row=2, message="file has a header but no data rows"))
    return result
