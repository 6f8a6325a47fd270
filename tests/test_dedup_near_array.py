"""`near.cluster_indices`, the vectorised single-process path: the same clusters as the
pure-Python reference `cluster_labels` when no bucket is hot, hot buckets still connected,
empty texts never clustered, verification only removing edges, and reruns identical.

The config is whatever `MinHashConfig()` is at run time (its defaults are tuned elsewhere)."""

import random

import numpy as np

from scicurate.dedup.config import MinHashConfig
from scicurate.dedup.minhash import signatures
from scicurate.dedup.near import (
    candidate_index_pairs,
    cluster_indices,
    cluster_labels,
    signature_bands,
    verify_index_pairs,
)

VOCAB = [f"w{i}" for i in range(4000)]


def planted_texts(seed=3, docs=300, copy_share=0.3, edit_share=0.1):
    """`docs` texts of 120 words; a `copy_share` of them are copies of an earlier text with
    `edit_share` of their words substituted, so clusters of 2+ exist at any sane threshold."""
    rng = random.Random(seed)
    texts: list[str] = []
    for _ in range(docs):
        if texts and rng.random() < copy_share:
            words = rng.choice(texts).split()
            for i in rng.sample(range(len(words)), int(edit_share * len(words))):
                words[i] = rng.choice(VOCAB)
        else:
            words = [rng.choice(VOCAB) for _ in range(120)]
        texts.append(" ".join(words))
    return texts


def as_id_labels(labels: np.ndarray) -> dict[str, str]:
    """Index labels in `cluster_labels`' form: ids zero-padded so string order = index order."""
    return {f"{i:05d}": f"{label:05d}" for i, label in enumerate(labels.tolist()) if label >= 0}


def test_same_clusters_as_the_reference_when_no_bucket_is_hot():
    config = MinHashConfig()
    texts = planted_texts()
    expected = cluster_labels(((f"{i:05d}", t) for i, t in enumerate(texts)), config)
    assert len(expected) >= 60                       # the planted copies really cluster
    labels = cluster_indices(signatures(texts, config), config)
    assert labels.dtype == np.int64 and labels.shape == (len(texts),)
    assert as_id_labels(labels) == expected
    buckets: dict[bytes, list[int]] = {}
    for i, sig in enumerate(signatures(texts, config)):
        for key in signature_bands(sig, config):
            buckets.setdefault(key, []).append(i)
    assert max(map(len, buckets.values())) <= config.max_bucket
    shared = {(a, b) for rows in buckets.values() for a in rows for b in rows if a < b}
    assert {tuple(p) for p in candidate_index_pairs(signatures(texts, config), config).tolist()} == shared
    unverified = cluster_labels(((f"{i:05d}", t) for i, t in enumerate(texts)), config, verify=False)
    assert as_id_labels(cluster_indices(signatures(texts, config), config, verify=False)) == unverified


def test_texts_without_shingles_never_cluster():
    config = MinHashConfig()
    texts = ["", "   ", "!!! ???", "…", ""] + planted_texts(docs=40, copy_share=0.5)
    sigs = signatures(texts, config)
    assert np.all(sigs[:5] == sigs[0])               # all equal: would be one false cluster
    labels = cluster_indices(sigs, config)
    assert labels[:5].tolist() == [-1] * 5
    assert (labels[5:] >= 5).sum() >= 10
    assert not len({p for pair in candidate_index_pairs(sigs, config).tolist() for p in pair} & set(range(5)))


def test_hot_bucket_is_split_but_its_members_stay_one_cluster():
    boiler = "this page intentionally left blank copyright all rights reserved " * 3
    texts = planted_texts(docs=30, copy_share=0.0) + [boiler] * 40
    config = MinHashConfig().replace(max_bucket=3)
    sigs = signatures(texts, config)
    pairs = candidate_index_pairs(sigs, config)
    among_boiler = int(np.count_nonzero(pairs.min(axis=1) >= 30))
    assert among_boiler < 40 * 39 // 2               # split: not every pair of the 40 is a candidate
    labels = cluster_indices(sigs, config)
    assert labels[30:].tolist() == [30] * 40
    assert labels[:30].tolist() == [-1] * 30


def test_verification_only_removes_edges():
    config = MinHashConfig()
    texts = planted_texts(seed=9, edit_share=0.5)    # heavy edits: some candidates fail the check
    sigs = signatures(texts, config)
    candidates = candidate_index_pairs(sigs, config)
    verified = verify_index_pairs(sigs, candidates, config)
    assert np.all(candidates[:, 0] < candidates[:, 1])
    assert len(np.unique(candidates, axis=0)) == len(candidates)
    assert {tuple(p) for p in verified.tolist()} <= {tuple(p) for p in candidates.tolist()}
    assert len(verified) < len(candidates)
    loose, strict = cluster_indices(sigs, config, verify=False), cluster_indices(sigs, config)
    assert np.all(loose[strict >= 0] >= 0)
    assert not np.array_equal(loose, strict)
    for label in np.unique(strict[strict >= 0]):     # each verified cluster within one loose one
        assert len(np.unique(loose[strict == label])) == 1
    estimate = (sigs[verified[:, 0]] == sigs[verified[:, 1]]).mean(axis=1)
    assert np.all(estimate >= config.threshold)


def test_reruns_give_identical_labels():
    boiler = "one two three four five six seven eight " * 4
    texts = planted_texts(seed=5) + [boiler] * 25
    config = MinHashConfig().replace(max_bucket=4)
    sigs = signatures(texts, config)
    first, second = cluster_indices(sigs, config), cluster_indices(sigs.copy(), config)
    assert np.array_equal(first, second)
    assert np.array_equal(candidate_index_pairs(sigs, config), candidate_index_pairs(sigs, config))
