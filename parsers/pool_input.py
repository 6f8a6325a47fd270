"""Reading a recall pool: JSONL(.gz) or Parquet rows with a text, streamed, one row at a time.

A row needs `text` (a string); its id is the first of `id`, `doc_id`, `page_id` it has (so the
PDF pipeline's documents/ and the web pipeline's pages/ are pools as they are), else a content
hash of the text. `url` is optional; its registered domain (`web_input.registered_domain`)
groups pages for the iterative rule. Each row yields exactly one item: a `PoolDoc`, a
`RecallFiltered` (empty text) or a `RecallDeadLetter` (no text, not an object, too large);
a file that cannot be read, or that breaks mid-way, yields the rows before the break and one
dead letter with the file as its source. Pure Python, no Beam.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zlib
from typing import Any, BinaryIO, Iterator, Mapping

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
    kind = pool_format(path)
    if kind == "parquet":
        yield from _read_parquet(stream, path, max_text_bytes)
        return
    if kind == "jsonl.gz":
        stream = gzip.GzipFile(fileobj=stream)
    lineno = 0
    try:
        for lineno, raw in enumerate(io.TextIOWrapper(stream, encoding="utf-8", errors="strict"), 1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, RecursionError) as exc:
                yield RecallDeadLetter("", path, STAGE_READ, "bad_record", f"{where}: not JSON: {exc}")
                continue
            yield pool_item(row, path, where, max_text_bytes)
    except (EOFError, OSError, zlib.error, UnicodeDecodeError) as exc:
        reason = "bad_encoding" if isinstance(exc, UnicodeDecodeError) else "corrupt_input"
        yield RecallDeadLetter("", path, STAGE_READ, reason,
                               f"{path}: unreadable after line {lineno}: {type(exc).__name__}: {exc}")


def _read_parquet(stream: BinaryIO, path: str, max_text_bytes: int) -> Iterator[PoolItem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row_number = 0
    try:
        handle = pq.ParquetFile(pa.PythonFile(stream, mode="r") if not hasattr(stream, "seek") else stream)
        names = set(handle.schema_arrow.names)
        if "text" not in names:
            yield RecallDeadLetter("", path, STAGE_READ, "bad_record", f"{path}: no 'text' column (columns: {sorted(names)})")
            return
        columns = [c for c in (*ID_FIELDS, "text", "url") if c in names]
        for batch in handle.iter_batches(batch_size=PARQUET_BATCH, columns=columns):
            for row in batch.to_pylist():
                row_number += 1
                yield pool_item(row, path, f"{path}:row {row_number}", max_text_bytes)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a broken file
        yield RecallDeadLetter("", path, STAGE_READ, "corrupt_input",
                               f"{path}: unreadable after row {row_number}: {type(exc).__name__}: {exc}")
