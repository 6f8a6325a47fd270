"""Fuzzing (issue 9, part 5): the seeded mutators of `scicurate.fuzz` (pure, fast), the readers
on mutated containers, regression tests for the bugs the fuzzer found, and a short end-to-end
run of both pipelines over mutated PDFs and pages (`slow`). The long run is
`python bench/fuzz.py --pdf-cases 1000 --html-cases 1000` (bench/results/fuzz.json)."""

from __future__ import annotations

import io
import re
import zlib
from collections import Counter

import pytest

from scicurate import fuzz
from scicurate.parsers import web_input
from scicurate.parsers.html_extract import CRASH_MARKER, HANG_MARKER


@pytest.fixture(scope="module")
def seeds() -> fuzz.Seeds:
    return fuzz.load_seeds()


# ---- mutators: determinism and coverage -------------------------------------------------------

def test_seeds_are_the_fixtures(seeds):
    assert {"paper_a.pdf", "image_only.pdf", "corrupt.pdf", "encrypted.pdf"} <= set(seeds.pdf)
    assert "corrupt.pdf" not in seeds.pdf_parseable and "paper_a.pdf" in seeds.pdf_parseable
    assert "empty.pdf" not in seeds.pdf_names  # nothing to mutate in 0 bytes
    assert "article.html" in seeds.html and len(seeds.html) >= 20
    assert all(body.strip() for body in seeds.html.values())


@pytest.mark.parametrize("make", [fuzz.pdf_case, fuzz.html_case, fuzz.container_case], ids=["pdf", "html", "container"])
def test_same_seed_and_index_give_the_same_bytes(seeds, make):
    for index in (0, 7, 23):
        a, b = make(3, index, seeds), make(3, index, seeds)
        assert a.data == b.data and a.mutations == b.mutations


@pytest.mark.parametrize("make", [fuzz.pdf_case, fuzz.html_case, fuzz.container_case], ids=["pdf", "html", "container"])
def test_indices_and_seeds_give_different_cases(seeds, make):
    cases = [make(0, i, seeds) for i in range(30)]
    assert len({c.data for c in cases}) == 30
    assert make(0, 5, seeds).data != make(1, 5, seeds).data


def test_no_global_randomness(seeds):
    """A case does not depend on the random module's global state or on what ran before."""
    import random

    random.seed(1)
    a = fuzz.pdf_case(0, 11, seeds).data
    random.seed(2)
    fuzz.html_case(0, 4, seeds)
    assert fuzz.pdf_case(0, 11, seeds).data == a


def test_first_mutation_is_round_robin_so_every_kind_runs(seeds):
    for kinds, make in ((list(fuzz.PDF_MUTATIONS), fuzz.pdf_case), (list(fuzz.HTML_MUTATIONS), fuzz.html_case)):
        for i in range(len(kinds) + 3):
            applied = [m.split(":", 1)[0] for m in make(0, i, seeds).mutations]
            assert kinds[i % len(kinds)] in applied and 1 <= len(applied) <= 3


def test_the_mutation_kinds_asked_for_are_there():
    assert {"bit_flip", "truncate", "chunk_delete", "chunk_duplicate", "splice", "zero_run", "xref_corrupt",
            "xref_missing", "trailer_corrupt", "wrong_length", "huge_count", "huge_mediabox", "deep_nesting",
            "parent_loop", "kids_loop", "flate_bomb", "broken_flate", "bad_object_numbers", "garbage_font",
            "encrypt_dict", "many_pages"} <= set(fuzz.PDF_MUTATIONS)
    assert {"truncate", "byte_noise", "invalid_utf8", "wrong_charset", "nul_bytes", "deep_nesting",
            "huge_attribute", "huge_line", "many_tiny_elements", "unclosed_tags", "script_bomb", "entity_storm",
            "prompt_injection", "scicurate_marker", "http_links"} <= set(fuzz.HTML_MUTATIONS)
    assert {"jsonl_line", "warc_header"} <= set(fuzz.CONTAINER_MUTATIONS)


@pytest.mark.parametrize("name", list(fuzz.PDF_MUTATIONS))
def test_every_pdf_mutation_changes_the_bytes(seeds, name):
    pool = seeds.pdf_parseable if fuzz._STAGE[name] < 2 else seeds.pdf_names
    for k, base in enumerate(pool):
        ctx = fuzz._Ctx(seeds)
        rng = fuzz.random.Random(k)
        out = fuzz.PDF_MUTATIONS[name](rng, seeds.pdf[base], ctx)
        assert out != seeds.pdf[base], (name, base, ctx.variant)


@pytest.mark.parametrize("name", list(fuzz.HTML_MUTATIONS))
def test_every_html_mutation_changes_the_bytes(seeds, name):
    for k, base in enumerate(seeds.html_names):
        ctx = fuzz._Ctx(seeds)
        out = fuzz.HTML_MUTATIONS[name](fuzz.random.Random(k), seeds.html[base], ctx)
        assert out != seeds.html[base], (name, base, ctx.variant)


def _variant(make, seeds, name, want, tries=60):
    """The first case (rng seeds 0..tries) of mutation `name` whose variant starts with `want`."""
    for k in range(tries):
        ctx = fuzz._Ctx(seeds)
        out = make[name](fuzz.random.Random(k), seeds.pdf["paper_a.pdf"], ctx)
        if ctx.variant.startswith(want):
            return out, ctx.variant
    raise AssertionError(f"no {name} variant {want} in {tries} tries")


def test_structural_pdf_mutations_hit_their_target(seeds):
    m = fuzz.PDF_MUTATIONS
    out, _ = _variant(m, seeds, "huge_count", "2147483647")
    assert b"/Count 2147483647" in out and fuzz._Doc.parse(out) is not None
    out, variant = _variant(m, seeds, "deep_nesting", "page:100000")
    assert b"[" * 100000 in out or b"<< /A " * 1000 in out, variant
    out, _ = _variant(m, seeds, "xref_missing", "no_xref")
    assert b"\nxref\n" not in out and b"trailer" in out
    out, _ = _variant(m, seeds, "parent_loop", "page_self")
    doc = fuzz._Doc.parse(out)
    assert any(re.search(rb"/Parent %d 0 R" % n, body) for n, body in doc.objects.items())
    out, _ = _variant(m, seeds, "encrypt_dict", "bogus_standard")
    assert re.search(rb"trailer\n<< /Encrypt \d+ 0 R", out)
    out, variant = _variant(m, seeds, "many_pages", "over_limit")
    assert int(variant.rsplit(":", 1)[1]) > 300 and out.count(b"/Type /Page ") + out.count(b"/Type /Page\n") >= 301


def test_a_flate_bomb_is_small_and_inflates_to_hundreds_of_megabytes(seeds):
    out, variant = _variant(fuzz.PDF_MUTATIONS, seeds, "flate_bomb", "content")
    assert len(out) < 2 << 20
    bomb = fuzz.flate_bomb(128 << 20, b"q Q ")
    d, total, data = zlib.decompressobj(), 0, bomb
    while data:
        total += len(d.decompress(data, 1 << 20))
        data = d.unconsumed_tail
    assert total == 128 << 20 and len(bomb) < 1 << 20


def test_the_rc4_case_opens_with_the_empty_password(seeds):
    import pypdfium2 as pdfium

    out, _ = _variant(fuzz.PDF_MUTATIONS, seeds, "encrypt_dict", "rc4_empty_password", tries=200)
    assert b"/Encrypt" in out
    doc = pdfium.PdfDocument(out)
    assert len(doc) == 2 and "Perovskite" in doc[0].get_textpage().get_text_range()


def test_html_cases_link_to_the_canary_and_keep_the_test_hooks(seeds):
    canary = "http://127.0.0.1:1/canary/"
    ctx = fuzz._Ctx(seeds, canary=canary)
    out = fuzz.html_http_links(fuzz.random.Random(0), seeds.html["article.html"], ctx)
    assert out.count(canary.encode()) >= 5
    starts = [fuzz.html_case(0, i, seeds, only="scicurate_marker").data for i in range(40)]
    assert any(s.startswith(HANG_MARKER) for s in starts)
    assert any(s.startswith(CRASH_MARKER) for s in starts)


# ---- the readers on mutated containers (no Beam) ----------------------------------------------

def _read(case: fuzz.ContainerCase) -> list:
    return list(web_input.read_input(io.BytesIO(case.data), f"/in/{case.name}"))


def test_every_line_and_record_of_a_mutated_container_is_accounted_for(seeds):
    """The check `check_web` applies, on the readers alone: every expected JSONL line / WARC
    page URL once, or (only where the mutation may break the file) a corrupt_input or
    unreadable failure for the rest."""
    reasons = Counter()
    for i in range(120):
        case = fuzz.container_case(5, i, seeds)
        items = _read(case)
        broke = any(isinstance(x, web_input.InputFailure) and x.reason in ("corrupt_input", "unreadable")
                    for x in items)
        assert not broke or case.may_lose_rest, (case.mutations, items[-1])
        sources = Counter(x.source for x in items)
        assert max(sources.values(), default=1) == 1, case.mutations
        for line in case.lines:
            n = sum(1 for x in items if x.source.rsplit("#", 1)[1] == str(line))
            assert n == 1 or (broke and n == 0), (case.mutations, line, items)
        for url in case.urls:
            n = sum(1 for x in items if x.url == url)
            assert n == 1 or (broke and n == 0), (case.mutations, url, items)
        reasons.update(x.reason for x in items if isinstance(x, web_input.InputFailure))
    assert {"bad_record", "corrupt_input"} <= set(reasons)


# ---- regressions for what the fuzzer found ------------------------------------------------------

def test_a_warc_record_without_target_uri_costs_only_itself():
    """warcio 1.8 raised AttributeError (None.startswith) on a response record without
    WARC-Target-URI; read_warc dead-lettered the rest of the file as corrupt_input."""
    records = [fuzz.warc_record("https://a.example/1", b"<p>one</p>"),
               fuzz.warc_record("https://a.example/2", b"<p>two</p>", target=False),
               fuzz.warc_record("https://a.example/3", b"<p>three</p>")]
    for data, name in ((fuzz.warc_file(records), "x.warc.gz"), (fuzz.warc_file(records, compress=False), "x.warc")):
        items = list(web_input.read_warc(io.BytesIO(data), name))
        assert [type(x).__name__ for x in items] == ["WebPage", "InputFailure", "WebPage"]
        assert items[1].reason == "bad_record" and "WARC-Target-URI" in items[1].message
        assert items[2].url == "https://a.example/3" and items[2].body == b"<p>three</p>"


def test_a_lone_surrogate_in_a_jsonl_field_is_replaced_at_read():
    """A JSON `"\\ud800"` escape in a row's url crashed `run web` (UnicodeEncodeError in the
    extraction protocol, and Parquet cannot hold it): the reader now replaces it by "?"."""
    line = (b'{"url": "http://x.example/\\ud800a", "html": "<p>text</p>", "content_type": "text/html\\udcff",'
            b' "date": "\\udfff"}\n')
    (page,) = web_input.read_jsonl(io.BytesIO(line), "s.jsonl")
    assert page.url == "http://x.example/?a" and page.domain == "x.example"
    for text in (page.url, page.content_type, page.fetched, page.page_id):
        text.encode("utf-8")
    ok = b'{"url": "http://x.example/\\ud83d\\ude00", "html": "<p>text</p>"}\n'  # a valid pair is kept
    assert next(web_input.read_jsonl(io.BytesIO(ok), "s.jsonl")).url == "http://x.example/\U0001f600"


def test_a_corrupt_gzip_member_in_a_warc_is_a_dead_letter_not_a_garbage_page():
    """warcio reads a gzip member that fails to inflate as plain bytes, and the rest of the file
    with it: a flipped bit made compressed garbage a page with a garbage URL (ARC header
    parsing) and the records after it vanished without a dead letter."""
    records = [fuzz.warc_record(f"https://a.example/{i}", b"<p>page %d</p>" % i) for i in range(4)]
    urls = {f"https://a.example/{i}" for i in range(4)}
    members = [fuzz.warc_file([r]) for r in records]
    messages = []
    for at in range(12, len(members[1]) - 8, 7):
        bad = bytearray(members[1])
        bad[at] ^= 0x10
        items = list(web_input.read_warc(io.BytesIO(members[0] + bytes(bad) + members[2] + members[3]), "x.warc.gz"))
        pages = [x for x in items if isinstance(x, web_input.WebPage)]
        assert {p.url for p in pages} <= urls, at
        if len(pages) < 4:  # the flip broke member 1: one dead letter stands for what is lost
            assert isinstance(items[-1], web_input.InputFailure) and items[-1].reason == "corrupt_input", at
            messages.append(items[-1].message)
    assert messages
    # The fuzz case that found it: the raw bytes of the broken member parsed as an ARC header.
    case = fuzz.container_case(5, 60, fuzz.load_seeds())
    assert case.mutations[0].startswith("warc_header:gzip_flip")
    items = list(web_input.read_warc(io.BytesIO(case.data), case.name))
    assert {x.url for x in items if isinstance(x, web_input.WebPage)} <= set(case.urls)
    assert items[-1].reason == "corrupt_input" and "gzip member" in items[-1].message


def test_ocr_renders_a_huge_page_at_a_bounded_size(seeds, tmp_path):
    """/MediaBox [0 0 14400 14400] on a scanned page made OCR render a 28,800 px square
    (about 2.5 GB per copy, three copies); the render is now capped on its long side."""
    import pypdfium2 as pdfium

    from scicurate.parsers.lowcost import OCR_MAX_SIDE_PX, LowCostParser, ocr_scale

    assert ocr_scale(595, 842) == 2.0
    assert ocr_scale(14400, 14400) * 14400 <= OCR_MAX_SIDE_PX
    assert ocr_scale(0, 0) == 2.0
    doc = fuzz._Doc.parse(seeds.pdf["image_only.pdf"])
    for n in doc.pages() + doc.page_nodes():
        doc.objects[n] = fuzz._set_key(doc.objects[n], b"MediaBox", b"[0 0 14400 14400]")
    shapes = []
    parser = LowCostParser()
    parser._ocr = lambda image: (shapes.append(image.shape), ([], None))[1]
    pdf = pdfium.PdfDocument(doc.build())
    page = pdf[0]
    try:
        assert parser.ocr_page(page) == ()
    finally:
        page.close()
        pdf.close()
    assert shapes and max(shapes[0][:2]) <= OCR_MAX_SIDE_PX


# ---- the short end-to-end run (CI) ---------------------------------------------------------------

@pytest.mark.slow
def test_both_pipelines_account_for_every_mutated_input_and_never_crash(tmp_path):
    config = fuzz.FuzzConfig(pdf_cases=30, html_cases=150, container_cases=15, seed=0, details=False,
                             page_timeout=5, extract_timeout=3, extra_pdf=("--window-pages", "2"))
    report = fuzz.run_fuzz(tmp_path, config)
    assert report["crashes"] == 0, report["crash_details"]
    assert report["unaccounted"] == {"pdf": 0, "html": 0, "containers": 0}, report["problems"]
    assert report["problems"] == []
    assert report["canary_hits"] == 0
    assert sum(report["pdf_outcomes"].values()) == 30 and sum(report["html_outcomes"].values()) == 150
    # the test can fail: the cases must reach several distinct dead ends, not one
    pdf_dead = {k for k in report["pdf_outcomes"] if k.startswith("dead_letter:")}
    web_dead = {k for k in {**report["html_outcomes"], **report["container_outcomes"]} if k.startswith("dead_letter:")}
    assert len(pdf_dead) >= 3, report["pdf_outcomes"]
    assert {"dead_letter:extract_crash", "dead_letter:extract_timeout", "dead_letter:bad_record",
            "dead_letter:corrupt_input"} <= web_dead, web_dead
    assert report["pdf_outcomes"].get("document", 0) > 0 and report["html_outcomes"].get("written", 0) > 0
