"""`scicurate eval pdf`: our PDF parser scored against two published ground-truth formats.

    scicurate eval pdf --bench DIR [--format auto|olmocr|pdfparse] [--predictions RUN_DIR] [--limit N]

Formats (`--format auto` looks at DIR):
- **olmOCR-Bench** (`DIR/*.jsonl`, e.g. `dataset.jsonl`, with the PDFs under `DIR/pdfs/`): unit
  tests per page (`present`, `absent`, `order`, `table`, `math`, `baseline`), pass/fail each,
  scored as allenai/olmocr `olmocr/bench/benchmark.py` does: the headline is the mean of the
  per-JSONL-file pass rates, one synthetic `baseline` test per PDF forming its own group.
- **pdf-parse-bench** (`DIR/X.pdf` beside `DIR/X.gt.json`, an ordered list of
  `{"type": "text"|"inline-formula"|"display-formula", "data": ...}`): text normalised edit
  distance, formula recall and formula normalised edit distance, per file and overall.

Predictions come from our parser (`parse_document`, default `PdfConfig()`, flash tier, each PDF
parsed once) or, with `--predictions RUN_DIR`, from the `pages/` (olmOCR, per page) or
`documents/` (pdf-parse-bench) Parquet of a `scicurate run pdf --output RUN_DIR` run, matched to
the benchmark's PDFs by file basename. A PDF without a prediction (parse failure, dead letter,
absent from the run) fails every test on it and is listed in the report's details.

Everything here is pure Python: the string distances are bit-parallel (Myers/Hyyrö Levenshtein,
Allison-Dix/Hyyrö LCS on Python integers), so a 4 KB page against a 4 KB ground truth costs
milliseconds, and no scorer needs rapidfuzz, fuzzysearch, KaTeX or an LLM. Where the published
scorer uses a browser (olmOCR math) or an LLM (pdf-parse-bench), the approximation is stated in
the report's notes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

from scicurate.config import ConfigError, PdfConfig
from scicurate.evals import EvalCommand, EvalReport, register

FORMATS = ("auto", "olmocr", "pdfparse")

# A ground-truth formula counts as found when its best one-to-one candidate span is within this
# normalised edit distance (Levenshtein / longer length, on normalised LaTeX). 0.1 is strict:
# a 30-character formula may differ by 3 characters (a brace style, a subscript), a 5-character
# one by none. pdf-parse-bench itself grades with an LLM judge (0-10) and has no threshold.
FORMULA_MATCH_MAX_NED = 0.1

# olmOCR math tests: the reference's normalised token sequence must occur inside one of the
# page's math spans with at most len(tokens) // MATH_TOKENS_PER_EDIT token edits, so formulas
# under 20 tokens must match exactly after normalisation, as KaTeX's glyph comparison would.
MATH_TOKENS_PER_EDIT = 20

# olmOCR's BaselineTest defaults.
BASELINE_MAX_REPEATS = 30
BASELINE_NGRAM_SIZES = 5

OLMOCR_TEST_TYPES = ("present", "absent", "order", "table", "math", "baseline")
UNSUPPORTED_OLMOCR_TYPES = ("format", "footnote")  # newer olmOCR types, not scored here
BASELINE_GROUP = "baseline"


# =============================================================================================
# String distances: bit-parallel, exact.


def _char_masks(pattern: Sequence) -> dict:
    masks: dict = {}
    bit = 1
    for ch in pattern:
        masks[ch] = masks.get(ch, 0) | bit
        bit <<= 1
    return masks


def _myers_scores(pattern: Sequence, text: Sequence, *, search: bool) -> Iterator[int]:
    """Myers' bit-vector edit-distance recurrence (Hyyrö's formulation), one score per text item.

    `search=False`: the score after item j is levenshtein(pattern, text[:j+1]) (a top row of
    0, 1, 2, …). `search=True`: min over start i of levenshtein(pattern, text[i:j+1]) (a top row
    of zeros: a match may start anywhere). The two differ only in the carry shifted into the
    horizontal-positive vector. `pattern` must be non-empty.
    """
    m = len(pattern)
    peq = _char_masks(pattern)
    full = (1 << m) - 1
    high = 1 << (m - 1)
    carry = 0 if search else 1
    pv, mv, score = full, 0, m
    for ch in text:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ((ph << 1) | carry) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
        yield score


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Unit-cost edit distance (insert, delete, substitute) between two sequences.

    O(len(longer)) big-integer operations on len(shorter)-bit integers (`_myers_scores`).
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    score = len(b)
    for score in _myers_scores(b, a, search=False):
        pass
    return score


def normalized_levenshtein(a: Sequence, b: Sequence) -> float:
    """levenshtein(a, b) / max(len(a), len(b)) in [0, 1]; 0.0 for two empty sequences.

    The normalisation pdf-parse-bench uses (its "Levenshtein similarity" is 1 minus this).
    """
    longest = max(len(a), len(b))
    return levenshtein(a, b) / longest if longest else 0.0


def _search_distances(pattern: Sequence, text: Sequence) -> list[int]:
    """For each end position j of `text`: min over start i of levenshtein(pattern, text[i:j+1])."""
    return list(_myers_scores(pattern, text, search=True))


def substring_distance(pattern: Sequence, text: Sequence) -> int:
    """min over substrings s of `text` of levenshtein(pattern, s)."""
    if not pattern:
        return 0
    if not text:
        return len(pattern)
    return min(len(pattern), min(_search_distances(pattern, text)))


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence (Allison-Dix / Hyyrö bit-vector)."""
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return 0
    peq = _char_masks(b)
    full = (1 << m) - 1
    v = full
    for ch in a:
        u = v & peq.get(ch, 0)
        v = ((v + u) | (v - u)) & full
    return m - v.bit_count()


def _prefix_lcs(needle: str, text: str) -> list[int]:
    """[lcs_length(needle, text[:j]) for j in 1..len(text)]."""
    m = len(needle)
    peq = _char_masks(needle)
    full = (1 << m) - 1
    v = full
    out = []
    for ch in text:
        u = v & peq.get(ch, 0)
        v = ((v + u) | (v - u)) & full
        out.append(m - v.bit_count())
    return out


def ratio(a: str, b: str) -> Fraction:
    """rapidfuzz `fuzz.ratio` / 100, exactly: 1 - indel(a, b) / (len(a) + len(b)) = 2 LCS / total."""
    total = len(a) + len(b)
    if total == 0:
        return Fraction(1)
    return Fraction(2 * lcs_length(a, b), total)


def partial_ratio_at_least(s1: str, s2: str, threshold: Fraction) -> bool:
    """Whether rapidfuzz `fuzz.partial_ratio(s1, s2) / 100 >= threshold`, compared exactly.

    partial_ratio is the best `ratio` between the shorter string and any window of the longer
    one: every window of the shorter string's length, plus the shorter prefixes and suffixes
    of the longer string (the alignments that hang over its ends). rapidfuzz searches all of
    them for needles up to 64 characters and uses a heuristic above that; this searches all of
    them at every length, so it can only be more lenient than rapidfuzz for long needles.
    """
    if not s1 or not s2:
        return (not s1 and not s2) or threshold <= 0
    if threshold <= 0:
        return True
    if len(s1) > len(s2):
        s1, s2 = s2, s1
    if _windows_reach(s1, s2, threshold):
        return True
    return len(s1) == len(s2) and _windows_reach(s2, s1, threshold)


def _windows_reach(needle: str, hay: str, threshold: Fraction) -> bool:
    m, n = len(needle), len(hay)
    # Window w passes when 2 * LCS(needle, w) >= threshold * (m + |w|).
    need_full = math.ceil(threshold * m)  # the LCS a full-length window needs
    if need_full <= m and n >= m:
        if need_full == m:
            if needle in hay:
                return True
        elif _full_window_reaches(needle, hay, int(need_full)):
            return True
    edge = min(m - 1, n)
    if edge > 0:
        for width, lcs in enumerate(_prefix_lcs(needle, hay[:edge]), start=1):
            if 2 * lcs >= threshold * (m + width):
                return True
        for width, lcs in enumerate(_prefix_lcs(needle[::-1], hay[::-1][:edge]), start=1):
            if 2 * lcs >= threshold * (m + width):
                return True
    return False


def _full_window_reaches(needle: str, hay: str, need: int) -> bool:
    """Some window of len(needle) characters has LCS >= need with the needle.

    A sliding character-count overlap (an upper bound on the LCS) filters windows; only the
    survivors pay for an LCS.
    """
    m = len(needle)
    wanted = Counter(needle)
    have: dict[str, int] = {}
    overlap = 0
    for j, ch in enumerate(hay):
        count = have.get(ch, 0)
        if count < wanted.get(ch, 0):
            overlap += 1
        have[ch] = count + 1
        if j >= m:
            gone = hay[j - m]
            count = have[gone]
            if count <= wanted.get(gone, 0):
                overlap -= 1
            have[gone] = count - 1
        if j >= m - 1 and overlap >= need and lcs_length(needle, hay[j - m + 1:j + 1]) >= need:
            return True
    return False


def near_match_starts(pattern: str, text: str, max_diffs: int) -> list[int]:
    """Start offsets of the matches of `pattern` in `text` within Levenshtein `max_diffs`.

    fuzzysearch's `find_near_matches(pattern, text, max_l_dist=max_diffs)`, as olmOCR's order
    test uses it: exact occurrences when max_diffs is 0; otherwise every start offset from which
    some substring is within max_diffs, with each run of adjacent such offsets (one fuzzy
    occurrence seen from slightly different starts) collapsed to its best offset, as
    fuzzysearch consolidates overlapping matches.
    """
    if not pattern or len(text) == 0:
        return []
    if max_diffs == 0:
        starts, at = [], text.find(pattern)
        while at >= 0:
            starts.append(at)
            at = text.find(pattern, at + 1)
        return starts
    n = len(text)
    # Searching the reversed pattern in the reversed text gives, per start offset, the best
    # distance over all ends.
    by_start = _search_distances(pattern[::-1], text[::-1])[::-1]
    starts: list[int] = []
    run: list[int] = []
    for i in range(n + 1):
        if i < n and by_start[i] <= max_diffs:
            run.append(i)
        elif run:
            starts.append(min(run, key=lambda s: (by_start[s], s)))
            run = []
    return starts


# =============================================================================================
# olmOCR text normalisation (olmocr/bench/tests.py `normalize_text`).

_OLMOCR_REPLACEMENTS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\uff3f": "_",
    "\u2013": "-", "\u2014": "-", "\u2011": "-", "\u2012": "-", "\u2212": "-",
    "\u00b5": "\u03bc",
}
_BR_RE = re.compile(r"<br/?>")
_BOLD_STAR_RE = re.compile(r"\*\*(.*?)\*\*")
_BOLD_UNDER_RE = re.compile(r"__(.*?)__")
_B_I_TAG_RE = re.compile(r"</?[bi]>")
_PAIRED_BOLD_RE = re.compile(r"(\*\*|__)(.*?)\1")
_PAIRED_ITALIC_RE = re.compile(r"(\*|_)(.*?)\1")
_SPACE_RE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """olmOCR-Bench's text normalisation, step for step.

    `<br>` -> space; Markdown bold/italic markers (`**x**`, `__x__`, `*x*`, `_x_`) and `<b>`/`<i>`
    tags dropped, keeping the text; whitespace runs -> one space; Unicode NFC; curly quotes ->
    ASCII quotes, en/em/figure/non-breaking dashes and U+2212 minus -> '-', micro sign -> mu.
    Like olmOCR, this strips paired underscores anywhere (`a_b c_d` -> `ab cd`).
    """
    text = _BR_RE.sub(" ", text)
    text = _BOLD_STAR_RE.sub(r"\1", text)
    text = _BOLD_UNDER_RE.sub(r"\1", text)
    text = _B_I_TAG_RE.sub("", text)
    text = _PAIRED_BOLD_RE.sub(r"\2", text)
    text = _PAIRED_ITALIC_RE.sub(r"\2", text)
    text = _SPACE_RE.sub(" ", text)
    text = unicodedata.normalize("NFC", text)
    for fancy, plain in _OLMOCR_REPLACEMENTS.items():
        text = text.replace(fancy, plain)
    return text


# =============================================================================================
# Math: spans in Markdown, LaTeX normalisation.

# olmOCR's MathTest order: \( \), \[ \], then $$ $$ and $ $; each kind is removed before the next.
_MATH_PATTERNS = (
    re.compile(r"\\\((.+?)\\\)", re.DOTALL),
    re.compile(r"\\\[(.+?)\\\]", re.DOTALL),
    re.compile(r"\$\$(.+?)\$\$", re.DOTALL),
    re.compile(r"\$(.+?)\$", re.DOTALL),
)


def math_spans(text: str, *, dollars: bool = True) -> list[str]:
    """The math in Markdown, as olmOCR reads it: \\(…\\), \\[…\\], $$…$$, $…$ (stripped bodies).

    Returns the spans in that order of delimiter kind (not document order). `dollars=False`
    ignores the dollar forms (olmOCR's `ignore_dollar_delimited`).
    """
    patterns = _MATH_PATTERNS if dollars else _MATH_PATTERNS[:2]
    spans: list[str] = []
    for pattern in patterns:
        spans.extend(m.strip() for m in pattern.findall(text))
        text = pattern.sub("", text)
    return spans


def strip_math(text: str) -> str:
    """`text` with every math span (all four delimiter kinds) removed."""
    for pattern in _MATH_PATTERNS:
        text = pattern.sub(" ", text)
    return text


_GREEK = (
    "alpha:α beta:β gamma:γ delta:δ epsilon:ϵ varepsilon:ε zeta:ζ eta:η theta:θ vartheta:ϑ "
    "iota:ι kappa:κ varkappa:ϰ lambda:λ mu:μ nu:ν xi:ξ omicron:ο pi:π varpi:ϖ rho:ρ varrho:ϱ "
    "sigma:σ varsigma:ς tau:τ upsilon:υ phi:ϕ varphi:φ chi:χ psi:ψ omega:ω Gamma:Γ Delta:Δ "
    "Theta:Θ Lambda:Λ Xi:Ξ Pi:Π Sigma:Σ Upsilon:Υ Phi:Φ Psi:Ψ Omega:Ω digamma:ϝ"
)
_SYMBOLS_TEXT = (
    "times:× cdot:⋅ pm:± mp:∓ div:÷ ast:∗ star:⋆ circ:∘ bullet:∙ cap:∩ cup:∪ wedge:∧ land:∧ "
    "vee:∨ lor:∨ oplus:⊕ ominus:⊖ otimes:⊗ odot:⊙ setminus:∖ leq:≤ le:≤ geq:≥ ge:≥ neq:≠ ne:≠ "
    "leqslant:⩽ geqslant:⩾ approx:≈ equiv:≡ sim:∼ simeq:≃ cong:≅ propto:∝ ll:≪ gg:≫ "
    "subset:⊂ supset:⊃ subseteq:⊆ supseteq:⊇ in:∈ notin:∉ ni:∋ mid:∣ parallel:∥ perp:⊥ "
    "to:→ rightarrow:→ leftarrow:← gets:← Rightarrow:⇒ Leftarrow:⇐ leftrightarrow:↔ "
    "Leftrightarrow:⇔ mapsto:↦ implies:⟹ iff:⟺ uparrow:↑ downarrow:↓ longrightarrow:⟶ "
    "longleftarrow:⟵ Longrightarrow:⟹ longmapsto:⟼ rightleftharpoons:⇌ hookrightarrow:↪ "
    "sum:∑ prod:∏ coprod:∐ int:∫ iint:∬ iiint:∭ oint:∮ bigcup:⋃ bigcap:⋂ bigoplus:⨁ "
    "bigotimes:⨂ infty:∞ partial:∂ nabla:∇ forall:∀ exists:∃ neg:¬ lnot:¬ emptyset:∅ "
    "varnothing:∅ hbar:ℏ ell:ℓ Re:ℜ Im:ℑ aleph:ℵ wp:℘ angle:∠ triangle:△ prime:′ cdots:⋯ "
    "vdots:⋮ ddots:⋱ langle:⟨ rangle:⟩ lfloor:⌊ rfloor:⌋ lceil:⌈ rceil:⌉ vert:| Vert:‖ "
    "lvert:| rvert:| lVert:‖ rVert:‖ backslash:\\ dagger:† ddagger:‡ top:⊤ bot:⊥ vdash:⊢ "
    "models:⊨ therefore:∴ because:∵ sqcup:⊔ sqcap:⊓ triangleq:≜ colon:: square:□ "
    "checkmark:✓ degree:° lbrace:\\{ rbrace:\\} surd:√ smallsetminus:∖ Box:□"
)
_SYMBOLS = {f"\\{name}": glyph for name, glyph in
            (item.split(":", 1) for item in f"{_GREEK} {_SYMBOLS_TEXT}".split())}
_SYMBOLS.update({"\\|": "‖", "\\ldots": "...", "\\dots": "...", "\\dotsc": "...", "\\dotso": "...",
                 "\\dotsb": "⋯", "\\{": "\\{", "\\}": "\\}", "\\%": "%", "\\$": "$", "\\#": "#",
                 "\\&": "&", "\\_": "_"})

# Functions KaTeX sets upright: the rendered glyphs are just the letters.
_NAMED_FUNCTIONS = frozenset(
    "sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh coth log ln lg exp lim liminf "
    "limsup max min sup inf det dim ker deg arg gcd lcm hom Pr mod bmod".split())

# Render nothing (spacing, sizing, styles, alignment), or only change size/spacing.
_DROP = frozenset(
    "\\left \\right \\middle \\big \\Big \\bigg \\Bigg \\bigl \\bigr \\Bigl \\Bigr \\biggl \\biggr "
    "\\Biggl \\Biggr \\bigm \\Bigm \\, \\; \\: \\! \\> \\quad \\qquad ~ \\enspace \\thinspace "
    "\\medspace \\thickspace \\negthinspace \\negmedspace \\negthickspace \\displaystyle "
    "\\textstyle \\scriptstyle \\scriptscriptstyle \\limits \\nolimits \\nonumber \\notag & "
    "\\\\ \\cr \\hline \\rm \\it \\bf \\sf \\tt \\cal \\mathstrut \\strut \\allowbreak \\relax "
    "\\tiny \\small \\large \\Large \\LARGE \\normalsize \\footnotesize \\scriptsize".split()
) | {"\\ ", "\\\t", "\\\n"}
# Drop the command and its one argument.
_DROP_WITH_ARG = frozenset(
    "\\label \\tag \\hspace \\vspace \\phantom \\hphantom \\vphantom \\color \\kern \\mkern "
    "\\hskip".split())
# Font and class wrappers: KaTeX changes the font, not the glyphs, so keep only the argument.
_FONTS = frozenset(
    "\\mathrm \\mathit \\mathbf \\mathsf \\mathtt \\mathbb \\mathcal \\mathfrak \\mathscr "
    "\\mathnormal \\boldsymbol \\bm \\pmb \\text \\textrm \\textit \\textbf \\textsf \\texttt "
    "\\textnormal \\textup \\mathup \\emph \\mbox \\hbox \\operatorname \\operatorname* \\mathop "
    "\\mathbin \\mathrel \\mathord \\mathopen \\mathclose \\mathpunct \\boxed".split())
# Layout commands whose arguments stay grouped: (canonical name, number of arguments).
_STRUCTURES = {
    "\\frac": ("\\frac", 2), "\\dfrac": ("\\frac", 2), "\\tfrac": ("\\frac", 2),
    "\\cfrac": ("\\frac", 2), "\\binom": ("\\binom", 2), "\\dbinom": ("\\binom", 2),
    "\\tbinom": ("\\binom", 2), "\\overset": ("\\overset", 2), "\\underset": ("\\underset", 2),
    "\\stackrel": ("\\overset", 2), "\\sqrt": ("\\sqrt", 1), "\\overline": ("\\overline", 1),
    "\\underline": ("\\underline", 1), "\\hat": ("\\hat", 1), "\\widehat": ("\\hat", 1),
    "\\tilde": ("\\tilde", 1), "\\widetilde": ("\\tilde", 1), "\\bar": ("\\bar", 1),
    "\\vec": ("\\vec", 1), "\\dot": ("\\dot", 1), "\\ddot": ("\\ddot", 1), "\\check": ("\\check", 1),
    "\\breve": ("\\breve", 1), "\\acute": ("\\acute", 1), "\\grave": ("\\grave", 1),
    "\\mathring": ("\\mathring", 1), "\\overrightarrow": ("\\overrightarrow", 1),
    "\\overleftarrow": ("\\overleftarrow", 1), "\\overbrace": ("\\overbrace", 1),
    "\\underbrace": ("\\underbrace", 1), "\\xrightarrow": ("\\xrightarrow", 1),
    "\\xleftarrow": ("\\xleftarrow", 1), "\\textcolor": ("", 2), "\\mathcolor": ("", 2),
}
_TABLE_ENVS = frozenset({"array", "tabular", "alignat", "alignedat", "subarray"})
_TOKEN_RE = re.compile(r"\\[a-zA-Z]+\*?|\\.|\s+|.", re.DOTALL)
_CHAR_FIXES = {"\u2212": "-", "\u2013": "-", "\u2217": "*", "\u00b7": "⋅", "\u2032": "′"}


def _latex_tree(latex: str) -> list:
    """Tokens grouped by braces: a list whose items are tokens (str) or groups (list)."""
    root: list = []
    stack = [root]
    previous = ""
    for token in _TOKEN_RE.findall(latex):
        if token.isspace():
            continue
        if previous in ("\\left", "\\right", "\\middle") and token == ".":
            previous = token
            continue
        previous = token
        if token in _DROP:
            continue
        if token == "{":
            group: list = []
            stack[-1].append(group)
            stack.append(group)
        elif token == "}":
            if len(stack) > 1:
                stack.pop()
        else:
            stack[-1].append(token)
    return root


def _take_arg(seq: list, i: int) -> tuple[list, int]:
    """The argument at seq[i] (a group, or one token) as a list, and the index after it."""
    if i >= len(seq):
        return [], i
    item = seq[i]
    return (item if isinstance(item, list) else [item]), i + 1


def _take_optional(seq: list, i: int) -> tuple[list | None, int]:
    """An optional `[...]` argument at seq[i] (tokens up to the matching `]`)."""
    if i >= len(seq) or seq[i] != "[":
        return None, i
    depth, j = 0, i
    while j < len(seq):
        if seq[j] == "[":
            depth += 1
        elif seq[j] == "]":
            depth -= 1
            if depth == 0:
                return seq[i + 1:j], j + 1
        j += 1
    return None, i


def _char_tokens(token: str) -> list[str]:
    if token == "°":
        return ["^", "{", "∘", "}"]
    if token == "'":
        return ["^", "{", "′", "}"]
    token = _CHAR_FIXES.get(token, token)
    return list(unicodedata.normalize("NFKC", token))


def _emit(seq: list) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(seq):
        i = _emit_atom(seq, i, out)
        # A base's scripts in canonical order (subscript first), whatever order they came in.
        scripts: dict[str, list] = {}
        while i < len(seq) and seq[i] in ("_", "^") and seq[i] not in scripts:
            mark = seq[i]
            scripts[mark], i = _take_arg(seq, i + 1)
        for mark in ("_", "^"):
            if mark in scripts:
                out += [mark, "{", *_emit(scripts[mark]), "}"]
    return out


def _emit_atom(seq: list, i: int, out: list[str]) -> int:
    item = seq[i]
    i += 1
    if isinstance(item, list):
        out += _emit(item)
        return i
    if item in ("_", "^"):  # a script with no base
        arg, i = _take_arg(seq, i)
        out += [item, "{", *_emit(arg), "}"]
        return i
    if item in _DROP_WITH_ARG:
        return _take_arg(seq, i)[1]
    if item in ("\\begin", "\\end"):
        name, i = _take_arg(seq, i)
        if item == "\\begin" and "".join(t for t in name if isinstance(t, str)) in _TABLE_ENVS:
            i = _take_arg(seq, i)[1]  # the column specification
        return i
    if item in _FONTS:
        arg, i = _take_arg(seq, i)
        out += _emit(arg)
        return i
    if item in _STRUCTURES:
        name, arity = _STRUCTURES[item]
        if name:
            out.append(name)
        if item in ("\\sqrt", "\\xrightarrow", "\\xleftarrow"):
            index, i = _take_optional(seq, i)
            if index is not None:
                out += ["[", *_emit(index), "]"]
        if not name:  # \textcolor{colour}{body}: drop the colour, keep the body
            i = _take_arg(seq, i)[1]
            arg, i = _take_arg(seq, i)
            out += _emit(arg)
            return i
        for _ in range(arity):
            arg, i = _take_arg(seq, i)
            out += ["{", *_emit(arg), "}"]
        return i
    if item == "\\pmod":
        arg, i = _take_arg(seq, i)
        out += ["(", "m", "o", "d", *_emit(arg), ")"]
        return i
    if item.startswith("\\") and item[1:] in _NAMED_FUNCTIONS:
        out += list(item[1:].replace("bmod", "mod"))
        return i
    if item in _SYMBOLS:
        glyph = _SYMBOLS[item]
        out += [glyph] if glyph.startswith("\\") else [t for ch in glyph for t in _char_tokens(ch)]
        return i
    if item.startswith("\\") and len(item) > 1:
        out.append(item)
        return i
    out += _char_tokens(item)
    return i


def _strip_delimiters(latex: str) -> str:
    latex = latex.strip()
    for left, right in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
        if latex.startswith(left) and latex.endswith(right) and len(latex) >= len(left) + len(right):
            return latex[len(left):len(latex) - len(right)].strip()
    return latex


def latex_tokens(latex: str) -> list[str]:
    """A LaTeX formula as the tokens of what it renders, for comparing two spellings.

    Outer `$`/`$$`/`\\[`/`\\(` delimiters are removed. Dropped: spacing (`\\,` `\\quad` …),
    sizing (`\\left` `\\right` `\\big` …), styles (`\\displaystyle` …), `\\limits`, alignment
    (`&`, `\\\\`), environment names, `\\label`/`\\tag`/`\\color`. Font and class wrappers
    (`\\mathrm` `\\mathbf` `\\mathbb` `\\text` `\\operatorname` …) keep only their argument.
    Braces that only group are dropped; script and layout arguments (`^{…}`, `_{…}`,
    `\\frac{…}{…}`, `\\sqrt[…]{…}`, accents) keep theirs, and a base's scripts are put in one
    order (`_` before `^`). Symbol commands become their glyphs (`\\alpha` -> α, `\\leq` -> ≤,
    `\\to` -> →), upright functions their letters (`\\sin` -> s i n, `\\pmod{n}` -> ( m o d n )),
    `'` and `°` become scripts, and characters are NFKC-folded (𝑥 -> x, ℝ -> R, − -> -).
    """
    return _emit(_latex_tree(_strip_delimiters(latex)))


def join_tokens(tokens: Iterable[str]) -> str:
    """Tokens back to one string, a space only where a command would swallow a letter."""
    parts: list[str] = []
    for token in tokens:
        if parts and parts[-1][:1] == "\\" and parts[-1][-1:].isalpha() and token[:1].isalpha():
            parts.append(" ")
        parts.append(token)
    return "".join(parts)


def normalize_latex(latex: str) -> str:
    """`join_tokens(latex_tokens(latex))`: the normalised formula as a string."""
    return join_tokens(latex_tokens(latex))


def _encode(tokens: Sequence[str], vocabulary: dict[str, str]) -> str:
    """One private-use character per distinct token, so token sequences compare as strings."""
    return "".join(vocabulary.setdefault(t, chr(0xF0000 + len(vocabulary))) for t in tokens)


def formula_in_span(reference: Sequence[str], span: Sequence[str]) -> bool:
    """The reference's tokens occur contiguously in the span's, within the token tolerance."""
    if not reference:
        return False
    vocabulary: dict[str, str] = {}
    ref, hyp = _encode(reference, vocabulary), _encode(span, vocabulary)
    tolerance = len(reference) // MATH_TOKENS_PER_EDIT
    if tolerance == 0:
        return ref in hyp
    return bool(hyp) and substring_distance(ref, hyp) <= tolerance


# =============================================================================================
# Tables: Markdown pipe tables and HTML <table>, as olmocr/bench/table_parsing.py builds them.

CellId = tuple[int, int]


@dataclass(frozen=True)
class Table:
    """A table as cells addressed by (row, column) of their top-left grid position.

    A spanning cell appears once; `up`/`down`/`left`/`right` give, per cell, the cells touching
    it on that side (several when spans differ). Heading cells: HTML `<th>` or `<thead>`
    cells, and the first row and first column of a Markdown table.
    """

    cell_text: dict[CellId, str]
    heading_cells: frozenset[CellId]
    up: dict[CellId, frozenset[CellId]]
    down: dict[CellId, frozenset[CellId]]
    left: dict[CellId, frozenset[CellId]]
    right: dict[CellId, frozenset[CellId]]

    def top_heading(self, cell: CellId) -> set[CellId]:
        return self._walk(cell, self.up)

    def left_heading(self, cell: CellId) -> set[CellId]:
        return self._walk(cell, self.left)

    def _walk(self, start: CellId, relation: dict[CellId, frozenset[CellId]]) -> set[CellId]:
        """Heading cells met walking from `start` in one direction; the far edge if none."""
        headings, ends, seen = set(), set(), set()
        stack = [start]
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            seen.add(cur)
            if cur in self.heading_cells:
                headings.add(cur)
            following = relation.get(cur)
            if following:
                stack.extend(following)
            else:
                ends.add(cur)
        headings.discard(start)
        ends.discard(start)
        return headings or ends


@dataclass(frozen=True, slots=True)
class _CellSpec:
    text: str
    rowspan: int = 1
    colspan: int = 1
    heading: bool = False


def _build_table(rows: list[list[_CellSpec]]) -> Table | None:
    grid: dict[CellId, CellId] = {}
    spans: dict[CellId, tuple[int, int]] = {}
    cell_text: dict[CellId, str] = {}
    headings: set[CellId] = set()
    for r, row in enumerate(rows):
        c = 0
        for spec in row:
            while (r, c) in grid:
                c += 1
            cell = (r, c)
            cell_text[cell] = spec.text
            spans[cell] = (spec.rowspan, spec.colspan)
            if spec.heading:
                headings.add(cell)
            for dr in range(spec.rowspan):
                for dc in range(spec.colspan):
                    grid[(r + dr, c + dc)] = cell
            c += spec.colspan
    if not cell_text:
        return None
    height = max(r for r, _ in grid) + 1
    width = max(c for _, c in grid) + 1
    up: dict[CellId, set[CellId]] = defaultdict(set)
    down: dict[CellId, set[CellId]] = defaultdict(set)
    left: dict[CellId, set[CellId]] = defaultdict(set)
    right: dict[CellId, set[CellId]] = defaultdict(set)

    def first(cell: CellId, positions: Iterable[CellId]) -> CellId | None:
        for pos in positions:
            other = grid.get(pos)
            if other is not None and other != cell:
                return other
        return None

    for cell, (rowspan, colspan) in spans.items():
        r0, c0 = cell
        r1, c1 = r0 + rowspan - 1, c0 + colspan - 1
        for r in range(r0, r1 + 1):
            for target, cols in ((right, range(c1 + 1, width)), (left, range(c0 - 1, -1, -1))):
                found = first(cell, ((r, c) for c in cols))
                if found is not None:
                    target[cell].add(found)
        for c in range(c0, c1 + 1):
            for target, rws in ((down, range(r1 + 1, height)), (up, range(r0 - 1, -1, -1))):
                found = first(cell, ((r, c) for r in rws))
                if found is not None:
                    target[cell].add(found)

    def frozen(rel: dict[CellId, set[CellId]]) -> dict[CellId, frozenset[CellId]]:
        return {cell: frozenset(rel.get(cell, ())) for cell in cell_text}

    return Table(cell_text, frozenset(headings), frozen(up), frozen(down), frozen(left), frozen(right))


def parse_markdown_tables(text: str) -> list[Table]:
    """Pipe tables the way olmOCR finds them: any run of 2+ consecutive lines containing `|`.

    The first all-dash/colon line is the separator and is dropped; leading and trailing empty
    cells (outer pipes) are dropped; the first row and the first column are headings. Lines in
    ``` fences are read like any others, so a fenced pipe table counts and a fenced
    whitespace-aligned table (no pipes) does not, exactly as in olmOCR-Bench.
    """
    tables: list[Table] = []
    block: list[str] = []
    for line in text.strip().split("\n") + [""]:
        if "|" in line:
            block.append(line)
            continue
        if len(block) >= 2:
            rows = _markdown_rows(block)
            if rows:
                table = _build_table([[_CellSpec(cell, heading=(r == 0 or c == 0))
                                       for c, cell in enumerate(row)] for r, row in enumerate(rows)])
                if table is not None:
                    tables.append(table)
        block = []
    return tables


def _markdown_rows(lines: list[str]) -> list[list[str]]:
    separator = next((i for i, line in enumerate(lines)
                      if line.replace("|", "").strip()
                      and all(ch in "- :" for ch in line.replace("|", "").strip())), None)
    rows = []
    for i, line in enumerate(lines):
        if i == separator or (line.strip() and all(ch in "- :|" for ch in line)):
            continue
        cells = [cell.strip() for cell in line.split("|")]
        if cells and cells[0] == "":
            cells = cells[1:]
        if cells and cells[-1] == "":
            cells = cells[:-1]
        if cells:
            rows.append(cells)
    return rows


class _HtmlTables(HTMLParser):
    """Collects <table> cell specs with the standard library's lenient HTML parser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[_CellSpec]]] = []
        self._open: list[dict[str, Any]] = []  # tables being read, innermost last

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._open.append({"rows": [], "cell": None, "thead": 0, "raw_rowspans": []})
            return
        if not self._open:
            return
        table = self._open[-1]
        if tag == "thead":
            table["thead"] += 1
        elif tag == "tr":
            self._close_cell(table)
            table["rows"].append([])
        elif tag in ("td", "th"):
            self._close_cell(table)
            if not table["rows"]:
                table["rows"].append([])
            values = dict(attrs)
            table["cell"] = {"parts": [], "heading": tag == "th" or table["thead"] > 0,
                             "rowspan": values.get("rowspan"), "colspan": values.get("colspan")}
        elif tag == "br":
            self._add_text("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._add_text("\n")
        else:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self._open:
            return
        table = self._open[-1]
        if tag in ("td", "th", "tr"):
            self._close_cell(table)
        elif tag == "thead":
            table["thead"] = max(0, table["thead"] - 1)
        elif tag == "table":
            self._close_cell(table)
            self._open.pop()
            self.tables.append(self._specs(table))

    def handle_data(self, data: str) -> None:
        self._add_text(data)

    def close(self) -> None:
        super().close()
        while self._open:  # unclosed tables still count
            table = self._open.pop()
            self._close_cell(table)
            self.tables.append(self._specs(table))

    def _add_text(self, text: str) -> None:
        for table in self._open:  # an outer cell's text includes a nested table's, as get_text()
            if table["cell"] is not None:
                table["cell"]["parts"].append(text)

    @staticmethod
    def _close_cell(table: dict[str, Any]) -> None:
        cell = table["cell"]
        if cell is not None:
            table["rows"][-1].append(cell)
            table["cell"] = None

    @staticmethod
    def _specs(table: dict[str, Any]) -> list[list[_CellSpec]]:
        rows = table["rows"]
        specs = []
        for r, row in enumerate(rows):
            out = []
            for cell in row:
                raw_rowspan = (cell["rowspan"] or "").strip()
                rowspan = _span(raw_rowspan)
                if raw_rowspan == "0":  # HTML: to the end of the table
                    rowspan = max(1, len(rows) - r)
                out.append(_CellSpec("".join(cell["parts"]).strip(), rowspan,
                                     _span(cell["colspan"]), cell["heading"]))
            specs.append(out)
        return specs


def _span(value: str | None) -> int:
    try:
        span = int(value or 1)
    except ValueError:
        return 1
    return span if span > 0 else 1


def parse_html_tables(text: str) -> list[Table]:
    """Every `<table>` in the text (nested ones too, each on its own), with row/col spans."""
    parser = _HtmlTables()
    parser.feed(text)
    parser.close()
    return [t for t in (_build_table(rows) for rows in parser.tables if rows) if t is not None]


# =============================================================================================
# olmOCR-Bench tests.


@dataclass(frozen=True, slots=True)
class OlmocrTest:
    """One olmOCR-Bench test line, text fields already normalised as olmOCR does at load."""

    id: str
    pdf: str
    page: int                 # 1-based, as in the JSONL
    type: str
    group: str                # the JSONL file it came from ("baseline" for the synthetic ones)
    max_diffs: int = 0
    text: str = ""
    case_sensitive: bool = True
    first_n: int | None = None
    last_n: int | None = None
    before: str = ""
    after: str = ""
    cell: str = ""
    up: str = ""
    down: str = ""
    left: str = ""
    right: str = ""
    top_heading: str = ""
    left_heading: str = ""
    ignore_markdown_tables: bool = False
    math: str = ""
    ignore_dollar_delimited: bool = False
    max_length: int | None = None
    max_length_skips_image_alt_tags: bool = False
    max_repeats: int = BASELINE_MAX_REPEATS
    check_disallowed_characters: bool = True


@dataclass(frozen=True, slots=True)
class TestOutcome:
    passed: bool
    reason: str = ""      # why it failed ("" when it passed)

    __test__ = False      # not a pytest class


def olmocr_test_from_json(row: dict[str, Any], group: str) -> OlmocrTest:
    """Validate one JSONL object as olmOCR's loader would; raises ValueError on a bad test."""
    kind = row.get("type")
    if kind not in OLMOCR_TEST_TYPES:
        raise ValueError(f"unknown test type {kind!r}")
    if not row.get("pdf"):
        raise ValueError("pdf is empty")
    if not row.get("id"):
        raise ValueError("id is empty")
    page = row.get("page")
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise ValueError(f"page must be a 1-based integer; got {page!r}")
    max_diffs = row.get("max_diffs", 0)
    if not isinstance(max_diffs, int) or isinstance(max_diffs, bool) or max_diffs < 0:
        raise ValueError(f"max_diffs must be an integer >= 0; got {max_diffs!r}")
    fields: dict[str, Any] = {"id": str(row["id"]), "pdf": str(row["pdf"]), "page": page, "type": kind,
                              "group": group, "max_diffs": max_diffs}
    if kind in ("present", "absent"):
        text = normalize_text(str(row.get("text") or ""))
        if not text.strip():
            raise ValueError("text is empty")
        fields.update(text=text, case_sensitive=bool(row.get("case_sensitive", True)),
                      first_n=row.get("first_n"), last_n=row.get("last_n"))
    elif kind == "order":
        before, after = normalize_text(str(row.get("before") or "")), normalize_text(str(row.get("after") or ""))
        if not before.strip() or not after.strip():
            raise ValueError("before and after must both be non-empty")
        if max_diffs > len(before) // 2 or max_diffs > len(after) // 2:
            raise ValueError("max_diffs is more than half of before/after")
        fields.update(before=before, after=after)
    elif kind == "table":
        fields.update({k: normalize_text(str(row.get(k) or ""))
                       for k in ("cell", "up", "down", "left", "right", "top_heading", "left_heading")})
        fields["ignore_markdown_tables"] = bool(row.get("ignore_markdown_tables", False))
    elif kind == "math":
        math = str(row.get("math") or "")
        if not math.strip():
            raise ValueError("math is empty")
        fields.update(math=math, ignore_dollar_delimited=bool(row.get("ignore_dollar_delimited", False)))
    else:  # baseline
        fields.update(max_length=row.get("max_length"),
                      max_length_skips_image_alt_tags=bool(row.get("max_length_skips_image_alt_tags", False)),
                      max_repeats=int(row.get("max_repeats", BASELINE_MAX_REPEATS)),
                      check_disallowed_characters=bool(row.get("check_disallowed_characters", True)))
    return OlmocrTest(**fields)


def load_olmocr_tests(bench: Path) -> tuple[list[OlmocrTest], Counter]:
    """All tests of every `*.jsonl` in `bench`, and the count of unsupported ones skipped.

    Raises ValueError naming file and line for an invalid test or a duplicate id: like
    olmOCR's loader, a benchmark with a broken test is not scored at all.
    """
    tests: list[OlmocrTest] = []
    skipped: Counter = Counter()
    seen: set[str] = set()
    for path in sorted(bench.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if row.get("type") in UNSUPPORTED_OLMOCR_TYPES:
                        skipped[row["type"]] += 1
                        continue
                    test = olmocr_test_from_json(row, path.name)
                except (ValueError, TypeError, AttributeError) as exc:
                    raise ValueError(f"{path.name}:{number}: {exc}") from None
                if test.id in seen:
                    raise ValueError(f"{path.name}:{number}: duplicate test id {test.id!r}")
                seen.add(test.id)
                tests.append(test)
    return tests, skipped


@dataclass
class _PageContent:
    """A page's Markdown with the derived forms the tests need, each computed once."""

    raw: str
    _normalized: str | None = None
    _tables: list[Table] | None = None
    _md_tables: list[Table] | None = None

    @property
    def normalized(self) -> str:
        if self._normalized is None:
            self._normalized = normalize_text(self.raw)
        return self._normalized

    def tables(self, markdown: bool) -> list[Table]:
        if self._tables is None:
            self._md_tables = parse_markdown_tables(self.raw)
            self._tables = parse_html_tables(self.raw)
        return (self._md_tables or []) + self._tables if markdown else list(self._tables)


def run_olmocr_test(test: OlmocrTest, content: str | _PageContent) -> TestOutcome:
    """Run one test on a page's Markdown; pass/fail with olmOCR's definition of the type."""
    page = content if isinstance(content, _PageContent) else _PageContent(content)
    check = {"present": _check_presence, "absent": _check_presence, "order": _check_order,
             "table": _check_table, "math": _check_math, "baseline": _check_baseline}[test.type]
    return check(test, page)


def _check_presence(test: OlmocrTest, page: _PageContent) -> TestOutcome:
    query, text = test.text, page.normalized
    if not test.case_sensitive:
        query, text = query.lower(), text.lower()
    if test.first_n and test.last_n:
        text = text[:test.first_n] + text[-test.last_n:]
    elif test.first_n:
        text = text[:test.first_n]
    elif test.last_n:
        text = text[-test.last_n:]
    present = test.type == "present"
    if len(text) < len(query) - test.max_diffs:  # olmOCR's length guard
        return TestOutcome(not present, "" if not present else "page text shorter than the query")
    threshold = 1 - Fraction(test.max_diffs, len(query))
    found = partial_ratio_at_least(query, text, threshold)
    if found == present:
        return TestOutcome(True)
    where = " in the searched part" if test.first_n or test.last_n else ""
    if present:
        return TestOutcome(False, f"{query[:40]!r} not found{where} within {test.max_diffs} diffs")
    return TestOutcome(False, f"{query[:40]!r} found{where} within {test.max_diffs} diffs")


def _check_order(test: OlmocrTest, page: _PageContent) -> TestOutcome:
    text = page.normalized
    before = near_match_starts(test.before, text, test.max_diffs)
    if not before:
        return TestOutcome(False, f"'before' text {test.before[:40]!r} not found")
    after = near_match_starts(test.after, text, test.max_diffs)
    if not after:
        return TestOutcome(False, f"'after' text {test.after[:40]!r} not found")
    if min(before) < max(after):
        return TestOutcome(True)
    return TestOutcome(False, f"{test.before[:40]!r} does not appear before {test.after[:40]!r}")


def _similar(expected: str, found: str, max_diffs: int) -> bool:
    """olmOCR's table cell match: ratio >= max(0.5, 1 - max_diffs / len(expected))."""
    threshold = max(Fraction(1, 2), 1 - Fraction(max_diffs, len(expected) or 1))
    return ratio(expected, normalize_text(found)) >= threshold


def _check_table(test: OlmocrTest, page: _PageContent) -> TestOutcome:
    tables = page.tables(markdown=not test.ignore_markdown_tables)
    if not tables:
        return TestOutcome(False, "no Markdown or HTML table on the page")
    relations = [(name, expected) for name, expected in (
        ("up", test.up), ("down", test.down), ("left", test.left), ("right", test.right),
        ("left_heading", test.left_heading), ("top_heading", test.top_heading)) if expected]
    matched_cell = False
    unmet: list[str] = []
    for table in tables:
        for cell, text in table.cell_text.items():
            if not _similar(test.cell, text, test.max_diffs):
                continue
            matched_cell = True
            missing = []
            for name, expected in relations:
                if name == "top_heading":
                    neighbours = table.top_heading(cell)
                elif name == "left_heading":
                    neighbours = table.left_heading(cell)
                else:
                    neighbours = getattr(table, name)[cell]
                if not any(_similar(expected, table.cell_text[n], test.max_diffs) for n in neighbours):
                    missing.append(name)
            if not missing:
                return TestOutcome(True)
            unmet.extend(missing)
    if not matched_cell:
        return TestOutcome(False, f"no table cell matches {test.cell[:40]!r}")
    return TestOutcome(False, f"cell {test.cell[:40]!r} found but not its {', '.join(sorted(set(unmet)))}")


def _check_math(test: OlmocrTest, page: _PageContent) -> TestOutcome:
    spans = math_spans(page.raw, dollars=not test.ignore_dollar_delimited)
    if any(span == test.math for span in spans):
        return TestOutcome(True)
    reference = latex_tokens(test.math)
    if not reference:
        return TestOutcome(False, "the formula normalises to nothing")
    if any(formula_in_span(reference, latex_tokens(span)) for span in spans):
        return TestOutcome(True)
    if not spans:
        return TestOutcome(False, "no $…$, $$…$$, \\(…\\) or \\[…\\] math on the page")
    return TestOutcome(False, f"{test.math[:40]!r} not in any of the page's {len(spans)} math spans")


_IMAGE_TAG_RE = re.compile(r"!\[.*?\]\(.*?\)")
_DISALLOWED_RE = re.compile(
    "[\u4e00-\u9fff\u3040-\u309f\u30a0-\u30ff\U0001f600-\U0001f64f\U0001f300-\U0001f5ff"
    "\U0001f680-\U0001f6ff\U0001f1e0-\U0001f1ff]")


def trailing_repeats(text: str, max_ngram: int = BASELINE_NGRAM_SIZES) -> list[int]:
    """olmOCR's RepeatDetector: for n = 1..max_ngram, how many times the page's last n
    characters (whitespace collapsed) repeat back to back at its end, the last one included."""
    text = _SPACE_RE.sub(" ", text)
    counts = []
    for size in range(1, max_ngram + 1):
        if len(text) < size:
            counts.append(0)
            continue
        target, count, pos = text[-size:], 0, len(text) - size
        while pos >= 0 and text[pos:pos + size] == target:
            count += 1
            pos -= size
        counts.append(count)
    return counts


def _check_baseline(test: OlmocrTest, page: _PageContent) -> TestOutcome:
    content = page.raw
    if test.max_length is not None:
        counted = _IMAGE_TAG_RE.sub("", content) if test.max_length_skips_image_alt_tags else content
        chars = sum(1 for c in counted if c.isalnum())
        if chars > test.max_length:
            return TestOutcome(False, f"{chars} characters on a page expected blank")
        return TestOutcome(True)
    if not any(c.isalnum() for c in content):
        return TestOutcome(False, "no alphanumeric characters")
    for size, count in enumerate(trailing_repeats(content), start=1):
        if count > test.max_repeats:
            return TestOutcome(False, f"ends with {count} repeats of a {size}-gram")
    if test.check_disallowed_characters:
        bad = _DISALLOWED_RE.findall(content)
        if bad:
            return TestOutcome(False, f"disallowed characters {''.join(sorted(set(bad)))[:20]!r}")
    return TestOutcome(True)


# =============================================================================================
# Predictions: our parser, or an existing run's Parquet.


@dataclass(frozen=True, slots=True)
class PdfRef:
    name: str     # as the benchmark names it (olmOCR: relative to DIR/pdfs; pdf-parse-bench: X.pdf)
    path: Path    # where the PDF is


@dataclass(frozen=True, slots=True)
class Predicted:
    """What a prediction source has for one PDF: its Markdown, or why there is none."""

    error: str = ""                         # document-level failure ("" when it has text)
    text: str = ""                          # the document's Markdown (pdf-parse-bench)
    pages: dict[int, str] = field(default_factory=dict)        # 0-based page -> Markdown
    page_errors: dict[int, str] = field(default_factory=dict)  # 0-based page -> why no text


class PredictionSource(Protocol):
    def predict(self, pdf: PdfRef, level: str) -> Predicted:
        """`level` is "pages" (olmOCR) or "document" (pdf-parse-bench)."""


class ParserPredictions:
    """Runs `parse_document` (default `PdfConfig()`: flash tier, no models) on each PDF asked for.

    Each PDF is parsed once: the last result is kept, and the evaluators ask PDF by PDF.
    """

    def __init__(self, config: PdfConfig | None = None) -> None:
        self.config = config or PdfConfig()
        self._last: tuple[Path, Predicted] | None = None

    def predict(self, pdf: PdfRef, level: str) -> Predicted:
        if self._last is not None and self._last[0] == pdf.path:
            return self._last[1]
        from scicurate.parse_one import ParseFailed, parse_document
        from scicurate.records import STATUS_OK

        if not pdf.path.is_file():
            result = Predicted(error=f"missing: no file {pdf.path}")
        else:
            try:
                parsed = parse_document(str(pdf.path), self.config, progress=False)
            except ParseFailed as exc:
                result = Predicted(error=f"parse_failed: {exc.reason}: {exc.message}")
            else:
                pages = {p.page_index: p.text for p in parsed.pages if p.status == STATUS_OK}
                errors = {p.page_index: f"page_failed: {p.error_reason}" for p in parsed.pages
                          if p.status != STATUS_OK}
                result = Predicted(text=parsed.document.text, pages=pages, page_errors=errors)
        self._last = (pdf.path, result)
        return result


class RunPredictions:
    """Reads a `scicurate run pdf --output RUN_DIR` run and matches its rows by file basename.

    pages/ (source, page_index, text, status) for per-page formats, documents/ (source, text)
    for per-document ones. A PDF absent from the run reports its dead-letter reason when the
    run's dead_letter/ names it. When several sources share a basename, the one whose path
    ends with the benchmark's relative name wins; if that is still ambiguous the PDF fails.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        if not run_dir.is_dir():
            raise ConfigError(f"--predictions {run_dir}: not a directory")
        self._pages: dict[str, dict[str, list[dict[str, Any]]]] | None = None
        self._documents: dict[str, dict[str, list[dict[str, Any]]]] | None = None
        self._dead: dict[str, str] | None = None

    def _rows(self, dataset: str, columns: list[str], required: bool) -> list[dict[str, Any]]:
        import pyarrow.dataset as ds

        path = self.run_dir / dataset
        if not path.is_dir() or not any(path.glob("*.parquet")):
            if required:
                raise ConfigError(f"--predictions {self.run_dir}: no {dataset}/*.parquet; "
                                  "expected the --output directory of `scicurate run pdf`")
            return []
        table = ds.dataset(str(path), format="parquet")
        missing = [c for c in columns if c not in table.schema.names]
        if missing:
            raise ConfigError(f"--predictions {self.run_dir}: {dataset}/ lacks columns {missing}")
        return table.to_table(columns=columns).to_pylist()

    @staticmethod
    def _index(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
        index: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for row in rows:
            index[_basename(row["source"])][row["source"]].append(row)
        return index

    def _dead_letters(self) -> dict[str, str]:
        if self._dead is None:
            rows = self._rows("dead_letter", ["source", "level", "reason"], required=False)
            self._dead = {_basename(r["source"]): r["reason"] for r in rows if r["level"] == "document"}
        return self._dead

    def predict(self, pdf: PdfRef, level: str) -> Predicted:
        if level == "pages":
            if self._pages is None:
                self._pages = self._index(self._rows("pages", ["source", "page_index", "text", "status"], True))
            index = self._pages
        else:
            if self._documents is None:
                self._documents = self._index(self._rows("documents", ["source", "text"], True))
            index = self._documents
        sources = index.get(_basename(pdf.name), {})
        if not sources:
            dead = self._dead_letters().get(_basename(pdf.name))
            return Predicted(error=f"dead_letter: {dead}" if dead else "missing: not in the predictions run")
        if len(sources) > 1:
            suffix = "/" + pdf.name.replace(os.sep, "/")
            narrowed = [s for s in sources if s.replace("\\", "/").endswith(suffix)]
            if len(narrowed) != 1:
                return Predicted(error=f"ambiguous: {len(sources)} sources named {_basename(pdf.name)}")
            sources = {narrowed[0]: sources[narrowed[0]]}
        rows = next(iter(sources.values()))
        if level == "pages":
            pages = {r["page_index"]: r["text"] for r in rows if r["status"] == "ok"}
            errors = {r["page_index"]: f"page_failed: {r['status']}" for r in rows if r["status"] != "ok"}
            return Predicted(pages=pages, page_errors=errors)
        return Predicted(text=rows[0]["text"])


def _source_name(source: PredictionSource) -> str:
    if isinstance(source, RunPredictions):
        return str(source.run_dir)
    if isinstance(source, ParserPredictions):
        return f"parse_document (tier {source.config.tier})"
    return type(source).__name__


def _basename(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


# =============================================================================================
# olmOCR-Bench scoring.


@dataclass(frozen=True, slots=True)
class OlmocrResult:
    test: OlmocrTest
    outcome: TestOutcome


def score_olmocr(results: Sequence[OlmocrResult]) -> dict[str, Any]:
    """Aggregate as olmOCR's benchmark.py: the score is the mean over JSONL files of each file's
    pass rate (the synthetic baselines are one more file); per type, the mean over its tests."""
    by_group: dict[str, list[bool]] = defaultdict(list)
    by_type: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        by_group[r.test.group].append(r.outcome.passed)
        by_type[r.test.type].append(r.outcome.passed)
    group_rates = {g: sum(v) / len(v) for g, v in sorted(by_group.items())}
    return {
        "score": sum(group_rates.values()) / len(group_rates) if group_rates else 0.0,
        "tests": len(results),
        "passed": sum(r.outcome.passed for r in results),
        "pass_rate_all_tests": (sum(r.outcome.passed for r in results) / len(results)) if results else 0.0,
        "groups": {g: (len(v), sum(v)) for g, v in sorted(by_group.items())},
        "types": {t: (len(v), sum(v)) for t, v in sorted(by_type.items())},
    }


_FENCE_BLOCK_RE = re.compile(r"^(`{3,}|~{3,})[^\n]*\n.*?^\1\s*$", re.MULTILINE | re.DOTALL)


def evaluate_olmocr(bench: Path, source: PredictionSource, *, limit: int | None = None) -> EvalReport:
    """olmOCR-Bench on `bench` (its *.jsonl and pdfs/) with predictions from `source`."""
    try:
        tests, skipped = load_olmocr_tests(bench)
    except ValueError as exc:
        raise ConfigError(f"--bench {bench}: {exc}") from None
    if not tests:
        raise ConfigError(f"--bench {bench}: no olmOCR-Bench tests in its *.jsonl files")
    pdfs = sorted({t.pdf for t in tests})
    if limit is not None:
        pdfs = pdfs[:limit]
    keep = set(pdfs)
    tests = [t for t in tests if t.pdf in keep]
    has_baseline = {t.pdf for t in tests if t.type == "baseline"}
    tests += [OlmocrTest(id=f"{pdf}_baseline", pdf=pdf, page=1, type="baseline", group=BASELINE_GROUP)
              for pdf in pdfs if pdf not in has_baseline]

    by_pdf: dict[str, list[OlmocrTest]] = defaultdict(list)
    for t in tests:
        by_pdf[t.pdf].append(t)
    results: list[OlmocrResult] = []
    failed_pdfs: dict[str, str] = {}
    fenced_only = 0
    for pdf in pdfs:
        predicted = source.predict(PdfRef(pdf, bench / "pdfs" / pdf), "pages")
        if predicted.error:
            failed_pdfs[pdf] = predicted.error
        contents: dict[int, _PageContent] = {}
        for test in by_pdf[pdf]:
            index = test.page - 1
            if predicted.error:
                outcome = TestOutcome(False, predicted.error)
            elif index not in predicted.pages:
                outcome = TestOutcome(False, predicted.page_errors.get(index, f"missing: no page {test.page}"))
            else:
                page = contents.setdefault(index, _PageContent(predicted.pages[index]))
                outcome = run_olmocr_test(test, page)
                if (test.type == "table" and not outcome.passed and not page.tables(markdown=True)
                        and _FENCE_BLOCK_RE.search(page.raw)):
                    fenced_only += 1
            results.append(OlmocrResult(test, outcome))

    scores = score_olmocr(results)
    rows = [{"group": f"file {g}", "tests": n, "passed": p, "score": p / n}
            for g, (n, p) in scores["groups"].items()]
    rows += [{"group": f"type {t}", "tests": n, "passed": p, "score": p / n}
             for t, (n, p) in scores["types"].items()]
    summary = {
        "format": "olmOCR-Bench",
        "bench": str(bench),
        "predictions": _source_name(source),
        "pdfs": len(pdfs),
        "pdfs_failed": len(failed_pdfs),
        "tests": scores["tests"],
        "passed": scores["passed"],
        "score": scores["score"],
        "pass_rate_all_tests": scores["pass_rate_all_tests"],
    }
    if skipped:
        summary["skipped_unsupported"] = dict(sorted(skipped.items()))
    notes = [
        "score = mean over JSONL files of each file's pass rate, one synthetic baseline test per PDF "
        "(page 1) forming the 'baseline' file, as olmocr/bench/benchmark.py; 'type' rows are the mean "
        "over that type's tests; pass_rate_all_tests pools every test.",
        "text is normalised as olmOCR normalize_text (NFC, <br>, **/__/*/_ markers, whitespace, quotes, "
        "dashes, micro sign); present/absent = fuzz.partial_ratio >= 1 - max_diffs/len (exact, every "
        "alignment searched) after first_n/last_n slicing and case folding; order = a fuzzy match of "
        "'before' starts before one of 'after' (Levenshtein <= max_diffs).",
        "table tests read Markdown pipe tables and HTML <table> (row/col spans) as olmOCR does; "
        "whitespace-aligned tables in ``` fences (our low-cost output) are not tables to olmOCR and "
        f"fail ({fenced_only} failed table tests had only such fenced tables on the page).",
        "math is approximated: olmOCR renders with KaTeX and matches glyph neighbourhoods; here a test "
        "passes when a $/$$/\\(/\\[ span equals the formula, or when the formula's normalised token "
        "sequence (spacing, \\left/\\right, fonts, grouping braces dropped; symbols as glyphs; "
        f"scripts canonically ordered) occurs in a span's within len/{MATH_TOKENS_PER_EDIT} token edits.",
        "a page with no prediction (parse failure, failed page, absent from the run) fails every test "
        "on it, absent tests included, as a missing .md does in olmOCR.",
    ]
    if skipped:
        notes.append(f"unsupported test types skipped, not scored: {dict(sorted(skipped.items()))}.")
    details = {
        "failed_pdfs": failed_pdfs,
        "failed_tests": [{"id": r.test.id, "pdf": r.test.pdf, "page": r.test.page, "type": r.test.type,
                          "reason": r.outcome.reason} for r in results if not r.outcome.passed],
    }
    return EvalReport(name="eval pdf: olmOCR-Bench", summary=summary,
                      columns=("group", "tests", "passed", "score"), rows=tuple(rows),
                      notes=tuple(notes), details=details)


# =============================================================================================
# pdf-parse-bench scoring.

GT_FORMULA_TYPES = ("inline-formula", "display-formula")
_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
_INLINE_TAG_RE = re.compile(r"</?(?:sup|sub|b|i|em|strong|span|u|s|small|code|a)(?:\s[^<>]*)?/?>", re.IGNORECASE)
_HTML_TAG_RE = re.compile(r"</?[a-zA-Z][^<>]*>")
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_FENCE_LINE_RE = re.compile(r"^\s*(`{3,}|~{3,}).*$", re.MULTILINE)


def plain_text(markdown: str) -> str:
    """Our Markdown as comparable prose: math spans, HTML comments (formula placeholders),
    HTML tags (their text kept: inline ones like <sup> join, block ones like <td> separate),
    heading marks and fence lines removed, then `normalize_text`."""
    text = strip_math(markdown)
    text = _HTML_COMMENT_RE.sub(" ", text)
    text = _INLINE_TAG_RE.sub("", text)
    text = _HTML_TAG_RE.sub(" ", text)
    text = _HEADING_RE.sub("", text)
    text = _FENCE_LINE_RE.sub(" ", text)
    return normalize_text(text).strip()


@dataclass(frozen=True, slots=True)
class FormulaMatch:
    type: str             # inline-formula / display-formula
    gt: str               # ground-truth LaTeX as given
    matched: str | None   # the candidate span assigned to it, None when none was left
    ned: float            # normalised edit distance on normalised LaTeX (1.0 when unmatched)
    found: bool           # ned <= FORMULA_MATCH_MAX_NED


@dataclass(frozen=True, slots=True)
class PdfParseScore:
    file: str
    status: str                       # "ok" or the failure reason
    text_ned: float
    formulas: tuple[FormulaMatch, ...]

    @property
    def found(self) -> int:
        return sum(f.found for f in self.formulas)

    @property
    def formula_recall(self) -> float:
        return self.found / len(self.formulas) if self.formulas else 1.0

    @property
    def formula_ned(self) -> float:
        return sum(f.ned for f in self.formulas) / len(self.formulas) if self.formulas else 0.0


def score_pdfparse(name: str, ground_truth: Sequence[dict[str, Any]], markdown: str | None,
                   status: str = "ok") -> PdfParseScore:
    """Score one document's Markdown (None: no prediction) against its pdf-parse-bench blocks.

    text_ned: normalised Levenshtein between the ground truth's text blocks (joined by spaces,
    `normalize_text`) and `plain_text(markdown)`. Formulas: every math span of the Markdown is a
    candidate; ground-truth formulas and candidates are paired one-to-one, greedily by lowest
    normalised edit distance of `normalize_latex` strings; a formula left without a candidate
    gets 1.0 (pdf-parse-bench scores an unextracted formula as empty).
    """
    gt_text = normalize_text(" ".join(b["data"] for b in ground_truth if b.get("type") == "text")).strip()
    gt_formulas = [(b["type"], b["data"]) for b in ground_truth if b.get("type") in GT_FORMULA_TYPES]
    if markdown is None:
        return PdfParseScore(name, status, 1.0 if gt_text else 0.0,
                             tuple(FormulaMatch(t, f, None, 1.0, False) for t, f in gt_formulas))
    text_ned = normalized_levenshtein(gt_text, plain_text(markdown))
    spans = math_spans(markdown)
    gts = [normalize_latex(f) for _, f in gt_formulas]
    cands = [normalize_latex(s) for s in spans]
    pairs = sorted((normalized_levenshtein(g, c), gi, ci) for gi, g in enumerate(gts) for ci, c in enumerate(cands))
    assigned: dict[int, tuple[float, int]] = {}
    used: set[int] = set()
    for ned, gi, ci in pairs:
        if gi not in assigned and ci not in used:
            assigned[gi] = (ned, ci)
            used.add(ci)
    matches = []
    for gi, (kind, formula) in enumerate(gt_formulas):
        if gi in assigned:
            ned, ci = assigned[gi]
            matches.append(FormulaMatch(kind, formula, spans[ci], ned, ned <= FORMULA_MATCH_MAX_NED))
        else:
            ned = normalized_levenshtein(gts[gi], "")
            matches.append(FormulaMatch(kind, formula, None, ned, ned <= FORMULA_MATCH_MAX_NED))
    return PdfParseScore(name, status, text_ned, tuple(matches))


def summarize_pdfparse(scores: Sequence[PdfParseScore]) -> dict[str, Any]:
    """text_ned: mean over files; formula figures pooled over every ground-truth formula (the
    leaderboard's "across N inline + M display formulas"), and split by inline/display."""
    formulas = [f for s in scores for f in s.formulas]
    out: dict[str, Any] = {
        "files": len(scores),
        "files_failed": sum(s.status != "ok" for s in scores),
        "text_ned": sum(s.text_ned for s in scores) / len(scores) if scores else 0.0,
        "formulas": len(formulas),
        "formulas_found": sum(f.found for f in formulas),
        "formula_recall": sum(f.found for f in formulas) / len(formulas) if formulas else 0.0,
        "formula_ned": sum(f.ned for f in formulas) / len(formulas) if formulas else 0.0,
    }
    for kind in GT_FORMULA_TYPES:
        subset = [f for f in formulas if f.type == kind]
        short = kind.split("-")[0]
        out[f"{short}_recall"] = sum(f.found for f in subset) / len(subset) if subset else 0.0
        out[f"{short}_ned"] = sum(f.ned for f in subset) / len(subset) if subset else 0.0
    return out


def evaluate_pdfparse(bench: Path, source: PredictionSource, *, limit: int | None = None) -> EvalReport:
    """pdf-parse-bench on every `X.pdf` + `X.gt.json` pair in `bench`."""
    gt_files = sorted(bench.glob("*.gt.json"))
    if limit is not None:
        gt_files = gt_files[:limit]
    if not gt_files:
        raise ConfigError(f"--bench {bench}: no *.gt.json files")
    scores: list[PdfParseScore] = []
    ignored: Counter = Counter()
    for gt_path in gt_files:
        stem = gt_path.name[: -len(".gt.json")]
        try:
            blocks = json.loads(gt_path.read_text(encoding="utf-8"))
            if not isinstance(blocks, list) or not all(isinstance(b, dict) and "data" in b for b in blocks):
                raise ValueError("expected a list of {type, data} objects")
        except ValueError as exc:
            raise ConfigError(f"--bench {gt_path}: {exc}") from None
        ignored.update(str(b.get("type")) for b in blocks if b.get("type") not in ("text",) + GT_FORMULA_TYPES)
        name = f"{stem}.pdf"
        predicted = source.predict(PdfRef(name, bench / name), "document")
        if predicted.error:
            scores.append(score_pdfparse(name, blocks, None, status=predicted.error))
        else:
            scores.append(score_pdfparse(name, blocks, predicted.text))

    summary = {"format": "pdf-parse-bench", "bench": str(bench),
               "predictions": _source_name(source),
               **summarize_pdfparse(scores), "match_max_ned": FORMULA_MATCH_MAX_NED}
    rows = tuple({"file": s.file, "status": s.status, "text_ned": s.text_ned, "formulas": len(s.formulas),
                  "found": s.found, "formula_recall": s.formula_recall, "formula_ned": s.formula_ned}
                 for s in scores)
    notes = [
        "text_ned = Levenshtein / longer length (pdf-parse-bench's normalisation, lower is better) "
        "between the ground-truth text blocks joined by spaces and our Markdown with math spans, HTML "
        "comments and tags (text kept), heading marks and fence lines removed, both olmOCR-normalised; mean over files. "
        "pdf-parse-bench compared text block by block; one concatenation needs no block alignment.",
        "formulas: candidates are our $…$, $$…$$, \\(…\\), \\[…\\] spans; ground truth and candidates are "
        "paired one-to-one, greedily by normalised edit distance of normalised LaTeX (spacing, "
        "\\left/\\right, font wrappers, grouping braces dropped, symbols as glyphs); formula_ned is the "
        "mean of those distances (1.0 when no candidate is left), formula_recall the share with distance "
        f"<= {FORMULA_MATCH_MAX_NED}; both pooled over all formulas. pdf-parse-bench instead pairs "
        "formulas with an LLM and grades them with an LLM judge; its LLM may also pick up formulas "
        "written as plain Unicode, which earn nothing here.",
        "a file without a prediction scores text_ned 1.0 and distance 1.0 on every formula.",
    ]
    if ignored:
        notes.append(f"ground-truth blocks of other types ignored: {dict(sorted(ignored.items()))}.")
    details = {
        "failed_files": {s.file: s.status for s in scores if s.status != "ok"},
        "formulas": {s.file: [{"type": f.type, "gt": f.gt, "matched": f.matched, "ned": round(f.ned, 4),
                               "found": f.found} for f in s.formulas] for s in scores},
    }
    return EvalReport(name="eval pdf: pdf-parse-bench", summary=summary,
                      columns=("file", "status", "text_ned", "formulas", "found", "formula_recall", "formula_ned"),
                      rows=rows, notes=tuple(notes), details=details)


# =============================================================================================
# The command.


def detect_format(bench: Path) -> str:
    """"olmocr" for DIR/*.jsonl with DIR/pdfs/, "pdfparse" for DIR/*.gt.json; else ConfigError."""
    if not bench.is_dir():
        raise ConfigError(f"--bench {bench}: not a directory")
    if (bench / "pdfs").is_dir() and any(bench.glob("*.jsonl")):
        return "olmocr"
    if any(bench.glob("*.gt.json")):
        return "pdfparse"
    raise ConfigError(f"--bench {bench}: neither olmOCR-Bench (*.jsonl beside pdfs/) nor "
                      "pdf-parse-bench (X.pdf beside X.gt.json); pass --format to say which")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bench", required=True, metavar="DIR",
                        help="olmOCR-Bench (dataset.jsonl + pdfs/) or pdf-parse-bench (X.pdf + X.gt.json) folder")
    parser.add_argument("--format", choices=FORMATS, default="auto",
                        help="ground-truth format (default: detect from DIR)")
    parser.add_argument("--predictions", metavar="RUN_DIR",
                        help="score an existing `scicurate run pdf --output RUN_DIR` instead of parsing")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N PDFs (sorted by name)")


def run(args: argparse.Namespace) -> EvalReport:
    bench = Path(args.bench)
    if not bench.is_dir():
        raise ConfigError(f"--bench {bench}: not a directory")
    fmt = getattr(args, "format", "auto") or "auto"
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if fmt == "auto":
        fmt = detect_format(bench)
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1; got {limit}")
    predictions = getattr(args, "predictions", None)
    source: PredictionSource = RunPredictions(Path(predictions)) if predictions else ParserPredictions()
    if fmt == "olmocr":
        return evaluate_olmocr(bench, source, limit=limit)
    return evaluate_pdfparse(bench, source, limit=limit)


COMMAND = register(EvalCommand(
    "pdf",
    "score PDF parsing on olmOCR-Bench or pdf-parse-bench ground truth",
    add_arguments,
    run,
))

__all__ = [
    "COMMAND", "FORMULA_MATCH_MAX_NED", "MATH_TOKENS_PER_EDIT", "FormulaMatch", "OlmocrResult", "OlmocrTest",
    "ParserPredictions", "PdfParseScore", "PdfRef", "Predicted", "PredictionSource", "RunPredictions", "Table",
    "TestOutcome", "add_arguments", "detect_format", "evaluate_olmocr", "evaluate_pdfparse", "formula_in_span",
    "latex_tokens", "lcs_length", "levenshtein", "load_olmocr_tests", "math_spans", "near_match_starts",
    "normalize_latex", "normalize_text", "normalized_levenshtein", "olmocr_test_from_json",
    "parse_html_tables", "parse_markdown_tables", "partial_ratio_at_least", "plain_text", "ratio", "run",
    "run_olmocr_test", "score_olmocr", "score_pdfparse", "strip_math", "substring_distance",
    "summarize_pdfparse", "trailing_repeats",
]
