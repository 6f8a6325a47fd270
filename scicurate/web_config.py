"""Validated configuration of the web triage pipeline (`scicurate run web`).

Each stage owns its config dataclass in its own module (`ExtractConfig`, `RuleConfig`,
`LineDedupConfig`, `MinHashConfig`, `TriageConfig`, `VerdictConfig`, `RewriteConfig`);
`WebConfig` gathers them with the pipeline's own numbers, and `WEB_PRESETS` names a few.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from scicurate.classifiers.rewrite import RewriteConfig
from scicurate.classifiers.triage import TriageConfig, VerdictConfig
from scicurate.classifiers.web_rules import PRESETS as RULE_PRESETS
from scicurate.classifiers.web_rules import RuleConfig
from scicurate.config import EMBEDDED_LLM, ConfigError, LlmConfig
from scicurate.dedup.config import STRICT, MinHashConfig
from scicurate.dedup.lines import LineDedupConfig
from scicurate.parsers.html_extract import ExtractConfig

SMALL_DOMAIN_VERDICTS = ("retain", "discard")
# The triage agent and the rewriter on the embedded CPU model unless an endpoint is given.
# SmolLM2-135M answers a triage prompt in ~1-3 s on one CPU core with grammar-constrained JSON.
WEB_AGENT_LLM = EMBEDDED_LLM.replace(max_tokens=200)


@dataclass(frozen=True, slots=True)
class WebConfig:
    """Everything the web pipeline decides by number.

    Defaults and why:
    - `max_body_bytes=10 MiB` at read time, `extract.max_body_bytes` (5 MiB) at extraction: a
      real article's HTML is 50-500 KB; multi-megabyte bodies are feeds, dumps or hostile.
    - `extract_batch=16`: pages go to the extraction children in batches, so `extract.workers`
      children stay busy while the Beam worker waits on one call.
    - `languages=()`: keep every language (the suite curates scientific text in many
      languages; lid.176 still labels each page). Set e.g. ("en", "zh") to keep only those,
      with `min_lang_score` the least lid.176 probability for a page to count as that language.
    - `rules`: `classifiers.web_rules` presets; "default" is datatrove's Gopher + C4 + FineWeb
      thresholds, "lenient" relaxes the ones that hurt formulas and code.
    - `min_quality=0.0`, `drop_formats=("navigation",)`: thresholds of the project's fastText
      quality and format models; they only apply when `quality_model` / `format_model` point
      at models trained by `scicurate train web-classifiers` (a first run has none).
    - `edu_model=""`, `min_edu=2.5`: the education scorer (`scicurate train edu`), off until
      given; pages scored below 2.5 on the 0-5 scale go to filtered/ as `low_education`
      (FineWeb-Edu keeps int(round(score)) >= 3).
    - `near=dedup.config.STRICT`: word 5-grams at estimated Jaccard 0.8, the usual web setting
      (mirrors and syndicated copies), not the looser document default.
    - `sample_per_domain=200`, `sample_share=0.1`, `sample_min=16`: the agent reads 10% of a
      domain's pages, at least 16 and at most 200 (`triage.sample_size`). The Intern-S1 report
      samples "hundreds" of pages per large domain; 200 tags estimate a share to within about
      +-7 points (95%). A fixed 200 would read every page of the many domains with 5-200 pages
      (measured on synthetic 1M-page crawls with Zipf domain sizes, `bench/web_llm_calls.py`:
      317-454 calls per 1,000 pages, against 150-240 with the share); 16 tags bound one page's
      weight in any share to 1/16. `sample_share=1` reads up to `sample_per_domain` pages.
    - `min_domain_pages=5`, `small_domain_verdict="retain"`: a domain with fewer kept pages is
      not sent to the agent. Its pages were judged one by one by the page filters; an agent
      call per page of the long tail of one-page domains would cost an LLM call per page,
      which is what domain triage exists to avoid. "discard" drops the long tail instead.
    - `agent=True`: the triage agent runs; False skips every LLM call (verdicts then say
      `no_agent` and follow `small_domain_verdict`), for runs without a model server.
    - `rewrite=True`: pages of `rewrite` domains go through the rewriter with its guards.
    - `join_shards=16`: verdicts are joined to pages on (domain, shard of page_id), so one
      join group holds ~1/16 of a large domain's pages, never the whole domain.
    """

    max_body_bytes: int = 10 << 20
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    extract_batch: int = 16
    exact_dedup: bool = True
    line_dedup: LineDedupConfig | None = field(default_factory=LineDedupConfig)
    rules: RuleConfig = field(default_factory=lambda: RULE_PRESETS["default"])
    rules_preset: str = "default"
    languages: tuple[str, ...] = ()
    min_lang_score: float = 0.0
    quality_model: str = ""
    min_quality: float = 0.0
    format_model: str = ""
    edu_model: str = ""
    min_edu: float = 2.5
    drop_formats: tuple[str, ...] = ("navigation",)
    near_dedup: bool = True
    near: MinHashConfig = STRICT
    sample_per_domain: int = 200
    sample_share: float = 0.1
    sample_min: int = 16
    min_domain_pages: int = 5
    small_domain_verdict: str = "retain"
    seed: int = 0
    agent: bool = True
    triage: TriageConfig = field(default_factory=TriageConfig)
    verdict: VerdictConfig = field(default_factory=VerdictConfig)
    rewrite: bool = True
    rewriter: RewriteConfig = field(default_factory=RewriteConfig)
    llm: LlmConfig = WEB_AGENT_LLM
    rewrite_llm: LlmConfig = EMBEDDED_LLM.replace(max_tokens=2048, timeout_s=300.0)
    join_shards: int = 16
    num_shards: int = 1
    resume: bool = True     # keep model answers under OUTPUT/_resume until the run ends (scicurate.resume)
    gpu_accelerator: str = ""   # Beam accelerator hint for the in-worker vLLM stages only

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes must be at least 1 KiB")
        if not 1 <= self.extract_batch <= 1024:
            raise ConfigError(f"extract_batch must be in 1..1024; got {self.extract_batch}")
        if any(not isinstance(code, str) or not code for code in self.languages):
            raise ConfigError(f"languages must be ISO codes such as 'en'; got {self.languages!r}")
        if not 0.0 <= self.min_edu <= 5.0:
            raise ConfigError(f"min_edu is on the 0-5 education scale; got {self.min_edu}")
        if not 0.0 <= self.min_lang_score <= 1.0 or not 0.0 <= self.min_quality <= 1.0:
            raise ConfigError("min_lang_score and min_quality are probabilities in [0, 1]")
        if self.sample_per_domain < 1 or self.sample_min < 1:
            raise ConfigError("sample_per_domain and sample_min must be at least 1")
        if not 0.0 < self.sample_share <= 1.0:
            raise ConfigError(f"sample_share is a fraction in (0, 1]; got {self.sample_share}")
        if self.min_domain_pages < 1:
            raise ConfigError("min_domain_pages must be at least 1")
        if self.small_domain_verdict not in SMALL_DOMAIN_VERDICTS:
            raise ConfigError(f"small_domain_verdict must be one of {SMALL_DOMAIN_VERDICTS}")
        if self.join_shards < 1 or self.num_shards < 1:
            raise ConfigError("join_shards and num_shards must be at least 1")
        if self.rewrite and self.agent and self.rewrite_llm.backend == "vllm" and not self.rewrite_llm.model:
            raise ConfigError("the rewriter on --llm-backend vllm needs a model")
        from scicurate.config import check_gpu_hint

        check_gpu_hint(self.gpu_accelerator, self.llm if self.agent else None,
                       self.rewrite_llm if self.agent and self.rewrite else None)

    def replace(self, **changes) -> "WebConfig":
        return dataclasses.replace(self, **changes)


WEB_PRESETS: dict[str, WebConfig] = {
    # Gopher/C4/FineWeb thresholds as datatrove ships them.
    "default": WebConfig(),
    # Scientific sites: formulas and code are content, not symbol noise.
    "science": WebConfig(rules=RULE_PRESETS["lenient"], rules_preset="lenient"),
}
