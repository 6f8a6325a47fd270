"""Unit tests of the low-cost parser's rule-based post-processing (pure functions, no Beam)."""

from __future__ import annotations

import pytest

from scicurate.parsers.postprocess import (
    FORMULA_PLACEHOLDER,
    LOW_COST_RULES,
    RenderedPage,
    clean_prose,
    render_page,
    strip_running_lines,
)
from scicurate.records import Block


def text(t: str, kind: str = "text", level: int = 0) -> Block:
    return Block(type=kind, text=t, level=level)


# --- render_page: block types ---------------------------------------------------------------


def test_headings_paragraphs_and_blank_line_separation():
    page = render_page([
        text("A Study of Things", "doc_title", level=1),
        text("Introduction", "paragraph_title", level=0),
        text("Background", "paragraph_title", level=1),
        text("Details", "paragraph_title", level=2),
        text("Deep", "paragraph_title", level=9),
        text("First paragraph."),
        text("Second paragraph."),
    ])
    assert page.markdown == (
        "# A Study of Things\n\n## Introduction\n\n## Background\n\n### Details\n\n"
        "###### Deep\n\nFirst paragraph.\n\nSecond paragraph."
    )
    assert page.rules == ()
    assert page.dropped_blocks == 0


def test_heading_split_over_lines_becomes_one_line():
    page = render_page([text("Einführung in die\nGeometrie", "paragraph_title", level=2)])
    assert page.markdown == "### Einführung in die Geometrie"
    assert page.rules == ("join_lines",)


def test_page_furniture_is_dropped_and_counted():
    page = render_page([
        text("Trilling et al.", "header"),
        text("12", "page_number"),
        text("Body text."),
        text("Journal of Things 2017", "footer"),
    ])
    assert page.markdown == "Body text."
    assert page.rules == ("drop_page_furniture",)
    assert page.dropped_blocks == 3


def test_text_like_types_are_paragraphs():
    page = render_page([
        text("Aside.", "aside_text"),
        text("[1] A. Author, Title (2020).", "ref_text"),
        text("* A footnote.", "page_footnote"),
        text("Kept although unknown.", "some_future_type"),
    ])
    assert page.markdown == (
        "Aside.\n\n[1] A. Author, Title (2020).\n\n* A footnote.\n\nKept although unknown."
    )


def test_list_items_keep_one_line_each():
    page = render_page([text("• first  item\n• second\nitem two continues", "list")])
    assert page.markdown == "• first item\n• second\nitem two continues"
    assert page.rules == ("collapse_spaces",)


def test_table_caption_then_fenced_body_keeps_alignment():
    body = (
        "Study      Country   Treatment\n"
        "Kim MJ     Korea     PELD\n"
        "           (cid:3)   OLM"
    )
    page = render_page([text("Table 1 Baseline\u00a0characteristics.\n" + body, "table")])
    assert page.markdown == "Table 1 Baseline\u00a0characteristics.\n\n```\n" + body + "\n```"
    # Nothing inside the fence is joined, collapsed or cleaned.
    assert page.rules == ()


def test_table_caption_without_table_word_is_found_by_alignment():
    page = render_page([text("Efficiencies per region\nWW     0.39    0.37\nWZ     0.33    0.44",
                             "table")])
    assert page.markdown == (
        "Efficiencies per region\n\n```\nWW     0.39    0.37\nWZ     0.33    0.44\n```"
    )


def test_table_caption_after_body_and_html_body():
    html = "<table><tbody><tr><td>WW</td><td>0.39</td></tr></tbody></table>"
    page = render_page([text(html + "\nTABLE I. Efficiencies  per region.", "table")])
    assert page.markdown == html + "\n\nTABLE I. Efficiencies per region."
    assert page.rules == ("collapse_spaces",)


def test_table_with_only_a_caption_has_no_empty_fence():
    page = render_page([text("Table 2 Outcomes.", "table")])
    assert page.markdown == "Table 2 Outcomes."


def test_image_keeps_caption_and_empty_image_is_dropped():
    page = render_page([
        text("Figure 1. Postage\nstamps.", "image"),
        text("", "image"),
        text("  \n ", "chart"),
    ])
    assert page.markdown == "Figure 1. Postage stamps."
    assert page.dropped_blocks == 2
    assert page.rules == ("drop_empty_blocks", "join_lines", "strip_spaces")


def test_equation_with_text_is_display_math():
    page = render_page([text(" E = mc^2 ", "equation"), text("$$\\int f\\,dx$$", "equation")])
    assert page.markdown == "$$\nE = mc^2\n$$\n\n$$\n\\int f\\,dx\n$$"
    assert page.rules == ()


def test_equation_without_text_leaves_a_placeholder():
    page = render_page([text("We have"), text("", "equation"), text("where x is real.")])
    assert FORMULA_PLACEHOLDER == "<!-- formula not extracted -->"
    assert page.markdown == f"We have\n\n{FORMULA_PLACEHOLDER}\n\nwhere x is real."
    assert page.rules == ("formula_placeholder",)
    assert page.dropped_blocks == 0


def test_code_is_fenced_verbatim_with_a_fence_longer_than_its_backticks():
    code = "def f(x):\n    return x  # ```\n"
    page = render_page([text(code, "code")])
    assert page.markdown == "````\ndef f(x):\n    return x  # ```\n````"
    assert page.rules == ()


def test_block_emptied_by_rules_is_dropped():
    page = render_page([text("(cid:3)(cid:4)"), text("Kept.")])
    assert page.markdown == "Kept."
    assert page.dropped_blocks == 1
    assert page.rules == ("drop_empty_blocks", "drop_cid")


def test_rules_are_reported_in_canonical_order_and_only_known_ones():
    page = render_page([text("x  y"), text("", "header"), text("(cid:1)Z")])
    assert page.rules == ("drop_page_furniture", "drop_cid", "collapse_spaces")
    assert list(page.rules) == [r for r in LOW_COST_RULES if r in page.rules]
    with pytest.raises(ValueError, match="unknown"):
        RenderedPage(markdown="", rules=("nfkc",))
    with pytest.raises(ValueError):
        RenderedPage(markdown="", dropped_blocks=-1)


def test_empty_page():
    assert render_page([]) == RenderedPage(markdown="", rules=(), dropped_blocks=0)


# --- clean_prose: character rules -----------------------------------------------------------


def test_ligatures_are_expanded():
    out, rules = clean_prose("\ufb01nd \ufb02ow e\ufb00ect o\ufb03ce ba\ufb04e \ufb05 \ufb06")
    assert out == "find flow effect office baffle st st"
    assert rules == ("fix_ligatures",)


def test_math_unicode_survives_no_nfkc():
    src = "x ∈ ℝ² and k = ∑𝑖 𝑘𝑖2𝑖, ½ of H₂O, ﬁt"
    out, rules = clean_prose(src)
    assert out == "x ∈ ℝ² and k = ∑𝑖 𝑘𝑖2𝑖, ½ of H₂O, fit"
    assert rules == ("fix_ligatures",)


def test_clean_text_reports_no_rule():
    assert clean_prose("A clean sentence with ℝ².") == ("A clean sentence with ℝ².", ())


def test_soft_hyphens_removed_and_join_a_line_break():
    assert clean_prose("hy\u00adphen") == ("hyphen", ("drop_soft_hyphen",))
    assert clean_prose("experi\u00ad\nment done") == ("experiment done", ("drop_soft_hyphen",))
    assert clean_prose("pdfium\ufffesoft") == ("pdfiumsoft", ("drop_soft_hyphen",))


def test_cid_tokens_removed():
    out, rules = clean_prose("the (cid:3) value(cid:127)")
    assert out == "the value"
    assert rules == ("drop_cid", "collapse_spaces")
    # A look-alike that is not a glyph id stays.
    assert clean_prose("see (cid: 3)") == ("see (cid: 3)", ())


def test_replacement_char_removed():
    assert clean_prose("ener\ufffdgy") == ("energy", ("drop_replacement_char",))


# --- clean_prose: line rules ----------------------------------------------------------------


def test_dehyphenation_of_a_lowercase_word():
    assert clean_prose("an experi-\nment here") == ("an experiment here", ("dehyphenate",))
    assert clean_prose("an experi-  \n  ment") == ("an experiment", ("dehyphenate",))


@pytest.mark.parametrize("src, expected", [
    ("non-\nlinear", "non-linear"),                # compound prefix: hyphen kept
    ("self-\nconsistent", "self-consistent"),
    ("an x-\nray", "an x-ray"),                    # one-letter fragment: a compound
    ("non-\nEuclidean", "non-Euclidean"),          # capitalised second part
    ("Coulomb-\ndistorted", "Coulomb-distorted"),  # capitalised fragment
    ("state-of-the-\nart", "state-of-the-art"),    # tail of a compound
    ("SF12-\nmental", "SF12-mental"),              # digits in the fragment
    ("pages 10–\n20", "pages 10–20"),              # en dash glued to a number
    ("$x$-\nbased", "$x$-based"),                  # hyphen after inline math
])
def test_hyphen_kept_and_line_joined_without_space(src, expected):
    out, rules = clean_prose(src)
    assert out == expected
    assert rules == ("join_lines",)


def test_spaced_dash_at_line_end_joins_with_a_space():
    assert clean_prose("first -\nsecond") == ("first - second", ("join_lines",))


def test_line_wraps_join_but_blank_lines_stay_paragraph_breaks():
    out, rules = clean_prose("one\ntwo  \nthree\n\n  \nfour\nfive")
    assert out == "one two three\n\nfour five"
    assert rules == ("join_lines",)


def test_join_lines_false_keeps_lines():
    assert clean_prose("a\nb-\nc", join_lines=False) == ("a\nb-\nc", ())


def test_spaces_collapsed_and_stripped():
    assert clean_prose("a   b\tc") == ("a b c", ("collapse_spaces",))
    assert clean_prose("  lead and trail  ") == ("lead and trail", ("strip_spaces",))


def test_inline_math_is_untouched():
    src = "see $x^2  +  (cid:1)\ufb01$  here\nand $$a  -\nb$$ too"
    out, rules = clean_prose(src)
    assert out == "see $x^2  +  (cid:1)\ufb01$ here and $$a  -\nb$$ too"
    assert rules == ("join_lines", "collapse_spaces")


def test_line_break_next_to_inline_math_is_joined():
    out, rules = clean_prose("we have $x$\nand $y$\n, so")
    assert out == "we have $x$ and $y$ , so"
    assert rules == ("join_lines",)


def test_private_use_characters_do_not_clash_with_math_shielding():
    src = "\ue000 broken glyph \ue0010\ue001 and $a  b$"
    assert clean_prose(src) == (src, ())


def test_unmatched_dollar_does_not_shield_the_paragraph():
    out, rules = clean_prose("costs $5 and\n(cid:2)more")
    assert out == "costs $5 and more"
    assert rules == ("drop_cid", "join_lines")


def test_rules_apply_through_render_page():
    page = render_page([
        text("The e\ufb00ect of experi-\nment \ufffd on\n(cid:7)non-\nlinear ℝ²  waves."),
    ])
    assert page.markdown == "The effect of experiment on non-linear ℝ² waves."
    assert page.rules == (
        "drop_cid", "drop_replacement_char", "fix_ligatures", "dehyphenate", "join_lines",
        "collapse_spaces",
    )


# --- strip_running_lines --------------------------------------------------------------------

# Body lines must differ in words, not only in numbers: digits are normalised away.
WORDS = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]


def test_short_document_keeps_its_headers():
    pages = ["Journal of Things\n\nBody one.", "Journal of Things\n\nBody two."]
    assert strip_running_lines(pages) == (pages, 0)


def test_min_pages_can_be_lowered():
    pages = ["Journal of Things\n\nBody one.", "Journal of Things\n\nBody two."]
    assert strip_running_lines(pages, min_pages=2) == (["Body one.", "Body two."], 2)


def test_repeated_header_with_varying_page_numbers_is_removed():
    pages = [f"Annals of Foo, Vol. 3, page {100 + i}\n\n{WORDS[i]} body.\n\nMore {WORDS[i]}."
             for i in range(5)]
    cleaned, removed = strip_running_lines(pages)
    assert cleaned == [f"{WORDS[i]} body.\n\nMore {WORDS[i]}." for i in range(5)]
    assert removed == 5


def test_running_line_only_at_page_edges():
    # The header recurs at the top of 4 pages; on page 4 the same text sits mid-page: content.
    pages = [f"## Running Title\n\n{WORDS[i]} body.\n\nEnd of {WORDS[i]}." for i in range(4)]
    pages.append("Start.\n\nMiddle.\n\nRunning Title\n\nMore.\n\nEnd.")
    cleaned, removed = strip_running_lines(pages)
    assert cleaned[:4] == [f"{WORDS[i]} body.\n\nEnd of {WORDS[i]}." for i in range(4)]
    assert cleaned[4] == pages[4]
    assert removed == 4


def test_heading_marks_and_spacing_do_not_hide_a_running_line():
    pages = ["## Running  Title\n\nA.", "Running Title\n\nB.", "### Running Title\n\nC."]
    assert strip_running_lines(pages) == (["A.", "B.", "C."], 3)


def test_alternating_running_heads_are_both_removed():
    heads = ["A Title of the Paper", "Author et al."]
    pages = [f"{heads[i % 2]}\n\n{WORDS[i]} body." for i in range(6)]
    cleaned, removed = strip_running_lines(pages)
    assert cleaned == [f"{WORDS[i]} body." for i in range(6)]
    assert removed == 6


def test_share_threshold():
    # Present on 2 of 5 pages: below min_pages, kept.
    pages = [("Even head\n\n" if i % 2 else "") + f"{WORDS[i]} body." for i in range(5)]
    assert strip_running_lines(pages) == (pages, 0)
    # Present on 4 of 5 pages: removed at 0.5, kept when every page must carry it.
    pages = [("" if i == 2 else "Head\n\n") + f"{WORDS[i]} body." for i in range(5)]
    assert strip_running_lines(pages, min_share=1.0) == (pages, 0)
    cleaned, removed = strip_running_lines(pages)
    assert cleaned == [f"{WORDS[i]} body." for i in range(5)]
    assert removed == 4


def test_footer_removed_and_blank_lines_tidied():
    pages = [f"# Top {WORDS[i]}\n\n{WORDS[i]} body.\n\n\nFooter line\n" for i in range(3)]
    cleaned, removed = strip_running_lines(pages)
    assert cleaned == [f"# Top {WORDS[i]}\n\n{WORDS[i]} body." for i in range(3)]
    assert removed == 3


def test_second_line_running_head_leaves_one_blank_line():
    pages = [f"First {WORDS[i]}\n\nHead\n\n{WORDS[i]} body." for i in range(3)]
    cleaned, removed = strip_running_lines(pages)
    assert cleaned == [f"First {WORDS[i]}\n\n{WORDS[i]} body." for i in range(3)]
    assert removed == 3


@pytest.mark.parametrize("fmt", ["{n}", "- {n} -", "Page {n}", "{n} / 40", "p. {n}", "— {n} —"])
def test_page_numbers_in_sequence_are_removed(fmt):
    pages = [f"{WORDS[i]} body.\n\n{fmt.format(n=i + 7)}" for i in range(2)]
    assert strip_running_lines(pages) == (["Alpha body.", "Bravo body."], 2)


def test_roman_page_numbers_and_numbers_alternating_top_and_bottom():
    pages = ["iii\n\nPreface.", "Foreword.\n\niv", "v\n\nContents."]
    assert strip_running_lines(pages) == (["Preface.", "Foreword.", "Contents."], 3)
    pages = ["12\n\nA.", "B.\n\n13", "14\n\nC.", "D.\n\n15"]
    assert strip_running_lines(pages) == (["A.", "B.", "C.", "D."], 4)


def test_numbers_that_do_not_advance_with_the_pages_stay():
    pages = ["Body.\n\n42", "Other body.\n\n7"]
    assert strip_running_lines(pages) == (pages, 0)
    pages = ["Result:\n\n5", "Result:\n\n5", "Result:\n\n5"]  # same value: no sequence
    assert strip_running_lines(pages, min_pages=4) == (pages, 0)
    assert strip_running_lines(["Only page.\n\n1"]) == (["Only page.\n\n1"], 0)


def test_failed_pages_keep_their_positions_in_the_sequence():
    pages = ["A.\n\n1", "", "C.\n\n3"]
    assert strip_running_lines(pages) == (["A.", "", "C."], 2)


def test_lines_without_letters_are_not_running_lines():
    pages = [f"{WORDS[i]} body.\n\n(1)" for i in range(5)]
    assert strip_running_lines(pages) == (pages, 0)


def test_fenced_and_math_lines_are_never_removed():
    pages = [f"{WORDS[i]} body.\n\n```\nTotal   12\n```" for i in range(5)]
    assert strip_running_lines(pages) == (pages, 0)
    pages = [f"$$\nx = 1\n$$\n\n{WORDS[i]} text.\n\n$$\nx = 1\n$$" for i in range(5)]
    assert strip_running_lines(pages) == (pages, 0)
    pages = [f"{FORMULA_PLACEHOLDER}\n\n{WORDS[i]} text." for i in range(5)]
    assert strip_running_lines(pages) == (pages, 0)


def test_page_made_only_of_running_lines_becomes_empty():
    pages = ["Head\n\n1", "Head\n\n2", "Head\n\n3"]
    assert strip_running_lines(pages) == (["", "", ""], 6)


def test_bad_thresholds_fail_fast():
    with pytest.raises(ValueError, match="min_share"):
        strip_running_lines(["a"], min_share=0.0)
    with pytest.raises(ValueError, match="min_pages"):
        strip_running_lines(["a"], min_pages=0)


# --- rules added for pdfTeX output: spacing accents and paragraphs split across columns ------

@pytest.mark.parametrize("raw,clean", [
    ("G¨oteborg", "Göteborg"),
    ("Th´eorique et Math´ematique", "Théorique et Mathématique"),
    ("Universit`a di Padova", "Università di Padova"),
    ("Dvoˇr´ak", "Dvořák"),
    ("´Ecole", "École"),
])
def test_spacing_accents_compose(raw, clean):
    text, rules = clean_prose(raw)
    assert text == clean and "compose_accents" in rules


@pytest.mark.parametrize("raw", ["He said ``hello'' twice", "`quoted' word", "x¨ alone", "a ´ b"])
def test_accent_rule_leaves_quotes_and_lone_accents(raw):
    text, rules = clean_prose(raw)
    assert text == raw and "compose_accents" not in rules


def test_paragraph_split_at_column_break_is_joined():
    page = render_page([Block("text", "a 2 TeV sgoldstino being responsible for the"),
                        Block("text", "excess. For discussions see refs."),
                        Block("text", "A new paragraph.")])
    assert page.markdown == ("a 2 TeV sgoldstino being responsible for the excess. For discussions see refs."
                             "\n\nA new paragraph.")
    assert "join_split_paragraphs" in page.rules


@pytest.mark.parametrize("blocks", [
    [Block("text", "The sentence ends."), Block("text", "lowercase start")],
    [Block("text", "no end"), Block("text", "Capital start")],
    [Block("text", "the energy is"), Block("equation", ""), Block("text", "where x is small.")],
    [Block("paragraph_title", "Results", level=1), Block("text", "and then")],
])
def test_paragraphs_not_joined_without_evidence(blocks):
    assert "join_split_paragraphs" not in render_page(blocks).rules
