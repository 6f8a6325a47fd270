"""Garbled-text detector: features, score, thresholds, and the PDF pipeline's quality shells."""

from __future__ import annotations

import dataclasses

import pytest

from scicurate.classifiers import garble
from scicurate.classifiers.garble import GarbleConfig, GarbleDetector, GarbleFeatures, measure, score
from scicurate.config import ConfigError, PdfConfig
from scicurate.pipelines import quality_steps as quality
from scicurate.records import DocumentResult, PageQuality, PageResult, PageSpan

PROSE = (
    "The measured cross section agrees with the prediction of the standard model within two "
    "standard deviations. We describe the detector, the selection of events and the estimate of "
    "the background from control samples in data. Systematic uncertainties are dominated by the "
    "calibration of the energy scale and by the luminosity. "
)
GERMAN = (
    "Die Quotiententopologie ist die feinste Topologie, sodass die Projektion stetig wird. Ein Raum "
    "heißt zusammenhängend, wenn es keine offenen, nichtleeren Teilmengen gibt, deren Vereinigung "
    "der ganze Raum ist. Jeder zusammenhängende Raum ist auch wegzusammenhängend, wenn er lokal "
    "wegzusammenhängend ist. "
)
MATHS = (
    "Let $f\\colon X \\to Y$ be continuous and $K \\subseteq X$ compact. Then $f(K)$ is compact. "
    "$$\\int_0^1 f(x)\\,dx = F(1) - F(0), \\qquad \\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$$ "
    "Proof: let $(U_i)_{i \\in I}$ be an open cover of $f(K)$; then $(f^{-1}(U_i))$ covers $K$. "
    "Since P, Q, R are collinear, d(P, R) = d(P, Q) + d(Q, R) holds for the points P, Q and R. "
)


def shifted(text: str) -> str:
    a = "abcdefghijklmnopqrstuvwxyz"
    b = "qwertyuiopasdfghjklzxcvbnm"
    return text.translate(str.maketrans(a + a.upper(), b + b.upper()))


@pytest.fixture(scope="module")
def detector() -> GarbleDetector:
    return GarbleDetector().load()


def one(detector: GarbleDetector, text: str):
    return detector.scores([text])[0]


CHINESE = ("量子力学是描述微观粒子运动规律的物理学分支。它与相对论一起构成现代物理学的理论基础。"
           "薛定谔方程描述了量子态随时间的演化，波函数的模平方给出粒子在空间中出现的概率密度。")
JAPANESE = "量子力学は、分子や原子、あるいはそれを構成する電子など、微視的な物理現象を記述する力学である。"
RUSSIAN = ("Квантовая механика — раздел теоретической физики, описывающий физические явления, в которых "
           "действие сравнимо по величине с постоянной Планка. ")


@pytest.mark.parametrize("text", [PROSE * 2, GERMAN * 2, MATHS * 2, CHINESE * 2, JAPANESE * 3, RUSSIAN * 2])
def test_readable_text_scores_low(detector, text):
    result = one(detector, text)
    assert result.score < 0.3, garble.describe(result)
    assert result.reasons == ()


@pytest.mark.parametrize("make, reason", [
    (lambda t: "".join(c if c.isspace() else f"(cid:{ord(c) % 90})" for c in t), garble.CID),
    (shifted, garble.WORDS),
    (lambda t: t.encode("utf-8").decode("cp1252", errors="replace").replace("e", "Ã©"), garble.MOJIBAKE),
    (lambda t: t.replace(" ", ""), garble.LONG_TOKENS),
    (lambda t: " ".join(t.replace(" ", "  ")), garble.SINGLE_CHARS),
    (lambda t: "".join("\ufffd" if i % 4 == 0 else c for i, c in enumerate(t)), garble.REPLACEMENT),
])
def test_each_failure_mode_is_caught_with_its_reason(detector, make, reason):
    result = one(detector, make(PROSE * 2))
    assert result.score >= 0.5, garble.describe(result)
    assert reason in result.reasons


def test_short_text_is_not_judged(detector):
    result = one(detector, "(cid:3)(cid:4) 12")
    assert result.score == 0.0 and result.reasons == (garble.TOO_SHORT,)


def test_formulas_and_markup_are_not_prose():
    prose = garble.prose_of("Energy $E = mc^2$ and $$\\sum_i x_i$$ x<sub>n+1</sub> see https://a.org/x \\alpha done")
    assert "mc^2" not in prose and "sum" not in prose and "n+1" not in prose and "https" not in prose
    assert "Energy" in prose and "done" in prose


def test_soft_features_need_enough_prose():
    # no dictionary words, no language: garbled on a long page, not judged on a short one
    features = GarbleFeatures(chars=500, prose_chars=80, word_likeness=0.0, lang_prob=0.05)
    assert score(features).score == 0.0
    assert score(dataclasses.replace(features, prose_chars=400)).score >= 0.5


def test_score_is_monotone_in_each_feature():
    base = GarbleFeatures(chars=1000, prose_chars=1000)
    for name, (clean, garbled, _w, _r) in garble.BOUNDS.items():
        low = score(dataclasses.replace(base, **{name: clean})).score
        high = score(dataclasses.replace(base, **{name: garbled})).score
        assert high > low, name


def test_measure_without_language_id_and_empty_text():
    assert measure("", None) == GarbleFeatures()
    features = measure(PROSE, None)
    assert features.lang == "" and features.word_likeness > 0.9


def test_config_is_validated():
    with pytest.raises(ConfigError):
        GarbleConfig(page_threshold=0)
    with pytest.raises(ConfigError):
        PdfConfig(garble_threshold=1.5)
    with pytest.raises(ConfigError):
        PdfConfig(edu_threshold=6)


# ---- the pipeline's pure shells ----------------------------------------------------------

def page(text: str, garble_score: float = -1.0, removed: str = "", index: int = 0) -> PageResult:
    return PageResult(doc_id="d", source="s.pdf", page_index=index, doc_pages=3, status="ok", text=text,
                      parser="mineru", parser_version="4", tier="flash", route="low_cost",
                      route_reason="below_threshold", score=0.0, needs_high_cost=False, removed=removed,
                      quality=PageQuality(garble=garble_score))


def test_page_threshold_removes_garbled_pages_and_keeps_other_reasons():
    config = PdfConfig()
    assert quality.apply_page_thresholds(page("x", 0.7), config).removed == "garbled"
    assert quality.apply_page_thresholds(page("x", 0.49), config).removed == ""
    assert quality.apply_page_thresholds(page("x", -1.0), config).removed == ""
    assert quality.apply_page_thresholds(page("x", 0.9, "repeated_page"), config).removed == "repeated_page"
    assert quality.apply_page_thresholds(page("x", 0.7), PdfConfig(garble_threshold=0.8)).removed == ""


def test_merge_keeps_garbled_pages_out_and_files_a_wholly_garbled_document():
    from scicurate.merge import merge_document

    pages = [page(PROSE, 0.0, index=0), page("xq zv " * 50, 0.9, "garbled", index=1), page(PROSE, 0.1, index=2)]
    out = merge_document("d", pages)
    doc = out.document
    assert "xq zv" not in doc.text and doc.pages_removed == 1
    assert 0.3 < doc.garbled_share < 0.5 and doc.garble > 0.2
    assert quality.document_filter_reason(doc, PdfConfig()) == ""
    assert quality.document_filter_reason(doc, PdfConfig(garble_document_share=0.3)) == quality.FILTER_GARBLED

    # every page garbled: still a document (empty text), filtered, never a no_text dead letter
    all_bad = [page("xq zv " * 50, 0.9, "garbled", index=i) for i in range(3)]
    out = merge_document("d", all_bad)
    assert out.dead_letters == () and out.document.text == ""
    assert quality.document_filter_reason(out.document, PdfConfig()) == quality.FILTER_GARBLED


def test_removal_guard_never_brings_back_garbled_pages():
    from scicurate.merge import removal_guard

    pages = [page("a", 0.9, "garbled", 0), page("b", 0.9, "garbled", 1), page("c", 0.0, "", 2)]
    assert [p.removed for p in removal_guard(pages, 0.5)] == ["garbled", "garbled", ""]


def test_low_education_documents_are_filtered_only_when_scored():
    span = PageSpan(page_index=0, start=0, end=4, parser="m", tier="flash", route="low_cost",
                    route_reason="r", status="ok")
    doc = DocumentResult(doc_id="d", source="s", text="text", num_pages=1, pages_ok=1, pages_failed=0,
                         pages_routed=0, spans=(span,))
    assert quality.document_filter_reason(doc, PdfConfig()) == ""
    low = dataclasses.replace(doc, edu_score=1.2, edu_model="edu")
    assert quality.document_filter_reason(low, PdfConfig()) == quality.FILTER_LOW_EDU
    assert quality.document_filter_reason(low, PdfConfig(edu_threshold=1.0)) == ""


def test_quality_summary_nests_tokens_and_shares():
    out = quality.quality_summary({"quality": {"tokens_parsed": 1000, "tokens_written": 700,
                                               "tokens_removed.garbled": 200, "tokens_removed.repeated_page": 100,
                                               "pages_removed.garbled": 2}})
    assert out["tokens_removed"] == {"garbled": 200, "repeated_page": 100}
    assert out["share_removed"] == {"garbled": 0.2, "repeated_page": 0.1, "all": 0.3}
    assert out["pages_removed"] == {"garbled": 2}
