"""The export's mixture: a YAML file of target shares, read and validated, and the pure arithmetic
that turns available tokens into copies per document.

    mixture.yaml -> Mixture (load_mixture)
    available tokens per (domain, source) cell + Mixture -> budget, cell targets (cell_targets)
    one cell's documents + its target -> copies per document (allocate_cell)

A mixture file (every key but `domains` optional; shares are fractions that sum to 1):

    seed: 0                    # shuffle and sampling seed
    budget_tokens: null        # null: the largest budget every domain with data fills within max_repeats
    max_repeats: 2             # upsampling cap: copies of one document (1 = never repeat)
    tolerance: 0.02            # |achieved share - target share| a domain may miss by
    domains:                   # level-1 taxonomy ids, plus `unlabelled` (no recall label);
                               # or `domains: natural`: every domain as the data has it
      mathematics: 0.2
      physics: 0.2
      ...
    sources: {pdf: 0.5, web: 0.3, recall: 0.2}   # optional: within each domain
    shard: {target_tokens: 50000000, row_group_rows: 1000}   # or target_rows
    dedup: {near: true, prefer: [pdf, web, recall], min_tokens: 50}
    scistring_tokens: true     # count the tokens inside <SMILES>/<FASTA> tags separately

How targets are set (`cell_targets`): a domain's target is `share × budget`. Without `sources`
a domain is one cell (its sources in their natural proportions). With `sources`, the domain's
target is split over the sources that have data in that domain, by their shares renormalised
over those sources: the domain share holds wherever data suffices, and the source shares hold
overall when every domain has every source.

`domains: natural` takes every domain (unlabelled included) in the proportions the data has:
each cell's share is its share of the available tokens, the budget defaults to all of them, so
with no budget every document is taken once; a budget below that downsamples every cell alike.

How a cell is filled (`allocate_cell`): with `f = target / available`, every document gets
`min(floor(f), max_repeats)` copies; the remainder goes one more copy per document in the
seeded hash order, a document taken when that brings the cell nearer its target (so a cell
misses by at most half of one document). Downsampling (`f < 1`) is the same rule with zero
base copies. A cell whose target needs more than `max_repeats` copies takes `max_repeats` of
every document and is reported `short`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence


from scicurate.config import ConfigError, read_yaml

UNLABELLED = "unlabelled"
SOURCES = ("pdf", "web", "recall")
ALL_SOURCES = "*"
SHARE_EPSILON = 1e-6


def _domain_ids() -> tuple[str, ...]:
    from scicurate.classifiers import taxonomy

    return tuple(node.id for node in taxonomy.default().level1())


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """Shard size: exactly one of `target_tokens` / `target_rows`; `row_group_rows` rows per
    Parquet row group (a streaming reader holds one row group at a time)."""

    target_tokens: int | None = 50_000_000
    target_rows: int | None = None
    row_group_rows: int = 1000

    def __post_init__(self) -> None:
        if (self.target_tokens is None) == (self.target_rows is None):
            raise ConfigError("mixture shard: give exactly one of target_tokens and target_rows")
        for name in ("target_tokens", "target_rows", "row_group_rows"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"mixture shard.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True, slots=True)
class DedupSpec:
    """Cross-source dedup: exact (normalised text) always; near (MinHash-LSH) when `near`. In a
    group of duplicates the kept document is the first by (rank of its source in `prefer`,
    most tokens, smallest id). `min_tokens`: near dedup compares only documents at least this
    long: the MinHash defaults (word bigrams, Jaccard >= 0.3) are tuned for 20% edits of real
    documents, and two one-line claims sharing a phrase ("sea level rise is not ...") cross
    that bar without being copies; exact dedup still covers short texts."""

    near: bool = True
    prefer: tuple[str, ...] = SOURCES
    min_tokens: int = 50

    def __post_init__(self) -> None:
        if not isinstance(self.min_tokens, int) or self.min_tokens < 0:
            raise ConfigError(f"mixture dedup.min_tokens must be an integer >= 0, got {self.min_tokens!r}")
        if sorted(self.prefer) != sorted(SOURCES):
            raise ConfigError(f"mixture dedup.prefer must order exactly {list(SOURCES)}, got {list(self.prefer)}")


@dataclass(frozen=True, slots=True)
class Mixture:
    domains: tuple[tuple[str, float], ...]
    sources: tuple[tuple[str, float], ...] = ()
    budget_tokens: int | None = None
    max_repeats: int = 2
    seed: int = 0
    tolerance: float = 0.02
    shard: ShardSpec = field(default_factory=ShardSpec)
    dedup: DedupSpec = field(default_factory=DedupSpec)
    scistring_tokens: bool = True
    natural: bool = False               # `domains: natural` (then `domains` is empty)

    def __post_init__(self) -> None:
        known = set(_domain_ids()) | {UNLABELLED}
        if self.natural:
            if self.domains:
                raise ConfigError("mixture: domains is either `natural` or a mapping of shares, not both")
        else:
            _check_shares("domains", self.domains, known)
        if self.sources:
            _check_shares("sources", self.sources, set(SOURCES))
        if self.budget_tokens is not None and (not isinstance(self.budget_tokens, int) or self.budget_tokens < 1):
            raise ConfigError(f"mixture budget_tokens must be a positive integer or null, got {self.budget_tokens!r}")
        if not isinstance(self.max_repeats, int) or self.max_repeats < 1:
            raise ConfigError(f"mixture max_repeats must be an integer >= 1, got {self.max_repeats!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"mixture seed must be an integer, got {self.seed!r}")
        if not 0 <= self.tolerance < 1:
            raise ConfigError(f"mixture tolerance must be in [0, 1), got {self.tolerance!r}")

    def domain_share(self, domain: str, natural: Mapping[str, float] | None = None) -> float:
        """The target share of `domain`; a natural mixture's comes from `natural` (the data's)."""
        if self.natural:
            return (natural or {}).get(domain, 0.0)
        return dict(self.domains).get(domain, 0.0)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["domains"] = "natural" if self.natural else dict(self.domains)
        out["sources"] = dict(self.sources)
        out["dedup"]["prefer"] = list(self.dedup.prefer)
        return out


def _check_shares(name: str, shares: Sequence[tuple[str, float]], known: set[str]) -> None:
    if not shares:
        raise ConfigError(f"mixture {name}: give at least one share")
    for key, value in shares:
        if key not in known:
            raise ConfigError(f"mixture {name}: unknown {key!r} (known: {', '.join(sorted(known))})")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"mixture {name}.{key}: a share must be a number >= 0, got {value!r}")
    total = sum(v for _, v in shares)
    if abs(total - 1.0) > 1e-3:
        raise ConfigError(f"mixture {name}: shares must sum to 1, they sum to {total:.6g}")


def mixture_from_dict(data: Any, where: str = "mixture") -> Mixture:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    allowed = {"domains", "sources", "budget_tokens", "max_repeats", "seed", "tolerance", "shard", "dedup",
               "scistring_tokens"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown} (allowed: {sorted(allowed)})")

    def shares(key: str) -> tuple[tuple[str, float], ...]:
        value = data.get(key) or {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: {key} must map names to shares")
        return tuple(sorted((str(k), v) for k, v in value.items()))

    try:
        shard_raw = dict(data.get("shard") or {})
        if "target_rows" in shard_raw and "target_tokens" not in shard_raw:
            shard_raw["target_tokens"] = None          # rows given: the token default steps aside
        shard = ShardSpec(**shard_raw)
        dedup_raw = dict(data.get("dedup") or {})
        if "prefer" in dedup_raw:
            dedup_raw["prefer"] = tuple(dedup_raw["prefer"])
        dedup = DedupSpec(**dedup_raw)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    natural = data.get("domains") == "natural"
    return Mixture(domains=() if natural else shares("domains"), natural=natural, sources=shares("sources"), budget_tokens=data.get("budget_tokens"),
                   max_repeats=data.get("max_repeats", 2), seed=data.get("seed", 0),
                   tolerance=data.get("tolerance", 0.02), shard=shard, dedup=dedup,
                   scistring_tokens=bool(data.get("scistring_tokens", True)))


def load_mixture(path: str | Path) -> tuple[Mixture, str]:
    """The mixture in `path` and the sha256 of its bytes; ConfigError says what is wrong."""
    data, digest = read_yaml(path, "the mixture file")
    return mixture_from_dict(data, str(path)), digest


# ---- targets and allocation (pure) -----------------------------------------------------------

Cell = tuple[str, str]          # (domain, source), source ALL_SOURCES when the mixture has no sources


def cell_of(mixture: Mixture, domain: str, source: str) -> Cell:
    return (domain, source if mixture.sources else ALL_SOURCES)


def cell_shares(mixture: Mixture, available: Mapping[Cell, int]) -> dict[Cell, float]:
    """The target share of the whole budget for every cell with data (see the module docstring);
    cells of domains outside the mixture get 0."""
    out: dict[Cell, float] = {}
    if mixture.natural:
        total = sum(available.values())
        return {c: (a / total if total else 0.0) for c, a in available.items()}
    source_weight = dict(mixture.sources)
    for domain, share in mixture.domains:
        cells = [c for c in available if c[0] == domain and available[c] > 0]
        if not cells:
            continue
        if mixture.sources:
            weights = {c: source_weight.get(c[1], 0.0) for c in cells}
            total = sum(weights.values())
            for c in cells:
                out[c] = share * weights[c] / total if total > 0 else 0.0
        else:
            for c in cells:
                out[c] = share
    for c in available:
        out.setdefault(c, 0.0)
    return out


def budget_for(mixture: Mixture, available: Mapping[Cell, int], shares: Mapping[Cell, float]) -> int:
    """`budget_tokens`, or when null the largest budget every cell with a share and data fills
    within `max_repeats` copies (0 when no cell has both)."""
    if mixture.budget_tokens is not None:
        return mixture.budget_tokens
    if mixture.natural:
        return sum(available.values())
    limits = [mixture.max_repeats * available[c] / s for c, s in shares.items() if s > SHARE_EPSILON and available[c] > 0]
    return int(math.floor(min(limits))) if limits else 0


def sample_key(seed: int, item_id: str) -> int:
    """A document's place in the seeded order: the first 8 bytes of sha256(seed:id)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{item_id}".encode()).digest()[:8], "big")


@dataclass(frozen=True, slots=True)
class CellResult:
    available: int          # tokens of the cell's documents
    target: float           # tokens asked for
    achieved: int           # tokens of the copies taken
    documents: int          # documents with at least one copy
    copies: int             # rows: all copies
    short: bool             # the cap (max_repeats) kept it from its target


def allocate_cell(docs: Sequence[tuple[int, int, int]], target: float, max_repeats: int) -> tuple[dict[int, int], CellResult]:
    """`docs` as (sample key, tokens, index); returns {index: copies} for documents with copies
    and the cell's result (module docstring)."""
    available = sum(t for _, t, _ in docs)
    if available <= 0 or target <= 0:
        return {}, CellResult(available, float(target), 0, 0, 0, short=target > 0)
    factor = target / available
    base = min(int(math.floor(factor)), max_repeats)
    copies = {i: base for _, _, i in docs} if base else {}
    achieved = base * available
    remaining = target - achieved
    short = factor > max_repeats
    if base < max_repeats and remaining > 0:
        taken = 0
        for _key, tokens, index in sorted(docs):
            if tokens <= 0:
                continue
            if abs(remaining - (taken + tokens)) < abs(remaining - taken):
                taken += tokens
                copies[index] = copies.get(index, 0) + 1
        achieved += taken
    copies = {i: c for i, c in copies.items() if c > 0}
    return copies, CellResult(available, float(target), achieved, len(copies), sum(copies.values()), short)
