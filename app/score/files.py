"""Files of a bulk-scoring job: reading the input, the staged parts of a run (so an interrupted run
resumes without rescoring finished parts), and writing the output and errors files.

Rows are numbered from 1 in input order: the line of a JSON Lines file, the data row of a CSV
file (not counting the header), the row of a Parquet file. Part k (from 0) holds rows
k*part_size+1 .. (k+1)*part_size.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from app.score.pipeline import Scored, SourceFormat

SUFFIXES: dict[str, SourceFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
MANIFEST = "manifest.json"


def file_format(path: Path) -> SourceFormat:
    try:
        return SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise SystemExit(
            f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(sorted(SUFFIXES))}"
        ) from None


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SystemExit("Parquet needs pyarrow: pip install 'lstm-serve[bulk]'") from None
    return pq


# ---------------------------------------------------------------- input


@dataclass(frozen=True)
class InputIndex:
    """Row count and where each part starts, from one pass over the input, so that any part can
    be read on its own (a Ray read task, or a resumed run skipping finished parts)."""

    total: int
    offsets: list[int]  # byte offset of each part's first row (JSON Lines, CSV); empty for Parquet

    def parts(self, part_size: int) -> int:
        return -(-self.total // part_size)


def index_input(path: Path, source: SourceFormat, part_size: int) -> InputIndex:
    if source == "parquet":
        return InputIndex(int(_pyarrow_parquet().ParquetFile(path).metadata.num_rows), [])
    offsets: list[int] = []
    total = 0
    if source == "jsonl":
        position = 0
        with path.open("rb") as f:
            for line in f:
                if total % part_size == 0:
                    offsets.append(position)
                total += 1
                position += len(line)
        return InputIndex(total, offsets)
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        with path.open("rb") as f:
            for line in f:
                consumed += len(line)
                yield line.decode("utf-8")

    # csv.reader pulls one physical line at a time and returns a record as soon as it ends, so
    # `consumed` after each record is where the next one starts (quoted newlines included).
    reader = csv.reader(lines())
    next(reader, None)  # header
    position = consumed
    for record in reader:
        if record:  # blank lines are not rows (csv.DictReader skips them too)
            if total % part_size == 0:
                offsets.append(position)
            total += 1
        position = consumed
    return InputIndex(total, offsets)


def read_part(
    path: Path, source: SourceFormat, index: InputIndex, part: int, part_size: int
) -> list[tuple[int, Any]]:
    """(row number, raw record) for the rows of `part`: a JSON Lines record is its line's text
    (parsed per row, so one bad line is one bad row), a CSV record a dict of strings, a Parquet
    record a dict of Python values."""
    first = part * part_size
    count = part_rows(part, part_size, index.total)
    numbers = range(first + 1, first + count + 1)
    if source == "parquet":
        pf = _pyarrow_parquet().ParquetFile(path)
        groups, start = [], 0
        for g in range(pf.metadata.num_row_groups):
            size = pf.metadata.row_group(g).num_rows
            if start < first + count and start + size > first:
                groups.append((g, start))
            start += size
        table = pf.read_row_groups([g for g, _ in groups])
        rows = table.slice(first - groups[0][1], count).to_pylist()
        return list(zip(numbers, rows, strict=True))
    with path.open("rb") as f:
        if source == "csv":
            header = next(csv.reader(_decoded(f)), [])
        f.seek(index.offsets[part])
        if source == "jsonl":
            lines = [f.readline().decode("utf-8", "surrogateescape").rstrip("\r\n") for _ in numbers]
            return list(zip(numbers, lines, strict=True))
        records = islice(csv.DictReader(_decoded(f), fieldnames=header), count)
        return list(zip(numbers, records, strict=True))


def _decoded(f: Any) -> Iterator[str]:
    for line in f:
        yield line.decode("utf-8")


def part_rows(part: int, part_size: int, total: int) -> int:
    """How many rows part `part` holds in an input of `total` rows."""
    return max(0, min(part_size, total - part * part_size))


# ---------------------------------------------------------------- staged parts of a run


@dataclass
class JobManifest:
    """What the staged parts were made from; a resumed run must match it exactly."""

    job: dict[str, Any]
    parts: dict[str, dict[str, int]] = field(default_factory=dict)  # part -> {"ok": n, "errors": n}


class Staging:
    """`<output>.parts/`: finished parts and the manifest listing them. A part counts as done only
    once it is listed, and the manifest is replaced atomically after the part's files are
    complete, so a run killed at any point resumes from a consistent state."""

    def __init__(self, output: Path) -> None:
        self.dir = output.with_name(output.name + ".parts")

    def open(self, job: dict[str, Any], restart: bool) -> JobManifest:
        path = self.dir / MANIFEST
        if path.is_file() and not restart:
            raw = json.loads(path.read_text())
            if raw["job"] != job:
                changed = sorted(k for k in job if raw["job"].get(k) != job[k])
                raise SystemExit(
                    f"{self.dir} holds parts of a different job (changed: {', '.join(changed)}); "
                    "pass --restart to discard them"
                )
            return JobManifest(raw["job"], raw["parts"])
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        manifest = JobManifest(job)
        self.save(manifest)
        return manifest

    def save(self, manifest: JobManifest) -> None:
        _atomic_write(self.dir / MANIFEST, json.dumps(asdict(manifest), indent=1))

    def part_paths(self, part: int) -> tuple[Path, Path]:
        return self.dir / f"part-{part:05d}.jsonl", self.dir / f"part-{part:05d}.errors.jsonl"

    def write_part(self, manifest: JobManifest, part: int, scored: list[Scored]) -> None:
        out, err = self.part_paths(part)
        _atomic_write(out, "".join(s.record + "\n" for s in scored if s.ok))
        _atomic_write(err, "".join(s.record + "\n" for s in scored if not s.ok))
        ok = sum(s.ok for s in scored)
        manifest.parts[str(part)] = {"ok": ok, "errors": len(scored) - ok}
        self.save(manifest)

    def read_part(self, part: int) -> tuple[list[str], list[str]]:
        out, err = self.part_paths(part)
        return out.read_text().splitlines(), err.read_text().splitlines()

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
    os.replace(tmp, path)


# ---------------------------------------------------------------- output


def errors_path(output: Path) -> Path:
    return output.with_name(output.stem + ".errors.jsonl")


def write_outputs(
    output: Path, errors: Path, parts: Iterable[tuple[list[str], list[str]]]
) -> tuple[int, int]:
    """Assemble the output (in its own format) and the errors file (JSON Lines: the error rows
    carry the API's nested `detail`) from staged parts, in part order. Returns (ok, errors)."""
    sink = file_format(output)
    n_ok = n_err = 0
    tmp_out = output.with_name(output.name + ".tmp")
    tmp_err = errors.with_name(errors.name + ".tmp")
    table: list[dict[str, Any]] = []
    with tmp_out.open("w", encoding="utf-8", newline="") as out, tmp_err.open("w", encoding="utf-8") as err:
        writer: csv.DictWriter[str] | None = None
        for ok_records, err_records in parts:
            for line in err_records:
                err.write(line + "\n")
            n_err += len(err_records)
            n_ok += len(ok_records)
            if sink == "jsonl":
                out.writelines(line + "\n" for line in ok_records)
            elif sink == "csv":
                for line in ok_records:
                    record = json.loads(line)
                    if writer is None:
                        writer = csv.DictWriter(out, fieldnames=list(record))
                        writer.writeheader()
                    writer.writerow({k: _cell(v) for k, v in record.items()})
            else:
                table.extend(json.loads(line) for line in ok_records)
    if sink == "parquet":
        import pyarrow as pa

        _pyarrow_parquet().write_table(pa.Table.from_pylist(table), tmp_out)
    os.replace(tmp_out, output)
    os.replace(tmp_err, errors)
    return n_ok, n_err


def _cell(value: Any) -> Any:
    """CSV holds scalars; nested answers (probabilities, entities, intervals) go in as JSON."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def read_output(path: Path) -> list[dict[str, Any]]:
    """The rows of an output file as dictionaries (CSV cells holding JSON decoded): for tests and
    for reading results back."""
    sink = file_format(path)
    if sink == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if sink == "parquet":
        rows: list[dict[str, Any]] = _pyarrow_parquet().read_table(path).to_pylist()
        return rows
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: _uncell(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _uncell(cell: str) -> Any:
    if cell[:1] in ("{", "["):
        return json.loads(cell)
    return cell
