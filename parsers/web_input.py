"""Read crawled web pages from WARC/ARC, JSON lines and Parquet into `WebPage` records.

Pure readers, no Beam: each reader takes an open binary stream (or a Parquet path/file) and
yields `WebPage` or `InputFailure` records in file order, streaming. The Beam shell wraps
`read_input` in a DoFn and routes the failures to the stage's `failed` output.

What goes in, what comes out:

* WARC / ARC (`read_warc`, warcio's `ArchiveIterator`, never loads the whole file). `response`
  and `resource` records become pages. `request`, `metadata`, `warcinfo`, `revisit`,
  `conversion` (and any other) records are skipped and reported through
  `counts("warc_<type>_skipped")`. A page whose media type is not HTML (see `is_html_type`)
  is still yielded, with `body=b""`: the pipeline filters it as `not_html` and the PDF or
  image bytes are never carried. HTTP status is kept (the pipeline filters non-2xx); a record
  without an HTTP status line (`resource`, `dns:` responses) gets 200.
* JSON lines (`read_jsonl`, plain or gzip, detected by magic bytes): one object per line with
  a string `url` and a string `html` (only `html`: `content`/`text` are NOT accepted, because
  in common dumps those fields hold already-extracted text, not markup). Optional `status`
  (int or numeric string), `content_type` (default "text/html"), `date` or `fetched`.
  Invalid UTF-8 bytes in a line are replaced by U+FFFD (the page survives, its HTML keeps
  the rest), and counted as `jsonl_invalid_utf8_lines`. Blank lines are ignored.
* Parquet (`read_parquet`, pyarrow, one row group at a time): columns `url` and `html`
  (string or binary), optional `status`, `content_type`, `date`/`fetched`. A row group is
  the unit pyarrow decodes, so the largest row group bounds memory, not `max_body_bytes`.

Failures (`InputFailure.reason`, one of `INPUT_REASONS`):

* `unreadable`: opening or reading the file raised (permissions, I/O error).
* `corrupt_input`: the container breaks mid-file (truncated or corrupt gzip, a WARC record
  whose Content-Length lies so the next header is garbage, a corrupt Parquet file). Every
  record before the break is still yielded, then ONE failure covers the rest of the file.
* `bad_record`: a JSON line that is not a JSON object, a row without a string `url` or without
  an `html` string, a non-numeric `status`; a Parquet file without `url`/`html` columns
  (one failure for the file).
* `too_large`: a payload bigger than `max_body_bytes` (measured as sent and, for
  content-encoded WARC payloads, after decoding, so a gzip bomb stops at the cap), or a JSON
  line longer than `max_body_bytes + 1 MiB`. The reader never holds more than the cap: an
  over-long line is skipped to its newline in bounded chunks.

A 0-byte file is an empty input: nothing is yielded and `counts("<format>_empty_file")` fires.

Ids: `page_id = sha256(url + "\\n" + sha256(body).hexdigest())[:32]` over the body the record
holds, so a non-HTML page's id (body `b""`) is a function of its URL alone. `source` is
`"<path>#<n>"`: the record's byte offset in the (compressed) WARC, the 1-based line number in
JSON lines, the 0-based row index in Parquet.

Domains (`registered_domain`): the host is lowercased, userinfo, port and a trailing dot are
removed, and Unicode hosts are converted to IDNA punycode ASCII (`xn--...`), so one site has
one spelling whatever the crawler wrote; the registrable domain then comes from the public
suffix list bundled inside the `publicsuffixlist` package (ICANN and private sections, so
`alice.github.io` is its own site; no network). IP hosts map to the IP; a host that is
itself a public suffix maps to itself. Wayback URLs (`web.archive.org/web/<ts>[xx_]/<url>`)
are unwrapped: an archived copy belongs to the site it copies, not to archive.org.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import json
import os
import re
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator
from urllib.parse import urlsplit

REASON_UNREADABLE = "unreadable"
REASON_CORRUPT_INPUT = "corrupt_input"
REASON_BAD_RECORD = "bad_record"
REASON_TOO_LARGE = "too_large"
INPUT_REASONS = (REASON_UNREADABLE, REASON_CORRUPT_INPUT, REASON_BAD_RECORD, REASON_TOO_LARGE)

FORMATS = ("warc", "jsonl", "parquet")
HTML_TYPES = ("text/html", "application/xhtml+xml")
DEFAULT_MAX_BODY_BYTES = 10 << 20
# A JSON line may be this much longer than its body cap (escaping, the URL and other fields).
JSONL_LINE_SLACK = 1 << 20
_CHUNK = 1 << 16

Counts = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class WebPage:
    """One fetched page as read from the input; HTML bytes undecoded (decoding is extraction's job)."""

    page_id: str       # sha256(url + "\n" + sha256(body).hexdigest()) hex, first 32 chars
    url: str
    domain: str        # registered domain (see registered_domain); "" when the URL has no host
    body: bytes        # raw HTTP payload; b"" for non-HTML types
    source: str        # "<path>#<record offset | line number | row index>"
    content_type: str  # the HTTP Content-Type header as sent, or "text/html" for JSONL/Parquet rows
    http_status: int   # 200 for JSONL/Parquet rows unless a `status` field says otherwise
    fetched: str       # WARC-Date / a `date` or `fetched` field; "" when unknown
    body_bytes: int    # length of the payload as sent (also when body was not kept)

    def __post_init__(self) -> None:
        if not self.url:
            raise ValueError("a WebPage needs a url")
        if len(self.page_id) != 32:
            raise ValueError(f"page_id must be 32 hex chars; got {self.page_id!r}")
        if self.body_bytes < 0:
            raise ValueError("body_bytes must be non-negative")


@dataclass(frozen=True, slots=True)
class InputFailure:
    """A record (or the rest of a file) that could not be read; `reason` is in INPUT_REASONS."""

    source: str
    url: str
    reason: str
    message: str

    def __post_init__(self) -> None:
        if self.reason not in INPUT_REASONS:
            raise ValueError(f"unknown input failure reason {self.reason!r}")


# ---- ids and domains --------------------------------------------------------------------------

def page_id(url: str, body: bytes) -> str:
    """Content-hash id: stable across reruns, equal for the same URL serving the same bytes."""
    inner = hashlib.sha256(body).hexdigest()
    return hashlib.sha256(f"{url}\n{inner}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


_WAYBACK = re.compile(r"^https?://web\.archive\.org/web/\d{1,14}(?:[a-z]{2}_)?/(.+)$", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_COLLAPSED_SCHEME = re.compile(r"^(https?):/(?!/)", re.IGNORECASE)


def unwrap_wayback(url: str) -> str:
    """The original URL of a Wayback Machine capture (`.../web/<ts>[id_]/<url>`), else `url`."""
    for _ in range(3):  # an archived capture of a capture is unwrapped too, within reason
        m = _WAYBACK.match(url.strip())
        if not m:
            break
        url = _COLLAPSED_SCHEME.sub(r"\1://", m.group(1))
    return url


def url_host(url: str) -> str:
    """The URL's host: lowercased, no userinfo/port/trailing dot, IDNA punycode ASCII; IPv6
    without brackets in compressed form. A scheme-less `example.org/x` is read as a host.
    "" when there is none (`mailto:`, relative paths, unparseable netlocs)."""
    url = url.strip()
    if not url:
        return ""
    if not _SCHEME.match(url) and not url.startswith("//") and not url.startswith("/"):
        url = "//" + url
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # e.g. an unbalanced "[" in the netloc
        return ""
    host = host.strip().rstrip(".").lower()
    if not host:
        return ""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # not encodable by IDNA 2003: keep the lowercased Unicode host
    return host


_PSL: Any = None


def _psl() -> Any:
    global _PSL
    if _PSL is None:
        from publicsuffixlist import PublicSuffixList

        _PSL = PublicSuffixList()  # its bundled copy of the list: no network
    return _PSL


def registered_domain(url: str) -> str:
    """The registrable domain of `url` (Wayback captures unwrapped): `a.b.example.co.uk` ->
    `example.co.uk`; an IP -> the IP; a public suffix itself -> the host; no host -> ""."""
    host = url_host(unwrap_wayback(url))
    if not host:
        return ""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    return _psl().privatesuffix(host) or host


def is_html_type(content_type: str) -> bool:
    """True for text/html, application/xhtml+xml, or no content type at all (a crawler that
    did not record one most often fetched HTML; extraction then decides)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "" or media in HTML_TYPES


def input_format(path: str) -> str:
    """`warc`, `jsonl` or `parquet` from the file name; ValueError for anything else."""
    name = os.path.basename(path).lower()
    if name.endswith((".warc", ".warc.gz", ".arc", ".arc.gz")):
        return "warc"
    if name.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson", ".ndjson.gz")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    raise ValueError(f"{path}: unknown web input format (expected .warc[.gz], .arc[.gz], "
                     ".jsonl[.gz], .json.gz, .ndjson or .parquet)")


def _count(counts: Counts | None, name: str) -> None:
    if counts is not None:
        counts(name)


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


# ---- WARC -------------------------------------------------------------------------------------

def _read_capped(stream: Any, cap: int) -> bytes | None:
    """Up to `cap` bytes of `stream`; None when it holds more (at most cap + 1 bytes are read)."""
    buf = bytearray()
    while len(buf) <= cap:
        chunk = stream.read(min(_CHUNK, cap + 1 - len(buf)))
        if not chunk:
            return bytes(buf)
        buf.extend(chunk)
    return None


_ARC_MAGIC = b"filedesc://"


def read_warc(stream: BinaryIO, path: str, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
              counts: Counts | None = None) -> Iterator[WebPage | InputFailure]:
    """Stream the pages of a WARC/ARC file (plain or gzip). See the module docstring."""
    from warcio.archiveiterator import ArchiveIterator

    try:
        head = stream.read(len(_ARC_MAGIC))
    except OSError as exc:
        yield InputFailure(path, "", REASON_UNREADABLE, f"{type(exc).__name__}: {exc}")
        return
    if not head:
        _count(counts, "warc_empty_file")
        return
    if not head.startswith((b"\x1f\x8b", b"WARC/", _ARC_MAGIC)):
        # warcio would read arbitrary text as an ARC header line; refuse it here.
        yield InputFailure(path, "", REASON_CORRUPT_INPUT, f"not a WARC/ARC file (starts with {head!r})")
        return
    gzipped = head.startswith(b"\x1f\x8b")
    stream = _Prefixed(head, stream)
    records = ArchiveIterator(stream, arc2warc=True)
    _tolerate_missing_uri(records.loader)
    offset: Any = 0
    url = ""
    while True:
        try:
            record = next(records)
            offset = records.offset  # updated once the previous record is consumed, inside next()
        except StopIteration:
            return
        except OSError as exc:
            offset = getattr(records, "offset", offset)
            yield InputFailure(f"{path}#{offset}", "", _io_reason(exc), _describe("the rest of the file", exc))
            return
        except Exception as exc:  # noqa: BLE001 - ArchiveLoadFailed, zlib.error, header parse errors
            offset = getattr(records, "offset", offset)
            yield InputFailure(f"{path}#{offset}", "", REASON_CORRUPT_INPUT, _describe("the rest of the file", exc))
            return
        source = f"{path}#{offset}"
        if gzipped and getattr(records.reader, "decompressor", True) is None:
            # warcio reads a gzip member that fails to inflate as plain bytes, and the rest of
            # the file with it: compressed garbage became a record with a garbage URL and the
            # records after it vanished without a trace.
            yield InputFailure(source, "", REASON_CORRUPT_INPUT,
                               "a gzip member does not decompress (corrupt data or checksum): this record and "
                               "the rest of the file are lost")
            return
        rec_type = (record.rec_type or "unknown").lower()
        if rec_type not in ("response", "resource"):
            _count(counts, f"warc_{rec_type}_skipped")
            continue
        url = (record.rec_headers.get_header("WARC-Target-URI") or "").strip()
        if url.startswith("<") and url.endswith(">"):  # WARC/1.0 writers that bracket the URI
            url = url[1:-1]
        fetched = record.rec_headers.get_header("WARC-Date") or ""
        if record.http_headers is not None:
            content_type = (record.http_headers.get_header("Content-Type") or "").strip()
            try:
                status = int(record.http_headers.get_statuscode() or 0)
            except ValueError:
                status = 0
        else:
            content_type = (record.rec_headers.get_header("Content-Type") or "").strip()
            status = 200
        if not url:
            yield InputFailure(source, "", REASON_BAD_RECORD, f"{rec_type} record without WARC-Target-URI")
            continue
        sent = getattr(record.raw_stream, "limit", None)
        if sent is None:
            sent = record.length or 0
        sent = int(sent)
        body: bytes | None = b""
        try:
            if is_html_type(content_type) and sent <= max_body_bytes:
                body = _read_capped(record.content_stream(), max_body_bytes)
            truncated = _ends_early(record)
        except Exception as exc:  # noqa: BLE001 - truncated gzip, bad chunking: the stream is lost
            yield InputFailure(source, url, REASON_CORRUPT_INPUT, _describe("this record and the rest of the file", exc))
            return
        if truncated:
            yield InputFailure(source, url, REASON_CORRUPT_INPUT,
                               f"record ends before its Content-Length ({sent} payload bytes announced): "
                               "file truncated; this record and the rest of the file are lost")
            return
        if not is_html_type(content_type):
            yield WebPage(page_id(url, b""), url, registered_domain(url), b"", source, content_type, status, fetched, sent)
        elif sent > max_body_bytes:
            yield InputFailure(source, url, REASON_TOO_LARGE, f"payload of {sent} bytes > max_body_bytes {max_body_bytes}")
        elif body is None:
            yield InputFailure(source, url, REASON_TOO_LARGE,
                               f"decoded payload > max_body_bytes {max_body_bytes} (sent {sent} bytes)")
        else:
            yield WebPage(page_id(url, body), url, registered_domain(url), body, source, content_type, status,
                          fetched, sent)


def _tolerate_missing_uri(loader: Any) -> None:
    """warcio (1.8) calls `uri.startswith` on a response/resource record's WARC-Target-URI
    while loading its HTTP headers, so a record without one raised AttributeError and the
    rest of the file was lost. Read such a record with no HTTP headers instead: `read_warc`
    then dead-letters it alone as `bad_record`."""
    load = loader.load_http_headers
    loader.load_http_headers = lambda rec_type, uri, stream, length: load(rec_type, uri or "", stream, length)


def _ends_early(record: Any) -> bool:
    """Drain the record's raw block (bounded chunks, nothing kept); True when the file ended
    before the block's announced length: a truncated file, or a Content-Length that lies."""
    raw = record.raw_stream
    while raw.read(_CHUNK):
        pass
    return getattr(raw, "limit", 0) > 0


def _describe(what: str, exc: BaseException) -> str:
    return f"{what} could not be read: {type(exc).__name__}: {exc}"[:2000]


def _io_reason(exc: OSError) -> str:
    # gzip.BadGzipFile is an OSError, but it is the container that is broken, not the disk.
    return REASON_CORRUPT_INPUT if isinstance(exc, (gzip.BadGzipFile, EOFError)) else REASON_UNREADABLE


class _Prefixed(io.RawIOBase):
    """`head` followed by the rest of `stream`: lets a reader sniff bytes of an unseekable stream."""

    def __init__(self, head: bytes, stream: Any) -> None:
        self._head = head
        self._stream = stream
        self._pos = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._stream.read(), b""
            else:
                data, self._head = self._head[:n], self._head[n:]
                if len(data) < n:
                    data += self._stream.read(n - len(data))
        else:
            data = self._stream.read() if n is None or n < 0 else self._stream.read(n)
        self._pos += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


# ---- JSON lines -------------------------------------------------------------------------------

def _lines(stream: Any, cap: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line without newline | None when longer than cap), reading 64 KiB chunks.
    An over-long line is skipped to its newline without being held."""
    buf = bytearray()
    number = 1
    skipping = False
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                if not skipping:
                    buf.extend(chunk[start:])
                    if len(buf) > cap:
                        skipping = True
                        buf.clear()
                break
            if skipping:
                yield number, None
                skipping = False
            else:
                buf.extend(chunk[start:nl])
                yield number, (bytes(buf) if len(buf) <= cap else None)
                buf.clear()
            number += 1
            start = nl + 1
    if skipping:
        yield number, None
    elif buf:
        yield number, bytes(buf)


def read_jsonl(stream: BinaryIO, path: str, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               counts: Counts | None = None) -> Iterator[WebPage | InputFailure]:
    """Stream pages from JSON lines (gzip detected by its magic bytes). See the module docstring."""
    try:
        head = stream.read(2)
    except OSError as exc:
        yield InputFailure(path, "", REASON_UNREADABLE, f"{type(exc).__name__}: {exc}")
        return
    if not head:
        _count(counts, "jsonl_empty_file")
        return
    raw: Any = _Prefixed(head, stream)
    if head == b"\x1f\x8b":
        raw = gzip.GzipFile(fileobj=raw, mode="rb")
    cap = max_body_bytes + JSONL_LINE_SLACK
    number = 0
    try:
        for number, line in _lines(raw, cap):
            source = f"{path}#{number}"
            if line is None:
                yield InputFailure(source, "", REASON_TOO_LARGE, f"JSON line longer than {cap} bytes")
                continue
            if not line.strip():
                continue
            yield _jsonl_record(line, source, number, max_body_bytes, counts)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        yield InputFailure(f"{path}#{number + 1}", "", REASON_CORRUPT_INPUT, _describe("the rest of the file", exc))
    except OSError as exc:
        yield InputFailure(f"{path}#{number + 1}", "", REASON_UNREADABLE, _describe("the rest of the file", exc))


def _jsonl_record(line: bytes, source: str, number: int, max_body_bytes: int,
                  counts: Counts | None) -> WebPage | InputFailure:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        text = line.decode("utf-8", "replace")
        _count(counts, "jsonl_invalid_utf8_lines")
    if number == 1:
        text = text.lstrip("\ufeff")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return InputFailure(source, "", REASON_BAD_RECORD, f"not JSON: {exc}"[:500])
    return row_to_page(obj, source, max_body_bytes)


def _valid_text(text: str) -> str:
    """`text` with lone surrogates (a JSON `"\\ud800"` escape) replaced by "?": they cannot be
    encoded as UTF-8, so a URL holding one crashed the extraction protocol and Parquet output."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def row_to_page(obj: Any, source: str, max_body_bytes: int) -> WebPage | InputFailure:
    """One JSONL object / Parquet row (a dict) as a page, or why it is not one."""
    if not isinstance(obj, dict):
        return InputFailure(source, "", REASON_BAD_RECORD, f"a JSON {type(obj).__name__}, not an object")
    url = obj.get("url")
    if not isinstance(url, str) or not url.strip():
        return InputFailure(source, "", REASON_BAD_RECORD, "no string `url` field")
    url = _valid_text(url.strip())
    html = obj.get("html")
    if isinstance(html, str):
        if len(html) > max_body_bytes:  # a char is at least one byte: over the cap before encoding
            return InputFailure(source, url, REASON_TOO_LARGE, f"html of {len(html)} chars > max_body_bytes {max_body_bytes}")
        body = html.encode("utf-8", "replace")  # lone surrogates from JSON escapes become "?"
    elif isinstance(html, (bytes, bytearray)):
        body = bytes(html)
    else:
        return InputFailure(source, url, REASON_BAD_RECORD, "no `html` string field")
    if len(body) > max_body_bytes:
        return InputFailure(source, url, REASON_TOO_LARGE, f"html of {len(body)} bytes > max_body_bytes {max_body_bytes}")
    status = obj.get("status", 200)
    if status is None:
        status = 200
    try:
        if isinstance(status, bool) or isinstance(status, float) and not status.is_integer():
            raise ValueError(status)
        status = int(status)
    except (TypeError, ValueError):
        return InputFailure(source, url, REASON_BAD_RECORD, f"`status` is not an integer: {status!r}"[:200])
    content_type = obj.get("content_type")
    content_type = _valid_text(content_type.strip()) if isinstance(content_type, str) and content_type.strip() \
        else "text/html"
    fetched = obj.get("date") or obj.get("fetched") or ""
    fetched = _valid_text(fetched if isinstance(fetched, str) else str(fetched))
    sent = len(body)
    if not is_html_type(content_type):
        body = b""
    return WebPage(page_id(url, body), url, registered_domain(url), body, source, content_type, status,
                   fetched, sent)


# ---- Parquet ----------------------------------------------------------------------------------

def read_parquet(path_or_file: Any, path: str, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 counts: Counts | None = None) -> Iterator[WebPage | InputFailure]:
    """Stream pages from a Parquet file, one row group at a time. See the module docstring."""
    import pyarrow.parquet as pq

    try:
        if isinstance(path_or_file, (str, os.PathLike)):
            empty = os.path.getsize(path_or_file) == 0
        else:
            here = path_or_file.tell()
            empty = path_or_file.seek(0, os.SEEK_END) == 0
            path_or_file.seek(here)
    except OSError as exc:
        yield InputFailure(path, "", REASON_UNREADABLE, f"{type(exc).__name__}: {exc}")
        return
    if empty:
        _count(counts, "parquet_empty_file")
        return
    try:
        pf = pq.ParquetFile(path_or_file)
    except OSError as exc:
        reason = REASON_UNREADABLE if type(exc) in (OSError, FileNotFoundError, PermissionError) else REASON_CORRUPT_INPUT
        yield InputFailure(path, "", reason, _describe("the file", exc))
        return
    except Exception as exc:  # noqa: BLE001 - ArrowInvalid: not a Parquet file
        yield InputFailure(path, "", REASON_CORRUPT_INPUT, _describe("the file", exc))
        return
    names = set(pf.schema_arrow.names)
    missing = [c for c in ("url", "html") if c not in names]
    if missing:
        yield InputFailure(path, "", REASON_BAD_RECORD, f"no {' or '.join(missing)} column (has: {sorted(names)})")
        return
    columns = [c for c in ("url", "html", "status", "content_type", "date", "fetched") if c in names]
    row = 0
    for group in range(pf.num_row_groups):
        try:
            table = pf.read_row_group(group, columns=columns)
        except Exception as exc:  # noqa: BLE001 - a corrupt page/column chunk
            yield InputFailure(f"{path}#{row}", "", REASON_CORRUPT_INPUT, _describe("the rest of the file", exc))
            return
        for obj in table.to_pylist():
            yield row_to_page({k: v for k, v in obj.items() if v is not None}, f"{path}#{row}", max_body_bytes)
            row += 1


# ---- dispatch ---------------------------------------------------------------------------------

def read_input(stream_or_path: Any, path: str, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               counts: Counts | None = None) -> Iterator[WebPage | InputFailure]:
    """Read any supported input; the format comes from `path` (ValueError when unknown).
    Given a path, the file is opened here and an open error is an `unreadable` failure."""
    fmt = input_format(path)
    if not isinstance(stream_or_path, (str, os.PathLike)):
        yield from _READERS[fmt](stream_or_path, path, max_body_bytes=max_body_bytes, counts=counts)
        return
    try:
        fh = open(stream_or_path, "rb")
    except OSError as exc:
        yield InputFailure(path, "", REASON_UNREADABLE, f"{type(exc).__name__}: {exc}")
        return
    with fh:
        yield from _READERS[fmt](fh, path, max_body_bytes=max_body_bytes, counts=counts)


_READERS: dict[str, Callable[..., Iterator[WebPage | InputFailure]]] = {
    "warc": read_warc, "jsonl": read_jsonl, "parquet": read_parquet,
}
