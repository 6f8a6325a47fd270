"""Unit tests of the repetition-loop detector for LLM/VLM output (pure, no model)."""

from __future__ import annotations

import pytest

from scicurate.llm.repetition import (
    INTERIOR_MIN_REPEATS,
    Loop,
    find_loop,
    find_loops,
    truncate_loop,
)

ROW = "| Wikipedia | Encyclopedic | 3.7B | 6.17M |\n"  # 43 chars


# --- loops that run to the end ----------------------------------------------------------------


def test_tail_loop_of_lines_is_cut_after_one_copy():
    text = "Table 1: sources.\n" + ROW * 20 + ROW[:11]
    assert find_loop(text) == Loop(start=18, period=len(ROW), repeats=20, tail=True)
    assert truncate_loop(text) == ("Table 1: sources.\n" + ROW.rstrip(),
                                   Loop(start=18, period=len(ROW), repeats=20, tail=True))


def test_tail_loop_inside_a_line_keeps_one_copy_of_the_phrase():
    text = "The spectrum of the graph is" + " and the spectrum of the graph is" * 30
    cut, loop = truncate_loop(text)
    # The periodic stretch starts at "he spectrum"; the unit is rotated to a word start.
    assert cut == "The spectrum of the graph is and the"
    assert loop == Loop(start=4, period=len(" and the spectrum of the graph is"), repeats=30, tail=True)


def test_unit_is_rotated_to_start_at_a_line():
    # The previous line ends like the looping line: the periodic stretch starts inside it.
    text = "alpha beta gamma\n" + "delta beta gamma\n" * 8
    loop = find_loop(text)
    assert loop == Loop(start=17, period=17, repeats=8, tail=True)
    assert truncate_loop(text)[0] == "alpha beta gamma\ndelta beta gamma"


def test_a_loop_needs_min_repeats_copies_at_the_tail():
    line = "x = 1 is the answer to everything here\n"  # 39 chars
    assert find_loop("Intro.\n" + line * 3) is None
    assert find_loop("Intro.\n" + line * 4) == Loop(start=7, period=39, repeats=4, tail=True)
    assert find_loop("Intro.\n" + line * 3, min_repeats=3) == Loop(start=7, period=39, repeats=3,
                                                                    tail=True)


def test_last_copy_without_its_line_break_still_counts():
    line = "x = 1 is the answer to everything here\n"
    text = "Intro.\n" + line * 3 + line.rstrip()  # the output was stripped
    assert find_loop(text) == Loop(start=7, period=39, repeats=4, tail=True)
    assert truncate_loop(text)[0] == "Intro.\n" + line.rstrip()
    assert find_loop(line * 3 + line.rstrip()) == Loop(start=0, period=39, repeats=4, tail=True)


def test_smallest_period_wins():
    loop = find_loop("ab" * 200)
    assert loop == Loop(start=0, period=2, repeats=200, tail=True)
    assert truncate_loop("ab" * 200)[0] == "ab"


def test_degenerate_structural_loop_is_found_when_long():
    text = "| a | b |\n|---|---|\n" + "| " * 400
    cut, loop = truncate_loop(text)
    assert cut == "| a | b |\n|---|---|\n|"
    assert loop == Loop(start=20, period=2, repeats=400, tail=True)


# --- loops the model recovered from -----------------------------------------------------------


def test_interior_loop_is_collapsed_and_the_rest_kept():
    text = "Intro.\n" + ROW * 30 + "| Total | | 3.9T | 3.1B |\n\nAfter the table."
    cut, loop = truncate_loop(text)
    assert cut == "Intro.\n" + ROW + "| Total | | 3.9T | 3.1B |\n\nAfter the table."
    assert loop == Loop(start=7, period=len(ROW), repeats=30, tail=False)


def test_interior_loop_needs_more_copies_than_a_tail_loop():
    few = "Intro.\n" + ROW * (INTERIOR_MIN_REPEATS - 1) + "End of page, the model recovered."
    assert find_loop(few) is None
    enough = "Intro.\n" + ROW * INTERIOR_MIN_REPEATS + "End of page, the model recovered."
    assert find_loop(enough) == Loop(start=7, period=len(ROW), repeats=INTERIOR_MIN_REPEATS, tail=False)


def test_interior_and_tail_loops_together():
    line = "the same sentence, said again and again\n"
    text = "Start.\n" + ROW * 10 + "Middle.\n" + line * 6
    loops = find_loops(text)
    assert loops == (Loop(start=7, period=len(ROW), repeats=10, tail=False),
                     Loop(start=7 + 10 * len(ROW) + 8, period=len(line), repeats=6, tail=True))
    cut, principal = truncate_loop(text)
    assert cut == "Start.\n" + ROW + "Middle.\n" + line.rstrip()
    assert principal == loops[1]  # the tail loop matters most


def test_find_loop_prefers_the_longest_interior_loop_when_there_is_no_tail():
    short_row = "| a | b | c | d | e | f | g | h | i |\n"
    text = "A.\n" + short_row * 9 + "B.\n" + ROW * 20 + "C, and the page goes on normally."
    assert find_loop(text) == Loop(start=3 + 9 * len(short_row) + 3, period=len(ROW),
                                   repeats=20, tail=False)


# --- legitimate repetition is not a loop ------------------------------------------------------


@pytest.mark.parametrize("text", [
    # A wide Markdown table: the separator row is 61 chars of "|-----".
    "| a | b | c | d | e | f | g | h | i | j |\n"
    "|-----|-----|-----|-----|-----|-----|-----|-----|-----|-----|\n"
    "| 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 |",
    # Table of contents with dot leaders, spaced and unspaced.
    "Contents\n1 Introduction . . . . . . . . . . . . . . . . . . . . . . . . . . . 1\n"
    "2 Methods ............................................................ 7\n"
    "3 Results . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . 12",
    # Aligned equations with \\ line ends and an empty-cell array.
    "$$\n\\begin{aligned}\na &= b + c \\\\\nd &= e + f \\\\\ng &= h + i \\\\\nj &= k + l\n"
    "\\end{aligned}\n$$\n$$\n\\begin{array}{cccccccccccc}\n1 & & & & & & & & & & & \\\\\n"
    "\\end{array}\n$$",
    # Matrices whose rows repeat a short unit on one line.
    "$$\nA = \\begin{pmatrix} 0 & 0 & 0 & 0 & 0 & 0 & 0 & 0 & 0 & 0 & 0 & 0 \\\\ "
    "\\cdots & \\cdots & \\cdots & \\cdots & \\cdots & \\cdots \\end{pmatrix}\n$$",
    # A short word said four times is under min_span_chars.
    "This is very very very very important.",
    # Three identical lines are under min_repeats.
    "Name: ____________________\nName: ____________________\nName: ____________________\n",
    # Blank lines and spaces are whitespace, not a loop.
    "Text." + "\n" * 200 + "More." + " " * 300,
])
def test_no_false_positive(text):
    assert find_loops(text) == ()
    assert truncate_loop(text) == (text, None)


def test_long_ordinary_text_has_no_loop():
    words = ("spectral graph theory studies eigenvalues of adjacency matrices and their "
             "relation to connectivity expansion colouring and random walks on networks").split()
    text = " ".join(words[(i * 7) % len(words)] + str(i % 13) for i in range(4000))
    assert len(text) > 30_000
    assert find_loops(text) == ()


# --- API checks -------------------------------------------------------------------------------


def test_loop_validates_and_knows_its_end():
    assert Loop(start=5, period=3, repeats=4).end == 17
    with pytest.raises(ValueError):
        Loop(start=-1, period=3, repeats=4)
    with pytest.raises(ValueError):
        Loop(start=0, period=0, repeats=4)
    with pytest.raises(ValueError):
        Loop(start=0, period=3, repeats=1)


@pytest.mark.parametrize("kw", [{"min_repeats": 1}, {"min_span_chars": 0}, {"max_period": 0},
                                {"min_interior_repeats": 1}])
def test_bad_thresholds_raise(kw):
    with pytest.raises(ValueError):
        find_loops("abc", **kw)


def test_max_period_bounds_the_unit():
    text = "Intro.\n" + ROW * 10
    assert find_loop(text, max_period=len(ROW) - 1) is None
    assert find_loop(text, max_period=len(ROW)) is not None
