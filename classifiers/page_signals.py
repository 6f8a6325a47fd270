"""Page signals: evidence that the cheap (MinerU flash) parse of a page is bad, and one score.

`detect(page) -> PageSignals` measures a `PageParse` against the page's own PDFium text layer;
`score(signals) -> float` folds the evidence into one questionability number; `reasons(signals)`
names the signals that drove it. Routing (`top route_budget of pages corpus-wide go to the VLM`)
happens in a separate stage on these scores, so thresholds change without re-parsing.

What the cheap parser gets wrong, and the signal that sees it:

- display formulas: MinerU flash finds `equation` blocks but leaves their text EMPTY, so the
  formula is lost (`empty_equation_blocks`, `equation_area`);
- inline mathematics: flash keeps it as plain Unicode with `<sup>`/`<sub>` markup, not LaTeX
  (`math_unicode_ratio`, `math_font_ratio`, `script_spans`, `inline_math`, `latex_commands`);
- fonts without a usable ToUnicode map: `(cid:N)` strings, U+FFFD and private-use characters
  (`cid_ratio`, `replacement_ratio`);
- text the parse dropped, or text-layer lines shattered by typesetting (`lost_char_ratio`,
  `broken_line_ratio`, `symbol_density`);
- scans: no text layer at all (`has_text_layer`), which is a hard rule, not a weight.

Everything here is pure Python on the records; no Beam, no model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

from scicurate.records import STATUS_OK, PageParse, PageSignals

# Block types as MinerU 4 names them (older MinerU: interline_equation, figure).
EQUATION_TYPES = frozenset({"equation", "interline_equation"})
TABLE_TYPES = frozenset({"table"})
IMAGE_TYPES = frozenset({"image", "figure", "chart"})

# Pages with no text layer rank above every page that has one: the cheap route for them is OCR,
# which loses formulas, tables and reading order wholesale.
NO_TEXT_LAYER_SCORE = 2.0

# Default for `detect(..., min_text_chars=)`; same meaning as `PipelineConfig.min_text_chars`:
# fewer text-layer characters than a short sentence means a scan.
MIN_TEXT_CHARS = 16

# A text-layer line this short or shorter is "broken" (a lone sub/superscript, a limit of a sum,
# an axis tick): running text never breaks into lines of 1-3 characters.
BROKEN_LINE_MAX_CHARS = 3

_MARKUP = re.compile(r"</?(?:sup|sub)>")
_INLINE_MATH = re.compile(r"\$([^$]*)\$")
_CID = re.compile(r"\(cid:\d+\)")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
# PDFium writes a soft (end-of-line) hyphen as U+FFFE; it is layout, not content.
_SOFT_HYPHEN = "\ufffe"

# Unicode blocks that carry mathematics.
_MATH_RANGES = (
    (0x0370, 0x03FF),    # Greek and Coptic
    (0x2100, 0x214F),    # Letterlike Symbols (ℝ, ℓ, ℏ, …)
    (0x2190, 0x21FF),    # Arrows
    (0x2200, 0x22FF),    # Mathematical Operators
    (0x27C0, 0x27EF),    # Miscellaneous Mathematical Symbols-A
    (0x2980, 0x29FF),    # Miscellaneous Mathematical Symbols-B
    (0x2A00, 0x2AFF),    # Supplemental Mathematical Operators
    (0x1D400, 0x1D7FF),  # Mathematical Alphanumeric Symbols
)
_PRIVATE_USE_RANGES = ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))


def _char_class(ranges: tuple[tuple[int, int], ...], extra: str = "") -> re.Pattern[str]:
    body = "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges)
    return re.compile(f"[{body}{re.escape(extra)}]")


# Counting with compiled character classes instead of a Python loop per character: the same
# counts, ~20x faster on a dense page (this runs on every page of the corpus).
_MATH_CLASS = _char_class(_MATH_RANGES)
_REPLACEMENT_CLASS = _char_class(_PRIVATE_USE_RANGES, "\ufffd")
_SPACE_RUN = re.compile(r"\s+")
_SYMBOL_CLASS = re.compile(r"[^\w\s]|_")


def _in_ranges(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)


def is_math_char(ch: str) -> bool:
    return _in_ranges(ord(ch), _MATH_RANGES)


def is_replacement_char(ch: str) -> bool:
    """U+FFFD or a private-use code point: a glyph whose Unicode meaning the PDF did not give."""
    code = ord(ch)
    return code == 0xFFFD or _in_ranges(code, _PRIVATE_USE_RANGES)


def strip_markup(text: str, *, inline_math: bool = True) -> str:
    """A block's text without the parser's markup: `<sup>`/`<sub>` tags and `$..$` delimiters.

    `$` is only treated as a delimiter when the block has inline-math spans, so dollar amounts in
    prose (a tax form) still count as characters.
    """
    text = _MARKUP.sub("", text)
    if inline_math:
        text = _INLINE_MATH.sub(r"\1", text)
    return text


def _non_space(text: str) -> int:
    return len(_SPACE_RUN.sub("", text))


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0


def _cid_per_100(text: str) -> float:
    return 100.0 * _ratio(len(_CID.findall(text)), _non_space(text))


def _replacement_ratio(text: str) -> float:
    return _ratio(len(_REPLACEMENT_CLASS.findall(text)), _non_space(text))


def _math_unicode_ratio(text: str) -> float:
    return _ratio(len(_MATH_CLASS.findall(text)), _non_space(text))


def _symbol_density(text: str) -> float:
    # Not alphanumeric (str.isalnum): everything but word characters, and "_" which \w includes.
    return _ratio(len(_SYMBOL_CLASS.findall(text)), _non_space(text))


def _broken_line_ratio(text: str) -> float:
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    return _ratio(sum(1 for line in lines if len(line) <= BROKEN_LINE_MAX_CHARS), len(lines))


def _bbox_area(bbox: tuple[float, float, float, float]) -> float:
    x0, y0, x1, y1 = (min(1.0, max(0.0, v)) for v in bbox)
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def detect(page: PageParse, *, min_text_chars: int = MIN_TEXT_CHARS) -> PageSignals:
    """Measure one parsed page. In: a `PageParse`; out: its `PageSignals`.

    Ratios are over non-whitespace characters. Which text each signal reads:

    - the parse (block texts with markup stripped): `parsed_chars`, `lost_char_ratio`;
    - the text layer, which does not depend on the parser and still holds the formulas flash
      dropped: `math_unicode_ratio`, `symbol_density`, `broken_line_ratio` (a page without a
      text layer falls back to the parse for the first two);
    - both, taking the worse: `cid_ratio`, `replacement_ratio`, `latex_commands` (garbage or
      LaTeX in either one is evidence about the page).

    A failed page gets default signals: there is no parse to judge, and routing treats failed
    pages on their own.
    """
    if page.status != STATUS_OK:
        return PageSignals()
    layer = page.text_layer
    layer_text = layer.text.replace(_SOFT_HYPHEN, "")
    has_text_layer = layer.chars >= min_text_chars
    parsed_text = "\n".join(
        strip_markup(block.text, inline_math=block.inline_math > 0) for block in page.blocks
    )
    parsed_chars = _non_space(parsed_text)
    content_text = layer_text if has_text_layer else parsed_text
    equations = [b for b in page.blocks if b.type in EQUATION_TYPES]
    return PageSignals(
        text_layer_chars=layer.chars,
        parsed_chars=parsed_chars,
        has_text_layer=has_text_layer,
        equation_blocks=len(equations),
        empty_equation_blocks=sum(1 for b in equations if not b.text.strip()),
        equation_area=min(1.0, sum(_bbox_area(b.bbox) for b in equations)),
        inline_math=sum(b.inline_math for b in page.blocks),
        script_spans=sum(b.script_spans for b in page.blocks),
        table_blocks=sum(1 for b in page.blocks if b.type in TABLE_TYPES),
        image_blocks=sum(1 for b in page.blocks if b.type in IMAGE_TYPES),
        latex_commands=max(
            len(_LATEX_COMMAND.findall(parsed_text)), len(_LATEX_COMMAND.findall(layer_text))
        ),
        math_unicode_ratio=_math_unicode_ratio(content_text),
        math_font_ratio=min(1.0, _ratio(layer.math_font_chars, layer.chars)),
        cid_ratio=max(_cid_per_100(parsed_text), _cid_per_100(layer_text)),
        replacement_ratio=max(_replacement_ratio(parsed_text), _replacement_ratio(layer_text)),
        symbol_density=_symbol_density(content_text),
        broken_line_ratio=_broken_line_ratio(layer_text),
        lost_char_ratio=max(0.0, 1.0 - _ratio(parsed_chars, layer.chars)) if layer.chars else 0.0,
    )


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """How much each piece of evidence counts in `score`.

    Each signal is first mapped to a feature in [0, 1) by `1 - exp(-x / scale)`, where `scale`
    (the module's `_SCALES`) is "what counts as a lot" for a generic page; features are then
    summed with these weights and squashed with `1 - exp(-sum)`. A weight of ~3 therefore makes
    one saturated signal alone give a score of ~0.95; a weight of ~0.3 can at most add ~0.25.

    - `cid`, `replacement` (3.0, 2.0): the text itself is unreadable: `(cid:N)` means a font
      without a ToUnicode map, U+FFFD / private-use code points mean glyphs with no Unicode
      meaning (large brackets of matrices, Symbol-font pieces). The cheap parse copies this
      garbage, so one saturated signal should put the page near the top on its own. Private use
      also carries harmless Word bullets, hence 2.0 rather than 3.0.
    - `empty_equations` (1.5): direct proof of lost content: MinerU flash emits display-formula
      blocks with empty text.
    - `lost_chars` (1.2): text-layer characters the parse did not reproduce; direct proof too,
      but a few percent also vanish as ligatures, dropped watermarks or margins.
    - `math_unicode` (0.8), `math_font` (0.6): inline mathematics, which flash keeps as flat
      Unicode without structure. Font evidence is a little weaker: some math fonts also set
      text, and many producers use no recognisable math font at all.
    - `equation_area` (0.5): large display formulas lose more than small ones; already partly
      counted by `empty_equations`, so lower.
    - `broken_lines` (0.4): short text-layer lines come from stacked formulas (limits, scripts)
      but also from figure labels and form fields, so it only corroborates.
    - `inline_math` (0.4), `latex` (0.3), `scripts` (0.2): the parser (a higher tier) or the
      text layer recognised mathematics; sub/superscripts are weakest because citations and
      chemical formulas use them in plain prose.
    - `tables` (0.3): tables come out of the cheap parser flattened.
    - `symbol_density` (0.25): formulas are dense in symbols, but so are reference lists and
      dotted leaders of tables of contents; corroboration only.
    - `images` (0.1): a figure is rarely what the expensive parser fixes; a tie-breaker.
    """

    cid: float = 3.0
    replacement: float = 2.0
    empty_equations: float = 1.5
    lost_chars: float = 1.2
    math_unicode: float = 0.8
    math_font: float = 0.6
    equation_area: float = 0.5
    broken_lines: float = 0.4
    inline_math: float = 0.4
    latex: float = 0.3
    scripts: float = 0.2
    tables: float = 0.3
    symbol_density: float = 0.25
    images: float = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise ValueError(f"weight {f.name} must be finite and >= 0 (score stays monotone)")


DEFAULT_WEIGHTS = ScoreWeights()

# The amount of each signal that counts as "a lot" (its feature reaches 1 - 1/e = 0.63 there),
# and, for signals that ordinary prose already shows, the baseline subtracted first. These are
# page-generic orders of magnitude, not fitted to any corpus.
_SCALES: dict[str, float] = {
    "cid": 0.5,               # one "(cid:N)" per 200 characters: every ~30th word garbled
    "replacement": 0.01,      # 1 in 100 characters without Unicode meaning
    "empty_equations": 2.0,   # two lost display formulas
    "lost_chars": 0.10,       # a tenth of the page's text missing
    "math_unicode": 0.03,     # 3 in 100 characters are Greek, operators, arrows, …
    "math_font": 0.15,        # 15 % of the text layer set in math fonts
    "equation_area": 0.10,    # display formulas cover a tenth of the page
    "broken_lines": 0.25,     # a quarter of text-layer lines broken, above the baseline
    "inline_math": 5.0,       # inline formulas per 1,000 parsed characters
    "latex": 5.0,             # LaTeX commands on the page
    "scripts": 10.0,          # sub/superscript spans per 1,000 parsed characters
    "tables": 2.0,            # table blocks
    "symbol_density": 0.10,   # share of symbols above the baseline
    "images": 3.0,            # image blocks
}
_BASELINES: dict[str, float] = {
    # Page numbers, list labels and the odd footnote mark: some short lines are normal.
    "broken_lines": 0.10,
    # Prose punctuation (. , ; ( ) - ' ") is ~3-6 % of non-space characters; reference lists
    # reach ~10 %.
    "symbol_density": 0.10,
}


def _evidence(signals: PageSignals) -> dict[str, float]:
    """The raw amount of each weighted signal, before scaling."""
    per_kchar = 1000.0 / max(signals.parsed_chars, 1)
    return {
        "cid": signals.cid_ratio,
        "replacement": signals.replacement_ratio,
        "empty_equations": float(signals.empty_equation_blocks),
        "lost_chars": signals.lost_char_ratio,
        "math_unicode": signals.math_unicode_ratio,
        "math_font": signals.math_font_ratio,
        "equation_area": signals.equation_area,
        "broken_lines": signals.broken_line_ratio,
        "inline_math": signals.inline_math * per_kchar,
        "latex": float(signals.latex_commands),
        "scripts": signals.script_spans * per_kchar,
        "tables": float(signals.table_blocks),
        "symbol_density": signals.symbol_density,
        "images": float(signals.image_blocks),
    }


def contributions(
    signals: PageSignals, weights: ScoreWeights = DEFAULT_WEIGHTS
) -> dict[str, float]:
    """Each weighted signal's share of the score's exponent: weight x feature in [0, weight)."""
    out = {}
    for name, amount in _evidence(signals).items():
        excess = max(0.0, amount - _BASELINES.get(name, 0.0))
        out[name] = getattr(weights, name) * (1.0 - math.exp(-excess / _SCALES[name]))
    return out


def score(signals: PageSignals, weights: ScoreWeights = DEFAULT_WEIGHTS) -> float:
    """Questionability of the cheap parse of a page: higher = more likely bad.

    `1 - exp(-sum(contributions))`, in [0, 1); non-decreasing in every piece of evidence since
    each feature is and every weight is >= 0. A page without a text layer gets the hard-rule
    value `NO_TEXT_LAYER_SCORE` (2.0), above every normal score, so it ranks first.
    """
    if not signals.has_text_layer:
        return NO_TEXT_LAYER_SCORE
    return 1.0 - math.exp(-sum(contributions(signals, weights).values()))


def reasons(
    signals: PageSignals,
    weights: ScoreWeights = DEFAULT_WEIGHTS,
    *,
    top: int = 3,
    min_contribution: float = 0.05,
) -> list[str]:
    """Names of the signals that drove the score, largest first (for route reasons).

    `["no_text_layer"]` for a page without one; at most `top` names, each contributing at least
    `min_contribution` to the exponent (smaller shares do not explain a routing decision).
    """
    if not signals.has_text_layer:
        return ["no_text_layer"]
    ranked = sorted(contributions(signals, weights).items(), key=lambda kv: (-kv[1], kv[0]))
    return [name for name, value in ranked[:top] if value >= min_contribution]
