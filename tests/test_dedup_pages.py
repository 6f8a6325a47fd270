"""Global page-level dedup: the pure rules, and RepeatedPages in Beam on synthetic pages."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from scicurate.dedup.pages import RepeatedPages, doc_of, mark, repeated_clusters, takes_part
from scicurate.records import PageResult

LICENCE = ("All rights reserved. No part of this publication may be reproduced, stored in a retrieval "
           "system or transmitted in any form without the prior written permission of the publisher.")


def _page(doc, index, text, status="ok"):
    return PageResult(doc_id=doc, source=f"{doc}.pdf", page_index=index, doc_pages=3, status=status, text=text,
                      parser="mineru", parser_version="4", tier="flash", route="low_cost",
                      route_reason="below_threshold", score=0.1, needs_high_cost=False,
                      error_reason="x" if status == "failed" else "")


def test_pure_rules():
    assert doc_of("ab" * 32 + ":00007") == "ab" * 32
    labels = [("a:00001", "a:00001"), ("b:00001", "a:00001"), ("a:00002", "a:00002"), ("a:00003", "a:00002")]
    assert repeated_clusters(labels, 2) == {"a:00001": "a:00001", "b:00001": "a:00001"}
    assert repeated_clusters(labels, 3) == {}
    page = _page("a", 1, LICENCE)
    assert mark(page, "c").removed == "repeated_page" and mark(page, "c").dedup_cluster == "c"
    assert mark(mark(page, "c"), "") == page
    assert takes_part(page, 8) and not takes_part(_page("a", 0, "Short heading"), 8)
    assert not takes_part(_page("a", 0, LICENCE, status="failed"), 8)


def test_repeated_pages_across_three_documents_are_marked_and_nothing_is_lost():
    docs = {
        "a": ["Alpha paper on quantum dots and their optical spectra measured at low temperature today", LICENCE],
        "b": ["Beta paper about soil carbon fluxes in boreal forests over a decade of observations", LICENCE + " 2023"],
        "c": ["Gamma notes on group cohomology with worked examples for graduate students this term",
              "Alpha paper on quantum dots and their optical spectra measured at low temperature today"],
    }
    pages = [_page(d, i, t) for d, texts in docs.items() for i, t in enumerate(texts)]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = (p | beam.Create(pages) | RepeatedPages(min_documents=2, threshold=0.7)
                 | beam.Map(lambda r: (r.page_id, r.removed, r.dedup_cluster)))
        assert_that(out, equal_to([
            ("a:00000", "repeated_page", "a:00000"), ("a:00001", "repeated_page", "a:00001"),
            ("b:00000", "", ""), ("b:00001", "repeated_page", "a:00001"),
            ("c:00000", "", ""), ("c:00001", "repeated_page", "a:00000"),
        ]))
