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

from typing import Iterable, Sequence

import numpy as np

from scicurate.dedup.components import union_find_components
from scicurate.dedup.config import MinHashConfig
from scicurate.dedup.lsh import band_keys, salted_buckets
from scicurate.dedup.minhash import empty_value, signatures


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
                similar = (sigs[x + 1:] == sigs[x]).mean(axis=1) >= config.threshold
                partners = np.flatnonzero(similar) + x + 1
            else:
                partners = range(x + 1, len(part))
            edges.extend((part[x], part[y]) for y in partners)
    return edges


def cluster_labels(items: Iterable[tuple[str, str]], config: MinHashConfig = MinHashConfig(),
                   verify: bool = True) -> dict[str, str]:
    """{id: cluster label} for every id in a near-duplicate cluster of two or more; ids with
    no near duplicate are absent. In memory: for tests, evaluation and small corpora."""
    items = list(items)
    sigs = signatures([t for _, t in items], config)
    buckets: dict[bytes, list[tuple[str, np.ndarray]]] = {}
    for (doc_id, _), sig in zip(items, sigs):
        for key in signature_bands(sig, config):
            buckets.setdefault(key, []).append((doc_id, sig))
    edges = {edge for members in buckets.values() for edge in bucket_edges(members, config, verify)}
    return union_find_components(edges)
