"""`scicurate export` after the real pipelines: `run pdf` on the fixture PDFs, a fastText recall
model trained here, `run recall` over the pdf run's documents plus a pool of its own, then the
export with the interleaved image-text dataset. Checks what the issue asks for on real run output:
the manifest adds up against the shards, labels reach the PDF documents, every input is
accounted for, the interleaved rows hold the documents' figures, and a rerun writes every file
byte for byte the same."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import FIXTURES, recall_labels
from scicurate.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    from scicurate.classifiers import recall_fasttext as rf

    root = tmp_path_factory.mktemp("export_e2e")
    pdf_in = root / "pdfs"
    pdf_in.mkdir()
    for path in sorted((FIXTURES / "pdf").glob("*.pdf")):
        shutil.copy(path, pdf_in / path.name)
    assert main(["run", "pdf", "--input", str(pdf_in / "*.pdf"), "--output", str(root / "pdf")]) == 0
    model = root / "model"
    config = rf.RecallConfig(dim=16, bucket=10_000, min_count=1, target_precision=0.9, min_predicted=2,
                             path_dim=16, path_epoch=25, path_bucket=10_000)
    rf.train_recall(recall_labels("t", 20), model, validation=recall_labels("v", 6), config=config)
    pool = root / "pool"
    pool.mkdir()
    shutil.copy(next((root / "pdf" / "documents").glob("part-*.parquet")), pool / "pdf_documents.parquet")
    with open(pool / "pool.jsonl", "w", encoding="utf-8") as fh:
        for row in recall_labels("pool", 8):
            fh.write(json.dumps({"id": row["id"], "text": row["text"]}) + "\n")
    # a low physics threshold, so every fixture paper (not physics prose) is recalled (as physics
    # or, where its chemistry score passes too, as chemistry)
    assert main(["run", "recall", "--input", str(pool / "*"), "--output", str(root / "recall"), "--model", str(model),
                 "--spot-check", "0", "--allow-unmet-thresholds", "--threshold", "physics=0.0001"]) == 0
    return {"root": root, "pdf": root / "pdf", "recall": root / "recall"}


def _export(runs, out: Path) -> int:
    return main(["export", "--inputs", str(runs["pdf"]), str(runs["recall"]), "--mixture",
                 "scicurate/mixtures/natural.yaml", "--output", str(out), "--workers", "2"])


def test_export_of_real_runs_adds_up_and_reruns_byte_for_byte(runs):
    out = runs["root"] / "export"
    assert _export(runs, out) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    shards = pq.read_table(out / "shards").to_pylist()
    assert len(shards) == manifest["counts"]["rows"] and sum(r["tokens"] for r in shards) == manifest["counts"]["tokens"]
    for entry in manifest["shards"]:
        assert entry["sha256"] == hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest()
    assert manifest["accounted"]
    read = manifest["counts"]["documents_read"]
    pdf_docs = pq.read_table(runs["pdf"] / "documents").num_rows
    recalled = pq.read_table(runs["recall"] / "recalled").num_rows
    assert read == pdf_docs + recalled
    pdf_rows = [r for r in shards if r["source"] == "pdf"]
    assert len(pdf_rows) == pdf_docs                                    # all fixture documents differ
    assert all(r["domain"] in ("physics", "chemistry") and r["label_from"] == f"recall:{runs['recall']}"
               for r in pdf_rows)
    assert {part for r in pdf_rows for part in r["parser"].split("+")} == {"mineru", "rapidocr"}   # image_only.pdf: OCR
    filtered = pq.read_table(out / "filtered").to_pylist()
    assert {r["reason"] for r in filtered if r["source"] == "recall" and r["doc_id"] in {p["doc_id"] for p in pdf_rows}} \
        == {"used_as_label"}

    inter = manifest["interleaved"]
    assert inter["enabled"] and inter["accounted"]
    rows = pq.read_table(out / "interleaved").to_pylist()
    dead = pq.read_table(out / "dead_letter").to_pylist()
    assert len(rows) + len([d for d in dead if d["stage"] == "interleave"]) == pdf_docs
    for row in rows:
        assert len(row["texts"]) == len(row["images"]) == len(row["image_meta"])
        assert all((t is None) != (i is None) for t, i in zip(row["texts"], row["images"]))
        assert row["n_images"] == sum(i is not None for i in row["images"])
    assert sum(r["n_images"] for r in rows) == inter["images"]

    again = runs["root"] / "export_again"
    assert _export(runs, again) == 0
    files = lambda root: {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))  # noqa: E731
                          if p.is_file() and p.name != "run_info.json"}
    first, second = files(out), files(again)
    # the manifest names its inputs, which are the same runs, so it too is identical
    assert first == second
