"""Reading a user's data files: the pieces the three readers share (labelled texts, tagged
tokens, long-format series).

Every problem found in a file is a `DataFileError` naming the file and, where there is one, the
line and column, so a user can open the file at that place. Readers check the whole file before
training starts; a run that fails on its data writes no bundle and no report.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Formats a table of records may come in, by file suffix (a `.gz` suffix is looked through).
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class DataFileError(ValueError):
    """A user's data file that cannot be trained on. `str()` reads `FILE:LINE:COLUMN: message`
    (the parts known), the form editors and CI logs link to."""

    def __init__(
        self, path: Path | str, message: str, line: int | None = None, column: str | int | None = None
    ):
        self.path = Path(path)
        self.line = line
        self.column = column
        self.message = message
        where = str(self.path)
        if line is not None:
            where += f":{line}"
        if column is not None:
            where += f": column {column!r}" if isinstance(column, str) else f":{column}"
        super().__init__(f"{where}: {message}")


def read_text(path: Path) -> str:
    """The whole file as UTF-8 text (a leading BOM dropped); a DataFileError at the line and
    column of the first byte that is not UTF-8, or when the file is missing or empty."""
    if not path.is_file():
        raise DataFileError(path, "file not found")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        import gzip

        raw = gzip.decompress(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise DataFileError(
            path, f"byte 0x{raw[exc.start]:02x} is not UTF-8 (save the file as UTF-8)", line, column
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise DataFileError(path, "the file is empty")
    return text


def table_format(path: Path, override: str | None = None) -> str:
    """csv, tsv, jsonl or parquet: `override`, else from the suffix."""
    if override:
        if override not in set(TABLE_FORMATS.values()):
            raise DataFileError(path, f"unknown format {override!r}; use one of csv, tsv, jsonl, parquet")
        return override
    suffix = path.suffixes[-2] if path.suffix == ".gz" and len(path.suffixes) > 1 else path.suffix
    try:
        return TABLE_FORMATS[suffix.lower()]
    except KeyError:
        raise DataFileError(
            path, f"cannot tell the format from the suffix {suffix!r}: use .csv, .tsv, .jsonl or .parquet"
        ) from None


@dataclass(frozen=True)
class Record:
    """One row of a table, with the line it starts on (the row number for Parquet: 1 is the
    first data row) so later checks can name it."""

    line: int
    values: dict[str, Any]


def read_table(path: Path, columns: Sequence[str], fmt: str | None = None) -> list[Record]:
    """Rows of a CSV/TSV (header line first), JSON Lines or Parquet file, keeping `columns`.
    A DataFileError when a column is missing (naming the columns the file has), a line is not
    valid JSON, or the file holds no rows."""
    kind = table_format(path, fmt)
    if kind == "parquet":
        records = list(_parquet_records(path, columns))
    else:
        text = read_text(path)
        records = list(
            _jsonl_records(path, text, columns) if kind == "jsonl" else _delimited(path, text, columns, kind)
        )
    if not records:
        raise DataFileError(path, "the file holds a header but no rows")
    return records


def _missing(path: Path, wanted: Sequence[str], have: Sequence[str], line: int | None) -> None:
    missing = [c for c in wanted if c not in have]
    if missing:
        raise DataFileError(
            path,
            f"no column {missing[0]!r} (the file has {', '.join(map(repr, have)) or 'no columns'}; "
            "choose others with the --*-column options)",
            line,
        )


def _delimited(path: Path, text: str, columns: Sequence[str], kind: str) -> Iterator[Record]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if kind == "tsv" else ",")
    try:
        header = next(reader)
    except StopIteration:
        raise DataFileError(path, "the file is empty") from None
    header = [h.strip() for h in header]
    _missing(path, columns, header, 1)
    index = {c: header.index(c) for c in columns}
    line = reader.line_num
    for row in reader:
        start = line + 1
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            raise DataFileError(
                path,
                f"{len(row)} fields where the header has {len(header)} (a quote or delimiter out of place?)",
                start,
            )
        yield Record(start, {c: row[i] for c, i in index.items()})


def _jsonl_records(path: Path, text: str, columns: Sequence[str]) -> Iterator[Record]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(path, f"not valid JSON: {exc.msg}", number, exc.colno) from None
        if not isinstance(value, dict):
            raise DataFileError(
                path, f"expected a JSON object per line, got {type(value).__name__}", number, 1
            )
        _missing(path, columns, list(value), number)
        yield Record(number, {c: value[c] for c in columns})


def _parquet_records(path: Path, columns: Sequence[str]) -> Iterator[Record]:
    if not path.is_file():
        raise DataFileError(path, "file not found")
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow comes with the training extra
        raise DataFileError(path, "reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid and OSError kinds
        raise DataFileError(path, f"not a readable Parquet file: {exc}") from None
    _missing(path, columns, table.column_names, None)
    data = table.select(list(columns)).to_pylist()
    for number, row in enumerate(data, start=1):
        yield Record(number, row)


def label_text(value: Any) -> str:
    """A label as the bundle records it: integers and strings alike become their string form
    (`1` and `"1"` are the same class); floats with a fractional part are not labels."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def sorted_labels(labels: Sequence[str]) -> list[str]:
    """A stable order for a label set: numerically when every label is an integer ("2" < "10"),
    else as strings. The same file always gives the same order, whatever its row order."""
    unique = set(labels)
    if all(_is_int(label) for label in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True
