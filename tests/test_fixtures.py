"""The committed fixture PDFs still are what ``tests/fixtures/expected.json`` says they are.

Reads them with pypdfium2 only, so a failure here means a fixture (or PDFium) changed, not the
pipeline. The last tests rerun ``make_fixtures.py`` and demand byte-identical output.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

pdfium = pytest.importorskip("pypdfium2")

FIXTURES = Path(__file__).parent / "fixtures"
PDF_DIR = FIXTURES / "pdf"
GENERATOR = FIXTURES / "make_fixtures.py"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
FILES = EXPECTED["files"]
DOCUMENTS = sorted(name for name, spec in FILES.items() if spec["outcome"] == "document")
DEAD_LETTERS = sorted(name for name, spec in FILES.items() if spec["outcome"] == "dead_letter")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")

# PDFium reports a hyphen that ends a line as U+FFFE and drops the line break after it;
# other extractors keep "-" or U+00AD and a newline.
LINE_END_HYPHEN = "[-\u00ad\ufffe\x02]"


def _page_texts(name: str) -> list[str]:
    document = pdfium.PdfDocument(PDF_DIR / name)
    try:
        return [page.get_textpage().get_text_range() for page in document]
    finally:
        document.close()


def _open_error(name: str) -> str:
    with pytest.raises(pdfium.PdfiumError) as caught:
        pdfium.PdfDocument(PDF_DIR / name)
    return str(caught.value)


def test_expected_lists_exactly_the_generated_files():
    assert sorted(FILES) == sorted(path.name for path in PDF_DIR.glob("*.pdf"))
    assert {spec["outcome"] for spec in FILES.values()} == {"document", "dead_letter"}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_document_page_count(name):
    document = pdfium.PdfDocument(PDF_DIR / name)
    try:
        assert len(document) == FILES[name]["pages"]
    finally:
        document.close()


@pytest.mark.parametrize("name", DOCUMENTS)
def test_text_layer_matches_expected(name):
    texts = _page_texts(name)
    no_text = set(FILES[name].get("no_text_layer_pages", []))
    for index, text in enumerate(texts):
        if index in no_text:
            assert text.strip() == "", f"{name} page {index} should have no text layer"
        else:
            assert len(text.split()) >= 20, f"{name} page {index} has almost no text"


def test_image_only_page_has_no_text_layer_but_an_image():
    assert FILES["image_only.pdf"]["no_text_layer_pages"] == [0]
    document = pdfium.PdfDocument(PDF_DIR / "image_only.pdf")
    try:
        page = document[0]
        assert page.get_textpage().count_chars() == 0
        kinds = [obj.type for obj in page.get_objects()]
        assert kinds == [pdfium.raw.FPDF_PAGEOBJ_IMAGE]
    finally:
        document.close()


def test_image_only_is_readable_by_ocr():
    ocr_module = pytest.importorskip("rapidocr_onnxruntime", reason="rapidocr-onnxruntime absent")
    import numpy

    document = pdfium.PdfDocument(PDF_DIR / "image_only.pdf")
    try:
        image = document[0].render(scale=2).to_pil().convert("RGB")
    finally:
        document.close()
    result, _ = ocr_module.RapidOCR()(numpy.asarray(image))
    words = set(" ".join(line[1] for line in result or []).replace(".", " ").split())
    missing = set(EXPECTED["ocr_words"]) - words
    assert not missing, f"OCR did not find {sorted(missing)} in {sorted(words)}"


@pytest.mark.parametrize(
    ("name", "message"),
    [("corrupt.pdf", "format"), ("encrypted.pdf", "password"), ("not_a_pdf.pdf", "format")],
)
def test_unreadable_files_raise(name, message):
    assert message in _open_error(name).lower()


def test_encrypted_opens_with_its_password():
    document = pdfium.PdfDocument(PDF_DIR / "encrypted.pdf", password="secret")
    try:
        assert "password" in document[0].get_textpage().get_text_range()
    finally:
        document.close()


def test_dead_letter_files_have_the_bytes_their_reason_claims():
    reasons = {name: FILES[name]["reason"] for name in DEAD_LETTERS}
    assert reasons == {
        "corrupt.pdf": "corrupt",
        "empty.pdf": "empty",
        "encrypted.pdf": "encrypted",
        "not_a_pdf.pdf": "not_pdf",
    }
    assert (PDF_DIR / "empty.pdf").stat().st_size == 0
    assert not (PDF_DIR / "not_a_pdf.pdf").read_bytes().startswith(b"%PDF")
    for name in ("corrupt.pdf", "encrypted.pdf"):
        assert (PDF_DIR / name).read_bytes().startswith(b"%PDF-")


def test_equations_text_layer_has_math_symbols():
    text = _page_texts("equations.pdf")[0]
    symbols = FILES["equations.pdf"]["math_symbols"]
    assert len(symbols) >= 10
    missing = [symbol for symbol in symbols if symbol not in text]
    assert not missing, f"math symbols missing from the text layer: {missing}"


def test_table_rows_are_in_the_text_layer():
    lines = [line.split() for line in _page_texts("table.pdf")[0].splitlines()]
    spec = FILES["table.pdf"]["table"]
    rows = [cells for cells in lines if re.fullmatch(r"[A-C]-\d", cells[0] if cells else "")]
    assert len(rows) + 1 == spec["rows"]
    assert all(len(cells) == spec["columns"] for cells in rows)
    assert any(" ".join(cells) == spec["caption"] for cells in lines)


def test_papers_share_their_licence_page_only():
    a_texts, b_texts = _page_texts("paper_a.pdf"), _page_texts("paper_b.pdf")
    assert FILES["paper_a.pdf"]["repeated_pages"] == FILES["paper_b.pdf"]["repeated_pages"] == [1]
    assert a_texts[1] == b_texts[1]
    assert EXPECTED["repeated_page_text"] in a_texts[1]
    assert a_texts[0] != b_texts[0]
    assert EXPECTED["repeated_page_text"] not in a_texts[0] + b_texts[0]


def test_text_only_has_header_footer_and_a_line_end_hyphen():
    spec = FILES["text_only.pdf"]
    texts = _page_texts("text_only.pdf")
    for text, number in zip(texts, spec["page_numbers"], strict=True):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        assert lines[0] == spec["running_header"]
        assert lines[-1] == number
    broken, joined = EXPECTED["hyphenated"]["broken"], EXPECTED["hyphenated"]["joined"]
    head, tail = broken.rstrip("-"), joined[len(broken) - 1 :]
    pattern = re.escape(head) + LINE_END_HYPHEN + r"\s*" + re.escape(tail)
    assert re.search(pattern, texts[0]), f"{broken!r} + {tail!r} not found"
    assert joined not in texts[0] + texts[1], "the hyphenated word also appears unbroken"


def test_text_only_hyphen_really_ends_a_line():
    """The character after the hyphen sits on a lower line, left of the hyphen."""
    head = EXPECTED["hyphenated"]["broken"].rstrip("-")
    document = pdfium.PdfDocument(PDF_DIR / "text_only.pdf")
    try:
        textpage = document[0].get_textpage()
        text = textpage.get_text_range()
        hyphen = text.index(head) + len(head)
        left, _, right, top = textpage.get_charbox(hyphen)
        next_left, _, _, next_top = textpage.get_charbox(hyphen + 1)
    finally:
        document.close()
    assert next_top < top - 3, "next character is not on a lower line"
    assert next_left < left, "next character does not start a new line"


# -- determinism of the generator ------------------------------------------------------------

GENERATOR_DEPS = {"fpdf2": "fpdf", "pikepdf": "pikepdf", "Pillow": "PIL", "fonttools": "fontTools"}


def _generator_skip_reason() -> str | None:
    for dist, module in GENERATOR_DEPS.items():
        if importlib.util.find_spec(module) is None:
            return f"{dist} not installed (pip install -e '.[dev]') - cannot rerun the generator"
    for font in ("DejaVuSans.ttf", "DejaVuSerif.ttf"):
        if not (DEJAVU / font).is_file():
            return f"{DEJAVU / font} absent (apt-get install fonts-dejavu-core)"
    return None


GENERATOR_SKIP_REASON = _generator_skip_reason()
needs_generator = pytest.mark.skipif(
    GENERATOR_SKIP_REASON is not None, reason=GENERATOR_SKIP_REASON or ""
)


def _generate(out_dir: Path) -> dict[str, bytes]:
    subprocess.run([sys.executable, str(GENERATOR), str(out_dir)], check=True)
    outputs = {f"pdf/{path.name}": path.read_bytes() for path in (out_dir / "pdf").iterdir()}
    outputs["expected.json"] = (out_dir / "expected.json").read_bytes()
    return outputs


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> tuple[dict[str, bytes], dict[str, bytes]]:
    return (
        _generate(tmp_path_factory.mktemp("first")),
        _generate(tmp_path_factory.mktemp("second")),
    )


@needs_generator
def test_generator_is_deterministic(regenerated):
    first, second = regenerated
    assert sorted(first) == sorted(second)
    differing = [name for name in first if first[name] != second[name]]
    assert not differing, f"two runs of make_fixtures.py differ in {differing}"


def _installed_versions() -> dict[str, str | None]:
    versions = {}
    for dist in EXPECTED["generator"]:
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    return versions


@needs_generator
def test_generator_reproduces_the_committed_fixtures(regenerated):
    if _installed_versions() != EXPECTED["generator"]:
        pytest.skip(
            f"generator libraries {_installed_versions()} differ from the ones that made the "
            f"committed fixtures {EXPECTED['generator']}; byte equality is not expected"
        )
    first, _ = regenerated
    committed = {f"pdf/{path.name}": path.read_bytes() for path in PDF_DIR.glob("*.pdf")}
    committed["expected.json"] = (FIXTURES / "expected.json").read_bytes()
    assert sorted(first) == sorted(committed)
    stale = [name for name in committed if committed[name] != first[name]]
    assert not stale, f"committed fixtures out of date, rerun make_fixtures.py: {stale}"
