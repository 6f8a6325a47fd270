"""LSH banding of MinHash signatures into bucket keys and candidate pairs: pure, no Beam.

A signature of `bands x rows` values is cut into `bands` bands; two documents become a
candidate pair when all `rows` values of any one band agree, which happens with probability
1 - (1 - J^rows)^bands for Jaccard similarity J (the S-curve `MinHashConfig` tunes).
"""

from __future__ import annotations

import hashlib
from itertools import combinations

import numpy as np

# 16-byte keys: with K distinct band keys in a run the chance that any two unequal bands
# share a key is about K^2 / 2^129; for K = 10^12 (10^11 documents x 9 bands) that is ~1.5e-15,
# far below the MinHash estimator's own false-positive rate. 8 bytes would be ~3% at 10^9.
KEY_BYTES = 16


def band_keys(sig_row: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One key per band: blake2b-128 of (band index as 2 bytes, the band's values as
    little-endian bytes). The band index keeps equal values in different bands apart; the
    explicit byte order makes keys equal across machines. Values past bands*rows are unused,
    as in datasketch's `MinHashLSH`."""
    if bands * rows > sig_row.shape[-1]:
        raise ValueError(f"{bands} bands x {rows} rows exceed the signature's {sig_row.shape[-1]} values")
    little = np.ascontiguousarray(sig_row, dtype=sig_row.dtype.newbyteorder("<"))
    width = rows * little.dtype.itemsize
    raw = little.tobytes()
    return [hashlib.blake2b(i.to_bytes(2, "big") + raw[i * width:(i + 1) * width], digest_size=KEY_BYTES).digest()
            for i in range(bands)]


def candidate_pairs(bucket_members: list[str]) -> list[tuple[str, str]]:
    """Every pair of distinct ids in one bucket, each as (smaller, larger), sorted: the same
    list whatever order the bucket's values arrived in (Beam gives no order)."""
    return list(combinations(sorted(set(bucket_members)), 2))


def salted_buckets(key: bytes, members: list[str], max_bucket: int) -> list[tuple[bytes, list[str]]]:
    """Split a bucket larger than `max_bucket` into parts of at most `max_bucket` ids, plus
    two-member "chain" buckets linking consecutive parts' first members.

    Members are ordered by blake2b(key + id), so parts are a deterministic pseudo-random split
    (not runs of neighbouring ids) and a rerun gives the same parts. Each part is keyed
    blake2b(key + b"part" + index), each chain link blake2b(key + b"chain" + index).

    Trade-off: an unsplit bucket of m ids yields m(m-1)/2 pairs; the split one yields at most
    ~m*max_bucket/2 + (parts - 1). Connected components over the pairs are unchanged (every
    member still reaches every other through its part and the chain), so graph dedup keeps
    the same clusters. What is lost is pair-level recall: a pair in different parts is not
    itself a candidate, so a stage that verifies each pair (estimated Jaccard) before linking
    can miss a link the unsplit bucket would have had. Hot buckets are almost always
    boilerplate whose members are duplicates of one another, where that loss is small.
    A bucket within the cap is returned unchanged (key kept, members sorted, duplicates
    dropped)."""
    if max_bucket < 2:
        raise ValueError(f"max_bucket must be at least 2; got {max_bucket}")
    ids = sorted(set(members))
    if len(ids) <= max_bucket:
        return [(key, ids)]
    ordered = sorted(ids, key=lambda m: (hashlib.blake2b(key + m.encode("utf-8"), digest_size=8).digest(), m))
    parts = [sorted(ordered[i:i + max_bucket]) for i in range(0, len(ordered), max_bucket)]
    out = [(_salt(key, b"part", i), part) for i, part in enumerate(parts)]
    reps = [part[0] for part in parts]
    out += [(_salt(key, b"chain", i), sorted((reps[i], reps[i + 1]))) for i in range(len(reps) - 1)]
    return out


def _salt(key: bytes, kind: bytes, index: int) -> bytes:
    return hashlib.blake2b(key + kind + index.to_bytes(4, "big"), digest_size=KEY_BYTES).digest()


def bucket_candidates(members: list[str], max_bucket: int, star: bool = False) -> list[tuple[str, str]]:
    """Candidate pairs (smaller, larger) of one bucket's ids, hot buckets split first
    (`salted_buckets`): every pair of each part, or with `star` only (first, other) per part,
    which has the same connected components in m - 1 pairs instead of m(m-1)/2 (for runs that
    link candidates without checking them)."""
    pairs: list[tuple[str, str]] = []
    for _key, part in salted_buckets(b"", members, max_bucket):
        if star:
            pairs.extend((part[0], other) for other in part[1:])
        else:
            pairs.extend(candidate_pairs(part))
    return pairs
