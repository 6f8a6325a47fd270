"""Config and records of `scicurate run recall` (taxonomy recall, step 6).

    pool row ─ PoolDoc ─ ScoredDoc (scores per model) ─ Decision (thresholds applied)
        ─ recalled: RecalledDoc (domain, taxonomy path) | filtered: RecallFiltered (reason)
    failures anywhere: RecallDeadLetter (stage, reason, message)

Every pool row ends in exactly one of recalled/, filtered/ or dead_letter/.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from scicurate.config import EMBEDDED_LLM, ConfigError, LlmConfig

COMBINES = ("all", "any")
ID_FIELDS = ("id", "doc_id", "page_id")       # the first present names a pool row
DEFAULT_MAX_TEXT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the driver read from a model's card before the run: the thresholds the separate
    threshold stage applies, and each domain's validation precision (for the purity estimate)."""

    model_dir: str
    name: str
    labels: tuple[str, ...]
    thresholds: tuple[tuple[str, float], ...]          # (domain, threshold)
    precision: tuple[tuple[str, float], ...]           # (domain, validation precision at it)
    met_target: tuple[tuple[str, bool], ...]           # (domain, threshold reached the target precision)


@dataclass(frozen=True, slots=True)
class RecallRunConfig:
    """One validated config for a recall run.

    `combine`: with several models, `all` recalls a text for a domain only when every model
    passes its threshold (purity first), `any` when one does (recall first). `thresholds`
    overrides a card's threshold per domain without re-scoring anything. A domain whose card
    threshold missed its target precision is not recalled unless `allow_unmet` (its recalled
    share would be noise; the summary says which domains were held back and why).
    `spot_check`: recalled texts per domain the LLM re-labels with the annotation prompt, the
    measured half of the purity report (0 turns it off). `candidate_share` / `candidate_min_pages`:
    DeepSeekMath's iterative rule, a URL domain whose recalled share for a target domain is
    above the share (with at least that many pages) offers its other pages as seed candidates
    for the next round."""

    models: tuple[ModelInfo, ...]
    domains: tuple[str, ...] = ()                      # targets to recall; () = every target the models score
    combine: str = "all"
    thresholds: tuple[tuple[str, float], ...] = ()     # overrides of the cards' thresholds
    allow_unmet: bool = False
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    batch_size: int = 256
    spot_check: int = 8
    llm: LlmConfig = EMBEDDED_LLM
    seed: int = 0
    candidate_share: float = 0.1
    candidate_min_pages: int = 5
    round: int = 1
    num_shards: int = 1

    def __post_init__(self) -> None:
        if not self.models:
            raise ConfigError("a recall run needs at least one --model DIR")
        if self.combine not in COMBINES:
            raise ConfigError(f"combine must be one of {', '.join(COMBINES)}; got {self.combine!r}")
        for domain, value in self.thresholds:
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"threshold of {domain} must be in [0, 1]; got {value}")
        if self.max_text_bytes < 1 or self.batch_size < 1 or self.num_shards < 1 or self.round < 1:
            raise ConfigError("max_text_bytes, batch_size, num_shards and round must be >= 1")
        if self.spot_check < 0 or self.candidate_min_pages < 1 or not 0.0 < self.candidate_share <= 1.0:
            raise ConfigError("spot_check must be >= 0, candidate_min_pages >= 1, candidate_share in (0, 1]")
        unknown = [d for d in self.domains if not any(d in m.labels for m in self.models)]
        if unknown:
            raise ConfigError(f"domains {unknown} are not scored by the models (labels: "
                              f"{sorted({l for m in self.models for l in m.labels})})")

    def replace(self, **changes: Any) -> "RecallRunConfig":
        return dataclasses.replace(self, **changes)

    def targets(self) -> tuple[str, ...]:
        """The domains this run recalls, sorted."""
        scored = sorted({label for m in self.models for label in m.labels if label != "other"})
        return tuple(d for d in scored if not self.domains or d in self.domains)

    def threshold(self, model: ModelInfo, domain: str) -> float | None:
        """The threshold the run applies for `model` and `domain`; None when the domain is held
        back (no threshold, or a card threshold that missed its target precision)."""
        override = dict(self.thresholds)
        if domain in override:
            return override[domain]
        value = dict(model.thresholds).get(domain)
        if value is None or (not dict(model.met_target).get(domain, False) and not self.allow_unmet):
            return None
        return value

    def held_back(self) -> dict[str, str]:
        """Domains no text can be recalled for, with the reason (shown in the summary)."""
        out = {}
        for domain in self.targets():
            missing = [m.name for m in self.models if self.threshold(m, domain) is None]
            if missing and (self.combine == "all" or len(missing) == len(self.models)):
                out[domain] = f"threshold missed its target precision or is missing in {', '.join(missing)}"
        return out


@dataclass(frozen=True, slots=True)
class PoolDoc:
    doc_id: str
    text: str
    url: str
    url_domain: str             # registered domain of the URL; "" without one
    source: str                 # input file


@dataclass(frozen=True, slots=True)
class ScoredDoc:
    doc: PoolDoc
    scores: tuple[tuple[str, Mapping[str, float]], ...] = ()     # (model name, {label: P}) per model

    def add(self, model: str, scores: Mapping[str, float]) -> "ScoredDoc":
        return ScoredDoc(self.doc, self.scores + ((model, dict(scores)),))


@dataclass(frozen=True, slots=True)
class Decision:
    """A scored text after the threshold stage: `domain` is the recalled target ("" when none);
    `passing` every target that passed; `best_domain`/`best_score` the top target by mean score
    across models, kept for the filtered rows so a reader sees how close a text came."""

    scored: ScoredDoc
    domain: str
    passing: tuple[str, ...]
    best_domain: str
    best_score: float


@dataclass(frozen=True, slots=True)
class RecalledDoc:
    decision: Decision
    path: tuple[str, ...]
    path_score: float

    def __post_init__(self) -> None:
        if not self.path or self.path[0] != self.decision.domain:
            raise ValueError(f"path {self.path} does not start at the recalled domain {self.decision.domain!r}")


@dataclass(frozen=True, slots=True)
class RecallFiltered:
    doc_id: str
    url: str
    url_domain: str
    source: str
    stage: str
    reason: str
    best_domain: str = ""
    best_score: float = 0.0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RecallDeadLetter:
    doc_id: str
    source: str
    stage: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class UrlDomainStats:
    """Recall per URL domain: pages scored, pages recalled per target, and the targets whose
    recalled share makes the domain's other pages seed candidates."""

    url_domain: str
    pages: int
    recalled: tuple[tuple[str, int], ...]
    hot: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SpotCheck:
    doc_id: str
    domain: str
    verdict: str               # yes | no | failed
    path: tuple[str, ...] = ()
    reason: str = ""
    prompt: str = ""
    model: str = ""


@dataclass(frozen=True, slots=True)
class SeedCandidate:
    doc_id: str
    text: str
    url: str
    url_domain: str
    domains: tuple[str, ...]          # the hot targets of its URL domain
    shares: tuple[float, ...]         # their recalled shares, same order
    round: int = field(default=1)
