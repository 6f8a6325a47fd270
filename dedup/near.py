"""MinHash-LSH near-duplicate clustering: the pure core (the Beam shell is
`transforms.NearDuplicateClusters`; both give the same clusters).

    texts -> batch signatures (minhash) -> band keys (lsh) -> buckets -> verified edges
          -> connected components -> cluster label = smallest id in the cluster

An LSH bucket only proposes pairs; an edge is kept when the signatures' estimated Jaccard
similarity reaches `threshold` too (`verify=True`), which removes most of the S-curve's false
positives at the cost of one vectorised comparison per pair. Texts with no shingle (empty, or
only punctuation) never join a cluster: their signatures are all equal and would otherwise
form one giant false cluster.
"""

from __future__ import annotations

import dataclasses

from typing import Iterable, Sequence

import numpy as np

from scicurate.dedup.components import union_find_components
from scicurate.dedup.config import MinHashConfig
from scicurate.dedup.lsh import band_keys, salted_buckets
from scicurate.dedup.minhash import common_words, empty_value, signatures, similar


def learned_config(texts: Sequence[str], config: MinHashConfig) -> MinHashConfig:
    """`config` with `drop_words` = the `config.common_words` most frequent words of `texts`
    (`minhash.common_words`), unless it already names its drop words or learns none. When
    the texts are too few to learn from, `common_words` becomes 0, so a later call does not
    count them again."""
    if config.drop_words or not config.common_words:
        return config
    learned = common_words(texts, config.common_words, config)
    return dataclasses.replace(config, drop_words=learned, common_words=config.common_words if learned else 0)


def has_shingles(sig_row: np.ndarray, config: MinHashConfig) -> bool:
    return not bool(np.all(sig_row == empty_value(config.scheme)))


def signature_bands(sig_row: np.ndarray, config: MinHashConfig) -> list[bytes]:
    """The LSH band keys of one signature; none for a text without shingles."""
    return band_keys(sig_row, config.bands, config.rows) if has_shingles(sig_row, config) else []


def bucket_edges(members: Sequence[tuple[str, np.ndarray]], config: MinHashConfig,
                 verify: bool = True) -> list[tuple[str, str]]:
    """Edges among one bucket's (id, signature) members: every pair whose estimated Jaccard
    reaches the threshold (all pairs when `verify` is False). Hot buckets are split first
    (`lsh.salted_buckets`); pairs are compared in one numpy block per part."""
    by_id = {i: s for i, s in members}
    if len(by_id) < 2:
        return []
    edges: list[tuple[str, str]] = []
    for _key, part in salted_buckets(b"", sorted(by_id), config.max_bucket):
        if len(part) < 2:
            continue
        sigs = np.stack([by_id[i] for i in part])
        for x in range(len(part) - 1):
            if verify:
                partners = np.flatnonzero(similar(sigs[x + 1:], sigs[x], config.threshold)) + x + 1
            else:
                partners = range(x + 1, len(part))
            edges.extend((part[x], part[y]) for y in partners)
    return edges


def cluster_labels(items: Iterable[tuple[str, str]], config: MinHashConfig = MinHashConfig(),
                   verify: bool = True) -> dict[str, str]:
    """{id: cluster label} for every id in a near-duplicate cluster of two or more; ids with
    no near duplicate are absent. In memory: for tests, evaluation and small corpora. Common
    words (`config.common_words`) are learned from all the texts unless `config.drop_words`
    names them."""
    items = list(items)
    config = learned_config([t for _, t in items], config)
    sigs = signatures([t for _, t in items], config)
    buckets: dict[bytes, list[tuple[str, np.ndarray]]] = {}
    for (doc_id, _), sig in zip(items, sigs):
        for key in signature_bands(sig, config):
            buckets.setdefault(key, []).append((doc_id, sig))
    edges = {edge for members in buckets.values() for edge in bucket_edges(members, config, verify)}
    return union_find_components(edges)


# ---- vectorised single-process path -----------------------------------------------------------
# Candidate pairs are packed as lo * n + hi (uint64, lo < hi < n <= 2^32) so one sort dedups them.
_PAIR_CHUNK = 1 << 20        # pairs generated per numpy block: a few 8 MiB index arrays
_VERIFY_BYTES = 64 << 20     # gathered signature bytes per side per verification block
_ROW_CHUNK = 1 << 16         # signature rows scanned at once for the all-empty test
_BAND_SALT = np.uint64(0x9E3779B97F4A7C15)
_PART_SALT = np.uint64(0xD6E8FEB86659FD93)


def _mix64(h: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: every input bit reaches every output bit."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _nonempty_rows(sigs: np.ndarray, config: MinHashConfig) -> np.ndarray:
    """Indices of rows with at least one shingle (not all `empty_value`), scanned in blocks so
    no (n, num_perm) boolean temporary is made."""
    empty = empty_value(config.scheme)
    keep = np.empty(len(sigs), dtype=bool)
    for lo in range(0, len(sigs), _ROW_CHUNK):
        keep[lo:lo + _ROW_CHUNK] = (sigs[lo:lo + _ROW_CHUNK] != empty).any(axis=1)
    return np.flatnonzero(keep)


def _band_hashes(sigs: np.ndarray, rows_idx: np.ndarray, band: int, rows: int) -> np.ndarray:
    """One uint64 per row of `rows_idx` for band `band`: its `rows` values folded through
    `_mix64` one column at a time, seeded by the band index so equal values in different bands
    do not meet. 64 bits instead of `lsh.band_keys`' 128: within one band of 10^6 rows a chance
    collision of unequal bands has probability ~n^2 / 2^65 ~ 3e-8, and it only adds a candidate
    (verification still decides)."""
    h = _mix64(np.full(len(rows_idx), band + 1, dtype=np.uint64) * _BAND_SALT)
    for col in range(band * rows, (band + 1) * rows):
        h = _mix64(h ^ sigs[rows_idx, col].astype(np.uint64))
    return h


def _runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of each run of equal values in a sorted array."""
    if not len(sorted_keys):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
    return starts, np.diff(np.append(starts, len(sorted_keys)))


def _group_pairs(members: np.ndarray, starts: np.ndarray, sizes: np.ndarray, n: int) -> list[np.ndarray]:
    """Packed pairs (every pair within each group members[start:start+size]), one numpy block
    per distinct group size (and per `_PAIR_CHUNK` pairs): no Python loop per pair or group."""
    out: list[np.ndarray] = []
    for m in np.unique(sizes[sizes >= 2]).tolist():
        first = starts[sizes == m]
        i, j = np.triu_indices(m, 1)
        per_block = max(1, _PAIR_CHUNK // len(i))
        for lo in range(0, len(first), per_block):
            base = first[lo:lo + per_block, None]
            a, b = members[base + i], members[base + j]
            out.append(_pack(np.minimum(a, b), np.maximum(a, b), n).ravel())
    return out


def _distinct(packed: np.ndarray) -> np.ndarray:
    """Sorted distinct values. A stable sort (timsort: the already-sorted prefix of earlier
    bands is one run it merges in linear time) and a neighbour test; measured ~8x faster here
    than `np.unique`, whose hash-based path dominates the whole banding step at 10^6 rows."""
    packed = np.sort(packed, kind="stable")
    return packed[np.concatenate(([True], packed[1:] != packed[:-1]))] if len(packed) else packed


def _pack(lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    return lo.astype(np.uint64) * np.uint64(n) + hi.astype(np.uint64)


def _split_hot(members: np.ndarray, keys: np.ndarray, starts: np.ndarray, sizes: np.ndarray,
               max_bucket: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hot runs (size > max_bucket) cut into parts of at most `max_bucket` members, as
    `lsh.salted_buckets` does: members ordered by a hash of (bucket key, row index), so the
    split is deterministic and pseudo-random, then cut every `max_bucket`. Returns the
    reordered members with the parts' starts and sizes, and packed chain pairs linking each
    part's smallest row to the next part's. The parts differ from `salted_buckets`' (another
    hash), so pair-level candidates of hot buckets differ from `cluster_labels`'; components of
    unverified candidates do not."""
    run = np.repeat(np.arange(len(starts)), sizes)
    rank = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    pos = starts[run] + rank
    salt = _mix64(keys[pos] ^ _mix64(members[pos].astype(np.uint64) + _PART_SALT))
    order = np.lexsort((members[pos], salt, run))
    hot, run = members[pos][order], run[order]        # runs stay in order, so `rank` still holds
    part = rank // max_bucket
    part_starts = np.flatnonzero(np.concatenate(([True], (run[1:] != run[:-1]) | (part[1:] != part[:-1]))))
    part_sizes = np.diff(np.append(part_starts, len(hot)))
    heads = np.minimum.reduceat(hot, part_starts) if len(hot) else hot
    same_run = run[part_starts][1:] == run[part_starts][:-1]
    a, b = heads[:-1][same_run], heads[1:][same_run]
    chain = _pack(np.minimum(a, b), np.maximum(a, b), n)
    return hot, part_starts, part_sizes, chain


def band_key_matrix(sigs: np.ndarray, config: MinHashConfig) -> tuple[np.ndarray, np.ndarray]:
    """(rows with shingles, their (len, bands) uint64 band keys): `_band_hashes` per band. The
    Beam path shuffles these 8-byte keys in batches (`transforms.NearDuplicateClusters`)."""
    rows_idx = _nonempty_rows(sigs, config)
    keys = np.empty((len(rows_idx), config.bands), dtype=np.uint64)
    for band in range(config.bands):
        keys[:, band] = _band_hashes(sigs, rows_idx, band, config.rows)
    return rows_idx, keys


def key_buckets(keys: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the entries sharing a key, for every key held by two or more entries
    (one band's keys: equal keys = one LSH bucket)."""
    order = np.argsort(keys, kind="stable")
    starts, sizes = _runs(keys[order])
    return [order[start:start + size] for start, size in zip(starts.tolist(), sizes.tolist()) if size >= 2]


def candidate_index_pairs(sigs: np.ndarray, config: MinHashConfig) -> np.ndarray:
    """(k, 2) int64 row pairs (lo < hi, sorted, distinct) that share an LSH band bucket, hot
    buckets split as `lsh.salted_buckets` does. Rows without shingles are never banded.

    Per band: one uint64 hash per row (`_band_hashes`), an argsort, runs of equal hashes are
    the buckets; pairs are made per distinct bucket size in numpy blocks and merged into the
    running distinct set after every band, so memory is O(n) per band plus the distinct
    candidates and one band's pairs (8 bytes each). The cap `max_bucket` is what bounds the
    latter: a band yields at most ~n * max_bucket / 2 pairs however skewed the buckets."""
    n = len(sigs)
    if config.bands * config.rows > sigs.shape[1]:
        raise ValueError(f"{config.bands} bands x {config.rows} rows exceed the signature's {sigs.shape[1]} values")
    if n >= 2**32:
        raise ValueError(f"at most 2^32 - 1 rows; got {n}")
    rows_idx = _nonempty_rows(sigs, config)
    packed = np.empty(0, np.uint64)
    for band in range(config.bands):
        keys = _band_hashes(sigs, rows_idx, band, config.rows)
        order = np.argsort(keys)
        keys, members = keys[order], rows_idx[order]
        starts, sizes = _runs(keys)
        shared = sizes >= 2
        starts, sizes = starts[shared], sizes[shared]
        hot = sizes > config.max_bucket
        blocks = _group_pairs(members, starts[~hot], sizes[~hot], n)
        if hot.any():
            parts, part_starts, part_sizes, chain = _split_hot(
                members, keys, starts[hot], sizes[hot], config.max_bucket, n)
            blocks += _group_pairs(parts, part_starts, part_sizes, n) + [chain]
        if blocks:
            packed = _distinct(np.concatenate([packed, *blocks]))
    lo, hi = np.divmod(packed, np.uint64(max(n, 1)))
    return np.stack([lo.astype(np.int64), hi.astype(np.int64)], axis=1)


def verify_index_pairs(sigs: np.ndarray, pairs: np.ndarray, config: MinHashConfig) -> np.ndarray:
    """The rows of `pairs` whose estimated Jaccard (share of equal values over all num_perm
    positions, as `bucket_edges`) reaches `config.threshold`, compared in blocks so the two
    gathered signature blocks stay at `_VERIFY_BYTES` each (128k pairs at 128 uint32 values)."""
    keep = np.zeros(len(pairs), dtype=bool)
    step = max(1, _VERIFY_BYTES // (sigs.shape[1] * sigs.dtype.itemsize))
    for lo in range(0, len(pairs), step):
        a, b = pairs[lo:lo + step, 0], pairs[lo:lo + step, 1]
        keep[lo:lo + step] = similar(sigs[a], sigs[b], config.threshold)
    return pairs[keep]


def index_components(n: int, edges: np.ndarray) -> np.ndarray:
    """int64 labels of length n from (k, 2) edges: the smallest row of each connected
    component with two or more rows, -1 for rows on no edge."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels = np.full(n, -1, dtype=np.int64)
    if not len(edges):
        return labels
    graph = coo_matrix((np.ones(len(edges), np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    _count, comp = connected_components(graph, directed=False)
    _ids, smallest = np.unique(comp, return_index=True)   # rows ascend: first row = smallest
    linked = np.zeros(n, dtype=bool)
    linked[edges.ravel()] = True
    labels[linked] = smallest[comp[linked]]
    return labels


def cluster_indices(sigs: np.ndarray, config: MinHashConfig, verify: bool = True) -> np.ndarray:
    """Near-duplicate clusters of the rows of `sigs` (n, num_perm), as `cluster_labels` finds
    them, without one Python object per document: int64 labels of length n, label[i] = the
    smallest row of i's cluster, -1 when i has no near duplicate (rows without shingles: always).

    Why: the single-machine path for benchmarks and corpora that fit in memory (10^6 x 128
    uint32 signatures are 0.5 GiB); the Beam path is `transforms.NearDuplicateClusters`.
    numpy/scipy only: vectorised band hashing, argsort buckets (`candidate_index_pairs`),
    chunked verification (`verify_index_pairs`, skipped when `verify` is False: every candidate
    becomes an edge), scipy connected components (`index_components`). With no hot bucket the
    clusters equal `cluster_labels`' (barring a 64-bit band-hash collision, which verification
    absorbs; unverified, it would add an edge); hot buckets are split with a different hash than `lsh.salted_buckets`, so their
    verified pairs, and rarely the clusters, can differ."""
    pairs = candidate_index_pairs(sigs, config)
    edges = verify_index_pairs(sigs, pairs, config) if verify else pairs
    return index_components(len(sigs), edges)
