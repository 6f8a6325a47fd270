"""The sandboxed low-cost parser: real child process, real MinerU (flash tier), real PDFium."""

import os
import signal
import zlib

import pytest

from scicurate.config import PdfConfig
from scicurate.parsers.sandbox import SandboxedParser
from scicurate.parsers.split import DocumentError, precheck
from scicurate.records import PdfInput

from conftest import FIXTURE_PDFS


@pytest.fixture(scope="module")
def sandbox():
    sb = SandboxedParser(PdfConfig(window_pages=1))
    sb.start()
    yield sb
    sb.close()


def _pdf(name):
    path = FIXTURE_PDFS / name
    return PdfInput.from_bytes(str(path), path.read_bytes())


@pytest.mark.parametrize("name,reason", [
    ("corrupt.pdf", "corrupt"), ("encrypted.pdf", "encrypted"), ("empty.pdf", "empty"), ("not_a_pdf.pdf", "not_pdf"),
])
def test_bad_documents_raise_their_reason(sandbox, name, reason):
    with pytest.raises(DocumentError) as err:
        list(sandbox.split(_pdf(name)))
    assert err.value.reason == reason and err.value.message


def test_precheck_size_cap():
    with pytest.raises(DocumentError) as err:
        precheck(b"%PDF-1.4" + b"x" * 5000, max_bytes=1024)
    assert err.value.reason == "too_large"


def test_too_many_pages(tmp_path):
    sb = SandboxedParser(PdfConfig(max_pages=1))
    try:
        with pytest.raises(DocumentError) as err:
            list(sb.split(_pdf("text_only.pdf")))
        assert err.value.reason == "too_many_pages"
    finally:
        sb.close()


def test_windows_cover_every_page_once(sandbox):
    windows = list(sandbox.split(_pdf("text_only.pdf")))
    assert [(w.first_page, w.num_pages, w.doc_pages) for w in windows] == [(0, 1, 2), (1, 1, 2)]
    pages = [p for w in windows for p in sandbox.parse_window(w)]
    assert [p.page_index for p in pages] == [0, 1]
    assert all(p.status == "ok" and p.parser == "mineru" and p.tier == "flash" for p in pages)
    text = " ".join(b.text for p in pages for b in p.blocks)
    assert "relaxation time" in text


def test_page_without_text_layer_is_ocrd(sandbox, expected):
    (window,) = sandbox.split(_pdf("image_only.pdf"))
    (page,) = sandbox.parse_window(window)
    assert page.parser == "rapidocr" and page.text_layer.chars == 0
    assert page.text_layer.image_area_ratio > 0.9
    text = " ".join(b.text for b in page.blocks).lower()
    for word in expected["ocr_words"]:
        assert word.lower() in text


def test_damaged_flate_stream_fails_only_that_page(tmp_path, sandbox):
    data = bytearray((FIXTURE_PDFS / "text_only.pdf").read_bytes())
    # Flip the last byte of the first Flate stream: its Adler-32 checksum no longer matches.
    start = data.index(b"stream\n") + len(b"stream\n")
    end = data.index(b"endstream", start)
    body = bytes(data[start:end]).rstrip(b"\r\n")
    zlib.decompress(body)  # it was a good stream
    data[start + len(body) - 1] ^= 0xFF
    pdf = PdfInput.from_bytes("damaged.pdf", bytes(data))
    pages = [p for w in sandbox.split(pdf) for p in sandbox.parse_window(w)]
    statuses = sorted((p.page_index, p.status, p.error_reason) for p in pages)
    assert statuses[0][1:] == ("failed", "damaged_stream") or statuses[1][1:] == ("failed", "damaged_stream")
    assert sum(1 for s in statuses if s[1] == "ok") == 1


def test_timeout_kills_child_and_records_page_timeout():
    sb = SandboxedParser(PdfConfig(page_timeout_s=0.001))
    try:
        windows = list(sb.split(_pdf("text_only.pdf")))
        pages = [p for w in windows for p in sb.parse_window(w)]
        assert [(p.status, p.error_reason) for p in pages] == [("failed", "page_timeout")] * 2
        assert sb.restarts >= 2
    finally:
        sb.close()


def test_crashed_child_is_restarted_and_the_window_retried(sandbox):
    windows = list(sandbox.split(_pdf("paper_a.pdf")))
    os.killpg(sandbox._proc.pid, signal.SIGKILL)  # simulate a native crash
    sandbox._proc.wait()
    before = sandbox.restarts
    pages = [p for w in windows for p in sandbox.parse_window(w)]
    assert [p.status for p in pages] == ["ok", "ok"]
    assert sandbox.restarts == before + 1


def test_three_thousand_page_pdf_splits_into_bounded_windows(tmp_path):
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    for _ in range(3000):
        doc.new_page(300, 400)
    path = tmp_path / "big.pdf"
    doc.save(str(path))
    doc.close()
    config = PdfConfig(window_pages=8)
    sb = SandboxedParser(config, load_parser=False)
    try:
        pdf = PdfInput.from_bytes(str(path), path.read_bytes())
        seen = 0
        biggest = 0
        for window in sb.split(pdf):  # a generator: one window's bytes at a time
            assert window.num_pages <= 8 and window.first_page == seen and window.doc_pages == 3000
            seen += window.num_pages
            biggest = max(biggest, len(window.pdf_bytes))
        assert seen == 3000
        assert biggest < len(pdf.data) / 100  # a window is a small fraction of the document
    finally:
        sb.close()


def _bomb_pdf(inflated_mb: int) -> bytes:
    """Two pages: the first draws its text after `inflated_mb` MiB of spaces packed into a
    ~1/1000-size Flate stream (a decompression bomb), the second is an ordinary page."""
    packer = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    bomb = b"".join(packer.compress(chunk) for _ in range(inflated_mb))
    bomb += packer.compress(b"BT /F1 12 Tf 72 720 Td (after the bomb) Tj ET") + packer.flush()
    plain = zlib.compress(b"BT /F1 12 Tf 72 720 Td (An ordinary page of an ordinary paper.) Tj ET")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R /Resources << /Font << /F1 7 0 R >> >> >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R /Resources << /Font << /F1 7 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(bomb) + bomb + b"\nendstream",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(plain) + plain + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_a_decompression_bomb_page_fails_alone_and_is_never_inflated(sandbox):
    data = _bomb_pdf(300)                                # 300 MiB of content from ~300 KB
    assert len(data) < 1 << 20
    pages = [p for w in sandbox.split(PdfInput.from_bytes("bomb.pdf", data)) for p in sandbox.parse_window(w)]
    assert [(p.page_index, p.status, p.error_reason) for p in pages] == [
        (0, "failed", "decompression_bomb"), (1, "ok", "")]
    assert "inflate past 256 MiB" in pages[0].error_message
    assert "ordinary page" in pages[1].text_layer.text


def test_the_bomb_check_counts_inflation_without_holding_it():
    from scicurate.parsers.split import _inflated_size

    raw = zlib.compress(b"a" * (5 << 20))
    assert _inflated_size(raw, 10 << 20) == 5 << 20
    assert _inflated_size(raw, 1 << 20) == (1 << 20) + 1
    with pytest.raises(zlib.error):
        _inflated_size(raw[:-3] + b"\x00\x00\x00", 10 << 20)


@pytest.mark.skipif(not os.path.exists("/proc/self/limits"), reason="reads the child's limits from Linux /proc")
def test_parser_processes_run_under_the_memory_cap():
    sb = SandboxedParser(PdfConfig(parser_memory_mb=1536), load_parser=False)
    try:
        sb.start()
        limits = open(f"/proc/{sb._proc.pid}/limits").read()
        line = next(l for l in limits.splitlines() if l.startswith("Max address space"))
        assert line.split()[3:5] == [str(1536 << 20)] * 2
    finally:
        sb.close()


def test_an_allocation_past_the_cap_is_out_of_memory_not_a_parser_error():
    from scicurate.parsers.sandbox import classify_error as _classify

    assert _classify(MemoryError()) == "out_of_memory"
    assert _classify(ValueError("x")) == "parser_error"
