"""Reading a recall pool: JSONL(.gz) or Parquet rows with a text, streamed, one row at a time.

A row needs `text` (a string); its id is the first of `id`, `doc_id`, `page_id` it has (so the
PDF pipeline's documents/ and the web pipeline's pages/ are pools as they are), else a content
hash of the text. `url` is optional; its registered domain (`web_input.registered_domain`)
groups pages for the iterative rule. Each row yields exactly one item: a `PoolDoc`, a
`RecallFiltered` (empty text) or a `RecallDeadLetter` (no text, not an object, too large);
a file that cannot be read, or that breaks mid-way, yields the rows before the break and one
dead letter with the file as its source. Pure Python, no Beam.

`iter_pool_rows` is the file reader under `read_pool`, shared with the exam and images
pipelines: it decodes rows and reports broken lines and files; each caller makes its own
records of them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator, Mapping, Sequence

from scicurate.parsers.web_input import registered_domain
from scicurate.recall_records import ID_FIELDS, PoolDoc, RecallDeadLetter, RecallFiltered

STAGE_READ = "read"
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".jsonl.gz": "jsonl.gz", ".json.gz": "jsonl.gz", ".parquet": "parquet"}
PARQUET_BATCH = 1024

PoolItem = PoolDoc | RecallFiltered | RecallDeadLetter


def pool_format(path: str) -> str:
    """`jsonl`, `jsonl.gz` or `parquet` by the file name; ValueError for anything else."""
    lower = path.lower()
    for suffix, kind in sorted(FORMATS.items(), key=lambda kv: -len(kv[0])):
        if lower.endswith(suffix):
            return kind
    raise ValueError(f"{path}: not a pool file (expected {', '.join(sorted(FORMATS))})")


def content_id(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def pool_item(row: Any, source: str, where: str, max_text_bytes: int) -> PoolItem:
    """One parsed row -> its single outcome. `where` names it in messages (file:line)."""
    if not isinstance(row, Mapping):
        return RecallDeadLetter("", source, STAGE_READ, "bad_record", f"{where}: expected an object, got {type(row).__name__}")
    text = row.get("text")
    raw_id = next((row[k] for k in ID_FIELDS if isinstance(row.get(k), (str, int)) and str(row[k]).strip()), None)
    url = row.get("url") if isinstance(row.get("url"), str) else ""
    if not isinstance(text, str):
        doc_id = str(raw_id) if raw_id is not None else ""
        return RecallDeadLetter(doc_id, source, STAGE_READ, "bad_record",
                                f"{where}: 'text' must be a string; got {type(text).__name__}")
    doc_id = str(raw_id) if raw_id is not None else content_id(text)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_text_bytes:
        return RecallDeadLetter(doc_id, source, STAGE_READ, "too_large",
                                f"{where}: text of {size} bytes is over the {max_text_bytes}-byte limit")
    domain = registered_domain(url) if url else ""
    if not text.strip():
        return RecallFiltered(doc_id, url, domain, source, STAGE_READ, "empty_text")
    return PoolDoc(doc_id, text, url, domain, source)


def read_pool(stream: BinaryIO, path: str, *, max_text_bytes: int) -> Iterator[PoolItem]:
    """Every row of one pool file (`stream` is its raw bytes; gzip is undone here)."""
    for got in iter_pool_rows(stream, path, columns=(*ID_FIELDS, "text", "url"), check_columns=_needs_text):
        if isinstance(got, PoolRowError):
            yield RecallDeadLetter("", path, STAGE_READ, got.reason, got.message)
        else:
            yield pool_item(got.row, path, got.where, max_text_bytes)


def _needs_text(path: str, names: frozenset[str]) -> PoolRowError | None:
    if "text" in names:
        return None
    return PoolRowError("bad_record", f"{path}: no 'text' column (columns: {sorted(names)})")


# ---- rows of a pool file, for any reader -------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PoolRow:
    """One decoded row: `where` names it in messages (`file:line` or `file:row N`); `size` is
    its bytes (the JSON line as read, newline included; for Parquet, `value_size` of the row)."""

    where: str
    row: Any
    size: int


@dataclass(frozen=True, slots=True)
class PoolRowError:
    """A line that is no JSON (`bad_record`), a file that breaks mid-way (`bad_encoding`: not
    UTF-8; `corrupt_input`: anything else), or a Parquet schema `check_columns` refused.
    `message` names the file and the line or row."""

    reason: str
    message: str


def value_size(value: Any) -> int:
    """Bytes of a decoded row's strings (UTF-8) and bytes, 8 for any other value."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, dict):
        return sum(value_size(k) + value_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(value_size(v) for v in value)
    return 8


def iter_pool_rows(stream: BinaryIO, path: str, *, columns: Sequence[str] | None = None,
                   check_columns: Callable[[str, frozenset[str]], PoolRowError | None] | None = None,
                   batch_size: int = PARQUET_BATCH) -> Iterator[PoolRow | PoolRowError]:
    """Every row of one JSONL, JSONL.gz or Parquet file (`stream` is its raw bytes; gzip is
    undone here), streamed: a PoolRow per row, a PoolRowError per line that is no JSON, and
    one PoolRowError after the last good row when the file breaks. Blank lines are skipped.
    Parquet only: `columns` are the columns read where the file has them (None: all of them),
    `check_columns(path, names)` may refuse the file's columns before any row is read, and
    `batch_size` rows are decoded at a time. What a row must hold is the caller's business."""
    kind = pool_format(path)
    if kind == "parquet":
        yield from _parquet_rows(stream, path, columns, check_columns, batch_size)
        return
    if kind == "jsonl.gz":
        stream = gzip.GzipFile(fileobj=stream)
    yield from _jsonl_rows(stream, path)


def _jsonl_rows(stream: BinaryIO, path: str) -> Iterator[PoolRow | PoolRowError]:
    lineno = 0
    try:
        for lineno, raw in enumerate(io.TextIOWrapper(stream, encoding="utf-8", errors="strict"), 1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, RecursionError) as exc:
                yield PoolRowError("bad_record", f"{where}: not JSON: {exc}")
                continue
            yield PoolRow(where, row, len(raw.encode("utf-8", "surrogatepass")))
    except (EOFError, OSError, zlib.error, UnicodeDecodeError) as exc:
        reason = "bad_encoding" if isinstance(exc, UnicodeDecodeError) else "corrupt_input"
        yield PoolRowError(reason, f"{path}: unreadable after line {lineno}: {type(exc).__name__}: {exc}")


def _parquet_rows(stream: BinaryIO, path: str, columns: Sequence[str] | None,
                  check_columns: Callable[[str, frozenset[str]], PoolRowError | None] | None,
                  batch_size: int) -> Iterator[PoolRow | PoolRowError]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row_number = 0
    try:
        handle = pq.ParquetFile(pa.PythonFile(stream, mode="r") if not hasattr(stream, "seek") else stream)
        names = frozenset(handle.schema_arrow.names)
        refused = check_columns(path, names) if check_columns is not None else None
        if refused is not None:
            yield refused
            return
        wanted = [c for c in columns if c in names] if columns is not None else None
        for batch in handle.iter_batches(batch_size=batch_size, columns=wanted):
            for row in batch.to_pylist():
                row_number += 1
                yield PoolRow(f"{path}:row {row_number}", row, value_size(row))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a broken file
        yield PoolRowError("corrupt_input", f"{path}: unreadable after row {row_number}: {type(exc).__name__}: {exc}")
