"""End to end: the PDF pipeline's quality controls on PDFs made in the test (garbled text,
a SMILES string, a good and a broken formula), through the CLI on the offline FnApiRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from scicurate import cli, schema

pytestmark = pytest.mark.slow

SENTENCES = [
    "The measured cross section agrees with the prediction of the standard model within two standard deviations.",
    "We describe the detector, the selection of events and the estimate of the background from control samples.",
    "Systematic uncertainties are dominated by the calibration of the energy scale and by the luminosity.",
    "The trigger efficiency was measured with an independent sample of events recorded by a second trigger.",
    "Simulated events were reweighted so that the distribution of interactions per crossing matches the data.",
    "A maximum likelihood fit to the invariant mass spectrum gives the signal yield and its uncertainty.",
    "The results are combined with earlier measurements, which improves the precision by about a third.",
    "Further data recorded in the coming years will reduce the statistical uncertainty below the systematic one.",
]


def shifted(text: str) -> str:
    a = "abcdefghijklmnopqrstuvwxyz"
    b = "qwertyuiopasdfghjklzxcvbnm"
    return text.translate(str.maketrans(a + a.upper(), b + b.upper()))


def make_pdf(path: Path, pages: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))


def have_katex() -> bool:
    from scicurate.parsers.formula_check import find_katex_dir

    try:
        find_katex_dir()
    except Exception:  # noqa: BLE001
        return False
    import shutil

    return shutil.which("node") is not None


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not have_katex():
        pytest.skip("the formula check needs Node.js and `npm ci` (make install)")
    inputs = tmp_path_factory.mktemp("in")
    first = " ".join(SENTENCES[:4])
    second = " ".join(SENTENCES[4:])
    make_pdf(inputs / "garbled.pdf", [shifted(first), shifted(second)])
    make_pdf(inputs / "half.pdf", [first + " " + second, shifted(second + " " + first)[:200]])
    make_pdf(inputs / "chem.pdf", [
        first + " Aspirin, CC(=O)Oc1ccccc1C(=O)O, was dissolved in water (H2O). The kinetic energy is "
        "$E = \\frac{1}{2} m v^2$ while $\\frac{1}{$ is cut off.",
        second,
    ])
    out = tmp_path_factory.mktemp("out")
    rc = cli.main(["run", "pdf", "--input", str(inputs / "*.pdf"), "--output", str(out), "--tokenizer", "words",
                   "--runner=FnApiRunner"])
    assert rc == 0
    return out


def rows(out: Path, name: str) -> list[dict]:
    return pq.read_table(out / name).to_pylist()


def test_garbled_document_is_filtered_whole_with_its_reason(run):
    summary = json.loads((run / "summary.json").read_text())
    assert summary["accounted"] is True
    assert summary["inputs"] == 3 and summary["documents"] == 2 and summary["filtered"] == 1
    assert summary["filter_reasons"] == {"garbled": 1}
    (filtered,) = rows(run, "filtered")
    assert Path(filtered["source"]).name == "garbled.pdf"
    assert filtered["filter_reason"] == "garbled" and "garble" in filtered["filter_detail"]
    assert filtered["garbled_share"] == 1.0


def test_every_page_has_a_garble_score_and_garbled_pages_keep_their_rows(run):
    pages = rows(run, "pages")
    assert len(pages) == 6
    for page in pages:
        q = page["quality"]
        assert 0.0 <= q["garble"] <= 1.0
        if Path(page["source"]).name == "garbled.pdf":
            assert page["removed"] == "garbled" and q["garble"] >= 0.5 and "non_words" in q["garble_reasons"]
            assert page["text"]        # the rejected text stays readable
        elif Path(page["source"]).name == "chem.pdf":
            assert page["removed"] == "" and q["garble"] < 0.5 and q["lang"] == "en"


def test_half_garbled_document_loses_the_garbled_page_only(run):
    docs = {Path(d["source"]).name: d for d in rows(run, "documents")}
    half = docs["half.pdf"]
    assert half["pages_removed"] == 1 and 0 < half["garbled_share"] < 0.5
    assert "measured cross section" in half["text"]
    assert shifted("measured") not in half["text"]


def test_formulas_are_checked_per_page_and_broken_ones_recorded(run):
    chem = [p for p in rows(run, "pages") if Path(p["source"]).name == "chem.pdf" and p["page_index"] == 0][0]
    q = chem["quality"]
    assert q["formulas"] == 2 and q["formulas_broken"] == 1
    (issue,) = q["formula_issues"]
    assert issue["latex"] == "$\\frac{1}{$" and "KaTeX" in issue["error"]
    assert chem["reparse_reason"] == "broken_formulas:1"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["formulas"]["formulas"] == 2 and summary["formulas"]["broken"] == 1
    assert summary["reparse_candidates"] == {"broken_formulas": 1}


def test_smiles_are_tagged_in_the_document_and_recorded(run):
    docs = {Path(d["source"]).name: d for d in rows(run, "documents")}
    assert "<SMILES>CC(=O)Oc1ccccc1C(=O)O</SMILES>" in docs["chem.pdf"]["text"]
    assert "<SMILES>H2O" not in docs["chem.pdf"]["text"]
    assert docs["chem.pdf"]["scistrings"] == 1


def test_summary_reports_tokens_removed_by_each_control(run):
    quality = json.loads((run / "summary.json").read_text())["quality"]
    removed = quality["tokens_removed"]
    assert removed["garbled"] > 0          # the garbled page of half.pdf and garbled.pdf's pages
    assert quality["pages_removed"]["garbled"] == 3
    assert quality["tokens_parsed"] == quality["tokens_written"] + sum(removed.values())
    assert 0 < quality["share_removed"]["garbled"] < 1


def test_output_schemas(run):
    assert pq.read_schema(next((run / "pages").glob("*.parquet"))).equals(schema.PAGE_SCHEMA, check_metadata=False)
    assert pq.read_schema(next((run / "filtered").glob("*.parquet"))).equals(
        schema.FILTERED_DOCUMENT_SCHEMA, check_metadata=False)
