"""Unit tests for classifiers.page_signals and classifiers.metrics, on hand-built records."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random

import pytest

from scicurate.classifiers.metrics import roc_auc
from scicurate.classifiers.page_signals import (
    DEFAULT_WEIGHTS,
    NO_TEXT_LAYER_SCORE,
    ScoreWeights,
    contributions,
    detect,
    reasons,
    score,
    strip_markup,
)
from scicurate.records import (
    STATUS_FAILED,
    STATUS_OK,
    Block,
    PageParse,
    PageSignals,
    TextLayerStats,
)

PROSE = (
    "The samples were collected in the spring and stored at room temperature until the\n"
    "analysis began. Each sample was weighed twice, and the mean of the two readings was\n"
    "recorded in the laboratory notebook together with the date and the operator's name.\n"
)


def _chars(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def make_page(
    blocks: tuple[Block, ...] = (),
    layer_text: str | None = None,
    *,
    math_font_chars: int = 0,
    status: str = STATUS_OK,
) -> PageParse:
    """A page whose text layer is `layer_text` (default: the blocks' texts joined)."""
    if layer_text is None:
        layer_text = "\n".join(b.text for b in blocks)
    return PageParse(
        doc_id="d" * 64, source="mem://doc.pdf", page_index=0, doc_pages=1,
        parser="mineru", parser_version="test", tier="flash", status=status,
        blocks=blocks,
        text_layer=TextLayerStats(
            chars=_chars(layer_text), math_font_chars=math_font_chars, text=layer_text
        ),
        error_reason="parser_error" if status == STATUS_FAILED else "",
    )


def prose_page() -> PageParse:
    return make_page((Block("text", PROSE, (0.1, 0.1, 0.9, 0.4)),))


# --- detect -------------------------------------------------------------------------------------


def test_strip_markup_removes_scripts_and_math_delimiters_only():
    assert strip_markup("H<sub>2</sub>O and x<sup>2</sup>") == "H2O and x2"
    assert strip_markup("let $x$ be") == "let x be"
    assert strip_markup("costs $5 or $6", inline_math=False) == "costs $5 or $6"


def test_counts_of_blocks():
    blocks = (
        Block("text", "a<sup>1</sup> b<sub>i</sub>", inline_math=2, script_spans=2),
        Block("equation", "", (0.0, 0.0, 0.5, 0.2)),
        Block("equation", "  ", (0.5, 0.5, 1.0, 0.6)),
        Block("equation", r"\frac{a}{b} + \alpha", (0.0, 0.8, 1.0, 0.9)),
        Block("table", "1 2"),
        Block("image", ""),
        Block("figure", "label"),
    )
    s = detect(make_page(blocks, "a1 bi x y z 1 2 label"))
    assert s.equation_blocks == 3
    assert s.empty_equation_blocks == 2
    # 0.5 * 0.2 + 0.5 * 0.1 + 1.0 * 0.1
    assert s.equation_area == pytest.approx(0.25)
    assert s.inline_math == 2
    assert s.script_spans == 2
    assert s.table_blocks == 1
    assert s.image_blocks == 2
    assert s.latex_commands == 2


def test_equation_area_is_clipped_to_the_page():
    blocks = tuple(Block("equation", "", (-0.5, 0.0, 2.0, 1.0)) for _ in range(3))
    assert detect(make_page(blocks, "x" * 40)).equation_area == 1.0


def test_parsed_chars_exclude_markup_and_lost_ratio():
    blocks = (Block("text", "ab<sup>c</sup> $d$", inline_math=1, script_spans=1),)
    s = detect(make_page(blocks, "abcdefgh"))  # 8 layer chars, parse has "abc d" = 4
    assert s.parsed_chars == 4
    assert s.text_layer_chars == 8
    assert s.lost_char_ratio == pytest.approx(0.5)


def test_lost_ratio_is_zero_when_the_parse_has_more_than_the_layer():
    s = detect(make_page((Block("text", "a" * 30),), "a" * 20))
    assert s.lost_char_ratio == 0.0


def test_dollar_in_prose_counts_as_a_character():
    s = detect(make_page((Block("text", "pay $5 now"),), "pay $5 now"))
    assert s.parsed_chars == 8
    assert s.lost_char_ratio == 0.0


def test_text_layer_ratios_exact():
    # 18 non-space chars: α, β (Greek), ∑ (operator), → (arrow), 𝑥 (math alphanumeric),
    # ℝ (letterlike) = 6 math chars; symbols (non-alphanumeric): ∑ → = + . , = 6.
    layer = "αβ∑→𝑥ℝ = + . , abcdefgh"
    s = detect(make_page((Block("text", layer),), layer, math_font_chars=5))
    assert s.text_layer_chars == 18
    assert s.math_unicode_ratio == pytest.approx(6 / 18)
    assert s.symbol_density == pytest.approx(6 / 18)
    assert s.math_font_ratio == pytest.approx(5 / 18)


def test_broken_line_ratio_counts_short_lines_of_the_text_layer():
    layer = "a line of prose\n2\n\nn=0\nabcd\n  xy  \nanother line\n"
    # non-empty lines: 6; of <= 3 chars after stripping: "2", "n=0", "xy" = 3
    s = detect(make_page((Block("text", "a line of prose"),), layer))
    assert s.broken_line_ratio == pytest.approx(3 / 6)


def test_cid_ratio_per_hundred_characters():
    text = "(cid:12)(cid:3)" + "a" * 35  # 50 non-space chars, 2 cid strings
    s = detect(make_page((Block("text", text),), text))
    assert s.cid_ratio == pytest.approx(4.0)


def test_cid_in_the_parse_only_still_counts():
    text = "(cid:7)" + "b" * 43  # 50 chars, 1 cid
    s = detect(make_page((Block("text", text),), "b" * 50))
    assert s.cid_ratio == pytest.approx(2.0)


def test_replacement_ratio_counts_fffd_and_private_use():
    text = "\ufffd\ue000\U000F0000" + "a" * 7  # 10 chars, 3 without Unicode meaning
    s = detect(make_page((Block("text", text),), text))
    assert s.replacement_ratio == pytest.approx(0.3)


def test_pdfium_soft_hyphen_is_layout_not_garbage():
    layer = "hyphen\ufffe\nation of words in running text"
    s = detect(make_page((Block("text", "hyphenation of words in running text"),), layer))
    assert s.replacement_ratio == 0.0
    assert s.symbol_density == 0.0


def test_latex_commands_counted_in_the_text_layer_too():
    s = detect(make_page((Block("text", "plain words here"),), r"\alpha \beta_1 \\ x \frac"))
    assert s.latex_commands == 3


def test_has_text_layer_threshold():
    page = make_page((Block("text", "x" * 15),), "x" * 15)
    assert not detect(page).has_text_layer
    assert detect(page, min_text_chars=15).has_text_layer
    assert detect(make_page((Block("text", "x" * 16),), "x" * 16)).has_text_layer


def test_failed_page_gets_default_signals():
    page = make_page((Block("equation", ""),), "x" * 100, status=STATUS_FAILED)
    assert detect(page) == PageSignals()
    assert score(detect(page)) == 0.0


def test_empty_page_has_zero_ratios():
    s = detect(make_page((), ""))
    assert not s.has_text_layer
    assert (s.lost_char_ratio, s.math_unicode_ratio, s.broken_line_ratio) == (0.0, 0.0, 0.0)


# --- score --------------------------------------------------------------------------------------


def test_no_text_layer_gets_the_hard_rule_score():
    scan = make_page((Block("text", "OCR words " * 20),), "")
    signals = detect(scan)
    assert score(signals) == NO_TEXT_LAYER_SCORE == 2.0
    assert reasons(signals) == ["no_text_layer"]


def test_prose_page_scores_low():
    signals = detect(prose_page())
    assert signals.lost_char_ratio == 0.0
    assert score(signals) < 0.05
    assert reasons(signals) == []


def test_cid_garbage_scores_high():
    garbage = " ".join("(cid:12)(cid:40)(cid:3)" for _ in range(30))
    signals = detect(make_page((Block("text", garbage),), garbage))
    assert score(signals) > 0.9
    assert reasons(signals)[0] == "cid"


def test_empty_equation_blocks_raise_the_score():
    base = prose_page()
    eq = Block("equation", "", (0.3, 0.5, 0.7, 0.55))
    scores = [
        score(detect(dataclasses.replace(base, blocks=base.blocks + (eq,) * n))) for n in range(5)
    ]
    assert scores == sorted(scores)
    assert len(set(scores)) == 5
    assert scores[1] - scores[0] > 0.3
    assert reasons(detect(dataclasses.replace(base, blocks=base.blocks + (eq,) * 3)))[0] == (
        "empty_equations"
    )


def test_parsed_equation_counts_less_than_a_lost_one():
    base = prose_page()
    lost = dataclasses.replace(base, blocks=base.blocks + (Block("equation", ""),))
    kept = dataclasses.replace(base, blocks=base.blocks + (Block("equation", "E = mc^2"),))
    assert score(detect(lost)) > score(detect(kept))


def test_math_heavy_flash_page_outranks_prose_and_form():
    layer = (
        "Let α ∈ ℝ and f : X → Y with ∑ x_i ≤ ∫ g.\n2\nn=0\nX\nThen ‖f‖ ≤ ε for all x ∈ Ω.\n"
    )
    math_page = make_page(
        (
            Block("text", "Let α ∈ ℝ and f : X → Y with ∑ x<sub>i</sub> ≤ ∫ g.", script_spans=1),
            Block("equation", "", (0.2, 0.3, 0.8, 0.4)),
            Block("text", "Then ‖f‖ ≤ ε for all x ∈ Ω."),
        ),
        layer,
        math_font_chars=10,
    )
    form = make_page((Block("table", "Name ____ Date ____ Signature ____ " * 5),))
    assert score(detect(math_page)) > 0.8
    assert score(detect(math_page)) > score(detect(form)) > score(detect(prose_page()))


@pytest.mark.parametrize(
    "field_name, low, high",
    [
        ("empty_equation_blocks", 1, 4),
        ("equation_area", 0.01, 0.2),
        ("inline_math", 1, 10),
        ("script_spans", 1, 30),
        ("table_blocks", 0, 2),
        ("image_blocks", 0, 2),
        ("latex_commands", 1, 9),
        ("math_unicode_ratio", 0.01, 0.05),
        ("math_font_ratio", 0.05, 0.3),
        ("cid_ratio", 0.1, 2.0),
        ("replacement_ratio", 0.001, 0.02),
        ("symbol_density", 0.12, 0.3),
        ("broken_line_ratio", 0.15, 0.5),
        ("lost_char_ratio", 0.02, 0.2),
    ],
)
def test_score_is_strictly_monotone_in_each_piece_of_evidence(field_name, low, high):
    base = PageSignals(text_layer_chars=2000, parsed_chars=2000)
    s_low = score(dataclasses.replace(base, **{field_name: low}))
    s_high = score(dataclasses.replace(base, **{field_name: high}))
    assert 0.0 <= s_low < s_high < 1.0


def test_score_never_decreases_when_evidence_is_added_together():
    rng = random.Random(7)
    names = ["empty_equation_blocks", "lost_char_ratio", "math_unicode_ratio", "cid_ratio"]
    for _ in range(200):
        values = {
            "empty_equation_blocks": rng.randint(0, 10),
            "lost_char_ratio": rng.random() * 0.5,
            "math_unicode_ratio": rng.random() * 0.1,
            "cid_ratio": rng.random(),
        }
        s = PageSignals(parsed_chars=1000, **values)
        name = rng.choice(names)
        bumped = values[name] + (1 if isinstance(values[name], int) else 0.05)
        assert score(dataclasses.replace(s, **{name: bumped})) >= score(s)


def test_score_stays_below_one_when_everything_is_saturated():
    s = PageSignals(
        parsed_chars=100, empty_equation_blocks=50, equation_area=1.0, inline_math=100,
        script_spans=100, table_blocks=20, image_blocks=20, latex_commands=100,
        math_unicode_ratio=1.0, math_font_ratio=1.0, cid_ratio=50.0, replacement_ratio=1.0,
        symbol_density=1.0, broken_line_ratio=1.0, lost_char_ratio=1.0,
    )
    assert 0.999 < score(s) < 1.0 < NO_TEXT_LAYER_SCORE


def test_contributions_are_bounded_by_their_weights():
    s = PageSignals(parsed_chars=1000, empty_equation_blocks=2, lost_char_ratio=0.1)
    parts = contributions(s)
    # Both sit exactly at their scale (2 formulas, 10 % lost): feature = 1 - 1/e.
    assert parts["empty_equations"] == pytest.approx(1.5 * (1 - math.exp(-1)))
    assert parts["lost_chars"] == pytest.approx(1.2 * (1 - math.exp(-1)))
    assert parts["cid"] == 0.0
    assert all(0.0 <= v <= getattr(DEFAULT_WEIGHTS, k) for k, v in parts.items())


def test_baselines_ignore_normal_prose_levels():
    s = PageSignals(parsed_chars=1000, symbol_density=0.08, broken_line_ratio=0.05)
    assert score(s) == 0.0


def test_custom_weights_change_the_score_and_reject_negatives():
    s = PageSignals(parsed_chars=1000, table_blocks=3)
    assert score(s, ScoreWeights(tables=0.0)) == 0.0
    assert score(s, ScoreWeights(tables=3.0)) > score(s)
    with pytest.raises(ValueError, match="tables"):
        ScoreWeights(tables=-1.0)


def test_reasons_are_ordered_and_limited():
    s = PageSignals(
        parsed_chars=1000, cid_ratio=2.0, empty_equation_blocks=3, lost_char_ratio=0.05,
        table_blocks=1,
    )
    assert reasons(s) == ["cid", "empty_equations", "lost_chars"]
    assert reasons(s, top=1) == ["cid"]


# --- roc_auc ------------------------------------------------------------------------------------


def test_roc_auc_exact_values():
    assert roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert roc_auc([0.1], [0.9]) == 0.0
    assert roc_auc([0.5, 0.5], [0.5]) == 0.5
    # pairs: 0.9>0.5, 0.9>0.1, 0.5=0.5 (1/2), 0.5>0.1 -> 3.5 / 4
    assert roc_auc([0.9, 0.5], [0.5, 0.1]) == pytest.approx(0.875)


def test_roc_auc_matches_brute_force_with_ties():
    rng = random.Random(3)
    for _ in range(50):
        pos = [rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, 2.0]) for _ in range(rng.randint(1, 12))]
        neg = [rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]) for _ in range(rng.randint(1, 12))]
        pairs = list(itertools.product(pos, neg))
        brute = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
        assert roc_auc(pos, neg) == pytest.approx(brute)


def test_roc_auc_rejects_an_empty_side():
    with pytest.raises(ValueError):
        roc_auc([], [0.1])
    with pytest.raises(ValueError):
        roc_auc([0.1], [])
