"""Find and cut repetition loops in LLM/VLM output.

A model that degenerates repeats one unit (a line, a table row, a phrase) until it hits
max_tokens, so the loop runs to the END of the text, often ending in a partial copy. Sometimes
it recovers: a table row repeated 30 times, then the rest of the page. Both are exact
repetitions of one unit: a stretch of text that is periodic with a short period.

- `find_loops(text) -> tuple[Loop, ...]`: every loop, non-overlapping, in text order.
- `find_loop(text) -> Loop | None`: the loop that matters most (the tail loop, else the longest).
- `truncate_loop(text) -> (text, Loop | None)`: a tail loop is cut after its first copy; an
  interior loop is collapsed to one copy and the text after it is kept.

How: for every period p up to `max_period`, one vectorised comparison `text[i] == text[i + p]`
over the whole text; a run of matches of length m is a periodic stretch of m + p characters.
That is O(n * max_period) character comparisons done in numpy (about 12M for a 30k-char page
and p <= 400: tens of milliseconds), never a Python loop over characters. Candidate runs are
few; the longest wins where they overlap, the smallest period where they tie.

Legitimate repetition is kept by the thresholds below: a Markdown table separator
`|---|---|`, dot leaders in a table of contents and `& & &` fillers in LaTeX arrays have no
letter or digit in their unit; "very very very very" is shorter than `min_span_chars`; and
`\\cdots & \\cdots &` or `0 & 0 & 0` rows in a matrix have a unit under `SHORT_PERIOD` chars
and stay on one printed line. Nothing here knows about Beam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A loop needs at least this many consecutive copies of its unit. Three copies of a line happen
# in real pages (a repeated "n/a" row); four exact copies running to the end of the output do not.
MIN_REPEATS = 4

# ... and must cover at least this many characters, so that a short word said four times
# ("very very very very", 19 chars) or a doubled "\\ \\" line end is never a loop.
MIN_SPAN_CHARS = 40

# The longest unit we look for: a wide table row or a long sentence (~400 chars). Longer units
# cost time linearly and repeat rarely enough that min_repeats copies would already be >1.6k chars.
MAX_PERIOD = 400

# A loop that does not reach the end of the text is weaker evidence (the model recovered, or the
# page really repeats itself), so it needs more copies: VLM row loops repeat tens of times,
# while a real table rarely holds eight identical rows in a row.
INTERIOR_MIN_REPEATS = 8

# Units shorter than this (a word, `0 & `, `\\cdots & `) repeat legitimately inside one printed
# line (matrices, "ha ha ha"), so they must span more than a line: SHORT_MIN_SPAN_CHARS.
SHORT_PERIOD = 10
SHORT_MIN_SPAN_CHARS = 160

# A unit with no letter or digit (`|---`, `. `, `& `, `**`) is layout. Table separators, TOC
# leaders and array fillers stay under ~200 chars; a degenerate `| | | |` loop runs for thousands.
STRUCTURAL_MIN_SPAN_CHARS = 320


@dataclass(frozen=True, slots=True)
class Loop:
    """One stretch of text that repeats a unit of `period` chars `repeats` times from `start`.

    `start` is rotated to the start of a line when the unit holds a line break, so one copy is a
    whole line (or several), else to the start of a word. `repeats` counts whole copies; at the
    tail, a last copy that lacks only trailing whitespace counts as whole. `tail` is True when the
    loop runs to the end of the text (trailing whitespace aside), possibly ending in a partial
    copy: the model never stopped.
    """

    start: int
    period: int
    repeats: int
    tail: bool = False

    def __post_init__(self) -> None:
        if self.start < 0 or self.period < 1 or self.repeats < 2:
            raise ValueError(f"invalid loop {self!r}: need start >= 0, period >= 1, repeats >= 2")

    @property
    def end(self) -> int:
        """Offset just after the last full copy."""
        return self.start + self.period * self.repeats


def _check_thresholds(min_repeats: int, min_span_chars: int, max_period: int,
                      min_interior_repeats: int) -> None:
    if min_repeats < 2 or min_interior_repeats < 2:
        raise ValueError(f"min_repeats ({min_repeats}) and min_interior_repeats "
                         f"({min_interior_repeats}) must be at least 2")
    if min_span_chars < 1 or max_period < 1:
        raise ValueError(f"min_span_chars ({min_span_chars}) and max_period ({max_period}) "
                         "must be positive")


def _primitive_period(unit: str) -> int:
    """The length of the shortest string whose repetition makes `unit` ("abab" -> 2)."""
    size = len(unit)
    for q in range(1, size // 2 + 1):
        if size % q == 0 and unit[:q] * (size // q) == unit:
            return q
    return size


def _qualify(text: str, start: int, length: int, period: int, text_end: int, *,
             min_repeats: int, min_span_chars: int,
             min_interior_repeats: int) -> tuple[int, Loop] | None:
    """(length, Loop) for a maximal periodic stretch `text[start:start+length]`, None if too weak.

    The returned length is the stretch's after rotating it to a line (or word) start.
    """
    unit = text[start:start + period]
    if not unit.strip():
        return None  # runs of blank lines or spaces: harmless, a whitespace rule's business
    if _primitive_period(unit) < period:
        return None  # k copies of a shorter unit: that unit's own run covers the same stretch
    # Rotate the unit so that each copy is whole lines, or else whole words.
    newline, space = unit.find("\n"), unit.find(" ")
    shift = 0
    if start > 0 and text[start - 1] != "\n" and newline != -1:
        shift = newline + 1
    elif start > 0 and not text[start - 1].isspace() and newline == -1 and space != -1:
        shift = space + 1
    if shift:
        start, length = start + shift, length - shift
        unit = text[start:start + period]
    repeats = length // period
    tail = start + length >= text_end
    if tail and length % period >= len(unit.rstrip()):
        repeats += 1  # the last copy lacks only its line break: the output was stripped
    if repeats < (min_repeats if tail else max(min_repeats, min_interior_repeats)):
        return None
    min_span = min_span_chars
    if period < SHORT_PERIOD:
        min_span = max(min_span, SHORT_MIN_SPAN_CHARS)
    if not any(ch.isalnum() for ch in unit):
        min_span = max(min_span, STRUCTURAL_MIN_SPAN_CHARS)
    if length < min_span:
        return None
    return length, Loop(start=start, period=period, repeats=repeats, tail=tail)


def find_loops(text: str, *, min_repeats: int = MIN_REPEATS, min_span_chars: int = MIN_SPAN_CHARS,
               max_period: int = MAX_PERIOD,
               min_interior_repeats: int = INTERIOR_MIN_REPEATS) -> tuple[Loop, ...]:
    """Every repetition loop in `text`, non-overlapping, ordered by `start`.

    A tail loop needs `min_repeats` copies, an interior one `max(min_repeats,
    min_interior_repeats)`; both must cover `min_span_chars` (more for short or letterless
    units, see the module constants).
    """
    _check_thresholds(min_repeats, min_span_chars, max_period, min_interior_repeats)
    n = len(text)
    if n < 2 * min_repeats:
        return ()
    text_end = len(text.rstrip())
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    padded = np.zeros(n + 1, dtype=np.int8)
    found: list[tuple[int, Loop]] = []  # (periodic length, loop)
    for period in range(1, min(max_period, n // (min_repeats - 1)) + 1):
        # A qualifying stretch has >= min_repeats copies (the last one at least begun) and
        # >= min_span_chars chars, i.e. a run of at least `need` matches text[i] == text[i + p].
        need = max((min_repeats - 2) * period + 1, min_span_chars - period, 1)
        same = codes[period:] == codes[:-period]
        if int(np.count_nonzero(same)) < need:
            continue
        padded[:] = 0
        padded[1:n - period + 1] = same
        edges = np.flatnonzero(padded[1:n - period + 2] != padded[:n - period + 1])
        starts, stops = edges[0::2], edges[1::2]
        long_enough = (stops - starts) >= need
        for run_start, run_stop in zip(starts[long_enough].tolist(), stops[long_enough].tolist()):
            length = run_stop - run_start + period
            qualified = _qualify(text, run_start, length, period, text_end,
                                 min_repeats=min_repeats, min_span_chars=min_span_chars,
                                 min_interior_repeats=min_interior_repeats)
            if qualified is not None:
                found.append(qualified)
    # The longest stretch first; on a tie the smallest period (the unit itself, not two copies).
    found.sort(key=lambda item: (-item[0], item[1].period, item[1].start))
    chosen: list[tuple[int, int, Loop]] = []
    for length, loop in found:
        lo, hi = loop.start, loop.start + length
        if all(hi <= c_lo or lo >= c_hi for c_lo, c_hi, _ in chosen):
            chosen.append((lo, hi, loop))
    return tuple(loop for _, _, loop in sorted(chosen, key=lambda item: item[0]))


def _principal(loops: tuple[Loop, ...]) -> Loop | None:
    """The tail loop if there is one (it ate the rest of the output), else the longest."""
    if not loops:
        return None
    tails = [loop for loop in loops if loop.tail]
    if tails:
        return tails[-1]
    return max(loops, key=lambda loop: (loop.period * loop.repeats, -loop.start))


def find_loop(text: str, *, min_repeats: int = MIN_REPEATS, min_span_chars: int = MIN_SPAN_CHARS,
              max_period: int = MAX_PERIOD,
              min_interior_repeats: int = INTERIOR_MIN_REPEATS) -> Loop | None:
    """The loop that matters most in `text`: the tail loop if any, else the longest interior one."""
    return _principal(find_loops(text, min_repeats=min_repeats, min_span_chars=min_span_chars,
                                 max_period=max_period, min_interior_repeats=min_interior_repeats))


def truncate_loop(text: str, *, min_repeats: int = MIN_REPEATS, min_span_chars: int = MIN_SPAN_CHARS,
                  max_period: int = MAX_PERIOD,
                  min_interior_repeats: int = INTERIOR_MIN_REPEATS) -> tuple[str, Loop | None]:
    """`text` with every loop reduced to one copy of its unit, and the principal loop.

    A tail loop is cut after its first copy and trailing whitespace is stripped (what followed was
    the model never stopping); an interior loop is collapsed to one copy and the text after it
    kept (the model recovered). Returns `(text, None)` unchanged when there is no loop.
    """
    loops = find_loops(text, min_repeats=min_repeats, min_span_chars=min_span_chars,
                       max_period=max_period, min_interior_repeats=min_interior_repeats)
    if not loops:
        return text, None
    parts: list[str] = []
    pos = 0
    for loop in loops:
        parts.append(text[pos:loop.start + loop.period])
        if loop.tail:
            return "".join(parts).rstrip(), _principal(loops)
        pos = loop.end
    parts.append(text[pos:])
    return "".join(parts), _principal(loops)
