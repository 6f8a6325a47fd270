"""Split a PDF into page windows, and classify why a PDF cannot be split.

Runs inside the sandbox worker: PDFium is native code and the input is untrusted.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

from scicurate.records import (
    REASON_CORRUPT,
    REASON_EMPTY,
    REASON_ENCRYPTED,
    REASON_NOT_PDF,
    REASON_TOO_LARGE,
    REASON_TOO_MANY_PAGES,
)

# PDFium's FPDF_GetLastError code for a missing or wrong password.
_FPDF_ERR_PASSWORD = 4


class DocumentError(Exception):
    """A whole document cannot be processed; `reason` is a dead-letter reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def precheck(data: bytes, *, max_bytes: int) -> None:
    """Cheap checks on the raw bytes before any native code sees them."""
    if not data:
        raise DocumentError(REASON_EMPTY, "file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise DocumentError(REASON_TOO_LARGE, f"{len(data)} bytes exceeds max_bytes={max_bytes}")
    # The PDF spec allows junk before the header; readers accept it within the first KiB.
    if b"%PDF-" not in data[:1024]:
        head = data[:16].decode("latin-1", "replace").encode("unicode_escape").decode()
        raise DocumentError(REASON_NOT_PDF, f"no %PDF- header in the first 1024 bytes (starts {head!r})")


def open_pdf(path: str):
    """Open with PDFium, mapping its errors to dead-letter reasons."""
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == _FPDF_ERR_PASSWORD or "password" in str(exc).lower():
            raise DocumentError(REASON_ENCRYPTED, f"encrypted, needs a password: {exc}") from exc
        raise DocumentError(REASON_CORRUPT, f"PDFium cannot open it: {exc}") from exc


# A page's content streams inflating past this are a decompression bomb, not a page: the
# densest real pages here (vector plots, maps) inflate to a few MB; 4 MB of PDF inflating to
# 4 GB took 8 GB of the parser's memory before the parser gave up.
MAX_CONTENT_INFLATED_BYTES = 256 << 20
BOMB_PREFIX = "decompression bomb: "


def damage_reason(message: str) -> str:
    """The page reason code for a `damaged_pages` message."""
    from scicurate.records import REASON_DAMAGED_STREAM, REASON_DECOMPRESSION_BOMB

    return REASON_DECOMPRESSION_BOMB if message.startswith(BOMB_PREFIX) else REASON_DAMAGED_STREAM


def _inflated_size(raw: bytes, limit: int) -> int:
    """Bytes a zlib stream inflates to, counted in 1 MiB steps and never held: stops past
    `limit` (returns limit + 1). Raises zlib.error for a damaged stream."""
    import zlib

    d = zlib.decompressobj()
    total, data = 0, raw
    while data:
        total += len(d.decompress(data, 1 << 20))
        if total > limit:
            return limit + 1
        data = d.unconsumed_tail
    return total + len(d.flush())


def damaged_pages(path: str, max_inflated: int = MAX_CONTENT_INFLATED_BYTES) -> dict[int, str]:
    """Pages whose Flate-compressed content streams fail to decompress (checksum or data
    error), or inflate past `max_inflated` bytes together (a decompression bomb).

    PDFium silently reads past a corrupted Flate stream and returns whatever text survives;
    zlib's Adler-32 check says the bytes were altered, so that text cannot be trusted. Only the
    page content streams are checked: they are what the text comes from, and they are cheap.
    Inflation is counted in bounded steps, so the check itself never holds a bomb's output.
    """
    import zlib

    try:
        import pikepdf
    except ImportError:  # pragma: no cover - pikepdf is a core dependency
        return {}
    found: dict[int, str] = {}
    try:
        pdf = pikepdf.open(path)
    except Exception:  # noqa: BLE001 - PDFium opened it; a qpdf disagreement is not our verdict
        return {}
    with pdf:
        for index, page in enumerate(pdf.pages):
            contents = page.obj.get("/Contents")
            if contents is None:
                continue
            streams = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
            inflated = 0
            for stream in streams:
                if not isinstance(stream, pikepdf.Stream):
                    continue
                filt = stream.get("/Filter")
                filters = list(filt) if isinstance(filt, pikepdf.Array) else ([filt] if filt is not None else [])
                if not filters or str(filters[0]) != "/FlateDecode":
                    continue
                try:
                    inflated += _inflated_size(stream.read_raw_bytes(), max_inflated - inflated)
                    if inflated > max_inflated:
                        num, gen = stream.objgen
                        found[index] = (f"{BOMB_PREFIX}content streams inflate past {max_inflated >> 20} MiB "
                                        f"(stream {num} {gen} R)")
                        break
                except zlib.error as exc:
                    num, gen = stream.objgen
                    found[index] = f"content stream {num} {gen} R fails to decompress: {exc}"
                    break
                except Exception:  # noqa: BLE001 - unreadable raw bytes: let the parser try
                    continue
    return found


@dataclass(frozen=True, slots=True)
class WindowFile:
    first_page: int
    num_pages: int
    path: str


def split_to_files(
    path: str, out_dir: str, *, window_pages: int, max_pages: int
) -> tuple[int, list[WindowFile], dict[int, str]]:
    """Write windows of `window_pages` pages as standalone PDFs into `out_dir`.

    Returns (page count, windows, damaged pages). Only one window's pages are held at a time.
    """
    import pypdfium2 as pdfium

    src = open_pdf(path)
    try:
        n = len(src)
        if n == 0:
            raise DocumentError(REASON_EMPTY, "PDF has zero pages")
        if n > max_pages:
            raise DocumentError(REASON_TOO_MANY_PAGES, f"{n} pages exceeds max_pages={max_pages}")
        windows: list[WindowFile] = []
        for first in range(0, n, window_pages):
            count = min(window_pages, n - first)
            dst = pdfium.PdfDocument.new()
            try:
                dst.import_pages(src, pages=list(range(first, first + count)))
                if len(dst) != count:
                    raise DocumentError(REASON_CORRUPT, f"could only copy {len(dst)} of pages {first}..{first + count - 1}")
                buf = io.BytesIO()
                dst.save(buf)
            finally:
                dst.close()
            out = os.path.join(out_dir, f"window-{first:06d}.pdf")
            with open(out, "wb") as fh:
                fh.write(buf.getvalue())
            windows.append(WindowFile(first, count, out))
    finally:
        src.close()
    return n, windows, damaged_pages(path)
