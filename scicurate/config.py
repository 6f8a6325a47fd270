"""Validated configuration of the PDF pipeline, with named presets.

App flags become fields here; every other command-line flag passes through to Beam's
PipelineOptions untouched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

TIERS = ("flash", "basic", "standard", "advanced")
# High-cost page parsers behind `parsers.high_cost.HighCostParser` ("" = none configured).
HIGH_COST_PARSERS = ("rapidocr", "vlm", "mineru-vlm")
# The high-cost parsers that call a vision-language model server through `PdfConfig.llm`.
VLM_PARSERS = ("vlm", "mineru-vlm")
# Where the LLM/VLM access layer sends requests (see `scicurate.llm`).
LLM_BACKENDS = ("endpoint", "embedded", "vllm")
# How a JSON schema reaches the server: OpenAI `response_format` json_schema (vLLM, OpenAI),
# llama.cpp's `json_object` + `schema` grammar, vLLM's legacy `guided_json`, or not at all.
STRUCTURED_MODES = ("auto", "json_schema", "llama_cpp", "guided_json", "none")


class ConfigError(ValueError):
    """A fatal configuration problem: raised at start-up, before any record is read."""


def read_yaml(path, what: str):
    """(parsed YAML, sha256 of the file's bytes) of a config file; ConfigError names `what`
    (e.g. "taxonomy") when the file cannot be read or is not YAML."""
    import hashlib
    from pathlib import Path

    import yaml

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {exc}") from None
    return data, hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class LlmConfig:
    """How one stage reaches its language model, and how hard it tries.

    Defaults and why:
    - `max_concurrency=4`: a vLLM server batches concurrent requests itself; 4 in flight per
      worker keeps a GPU busy without queueing minutes of work behind one slow worker. The
      embedded CPU server answers one request at a time, so more only queues.
    - `timeout_s=120`: a VLM transcribing a dense page emits ~1-2k tokens; at the ~30 tok/s of
      a loaded server that is about a minute. Twice that is a hung request.
    - `max_retries=4`, `backoff_s=0.5`: transient errors (timeouts, connection resets, 429,
      5xx) back off 0.5, 1, 2, 4 s (+ jitter): about 8 s, enough for a server restart.
    - `temperatures=(0.0, 0.2, 0.5)`: greedy first (deterministic); an invalid output (failed
      schema, repetition loop, broken LaTeX) is retried warmer, which breaks most loops.
    - `seed=0`: sent with every request, so a rerun asks the server for the same samples.
    """

    backend: str = "endpoint"
    endpoint: str = ""              # base URL of an OpenAI-compatible server, e.g. http://host:8000/v1
    model: str = ""                 # model name at the endpoint; embedded: smollm2 | gemma3 | a .gguf path
    api_key_env: str = "SCICURATE_LLM_API_KEY"   # read from the environment, never stored in config
    max_concurrency: int = 4
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = 0.5
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.5)
    max_tokens: int = 2048
    seed: int = 0
    structured: str = "auto"

    def __post_init__(self) -> None:
        if self.backend not in LLM_BACKENDS:
            raise ConfigError(f"LLM backend must be one of {', '.join(LLM_BACKENDS)}; got {self.backend!r}")
        if self.backend == "endpoint" and self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"--llm-endpoint must be an http(s) URL; got {self.endpoint!r}")
        if not 1 <= self.max_concurrency <= 256:
            raise ConfigError(f"LLM max_concurrency must be in 1..256; got {self.max_concurrency}")
        if self.timeout_s <= 0 or self.backoff_s < 0 or self.max_retries < 0:
            raise ConfigError("LLM timeout must be positive; retries and backoff non-negative")
        if not self.temperatures or any(not 0.0 <= t <= 2.0 for t in self.temperatures):
            raise ConfigError(f"LLM temperatures must be a non-empty list in [0, 2]; got {self.temperatures}")
        if self.max_tokens < 1:
            raise ConfigError("LLM max_tokens must be at least 1")
        if self.backend == "vllm" and not self.model:
            raise ConfigError("--llm-backend vllm needs --llm-model: a local model directory on the workers "
                              "(nothing is downloaded at run time)")
        if self.structured not in STRUCTURED_MODES:
            raise ConfigError(f"structured output mode must be one of {', '.join(STRUCTURED_MODES)}")

    @property
    def structured_mode(self) -> str:
        """The concrete way to send a JSON schema to this backend."""
        if self.structured != "auto":
            return self.structured
        return "llama_cpp" if self.backend == "embedded" else "json_schema"

    def replace(self, **changes) -> "LlmConfig":
        return dataclasses.replace(self, **changes)


# The embedded CPU model (`scicurate llm serve`): SmolLM2-135M, the smallest shipped GGUF.
EMBEDDED_LLM = LlmConfig(backend="embedded", model="smollm2", max_concurrency=1, max_tokens=256,
                         timeout_s=60.0)
# The small-LLM cleanup pass runs on Gemma-3-270M unless told otherwise: on 40 real pages with
# injected headers/footers (bench/vlm_cleanup_eval.py) it named 39% of them, SmolLM2 none.
CLEANUP_LLM = EMBEDDED_LLM.replace(model="gemma3")


def check_gpu_hint(hint: str, *llms: "LlmConfig | None") -> None:
    """An accelerator hint asks the runner for GPU workers for the stages that run vLLM inside
    the worker; with an endpoint the GPU is the server's, and no stage could use one."""
    if not hint:
        return
    if not any(llm is not None and llm.backend == "vllm" for llm in llms):
        raise ConfigError("--gpu-accelerator puts the in-worker vLLM stages on GPU workers: it needs "
                          "--llm-backend vllm (with --llm-endpoint the GPU is the server's, not a worker's)")
    if "type:" not in hint or "count:" not in hint:
        raise ConfigError(f"--gpu-accelerator {hint!r}: expected Beam's accelerator hint, e.g. "
                          "'type:nvidia-l4;count:1;install-nvidia-driver'")


def gpu_hinted(transform, hint: str, llm: "LlmConfig"):
    """`transform` with the accelerator resource hint when its model runs in the worker (vLLM)."""
    if hint and llm.backend == "vllm":
        return transform.with_resource_hints(accelerator=hint)
    return transform


@dataclass(frozen=True, slots=True)
class PdfConfig:
    """Everything the PDF pipeline decides by number.

    Defaults and why:
    - `window_pages=8`: MinerU's per-call overhead is ~30 ms against ~200-400 ms per page on the
      flash tier, so 8 pages keep overhead under 2% while a window's sub-PDF stays small.
    - `page_timeout_s=60`: flash parses a dense page in well under a second; a page that takes a
      minute is pathological (a font or content-stream bomb) and is dead-lettered.
    - `route_budget=0.05`: the Intern-S1 report sends "a few percent" of pages to the VLM.
    - `min_text_chars=16`: fewer text-layer characters than a short sentence means a scan.
    - `max_pages=20_000`, `max_bytes=1 GiB`: beyond any real paper or book; larger is hostile.
    - `parser_memory_mb=4096`: the address-space limit (RLIMIT_AS) of each PDFium/MinerU
      process. The flash tier peaks at ~1.5 GB of address space on real papers; a 4 MB PDF
      whose content stream inflates to 4 GB took 8.3 GB of RAM without the cap, and with it
      fails alone in 14 s (PDFium aborts: `parser_crash`, the message names the cap; a Python
      allocation past it is `out_of_memory`) while the process is restarted for the next page.
      The basic preset (ONNX models) allows 12 GiB.
    - `vlm_dpi=144`, `vlm_max_side_px=1600`: VLM OCR models (Qwen2.5-VL, olmOCR) are trained on
      page renders of ~1000-1600 px on the long side; 144 dpi puts a Letter page at 1584 px.
      Larger only costs visual tokens.
    - `max_fallback_rate=0.5`, `min_fallback_pages=2`: when the VLM fails on more than half of
      a document's routed pages (and on at least two), the document itself is the problem (a
      scan of a scan, a hostile file) and it is dead-lettered rather than shipped half-parsed;
      one unlucky page never costs a whole document.
    - Page dedup (`page_dedup=True`): a page whose near-duplicates (MinHash Jaccard >= 0.8 on
      word 3-grams) span `page_dedup_min_documents=2` or more documents is boilerplate (a
      copyright, licence or cover page) and is left out of every document's text. Pages under
      8 words are not compared (a lone heading is not evidence). When more than half of one
      document's pages would go (`page_dedup_max_doc_share=0.5`), the documents are copies of
      each other, not sharing boilerplate: that document keeps its pages (document-level
      near-dup is the tool for that case).
    - Document near-dup (`doc_dedup=True`): merged documents are clustered with
      `dedup.config.MinHashConfig()`'s defaults (word bigrams, estimated Jaccard >= 0.3: copies
      with up to ~20% of their words edited, e.g. two versions of one paper); every document
      but the cluster's smallest doc_id keeps its row with `duplicate_of` set, for readers to
      filter.
    - Quality controls (issue 8), each scored per page then thresholded in a separate stage:
      `garble=True` scores every page (`classifiers.garble`; lid.176 + wordfreq); pages at or
      above `garble_threshold=0.5` leave the document (`removed="garbled"`), and a document
      whose garbled pages hold `garble_document_share=0.5` of its characters goes to filtered/.
      `formula_check=True` parses every formula with KaTeX (needs Node.js and `npm ci`); broken
      ones are listed per page and the page gets a `reparse_reason`. `scistrings=True` wraps
      SMILES and sequences in `<SMILES>`/`<FASTA>` tags. `edu_model` (a `scicurate train edu`
      directory; "" = off, right for archive PDFs) scores documents 0-5 and filters those under
      `edu_threshold=2.5` (FineWeb-Edu keeps int(round(score)) >= 3). `tokenizer` counts the
      tokens each control removed for summary.json (smollm2: the shipped SmolLM2 vocabulary).
    - `resume=True`: parsed page windows and model answers are kept under `OUTPUT/_resume/`
      until the run finishes, so rerunning a killed run's command skips them (`scicurate.resume`).
    """

    tier: str = "flash"
    window_pages: int = 8
    max_pages: int = 20_000
    max_bytes: int = 1 << 30
    page_timeout_s: float = 60.0
    parser_memory_mb: int = 4096          # address-space cap of each parser process; 0 = none
    route_budget: float = 0.05
    quantile_epsilon: float = 0.001
    min_text_chars: int = 16
    ocr_without_text_layer: bool = True
    high_cost_parser: str = ""        # "" = none: routed pages keep low-cost text, needs_high_cost
    allow_model_download: bool = False
    num_shards: int = 1
    llm: LlmConfig = LlmConfig()          # the high-cost VLM's server (--llm-endpoint/--llm-model)
    vlm_dpi: int = 144
    vlm_max_side_px: int = 1600
    vlm_prompt: str = "vlm_page@1"        # pinned, so a rerun asks the same question
    vlm_cleanup: bool = False             # run the small-LLM cleanup pass on VLM pages
    cleanup_prompt: str = "cleanup@1"
    cleanup_llm: LlmConfig = CLEANUP_LLM
    max_fallback_rate: float = 0.5
    min_fallback_pages: int = 2
    page_dedup: bool = True
    page_dedup_min_documents: int = 2
    page_dedup_threshold: float = 0.8
    page_dedup_min_words: int = 8
    page_dedup_max_doc_share: float = 0.5
    doc_dedup: bool = True
    garble: bool = True
    garble_threshold: float = 0.5
    garble_document_share: float = 0.5
    formula_check: bool = True
    scistrings: bool = True
    edu_model: str = ""
    edu_threshold: float = 2.5
    tokenizer: str = "smollm2"
    resume: bool = True                   # keep finished work under OUTPUT/_resume until the run ends
    gpu_accelerator: str = ""             # Beam accelerator hint for the in-worker vLLM stages only

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ConfigError(f"tier must be one of {', '.join(TIERS)}; got {self.tier!r}")
        if not 1 <= self.window_pages <= 256:
            raise ConfigError(f"window_pages must be in 1..256; got {self.window_pages}")
        if self.max_pages < 1:
            raise ConfigError("max_pages must be at least 1")
        if self.max_bytes < 1024:
            raise ConfigError("max_bytes must be at least 1 KiB")
        if self.page_timeout_s <= 0:
            raise ConfigError("page_timeout_s must be positive")
        if self.parser_memory_mb and self.parser_memory_mb < 1024:
            raise ConfigError("parser_memory_mb must be 0 (no cap) or at least 1024: MinerU needs ~1.5 GB")
        if not 0.0 <= self.route_budget <= 1.0:
            raise ConfigError(f"route_budget is a fraction of pages in [0, 1]; got {self.route_budget}")
        if not 0.0 < self.quantile_epsilon < 0.1:
            raise ConfigError("quantile_epsilon must be in (0, 0.1)")
        if self.min_text_chars < 0:
            raise ConfigError("min_text_chars must be >= 0")
        if self.num_shards < 1:
            raise ConfigError("num_shards must be at least 1")
        if self.high_cost_parser and self.high_cost_parser not in HIGH_COST_PARSERS:
            raise ConfigError(
                f"unknown high-cost parser {self.high_cost_parser!r}; available: "
                f"{', '.join(HIGH_COST_PARSERS)}. Without --high-cost, routed pages keep their "
                "low-cost text and are marked needs_high_cost=true for a later --reparse-flagged run."
            )
        if self.high_cost_parser in VLM_PARSERS and self.llm.backend == "endpoint" and not self.llm.endpoint:
            raise ConfigError(
                f"--high-cost {self.high_cost_parser} needs a vision-language model server: pass "
                "--llm-endpoint URL --llm-model NAME (e.g. `vllm serve Qwen/Qwen2.5-VL-7B-Instruct` "
                "on a GPU machine), or --llm-backend vllm on GPU workers. The embedded CPU models "
                "(SmolLM2, Gemma-3-270M) read text only and cannot parse page images."
            )
        if self.high_cost_parser in VLM_PARSERS and self.llm.backend == "embedded":
            raise ConfigError("the embedded CPU models read text only; the VLM parser needs "
                              "--llm-endpoint or --llm-backend vllm")
        if self.vlm_dpi < 36 or self.vlm_max_side_px < 256:
            raise ConfigError("vlm_dpi must be >= 36 and vlm_max_side_px >= 256")
        if self.page_dedup_min_documents < 2 or not 0.0 < self.page_dedup_threshold <= 1.0:
            raise ConfigError("page_dedup_min_documents must be >= 2 and page_dedup_threshold in (0, 1]")
        if self.page_dedup_min_words < 1 or not 0.0 < self.page_dedup_max_doc_share <= 1.0:
            raise ConfigError("page_dedup_min_words must be >= 1 and page_dedup_max_doc_share in (0, 1]")
        if not 0.0 <= self.max_fallback_rate <= 1.0 or self.min_fallback_pages < 1:
            raise ConfigError("max_fallback_rate must be in [0, 1] and min_fallback_pages >= 1")
        if not 0.0 < self.garble_threshold <= 1.0 or not 0.0 < self.garble_document_share <= 1.0:
            raise ConfigError("garble_threshold and garble_document_share must be in (0, 1]")
        if not 0.0 <= self.edu_threshold <= 5.0:
            raise ConfigError(f"edu_threshold is on the 0-5 education scale; got {self.edu_threshold}")
        if not self.tokenizer:
            raise ConfigError("tokenizer must be smollm2 (default), words, or a tokenizer.json path")
        check_gpu_hint(self.gpu_accelerator, self.llm, self.cleanup_llm if self.vlm_cleanup else None)

    @property
    def vlm_endpoint(self) -> bool:
        """Routed pages go to a VLM server at --llm-endpoint (checked at start-up)."""
        return self.high_cost_parser in VLM_PARSERS and self.llm.backend == "endpoint"

    def replace(self, **changes) -> "PdfConfig":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, PdfConfig] = {
    # Runs anywhere: no models at all.
    "flash": PdfConfig(tier="flash"),
    # MinerU's ONNX model set must be installed locally (`mineru-models-download` on a machine
    # with network access, then MINERU_MODEL_SOURCE=local).
    "basic": PdfConfig(tier="basic", page_timeout_s=180.0, parser_memory_mb=12288),
}
