"""Dedup stages, each a pure core plus a thin Beam transform (issue 5, in progress).

Built so far:
- `exact`: normalised text hashes; one representative per group by a deterministic rule
  (smallest id); the others become `DuplicateRecord(duplicate_of=…)` rows (`ExactDedup`).
- `minhash`: word n-gram shingles and MinHash signatures computed in batch, identical to
  datasketch's for the same seed and scheme (`LeanMinHash` interop); `lsh`: band keys, candidate
  pairs and salted splitting of hot buckets.
- `components`: connected components by alternating large-star / small-star rounds unrolled in
  the pipeline graph (`ConnectedComponents`), with a union-find reference.
- `near`: MinHash-LSH near-duplicate clusters (`NearDuplicateClusters`): bands as GroupByKey
  keys, pairs verified by estimated Jaccard, connected components.
- `pages`: the global page-level graph dedup of the PDF pipeline (`RepeatedPages`): clusters
  spanning >= 2 documents are left out of every document (on by default in `run pdf`).
- `lines`: domain line dedup for web pages (`DomainLineDedup`): lines in >= 30% of one URL
  domain's pages are removed from that domain's pages (for the web pipeline).

Scored by `scicurate eval dedup` (mutation sets; dolma's paragraph dedup test data).

Not built yet: defaults that meet the 20%-edit recall target (word 5-grams cannot: their true
Jaccard at 20% edits is ~0.2), the 1M-document end-to-end benchmark and the Dataflow cost
estimate, document-level near-dup in `run pdf`.
"""
