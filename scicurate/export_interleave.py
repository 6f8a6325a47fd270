"""The export's second dataset: PDF documents as interleaved text and figure images.

    PDF documents the mixture took ─ their kept pages' final text (the run's pages/ dataset)
        + the PDF itself (the run's documents.source) ─ interleave_document (one sandboxed
        child per PDF: MinerU figures and captions, crops, image filters)
        ─ interleaved/ rows (OBELICS-style aligned `texts` / `images` / `image_meta` lists)
        │ interleaved_dropped/ one row per figure the image filters took out
        │ dead_letter/ one row per PDF that could not be opened (missing, outside the run's
          input folder, corrupt, encrypted, timed out, …)

A document appears once here however many copies the mixture gave it, in a seeded order of
its own. Paths are only opened inside the folder the run read its PDFs from (run_info.json's
`input` pattern up to its first wildcard; relative paths start at the run's `cwd`, recorded in
run_info.json, else at the current directory):
a documents/ row naming a file elsewhere is `unsafe_path` and is never opened.
"""

from __future__ import annotations

import glob
import os
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pyarrow.parquet as pq

from scicurate import schema
from scicurate.export_read import ExportDeadLetter, RunSpec
from scicurate.mixture import sample_key
from scicurate.records import sha256_file

STAGE = "interleave"
WILDCARDS = "*?["


def run_cwd(spec: RunSpec) -> str:
    """Where the run's relative paths start: run_info.json's `cwd`, else the current folder."""
    cwd = (spec.run_info or {}).get("cwd")
    return cwd if isinstance(cwd, str) and os.path.isabs(cwd) else os.getcwd()


def input_folder(spec: RunSpec) -> str | None:
    """The folder a pdf run read its PDFs from: its `input` pattern up to the first wildcard,
    relative to the run's working folder."""
    pattern = (spec.run_info or {}).get("input")
    if not isinstance(pattern, str) or not pattern or pattern.startswith("reparse:") or "://" in pattern:
        return None
    cut = min((pattern.find(c) for c in WILDCARDS if c in pattern), default=len(pattern))
    head = pattern[:cut]
    folder = head if head.endswith("/") else os.path.dirname(head)
    return os.path.realpath(os.path.join(run_cwd(spec), folder or "."))


def origin_path(spec: RunSpec, origin: str) -> str:
    """A documents.source as the run saw it: a relative path starts at the run's working folder
    (a URL or other scheme is passed on as it is, and refused by interleave_document)."""
    if "://" in origin or os.path.isabs(origin):
        return origin
    return os.path.join(run_cwd(spec), origin)


def page_texts(spec: RunSpec, wanted: set[str]) -> dict[str, dict[int, str]]:
    """{doc_id: {page_index: text}} of the kept pages (status ok, not removed) of `wanted`."""
    out: dict[str, dict[int, str]] = defaultdict(dict)
    folder = os.path.join(spec.path.rstrip("/"), "pages")
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), "part-*.parquet"))):
        handle = pq.ParquetFile(path)
        for batch in handle.iter_batches(batch_size=512, columns=["doc_id", "page_index", "status", "removed", "text"]):
            for row in batch.to_pylist():
                if row["doc_id"] in wanted and row["status"] == "ok" and not row["removed"] and row["text"].strip():
                    out[row["doc_id"]][int(row["page_index"])] = row["text"]
    return out


def _row(doc, outcome, counter, runs) -> dict[str, Any]:
    texts, images, meta = [], [], []
    for kind, text, image_index in outcome.segments:
        if kind == "text":
            texts.append(text)
            images.append(None)
            meta.append(None)
        else:
            figure = outcome.images[image_index]
            texts.append(None)
            images.append(figure.data)
            meta.append({"image_id": figure.image_id, "page_index": figure.page_index, "kind": figure.kind,
                         "caption": figure.caption, "width": figure.width, "height": figure.height,
                         "bbox": [float(v) for v in figure.bbox], "flags": list(figure.flags),
                         "placement": figure.placement})
    text_parts = [t for t in texts if t]
    tokens = sum(counter.count_batch(text_parts)) if text_parts else 0
    return {"id": doc.id, "doc_id": doc.doc_id, "origin": doc.origin, "run": runs[doc.run].path, "domain": doc.domain,
            "texts": texts, "images": images, "image_meta": meta, "n_images": sum(1 for i in images if i is not None),
            "tokens": tokens}


def _dropped_rows(doc, outcome) -> list[dict[str, Any]]:
    return [{"id": doc.id, "doc_id": doc.doc_id, "origin": doc.origin, "page_index": d.page_index, "kind": d.kind,
             "caption": d.caption, "reason": d.reason, "reasons": list(d.reasons), "detail": d.detail[:4000],
             "measures": d.measures} for d in outcome.dropped]


def export_interleaved(scanned, output: str, config, counter,
                       progress: Callable[[str], None]) -> tuple[dict[str, Any], list[ExportDeadLetter]]:
    from scicurate.export import INTERLEAVED, INTERLEAVED_DROPPED, INTERLEAVED_ROW_GROUP, \
        INTERLEAVED_ROWS_PER_FILE, shard_name, write_table
    from scicurate.interleave import InterleaveConfig, InterleavedDoc, interleave_document

    runs: list[RunSpec] = scanned.runs
    seed = config.mixture.seed
    chosen = sorted((d for d in scanned.docs if d.pipeline == "pdf" and d.copies),
                    key=lambda d: (sample_key(seed, "interleave:" + d.id), d.index))
    by_run: dict[int, set[str]] = defaultdict(set)
    for doc in chosen:
        by_run[doc.run].add(doc.doc_id)
    texts = {run: page_texts(runs[run], wanted) for run, wanted in by_run.items()}
    folders = {run: input_folder(runs[run]) for run in by_run}
    settings = InterleaveConfig()
    progress(f"export: interleaving {len(chosen):,} PDF documents")

    def one(doc):
        folder = folders[doc.run]
        if folder is None:
            from scicurate.interleave import InterleaveFailure

            return InterleaveFailure("unsafe_path", f"{runs[doc.run].path} has no run_info.json input pattern: "
                                                    "the folder its PDFs may come from is unknown, so none is opened")
        return interleave_document(origin_path(runs[doc.run], doc.origin), texts[doc.run].get(doc.doc_id, {}), settings,
                                   base_dir=folder)

    rows, dropped, dead = [], [], []
    with ThreadPoolExecutor(max_workers=max(1, config.interleave_workers)) as pool:
        for n, (doc, outcome) in enumerate(zip(chosen, pool.map(one, chosen)), 1):
            if isinstance(outcome, InterleavedDoc):
                rows.append(_row(doc, outcome, counter, runs))
                dropped.extend(_dropped_rows(doc, outcome))
            else:
                dead.append(ExportDeadLetter(doc.doc_id, runs[doc.run].path, doc.origin, STAGE, outcome.reason,
                                             outcome.message))
            if n % 100 == 0:
                progress(f"export: interleaved {n:,} of {len(chosen):,} PDF documents")
    files = []
    total = max(1, -(-len(rows) // INTERLEAVED_ROWS_PER_FILE))
    for i in range(total):
        part = rows[i * INTERLEAVED_ROWS_PER_FILE:(i + 1) * INTERLEAVED_ROWS_PER_FILE]
        rel = f"{INTERLEAVED}/{shard_name(i, total)}"
        path = os.path.join(output, rel)
        write_table(part, schema.INTERLEAVED_SCHEMA, path, INTERLEAVED_ROW_GROUP)
        files.append({"path": rel, "rows": len(part), "images": sum(r["n_images"] for r in part),
                      "tokens": sum(r["tokens"] for r in part), "bytes": os.path.getsize(path),
                      "sha256": sha256_file(path)})
    dropped_rel = f"{INTERLEAVED_DROPPED}/{shard_name(0, 1)}"
    write_table(dropped, schema.INTERLEAVED_DROPPED_SCHEMA, os.path.join(output, dropped_rel), 1000)
    summary = {
        "enabled": True, "documents": len(rows), "images": sum(r["n_images"] for r in rows),
        "dropped": len(dropped), "dropped_reasons": dict(sorted(Counter(d["reason"] for d in dropped).items())),
        "failed": len(dead), "failed_reasons": dict(sorted(Counter(d.reason for d in dead).items())),
        "accounted": len(chosen) == len(rows) + len(dead), "files": files, "dropped_dataset": dropped_rel,
    }
    return summary, dead
