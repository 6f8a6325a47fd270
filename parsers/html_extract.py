"""Main-text extraction from HTML with trafilatura, run in child processes with time limits.

trafilatura walks lxml trees in C; a hostile page (deep nesting, a regex worst case, a huge
table) can hang or crash it. The Beam worker therefore extracts through `SandboxedExtractor`:
`config.workers` long-lived children (`python -m scicurate.parsers.html_extract`), each doing
one page at a time. A child past `timeout_s` is killed and restarted (that page ->
`extract_timeout`); a child that dies takes only its page with it (`extract_crash`).
`extract_html` is the pure in-process function the child runs; tests and benchmarks call it
directly.

Protocol (pipes, length-prefixed binary frames, so HTML bytes travel as they are: no base64):
  frame = 8-byte header `>II` (JSON length, body length) + UTF-8 JSON + body bytes
  child  -> parent  {"ok": true, "ready": true, "extractor": "..."}            (once, at start-up)
  parent -> child   {"url": str} + body = the page's HTML bytes
  child  -> parent  {"ok": true, "text", "title", "language", "author", "date", "extractor"}
                  | {"ok": false, "reason", "message"}
The child's configuration travels once, as JSON on its command line.

Test hook: with `SCICURATE_EXTRACT_TEST_HOOKS=1` in the child's environment, a body starting
with `<!--scicurate:hang-->` makes the child sleep forever and one starting with
`<!--scicurate:crash-->` makes it SIGKILL itself, so tests can prove timeout and crash handling
without a real pathological page. Without the variable the markers are ordinary HTML comments.

Children set PR_SET_PDEATHSIG (SIGTERM) on themselves at start-up, so they die with the worker
on Linux. The signal fires when the *thread* that started them exits, so start the extractor
from a long-lived thread (Beam's DoFn.setup runs on the bundle-processing thread pool, which is
long-lived); a child found dead between calls is restarted without charging any page. The
parent passes no `preexec_fn`: with one, CPython forks instead of vforking and runs the
process's fork handlers in the child, and gRPC's (every portable runner's SDK harness has
gRPC running) abort the child with SIGABRT now and then before it reaches exec.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from scicurate.config import ConfigError

REASON_EXTRACT_TIMEOUT = "extract_timeout"  # the child ran past ExtractConfig.timeout_s on this page
REASON_EXTRACT_CRASH = "extract_crash"      # the child died on this page (segfault, OOM kill)
REASON_EXTRACT_ERROR = "extract_error"      # trafilatura raised on this page
REASON_NO_TEXT = "no_text"                  # trafilatura found no main text (None or whitespace)
REASON_TOO_LARGE = "too_large"              # body over ExtractConfig.max_body_bytes: not parsed
EXTRACT_REASONS = (REASON_EXTRACT_TIMEOUT, REASON_EXTRACT_CRASH, REASON_EXTRACT_ERROR, REASON_NO_TEXT,
                   REASON_TOO_LARGE)

OUTPUT_FORMATS = ("markdown", "txt")
TEST_HOOKS_ENV = "SCICURATE_EXTRACT_TEST_HOOKS"
HANG_MARKER = b"<!--scicurate:hang-->"
CRASH_MARKER = b"<!--scicurate:crash-->"
STARTUP_TIMEOUT_S = 60.0
_HEADER = struct.Struct(">II")


@dataclass(frozen=True, slots=True)
class ExtractConfig:
    """How pages are extracted. Defaults chosen with `scicurate eval web` on trafilatura's
    154-page with/without snippet set (pooled snippet F1; plain `trafilatura.extract` 0.9175):

    - `favor_precision=True`: F1 0.9189 (P 0.905, R 0.933), the best variant measured;
      balanced 0.9175, favor_recall 0.9128.
    - `include_tables=True`: off scored 0.9146; scientific pages keep data in tables.
    - `include_formatting=False`: on scored 0.9087 (markdown markers split snippets). With it
      off, "markdown" output equals "txt" output on this set (same F1); markdown is kept so
      turning formatting on gives real markdown.
    - `timeout_s=30`: trafilatura takes ~10-50 ms on a typical page; 30 s is a hang.
    - `max_body_bytes=5 MiB`: main text of larger pages is rarely worth the parse.
    - `memory_mb=2048`: the address-space cap (RLIMIT_AS) of each child; an extraction child
      takes ~80 MB of address space and ~100 MiB at its peak on the eval pages, so only a
      pathological page (lxml building a tree of millions of nodes) reaches it, and that page
      fails alone (`extract_error` MemoryError, or `extract_crash`) while the child restarts.
    """

    output_format: str = "markdown"
    include_tables: bool = True
    include_formatting: bool = False
    favor_precision: bool = True
    favor_recall: bool = False
    deduplicate: bool = False
    timeout_s: float = 30.0
    max_body_bytes: int = 5 << 20
    workers: int = 1
    memory_mb: int = 2048

    def __post_init__(self) -> None:
        if self.output_format not in OUTPUT_FORMATS:
            raise ConfigError(f"extract output_format must be one of {', '.join(OUTPUT_FORMATS)}; "
                              f"got {self.output_format!r}")
        if self.favor_precision and self.favor_recall:
            raise ConfigError("favor_precision and favor_recall are mutually exclusive")
        if not self.timeout_s > 0:
            raise ConfigError(f"extract timeout_s must be positive; got {self.timeout_s}")
        if self.max_body_bytes < 1:
            raise ConfigError(f"extract max_body_bytes must be at least 1; got {self.max_body_bytes}")
        if self.memory_mb and self.memory_mb < 256:
            raise ConfigError(f"extract memory_mb must be 0 (no cap) or at least 256; got {self.memory_mb}")
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"extract workers must be in 1..64; got {self.workers}")


@dataclass(frozen=True, slots=True)
class Extracted:
    """A page's main text and metadata; `extractor` is "trafilatura <version> <format>"."""

    text: str
    title: str
    language: str   # trafilatura's metadata, else <html lang>, lowercased; "" if unknown
    author: str
    date: str
    extractor: str

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("Extracted needs text (empty extractions are ExtractFailure no_text)")


@dataclass(frozen=True, slots=True)
class ExtractFailure:
    reason: str
    message: str

    def __post_init__(self) -> None:
        if self.reason not in EXTRACT_REASONS:
            raise ValueError(f"unknown extract failure reason {self.reason!r}")


def extractor_id(config: ExtractConfig) -> str:
    from importlib import metadata

    try:
        version = metadata.version("trafilatura")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"trafilatura {version} {config.output_format}"


_LANG = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$")


def _normalize_lang(value: Any) -> str:
    lang = str(value or "").strip().lower().replace("_", "-")
    return lang if _LANG.match(lang) else ""


def extract_html(body: bytes, url: str, config: ExtractConfig) -> Extracted | ExtractFailure:
    """One page's main text and metadata in a single trafilatura parse. Deterministic; never
    raises for bad input (trafilatura errors become `extract_error`)."""
    if len(body) > config.max_body_bytes:
        return ExtractFailure(REASON_TOO_LARGE, f"body of {len(body)} bytes > max_body_bytes {config.max_body_bytes}")
    from trafilatura.core import bare_extraction, determine_returnstring
    from trafilatura.settings import Extractor, set_date_params
    from trafilatura.utils import load_html

    # Metadata comes from the same parse. htmldate's extensive text search is off: it halved
    # throughput (30 -> 43 pages/s on the eval pages) for a date that markup usually gives.
    options = Extractor(
        output_format=config.output_format, precision=config.favor_precision, recall=config.favor_recall,
        formatting=config.include_formatting, tables=config.include_tables, dedup=config.deduplicate,
        url=url or None, with_metadata=True, date_params=set_date_params(False),
    )
    try:
        tree = load_html(body) if body.strip() else None
        if tree is None:
            return ExtractFailure(REASON_NO_TEXT, "not parseable as HTML (empty or no element tree)")
        html_lang = _normalize_lang(tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang"))
        document = bare_extraction(tree, options=options)
        if document is None:
            return ExtractFailure(REASON_NO_TEXT, "trafilatura found no main text")
        options.with_metadata = False  # serialise the body without trafilatura's YAML metadata header
        text = determine_returnstring(document, options)
    except Exception as exc:  # noqa: BLE001 - one page must not end the worker
        return ExtractFailure(REASON_EXTRACT_ERROR, f"{type(exc).__name__}: {exc}"[:2000])
    if not text or not text.strip():
        return ExtractFailure(REASON_NO_TEXT, "trafilatura returned only whitespace")
    return Extracted(
        text=text, title=document.title or "", language=_normalize_lang(document.language) or html_lang,
        author=document.author or "", date=document.date or "", extractor=extractor_id(config),
    )


def result_from_json(d: dict[str, Any]) -> Extracted | ExtractFailure:
    if d.get("ok"):
        return Extracted(d["text"], d["title"], d["language"], d["author"], d["date"], d["extractor"])
    return ExtractFailure(d["reason"], d["message"])


def result_to_json(r: Extracted | ExtractFailure) -> dict[str, Any]:
    return {"ok": True, **asdict(r)} if isinstance(r, Extracted) else {"ok": False, **asdict(r)}


def encode_frame(obj: dict[str, Any], body: bytes = b"") -> bytes:
    head = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return _HEADER.pack(len(head), len(body)) + head + body


# ---- parent side ------------------------------------------------------------------------------

class _Worker:
    """One child process and its in-flight page (index into the current batch)."""

    def __init__(self, number: int, scratch: str) -> None:
        self.number = number
        self.log_path = os.path.join(scratch, f"child-{number}.log")
        self.proc: subprocess.Popen | None = None
        self.ready = False
        self.started_at = 0.0
        self.item = -1
        self.deadline = 0.0
        self.outbuf = memoryview(b"")
        self.inbuf = bytearray()

    @property
    def busy(self) -> bool:
        return self.item >= 0

    def frame(self) -> tuple[dict[str, Any], bytes] | None:
        if len(self.inbuf) < _HEADER.size:
            return None
        n_head, n_body = _HEADER.unpack_from(self.inbuf)
        end = _HEADER.size + n_head + n_body
        if len(self.inbuf) < end:
            return None
        head = json.loads(bytes(self.inbuf[_HEADER.size:_HEADER.size + n_head]))
        body = bytes(self.inbuf[_HEADER.size + n_head:end])
        del self.inbuf[:end]
        return head, body

    def tail(self, limit: int = 400) -> str:
        from scicurate.parsers.sandbox import file_tail

        return file_tail(self.log_path, limit)


class SandboxedExtractor:
    """Parent side: `config.workers` child processes extracting concurrently. Not thread-safe.

    `extract_many([(key, body, url), ...])` returns one `Extracted | ExtractFailure` per item,
    in order. Bodies over `max_body_bytes` are refused here (`too_large`), never sent.
    """

    def __init__(self, config: ExtractConfig) -> None:
        self.config = config
        self._scratch = ""
        self._workers: list[_Worker] = []
        self.restarts = 0
        self.extractor = ""

    def __enter__(self) -> "SandboxedExtractor":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> "SandboxedExtractor":
        """Start every child and wait until each has imported trafilatura. ConfigError on failure."""
        if self._workers:
            return self
        self._scratch = tempfile.mkdtemp(prefix="scicurate-extract-")
        self._workers = [_Worker(i, self._scratch) for i in range(self.config.workers)]
        for w in self._workers:
            self._spawn(w)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not all(w.ready for w in self._workers):
            self._pump(deadline)
            if time.monotonic() > deadline:
                self.close()
                raise ConfigError(f"the extraction processes did not start within {STARTUP_TIMEOUT_S:.0f} s")
        return self

    def close(self) -> None:
        for w in self._workers:
            self._kill(w, graceful=True)
        self._workers = []
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = ""

    def _spawn(self, w: _Worker) -> None:
        cmd = [sys.executable, "-m", "scicurate.parsers.html_extract", json.dumps(asdict(self.config)),
               str(os.getpid())]
        with open(w.log_path, "ab") as err:
            # own session, so a kill reaches helpers too; no preexec_fn (see the module docstring)
            w.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                      start_new_session=True)
        for stream in (w.proc.stdin, w.proc.stdout):
            os.set_blocking(stream.fileno(), False)  # type: ignore[union-attr]
        w.ready, w.item, w.outbuf, w.inbuf = False, -1, memoryview(b""), bytearray()
        w.started_at = time.monotonic()

    def _kill(self, w: _Worker, *, graceful: bool = False) -> None:
        proc, w.proc = w.proc, None
        w.ready = False
        if proc is None:
            return
        if graceful and proc.poll() is None:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
                proc.wait(timeout=2)
            except Exception:  # noqa: BLE001
                pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001
                pass
        try:
            proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            pass

    def _restart(self, w: _Worker) -> None:
        self._kill(w)
        self.restarts += 1
        self._spawn(w)

    def extract_many(self, items: Sequence[tuple[str, bytes, str]]) -> list[Extracted | ExtractFailure]:
        """Extract every (key, body, url) item; results in item order. Never raises for bad input."""
        self.start()
        results: list[Extracted | ExtractFailure | None] = [None] * len(items)
        todo: list[int] = []
        for i, (_, body, _) in enumerate(items):
            if len(body) > self.config.max_body_bytes:
                results[i] = ExtractFailure(REASON_TOO_LARGE,
                                            f"body of {len(body)} bytes > max_body_bytes {self.config.max_body_bytes}")
            else:
                todo.append(i)
        todo.reverse()
        self._results = results
        while todo or any(w.busy for w in self._workers):
            for w in self._workers:
                if w.ready and not w.busy and todo:
                    if w.proc is None or w.proc.poll() is not None:
                        self._restart(w)  # died between pages: nobody to blame
                        continue
                    i = todo.pop()
                    _, body, url = items[i]
                    w.item = i
                    w.outbuf = memoryview(encode_frame({"url": url}, body))
                    w.deadline = time.monotonic() + self.config.timeout_s
            self._pump(min([w.deadline for w in self._workers if w.busy], default=time.monotonic() + 1.0))
        self._results = []
        return results  # type: ignore[return-value] - every slot is filled by now

    def _fail(self, w: _Worker, reason: str, message: str) -> None:
        if w.busy:
            self._results[w.item] = ExtractFailure(reason, message[:2000])
        w.item = -1
        self._restart(w)

    def _pump(self, wake_at: float) -> None:
        """One round of select: write pending frames, read replies, enforce deadlines."""
        readers = {w.proc.stdout.fileno(): w for w in self._workers if w.proc is not None}  # type: ignore[union-attr]
        writers = {w.proc.stdin.fileno(): w for w in self._workers  # type: ignore[union-attr]
                   if w.proc is not None and len(w.outbuf)}
        timeout = max(0.0, min(wake_at - time.monotonic(), 1.0))
        try:
            r, wr, _ = select.select(list(readers), list(writers), [], timeout)
        except InterruptedError:
            return
        for fd in wr:
            w = writers[fd]
            try:
                n = os.write(fd, w.outbuf[:1 << 20])
                w.outbuf = w.outbuf[n:]
            except BlockingIOError:
                pass
            except OSError as exc:  # BrokenPipeError: the child died while we were sending
                self._fail(w, REASON_EXTRACT_CRASH, f"extraction process pipe broke: {exc}; {w.tail()!r}")
        for fd in r:
            w = readers[fd]
            if w.proc is None or w.proc.stdout.fileno() != fd:  # type: ignore[union-attr]
                continue  # restarted above in this round
            try:
                data = os.read(fd, 1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                code = w.proc.poll() if w.proc else None
                if code is None and w.proc is not None:
                    try:
                        code = w.proc.wait(timeout=1)
                    except subprocess.TimeoutExpired:
                        pass
                if not w.ready and not w.busy:
                    self.close()
                    raise ConfigError(f"the extraction process exited ({code}) at start-up: {w.tail(1500)}")
                self._fail(w, REASON_EXTRACT_CRASH, f"extraction process died (exit code {code}); "
                                                    f"last stderr: {w.tail()!r}")
                continue
            w.inbuf.extend(data)
            while (got := w.frame()) is not None:
                head, _ = got
                if not w.ready:
                    if not head.get("ready"):
                        self.close()
                        raise ConfigError(f"the extraction process failed to start: {head.get('message')}")
                    w.ready, self.extractor = True, head.get("extractor", "")
                elif w.busy:
                    self._results[w.item] = result_from_json(head)
                    w.item = -1
        now = time.monotonic()
        for w in self._workers:
            if w.proc is not None and not w.ready and now > w.started_at + STARTUP_TIMEOUT_S:
                self.close()
                raise ConfigError(f"an extraction process did not start within {STARTUP_TIMEOUT_S:.0f} s")
            if w.busy and now > w.deadline:
                self._fail(w, REASON_EXTRACT_TIMEOUT, f"no result within {self.config.timeout_s:g} s; process killed")


# ---- child side -------------------------------------------------------------------------------

def _read_exact(stream: Any, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf.extend(chunk)
    return bytes(buf)


def _child_main(argv: list[str]) -> int:
    from scicurate.parsers.sandbox import die_with_parent

    die_with_parent(int(argv[1]) if len(argv) > 1 else 0)
    config = ExtractConfig(**json.loads(argv[0])) if argv else ExtractConfig()
    if config.memory_mb:
        import resource

        cap = config.memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    # Keep the protocol channel private: anything a library prints goes to stderr.
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    hooks = os.environ.get(TEST_HOOKS_ENV) == "1"

    def send(obj: dict[str, Any]) -> None:
        proto.write(encode_frame(obj))

    import logging

    logging.disable(logging.WARNING)  # trafilatura logs every discarded page at WARNING
    try:
        import importlib

        importlib.import_module("trafilatura.core")  # fail at start-up, not on the first page
    except Exception as exc:  # noqa: BLE001
        send({"ok": False, "ready": False, "message": f"{type(exc).__name__}: {exc}; pip install 'trafilatura>=2.0'"})
        return 2
    send({"ok": True, "ready": True, "extractor": extractor_id(config), "pid": os.getpid()})
    while True:
        header = _read_exact(requests, _HEADER.size)
        if header is None:
            return 0
        n_head, n_body = _HEADER.unpack(header)
        head = _read_exact(requests, n_head)
        body = _read_exact(requests, n_body) if n_body else b""
        if head is None or body is None:
            return 0
        req = json.loads(head)
        if hooks and body.startswith(HANG_MARKER):
            while True:
                time.sleep(3600)
        if hooks and body.startswith(CRASH_MARKER):
            os.kill(os.getpid(), signal.SIGKILL)
        send(result_to_json(extract_html(body, req.get("url") or "", config)))


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
