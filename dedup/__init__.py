"""Dedup stages, each a pure core plus a thin Beam transform (issue 5, in progress).

Built so far:
- `exact`: normalised text hashes; one representative per group by a deterministic rule
  (smallest id); the others become `DuplicateRecord(duplicate_of=…)` rows (`ExactDedup`).
- `minhash`: word n-gram shingles and MinHash signatures computed in batch, identical to
  datasketch's for the same seed and scheme (`LeanMinHash` interop); `lsh`: band keys, candidate
  pairs and salted splitting of hot buckets.
- `components`: connected components by alternating large-star / small-star rounds unrolled in
  the pipeline graph (`ConnectedComponents`), with a union-find reference.

Not built yet: the MinHash-LSH near-dup transform end to end, the global page-level graph dedup
in the PDF pipeline (the copyright page shared by the paper_a/paper_b fixtures is still kept),
domain line dedup, `scicurate eval dedup`.
"""
