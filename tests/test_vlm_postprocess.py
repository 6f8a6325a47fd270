"""Unit tests of the VLM page parser's post-processing (pure functions, no Beam, no model).

Inline strings test each rule and problem code; `tests/fixtures/vlm/` holds recorded VLM page
outputs (and a few derived from them), checked against `tests/fixtures/vlm/expected.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scicurate.parsers.vlm_postprocess import (
    VLM_PROBLEMS,
    VLM_RULES,
    VlmCleanResult,
    balance_dollars,
    clean_vlm_markdown,
    close_environments,
    convert_math_delimiters,
    drop_running_lines,
    strip_fences,
    strip_preamble,
)

VLM_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "vlm"
EXPECTED = json.loads((VLM_FIXTURES / "expected.json").read_text(encoding="utf-8"))

# A text layer long enough (>= MIN_TEXT_LAYER_WORDS words) for the hallucinated-header check.
TEXT_LAYER = (
    "Spectral properties of gcd graphs\n"
    "We study the spectrum of gcd graphs over finite rings and show that every eigen-\n"
    "value is an integer. The proof uses the circulant diagonalization theorem and the\n"
    "Ramanujan sums of the ring. 12\n"
)
# Two hundred words of prose without repetition.
PROSE = " ".join(f"Sentence {i} reports measurement {i * 7 % 31} of sample {i * 13 % 17}."
                 for i in range(40))
PAGE = "Spectral properties of gcd graphs\n\nWe study the spectrum of gcd graphs over finite rings."


# --- fixtures ---------------------------------------------------------------------------------


def test_every_fixture_has_expectations_and_every_expectation_a_fixture():
    on_disk = {path.name for path in VLM_FIXTURES.glob("*.md") if path.name != "README.md"}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 7


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name):
    want = EXPECTED[name]
    raw = (VLM_FIXTURES / name).read_text(encoding="utf-8")
    result = clean_vlm_markdown(raw, finish_reason=want["finish_reason"],
                                running_lines=want["running_lines"])
    assert result.problems == tuple(want["problems"])
    assert result.rules == tuple(want["rules"])
    assert result.loop is want["loop"]
    md = result.markdown
    if "same_as" in want:
        assert md == (VLM_FIXTURES / want["same_as"]).read_text(encoding="utf-8")
    assert md.startswith(want.get("starts_with", ""))
    assert md.endswith(want.get("ends_with", ""))
    for needle in want.get("must_contain", []):
        assert needle in md, needle
    for needle in want.get("must_not_contain", []):
        assert needle not in md, needle
    for needle, count in want.get("counts", {}).items():
        assert md.count(needle) == count, needle


def test_real_outputs_that_are_fine_come_back_unchanged():
    for name in ("gpt4o_math_2503_04086.md", "gpt4o_olmo2_pg4_table.md"):
        raw = (VLM_FIXTURES / name).read_text(encoding="utf-8")
        result = clean_vlm_markdown(raw)
        assert (result.markdown, result.rules, result.problems, result.loop) == (raw, (), (), False)


# --- strip_fences -----------------------------------------------------------------------------


@pytest.mark.parametrize("opening", ["```", "```markdown", "```md", "```latex", "``` Markdown ", "~~~"])
def test_strip_fences_removes_a_wrapper(opening):
    closing = "~~~" if opening.startswith("~") else "```"
    assert strip_fences(f"{opening}\n# Title\n\nText $x$.\n{closing}\n") == "# Title\n\nText $x$."


def test_strip_fences_keeps_inner_code_blocks():
    raw = "```markdown\n# Listing\n\n```python\nx = 1\n```\n\nAfter.\n```"
    assert strip_fences(raw) == "# Listing\n\n```python\nx = 1\n```\n\nAfter."


def test_strip_fences_leaves_a_page_that_only_starts_and_ends_with_code_blocks():
    raw = "```python\nx = 1\n```\n\nProse between.\n\n```\ny = 2\n```"
    assert strip_fences(raw) == raw


def test_strip_fences_keeps_a_bare_fence_around_code():
    raw = "```\nint main() {\n  return 0;\n}\n```"
    assert strip_fences(raw) == raw


def test_strip_fences_removes_a_bare_fence_around_latex_heavy_markdown():
    raw = "```\n$$\n\\begin{aligned}\na &= \\frac{1}{2}\n\\end{aligned}\n$$\n```"
    assert strip_fences(raw) == "$$\n\\begin{aligned}\na &= \\frac{1}{2}\n\\end{aligned}\n$$"


def test_strip_fences_removes_an_unclosed_markdown_wrapper_but_not_an_unclosed_bare_fence():
    assert strip_fences("```markdown\n# Title\n\nCut off mid") == "# Title\n\nCut off mid"
    assert strip_fences("```\n# Title\n\nCut off mid") == "```\n# Title\n\nCut off mid"


def test_strip_fences_leaves_text_after_the_closing_fence():
    raw = "```markdown\n# Title\n```\nLet me know if you need more."
    assert strip_fences(raw) == raw


# --- strip_preamble ---------------------------------------------------------------------------


def test_strip_preamble_drops_chat_lines():
    assert strip_preamble("Here is the Markdown transcription of the page:\n\n# Title") == "# Title"
    assert strip_preamble("Sure! Here's the text:\n# Title\nBody") == "# Title\nBody"
    assert strip_preamble("Certainly.\n\nBelow is the content of the image:\n\nBody") == "Body"


@pytest.mark.parametrize("page", [
    "Here is a proof of Lemma 2.\n\nBody",        # names nothing we transcribe, no colon
    "Certainly not all graphs are regular.",       # "Certainly" not followed by ! , .
    "# Here is the page:\n\nBody",                 # a heading, not a chat line
])
def test_strip_preamble_keeps_page_text(page):
    assert strip_preamble(page) == page


# --- math_delimiters --------------------------------------------------------------------------


def test_inline_parens_become_dollars():
    assert convert_math_delimiters(r"Let \( x_1 \) and \(y\) be.") == "Let $x_1$ and $y$ be."


def test_display_brackets_become_dollar_blocks_on_their_own_lines():
    assert convert_math_delimiters("Thus \\[ a^2 + b^2 = c^2 \\] holds.") == (
        "Thus\n$$\na^2 + b^2 = c^2\n$$\nholds.")
    assert convert_math_delimiters("Thus\n\\[\na = b\n\\]\nholds.") == "Thus\n$$\na = b\n$$\nholds."


def test_line_break_with_spacing_is_not_a_display_opener():
    raw = "\\[\n\\begin{aligned} a &= b \\\\[2pt] c &= d \\end{aligned}\n\\]"
    assert convert_math_delimiters(raw) == (
        "$$\n\\begin{aligned} a &= b \\\\[2pt] c &= d \\end{aligned}\n$$")


def test_display_opened_but_cut_off_at_the_end_becomes_an_open_dollar_block():
    assert convert_math_delimiters("Text \\[ a = b +") == "Text\n$$\na = b +"
    assert convert_math_delimiters("\\[ a\n\nprose") == "\\[ a\n\nprose"  # not the last paragraph


def test_math_delimiters_leave_code_and_empty_pairs_alone():
    raw = "Use `\\(x\\)` in TeX.\n\n```latex\n\\[ y \\]\n```\n\nEmpty \\( \\) stays."
    assert convert_math_delimiters(raw) == raw


# --- close_environments -----------------------------------------------------------------------


def test_unclosed_environment_at_the_end_is_closed():
    raw = "Text.\n\n$$\n\\begin{aligned}\na &= b \\\\\nc &= "
    assert close_environments(raw) == "Text.\n\n$$\n\\begin{aligned}\na &= b \\\\\nc &=\n\\end{aligned}"


def test_nested_unclosed_environments_close_innermost_first():
    raw = "\\begin{equation}\n\\begin{cases} 1 & x > 0"
    assert close_environments(raw) == raw + "\n\\end{cases}\n\\end{equation}"


def test_orphan_end_is_removed():
    assert close_environments("a \\end{align} b\n\\end{proof}\nc") == "a b\nc"


def test_environment_opened_paragraphs_ago_is_not_closed():
    raw = "\\begin{theorem}\nEvery graph.\n\nMore prose."
    assert close_environments(raw) == raw
    assert clean_vlm_markdown(raw).problems == ("unbalanced_env",)


def test_environments_in_code_are_ignored():
    raw = "```latex\n\\begin{align}\n```\n\nProse."
    assert close_environments(raw) == raw
    assert clean_vlm_markdown(raw).problems == ()


# --- balance_dollars --------------------------------------------------------------------------


def test_unterminated_last_display_block_is_closed():
    assert balance_dollars("Text.\n\n$$\na = \\frac{1}{2}") == "Text.\n\n$$\na = \\frac{1}{2}\n$$"


def test_dangling_display_opener_is_dropped():
    assert balance_dollars("Text.\n\n$$\n") == "Text."


def test_unpaired_display_marker_earlier_on_the_page_is_left_and_reported():
    raw = "$$\na = b\n\nProse after a blank line."
    assert balance_dollars(raw) == raw
    assert clean_vlm_markdown(raw).problems == ("unbalanced_math",)


def test_escaped_and_code_dollars_do_not_count():
    raw = "Costs \\$\\$ and `$$` here.\n\n$$\nx\n$$"
    assert balance_dollars(raw) == raw


# --- drop_running_lines -----------------------------------------------------------------------


def test_known_running_lines_go_ignoring_numbers_case_and_spacing():
    raw = "## JOURNAL OF THINGS, Vol. 12\n\n# Title\n\nBody text.\n\nSmith et al.   2021"
    out = drop_running_lines(raw, running_lines=["Journal of Things, vol. 3", "Smith et al. 2019"])
    assert out == "# Title\n\nBody text."


@pytest.mark.parametrize("number", ["12", "- 12 -", "Page 3 of 12", "xiv", "**7**", "p. 4"])
def test_bare_page_numbers_go(number):
    assert drop_running_lines(f"{number}\n\nBody text.\n\n{number}") == "Body text."


def test_at_most_two_lines_per_edge_and_stop_at_the_first_line_that_stays():
    raw = "1\n2\n3\nBody\n4"
    assert drop_running_lines(raw) == "3\nBody"
    assert drop_running_lines("Title\n12\nBody") == "Title\n12\nBody"


def test_hallucinated_header_goes_only_when_the_text_layer_is_given():
    raw = "Journal of Combinatorial Theory, Series A\n\n" + PAGE
    assert drop_running_lines(raw, text_layer=TEXT_LAYER) == PAGE
    assert drop_running_lines(raw) == raw
    assert drop_running_lines(raw, text_layer="Spectral properties") == raw  # too thin to judge


def test_lines_on_the_text_layer_stay_even_with_ligatures_and_hyphenation():
    raw = "Eigenvalue spectrum\n\n" + PAGE
    assert drop_running_lines(raw, text_layer=TEXT_LAYER) == raw


def test_edge_lines_that_are_not_prose_or_too_long_stay():
    table = "| 1 | 2 |\n|---|---|\n| 3 | 4 |"
    assert drop_running_lines(table, running_lines=["| 3 | 4 |"]) == table
    long_line = "Journal of Things " * 5
    assert drop_running_lines(f"{long_line}\n\nBody", running_lines=[long_line]) == f"{long_line}\n\nBody"
    math = "Body\n\n$$\n12\n$$"
    assert drop_running_lines(math) == math


# --- problems ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", "  \n\t\n", "```markdown\n\n```", "Here is the transcription:\n"])
def test_empty(raw):
    result = clean_vlm_markdown(raw)
    assert result.problems == ("empty",)
    assert result.markdown.strip() == ""


@pytest.mark.parametrize("raw", [
    "I'm sorry, but I can't help with transcribing this image.",
    "I cannot transcribe this page because the image is blank.",
    "The image is too blurry; I am unable to read it.",
    "Sorry, I can’t assist with that.",
])
def test_refusal(raw):
    assert clean_vlm_markdown(raw).problems == ("refusal",)


def test_a_long_page_that_quotes_a_refusal_is_not_one():
    raw = "\"I cannot read this,\" she said. " + PROSE
    assert clean_vlm_markdown(raw).problems == ()


def test_loop_that_ate_the_output_is_a_problem_and_loop_with_enough_text_left_is_not():
    intro = "Results are given below for each of the runs.\n"
    looped = clean_vlm_markdown(intro + "| run | 0.5 | 0.7 | 0.9 |\n" * 60, finish_reason="length")
    assert looped.markdown == intro + "| run | 0.5 | 0.7 | 0.9 |"
    assert (looped.problems, looped.rules, looped.loop) == (("repetition_loop",), ("repetition",), True)

    recovered = clean_vlm_markdown(PROSE + "\n" + "| run | 0.5 | 0.7 | 0.9 |\n" * 5,
                                   finish_reason="length")
    assert recovered.markdown == PROSE + "\n| run | 0.5 | 0.7 | 0.9 |"
    assert (recovered.problems, recovered.loop) == ((), True)


def test_truncated_only_when_the_server_says_length_and_no_loop_explains_it():
    assert clean_vlm_markdown("A full page of text.", finish_reason="length").problems == ("truncated",)
    assert clean_vlm_markdown("A full page of text.", finish_reason="stop").problems == ()


@pytest.mark.parametrize("raw", [
    "Let $x be a number.",                   # odd $ in a paragraph
    "Then $\\frac{a}{b$ holds.",             # unbalanced braces in inline math
    "$$\n\\sqrt{x}}\n$$",                    # unbalanced braces in display math
])
def test_unbalanced_math(raw):
    assert clean_vlm_markdown(raw).problems == ("unbalanced_math",)


@pytest.mark.parametrize("raw", [
    "It costs $5 per unit.",                 # money, not math
    "Sets $\\{x\\}$ and $\\left\\{ y \\right.$",  # escaped braces do not count
    "Code `$x` here.",                       # code does not count
    "Rows $a \\\\ b$ end.",                  # a LaTeX line break is not an escaped brace
])
def test_balanced_math(raw):
    assert clean_vlm_markdown(raw).problems == ()


def test_problems_come_in_a_stable_order():
    raw = "\\begin{align}\nx = $y\n\n\\end{proof}\nmore"
    result = clean_vlm_markdown(raw, finish_reason="length")
    assert result.problems == ("truncated", "unbalanced_math", "unbalanced_env")


# --- the whole pipeline -----------------------------------------------------------------------


def test_rules_are_reported_in_the_order_applied():
    raw = ("Sure! Here is the Markdown transcription:\n```markdown\n12\n\n"
           "We have \\( a \\) and\n\\[\n\\begin{aligned}\na &= b \\\\\n"
           + "c &= d, \\quad e &= f \\\\\n" * 4)
    result = clean_vlm_markdown(raw, finish_reason="length")
    assert result.markdown == (
        "We have $a$ and\n$$\n\\begin{aligned}\na &= b \\\\\nc &= d, \\quad e &= f \\\\\n"
        "\\end{aligned}\n$$")
    assert result.rules == tuple(VLM_RULES)
    assert result.problems == ()
    assert result.loop is True


def test_result_validates_rules_and_problems():
    assert VlmCleanResult(markdown="x", rules=("repetition",), problems=("truncated",)).ok is False
    with pytest.raises(ValueError):
        VlmCleanResult(markdown="x", rules=("no_such_rule",))
    with pytest.raises(ValueError):
        VlmCleanResult(markdown="x", problems=("no_such_problem",))
    with pytest.raises(ValueError):
        VlmCleanResult(markdown="x", rules=("repetition", "repetition"))
    assert set(VLM_PROBLEMS) == {"empty", "refusal", "repetition_loop", "truncated",
                                 "unbalanced_math", "unbalanced_env"}
