import dataclasses

from scicurate.merge import DUPLICATE_INPUT, merge_document
from scicurate.records import PageResult, PageSignals


def _page(i, text, *, n=3, source="a.pdf", status="ok", route="low_cost", reason="below_threshold", err=""):
    return PageResult(
        doc_id="d", source=source, page_index=i, doc_pages=n, status=status, text=text, parser="mineru",
        parser_version="4", tier="flash", route=route, route_reason=reason, score=0.1,
        needs_high_cost=route == "high_cost", signals=PageSignals(), error_reason=err,
        error_message="boom" if err else "",
    )


def test_pages_merge_in_order_with_exact_spans():
    pages = [_page(2, "third"), _page(0, "first"), _page(1, "second", route="high_cost", reason="top_score")]
    out = merge_document("d", pages)
    doc = out.document
    assert doc.text == "first\n\nsecond\n\nthird"
    assert [doc.text[s.start:s.end] for s in doc.spans] == ["first", "second", "third"]
    assert [s.page_index for s in doc.spans] == [0, 1, 2]
    assert doc.pages_routed == 1 and doc.pages_ok == 3 and doc.pages_failed == 0
    assert [p.page_index for p in out.pages] == [0, 1, 2]
    assert out.dead_letters == ()


def test_failed_page_keeps_an_empty_span():
    pages = [_page(0, "a"), _page(1, "", status="failed", route="low_cost", reason="failed", err="page_timeout"), _page(2, "c")]
    doc = merge_document("d", pages).document
    span = doc.spans[1]
    assert span.start == span.end and span.status == "failed"
    assert doc.pages_failed == 1 and doc.text == "a\n\nc"


def test_all_pages_failed_is_a_document_dead_letter():
    pages = [_page(i, "", n=2, status="failed", reason="failed", err="damaged_stream") for i in range(2)]
    out = merge_document("d", pages)
    assert out.document is None
    assert [d.reason for d in out.dead_letters] == ["all_pages_failed"]
    assert "damaged_stream" in out.dead_letters[0].message
    assert len(out.pages) == 2  # the page rows are still written


def test_blank_document_is_no_text():
    out = merge_document("d", [_page(0, "", n=1)])
    assert out.document is None and out.dead_letters[0].reason == "no_text"


def test_identical_bytes_at_two_paths_are_one_document():
    pages = [_page(i, f"p{i}", n=2, source=s) for s in ("b.pdf", "a.pdf") for i in range(2)]
    out = merge_document("d", pages)
    assert out.document.source == "a.pdf"
    assert [(d.source, d.reason) for d in out.dead_letters] == [("b.pdf", DUPLICATE_INPUT)]
    assert len(out.pages) == 2


def test_running_header_removed_at_merge():
    bodies = ["Alpha particles scatter.", "Beta decay emits electrons.", "Gamma rays are photons.",
              "Delta baryons are resonances.", "Epsilon is small."]
    pages = [_page(i, f"Journal X\n\n{body}\n\nMore prose on page {i} follows here, long enough.", n=5)
             for i, body in enumerate(bodies)]
    doc = merge_document("d", pages).document
    assert "Journal X" not in doc.text and "Gamma rays are photons." in doc.text
    assert doc.removed_lines >= 5


def test_removed_pages_leave_the_document_but_keep_their_rows():
    pages = [_page(0, "Real content of the paper."), _page(1, "© Publisher licence text", n=3), _page(2, "More.", n=3)]
    pages = [p if i != 1 else dataclasses.replace(p, removed="repeated_page", dedup_cluster="c") for i, p in enumerate(pages)]
    out = merge_document("d", [dataclasses.replace(p, doc_pages=3) for p in pages])
    assert out.document.text == "Real content of the paper.\n\nMore."
    assert out.document.pages_removed == 1 and out.document.spans[1].removed == "repeated_page"
    assert out.document.spans[1].start == out.document.spans[1].end
    assert out.pages[1].text == "© Publisher licence text" and out.pages[1].removed == "repeated_page"


def test_a_document_mostly_shared_with_others_keeps_its_pages():
    texts = ["Introduction to the method.", "Results of the first trial.", "Discussion and outlook."]
    pages = [dataclasses.replace(_page(i, texts[i], n=3), removed="repeated_page" if i else "",
                                 dedup_cluster=f"c{i}" if i else "") for i in range(3)]
    out = merge_document("d", pages, max_removed_share=0.5)
    assert out.document.pages_removed == 0 and out.document.text == "\n\n".join(texts)
    assert [p.removed for p in out.pages] == ["", "", ""] and out.pages[1].dedup_cluster == "c1"
