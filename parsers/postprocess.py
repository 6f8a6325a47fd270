"""Rule-based clean-up of the LOW-COST parser's output (MinerU 4 flash, RapidOCR for scans).

These rules are tuned to what MinerU flash and RapidOCR get wrong; the VLM (high-cost) parser
writes Markdown itself and gets its own, separate rules. Nothing here knows about Beam.

- `render_page(blocks) -> RenderedPage`: one page's `Block`s, in reading order, as Markdown,
  with the names of the rules that changed something and the number of blocks dropped.
- `clean_prose(text) -> (text, rules)`: the character- and line-level rules applied to prose.
- `strip_running_lines(pages) -> (pages, removed)`: document-level removal of running headers,
  footers and page numbers, run at merge time on the pages' Markdown.

Prose rules never touch fenced blocks (tables, code), HTML tables, display math or inline
`$…$` math: they would break column alignment, code and formulas.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from scicurate.records import Block

# What a display formula becomes when MinerU flash found it but gave no text: the page says
# text was lost here instead of silently closing up around the hole.
FORMULA_PLACEHOLDER = "<!-- formula not extracted -->"

# Rule names: stable strings, written to `PageResult.postprocess` and used as counter names.
RULE_DROP_PAGE_FURNITURE = "drop_page_furniture"      # header, footer, page_number blocks
RULE_DROP_EMPTY_BLOCKS = "drop_empty_blocks"          # blocks with no text left (empty caption, …)
RULE_FORMULA_PLACEHOLDER = "formula_placeholder"      # equation block without text
RULE_DROP_CID = "drop_cid"                            # "(cid:N)" glyph ids without a Unicode map
RULE_DROP_REPLACEMENT_CHAR = "drop_replacement_char"  # U+FFFD
RULE_FIX_LIGATURES = "fix_ligatures"                  # ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ -> fi fl ff ffi ffl st st
RULE_COMPOSE_ACCENTS = "compose_accents"              # "G¨oteborg" -> "Göteborg" (TeX OT1 accents)
RULE_DROP_SOFT_HYPHEN = "drop_soft_hyphen"            # U+00AD (and PDFium's U+FFFE)
RULE_DEHYPHENATE = "dehyphenate"                      # "experi-\nment" -> "experiment"
RULE_JOIN_LINES = "join_lines"                        # line wraps inside a paragraph
RULE_COLLAPSE_SPACES = "collapse_spaces"              # runs of spaces and tabs -> one space
RULE_STRIP_SPACES = "strip_spaces"                    # spaces at the start and end of lines
RULE_JOIN_SPLIT_PARAGRAPHS = "join_split_paragraphs"  # a paragraph cut at a column break

# Every rule, in the order they are reported.
LOW_COST_RULES = (
    RULE_DROP_PAGE_FURNITURE,
    RULE_DROP_EMPTY_BLOCKS,
    RULE_FORMULA_PLACEHOLDER,
    RULE_DROP_CID,
    RULE_DROP_REPLACEMENT_CHAR,
    RULE_FIX_LIGATURES,
    RULE_COMPOSE_ACCENTS,
    RULE_DROP_SOFT_HYPHEN,
    RULE_DEHYPHENATE,
    RULE_JOIN_LINES,
    RULE_COLLAPSE_SPACES,
    RULE_STRIP_SPACES,
    RULE_JOIN_SPLIT_PARAGRAPHS,
)

# Block types, as MinerU 4 names them.
PAGE_FURNITURE_TYPES = frozenset({"header", "footer", "page_number"})
_HEADING_TYPES = frozenset({"doc_title", "paragraph_title", "title"})
_EQUATION_TYPES = frozenset({"equation", "interline_equation"})
_CAPTIONED_TYPES = frozenset({"image", "figure", "chart"})  # only the caption survives
_LINE_ITEM_TYPES = frozenset({"list", "index"})            # one item per line: never joined
_CODE_TYPES = frozenset({"code", "algorithm"})
# Every other type (text, ref_text, aside_text, page_footnote, unknown ones) is a paragraph:
# an unknown type keeps its text rather than losing it.

# Latin presentation forms U+FB00-U+FB06. NFKC is applied to these characters only: NFKC on
# the whole text would also turn ² into 2, ℝ into R and 𝑘 into k, destroying mathematics.
_LIGATURES = {chr(c): unicodedata.normalize("NFKC", chr(c)) for c in range(0xFB00, 0xFB07)}
_LIGATURE_RE = re.compile("[" + "".join(_LIGATURES) + "]")

_CID_RE = re.compile(r"\(cid:\d+\)")

# pdfTeX with OT1 fonts draws an accent as its own glyph before the letter, and text extraction
# gives the spacing accent followed by the letter: "G¨oteborg", "Th´eorique", "Universit`a".
# Each spacing accent maps to its combining mark; a pair is replaced only when NFC composes it
# into one letter. The grave accent is also LaTeX's opening quote, so "`" must sit inside a word.
_SPACING_ACCENTS = {
    "\u00a8": "\u0308", "\u00b4": "\u0301", "\u02c6": "\u0302", "\u02dc": "\u0303",
    "\u02c7": "\u030c", "\u02d8": "\u0306", "\u02d9": "\u0307", "\u02da": "\u030a",
    "\u00af": "\u0304", "`": "\u0300",
}
_ACCENT_RE = re.compile("(?:(?<=[^\\W\\d_])`|[\u00a8\u00b4\u02c6\u02dc\u02c7\u02d8\u02d9\u02da\u00af])([^\\W\\d_])")


def _compose_accent(match: re.Match[str]) -> str:
    accent = match.group(0)[0]
    composed = unicodedata.normalize("NFC", match.group(1) + _SPACING_ACCENTS[accent])
    return composed if len(composed) == 1 else match.group(0)
_SOFT_HYPHENS = "\u00ad\ufffe"
_SOFT_HYPHEN_BREAK_RE = re.compile(f"[{_SOFT_HYPHENS}][ \\t]*\\n[ \\t]*")
_SOFT_HYPHEN_RE = re.compile(f"[{_SOFT_HYPHENS}]")

# A word broken at a line end: the fragment is a whole word (not the tail of a compound such as
# "state-of-the-") of letters only, followed by a hyphen, a line break and a letter.
_HYPHEN_BREAK_RE = re.compile(r"(?<![\w\-\u2010])([^\W\d_]+)[-\u2010][ \t]*\n[ \t]*(?=([^\W\d_]))")
# Fragments that form hyphenated compounds far more often than they end a syllable, so
# "non-\nlinear" stays "non-linear". TeX hyphenation breaks words between syllables; these
# prefixes are whole syllables that authors usually hyphenate ("self-consistent"), and joining
# them wrongly gives a non-word ("selfconsistent"), which is worse than a stray hyphen.
KEEP_HYPHEN_PREFIXES = frozenset({"non", "self", "well", "cross", "half", "quasi", "all", "ill"})
# A line ending in a hyphen or dash glued to a word continues on the next line without a space
# or to inline math ("non-\nlinear", "10–\n20", "$x$-\nbased"); any other line break inside a
# paragraph becomes one space.
_DASH_BREAK_RE = re.compile(r"(?<=[\w\ue000-\uf8ff])([-\u2010\u2013\u2014])[ \t]*\n[ \t]*(?=\S)")
_LINE_BREAK_RE = re.compile(r"[ \t]*\n[ \t]*")
_SPACE_RUN_RE = re.compile(r"[ \t]{2,}|\t")
_EDGE_SPACE_RE = re.compile(r"^[ \t]+|[ \t]+$", re.MULTILINE)
_BLANK_LINES_RE = re.compile(r"\n[ \t]*\n\s*")

# Inline and display math inside a text block; inline math does not cross a line break, so a
# stray "$" (a price) cannot shield a whole paragraph from the rules.
_MATH_RE = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.DOTALL)

# Table captions MinerU puts on the first (or last) line of a table block.
_CAPTION_RE = re.compile(r"^\s*(?:table|tab\.|tabelle|tableau)\s*[\dIVXLC]", re.IGNORECASE)
_ALIGNED_RE = re.compile(r"\S {2,}\S|\t")


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """One page of low-cost parser output as Markdown.

    `rules` names, in `LOW_COST_RULES` order, each rule that changed something on this page;
    `dropped_blocks` counts blocks that left no text (page furniture, empty captions, …).
    """

    markdown: str
    rules: tuple[str, ...] = ()
    dropped_blocks: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.rules) - set(LOW_COST_RULES)
        if unknown:
            raise ValueError(f"unknown post-processing rules {sorted(unknown)}")
        if self.dropped_blocks < 0:
            raise ValueError(f"negative dropped_blocks {self.dropped_blocks}")


def _ordered(rules: Iterable[str]) -> tuple[str, ...]:
    found = set(rules)
    return tuple(rule for rule in LOW_COST_RULES if rule in found)


def _apply(text: str, rule: str, fn: Callable[[str], str], fired: set[str]) -> str:
    new = fn(text)
    if new != text:
        fired.add(rule)
    return new


def _dehyphenate(match: re.Match[str]) -> str:
    fragment, first = match.group(1), match.group(2)
    if (len(fragment) >= 2 and fragment.islower() and first.islower()
            and fragment not in KEEP_HYPHEN_PREFIXES):
        return fragment
    return match.group(0)  # a compound or a capital: `join_lines` keeps the hyphen


def _shield_math(text: str) -> tuple[str, list[str]]:
    """Replace math spans by private-use tokens the rules cannot touch."""
    spans: list[str] = []
    sentinel = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text)

    def token(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"{sentinel}{len(spans) - 1}{sentinel}"

    shielded = _MATH_RE.sub(token, text)
    if not spans:
        return text, spans
    return shielded, [sentinel, *spans]


def _unshield_math(text: str, shield: list[str]) -> str:
    if not shield:
        return text
    sentinel, spans = shield[0], shield[1:]
    return re.sub(f"{sentinel}(\\d+){sentinel}", lambda m: spans[int(m.group(1))], text)


def clean_prose(text: str, *, join_lines: bool = True) -> tuple[str, tuple[str, ...]]:
    """Apply the prose rules to one block's text; return the text and the rules that fired.

    In order: drop `(cid:N)` and U+FFFD; expand ligatures (ﬁ -> fi, NFKC on U+FB00-FB06 only);
    drop soft hyphens (one at a line end joins the lines); then, with `join_lines`, de-hyphenate
    and join line wraps, keeping blank lines as paragraph breaks; finally collapse runs of
    spaces and strip spaces at line ends. `join_lines=False` keeps every line (list items).

    De-hyphenation: "frag-\\nment" loses its hyphen when the fragment is a whole lowercase
    word of two letters or more (TeX never leaves one letter before a break, so "x-\\nray" is a
    compound) and the next line starts with a lowercase letter, unless the fragment is one of
    `KEEP_HYPHEN_PREFIXES` ("non-\\nlinear" -> "non-linear"). A capitalised fragment or second
    part ("Coulomb-\\ndistorted", "non-\\nEuclidean") or a fragment with digits keeps the hyphen
    and loses only the line break. Without a dictionary this is a guess either way; keeping a
    hyphen costs less than gluing two words. Inline math `$…$` is left as it is.
    """
    fired: set[str] = set()
    body, shield = _shield_math(text)
    body = _apply(body, RULE_DROP_CID, lambda t: _CID_RE.sub("", t), fired)
    body = _apply(body, RULE_DROP_REPLACEMENT_CHAR, lambda t: t.replace("\ufffd", ""), fired)
    body = _apply(body, RULE_FIX_LIGATURES,
                  lambda t: _LIGATURE_RE.sub(lambda m: _LIGATURES[m.group(0)], t), fired)
    body = _apply(body, RULE_COMPOSE_ACCENTS, lambda t: _ACCENT_RE.sub(_compose_accent, t), fired)
    body = _apply(body, RULE_DROP_SOFT_HYPHEN,
                  lambda t: _SOFT_HYPHEN_RE.sub("", _SOFT_HYPHEN_BREAK_RE.sub("", t)), fired)
    if join_lines:
        body = _apply(body, RULE_STRIP_SPACES, str.strip, fired)
        paragraphs = _BLANK_LINES_RE.split(body)
        paragraphs = [_apply(p, RULE_DEHYPHENATE, lambda t: _HYPHEN_BREAK_RE.sub(_dehyphenate, t),
                             fired) for p in paragraphs]
        paragraphs = [_apply(p, RULE_JOIN_LINES,
                             lambda t: _LINE_BREAK_RE.sub(" ", _DASH_BREAK_RE.sub(r"\1", t)), fired)
                      for p in paragraphs]
        body = "\n\n".join(paragraphs)
    body = _apply(body, RULE_COLLAPSE_SPACES, lambda t: _SPACE_RUN_RE.sub(" ", t), fired)
    body = _apply(body, RULE_STRIP_SPACES, lambda t: _EDGE_SPACE_RE.sub("", t).strip("\n"), fired)
    return _unshield_math(body, shield), _ordered(fired)


def _fence(body: str) -> str:
    """A fenced block whose fence is longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{body}\n{fence}"


def _strip_blank_edges(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _split_table(text: str) -> tuple[list[str], str, bool, list[str]]:
    """(captions before, body, body is HTML, captions after) of a table block's text.

    MinerU flash gives a caption line and a whitespace-aligned body, sometimes an HTML
    `<table>` body instead, and sometimes the caption after the body.
    """
    lines = _strip_blank_edges(text.split("\n"))
    html = [i for i, line in enumerate(lines) if "<table" in line.lower()]
    if html:
        first = html[0]
        closes = [i for i, line in enumerate(lines) if "</table>" in line.lower() and i >= first]
        last = closes[-1] if closes else len(lines) - 1
        return lines[:first], "\n".join(lines[first:last + 1]), True, lines[last + 1:]
    before: list[str] = []
    after: list[str] = []
    if len(lines) > 1 and (
        _CAPTION_RE.match(lines[0])
        or (not _ALIGNED_RE.search(lines[0]) and any(_ALIGNED_RE.search(l) for l in lines[1:]))
    ):
        before, lines = lines[:1], lines[1:]
    elif len(lines) > 1 and _CAPTION_RE.match(lines[-1]):
        lines, after = lines[:-1], lines[-1:]
    elif len(lines) == 1 and _CAPTION_RE.match(lines[0]):
        before, lines = lines, []
    return before, "\n".join(_strip_blank_edges(lines)), False, after


def _heading_marks(block: Block) -> str:
    if block.type == "doc_title":
        return "#"
    return "#" * min(6, max(2, block.level + 1))


def _equation_latex(text: str) -> str:
    latex = text.strip()
    for left, right in (("$$", "$$"), ("\\[", "\\]")):
        wrapped = latex.startswith(left) and latex.endswith(right)
        if wrapped and len(latex) >= len(left) + len(right):
            latex = latex[len(left):len(latex) - len(right)].strip()
    return latex


def _render_block(block: Block, fired: set[str]) -> list[str]:
    """The Markdown paragraphs of one block (empty when it leaves no text)."""
    kind = block.type

    def prose(text: str, *, join_lines: bool = True) -> list[str]:
        cleaned, rules = clean_prose(text, join_lines=join_lines)
        fired.update(rules)
        paragraphs = cleaned.split("\n\n") if join_lines else [cleaned]
        return [p for p in paragraphs if p.strip()]

    if kind in _HEADING_TYPES:
        title = " ".join(prose(block.text))
        return [f"{_heading_marks(block)} {title}"] if title else []
    if kind in _EQUATION_TYPES:
        latex = _equation_latex(block.text)
        if not latex:
            fired.add(RULE_FORMULA_PLACEHOLDER)
            return [FORMULA_PLACEHOLDER]
        return [f"$$\n{latex}\n$$"]
    if kind == "table":
        before, body, is_html, after = _split_table(block.text)
        parts = [p for line in before for p in prose(line)]
        if body.strip():
            parts.append(body.strip() if is_html else _fence(body))
        return parts + [p for line in after for p in prose(line)]
    if kind in _CODE_TYPES:
        body = "\n".join(_strip_blank_edges(block.text.split("\n")))
        return [_fence(body)] if body.strip() else []
    if kind in _LINE_ITEM_TYPES:
        return prose(block.text, join_lines=False)
    if kind in _CAPTIONED_TYPES:
        return prose(block.text)  # the caption; an image without one leaves nothing
    return prose(block.text)  # text, ref_text, aside_text, page_footnote, unknown types


# A text block that stops mid-sentence (a letter, digit or comma last) followed by a text block
# that starts with a lowercase word is one paragraph cut by a column or float: MinerU flash
# emits the two column halves as separate blocks. Only adjacent text blocks are joined, so a
# formula, table or heading in between always keeps the break.
_UNFINISHED_RE = re.compile(r"[^\W_,]$|,$")
_CONTINUES_RE = re.compile(r"^[a-z]")


def render_page(blocks: Sequence[Block]) -> RenderedPage:
    """Markdown for one page of low-cost parser output, blocks in the order given.

    doc_title -> `# `; paragraph_title -> `#` * (level + 1), at least `##`, at most `######`;
    text, list, ref_text, aside_text, page_footnote -> paragraphs (list and index items keep
    one line each); table -> caption paragraph, then the aligned body in a ``` fence (an HTML
    `<table>` body is kept as raw HTML); image/chart -> its caption; equation -> `$$` block, or
    `FORMULA_PLACEHOLDER` when the parser kept no text; code -> fenced. header, footer and
    page_number blocks are dropped (`drop_page_furniture`); they are layout, not content.
    Adjacent text blocks split mid-sentence are joined (`join_split_paragraphs`).
    Paragraphs are separated by one blank line.
    """
    fired: set[str] = set()
    parts: list[str] = []
    dropped = 0
    previous_type = ""
    for block in blocks:
        if block.type in PAGE_FURNITURE_TYPES:
            fired.add(RULE_DROP_PAGE_FURNITURE)
            dropped += 1
            continue
        rendered = _render_block(block, fired)
        if not rendered:
            fired.add(RULE_DROP_EMPTY_BLOCKS)
            dropped += 1
            continue
        if (block.type == "text" and previous_type == "text" and parts
                and _UNFINISHED_RE.search(parts[-1]) and _CONTINUES_RE.match(rendered[0])):
            fired.add(RULE_JOIN_SPLIT_PARAGRAPHS)
            parts[-1] = f"{parts[-1]} {rendered[0]}"
            rendered = rendered[1:]
        parts.extend(rendered)
        previous_type = block.type
    return RenderedPage(markdown="\n\n".join(parts), rules=_ordered(fired), dropped_blocks=dropped)


# ---------------------------------------------------------------------------------------------
# Document level: running headers, footers and page numbers.

_EDGE_LINES = 2  # how many non-empty lines at each end of a page can be a running line
_DIGITS_RE = re.compile(r"\d+")
_HEADING_PREFIX_RE = re.compile(r"^#{1,6}\s+")
_FENCE_RE = re.compile(r"^\s*(`{3,}|~{3,})")
_PAGE_NUMBER_RE = re.compile(
    r"""^(?:(?:page|p\.|pp\.|seite|s\.|pag\.|pág\.)\s*)?
        [-–—]?\s*(?P<num>\d{1,5}|[ivxlcdm]{1,10})\s*[-–—]?
        (?:\s*(?:/|of|von|de)\s*\d{1,5})?$""",
    re.IGNORECASE | re.VERBOSE,
)
_ROMAN_RE = re.compile(r"^m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})$")
_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100, "d": 500, "m": 1000}


def _content_lines(lines: list[str]) -> list[bool]:
    """Which lines are prose a running line can be: not fences, display math or placeholders."""
    content = [False] * len(lines)
    fence: str | None = None
    in_math = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = None
            continue
        match = _FENCE_RE.match(line)
        if match:
            fence = match.group(1)
            continue
        if stripped == "$$":
            in_math = not in_math
            continue
        if in_math or not stripped or stripped == FORMULA_PLACEHOLDER:
            continue
        content[i] = True
    return content


def _edge_indices(lines: list[str], content: list[bool]) -> list[int]:
    """Indices of the first and last `_EDGE_LINES` non-empty lines that are prose."""
    non_empty = [i for i, line in enumerate(lines) if line.strip()]
    edges = sorted(set(non_empty[:_EDGE_LINES]) | set(non_empty[-_EDGE_LINES:]))
    return [i for i in edges if content[i]]


def _bare(line: str) -> str:
    return _HEADING_PREFIX_RE.sub("", line.strip())


def _running_key(line: str) -> str:
    return " ".join(_DIGITS_RE.sub("#", _bare(line)).split())


def _page_number(line: str) -> tuple[str, int] | None:
    """("arabic" | "roman", value) when the line is only a page number."""
    match = _PAGE_NUMBER_RE.match(_bare(line))
    if match is None:
        return None
    num = match.group("num")
    if num.isdigit():
        return "arabic", int(num)
    roman = num.lower()
    if not _ROMAN_RE.match(roman):
        return None
    values = [_ROMAN_VALUES[c] for c in roman]
    # Subtractive notation: a numeral smaller than the one after it counts negative (iv = 4).
    return "roman", sum(-v if v < nxt else v for v, nxt in zip(values, [*values[1:], 0]))


def _drop_lines(lines: list[str], removed: set[int]) -> str:
    """Remove lines; collapse the blank lines around each gap to at most one, none at the ends."""
    keep = [i not in removed for i in range(len(lines))]
    i = 0
    while i < len(lines):
        if lines[i].strip() and i not in removed:
            i += 1
            continue
        j = i
        while j < len(lines) and (j in removed or not lines[j].strip()):
            j += 1
        if any(k in removed for k in range(i, j)):  # a gap we made: tidy its blank lines
            blanks = [k for k in range(i, j) if k not in removed]
            at_edge = i == 0 or j == len(lines)
            for n, k in enumerate(blanks):
                keep[k] = not at_edge and n == 0
        i = j
    return "\n".join(line for line, kept in zip(lines, keep) if kept)


def strip_running_lines(
    pages: Sequence[str], *, min_pages: int = 3, min_share: float = 0.5
) -> tuple[list[str], int]:
    """Remove running headers/footers and bare page numbers from a document's page Markdown.

    `pages` is every page of one document in order, "" for a page without text (positions
    matter: page numbers are checked against them). Returns the cleaned pages and the number of
    lines removed. Only the first and last two non-empty prose lines of a page are looked at;
    lines in fences, display math and formula placeholders never are.

    - Running line: its key (Markdown heading marks dropped, every run of digits -> `#`,
      whitespace collapsed) sits at a page edge on at least `min_pages` pages and at least
      `floor(min_share * len(pages))` pages, and contains a letter. 0.5 because books and
      journals alternate two running heads (author on even pages, title on odd ones), each on
      about half the pages; rounding down keeps the head of the even pages of an odd-length
      document. A lower share starts to catch content that recurs at page tops (section titles,
      "Proof."). `min_pages` = 3 because a line repeated on two pages is as likely content as a
      header, so documents shorter than `min_pages` pages keep all their lines. Lines without
      letters ("(12)") are left to the page-number rule, which checks a sequence.
    - Page number: a line that is only `12`, `- 12 -`, `Page 12`, `12 / 40`, `xiv`, … whose
      value minus the page's position equals that of a page-number line on another page of the
      same document (arabic and roman counted apart). A lone number at a page edge is often
      content; two that advance with the pages are numbering. This rule applies to documents
      of any length (two pages are enough to see a sequence).
    """
    if min_pages < 1:
        raise ValueError(f"min_pages must be at least 1, got {min_pages}")
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must be in (0, 1], got {min_share}")
    split = [page.split("\n") for page in pages]
    edges = [_edge_indices(lines, _content_lines(lines)) for lines in split]
    removed: list[set[int]] = [set() for _ in pages]

    # A key must sit on `min_pages` pages, so shorter documents never lose a running line.
    pages_with: dict[str, set[int]] = {}
    for p, (lines, idx) in enumerate(zip(split, edges)):
        for i in idx:
            key = _running_key(lines[i])
            if any(c.isalpha() for c in key):
                pages_with.setdefault(key, set()).add(p)
    needed = max(min_pages, math.floor(min_share * len(pages) + 1e-9))
    running = {key for key, where in pages_with.items() if len(where) >= needed}
    for p, (lines, idx) in enumerate(zip(split, edges)):
        removed[p].update(i for i in idx if _running_key(lines[i]) in running)

    numbers: list[tuple[int, int, tuple[str, int]]] = []  # (page, line, (kind, value - page))
    pages_at: dict[tuple[str, int], set[int]] = {}
    for p, (lines, idx) in enumerate(zip(split, edges)):
        for i in idx:
            found = None if i in removed[p] else _page_number(lines[i])
            if found is not None:
                sequence = (found[0], found[1] - p)
                numbers.append((p, i, sequence))
                pages_at.setdefault(sequence, set()).add(p)
    for p, i, sequence in numbers:
        if len(pages_at[sequence]) >= 2:
            removed[p].add(i)

    cleaned = [
        _drop_lines(lines, gone) if gone else page
        for page, lines, gone in zip(pages, split, removed)
    ]
    return cleaned, sum(len(gone) for gone in removed)
