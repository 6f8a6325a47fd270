"""Validated configuration of the PDF pipeline, with named presets.

App flags become fields here; every other command-line flag passes through to Beam's
PipelineOptions untouched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

TIERS = ("flash", "basic", "standard", "advanced")
# High-cost page parsers behind `parsers.high_cost.HighCostParser` ("" = none configured).
HIGH_COST_PARSERS = ("rapidocr",)


class ConfigError(ValueError):
    """A fatal configuration problem: raised at start-up, before any record is read."""


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
    """

    tier: str = "flash"
    window_pages: int = 8
    max_pages: int = 20_000
    max_bytes: int = 1 << 30
    page_timeout_s: float = 60.0
    route_budget: float = 0.05
    quantile_epsilon: float = 0.001
    min_text_chars: int = 16
    ocr_without_text_layer: bool = True
    high_cost_parser: str = ""        # "" = none: routed pages keep low-cost text, needs_high_cost
    allow_model_download: bool = False
    num_shards: int = 1

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
                f"{', '.join(HIGH_COST_PARSERS)}. The VLM page parser arrives with the LLM/VLM "
                "access layer; without --high-cost-parser, routed pages keep their low-cost text "
                "and are marked needs_high_cost=true for a later run."
            )

    def replace(self, **changes) -> "PdfConfig":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, PdfConfig] = {
    # Runs anywhere: no models at all.
    "flash": PdfConfig(tier="flash"),
    # MinerU's ONNX model set must be installed locally (`mineru-models-download` on a machine
    # with network access, then MINERU_MODEL_SOURCE=local).
    "basic": PdfConfig(tier="basic", page_timeout_s=180.0),
}
