"""MinerU 4's own VLM page parser: MinerU2.5 on an OpenAI-compatible server, driven by MinerU's client.

In: a routed document's bytes and the 0-based page indices to re-parse. Out: one `PageParse`
per requested page (`parser="mineru-vlm"`, `tier="vlm"`), ok or failed; it never raises for a
bad page or an unreachable server.

How MinerU talks to the server (installed mineru 4.0.12 / mineru-vl-utils 2.0.7):
- `mineru_vl_utils.MinerUClient(backend="http-client", server_url=…, model_name=…)` wraps
  `vlm_client/http_client.HttpVlmClient`. On construction it GETs `{server}/v1/models` to check
  the model name (or, without one, to take the server's only model).
- `two_step_extract(page_image)` is MinerU's VLM-only path: one `POST /v1/chat/completions`
  with the page resized to 1036x1036 and the prompt "\\nLayout Detection:"; the reply lists
  blocks as `<|box_start|>x1 y1 x2 y2<|box_end|><|ref_start|>type<|ref_end|><|rotate_up|>`
  (0-1000 coordinates). Then one request per block crop with "\\nText Recognition:",
  "\\nFormula Recognition:" or "\\nTable Recognition:". Every image travels as a base64 PNG
  data URL in an OpenAI chat message (system prompt, then image, then prompt text); sampling is
  greedy. The blocks come back as `ContentBlock` dicts `{type, bbox (0-1), angle, content}`,
  post-processed by MinerU (equations wrapped in `\\[ \\]`, tables as HTML).
- The server must serve a MinerU2.5 model (`mineru-kit vlm-server`, i.e. `vllm serve` of
  opendatalab/MinerU2.5-Pro-2605-1.2B on port 30000): the prompts and the layout grammar are
  that model's, and a general VLM answers them with text MinerU cannot parse.

Why not `MinerUParser(tier="standard"|"advanced", vlm_config=VlmConfig(server_url=…))`, MinerU's
document-level VLM mode? It also loads MinerU's local ONNX models (PP-DocLayoutV2 layout, OCR
detection, formula recognition) for every page, which this project does not install or
download, and it opens the PDF with PDFium inside the calling process. Here the page is
rendered at MinerU's own 200 dpi in a short-lived child process that imports nothing but
pypdfium2, under a time limit, so a malformed or hostile PDF that crashes or hangs PDFium costs
that page, not the Beam worker. Only our own PNG is decoded in-process.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

from scicurate.config import ConfigError, PdfConfig
from scicurate.parsers.high_cost import HighCostParser
from scicurate.records import (
    REASON_PAGE_TIMEOUT,
    REASON_PARSER_CRASH,
    REASON_PARSER_ERROR,
    STATUS_FAILED,
    STATUS_OK,
    PageParse,
    PdfInput,
)

# MinerU renders PDF pages for its VLM at 200 dpi (docvortex DEFAULT_PDF_IMAGE_DPI); block crops
# are cut from this render, so a lower resolution costs formula and small-print accuracy.
RENDER_DPI = 200
# A hostile MediaBox (a 200-inch page) must not become a gigabyte bitmap: the long side is
# capped at 4000 px, twice an A4 page at 200 dpi.
RENDER_MAX_SIDE_PX = 4000
# Used only when PdfConfig has no LLM settings: MinerU's client retries timeouts, connection
# errors and 429/502/503/504 itself with exponential backoff.
DEFAULT_MAX_RETRIES = 2
DEFAULT_BACKOFF_S = 0.5
DEFAULT_MAX_CONCURRENCY = 4

# The render child. It imports only pypdfium2, not scicurate, so it starts in ~0.1 s and a
# half-imported package can never break it. argv: pdf, 0-based page, out.png, dpi, max side.
# Exit 0 with the PNG written; 3 when the page does not exist; otherwise a traceback on stderr.
_RENDER_SCRIPT = """
import sys
import pypdfium2 as pdfium

path, index, out, dpi, max_side = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
pdf = pdfium.PdfDocument(path)
if not 0 <= index < len(pdf):
    sys.stderr.write(f"page {index} does not exist: the document has {len(pdf)} pages")
    sys.exit(3)
page = pdf[index]
width, height = page.get_size()
if not (width > 0 and height > 0):
    sys.stderr.write(f"page {index} has an empty page box ({width} x {height} pt)")
    sys.exit(1)
scale = min(dpi / 72.0, max_side / max(width, height))
page.render(scale=scale).to_pil().convert("RGB").save(out, format="PNG")
"""


class _PageFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _llm_setting(config: PdfConfig, field: str, flat: str | None, default: Any) -> Any:
    """A setting of the high-cost VLM's server: `config.llm.<field>`, else `config.<flat>`."""
    value = getattr(getattr(config, "llm", None), field, None)
    if value in (None, "") and flat:
        value = getattr(config, flat, None)
    return default if value in (None, "") else value


def _versions() -> str:
    from importlib.metadata import version

    parts = []
    for dist in ("mineru", "mineru-vl-utils"):
        try:
            parts.append(f"{dist}-{version(dist)}")
        except Exception:  # noqa: BLE001 - provenance is best effort
            parts.append(f"{dist}-unknown")
    return ";".join(parts)


def _classify(exc: BaseException) -> str:
    """page_timeout for a request that ran out of time (after MinerU's retries), else parser_error."""
    import httpx

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (httpx.TimeoutException, TimeoutError)):
            return REASON_PAGE_TIMEOUT
        current = current.__cause__ or current.__context__
    return REASON_PARSER_ERROR


class MineruVlmHighCostParser(HighCostParser):
    """Re-parses routed pages with MinerU's two-step VLM extraction against a MinerU2.5 server.

    Reads the server from `config.llm.endpoint` / `config.llm.model` (the LLM access layer's
    settings), falling back to flat `config.llm_endpoint` / `config.llm_model`. The API key, if
    any, comes from the environment variable named by `config.llm.api_key_env` (MinerU itself
    also honours MINERU_VL_API_KEY). Request timeout, retries, backoff and concurrency come from
    `config.llm` when present (timeout else `page_timeout_s`).

    Per page: render in a child process (timeout `page_timeout_s`), then `two_step_extract`. A
    page whose render or requests fail comes back failed with the reason (`page_timeout`,
    `parser_crash`, `parser_error`) and message; so does a page on which the VLM found no
    layout block at all, since an empty success would replace the page's low-cost text with
    nothing. The MinerU client is built on first use and rebuilt after a failed connection, so
    a server that is down at start-up fails pages, not the job.
    """

    name = "mineru-vlm"
    tier = "vlm"

    def __init__(self, config: PdfConfig) -> None:
        super().__init__(config)
        self._server_url: str | None = None
        self._client = None
        self.model = ""
        self.version = ""

    def setup(self) -> None:
        backend = getattr(getattr(self.config, "llm", None), "backend", "endpoint")
        if backend != "endpoint":
            raise ConfigError(
                f"--high-cost mineru-vlm sends pages to a server, not to --llm-backend {backend}: start "
                "`mineru-kit vlm-server` (vLLM serving MinerU2.5, port 30000) and pass "
                "--llm-endpoint http://HOST:30000/v1"
            )
        endpoint = str(_llm_setting(self.config, "endpoint", "llm_endpoint", "")).strip()
        if not endpoint:
            raise ConfigError(
                "--high-cost mineru-vlm needs the URL of an OpenAI-compatible server that serves a "
                "MinerU2.5 model: run `mineru-kit vlm-server` (or `vllm serve "
                "opendatalab/MinerU2.5-Pro-2605-1.2B`) on a GPU machine and pass "
                "--llm-endpoint http://HOST:30000/v1"
            )
        try:
            from mineru.config import VlmConfig
            from mineru_vl_utils import MinerUClient  # noqa: F401 - import check only
        except ImportError as exc:
            raise ConfigError(
                f"MinerU's VLM client cannot be imported ({exc}): pip install 'mineru>=4,<5', which "
                "brings mineru-vl-utils"
            ) from exc
        try:
            # MinerU's own normalisation: keeps a proxy path prefix, drops a trailing /v1.
            self._server_url = VlmConfig(server_url=endpoint).server_url
        except ValueError as exc:
            raise ConfigError(
                f"--llm-endpoint {endpoint!r} is not a usable server URL for MinerU: give "
                "http(s)://HOST:PORT[/prefix][/v1] without credentials or query"
            ) from exc
        self.model = str(_llm_setting(self.config, "model", "llm_model", ""))
        self.version = _versions() + (f";model={self.model}" if self.model else "")
        self._client = None

    def _connect(self):
        """MinerU's client, built once; its constructor asks the server for its models."""
        if self._client is not None:
            return self._client
        from mineru_vl_utils import MinerUClient

        timeout_s = float(_llm_setting(self.config, "timeout_s", None, self.config.page_timeout_s))
        headers = {}
        key_env = _llm_setting(self.config, "api_key_env", None, "")
        if key_env and os.environ.get(key_env, "").strip():
            headers["Authorization"] = f"Bearer {os.environ[key_env].strip()}"
        try:
            client = MinerUClient(
                backend="http-client",
                server_url=self._server_url,
                model_name=self.model or None,
                server_headers=headers,
                http_timeout=max(1, math.ceil(timeout_s)),
                max_retries=int(_llm_setting(self.config, "max_retries", None, DEFAULT_MAX_RETRIES)),
                retry_backoff_factor=float(_llm_setting(self.config, "backoff_s", None, DEFAULT_BACKOFF_S)),
                max_concurrency=int(_llm_setting(self.config, "max_concurrency", None,
                                                 DEFAULT_MAX_CONCURRENCY)),
                # As MinerU's own runtime builds it (mineru/model/vlm/runtime.py); figures are not
                # described (image_analysis is also off per call below).
                enable_table_formula_eq_wrap=True,
                enable_cross_page_table_merge=False,
                image_analysis=False,
                use_tqdm=False,
            )
        except Exception as exc:  # noqa: BLE001 - a down or wrong server fails pages, not the job
            raise _PageFailed(
                _classify(exc),
                f"MinerU VLM server {self._server_url} is not usable: {type(exc).__name__}: {exc}",
            ) from None
        if not self.model:
            self.model = str(getattr(client.client, "model_name", ""))
            self.version = _versions() + (f";model={self.model}" if self.model else "")
        self._client = client
        return client

    def parse_pages(self, pdf: PdfInput, pages: Sequence[int], doc_pages: int) -> dict[int, PageParse]:
        if self._server_url is None:
            self.setup()
        pages = list(pages)
        if not pages:
            return {}
        try:
            client = self._connect()
        except _PageFailed as exc:
            return {i: self._failed(pdf, i, doc_pages, exc.reason, exc.message) for i in pages}
        work = tempfile.mkdtemp(prefix="scicurate-mineru-vlm-")
        try:
            path = os.path.join(work, "doc.pdf")
            with open(path, "wb") as fh:
                fh.write(pdf.data)
            out: dict[int, PageParse] = {}
            for index in pages:  # one page at a time: a failure costs that page only
                started = time.perf_counter()
                try:
                    image = self._render(path, index, os.path.join(work, f"page-{index}.png"))
                    blocks = self._extract(client, image)
                except _PageFailed as exc:
                    out[index] = self._failed(pdf, index, doc_pages, exc.reason, exc.message)
                    continue
                out[index] = PageParse(
                    doc_id=pdf.doc_id, source=pdf.source, page_index=index, doc_pages=doc_pages,
                    parser=self.name, parser_version=self.version, tier=self.tier, status=STATUS_OK,
                    blocks=blocks, seconds=time.perf_counter() - started,
                )
            return out
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _render(self, pdf_path: str, index: int, png_path: str):
        """The page as an RGB PIL image, rendered in a child process under page_timeout_s."""
        from PIL import Image

        timeout = float(self.config.page_timeout_s)
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _RENDER_SCRIPT, pdf_path, str(index), png_path,
                 str(RENDER_DPI), str(RENDER_MAX_SIDE_PX)],
                capture_output=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            raise _PageFailed(REASON_PAGE_TIMEOUT, f"rendering page {index} took over {timeout:.0f} s") from None
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        if proc.returncode < 0:
            raise _PageFailed(REASON_PARSER_CRASH,
                              f"the render process died on page {index} (signal {-proc.returncode}): {stderr[-800:]}")
        if proc.returncode != 0:
            raise _PageFailed(REASON_PARSER_ERROR, f"rendering page {index} failed: {stderr[-800:]}")
        try:
            with Image.open(png_path) as img:
                return img.convert("RGB")
        except Exception as exc:  # noqa: BLE001
            raise _PageFailed(REASON_PARSER_ERROR, f"unreadable render of page {index}: {exc}") from None

    def _extract(self, client, image) -> tuple:
        from .lowcost import blocks_from_mineru_page

        try:
            result = client.two_step_extract(image, image_analysis=False)
        except Exception as exc:  # noqa: BLE001 - one page's server or parsing error fails that page
            raise _PageFailed(_classify(exc), f"MinerU VLM extraction failed: {type(exc).__name__}: {exc}") from None
        if not result:
            raise _PageFailed(
                REASON_PARSER_ERROR,
                "MinerU's VLM found no layout block on the page (is the server serving a MinerU2.5 model?)",
            )
        return blocks_from_mineru_page({"blocks": [dict(block) for block in result]})

    def _failed(self, pdf: PdfInput, index: int, doc_pages: int, reason: str, message: str) -> PageParse:
        return PageParse(
            doc_id=pdf.doc_id, source=pdf.source, page_index=index, doc_pages=doc_pages,
            parser=self.name, parser_version=self.version, tier=self.tier, status=STATUS_FAILED,
            error_reason=reason, error_message=message[:2000],
        )

    def teardown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.client._client.close()  # the sync httpx pool; per-call async pools close themselves
            except Exception:  # noqa: BLE001
                pass
