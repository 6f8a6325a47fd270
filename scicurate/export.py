"""`scicurate export`: earlier pdf, web and recall runs -> one training corpus: deduplicated across
sources, labelled, mixed to target domain shares, counted in the training tokenizer's tokens,
shuffled, cut into even Parquet shards and described by manifest.json.

    RUN_DIR... ─ scan (pass 1, streamed): tokens, <SMILES>/<FASTA> tokens, normalised-text hash,
                 MinHash signature and provenance per document (`DocMeta`, no text kept)
               ─ plan (in memory, metadata only):
                   recall labels -> pdf/web documents of the same id and text
                   exact dedup (normalised text) -> near dedup (MinHash-LSH, dedup/)
                   mixture (scicurate/mixture.py) -> copies per document
                   seeded shuffle of every copy -> shard cuts
               ─ write (pass 2, streamed): texts re-read in the same order, spilled per shard,
                 each shard sorted and written; filtered rows with their reasons
               ─ interleaved image-text rows for the PDF documents taken (scicurate/interleave.py)
               ─ manifest.json, report.html, run_info.json

Which copy of a duplicate is kept (`DedupSpec`, documented for users in the README): the first
by (its source's rank in `dedup.prefer`, default pdf > web > recall; most tokens; smallest id).
PDF first because a paper's PDF holds the whole text with formulas, where a web copy is often an
HTML rendering or abstract page; among equals the longer text is the more complete. When the
kept document has no domain label and a duplicate has one, it takes that label
(`label_from = inherited:<id>`).

Nothing is lost: every document read ends as shard rows (one per copy), a filtered/ row with
its reason, or a dead_letter/ row; manifest.json's `accounted` checks it.

Scale: one process (the tokenizer uses every core); the text is never all in memory: spills
hold at most `spill_bytes` of it, and writing holds one shard. The metadata is about 2 KB per
input row (signature included). Measured (bench/export.py, 2 CPUs): 100,000 documents plus
their 100,000 recall copies, 141.6M tokens, peak RSS 1.1 GiB, about 0.7M tokens/s.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scicurate import schema
from scicurate.config import ConfigError
from scicurate.export_read import ExportDeadLetter, RunSpec, SourceDoc, inspect_run, read_run
from scicurate.mixture import ALL_SOURCES, UNLABELLED, CellResult, Mixture, allocate_cell, budget_for, cell_of, \
    cell_shares, sample_key
from scicurate.parsers.pool_input import content_id
from scicurate.records import sha256_file

_LOG = logging.getLogger("scicurate.export")

FORMAT = "scicurate.export/1"
SHARDS, FILTERED, DEAD_LETTER = "shards", "filtered", "dead_letter"
INTERLEAVED, INTERLEAVED_DROPPED = "interleaved", "interleaved_dropped"
OUTPUT_FILES = ("manifest.json", "report.html", "run_info.json")
SPILL = "_spill"

# filtered/ reasons
REASON_EMPTY = "empty_text"
REASON_IN_RUN = "duplicate_in_run"
REASON_LABEL = "used_as_label"
REASON_SECOND_LABEL = "second_label"
REASON_EXACT = "exact_duplicate"
REASON_NEAR = "near_duplicate"
REASON_NOT_IN_MIXTURE = "not_in_mixture"
REASON_DOWNSAMPLED = "downsampled"
REASONS = (REASON_EMPTY, REASON_IN_RUN, REASON_LABEL, REASON_SECOND_LABEL, REASON_EXACT, REASON_NEAR,
           REASON_NOT_IN_MIXTURE, REASON_DOWNSAMPLED)

SCAN_BATCH = 256                # documents tokenised and signed together
LEARN_DOCS = 2000               # the first documents read teach MinHash its common words
PROGRESS_EVERY = 10_000
INTERLEAVED_ROWS_PER_FILE = 1000
INTERLEAVED_ROW_GROUP = 32      # rows carry images: small row groups for streaming readers
SCISTRING_SPAN = re.compile(r"<SMILES>.*?</SMILES>|<FASTA>.*?</FASTA>", re.DOTALL)
PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}


class ExportError(ConfigError):
    """Raised when the export cannot go on (an input changed under it, an unusable output)."""


@dataclass(frozen=True, slots=True)
class ExportConfig:
    mixture: Mixture
    mixture_sha256: str = ""
    tokenizer: str | None = None          # a tokenizer.json or folder; None: SmolLM2-135M (shipped)
    interleaved: bool = True
    interleave_workers: int = 2
    spill_bytes: int = 256 << 20          # text held in memory before it is spilled to disk


@dataclass(slots=True)
class DocMeta:
    """What the plan knows of one document: everything but its text."""

    index: int
    run: int
    pipeline: str
    doc_id: str
    origin: str
    parser: str
    domain: str
    domain_path: tuple[str, ...]
    label_score: float
    scores: str
    dup_in_run: str
    id: str                               # pool_input.content_id: "sha256:" + 32 hex of the raw text
    norm_hash: str                        # dedup.exact.text_hash (normalised text)
    tokens: int = 0
    sci_tokens: int = 0
    label_from: str = ""
    reason: str = ""                      # set when the document is filtered
    detail: str = ""
    duplicate_of: str = ""
    copies: int = 0


# ---- pass 1: scan ----------------------------------------------------------------------------

@dataclass
class Scan:
    runs: list[RunSpec]
    docs: list[DocMeta]
    signatures: np.ndarray
    dead: list[ExportDeadLetter]
    minhash: Any


class _Scanner:
    """Turns SourceDocs into DocMetas in batches: one tokenizer call and one MinHash call per batch."""

    def __init__(self, counter, mixture: Mixture) -> None:
        from scicurate.dedup.config import MinHashConfig

        self.counter = counter
        self.scistrings = mixture.scistring_tokens
        self.minhash = MinHashConfig()
        self.learned = False
        self.pending: list[SourceDoc] = []
        self.docs: list[DocMeta] = []
        self.unique: list[np.ndarray] = []       # signatures of distinct texts, one array per batch
        self.unique_rows = 0
        self.rows: list[int] = []                # per document: its text's row among the distinct ones
        self.measured: dict[str, tuple[int, int, str, int]] = {}     # text id -> tokens, sci, hash, signature row

    def add(self, doc: SourceDoc) -> None:
        self.pending.append(doc)
        if len(self.pending) >= (SCAN_BATCH if self.learned else LEARN_DOCS):
            self.flush()

    def flush(self) -> None:
        from scicurate.dedup.exact import text_hash
        from scicurate.dedup.minhash import signatures
        from scicurate.dedup.near import learned_config

        batch, self.pending = self.pending, []
        if not batch:
            return
        ids = [content_id(d.text) for d in batch]
        # A text already measured (a recall run's copy of a pdf or web document, an exact copy)
        # is not tokenised or signed again: the first measurement is reused.
        fresh: dict[str, str] = {}
        for doc, doc_id in zip(batch, ids):
            if doc_id not in self.measured and doc_id not in fresh:
                fresh[doc_id] = doc.text
        texts = list(fresh.values())
        if not self.learned:
            self.minhash = learned_config(texts, self.minhash)
            self.learned = True
        if texts:
            # the tokenizer's Encodings cost ~100 bytes a token: count SCAN_BATCH texts at a time
            tokens = [n for lo in range(0, len(texts), SCAN_BATCH)
                      for n in self.counter.count_batch(texts[lo:lo + SCAN_BATCH])]
            sci = self._scistring_tokens(texts)
            self.unique.append(signatures(texts, self.minhash))
            for row, (doc_id, text) in enumerate(fresh.items()):
                self.measured[doc_id] = (tokens[row], sci[row], text_hash(text), self.unique_rows + row)
            self.unique_rows += len(texts)
        for doc, doc_id in zip(batch, ids):
            n, s, norm, sig_row = self.measured[doc_id]
            self.rows.append(sig_row)
            self.docs.append(DocMeta(
                index=len(self.docs), run=doc.run, pipeline=doc.pipeline, doc_id=doc.doc_id, origin=doc.origin,
                parser=doc.parser, domain=doc.domain, domain_path=doc.domain_path, label_score=doc.label_score,
                scores=doc.scores, dup_in_run=doc.duplicate_of, id=doc_id, norm_hash=norm, tokens=n, sci_tokens=s))

    def _scistring_tokens(self, texts: list[str]) -> list[int]:
        if not self.scistrings:
            return [0] * len(texts)
        spans = [SCISTRING_SPAN.findall(t) if "</" in t else [] for t in texts]
        flat = [s for group in spans for s in group]
        counts = iter(self.counter.count_batch(flat))
        return [sum(next(counts) for _ in group) for group in spans]

    def signatures(self) -> np.ndarray:
        from scicurate.dedup.minhash import empty_value

        if not self.unique:
            return np.full((0, self.minhash.num_perm), empty_value(self.minhash.scheme))
        return np.vstack(self.unique)[np.asarray(self.rows, dtype=np.int64)]


def iter_documents(runs: Sequence[RunSpec]) -> Iterable[SourceDoc | ExportDeadLetter]:
    for index, spec in enumerate(runs):
        yield from read_run(spec, index)


def scan(runs: Sequence[RunSpec], counter, mixture: Mixture, progress: Callable[[str], None] = _LOG.info) -> Scan:
    scanner = _Scanner(counter, mixture)
    dead: list[ExportDeadLetter] = []
    read = 0
    for item in iter_documents(runs):
        if isinstance(item, ExportDeadLetter):
            dead.append(item)
            continue
        scanner.add(item)
        read += 1
        if read % PROGRESS_EVERY == 0:
            progress(f"export: scanned {read:,} documents")
    scanner.flush()
    return Scan(list(runs), scanner.docs, scanner.signatures(), dead, scanner.minhash)


# ---- plan ------------------------------------------------------------------------------------

def _rank(prefer: Sequence[str]) -> Callable[[DocMeta], tuple]:
    order = {name: i for i, name in enumerate(prefer)}
    return lambda d: (order.get(d.pipeline, len(order)), -d.tokens, d.id)


def _filter(doc: DocMeta, reason: str, detail: str, duplicate_of: str = "") -> None:
    doc.reason, doc.detail, doc.duplicate_of = reason, detail, duplicate_of


def _label(doc: DocMeta, source: DocMeta, label_from: str) -> None:
    doc.domain, doc.domain_path, doc.label_score, doc.label_from = (source.domain, source.domain_path,
                                                                    source.label_score, label_from)


def apply_labels(docs: list[DocMeta], runs: Sequence[RunSpec]) -> None:
    """Recall rows label the pdf/web documents of the same id and text (a recall run over a pdf
    run's documents/ or a web run's pages/); those recall rows are then `used_as_label`. A text
    a recall run recalled into two domains keeps the higher-scored label (`second_label`)."""
    recall: dict[tuple[str, str], list[DocMeta]] = defaultdict(list)
    for doc in docs:
        if doc.pipeline == "recall" and not doc.reason:
            recall[(doc.doc_id, doc.norm_hash)].append(doc)
    for group in recall.values():
        group.sort(key=lambda d: (-d.label_score, d.domain, d.run, d.index))
        for other in group[1:]:
            if other.run == group[0].run:
                _filter(other, REASON_SECOND_LABEL, f"also recalled as {group[0].domain} with a higher score",
                        group[0].id)
    for doc in docs:
        if doc.pipeline == "recall" or doc.reason:
            continue
        labels = [d for d in recall.get((doc.doc_id, doc.norm_hash), ()) if d.reason in ("", REASON_SECOND_LABEL)]
        if not labels:
            continue
        best = labels[0]
        _label(doc, best, f"recall:{runs[best.run].path}")
        for used in labels:
            if not used.reason:
                _filter(used, REASON_LABEL, f"labels the {doc.pipeline} document {doc.doc_id}", doc.id)


def mark_in_run_duplicates(docs: list[DocMeta]) -> None:
    by_run_id = {(d.run, d.doc_id): d for d in docs}
    for doc in docs:
        if doc.dup_in_run and not doc.reason:
            kept = by_run_id.get((doc.run, doc.dup_in_run))
            _filter(doc, REASON_IN_RUN, f"its run marked it a near duplicate of {doc.dup_in_run}",
                    kept.id if kept else "")


def _keep_one(group: list[DocMeta], rank, reason: str, detail: str) -> None:
    group = sorted(group, key=rank)
    kept = group[0]
    for other in group[1:]:
        _filter(other, reason, detail.format(kept=kept), kept.id)
    if kept.domain == UNLABELLED:
        labelled = [d for d in group[1:] if d.domain != UNLABELLED]
        if labelled:
            best = min(labelled, key=lambda d: (-d.label_score, d.domain, d.id))
            _label(kept, best, f"inherited:{best.id}")


def deduplicate(docs: list[DocMeta], sigs: np.ndarray, mixture: Mixture, minhash) -> dict[str, int]:
    """Exact then near duplicates across every source (module docstring for the rule)."""
    from scicurate.dedup.near import cluster_indices

    rank = _rank(mixture.dedup.prefer)
    for doc in docs:
        if not doc.reason and doc.tokens == 0:
            _filter(doc, REASON_EMPTY, "no tokens")
    groups: dict[str, list[DocMeta]] = defaultdict(list)
    for doc in docs:
        if not doc.reason:
            groups[doc.norm_hash].append(doc)
    for group in groups.values():
        if len(group) > 1:
            _keep_one(group, rank, REASON_EXACT, "same normalised text as {kept.pipeline} {kept.doc_id}")
    counts = {"exact_groups": sum(1 for g in groups.values() if len(g) > 1)}
    if not mixture.dedup.near:
        counts["near_clusters"] = 0
        return counts
    alive = np.array([d.index for d in docs if not d.reason and d.tokens >= mixture.dedup.min_tokens], dtype=np.int64)
    if len(alive) < 2:
        counts["near_clusters"] = 0
        return counts
    labels = cluster_indices(sigs[alive], minhash)
    clusters: dict[int, list[DocMeta]] = defaultdict(list)
    for row, label in enumerate(labels.tolist()):
        if label >= 0:
            clusters[label].append(docs[int(alive[row])])
    for group in clusters.values():
        _keep_one(group, rank, REASON_NEAR, "near duplicate (MinHash) of {kept.pipeline} {kept.doc_id}")
    counts["near_clusters"] = len(clusters)
    return counts


@dataclass
class MixPlan:
    budget: int
    cells: dict[tuple[str, str], CellResult]
    shares: dict[tuple[str, str], float]


def mix(docs: list[DocMeta], mixture: Mixture) -> MixPlan:
    """Copies per surviving document (scicurate/mixture.py); documents left with none are
    filtered as `not_in_mixture` (their domain has no share) or `downsampled`."""
    cells: dict[tuple[str, str], list[DocMeta]] = defaultdict(list)
    for doc in docs:
        if not doc.reason:
            cells[cell_of(mixture, doc.domain, doc.pipeline)].append(doc)
    available = {c: sum(d.tokens for d in members) for c, members in cells.items()}
    shares = cell_shares(mixture, available)
    budget = budget_for(mixture, available, shares)
    results: dict[tuple[str, str], CellResult] = {}
    for cell, members in sorted(cells.items()):
        target = shares[cell] * budget
        keyed = [(sample_key(mixture.seed, d.id), d.tokens, d.index) for d in members]
        copies, results[cell] = allocate_cell(keyed, target, mixture.max_repeats)
        for doc in members:
            doc.copies = copies.get(doc.index, 0)
            if doc.copies:
                continue
            if shares[cell] <= 0:              # cell_shares gives 0 to a domain or source without a share
                _filter(doc, REASON_NOT_IN_MIXTURE, f"the mixture gives {doc.domain}"
                        + ("" if cell[1] == ALL_SOURCES else f"/{cell[1]}") + " no share")
            else:
                _filter(doc, REASON_DOWNSAMPLED, f"{cell[0]} holds {available[cell]:,} tokens for a target of "
                        f"{target:,.0f}: the seeded sample left this document out")
    return MixPlan(budget, results, shares)


@dataclass(frozen=True, slots=True)
class RowPlace:
    shard: int
    key: int
    repeat: int


def shuffle_and_cut(docs: list[DocMeta], mixture: Mixture) -> tuple[dict[int, list[RowPlace]], list[dict[str, int]]]:
    """Every copy gets a seeded key; copies in key order are cut into shards of the target size
    (a shard closes before the row that would take it past the target, so only a single row
    larger than the target makes a shard larger). Returns the places of each document's copies
    and each shard's rows and tokens."""
    rows: list[tuple[int, int, int, int]] = []        # (key, doc index, repeat, tokens)
    for doc in docs:
        for k in range(doc.copies):
            row_id = doc.id if k == 0 else f"{doc.id}~{k}"
            rows.append((sample_key(mixture.seed, "shuffle:" + row_id), doc.index, k, doc.tokens))
    rows.sort()
    spec = mixture.shard
    places: dict[int, list[RowPlace]] = defaultdict(list)
    shards: list[dict[str, int]] = []
    current = {"rows": 0, "tokens": 0}
    for key, index, k, tokens in rows:
        full = (current["tokens"] + tokens > spec.target_tokens) if spec.target_tokens else (current["rows"] >= spec.target_rows)
        if current["rows"] and full:
            shards.append(current)
            current = {"rows": 0, "tokens": 0}
        places[index].append(RowPlace(len(shards), key, k))
        current["rows"] += 1
        current["tokens"] += tokens
    if current["rows"]:
        shards.append(current)
    return places, shards


# ---- pass 2: write ---------------------------------------------------------------------------

def _doc_cells(doc: DocMeta, text: str, runs: Sequence[RunSpec]) -> dict[str, Any]:
    return {"id": doc.id, "text": text, "tokens": doc.tokens, "scistring_tokens": doc.sci_tokens,
            "domain": doc.domain, "domain_path": list(doc.domain_path), "source": doc.pipeline,
            "doc_id": doc.doc_id, "origin": doc.origin, "run": runs[doc.run].path, "parser": doc.parser,
            "label_from": doc.label_from, "scores": doc.scores}


def shard_name(index: int, total: int) -> str:
    return f"part-{index:05d}-of-{total:05d}.parquet"


class _Spill:
    """Shard rows held in memory, appended to one pickle file per shard past `limit` bytes."""

    def __init__(self, folder: str, limit: int) -> None:
        self.folder, self.limit = folder, limit
        self.held: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        self.bytes = 0
        os.makedirs(folder, exist_ok=True)

    def add(self, shard: int, key: int, row: dict[str, Any]) -> None:
        self.held[shard].append((key, row))
        self.bytes += len(row["text"]) + 512
        if self.bytes > self.limit:
            self.flush()

    def flush(self) -> None:
        for shard, rows in self.held.items():
            with open(os.path.join(self.folder, f"{shard:05d}.pkl"), "ab") as fh:
                pickle.dump(rows, fh, protocol=pickle.HIGHEST_PROTOCOL)
        self.held.clear()
        self.bytes = 0

    def rows(self, shard: int) -> list[tuple[int, dict[str, Any]]]:
        out = list(self.held.pop(shard, []))
        path = os.path.join(self.folder, f"{shard:05d}.pkl")
        if os.path.exists(path):
            with open(path, "rb") as fh:
                while True:
                    try:
                        out.extend(pickle.load(fh))
                    except EOFError:
                        break
        return out


def write_table(rows: list[dict[str, Any]], parquet_schema: pa.Schema, path: str, row_group_rows: int) -> None:
    """`rows` as one Parquet file, one row group of `row_group_rows` at a time (only one row
    group is ever an Arrow table, so a shard costs its rows once in memory, not twice)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    step = max(1, row_group_rows)
    with pq.ParquetWriter(path, parquet_schema, **PARQUET_OPTIONS) as writer:
        if not rows:
            writer.write_table(pa.Table.from_pylist([], schema=parquet_schema))
        for lo in range(0, len(rows), step):
            writer.write_table(pa.Table.from_pylist(rows[lo:lo + step], schema=parquet_schema), row_group_size=step)


def write_pass(scan_result: Scan, places: dict[int, list[RowPlace]], shard_sizes: list[dict[str, int]],
               output: str, config: ExportConfig, progress: Callable[[str], None] = _LOG.info) -> list[dict[str, Any]]:
    """Re-read the texts, spill shard rows, write filtered/ as it goes, then each shard sorted by
    its keys. Returns the manifest's shard entries."""
    runs, docs = scan_result.runs, scan_result.docs
    spill = _Spill(os.path.join(output, SPILL), config.spill_bytes)
    filtered_path = os.path.join(output, FILTERED, shard_name(0, 1))
    os.makedirs(os.path.dirname(filtered_path), exist_ok=True)
    writer = pq.ParquetWriter(filtered_path, schema.EXPORT_FILTERED_SCHEMA, **PARQUET_OPTIONS)
    held: list[dict[str, Any]] = []
    index = 0
    try:
        for item in iter_documents(runs):
            if isinstance(item, ExportDeadLetter):
                continue
            doc = docs[index]
            index += 1
            if content_id(item.text) != doc.id:
                raise ExportError(f"{runs[doc.run].path}: document {doc.doc_id} changed while the export read it; "
                                  "export from runs nothing is writing to")
            cells = _doc_cells(doc, item.text, runs)
            if doc.reason:
                held.append({**cells, "reason": doc.reason, "detail": doc.detail, "duplicate_of": doc.duplicate_of})
                if len(held) >= SCAN_BATCH:
                    writer.write_table(pa.Table.from_pylist(held, schema=schema.EXPORT_FILTERED_SCHEMA))
                    held = []
            for place in places.get(doc.index, ()):
                row = dict(cells, repeat=place.repeat)
                if place.repeat:
                    row["id"] = f"{doc.id}~{place.repeat}"
                spill.add(place.shard, place.key, row)
            if index % PROGRESS_EVERY == 0:
                progress(f"export: wrote {index:,} of {len(docs):,} documents")
        if held:
            writer.write_table(pa.Table.from_pylist(held, schema=schema.EXPORT_FILTERED_SCHEMA))
    finally:
        writer.close()
    if index != len(docs):
        raise ExportError(f"the inputs held {len(docs):,} documents on the first read and {index:,} on the second; "
                          "export from runs nothing is writing to")
    entries = []
    total = len(shard_sizes)
    for shard in range(total):
        rows = [row for _key, row in sorted(spill.rows(shard), key=lambda kr: kr[0])]
        rel = f"{SHARDS}/{shard_name(shard, total)}"
        path = os.path.join(output, rel)
        write_table(rows, schema.EXPORT_SHARD_SCHEMA, path, config.mixture.shard.row_group_rows)
        domains = Counter()
        for row in rows:
            domains[row["domain"]] += row["tokens"]
        entries.append({"path": rel, "rows": len(rows), "tokens": sum(r["tokens"] for r in rows),
                        "scistring_tokens": sum(r["scistring_tokens"] for r in rows),
                        "bytes": os.path.getsize(path), "sha256": sha256_file(path),
                        "row_groups": pq.ParquetFile(path).num_row_groups, "domain_tokens": dict(sorted(domains.items()))})
        progress(f"export: shard {shard + 1}/{total}: {len(rows):,} rows, {entries[-1]['tokens']:,} tokens")
    shutil.rmtree(os.path.join(output, SPILL), ignore_errors=True)
    return entries


# ---- output folder ---------------------------------------------------------------------------

def prepare_export_output(output: str, inputs: Sequence[str]) -> None:
    """Refuse an output that is, holds or sits inside an input run; remove an earlier export's
    datasets and files so the folder is either a finished export (manifest.json) or none."""
    out = os.path.realpath(output)
    for run in inputs:
        real = os.path.realpath(run)
        if out == real or out.startswith(real + os.sep) or real.startswith(out + os.sep):
            raise ExportError(f"--output {output} and the input run {run} overlap: give the export its own folder")
    os.makedirs(output, exist_ok=True)
    for name in OUTPUT_FILES:
        path = os.path.join(output, name)
        if os.path.exists(path):
            os.remove(path)
    for name in (SHARDS, FILTERED, DEAD_LETTER, INTERLEAVED, INTERLEAVED_DROPPED, SPILL):
        shutil.rmtree(os.path.join(output, name), ignore_errors=True)


def write_dead_letters(dead: list[ExportDeadLetter], output: str) -> None:
    write_table([d.to_row() for d in dead], schema.EXPORT_DEAD_LETTER_SCHEMA,
                os.path.join(output, DEAD_LETTER, shard_name(0, 1)), 1000)


# ---- shares and manifest ---------------------------------------------------------------------

def share_report(docs: list[DocMeta], plan: MixPlan, mixture: Mixture) -> dict[str, Any]:
    """Target vs achieved shares per domain and per source.

    A `short` domain (no data, or the repeats cap) gives fewer tokens than its target, which
    raises every other domain's share of the total. So each domain also gets
    `target_share_given_short`: its target tokens (a short domain: the tokens it could give) over
    the sum of those, the share it should reach when the short domains give what they have.
    `within_tolerance` compares the achieved share with that, within `mixture.tolerance`
    (absolute); a short domain is never within tolerance, and the shortfall is its own report."""
    achieved_domain: Counter = Counter()
    achieved_source: Counter = Counter()
    available_domain: Counter = Counter()
    for doc in docs:
        if doc.copies:
            achieved_domain[doc.domain] += doc.tokens * doc.copies
            achieved_source[doc.pipeline] += doc.tokens * doc.copies
    for cell, result in plan.cells.items():
        available_domain[cell[0]] += result.available
    total = sum(achieved_domain.values())
    all_available = sum(available_domain.values())
    natural = {d: a / all_available for d, a in available_domain.items()} if all_available else {}
    rows = []
    for name in sorted(set(dict(mixture.domains)) | set(available_domain)):
        target_share = mixture.domain_share(name, natural)
        cells = [r for c, r in plan.cells.items() if c[0] == name]
        short = target_share > 0 and (not cells or any(r.short for r in cells) or available_domain[name] == 0)
        rows.append((name, target_share, cells, short))
    expected = {name: (achieved_domain[name] if short else share * plan.budget) for name, share, _, short in rows}
    expected_total = sum(expected.values())
    domains = []
    for name, target_share, cells, short in rows:
        got = achieved_domain[name]
        share = got / total if total else 0.0
        given_short = expected[name] / expected_total if expected_total else 0.0
        domains.append({
            "domain": name, "target_share": round(target_share, 6), "achieved_share": round(share, 6),
            "target_share_given_short": round(given_short, 6),
            "target_tokens": int(round(target_share * plan.budget)), "achieved_tokens": got,
            "available_tokens": available_domain[name],
            "documents": sum(r.documents for r in cells), "rows": sum(r.copies for r in cells),
            "short": short, "within_tolerance": not short and abs(share - given_short) <= mixture.tolerance,
        })
    sources = []
    for name in sorted(set(dict(mixture.sources)) | set(achieved_source)):
        got = achieved_source[name]
        sources.append({"source": name, "target_share": round(dict(mixture.sources).get(name, 0.0), 6)
                        if mixture.sources else None, "achieved_share": round(got / total, 6) if total else 0.0,
                        "achieved_tokens": got})
    return {"budget_tokens": plan.budget, "tolerance": mixture.tolerance, "domains": domains, "sources": sources,
            "short_domains": [d["domain"] for d in domains if d["short"]],
            "within_tolerance": all(d["within_tolerance"] for d in domains if not d["short"])}


def _run_entry(spec: RunSpec, docs: list[DocMeta], index: int) -> dict[str, Any]:
    mine = [d for d in docs if d.run == index]
    return {"path": spec.path, "pipeline": spec.pipeline, "files": len(spec.files), "documents": len(mine),
            "tokens": sum(d.tokens for d in mine),
            "taken": sum(1 for d in mine if d.copies), "summary": spec.summary, "run_info": spec.run_info}


def length_histograms(docs: list[DocMeta], bins: Sequence[int] = (0, 64, 128, 256, 512, 1024, 2048, 4096, 8192,
                                                                   16384, 32768, 65536)) -> dict[str, Any]:
    """Documents taken per domain, by token length (log-spaced bins; the last is open)."""
    edges = list(bins)
    out: dict[str, list[int]] = {}
    for doc in docs:
        if not doc.copies:
            continue
        counts = out.setdefault(doc.domain, [0] * len(edges))
        slot = max(i for i, edge in enumerate(edges) if doc.tokens >= edge)
        counts[slot] += 1
    return {"bin_edges": edges, "domains": dict(sorted(out.items()))}


# ---- the whole export ------------------------------------------------------------------------

def run_export(inputs: Sequence[str], output: str, config: ExportConfig,
               progress: Callable[[str], None] = _LOG.info) -> dict[str, Any]:
    """The export (module docstring). Returns the manifest it wrote."""
    from scicurate.tokens import load_tokenizer

    started = time.perf_counter()
    if not inputs:
        raise ExportError("give at least one run directory (--inputs)")
    runs = [inspect_run(path) for path in inputs]
    if len({os.path.realpath(r.path) for r in runs}) != len(runs):
        raise ExportError("a run directory is given twice in --inputs")
    counter = load_tokenizer(config.tokenizer)
    prepare_export_output(output, inputs)
    mixture = config.mixture

    progress(f"export: scanning {len(runs)} runs")
    scanned = scan(runs, counter, mixture, progress)
    docs = scanned.docs
    apply_labels(docs, runs)
    mark_in_run_duplicates(docs)
    dedup_counts = deduplicate(docs, scanned.signatures, mixture, scanned.minhash)
    plan = mix(docs, mixture)
    places, shard_sizes = shuffle_and_cut(docs, mixture)
    progress(f"export: {len(docs):,} documents, {sum(d.copies for d in docs):,} rows in {len(shard_sizes)} shards")
    shard_entries = write_pass(scanned, places, shard_sizes, output, config, progress)

    interleaved: dict[str, Any] = {"enabled": False}
    dead = list(scanned.dead)
    if config.interleaved and any(r.pipeline == "pdf" for r in runs):
        from scicurate.export_interleave import export_interleaved

        interleaved, more_dead = export_interleaved(scanned, output, config, counter, progress)
        dead.extend(more_dead)
    write_dead_letters(dead, output)

    reasons = Counter(d.reason for d in docs if d.reason)
    rows = sum(e["rows"] for e in shard_entries)
    tokens = sum(e["tokens"] for e in shard_entries)
    taken = sum(1 for d in docs if d.copies)
    manifest = {
        "format": FORMAT,
        "schema_version": schema.EXPORT_SCHEMA_VERSION,
        "schema": {name: str(schema.EXPORT_SHARD_SCHEMA.field(name).type) for name in schema.EXPORT_SHARD_SCHEMA.names},
        "mixture": {**mixture.to_dict(), "file_sha256": config.mixture_sha256},
        "tokenizer": {"name": counter.name, "sha256": counter.sha256},
        "inputs": [_run_entry(spec, docs, i) for i, spec in enumerate(runs)],
        "counts": {
            "documents_read": len(docs), "documents_taken": taken, "rows": rows, "tokens": tokens,
            "scistring_tokens": sum(e["scistring_tokens"] for e in shard_entries),
            "filtered": dict(sorted(reasons.items())),
            "dead_letter": dict(sorted(Counter(d.reason for d in dead).items())),
            "read_dead_letters": len(scanned.dead),
            "dedup": dedup_counts,
        },
        "accounted": len(docs) == taken + sum(reasons.values()) and rows == sum(d.copies for d in docs),
        "shares": share_report(docs, plan, mixture),
        "token_lengths": length_histograms(docs),
        "shards": shard_entries,
        "interleaved": interleaved,
        "datasets": {"filtered": f"{FILTERED}/{shard_name(0, 1)}", "dead_letter": f"{DEAD_LETTER}/{shard_name(0, 1)}"},
    }
    with open(os.path.join(output, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
    from scicurate.export_report import write_export_report

    write_export_report(manifest, os.path.join(output, "report.html"))
    wall = time.perf_counter() - started
    scanned_tokens = sum(d.tokens for d in docs)
    info = {"wall_seconds": round(wall, 3), "documents_read": len(docs), "tokens_read": scanned_tokens,
            "tokens_written": tokens, "tokens_read_per_second": round(scanned_tokens / wall, 1) if wall else 0.0,
            "tokens_written_per_second": round(tokens / wall, 1) if wall else 0.0}
    with open(os.path.join(output, "run_info.json"), "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=2, sort_keys=True)
        fh.write("\n")
    return manifest


def summary_lines(manifest: dict[str, Any]) -> list[str]:
    """The end-of-run summary a person reads: counts, reasons, shares."""
    counts = manifest["counts"]
    lines = [f"read {counts['documents_read']:,} documents from {len(manifest['inputs'])} runs; "
             f"took {counts['documents_taken']:,} as {counts['rows']:,} rows, {counts['tokens']:,} tokens "
             f"in {len(manifest['shards'])} shards"]
    for reason, n in counts["filtered"].items():
        lines.append(f"  filtered {reason}: {n:,}")
    for reason, n in counts["dead_letter"].items():
        lines.append(f"  dead letter {reason}: {n:,}")
    for d in manifest["shares"]["domains"]:
        flag = " SHORT" if d["short"] else ("" if d["within_tolerance"] else " off-target")
        given = "" if d["target_share_given_short"] == d["target_share"] or d["short"] else \
            f" (given the short: {d['target_share_given_short']:.3f})"
        lines.append(f"  {d['domain']:<18} target {d['target_share']:.3f}{given} achieved {d['achieved_share']:.3f} "
                     f"({d['achieved_tokens']:,} of {d['available_tokens']:,} available tokens){flag}")
    inter = manifest.get("interleaved") or {}
    if inter.get("enabled"):
        lines.append(f"  interleaved: {inter['documents']:,} documents, {inter['images']:,} images kept, "
                     f"{inter['dropped']:,} dropped, {inter['failed']:,} failed")
    lines.append("accounted: " + ("yes" if manifest["accounted"] else "NO"))
    return lines
