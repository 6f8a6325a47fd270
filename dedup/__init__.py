"""Dedup stages, each a pure core plus a thin Beam transform.

- `config`: one frozen dataclass per stage; `MinHashConfig()` targets copies with up to ~20%
  of their words edited (bigrams, 42 x 3 bands, Jaccard 0.3, the 10 most common words
  dropped), `STRICT` the classic cosmetic-copy web setting (5-grams, 9 x 13, Jaccard 0.8).
- `exact`: normalised text hashes; one representative per group by a deterministic rule
  (smallest id); the others become `DuplicateRecord(duplicate_of=…)` rows (`ExactDedup`).
- `minhash`: word n-gram shingles and MinHash signatures computed in batch with datasketch's
  permutations (`hash="sha1"`: bit-identical values; `LeanMinHash` interop), common words
  learned per run; `lsh`: band keys, candidate pairs and salted splitting of hot buckets.
- `components`: connected components by alternating large-star / small-star rounds unrolled in
  the pipeline graph (`ConnectedComponents`), with a union-find reference.
- `near`: MinHash-LSH near-duplicate clusters: the Beam transform `NearDuplicateClusters`
  (band keys shuffled in batched shards, candidate pairs verified on their signatures after
  two joins, connected components), the in-memory reference `cluster_labels` and the
  vectorised single-process `cluster_indices`.
- `documents`: `MarkNearDuplicates` keeps every record and marks near-duplicates (`run pdf`
  sets `duplicate_of`).
- `pages`: the global page-level graph dedup of the PDF pipeline (`RepeatedPages`): clusters
  spanning >= 2 documents are left out of every document (on by default in `run pdf`).
- `lines`: domain line dedup for web pages (`DomainLineDedup`): lines in >= 30% of one URL
  domain's pages are removed from that domain's pages (for the web pipeline).

Scored by `scicurate eval dedup` (mutation sets; dolma's paragraph dedup test data); timed by
`bench/minhash_batch.py`, `bench/dedup_1m.py` and `bench/dedup_beam.py`, with the Dataflow
estimate in `bench/results/dedup_dataflow_estimate.md`.
"""
