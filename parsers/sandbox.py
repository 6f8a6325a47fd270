"""Run the native PDF work (PDFium, MinerU, OCR) in a child process with time limits.

A malformed or hostile PDF can crash or hang native code. The Beam worker therefore never
opens a PDF itself: it talks to one long-lived child process (`python -m
scicurate.parsers.sandbox`) over a JSON-lines protocol on pipes. The child loads MinerU once.
On a timeout or crash the parent kills the child, records the failure against the window or
page that caused it, and starts a fresh child for the next request.

Protocol (one JSON object per line; window bytes travel as temp files, not through the pipe):
  parent -> child  {"op": "split", "path", "out_dir", "window_pages", "max_pages", "max_bytes"}
  parent -> child  {"op": "parse", "path", "doc_id", "source", "first_page", "doc_pages", "subset"}
  parent -> child  {"op": "ocr" | "render", "path", "pages", …}
  child -> parent  {"ok": true, ...result} | {"ok": false, "kind": "document"|"error", "reason", "message"}
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Any, Iterator

from scicurate.config import ConfigError, PdfConfig
from scicurate.records import (
    REASON_INTERNAL,
    REASON_OUT_OF_MEMORY,
    REASON_PAGE_TIMEOUT,
    REASON_PARSER_CRASH,
    REASON_PARSER_ERROR,
    STATUS_FAILED,
    Block,
    PageParse,
    PageWindow,
    PdfInput,
    TextLayerStats,
)

from .split import DocumentError, damage_reason

_LOG = logging.getLogger(__name__)

# The child needs a few seconds to import MinerU; a cold start on a loaded machine can take more.
STARTUP_TIMEOUT_S = 180.0
# Splitting copies page objects; it is fast, but a huge document needs time proportional to pages.
SPLIT_SECONDS_PER_PAGE = 0.05
SPLIT_MIN_TIMEOUT_S = 30.0


def kill_process_group(proc) -> bool:
    """SIGKILL a child started with start_new_session=True and everything it spawned, then
    reap it; False when it did not exit within 10 s."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return True


def file_tail(path: str, limit: int = 1500) -> str:
    """The last `limit` bytes of a child's log file, decoded leniently ("" when unreadable): what
    a dead letter quotes of a crashed child."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def die_with_parent(parent: int) -> None:
    """In a child, first thing: SIGTERM on the parent's death (Linux PR_SET_PDEATHSIG), and exit
    at once if `parent` died before that was set. Children call it themselves rather than via
    Popen's preexec_fn: with one, CPython forks instead of vforking and runs the process's fork
    handlers in the child, and gRPC's (any process that has run a portable Beam job) abort it
    with SIGABRT now and then before it reaches exec."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    if parent and os.getppid() != parent:
        os._exit(0)


@dataclass(frozen=True, slots=True)
class RenderedPage:
    page_index: int
    png: bytes
    width: int
    height: int
    text_layer: str


@dataclass(frozen=True, slots=True)
class RenderFailure:
    page_index: int
    reason: str
    message: str


class _ChildFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def page_from_json(d: dict[str, Any]) -> PageParse:
    blocks = tuple(
        Block(type=b["type"], text=b["text"], bbox=tuple(b["bbox"]), level=b["level"],
              inline_math=b["inline_math"], script_spans=b["script_spans"])
        for b in d["blocks"]
    )
    tl = d["text_layer"]
    return PageParse(
        doc_id=d["doc_id"], source=d["source"], page_index=d["page_index"], doc_pages=d["doc_pages"],
        parser=d["parser"], parser_version=d["parser_version"], tier=d["tier"], status=d["status"],
        blocks=blocks,
        text_layer=TextLayerStats(chars=tl["chars"], math_font_chars=tl["math_font_chars"],
                                  image_area_ratio=tl["image_area_ratio"], text=tl["text"]),
        error_reason=d["error_reason"], error_message=d["error_message"], seconds=d["seconds"],
    )


def page_to_json(p: PageParse) -> dict[str, Any]:
    return {
        "doc_id": p.doc_id, "source": p.source, "page_index": p.page_index, "doc_pages": p.doc_pages,
        "parser": p.parser, "parser_version": p.parser_version, "tier": p.tier, "status": p.status,
        "blocks": [
            {"type": b.type, "text": b.text, "bbox": list(b.bbox), "level": b.level,
             "inline_math": b.inline_math, "script_spans": b.script_spans}
            for b in p.blocks
        ],
        "text_layer": {"chars": p.text_layer.chars, "math_font_chars": p.text_layer.math_font_chars,
                       "image_area_ratio": p.text_layer.image_area_ratio, "text": p.text_layer.text},
        "error_reason": p.error_reason, "error_message": p.error_message, "seconds": p.seconds,
    }


@dataclass
class InFlight:
    """A window sent to the child whose pages have not been collected yet."""

    window: PageWindow
    bad: list[PageParse]
    todo: list[int]
    work: str
    path: str = ""
    deadline: float = 0.0
    error: "_ChildFailed | None" = None


def failed_page(window: PageWindow, page_index: int, reason: str, message: str) -> PageParse:
    return PageParse(
        doc_id=window.doc_id, source=window.source, page_index=page_index, doc_pages=window.doc_pages,
        parser="mineru", parser_version="", tier="", status=STATUS_FAILED,
        error_reason=reason, error_message=message[:2000],
    )


class SandboxedParser:
    """Parent side: owns one child process and a scratch directory. Not thread-safe."""

    def __init__(self, config: PdfConfig, *, load_parser: bool = True) -> None:
        self.config = config
        self.load_parser = load_parser  # False: a splitting-only child, MinerU never imported
        self._proc: subprocess.Popen | None = None
        self._stderr_path = ""
        self._scratch = tempfile.mkdtemp(prefix="scicurate-")
        self.restarts = 0
        self.ready_info: dict[str, Any] = {}

    # -- process management -------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        """Start the child and wait until MinerU is loaded. Raises ConfigError on failure."""
        if self._proc is not None:
            if self._proc.poll() is None:
                return self.ready_info
            # Died between requests (killed, OOM): count it and start a fresh one.
            _LOG.warning("parser process %s exited with %s; restarting", self._proc.pid, self._proc.returncode)
            self._proc = None
            self.restarts += 1
        self._stderr_path = os.path.join(self._scratch, f"child-{self.restarts}.log")
        cmd = [
            sys.executable, "-m", "scicurate.parsers.sandbox",
            "--tier", self.config.tier,
            "--min-text-chars", str(self.config.min_text_chars),
            # With a high-cost parser, scans are routed to it by hard rule: no stop-gap OCR.
            "--ocr", "1" if self.config.ocr_without_text_layer and not self.config.high_cost_parser else "0",
            "--allow-download", "1" if self.config.allow_model_download else "0",
            "--parser", "1" if self.load_parser else "0",
            "--memory-mb", str(self.config.parser_memory_mb),
        ]
        with open(self._stderr_path, "wb") as err:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                start_new_session=True,  # its own process group: we can kill MinerU's helpers too
            )
        try:
            info = self._read(STARTUP_TIMEOUT_S)
        except _ChildFailed as exc:
            self._kill()
            raise ConfigError(
                f"the parser process failed to start ({exc.reason}): {exc.message}\n{self._stderr_tail()}"
            ) from None
        if not info.get("ok"):
            self._kill()
            raise ConfigError(f"the parser process failed to start: {info.get('message')}")
        self.ready_info = info
        return info

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._proc.stdin.close()  # type: ignore[union-attr]
                self._proc.wait(timeout=5)
            except Exception:  # noqa: BLE001
                self._kill()
        self._proc = None
        shutil.rmtree(self._scratch, ignore_errors=True)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            kill_process_group(proc)

    def _stderr_tail(self, limit: int = 1500) -> str:
        return file_tail(self._stderr_path, limit)

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        chunks = bytearray()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _ChildFailed(REASON_PAGE_TIMEOUT, f"no answer within {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            data = os.read(fd, 1 << 20)
            if not data:
                code = self._proc.poll()
                cap = f", memory cap {self.config.parser_memory_mb} MiB" if self.config.parser_memory_mb else ""
                raise _ChildFailed(
                    REASON_PARSER_CRASH,
                    f"parser process died (exit code {code}{cap}); last stderr: {self._stderr_tail(400)!r}",
                )
            chunks.extend(data)
            if chunks.endswith(b"\n"):
                return json.loads(chunks.decode("utf-8"))

    def _send(self, request: dict[str, Any]) -> None:
        self.start()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            self.restarts += 1
            raise _ChildFailed(REASON_PARSER_CRASH, f"parser process pipe broke: {exc}") from None

    def _receive(self, timeout: float) -> dict[str, Any]:
        try:
            return self._read(timeout)
        except _ChildFailed:
            self._kill()
            self.restarts += 1
            raise

    def _call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        self._send(request)
        return self._receive(timeout)

    # -- operations ----------------------------------------------------------------------
    def split(self, pdf: PdfInput) -> Iterator[PageWindow]:
        """Yield the document's windows. Raises DocumentError for a document-level failure."""
        from .split import precheck

        precheck(pdf.data, max_bytes=self.config.max_bytes)
        work = tempfile.mkdtemp(dir=self._scratch)
        try:
            src = os.path.join(work, "input.pdf")
            with open(src, "wb") as fh:
                fh.write(pdf.data)
            timeout = max(SPLIT_MIN_TIMEOUT_S, SPLIT_SECONDS_PER_PAGE * self.config.max_pages)
            try:
                reply = self._call(
                    {"op": "split", "path": src, "out_dir": work, "window_pages": self.config.window_pages,
                     "max_pages": self.config.max_pages},
                    timeout,
                )
            except _ChildFailed as exc:
                reason = "corrupt" if exc.reason == REASON_PARSER_CRASH else exc.reason
                raise DocumentError(reason, f"splitting failed: {exc.message}") from None
            if not reply.get("ok"):
                raise DocumentError(reply.get("reason", REASON_INTERNAL), reply.get("message", ""))
            doc_pages = int(reply["pages"])
            damaged = {int(k): str(v) for k, v in reply.get("damaged", ())}
            os.unlink(src)
            for first, count, path in reply["windows"]:
                with open(path, "rb") as fh:
                    data = fh.read()
                os.unlink(path)
                marks = tuple((i, damaged[i]) for i in range(first, first + count) if i in damaged)
                yield PageWindow(doc_id=pdf.doc_id, source=pdf.source, first_page=first,
                                 num_pages=count, doc_pages=doc_pages, pdf_bytes=data, damaged=marks)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def parse_window(self, window: PageWindow) -> list[PageParse]:
        """Parse every page of a window. Never raises for bad input: failures become failed pages."""
        return self.finish_window(self.begin_window(window))

    def begin_window(self, window: PageWindow) -> "InFlight":
        """Send a window to the child and return at once; `finish_window` collects the pages.

        While the child parses, the caller can do other work (the pipeline computes signals and
        routes the previous window's pages): one request in flight, never more.
        """
        damaged = dict(window.damaged)
        bad = [failed_page(window, i, damage_reason(msg), msg) for i, msg in sorted(damaged.items())]
        todo = [i - window.first_page for i in window.page_indices if i not in damaged]
        flight = InFlight(window=window, bad=bad, todo=todo, work=tempfile.mkdtemp(dir=self._scratch))
        if not todo:
            return flight
        flight.path = os.path.join(flight.work, "window.pdf")
        with open(flight.path, "wb") as fh:
            fh.write(window.pdf_bytes)
        timeout = self.config.page_timeout_s * len(todo)
        subset = None if len(todo) == window.num_pages else todo
        try:
            self._send({"op": "parse", "path": flight.path, "doc_id": window.doc_id, "source": window.source,
                        "first_page": window.first_page, "doc_pages": window.doc_pages, "subset": subset})
            flight.deadline = time.monotonic() + timeout
        except _ChildFailed as exc:
            flight.error = exc
        return flight

    def finish_window(self, flight: "InFlight") -> list[PageParse]:
        window = flight.window
        try:
            if not flight.todo:
                return sorted(flight.bad, key=lambda p: p.page_index)
            if flight.error is None:
                try:
                    reply = self._receive(max(0.001, flight.deadline - time.monotonic()))
                    if not reply.get("ok"):
                        raise _ChildFailed(reply.get("reason", REASON_PARSER_ERROR), reply.get("message", ""))
                    pages = [page_from_json(p) for p in reply["pages"]]
                    return sorted(pages + flight.bad, key=lambda p: p.page_index)
                except _ChildFailed as exc:
                    flight.error = exc
            exc = flight.error
            if len(flight.todo) == 1:
                only = failed_page(window, window.first_page + flight.todo[0], exc.reason, exc.message)
                return sorted(flight.bad + [only], key=lambda p: p.page_index)
            # The window failed as a whole: isolate the bad page(s) one by one.
            pages = list(flight.bad)
            for i in flight.todo:
                try:
                    pages.extend(self._parse(flight.path, window, [i], self.config.page_timeout_s))
                except _ChildFailed as err:
                    pages.append(failed_page(window, window.first_page + i, err.reason, err.message))
            return sorted(pages, key=lambda p: p.page_index)
        finally:
            shutil.rmtree(flight.work, ignore_errors=True)

    def _per_page(self, pdf: PdfInput, pages: list[int], request: dict[str, Any]) -> Iterator[tuple[int, Any]]:
        """Send `request` once per page (a hang or crash costs that page only) against the
        document written to a scratch file. Yields (page, child reply | _ChildFailed)."""
        work = tempfile.mkdtemp(dir=self._scratch)
        try:
            path = os.path.join(work, "doc.pdf")
            with open(path, "wb") as fh:
                fh.write(pdf.data)
            for index in pages:
                try:
                    reply = self._call({**request, "path": path, "pages": [index], "out_dir": work},
                                       self.config.page_timeout_s)
                    if not reply.get("ok"):
                        raise _ChildFailed(reply.get("reason", REASON_PARSER_ERROR), reply.get("message", ""))
                    yield index, reply
                except _ChildFailed as exc:
                    yield index, exc
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def ocr_pages(self, pdf: PdfInput, pages: list[int], doc_pages: int) -> dict[int, PageParse]:
        """OCR whole pages of a document; a page that fails comes back as a failed PageParse."""
        out: dict[int, PageParse] = {}
        request = {"op": "ocr", "doc_id": pdf.doc_id, "source": pdf.source, "doc_pages": doc_pages}
        for index, reply in self._per_page(pdf, pages, request):
            if isinstance(reply, _ChildFailed):
                out[index] = PageParse(
                    doc_id=pdf.doc_id, source=pdf.source, page_index=index, doc_pages=doc_pages,
                    parser="rapidocr", parser_version="", tier="ocr", status=STATUS_FAILED,
                    error_reason=reply.reason, error_message=reply.message[:2000],
                )
            else:
                out[index] = page_from_json(reply["pages"][0])
        return out

    def render_pages(self, pdf: PdfInput, pages: list[int], *, dpi: int, max_side_px: int) -> dict[int, Any]:
        """Render whole pages to PNG. Returns {page: RenderedPage}; a page that fails (or times
        out, or crashes PDFium) maps to a `RenderFailure` instead, and costs only itself."""
        out: dict[int, Any] = {}
        for index, reply in self._per_page(pdf, pages, {"op": "render", "dpi": dpi, "max_side_px": max_side_px}):
            if isinstance(reply, _ChildFailed):
                out[index] = RenderFailure(index, reply.reason, reply.message[:2000])
                continue
            info = reply["pages"][0]
            with open(info["png_path"], "rb") as fh:
                png = fh.read()
            os.unlink(info["png_path"])
            out[index] = RenderedPage(index, png, info["width"], info["height"], info["text_layer"])
        return out

    def _parse(self, path: str, window: PageWindow, subset: list[int] | None, timeout: float) -> list[PageParse]:
        reply = self._call(
            {"op": "parse", "path": path, "doc_id": window.doc_id, "source": window.source,
             "first_page": window.first_page, "doc_pages": window.doc_pages, "subset": subset},
            timeout,
        )
        if not reply.get("ok"):
            raise _ChildFailed(reply.get("reason", REASON_PARSER_ERROR), reply.get("message", ""))
        return [page_from_json(p) for p in reply["pages"]]


# ---- child side ----------------------------------------------------------------------------

def _child_main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="scicurate.parsers.sandbox")
    ap.add_argument("--tier", default="flash")
    ap.add_argument("--min-text-chars", type=int, default=16)
    ap.add_argument("--ocr", default="1")
    ap.add_argument("--allow-download", default="0")
    ap.add_argument("--parser", default="1")
    ap.add_argument("--memory-mb", type=int, default=0)
    args = ap.parse_args(argv)
    if args.memory_mb > 0:
        # A hostile page (a content stream inflating to gigabytes, a huge image) fails here,
        # alone, instead of taking the worker's memory: allocations past the cap fail.
        import resource

        cap = args.memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    # Keep the protocol channel private: anything native code prints goes to stderr.
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer

    def send(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n")

    from .lowcost import LowCostParser, mineru_version
    from .split import split_to_files

    parser = None
    try:
        if args.parser == "1":
            parser = LowCostParser(
            args.tier, min_text_chars=args.min_text_chars, ocr_without_text_layer=args.ocr == "1",
            allow_model_download=args.allow_download == "1",
            ).load()
            if args.tier != "flash":
                _warm_up(parser)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a fatal start-up error
        hint = ""
        if args.tier != "flash":
            hint = (f" MinerU's '{args.tier}' tier needs its ONNX models installed locally "
                    "(run `mineru-models-download` on a machine with network access and set "
                    "MINERU_MODEL_SOURCE=local), or use --tier flash, which needs no models.")
        send({"ok": False, "message": f"{type(exc).__name__}: {exc}.{hint}"})
        return 2
    send({"ok": True, "tier": args.tier, "mineru": mineru_version(), "pid": os.getpid(), "parser": parser is not None})

    for line in requests:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            if req["op"] == "split":
                n, windows, damaged = split_to_files(req["path"], req["out_dir"], window_pages=req["window_pages"],
                                                     max_pages=req["max_pages"])
                send({"ok": True, "pages": n, "windows": [[w.first_page, w.num_pages, w.path] for w in windows],
                      "damaged": [[k, v] for k, v in sorted(damaged.items())]})
            elif req["op"] == "parse":
                if parser is None:
                    raise RuntimeError("this sandbox was started without a parser (split only)")
                pages = parser.parse_file(req["path"], doc_id=req["doc_id"], source=req["source"],
                                          first_page=req["first_page"], doc_pages=req["doc_pages"],
                                          page_subset=req["subset"])
                send({"ok": True, "pages": [page_to_json(p) for p in pages]})
            elif req["op"] == "render":
                from .render import render_file

                rendered = render_file(req["path"], req["pages"], dpi=req["dpi"], max_side_px=req["max_side_px"],
                                       out_dir=req["out_dir"])
                send({"ok": True, "pages": rendered})
            elif req["op"] == "ocr":
                if parser is None:
                    raise RuntimeError("this sandbox was started without a parser (split only)")
                pages = parser.ocr_file(req["path"], doc_id=req["doc_id"], source=req["source"],
                                        pages=req["pages"], doc_pages=req["doc_pages"])
                send({"ok": True, "pages": [page_to_json(p) for p in pages]})
            else:
                send({"ok": False, "reason": REASON_INTERNAL, "message": f"unknown op {req.get('op')!r}"})
        except DocumentError as exc:
            send({"ok": False, "kind": "document", "reason": exc.reason, "message": exc.message})
        except Exception as exc:  # noqa: BLE001 - one bad record must not end the worker
            tb = traceback.format_exc(limit=4)
            send({"ok": False, "kind": "error", "reason": classify_error(exc),
                  "message": f"{type(exc).__name__}: {exc} | {tb[-800:]}"})
    return 0


def classify_error(exc: Exception) -> str:
    """A parser exception -> its reason code (out_of_memory, encrypted, corrupt, parser_error)."""
    if isinstance(exc, MemoryError):
        return REASON_OUT_OF_MEMORY
    name = type(exc).__name__
    text = str(exc).lower()
    if "password" in text:
        return "encrypted"
    if name == "PdfiumError":
        return "corrupt"
    return REASON_PARSER_ERROR


def _warm_up(parser) -> None:
    """Parse a tiny generated page so a missing model set fails at start-up, not per page."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    doc.new_page(200, 200)
    path = os.path.join(tempfile.mkdtemp(prefix="scicurate-warm-"), "warm.pdf")
    doc.save(path)
    doc.close()
    parser._parser.parse(path)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
