"""The education scorer inside `run pdf` (web-crawled PDFs) and `run web`: a real fastText edu
model trained in the test scores every document or page through RunInference, and the
threshold stage files those below `--edu-threshold` / `--min-edu` under filtered/ as
low_education. Thresholds at the ends of the 0-5 scale make the outcome independent of what
the tiny model learned."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from scicurate import cli

ROOT = Path(__file__).resolve().parents[1]
WEB_INPUTS = str(ROOT / "tests" / "fixtures" / "web" / "*.*[zl]")
PDF_INPUTS = str(ROOT / "tests" / "fixtures" / "pdf" / "t*.pdf")   # table.pdf, text_only.pdf

pytestmark = pytest.mark.slow

LESSON = ("In this lesson we derive the conservation of energy from Newton's laws, work through two "
          "examples step by step and end with exercises that check each idea. ")
ADVERT = "Buy now! Best price guaranteed, free shipping on all orders, click here for the deal of the day. "


@pytest.fixture(scope="module")
def edu_model(tmp_path_factory) -> Path:
    from scicurate.classifiers.edu import EduTrainConfig, train_edu

    rows = []
    for i in range(30):
        rows.append({"id": f"l{i}", "text": f"{LESSON} Part {i}.", "score": 4})
        rows.append({"id": f"a{i}", "text": f"{ADVERT} Offer {i}.", "score": 0})
    out = tmp_path_factory.mktemp("edu")
    train_edu(rows, out, EduTrainConfig(kind="fasttext", epoch=10))
    return out


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("threshold, filtered", [("5", True), ("0", False)])
def test_run_pdf_scores_documents_and_filters_low_education(tmp_path, edu_model, threshold, filtered):
    out = tmp_path / "run"
    rc = cli.main(["run", "pdf", "--input", PDF_INPUTS, "--output", str(out), "--edu-model", str(edu_model),
                   "--edu-threshold", threshold, "--tokenizer", "words", "--no-formula-check"])
    assert rc == 0
    summary = _summary(out)
    assert summary["accounted"] is True and summary["inputs"] == 2
    rows = pq.read_table(out / "filtered").to_pylist() + pq.read_table(out / "documents").to_pylist()
    assert len(rows) == 2
    for row in rows:
        assert 0.0 <= row["edu_score"] <= 5.0 and row["edu_model"].startswith("edu-fasttext-")
    if filtered:
        assert summary["filtered"] == 2 and summary["filter_reasons"] == {"low_education": 2}
        assert summary["quality"]["tokens_removed"]["low_education_document"] > 0
        assert all(r["filter_reason"] == "low_education" for r in rows)
    else:
        assert summary["documents"] == 2 and summary["filtered"] == 0


def test_run_web_scores_pages_and_filters_low_education(tmp_path, edu_model):
    out = tmp_path / "run"
    rc = cli.main(["run", "web", "--input", WEB_INPUTS, "--output", str(out), "--no-agent",
                   "--edu-model", str(edu_model), "--min-edu", "5"])
    assert rc == 0
    summary = _summary(out)
    assert summary["accounted"] is True and summary["written"] == 0
    low = [r for r in pq.read_table(out / "filtered").to_pylist() if "low_education" in r["filter_reasons"]]
    assert low and all(0.0 <= r["edu_score"] < 5.0 and "edu-fasttext-" in r["classifier"] for r in low)


def test_a_missing_edu_model_is_refused_before_reading(tmp_path):
    assert cli.main(["run", "pdf", "--input", PDF_INPUTS, "--output", str(tmp_path / "o"),
                     "--edu-model", str(tmp_path / "none")]) == 2
