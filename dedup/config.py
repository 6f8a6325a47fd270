"""Validated configuration of the dedup stages: one frozen dataclass per stage.

`MinHashConfig` drives near-duplicate signatures (`dedup.minhash`) and their LSH banding
(`dedup.lsh`); `ExactConfig` drives exact (content-hash) dedup. Further stages (global
page-level graph dedup) add their own config here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

from scicurate.config import ConfigError

# Permutation schemes of datasketch 2.x: "affine32" is its default (uint32 values, odd-`a`
# affine maps mod 2^32 after a MurmurHash3 pre-mix); "legacy" is the pre-2.0 scheme
# ((a*h + b) mod (2^61 - 1), truncated to 32 bits, stored as uint64).
MINHASH_SCHEMES = ("affine32", "legacy")
# How shingles become 32-bit hashes: "sha1" = datasketch's `sha1_hash32` (identical signatures
# to `datasketch.MinHash`); "wordmix" = one blake2b per distinct word in a batch, combined per
# n-gram in numpy (same sketch statistics, different values: never mix the two in one index).
MINHASH_HASHES = ("sha1", "wordmix")


def _false_positive_area(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import quad

    area, _err = quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)
    return area


def _false_negative_area(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import quad

    area, _err = quad(lambda s: 1 - (1 - (1 - s ** float(r)) ** float(b)), threshold, 1.0)
    return area


@lru_cache(maxsize=64)
def optimal_bands_rows(threshold: float, num_perm: int, fp_weight: float = 0.5,
                       fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive + false-negative areas under the
    LSH S-curve `1 - (1 - s^r)^b`: datasketch's `lsh._optimal_param`, re-done here (same loop
    order, same scipy `quad`, same strict `<`) so an index built from our keys bands exactly as
    `MinHashLSH(threshold, num_perm)` would. Cached: the search integrates ~1.4k curves."""
    min_error = float("inf")
    opt = (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, int(num_perm / b) + 1):
            error = (_false_positive_area(threshold, b, r) * fp_weight
                     + _false_negative_area(threshold, b, r) * fn_weight)
            if error < min_error:
                min_error = error
                opt = (b, r)
    return opt


@dataclass(frozen=True, slots=True)
class MinHashConfig:
    """MinHash near-duplicate signatures and their LSH banding.

    The defaults target the near-duplicates a curation run must catch: copies of one text
    with up to ~20% of their words substituted, inserted or deleted (mirrors, re-crawls,
    OCR variants, light rewrites), at a false-candidate rate that stays affordable at
    billions of documents. `scicurate eval dedup --mutations` measures them (recall 0.998,
    precision 1.0 at 20% edits on synthetic text; 0.997 / 0.992 on real abstracts, where the
    misses of precision are genuine near-duplicates in the source). For the classic
    "same document, cosmetic edits" dedup of web corpora (C4/Gopher/datatrove: 5-grams at
    Jaccard ~0.75-0.8) use `STRICT` below.

    - `num_perm=128`: standard error of a Jaccard estimate is sqrt(J(1-J)/k) ~ 0.044 at
      J=0.4; 128 uint32 values = 512 bytes per document (never shuffled per band: see
      `transforms.NearDuplicateClusters`).
    - `ngram=2` word bigrams: 20% token edits leave a bigram Jaccard of ~0.53 (a 5-gram
      Jaccard of ~0.2, indistinguishable from texts on one topic), while unrelated texts
      share almost no bigrams (~2e-5 of unrelated real pairs even become LSH candidates).
      Unigrams would also reach the recall but make ~5x more false candidates (common words).
    - `seed=1`: datasketch's default, so permutations equal `datasketch.MinHash()`'s.
    - `threshold=0.4` (estimated Jaccard an LSH candidate must reach to become an edge).
    - `weights=(0.1, 0.9)`: (false-positive, false-negative) weights of the band/row choice,
      datasketch's `MinHashLSH(weights=...)`. Recall-heavy because every candidate is
      verified against `threshold` anyway, so a false candidate costs one comparison while a
      missed pair is lost for good: 42 x 3 at 0.4/128 (equal weights would give 32 x 4 and
      miss ~7% of 20%-edit copies).
    - `bands`/`rows` = 0/0 means "choose" with datasketch's optimal-parameter rule for
      (threshold, num_perm, weights).
    - `max_bucket=1000`: a band bucket of m ids yields m(m-1)/2 candidate pairs; above ~1000
      (~500k pairs) one Beam key becomes a straggler worker and memory hot spot. Such buckets
      are nearly always boilerplate (templates, cover pages, near-empty texts); they are split
      by salting (`lsh.salted_buckets`), which keeps every member connected.
    - `lowercase`, `strip_punct`: case and punctuation edits should not defeat dedup.
    - `scheme="affine32"`: datasketch 2.x's default permutation scheme ("legacy" for sketches
      made by datasketch < 2.0).
    - `hash="wordmix"`: one blake2b per distinct word, n-grams combined in numpy: 13.6x
      datasketch's per-document loop against 2.9x for "sha1" (bench/minhash_batch.py). Same
      permutations and statistics, so `to_lean` sketches work in datasketch's LSH indexes and
      Jaccard estimates; "sha1" gives values bit-identical to `datasketch.MinHash` for
      indexes that must mix with sketches datasketch made. Never mix the two in one index.
    - `chunk_bytes=8 MiB`: the (num_perm x shingles) block permuted at once; measured fastest
      at 2-8 MiB on a 2-core machine (cache-resident), slower at 32 MiB+, and it bounds memory.
    """

    num_perm: int = 128
    ngram: int = 2
    seed: int = 1
    threshold: float = 0.4
    weights: tuple[float, float] = (0.1, 0.9)
    bands: int = 0
    rows: int = 0
    max_bucket: int = 1000
    lowercase: bool = True
    strip_punct: bool = True
    scheme: str = "affine32"
    hash: str = "wordmix"
    chunk_bytes: int = 8 << 20

    def __post_init__(self) -> None:
        if not 1 <= self.num_perm <= 4096:
            raise ConfigError(f"MinHash num_perm must be in 1..4096; got {self.num_perm}")
        if not 1 <= self.ngram <= 64:
            raise ConfigError(f"MinHash ngram must be in 1..64 words; got {self.ngram}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"MinHash seed must be in 0..2^32-1 (numpy RandomState); got {self.seed}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"MinHash threshold is a Jaccard similarity in (0, 1); got {self.threshold}")
        if self.scheme not in MINHASH_SCHEMES:
            raise ConfigError(f"MinHash scheme must be one of {', '.join(MINHASH_SCHEMES)}; got {self.scheme!r}")
        if self.hash not in MINHASH_HASHES:
            raise ConfigError(f"MinHash hash must be one of {', '.join(MINHASH_HASHES)}; got {self.hash!r}")
        if self.max_bucket < 2:
            raise ConfigError(f"MinHash max_bucket must be at least 2; got {self.max_bucket}")
        if self.chunk_bytes < 4 * self.num_perm:
            raise ConfigError(f"MinHash chunk_bytes must hold at least one shingle ({4 * self.num_perm} bytes)")
        if (self.bands == 0) != (self.rows == 0):
            raise ConfigError("MinHash bands and rows are set together (or both left 0 to choose them)")
        weights = tuple(float(w) for w in self.weights)
        if len(weights) != 2 or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"MinHash weights are (false-positive, false-negative) >= 0, not both 0; "
                              f"got {self.weights!r}")
        object.__setattr__(self, "weights", weights)
        if self.bands == 0:
            bands, rows = optimal_bands_rows(float(self.threshold), self.num_perm, *weights)
            object.__setattr__(self, "bands", bands)
            object.__setattr__(self, "rows", rows)
        if self.bands < 1 or self.rows < 1 or self.bands * self.rows > self.num_perm:
            raise ConfigError(f"MinHash bands x rows must be positive and at most num_perm={self.num_perm}; "
                              f"got {self.bands} x {self.rows}")

    def replace(self, **changes) -> "MinHashConfig":
        """A copy with `changes`; bands/rows are re-chosen unless given."""
        if not {"bands", "rows"} & changes.keys():
            changes.update(bands=0, rows=0)
        return dataclasses.replace(self, **changes)


# Classic document dedup of web corpora: versions of one text with cosmetic edits (5-gram
# Jaccard >= 0.8, equal-weight banding 9 x 13: datasketch's MinHashLSH(0.8, 128)). Finds
# almost no copy with 10%+ token edits (see `scicurate eval dedup --mutations --ngram 5
# --threshold 0.8 --weights 0.5,0.5`), at ~1/30 of the default's false-candidate rate.
STRICT = MinHashConfig(ngram=5, threshold=0.8, weights=(0.5, 0.5))


@dataclass(frozen=True, slots=True)
class ExactConfig:
    """Exact dedup: `normalise=True` hashes the MinHash-normalised text (NFKC, case, punctuation,
    whitespace), so copies differing only in those still count as exact duplicates."""

    normalise: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.normalise, bool):
            raise ConfigError(f"ExactConfig.normalise must be a bool; got {self.normalise!r}")
