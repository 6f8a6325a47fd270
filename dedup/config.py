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
# to `datasketch.MinHash`); "wordmix" = polynomial word hashes over the batch's byte buffer,
# folded per n-gram, all in numpy (same sketch statistics, different values: never mix the two in one index).
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
    OCR variants, light rewrites), at a false-candidate rate that stays affordable at scale.
    `scicurate eval dedup --mutations` measures them: at 20% edits recall 0.984 / precision
    1.0 on synthetic text, 0.992 / 0.996 on real abstracts and news (the only false pair is a
    genuine near-duplicate news story in the source). For the classic "same document,
    cosmetic edits" dedup of web corpora (C4/Gopher/datatrove: 5-grams at Jaccard ~0.75-0.8)
    use `STRICT` below.

    - `num_perm=128`: standard error of a Jaccard estimate is sqrt(J(1-J)/k) ~ 0.04 at
      J=0.3; 128 uint32 values = 512 bytes per document (never shuffled per band: see
      `transforms.NearDuplicateClusters`).
    - `ngram=2` word bigrams: 20% token edits leave a bigram Jaccard of ~0.45-0.55 (a 5-gram
      Jaccard of ~0.2, indistinguishable from texts on one topic), while unrelated texts
      share few bigrams once common words are gone (below).
    - `seed=1`: datasketch's default, so permutations equal `datasketch.MinHash()`'s.
    - `threshold=0.3`: the estimated Jaccard an LSH candidate must reach to become an edge.
    - `weights=(0.3, 0.7)`: (false-positive, false-negative) weights of the band/row choice,
      datasketch's `MinHashLSH(weights=...)`; they give 42 x 3 at 0.3/128. Recall-leaning
      because every candidate is verified against `threshold` anyway, so a false candidate
      costs one comparison while a missed pair is lost for good; equal weights give 37 x 3,
      (0.1, 0.9) gives 32 x 2, whose 2-row bands make ~20x more false candidates.
    - `common_words=10`: the 10 words found in most documents (learned from the run's own
      texts, any language: `minhash.common_words`) are dropped before shingling. Bigrams of
      function words ("of the", "in a") are what unrelated texts share; with 3-row bands they
      make nearly all false LSH candidates, whose number grows with the square of the corpus.
      On 1,547 real abstracts/news texts (1.2M pairs), 42 x 3, three seeds: 3.0e-5 candidates
      per pair without the drop (one wordmix seed: 2.4e-4, one common bigram minimal in many
      permutations), 2.5e-6 to 9.2e-6 with it, at or near the floor that the texts' genuine
      near-duplicates set. 0 turns it off.
    - `drop_words`: the dropped words themselves, normalised. Left empty, the in-memory
      path (`near.cluster_labels`) learns them from all its texts and the Beam path from a
      deterministic sample (`common_sample` documents, chosen by id hash); give them to pin a
      list across runs.
    - `common_sample=100_000` documents: the document frequencies of the top words are stable
      to well under 1% at that size, and it keeps the learning pass cheap.
    - `common_min_docs=1000`: below that many documents nothing is learned (in three texts
      the "most common words" are simply their words), and false candidates are no cost yet.
      A text made only of dropped words keeps its words, so it can still match its copies.
    - `bands`/`rows` = 0/0 means "choose" with datasketch's optimal-parameter rule for
      (threshold, num_perm, weights); `replace()` re-chooses them unless given.
    - `shard_entries=2_000_000`: the Beam path shuffles band keys in batches, one shard per
      (band, key mod P) with P = ceil(documents / shard_entries), so a shard holds about that
      many (8-byte key, id) entries (~200 MB of Python objects on its worker) and finds its
      buckets in memory.
    - `max_bucket=1000`: a band bucket of m ids yields m(m-1)/2 candidate pairs; above ~1000
      (~500k pairs) one Beam key becomes a straggler worker and memory hot spot. Such buckets
      are nearly always boilerplate (templates, cover pages, near-empty texts); they are split
      by salting (`lsh.salted_buckets`), which keeps every member connected.
    - `lowercase`, `strip_punct`: case and punctuation edits should not defeat dedup.
    - `scheme="affine32"`: datasketch 2.x's default permutation scheme ("legacy" for sketches
      made by datasketch < 2.0).
    - `hash="wordmix"`: a polynomial hash of every word and its n-grams, all in numpy: 11.2x
      datasketch's per-document loop against 2.4x for "sha1" (bench/minhash_batch.py, bigrams). Same
      permutations and statistics, so `to_lean` sketches work in datasketch's LSH indexes and
      Jaccard estimates; "sha1" gives values bit-identical to `datasketch.MinHash` for
      indexes that must mix with sketches datasketch made. Never mix the two in one index.
    - `chunk_bytes=8 MiB`: the (num_perm x shingles) block permuted at once; measured fastest
      at 2-8 MiB on a 2-core machine (cache-resident), slower at 32 MiB+, and it bounds memory.
    """

    num_perm: int = 128
    ngram: int = 2
    seed: int = 1
    threshold: float = 0.3
    weights: tuple[float, float] = (0.3, 0.7)
    common_words: int = 10
    drop_words: frozenset[str] = frozenset()
    common_sample: int = 100_000
    common_min_docs: int = 1000
    shard_entries: int = 2_000_000
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
        if self.common_words < 0 or self.common_sample < 1 or self.common_min_docs < 1:
            raise ConfigError(f"MinHash common_words must be >= 0, common_sample and common_min_docs >= 1; "
                              f"got {self.common_words}, {self.common_sample}, {self.common_min_docs}")
        if self.shard_entries < 1:
            raise ConfigError(f"MinHash shard_entries must be >= 1; got {self.shard_entries}")
        if isinstance(self.drop_words, str) or not all(isinstance(w, str) and w for w in self.drop_words):
            raise ConfigError("MinHash drop_words is a collection of non-empty words (normalised form)")
        object.__setattr__(self, "drop_words", frozenset(self.drop_words))
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
# Jaccard >= 0.8, equal-weight banding 9 x 13: datasketch's MinHashLSH(0.8, 128); every word
# kept). Finds no copy with 5%+ token edits on the mutation sets (5-gram Jaccard ~0.65 at 5%:
# `scicurate eval dedup --mutations --ngram 5 --threshold 0.8 --weights 0.5,0.5
# --common-words 0`), at a false-candidate rate too small to measure on 1.2M real pairs
# (expected < 3e-10: the largest unrelated 5-gram Jaccard there is 0.155).
STRICT = MinHashConfig(ngram=5, threshold=0.8, weights=(0.5, 0.5), common_words=0)


@dataclass(frozen=True, slots=True)
class ExactConfig:
    """Exact dedup: `normalise=True` hashes the MinHash-normalised text (NFKC, case, punctuation,
    whitespace), so copies differing only in those still count as exact duplicates."""

    normalise: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.normalise, bool):
            raise ConfigError(f"ExactConfig.normalise must be a bool; got {self.normalise!r}")
