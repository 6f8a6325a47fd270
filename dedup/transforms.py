"""Thin Beam shells around the dedup pure cores (``exact``, ``components``, ``near``).

``ExactDedup``: ``(id, text)`` -> tagged ``kept`` ``(id, text)`` / ``duplicates`` ``DuplicateRecord``.
``ConnectedComponents``: edges ``(a, b)`` -> ``{"labels": (node, label), "changed": int}``.
``NearDuplicateClusters``: ``(id, text)`` -> ``(id, cluster label)`` for ids with a near duplicate.
The algorithms and their justification are documented in the core modules.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from scicurate.dedup.components import (
    CHANGED,
    LABELS,
    ComponentsConfig,
    Edge,
    canonical_edge,
    check_edge,
    large_star,
    small_star,
)
from scicurate.dedup.exact import DUPLICATES, KEPT, resolve_group, text_hash

EXACT_NAMESPACE = "dedup_exact"
COMPONENTS_NAMESPACE = "dedup_components"


class _ResolveGroup(beam.DoFn):
    def __init__(self) -> None:
        self.kept = Metrics.counter(EXACT_NAMESPACE, "kept")
        self.duplicates = Metrics.counter(EXACT_NAMESPACE, "duplicates")

    def process(self, element):
        digest, members = element
        for tag, value in resolve_group(digest, members):
            if tag == KEPT:
                self.kept.inc()
                yield value
            else:
                self.duplicates.inc()
                yield TaggedOutput(DUPLICATES, value)


class ExactDedup(beam.PTransform):
    """``(id, text)`` -> tagged ``kept`` ``(id, text)`` and ``duplicates`` ``DuplicateRecord``.

    Groups by ``text_hash(text, normalise)``; the smallest id of each group is kept (see
    ``choose_representative``), so the result does not depend on input order or runner.
    Counters: ``dedup_exact/kept``, ``dedup_exact/duplicates``.
    """

    def __init__(self, normalise: bool = True, label: str | None = None) -> None:
        super().__init__(label)
        self.normalise = bool(normalise)

    def expand(self, pairs):
        normalise = self.normalise
        return (
            pairs
            | "KeyByHash" >> beam.Map(lambda kv: (text_hash(kv[1], normalise), (kv[0], kv[1])))
            | "GroupByHash" >> beam.GroupByKey()
            | "ChooseRepresentative" >> beam.ParDo(_ResolveGroup()).with_outputs(DUPLICATES, main=KEPT)
        )


def _both_directions(edge: Edge) -> Iterator[Edge]:
    yield edge
    yield edge[1], edge[0]


def _canonical_edges(edge) -> Iterator[Edge]:
    canonical = canonical_edge(edge)
    if canonical is not None:
        yield canonical


def _self_labels(edge: Edge) -> Iterator[Edge]:
    yield edge[0], edge[0]
    yield edge[1], edge[1]


class _StarRound(beam.PTransform):
    """One Large-Star + Small-Star round over distinct canonical edges -> distinct canonical edges."""

    def expand(self, edges):
        large = (
            edges
            | "BothDirections" >> beam.FlatMap(_both_directions)
            | "GroupNeighbours" >> beam.GroupByKey()
            | "LargeStar" >> beam.FlatMapTuple(large_star)
        )
        return (
            large
            | "GroupSmallerNeighbours" >> beam.GroupByKey()
            | "SmallStar" >> beam.FlatMapTuple(small_star)
            | "DistinctEdges" >> beam.Distinct()
        )


class _Labels(beam.PTransform):
    """label(v) = min(v, smaller neighbours of v), for every original node. Combiner-lifted."""

    def __init__(self, self_labels, label: str | None = None) -> None:
        super().__init__(label)
        self.self_labels = self_labels

    def expand(self, edges):
        return (
            (self.self_labels, edges)
            | "WithSelf" >> beam.Flatten()
            | "MinLabel" >> beam.CombinePerKey(min)
        )


class _ReportChanged(beam.DoFn):
    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.rounds_counter = Metrics.counter(COMPONENTS_NAMESPACE, "rounds")
        self.changed_counter = Metrics.counter(COMPONENTS_NAMESPACE, "changed_last_round")

    def process(self, changed: int):
        self.rounds_counter.inc(self.rounds)
        self.changed_counter.inc(changed)
        yield changed


class ConnectedComponents(beam.PTransform):
    """Edges ``(a, b)`` of string ids -> ``{"labels": (node, label), "changed": int}``.

    ``labels`` has one ``(node, label)`` per node appearing in any edge (self-loops included),
    label = smallest id of the node's component (string order). ``changed`` holds exactly one
    int: nodes whose label changed in the last of ``config.max_iterations`` rounds; 0 means
    converged (see module docstring for what a non-zero value means and why 12 rounds).
    Counters: ``dedup_components/rounds`` (rounds run), ``dedup_components/changed_last_round``.
    A malformed edge (not a pair of strings) is a programming error upstream and raises TypeError.
    """

    def __init__(self, config: ComponentsConfig | None = None, label: str | None = None) -> None:
        super().__init__(label)
        self.config = config or ComponentsConfig()

    def expand(self, raw_edges):
        self_labels = raw_edges | "SelfLabels" >> beam.FlatMap(lambda e: _self_labels(check_edge(e)))
        edges = (
            raw_edges
            | "Canonical" >> beam.FlatMap(_canonical_edges)
            | "DistinctInput" >> beam.Distinct()
        )
        for i in range(1, self.config.max_iterations + 1):
            previous, edges = edges, edges | f"Round{i:02d}" >> _StarRound()
        labels_before = previous | "LabelsBeforeLastRound" >> _Labels(self_labels)
        labels = edges | "Labels" >> _Labels(self_labels)
        changed = (
            (labels_before, labels)
            | "BothLabelings" >> beam.Flatten()
            | "DistinctLabelings" >> beam.Distinct()
            | "NodeOfLabel" >> beam.Map(lambda kv: kv[0])
            | "LabelsPerNode" >> beam.combiners.Count.PerElement()
            | "NodesChanged" >> beam.Filter(lambda kv: kv[1] > 1)
            | "CountChanged" >> beam.combiners.Count.Globally()
            | "ReportChanged" >> beam.ParDo(_ReportChanged(self.config.max_iterations))
        )
        return {LABELS: labels, CHANGED: changed}


NEAR_NAMESPACE = "dedup_near"


SIGNATURES = "signatures"


def _in_sample(item, total: int, sample: int) -> bool:
    """Whether (id, text) is in the deterministic sample of about `sample` of `total` items:
    all when total <= sample, else those whose blake2b(id) falls in the lowest sample/total
    of the 64-bit range (same ids chosen on every rerun and runner)."""
    if total <= sample:
        return True
    digest = int.from_bytes(hashlib.blake2b(str(item[0]).encode("utf-8"), digest_size=8).digest(), "big")
    return digest < (sample << 64) // total


class _DocumentFrequency(beam.CombineFn):
    """(id, text) -> the `config.common_words` most frequent words (a list): document
    frequencies counted in a Counter per worker bundle (a lifted combiner: one merge element
    per bundle, not one element per word), ranked as `minhash.common_words` ranks them."""

    def __init__(self, config) -> None:
        self.config = config

    def create_accumulator(self):
        return Counter()

    def add_input(self, acc, item):
        from scicurate.dedup.minhash import normalise

        acc.update(set(normalise(item[1], self.config).split()))
        return acc

    def merge_accumulators(self, accs):
        out = Counter()
        for acc in accs:
            out.update(acc)
        return out

    def extract_output(self, acc):
        from scicurate.dedup.minhash import top_words

        return top_words(acc, self.config.common_words)


def _drop_set(top, total: int, min_docs: int) -> frozenset:
    return frozenset(top) if total >= min_docs else frozenset()


class CommonWords(beam.PTransform):
    """``(id, text)`` -> one ``frozenset`` of the ``config.common_words`` words found in most
    documents of a deterministic sample of ``config.common_sample`` (all when fewer): the
    Beam form of ``minhash.common_words`` (same ranking: document frequency, then the smaller
    word; none from fewer than ``config.common_min_docs`` documents), so on a run within the
    sample size it gives the in-memory path's list exactly. Costs one count of the input
    (unless ``total``, the input's one-element count, is given) and one combiner-lifted pass
    over the sample."""

    def __init__(self, config, total=None, label: str | None = None) -> None:
        super().__init__(label)
        self.config = dataclasses.replace(config, drop_words=frozenset())
        self.total = total

    def expand(self, items):
        config = self.config
        total = self.total
        if total is None:
            total = items | "CountDocuments" >> beam.combiners.Count.Globally()
        return (
            items
            | "Sample" >> beam.Filter(_in_sample, total=beam.pvalue.AsSingleton(total), sample=config.common_sample)
            | "MostFrequent" >> beam.CombineGlobally(_DocumentFrequency(config))
            | "AsSet" >> beam.Map(_drop_set, total=beam.pvalue.AsSingleton(total), min_docs=config.common_min_docs)
        )


class _Signatures(beam.DoFn):
    """[(id, text)] batch -> main: ((band, part), (uint64 band keys, ids)) per shard the batch
    touches; ``signatures``: (id, signature bytes) per text with at least one shingle (a text
    without shingles has all-equal signature values and would join every other such text).
    ``part`` = key mod P, P = ceil(documents / config.shard_entries)."""

    def __init__(self, config) -> None:
        self.config = config
        self.docs = Metrics.counter(NEAR_NAMESPACE, "documents")
        self.no_shingles = Metrics.counter(NEAR_NAMESPACE, "no_shingles")

    def process(self, batch, total, drop_words=None):
        import numpy as np

        from scicurate.dedup.minhash import signatures
        from scicurate.dedup.near import band_key_matrix

        config = self.config
        if drop_words is not None and drop_words != config.drop_words:
            config = self.config = dataclasses.replace(config, drop_words=frozenset(drop_words))
        sigs = signatures([text for _, text in batch], config)
        rows, keys = band_key_matrix(sigs, config)
        self.docs.inc(len(batch))
        self.no_shingles.inc(len(batch) - len(rows))
        ids = [batch[i][0] for i in rows.tolist()]
        for i, doc_id in zip(rows.tolist(), ids):
            yield TaggedOutput(SIGNATURES, (doc_id, sigs[i].tobytes()))
        if not ids:           # a batch of texts without shingles (empty documents) joins nothing
            return
        parts = np.uint64(max(1, -(-total // config.shard_entries)))
        for band in range(config.bands):
            column = keys[:, band]
            part_of = column % parts
            # one stable sort per band, then one slice per part (not one scan per part)
            order = np.argsort(part_of, kind="stable")
            ordered = part_of[order]
            starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1]))).tolist()
            for start, end in zip(starts, starts[1:] + [len(order)]):
                take = order[start:end]
                yield (band, int(ordered[start])), (column[take], [ids[i] for i in take.tolist()])


class _ConcatBands(beam.CombineFn):
    """Shard chunks -> one (keys, ids) per shard. As a combiner it is lifted: each worker
    concatenates its bundle's chunks per shard before the shuffle, so the shuffle carries a
    few large elements instead of one element per (document, band)."""

    def create_accumulator(self):
        return []

    def add_input(self, acc, chunk):
        acc.append(chunk)
        return acc

    def merge_accumulators(self, accs):
        return [chunk for acc in accs for chunk in acc]

    def compact(self, acc):
        return [self.extract_output(acc)] if len(acc) > 1 else acc

    def extract_output(self, acc):
        import numpy as np

        keys = np.concatenate([k for k, _ in acc]) if acc else np.empty(0, np.uint64)
        return keys, [doc_id for _, ids in acc for doc_id in ids]


class _ShardPairs(beam.DoFn):
    """((band, part), (keys, ids)) -> candidate pairs (smaller id, larger id) of every bucket
    (equal key) in the shard, hot buckets split (`lsh.bucket_candidates`)."""

    def __init__(self, config, star: bool) -> None:
        self.config = config
        self.star = star
        self.buckets = Metrics.counter(NEAR_NAMESPACE, "buckets_with_pairs")
        self.hot = Metrics.counter(NEAR_NAMESPACE, "hot_buckets_split")
        self.pairs = Metrics.counter(NEAR_NAMESPACE, "candidate_pairs")

    def process(self, element):
        from scicurate.dedup.lsh import bucket_candidates
        from scicurate.dedup.near import key_buckets

        _shard, (keys, ids) = element
        for bucket in key_buckets(keys):
            members = sorted({ids[i] for i in bucket.tolist()})
            if len(members) < 2:
                continue
            self.buckets.inc()
            if len(members) > self.config.max_bucket:
                self.hot.inc()
            for pair in bucket_candidates(members, self.config.max_bucket, star=self.star):
                self.pairs.inc()
                yield pair


def _with_left_signature(element):
    """(a, {signatures: [sig_a], partners: [b, ...]}) -> (b, (a, sig_a)) per partner."""
    doc_id, grouped = element
    sigs = list(grouped[SIGNATURES])
    if not sigs:
        return
    for partner in grouped["partners"]:
        yield partner, (doc_id, sigs[0])


class _VerifyPairs(beam.DoFn):
    """(b, {signatures: [sig_b], halves: [(a, sig_a), ...]}) -> edge (a, b) when the
    estimated Jaccard of the two signatures reaches the threshold."""

    def __init__(self, config) -> None:
        self.config = config
        self.edges = Metrics.counter(NEAR_NAMESPACE, "verified_edges")
        self.rejected = Metrics.counter(NEAR_NAMESPACE, "rejected_candidates")

    def process(self, element):
        import numpy as np

        from scicurate.dedup.minhash import _dtype, similar

        doc_id, grouped = element
        sigs = list(grouped[SIGNATURES])
        halves = list(grouped["halves"])
        if not sigs or not halves:
            return
        dtype = _dtype(self.config.scheme)
        mine = np.frombuffer(sigs[0], dtype=dtype)
        others = np.stack([np.frombuffer(sig, dtype=dtype) for _, sig in halves])
        for (other_id, _), keep in zip(halves, similar(others, mine, self.config.threshold)):
            if keep:
                self.edges.inc()
                yield other_id, doc_id
            else:
                self.rejected.inc()


class NearDuplicateClusters(beam.PTransform):
    """``(id, text)`` -> ``(id, label)`` for every id with at least one near duplicate
    (estimated Jaccard >= ``config.threshold`` on shared LSH buckets), label = smallest id of
    its cluster. Ids without a near duplicate are not in the output. Same clusters as
    ``near.cluster_labels`` when ``ConnectedComponents`` converges (see its ``changed``).

    What crosses the shuffle, per document (default 42 x 3 layout): an 8-byte band key and
    the id per band, batched per shard ``(band, key mod P)`` and concatenated per worker
    bundle by a lifted combiner (``_ConcatBands``), so a shuffle element carries thousands of
    entries, not one; each shard finds its buckets in memory (sort, equal runs). Then the
    document's 512-byte signature goes once into each of two joins that bring the two
    signatures of every candidate pair together. Carrying the signature with every band
    entry instead would be ~42 x 550 B = 23 KB per document. With ``verify=False`` the joins
    are skipped and each bucket links its members as a star (m - 1 pairs, same components as
    all m(m-1)/2). Band keys are 64-bit: a chance collision of unequal bands (probability
    ~n^2 / 2^65 in a shard of n entries, ~1e-7 at 2M) only adds a candidate that verification
    rejects.

    Signatures are computed in batches of up to ``batch_size`` texts (the batch MinHash is
    several times faster than one document at a time).
    Counters (``dedup_near/``): documents, no_shingles, buckets_with_pairs, hot_buckets_split,
    candidate_pairs, verified_edges, rejected_candidates.
    """

    def __init__(self, config=None, *, verify: bool = True, batch_size: int = 2048,
                 components: ComponentsConfig | None = None, label: str | None = None) -> None:
        from scicurate.dedup.config import MinHashConfig

        super().__init__(label)
        self.config = config or MinHashConfig()
        self.verify = verify
        self.batch_size = batch_size
        self.components = components

    def expand(self, items):
        total = items | "CountDocuments" >> beam.combiners.Count.Globally()
        side = {"total": beam.pvalue.AsSingleton(total)}
        if self.config.common_words and not self.config.drop_words:
            common = items | "CommonWords" >> CommonWords(self.config, total)
            side["drop_words"] = beam.pvalue.AsSingleton(common)
        signed = (
            items
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.batch_size)
            # (the output type is declared: inferred from process() it would be a union with
            # TaggedOutput, which the combiner's key-value type check rejects)
            | "SignBands" >> beam.ParDo(_Signatures(self.config), **side)
            .with_output_types(beam.typehints.KV[Any, Any]).with_outputs(SIGNATURES, main="bands")
        )
        pairs = (
            signed.bands
            | "GroupBands" >> beam.CombinePerKey(_ConcatBands())
            | "ShardPairs" >> beam.ParDo(_ShardPairs(self.config, star=not self.verify))
            | "DistinctPairs" >> beam.Distinct()
        )
        if self.verify:
            sigs = signed[SIGNATURES]
            halves = (
                {SIGNATURES: sigs, "partners": pairs}
                | "JoinLeft" >> beam.CoGroupByKey()
                | "LeftSignature" >> beam.FlatMap(_with_left_signature)
            )
            edges = (
                {SIGNATURES: sigs, "halves": halves}
                | "JoinRight" >> beam.CoGroupByKey()
                | "Verify" >> beam.ParDo(_VerifyPairs(self.config))
            )
        else:
            edges = pairs
        return (edges | "Components" >> ConnectedComponents(self.components))[LABELS]
