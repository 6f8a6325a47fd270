"""Exam-item integrity: read an exam-style problem, normalise it, check that its parts agree.

Pure cores (no Beam); `pipelines/exam.py` wires them as

    parse_item(row, source=)            -> ExamItem (structured fields or free text) | ItemError
    check(item, config, counter=)       -> ExamCheck: keep | filter, stable reason codes
    completeness_request(item, check)   -> ChatRequest (`exam_check@1`): multi-part fill-in-the-blank only
    completeness_from_result(result)    -> LlmCompleteness | LlmCheckFailure (the answer re-validated)
    apply_completeness(check, answer)   -> ExamCheck with `llm_incomplete` or an `llm_unchecked:*` note

An item comes either structured (a JSON object with question/stem, options as a list, a dict or
inline in the stem, answer, explanation/solution/analysis, type, images; Chinese keys 题干/选项/
答案/解析/题型 too) or as free text ("1. stem … A. … B. … Answer: C  Explanation: …", and the
Chinese conventions 答案/【答案】, 解析/【解析】, （ ） and full-width letters "Ａ．"). Full-width
ASCII is folded to ASCII for matching only (`fold`: one character for one, so offsets hold);
stored texts are the item's own.

The rules say what is wrong, never what is right: every reason is a defect a reader of the item
would see (no answer, an answer that is not an option, an explanation that concludes another
option, blanks without answers). Where a rule would have to guess (a letter in an explanation
that may be a passing mention, a comma inside one blank's answer), it stays silent; the
thresholds and patterns below say where that line is and why.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from scicurate.config import ConfigError

# ---- vocabulary (stable strings: they become column values and counter names) ----------------

MULTIPLE_CHOICE = "multiple_choice"
MULTI_SELECT = "multi_select"
FILL_IN_BLANK = "fill_in_blank"
TRUE_FALSE = "true_false"
FREE_RESPONSE = "free_response"
ITEM_TYPES = (MULTIPLE_CHOICE, MULTI_SELECT, FILL_IN_BLANK, TRUE_FALSE, FREE_RESPONSE)
CHOICE_TYPES = (MULTIPLE_CHOICE, MULTI_SELECT)

KEEP = "keep"
FILTER = "filter"
VERDICTS = (KEEP, FILTER)

LAYOUT_STRUCTURED = "structured"
LAYOUT_TEXT = "text"
LAYOUTS = (LAYOUT_STRUCTURED, LAYOUT_TEXT)

# Reason codes: each one filters the item.
MISSING_STEM = "missing_stem"
MISSING_ANSWER = "missing_answer"
MISSING_EXPLANATION = "missing_explanation"          # a reason only with require_explanation, else a note
MISSING_OPTIONS = "missing_options"                  # declared multiple choice / multi-select, no options
TOO_FEW_OPTIONS = "too_few_options"
LABELS_NOT_CONTIGUOUS = "option_labels_not_contiguous"
DUPLICATE_LABELS = "duplicate_option_labels"
EMPTY_OPTION = "empty_option_text"
DUPLICATE_OPTION_TEXTS = "duplicate_option_texts"
ANSWER_NOT_IN_OPTIONS = "answer_not_in_options"
MULTIPLE_ANSWERS_SINGLE_CHOICE = "multiple_answers_single_choice"
EXPLANATION_CONTRADICTS = "explanation_contradicts_answer"
BLANK_ANSWER_MISMATCH = "blank_answer_mismatch"
INVALID_TRUE_FALSE = "invalid_true_false_answer"
FIGURE_WITHOUT_IMAGE = "figure_without_image"
LLM_INCOMPLETE = "llm_incomplete"                    # the LLM completeness check said an answer part is missing
REASONS = (MISSING_STEM, MISSING_ANSWER, MISSING_EXPLANATION, MISSING_OPTIONS, TOO_FEW_OPTIONS,
           LABELS_NOT_CONTIGUOUS, DUPLICATE_LABELS, EMPTY_OPTION, DUPLICATE_OPTION_TEXTS, ANSWER_NOT_IN_OPTIONS,
           MULTIPLE_ANSWERS_SINGLE_CHOICE, EXPLANATION_CONTRADICTS, BLANK_ANSWER_MISMATCH, INVALID_TRUE_FALSE, FIGURE_WITHOUT_IMAGE, LLM_INCOMPLETE)

# Notes: findings that did not filter the item under the run's config (kept rows carry them).
NOTE_MISSING_EXPLANATION = MISSING_EXPLANATION       # explanation not required
NOTE_FIGURE_UNVERIFIED = "figure_unverified"         # the stem cites a figure, the schema has no image field
NOTE_ANSWER_IN_SOLUTION = "answer_in_solution"       # free response: the worked solution is the answer
NOTE_LLM_UNCHECKED = "llm_unchecked"                 # written llm_unchecked:<why> (disabled, invalid_output, …)
# A declared fill-in-the-blank item whose stem shows no blank: PDF and OCR extraction (Mathpix
# among them) drop the underline, leaving "…则 |b|=" with the blank implied at the end. The
# blank count is unknown, so the item is noted and not counted against its answer.
NOTE_NO_BLANK_MARKER = "no_blank_marker"


# ---- configuration ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ExamCheckConfig:
    """The rule thresholds. Defaults and why:

    - `require_explanation=False`: many good item banks (and most exam papers) print the key
      without a worked explanation; a missing explanation is a note unless a mix asks for
      explained items only (`--require-explanation`, the `strict` preset).
    - `min_stem_chars=2`: letters, digits or CJK characters left in the stem once numbering and
      blank markers are removed. Below 2 nothing is asked ("1.", "（ ）"); a two-character
      Chinese stem (求值) or "x?" is still a question.
    - `min_options=2`: one option is not a choice.
    - `llm_min_blanks=2`: only items with at least two blanks go to the LLM completeness check.
      One blank with one answer part is settled by counting; with two or more, a part can be
      present but answer the wrong blank, or an "answer" can be one value split by a comma,
      which counting cannot tell apart.
    - `conclusion_tail_chars=160`: an explanation's concluding letter counts only when it is
      stated within its last 160 characters (after trailing space): "故选C。" and "Therefore,
      the correct answer is (C)." end explanations; a letter earlier on is usually one option
      being discussed. 160 characters hold a closing English sentence with its lead-in.
    - `check_figures=True`: a stem citing a figure ("as shown in the figure", 如图) with no image
      is filtered when the item's schema carries images (an empty image field means the figure
      was lost); without an image field it is only noted, since the text cannot say.
    """

    require_explanation: bool = False
    min_stem_chars: int = 2
    min_options: int = 2
    llm_min_blanks: int = 2
    conclusion_tail_chars: int = 160
    check_figures: bool = True

    def __post_init__(self) -> None:
        if self.min_stem_chars < 1:
            raise ConfigError(f"min_stem_chars must be at least 1; got {self.min_stem_chars}")
        if self.min_options < 2:
            raise ConfigError(f"min_options must be at least 2; got {self.min_options}")
        if self.llm_min_blanks < 2:
            raise ConfigError(f"llm_min_blanks must be at least 2 (one blank is settled by counting); "
                              f"got {self.llm_min_blanks}")
        if self.conclusion_tail_chars < 20:
            raise ConfigError(f"conclusion_tail_chars must be at least 20; got {self.conclusion_tail_chars}")


PRESETS = {
    "default": ExamCheckConfig(),
    "strict": ExamCheckConfig(require_explanation=True),
}


# ---- records ---------------------------------------------------------------------------------

class ItemError(ValueError):
    """A row that is no exam item at all (not an object, no item field, a field of the wrong
    type): the pipeline dead-letters it as `bad_record`."""


@dataclass(frozen=True, slots=True)
class Option:
    label: str          # "A".."H" (upper case), "1".."n" for numbered options, "" when a labelled list lacks one
    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not isinstance(self.text, str):
            raise ValueError("an Option's label and text are strings")


@dataclass(frozen=True, slots=True)
class ExamItem:
    """One exam item, normalised. Texts are the item's own (stripped, numbering removed from
    the stem); `answer_parts` is set only when the answer came as a list; `carries_images` says
    whether the item's schema has an image field at all (an empty one counts)."""

    item_id: str
    stem: str
    options: tuple[Option, ...] = ()
    answer: str = ""
    answer_parts: tuple[str, ...] = ()
    explanation: str = ""
    declared_type: str = ""          # one of ITEM_TYPES, or "" when the item names none we know
    raw_type: str = ""               # the type as the item wrote it
    images: tuple[str, ...] = ()
    carries_images: bool = False
    layout: str = LAYOUT_STRUCTURED
    options_inline: bool = False     # options were read from the stem or a free text
    source: str = ""

    def __post_init__(self) -> None:
        if not self.item_id:
            raise ValueError("an ExamItem needs an item_id")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}; got {self.layout!r}")
        if self.declared_type and self.declared_type not in ITEM_TYPES:
            raise ValueError(f"declared_type must be one of {ITEM_TYPES} or empty; got {self.declared_type!r}")
        for name in ("stem", "answer", "explanation", "raw_type", "source"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"ExamItem.{name} must be a string")
        if not all(isinstance(o, Option) for o in self.options):
            raise ValueError("ExamItem.options must be Options")
        if not all(isinstance(p, str) for p in self.answer_parts + self.images):
            raise ValueError("ExamItem.answer_parts and images must be strings")


@dataclass(frozen=True, slots=True)
class ExamCheck:
    """The rules' verdict on one item: `filter` exactly when there is a reason. The figures
    behind the verdict travel with it: the answer's option labels, the letters the explanation
    concludes ("" when it states none clearly), blanks in the stem and answer parts counted.
    `llm_blanks`: the item goes to the LLM completeness check (kept by the rules, fill-in-the-
    blank, at least `llm_min_blanks` blanks)."""

    verdict: str
    reasons: tuple[str, ...]
    item_type: str
    notes: tuple[str, ...] = ()
    answer_labels: tuple[str, ...] = ()
    explanation_labels: tuple[str, ...] = ()
    blanks: int = 0
    answer_parts: int = 0
    needs_llm: bool = False

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}; got {self.verdict!r}")
        if (self.verdict == FILTER) != bool(self.reasons):
            raise ValueError("an ExamCheck filters exactly when it has reasons")
        unknown = [r for r in self.reasons if r not in REASONS]
        if unknown:
            raise ValueError(f"unknown reason codes {unknown}")
        if self.item_type not in ITEM_TYPES:
            raise ValueError(f"item_type must be one of {ITEM_TYPES}; got {self.item_type!r}")
        if self.needs_llm and self.verdict != KEEP:
            raise ValueError("only kept items go to the LLM check")


# ---- text helpers ----------------------------------------------------------------------------

# Full-width ASCII (U+FF01..U+FF5E) -> ASCII and the ideographic space -> space, one character
# for one, so a match in the folded text is a slice of the original.
_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FOLD[0x3000] = 0x20


def fold(text: str) -> str:
    return text if text.isascii() else text.translate(_FOLD)


_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CONTENT_CHAR = re.compile(rf"[0-9A-Za-z{_CJK}\u0370-\u03ff]")
_HAS_CJK = re.compile(rf"[{_CJK}]")
_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = " \t\r\n.。,，;；:：、!！?？\"'“”‘’()（）[]【】*"


def _norm(text: str) -> str:
    """Comparison form: folded, case-folded, whitespace collapsed, edge punctuation removed."""
    return _SPACE.sub(" ", fold(text)).strip(_EDGE_PUNCT).casefold()


def _content_chars(text: str) -> int:
    return len(_CONTENT_CHAR.findall(text))


def _canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":"))


def content_id(row: Any) -> str:
    """`sha256:` + 32 hex of the row's canonical JSON: the id of a row without one."""
    return "sha256:" + hashlib.sha256(_canonical_json(row).encode("utf-8", "surrogatepass")).hexdigest()[:32]


# Placeholders that mean "no answer" / "no explanation" ("略" = omitted, "见解析" = see the
# explanation, which for a choice item is no key at all).
_EMPTY_ANSWERS = {"", "略", "无", "暂无", "n/a", "na", "none", "null", "nil", "-", "--", "?", "tbd", "待定",
                  "见解析", "详见解析", "见分析", "see explanation", "see solution", "see analysis"}
_EMPTY_EXPLANATIONS = {"", "略", "无", "暂无", "暂无解析", "解析略", "n/a", "na", "none", "null", "nil", "-", "--",
                       "no explanation", "none provided", "tbd"}


def _present(text: str, empty: set[str]) -> bool:
    return _norm(text) not in empty


# ---- blanks ----------------------------------------------------------------------------------

# A blank: 3+ underscores (＿ folds to _), markdown-escaped \_\_, \underline{\quad…},
# \underline{\hspace{…}}, and an empty pair of parentheses ( ) / （　） not right after an
# identifier (f() is a call, not a blank).
_BLANK = re.compile(
    r"_{3,}"
    r"|(?:\\_){2,}"
    r"|\\underline\s*\{(?:\\(?:quad|qquad|,|;|:|!|enspace|space)|~|\s)*\}"
    r"|\\underline\s*\{\s*\\hspace\*?\s*\{[^{}]*\}\s*\}"
    r"|(?<![A-Za-z0-9_\\])\(\s*\)"
)
# Two markers joined by a blank number (___(1)___, ___①___) or nothing are one blank.
_BLANK_JOIN = re.compile(r"(?:\(\d{1,2}\)|\d{1,2}|[\u2460-\u2473])?")


def blank_spans(stem: str) -> list[tuple[int, int]]:
    """(start, end) of each blank in the stem. A line made of underscores only is a rule, not a
    blank."""
    folded = fold(stem)
    spans: list[tuple[int, int]] = []
    for m in _BLANK.finditer(folded):
        start, end = m.span()
        line_start = folded.rfind("\n", 0, start) + 1
        line_end = folded.find("\n", end)
        line = folded[line_start: line_end if line_end >= 0 else len(folded)].strip()
        if line == m.group(0) and m.group(0).startswith("_"):
            continue
        if spans and _BLANK_JOIN.fullmatch(folded[spans[-1][1]:start]):
            spans[-1] = (spans[-1][0], end)
            continue
        spans.append((start, end))
    return spans


def count_blanks(stem: str) -> int:
    return len(blank_spans(stem))


def number_blanks(stem: str) -> tuple[str, int]:
    """The stem with each blank replaced by `[BLANK n]` (what the LLM check is shown)."""
    spans = blank_spans(stem)
    out, last = [], 0
    for n, (start, end) in enumerate(spans, 1):
        out += [stem[last:start], f"[BLANK {n}]"]
        last = end
    out.append(stem[last:])
    return "".join(out), len(spans)


# Answer parts. Strong separators (blank enumerators (1) ① 空1 "blank 1:", and ; ；|) say
# "another blank"; weak ones (newlines, commas, 、, runs of spaces, " and ") may also sit
# inside one blank's answer (1,000; (1, 2); 氧气、氮气). An answer fits b blanks when
# strong parts <= b <= weak parts: a mismatch is reported only when no reading fits.
_ENUMERATOR = re.compile(r"(?:^|(?<=[\s;,.:]))(?:\(\s*\d{1,2}\s*\)|[\u2460-\u2473]|(?:空|第)\s*\d{1,2}\s*空?"
                         r"|(?i:blank)\s*\d{1,2})\s*[.:)]?")
_STRONG_SPLIT = re.compile(r"[;|]")
_WEAK_SPLIT = re.compile(r"\n|,|\u3001|\s{2,}|\s(?i:and)\s")


def answer_part_range(answer: str, parts: Sequence[str] = ()) -> tuple[int, int]:
    """(fewest, most) blanks the answer can be read as filling. A list answer is exact."""
    if len(parts) > 1:
        n = sum(1 for p in parts if _present(p, _EMPTY_ANSWERS))
        return n, n
    text = fold(parts[0] if parts else answer).strip()
    if not text:
        return 0, 0
    marks = list(_ENUMERATOR.finditer(text))
    if len(marks) >= 2:
        pieces = [text[m.end(): (marks[i + 1].start() if i + 1 < len(marks) else len(text))]
                  for i, m in enumerate(marks)]
        head = text[: marks[0].start()]
        strong = [p for p in ([head] if _content_chars(head) else []) + pieces]
    else:
        strong = _STRONG_SPLIT.split(text)
    strong = [p.strip(_EDGE_PUNCT) for p in strong]
    strong = [p for p in strong if p]
    weak = [w for p in strong for w in _WEAK_SPLIT.split(p) if w.strip(_EDGE_PUNCT)]
    return len(strong), max(len(weak), len(strong))


# ---- options, answers, explanations ----------------------------------------------------------

# An option label in folded text: (A) or A. A、 A: A) ; A..H (8 options is the most exam
# papers print). Checked in code: what precedes it (start, space, punctuation or CJK, never a
# letter or digit: "P(A)", "U.S.A." are not labels).
_LABEL = re.compile(r"\(\s*([A-H])\s*\)|([A-H])[.\u3001:)](?![A-Za-z]\.)")
_LABEL_PRE_OK = set(" \t\n\r.。,，;；:：、!！?？)）]】}\"'“”‘’") | {"\u3000"}


@dataclass(frozen=True, slots=True)
class _Label:
    start: int
    end: int
    letter: str
    strong: bool


def _label_candidates(original: str, folded: str) -> list[_Label]:
    out = []
    for m in _LABEL.finditer(folded):
        start = m.start()
        prev = original[start - 1] if start else "\n"
        if start and prev not in _LABEL_PRE_OK and not _HAS_CJK.match(prev):
            continue
        letter = m.group(1) or m.group(2)
        before = original[max(0, start - 2): start]
        strong = (start == 0 or prev in "\n\r\t\u3000" or m.group(1) is not None
                  or (len(before) == 2 and before.isspace()))
        out.append(_Label(start, m.end(), letter, strong))
    return out


def _option_block(cands: list[_Label]) -> list[_Label]:
    """The labels that open options: from the first strong "A" followed later by a "B" (else
    the last such "A", for options run on in the stem's line; else, with no "A", the first of
    two or more strong labels, so B. C. D. without A is still read and flagged). After the
    first, a label joins when it is strong or the next letter: a stray "A." inside an option's
    text is neither."""
    last_b = max((i for i, c in enumerate(cands) if c.letter == "B"), default=-1)
    with_b = [i for i, c in enumerate(cands[:last_b]) if c.letter == "A"]
    strong_a = [i for i in with_b if cands[i].strong]
    if strong_a:
        start = strong_a[0]
    elif with_b:
        start = with_b[-1]
    else:
        strong = [i for i, c in enumerate(cands) if c.strong]
        if len(strong) < 2:
            return []
        start = strong[0]
    block = [cands[start]]
    for c in cands[start + 1:]:
        if c.strong or ord(c.letter) == ord(block[-1].letter) + 1:
            block.append(c)
    return block


def split_options(text: str) -> tuple[str, tuple[Option, ...]]:
    """(text before the options, options) of a stem with its options inline."""
    folded = fold(text)
    block = _option_block(_label_candidates(text, folded))
    if not block:
        return text, ()
    options = []
    for i, label in enumerate(block):
        end = block[i + 1].start if i + 1 < len(block) else len(text)
        options.append(Option(label.letter, text[label.end:end].strip()))
    return text[: block[0].start], tuple(options)


# Section markers. A bare 答案: / 解析: must start a line or follow a space or a sentence end
# ("请分析：" inside a stem is not a marker); English ones need the colon ("Answer the
# following" is not one).
_AT_BREAK = r"(?:(?m:^)|(?<=[\s。.;)】]))"
_ANSWER_MARK = re.compile(
    r"【\s*(?:参考|正确)?答案\s*】|\[\s*(?:参考|正确)?答案\s*\]|" + _AT_BREAK + r"(?:参考|正确)?答案\s*:"
    r"|(?:\*\*\s*)?(?<![A-Za-z])(?i:correct\s+answer|answers?|ans\.?)\s*(?:\*\*\s*)?:(?:\s*\*\*)?")
_EXPLANATION_MARK = re.compile(
    r"【\s*(?:解析|分析|详解|解答|点评|点睛|考点|思路)\s*】|\[\s*(?:解析|分析|详解)\s*\]|" + _AT_BREAK +
    r"(?:解析|分析|详解|解答)\s*:"
    r"|(?:(?m:^)[ \t>*#]*|(?<=\s\s)|(?<=[.!?;。)\]]\s)|(?<=\*\*))" + r"(?i:explanation|solution|analysis|rationale"
    r"|reasoning|worked\s+solution)\s*(?:\*\*\s*)?:(?:\s*\*\*)?")
# After an answer marker an English explanation word needs no break before it ("Answer: C
# Solution: …"); before one it does, or "Consider the solution: 0.1 M NaCl" would end a stem.
_EXPLANATION_MARK_LOOSE = re.compile(
    r"(?:\*\*\s*)?(?<![A-Za-z])(?i:explanation|solution|analysis|rationale|reasoning|worked\s+solution)"
    r"\s*(?:\*\*\s*)?:(?:\s*\*\*)?")
_STEM_PREFIX = re.compile(
    r"^\s*(?:【\s*题(?:文|干|目)\s*】|题(?:目|干)\s*:|(?i:question|problem|q)\s*(?:\d+\s*)?[.:)]"
    r"|第\s*\d{1,3}\s*题\s*[.:\u3001]?|\d{1,3}\s*[.\u3001):](?!\d)|\(\s*\d{1,3}\s*\))\s*")


def _strip_numbering(stem: str) -> str:
    folded = fold(stem)
    m = _STEM_PREFIX.match(folded)
    return stem[m.end():].strip() if m else stem.strip()


@dataclass(frozen=True, slots=True)
class TextParts:
    stem: str
    options: tuple[Option, ...]
    answer: str
    explanation: str
    has_answer_mark: bool
    has_explanation_mark: bool


def split_text(text: str) -> TextParts:
    """A free-text item -> its stem, inline options, answer and explanation. The first answer
    or explanation marker ends the stem; each marker's section runs to the next marker (an
    explanation may come before or after the answer; several explanation sections are joined)."""
    folded = fold(text)
    answer_marks = [(m.start(), m.end(), "answer") for m in _ANSWER_MARK.finditer(folded)]
    explanation_marks = {(m.start(), m.end(), "explanation") for m in _EXPLANATION_MARK.finditer(folded)}
    if answer_marks:
        explanation_marks |= {(m.start(), m.end(), "explanation")
                              for m in _EXPLANATION_MARK_LOOSE.finditer(folded, answer_marks[0][1])}
    marks = []
    for mark in sorted(answer_marks + list(explanation_marks), key=lambda m: (m[0], -m[1])):
        if not marks or mark[0] >= marks[-1][1]:          # overlapping markers: the first, longest one
            marks.append(mark)
    body_end = marks[0][0] if marks else len(text)
    answers, explanations = [], []
    for i, (start, end, kind) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        section = text[end:stop].strip()
        (answers if kind == "answer" else explanations).append(section)
    stem, options = split_options(text[:body_end])
    answer = next((a for a in answers if a), "")
    return TextParts(_strip_numbering(stem), options, answer, "\n".join(e for e in explanations if e),
                     bool(answers), bool(explanations))


_ANSWER_PREFIX = re.compile(
    r"^\s*(?:(?i:the\s+)?(?i:correct\s+)?(?i:answer|option|choice)\s*(?i:is)?\s*:?|(?:故|应|正确答案|答案)?\s*(?:选择|选)\s*:?"
    r"|(?:正确)?答案\s*(?:为|是)\s*:?)\s*")
_LETTER_RUN = re.compile(r"[\s(\[【]*([A-H](?:\s*[)\]】]?\s*(?:,|\u3001|/|&|;|and|和|与|及)?\s*[(\[【]?\s*[A-H])*)[\s)\]】]*")
_LETTER = re.compile(r"[A-H]")
_LETTER_TAIL = re.compile(r"$|\n|[.。:、;；,，]|\s*(?i:because|since|as|is)\b|\s*[-—]|\s*[" + _CJK + "]")


# An option letter typeset as math ("故选: $\\mathrm{A}$", Mathpix output) reads as the letter.
_TEX_LETTER = re.compile(r"\$\s*(?:\\(?:mathrm|text|textbf|mathbf|rm)\s*\{\s*([A-H])\s*\}|([A-H]))\s*\$")


def _untex_letters(text: str) -> str:
    return _TEX_LETTER.sub(lambda m: m.group(1) or m.group(2), text) if "$" in text else text


def answer_labels(answer: str, options: Sequence[Option]) -> tuple[str, ...]:
    """The option labels an answer names, in order, duplicates removed; () when it names none.
    Tried in turn: the answer is a label ("B", "(2)"); it is an option's text ("5 m/s"); it
    starts with letters ("AC", "A, C", "C. 5 m/s", "选C", "The answer is (B) because…").
    Letters need not be labels of this item: "E" with options A-D comes back as ("E",), which
    is what `answer_not_in_options` catches."""
    if not options:
        return ()
    labels = {o.label for o in options}
    raw = _SPACE.sub(" ", _untex_letters(fold(answer))).strip()   # one space per gap keeps the patterns linear
    bare = raw.strip(_EDGE_PUNCT).upper()
    if bare in labels:
        return (bare,)
    norm = _norm(answer)
    by_text = [o.label for o in options if o.text and _norm(o.text) == norm]
    if by_text:
        return (by_text[0],)
    if re.fullmatch(r"[a-h]{1,8}", bare.lower()) and bare.lower() == raw.strip(_EDGE_PUNCT):
        raw = raw.upper()                 # "b", "ac": lower-case keys
    body = _ANSWER_PREFIX.sub("", raw, count=1)
    m = _LETTER_RUN.match(body)
    if not m or not _LETTER_TAIL.match(body, m.end()):
        return ()
    return tuple(dict.fromkeys(_LETTER.findall(m.group(1))))


# A clearly stated final choice in an explanation. Chinese: 故选C / 所以选C / 综上所述，选C /
# 答案为C / 应选C. English: "the (correct) answer is (C)", "option C is correct", "Hence (C)".
# Never "选项A正确" (that is one option being discussed).
_LETTERS_AFTER = (r"\s*:?\s*[(\[【]?\s*([A-H](?:\s*[)\]】]?\s*(?:,|\u3001|和|与|and)?\s*[(\[【]?\s*[A-H])*)"
                  r"\s*[)\]】]?(?![A-Za-z0-9])")
_CONCLUSIONS = (
    re.compile(r"(?:故|所以|因此|因而|综上所述|综上|本题)[^。\n选]{0,6}?(?:应)?选(?:择)?(?!项)" + _LETTERS_AFTER),
    re.compile(r"(?:正确)?答案(?:为|是|应为|应选|选)" + _LETTERS_AFTER),
    re.compile(r"(?<![A-Za-z])(?i:(?:the\s+)?(?:correct|right|best)\s+(?:answer|option|choice)|the\s+answer)"
               r"\s+(?i:is|must\s+be|should\s+be)" + _LETTERS_AFTER),
    re.compile(r"(?<![A-Za-z])(?i:option|choice|answer)\s*[(\[]?([A-H])[)\]]?\s+(?i:is\s+(?:the\s+)?(?:correct|right))"),
    re.compile(r"(?<![A-Za-z])(?i:hence|therefore|thus|so)\s*,?\s*(?i:(?:we\s+)?(?:choose|select|pick)\s+)?"
               r"(?i:options?\s+)?([(\[][A-H][)\]](?:\s*(?:,|and|&)\s*[(\[][A-H][)\]])*)"),
)


def explanation_labels(explanation: str, tail_chars: int = 160) -> tuple[str, ...]:
    """The option letters an explanation concludes, or () when it states none clearly: every
    concluding statement must name the same letters and the last one must end within the
    explanation's last `tail_chars` characters."""
    folded = _SPACE.sub(" ", _untex_letters(fold(explanation))).rstrip()
    found = []
    for pattern in _CONCLUSIONS:
        for m in pattern.finditer(folded):
            found.append((m.end(), tuple(sorted(set(_LETTER.findall(m.group(1)))))))
    if not found:
        return ()
    found.sort()
    if len({letters for _, letters in found}) != 1 or found[-1][0] < len(folded) - tail_chars:
        return ()
    return found[-1][1]


_TRUE_FALSE = {"true", "false", "t", "f", "yes", "no", "y", "n", "正确", "错误", "对", "错", "是", "否", "√", "×",
               "✓", "✗", "✔", "✘", "x", "right", "wrong", "correct", "incorrect"}


def is_true_false(answer: str) -> bool:
    return _norm(answer) in _TRUE_FALSE


_FIGURE_REF = re.compile(
    r"(?i:as\s+shown\s+(?:in|on|below|above)|shown\s+in\s+(?:the\s+)?(?:figure|fig\.|diagram|graph|picture|image)"
    r"|(?:in|from|see|refer\s+to|according\s+to|use|using)\s+the\s+(?:following\s+|accompanying\s+|given\s+)?"
    r"(?:figure|diagram|graph|picture|image)|the\s+(?:figure|diagram|graph|picture)\s+(?:below|above|shows)"
    r"|\bfig(?:ure)?\.?\s*\d+)"
    r"|如(?:下|上|右|左)?图|见图|由图|图中|(?:下|右|上|左)图|图\s*\d")
_INLINE_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]+\)|<img\b|\\includegraphics", re.I)


def cites_figure(stem: str) -> bool:
    return bool(_FIGURE_REF.search(fold(stem)))


# ---- reading an item -------------------------------------------------------------------------

ID_KEYS = ("id", "item_id", "question_id", "qid", "doc_id", "page_id", "uid")
TEXT_KEYS = ("text", "content", "raw_text")
STEM_KEYS = ("question", "stem", "problem", "question_text", "题干", "题目", "题文")
OPTION_KEYS = ("options", "choices", "option", "candidates", "选项")
ANSWER_KEYS = ("answer", "answers", "correct_answer", "standard_answer", "answer_key", "gold", "答案", "参考答案")
EXPLANATION_KEYS = ("explanation", "solution", "analysis", "rationale", "reasoning", "explain", "解析", "分析", "详解")
TYPE_KEYS = ("type", "question_type", "item_type", "qtype", "题型")
IMAGE_KEYS = ("images", "image", "figures", "figure", "img", "imgs", "image_url", "image_urls", "image_path",
              "picture", "pictures", "图片")
ITEM_KEYS = TEXT_KEYS + STEM_KEYS + OPTION_KEYS + ANSWER_KEYS + EXPLANATION_KEYS

_TYPE_SYNONYMS = {
    MULTIPLE_CHOICE: ("multiple_choice", "single_choice", "mcq", "mc", "choice", "single", "single_answer",
                      "单选题", "单选", "选择题", "单项选择题"),
    MULTI_SELECT: ("multi_select", "multiple_select", "multiple_answer", "multiple_answers", "multiple_response",
                   "multi_choice", "multi_answer", "多选题", "多选", "多项选择题", "不定项选择题", "不定项"),
    FILL_IN_BLANK: ("fill_in_blank", "fill_in_the_blank", "fill_in_blanks", "fill_blank", "cloze", "blank",
                    "填空题", "填空"),
    TRUE_FALSE: ("true_false", "true_or_false", "tf", "boolean", "judgement", "judgment", "判断题", "判断", "是非题"),
    FREE_RESPONSE: ("free_response", "open", "open_ended", "short_answer", "essay", "calculation", "proof",
                    "解答题", "计算题", "简答题", "问答题", "证明题", "实验题", "综合题"),
}
_TYPE_LOOKUP = {name: kind for kind, names in _TYPE_SYNONYMS.items() for name in names}


def normalise_type(raw: str) -> str:
    """An item's own type name -> one of ITEM_TYPES, or "" when it is not one we know."""
    key = re.sub(r"[\s\-/]+", "_", fold(raw).strip().casefold())
    return _TYPE_LOOKUP.get(key, "")


def _first(row: Mapping[str, Any], keys: Iterable[str]) -> tuple[str, Any]:
    for key in keys:
        if key in row and row[key] is not None:
            return key, row[key]
    return "", None


def _scalar(value: Any, what: str) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (str, int, float)):
        return str(value).strip()
    raise ItemError(f"{what} must be a string or number; got {type(value).__name__}")


def _text_field(value: Any, what: str) -> str:
    if isinstance(value, (list, tuple)):
        return "\n".join(_scalar(v, what) for v in value if v is not None).strip()
    return _scalar(value, what)


_LABEL_KEY = re.compile(r"(?:(?i:option|choice)[\s_\-]*)?[(\[]?\s*([A-Za-z]|\d{1,2})\s*[)\].\u3001:]?")
_LABELLED_TEXT = re.compile(r"\s*(?:\(\s*([A-Ha-h])\s*\)|([A-H])\s*[.\u3001:)])\s*")


def _label_of(key: Any) -> str:
    m = _LABEL_KEY.fullmatch(fold(str(key)).strip())
    return m.group(1).upper() if m else fold(str(key)).strip().upper()


def _letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)] if n <= 26 else [str(i + 1) for i in range(n)]


def _options(value: Any) -> tuple[Option, ...]:
    """options as a dict {label: text}, a list of "A. text" / plain strings / {label, text}
    objects, or one string holding them inline."""
    if isinstance(value, Mapping):
        return tuple(Option(_label_of(k), _text_field(v, f"option {k}")) for k, v in value.items())
    if isinstance(value, str):
        _, inline = split_options(value)
        if inline:
            return inline
        lines = [line.strip() for line in value.splitlines() if line.strip()]
        return tuple(Option(label, line) for label, line in zip(_letters(len(lines)), lines))
    if not isinstance(value, (list, tuple)):
        raise ItemError(f"options must be a list, an object or a string; got {type(value).__name__}")
    parsed: list[tuple[str, str]] = []
    for i, entry in enumerate(value):
        if isinstance(entry, Mapping):
            _, label = _first(entry, ("label", "key", "letter", "id", "option_id"))
            _, text = _first(entry, ("text", "content", "value", "option", "body"))
            parsed.append((_label_of(label) if label is not None else "", _text_field(text if text is not None else "",
                                                                                       f"option {i}")))
            continue
        text = _scalar(entry, f"option {i}")
        m = _LABELLED_TEXT.match(fold(text))
        parsed.append(((m.group(1) or m.group(2)).upper(), text[m.end():].strip()) if m else ("", text))
    if parsed and not any(label for label, _ in parsed):
        parsed = list(zip(_letters(len(parsed)), (text for _, text in parsed)))
    return tuple(Option(label, text) for label, text in parsed)


def _images(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    values = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in values:
        if isinstance(v, Mapping):
            v = next((v[k] for k in ("url", "path", "src", "file") if v.get(k)), _canonical_json(v))
        if isinstance(v, (bytes, bytearray)):
            v = "sha256:" + hashlib.sha256(bytes(v)).hexdigest()[:32]
        if v not in (None, ""):
            out.append(str(v))
    return tuple(out)


def parse_item(row: Any, *, source: str = "") -> ExamItem:
    """One pool row -> ExamItem; ItemError when it is no exam item (not an object, none of the
    item fields, a field of the wrong type). A row with a stem field is structured (a missing
    options/answer/explanation field is then looked for inline in the stem); one with only a
    text field is read as free text."""
    if not isinstance(row, Mapping):
        raise ItemError(f"expected an object, got {type(row).__name__}")
    if not any(row.get(k) is not None for k in ITEM_KEYS):
        raise ItemError(f"no exam item field (one of {', '.join(STEM_KEYS[:3] + TEXT_KEYS[:1] + ANSWER_KEYS[:1])}, …); "
                        f"keys: {sorted(map(str, row))[:12]}")
    _, raw_id = _first(row, ID_KEYS)
    item_id = str(raw_id).strip() if isinstance(raw_id, (str, int)) and str(raw_id).strip() else content_id(row)
    image_key, image_value = next(((k, row[k]) for k in IMAGE_KEYS if k in row), ("", None))
    _, raw_type = _first(row, TYPE_KEYS)
    raw_type = _scalar(raw_type, "type") if raw_type is not None else ""
    stem_key, stem_value = _first(row, STEM_KEYS)
    common = dict(item_id=item_id, declared_type=normalise_type(raw_type), raw_type=raw_type,
                  images=_images(image_value), carries_images=bool(image_key), source=source)
    if not stem_key:
        _, stem_value = _first(row, TEXT_KEYS)
        if not any(row.get(k) is not None for k in OPTION_KEYS + ANSWER_KEYS + EXPLANATION_KEYS):
            parts = split_text(_text_field(stem_value, "text"))
            return ExamItem(stem=parts.stem, options=parts.options, answer=parts.answer,
                            explanation=parts.explanation, layout=LAYOUT_TEXT, options_inline=bool(parts.options),
                            **common)
    stem = _text_field(stem_value, "stem") if stem_value is not None else ""
    _, options_value = _first(row, OPTION_KEYS)
    answer_key, answer_value = _first(row, ANSWER_KEYS)
    _, explanation_value = _first(row, EXPLANATION_KEYS)
    inline = split_text(stem)
    options = _options(options_value) if options_value is not None else inline.options
    answer_parts: tuple[str, ...] = ()
    if answer_value is None:
        answer = inline.answer
    elif isinstance(answer_value, Mapping):
        answer_parts = tuple(_scalar(v, "answer part") for v in answer_value.values() if v is not None)
        answer = "; ".join(answer_parts)
    elif isinstance(answer_value, (list, tuple)):
        answer_parts = tuple(_scalar(v, "answer part") for v in answer_value if v is not None)
        answer = "; ".join(answer_parts)
    else:
        answer = _scalar(answer_value, "answer")
    explanation = (_text_field(explanation_value, "explanation") if explanation_value is not None
                   else inline.explanation)
    if (options_value is None and inline.options) or inline.has_answer_mark or inline.has_explanation_mark:
        stem = inline.stem                 # options or a key were inline: the stem is what precedes them
    else:
        stem = _strip_numbering(stem)
    return ExamItem(stem=stem, options=options, answer=answer, answer_parts=answer_parts,
                    explanation=explanation, layout=LAYOUT_STRUCTURED,
                    options_inline=options_value is None and bool(inline.options), **common)


# ---- the rules -------------------------------------------------------------------------------

def _label_problems(options: Sequence[Option]) -> list[str]:
    reasons = []
    labels = [o.label for o in options]
    if len(set(labels)) != len(labels):
        reasons.append(DUPLICATE_LABELS)
    unique = list(dict.fromkeys(labels))
    numeric = all(l.isdigit() for l in unique)
    expected = [str(i + 1) for i in range(len(unique))] if numeric else _letters(len(unique))
    if sorted(unique, key=lambda l: (len(l), l)) != expected:
        reasons.append(LABELS_NOT_CONTIGUOUS)
    return reasons


def _item_type(item: ExamItem, labels: tuple[str, ...], blanks: int, underlined: bool) -> str:
    if item.options:
        if item.declared_type == MULTI_SELECT or (item.declared_type != MULTIPLE_CHOICE and len(labels) > 1):
            return MULTI_SELECT
        return MULTIPLE_CHOICE
    if item.declared_type:
        return item.declared_type
    if is_true_false(item.answer) and not item.answer_parts and not underlined:
        return TRUE_FALSE           # 判断题 end in （ ）; a ____ blank answered 对 is a fill-in
    if blanks:
        return FILL_IN_BLANK
    return FREE_RESPONSE


def check(item: ExamItem, config: ExamCheckConfig = PRESETS["default"],
          counter: Callable[[str], None] | None = None) -> ExamCheck:
    """The rules on one item -> ExamCheck. `counter(name)` is called once per reason and note
    (`reason_<code>`, `note_<code>`; the Beam shell passes a Metrics counter, tests a Counter).

    every item        missing_stem (< min_stem_chars content characters), missing_answer (empty
                      or a placeholder: 略, N/A, 见解析; a free-response item with a worked
                      solution is noted answer_in_solution instead), missing_explanation (a
                      reason only with require_explanation), figure_without_image (the stem
                      cites a figure, the schema has an image field, no image is attached)
    choice items      missing_options (declared choice, none given), too_few_options,
                      option_labels_not_contiguous (A B D; B C D), duplicate_option_labels,
                      empty_option_text, duplicate_option_texts (after folding case, width,
                      space and edge punctuation), answer_not_in_options (every letter of a
                      multi-select key), multiple_answers_single_choice (declared single choice
                      keyed with two letters), explanation_contradicts_answer (see
                      `explanation_labels`; a multi-select explanation naming a subset of the key
                      is partial, not a contradiction)
    fill-in-the-blank blank_answer_mismatch (no reading of the answer gives as many parts as
                      blanks: `answer_part_range`)
    true/false        invalid_true_false_answer
    """
    reasons: list[str] = []
    notes: list[str] = []
    has_answer = _present(item.answer, _EMPTY_ANSWERS) or any(_present(p, _EMPTY_ANSWERS) for p in item.answer_parts)
    has_explanation = _present(item.explanation, _EMPTY_EXPLANATIONS)
    labels = answer_labels(item.answer, item.options) if has_answer else ()
    spans = blank_spans(item.stem)
    blanks = len(spans)
    underlined = any(not fold(item.stem[a:b]).startswith("(") for a, b in spans)
    item_type = _item_type(item, labels, blanks, underlined)

    stem_chars = _content_chars(_BLANK.sub(" ", fold(item.stem)))
    if stem_chars < config.min_stem_chars:
        reasons.append(MISSING_STEM)
    if not has_answer:
        if item_type == FREE_RESPONSE and has_explanation:
            notes.append(NOTE_ANSWER_IN_SOLUTION)
        else:
            reasons.append(MISSING_ANSWER)
    if not has_explanation:
        (reasons if config.require_explanation else notes).append(MISSING_EXPLANATION)

    concluded: tuple[str, ...] = ()
    if item_type in CHOICE_TYPES:
        if not item.options:
            reasons.append(MISSING_OPTIONS)
        else:
            if len(item.options) < config.min_options:
                reasons.append(TOO_FEW_OPTIONS)
            reasons += _label_problems(item.options)
            norms = [_norm(o.text) for o in item.options]
            if not all(norms):
                reasons.append(EMPTY_OPTION)
            texts = [n for n in norms if n]
            if len(set(texts)) != len(texts):
                reasons.append(DUPLICATE_OPTION_TEXTS)
            option_labels = {o.label for o in item.options}
            if has_answer and (not labels or not set(labels) <= option_labels):
                reasons.append(ANSWER_NOT_IN_OPTIONS)
            if item_type == MULTIPLE_CHOICE and item.declared_type == MULTIPLE_CHOICE and len(labels) > 1:
                reasons.append(MULTIPLE_ANSWERS_SINGLE_CHOICE)
            if has_explanation:
                concluded = explanation_labels(item.explanation, config.conclusion_tail_chars)
                # multi-select: an explanation naming only some of the keyed letters ("Hence (A).")
                # is a partial statement, not a contradiction
                partial = item_type == MULTI_SELECT and set(concluded) < set(labels)
                if (concluded and labels and set(labels) <= option_labels and set(concluded) <= option_labels
                        and set(concluded) != set(labels) and not partial):
                    reasons.append(EXPLANATION_CONTRADICTS)

    fewest = most = 0
    if item_type == FILL_IN_BLANK:
        fewest, most = answer_part_range(item.answer, item.answer_parts)
        if not blanks:
            notes.append(NOTE_NO_BLANK_MARKER)
        elif has_answer and not fewest <= blanks <= most:
            reasons.append(BLANK_ANSWER_MISMATCH)
    if item_type == TRUE_FALSE and has_answer and not is_true_false(item.answer):
        reasons.append(INVALID_TRUE_FALSE)

    if config.check_figures and cites_figure(item.stem) and not item.images and not _INLINE_IMAGE.search(item.stem):
        (reasons if item.carries_images else notes).append(
            FIGURE_WITHOUT_IMAGE if item.carries_images else NOTE_FIGURE_UNVERIFIED)

    reasons = list(dict.fromkeys(reasons))
    needs_llm = not reasons and item_type == FILL_IN_BLANK and blanks >= config.llm_min_blanks
    if counter is not None:
        for name in reasons:
            counter(f"reason_{name}")
        for name in notes:
            counter(f"note_{name}")
    if item_type != FILL_IN_BLANK:
        blanks = 0                        # a choice item's （ ） is where the letter goes, not a blank
    return ExamCheck(FILTER if reasons else KEEP, tuple(reasons), item_type, tuple(notes), labels, concluded,
                     blanks, fewest, needs_llm)


# ---- the LLM completeness check (multi-part fill-in-the-blank) -------------------------------

@dataclass(frozen=True, slots=True)
class CompletenessConfig:
    """How a multi-part fill-in-the-blank item is shown to the LLM.

    - `prompt="exam_check@1"`: pinned, so rows stay explainable when the prompt changes.
    - `max_stem_chars=3000`, `max_answer_chars=800`, `max_explanation_chars=1200`: ~1.5k
      tokens of item at most, which with the ~450-token prompt and the answer fits the 4096-token
      context of the small CPU models; a stem longer than that is cut at a line (and the cut
      announced), never the answer's first parts.
    - `max_tokens=200`: the answer is one small JSON object; a few missing-part notes fit.
    """

    prompt: str = "exam_check@1"
    max_stem_chars: int = 3000
    max_answer_chars: int = 800
    max_explanation_chars: int = 1200
    max_tokens: int = 200

    def __post_init__(self) -> None:
        if "@" not in self.prompt:
            raise ConfigError(f"the exam check prompt must be pinned as id@version; got {self.prompt!r}")
        if min(self.max_stem_chars, self.max_answer_chars, self.max_explanation_chars) < 100 or self.max_tokens < 32:
            raise ConfigError("exam check cuts must be at least 100 characters and max_tokens at least 32")


@dataclass(frozen=True, slots=True)
class LlmCompleteness:
    item_id: str
    complete: bool
    missing: tuple[str, ...]
    prompt: str
    model: str


@dataclass(frozen=True, slots=True)
class LlmCheckFailure:
    """No usable answer: the client's error_reason (invalid_output, unavailable, rejected),
    `schema` when an ok answer broke the contract, `llm_exception` when RunInference raised."""

    item_id: str
    reason: str
    message: str
    prompt: str = ""
    model: str = ""


@functools.lru_cache(maxsize=8)
def load_prompt(ref: str) -> Any:
    """The pinned prompt file (`scicurate.prompts.Prompt`), loaded once per process."""
    from scicurate import prompts

    return prompts.load(ref)


def _cut(text: str, limit: int) -> tuple[str, bool]:
    from scicurate.classifiers.triage import cut_text

    return cut_text(text, limit)


def item_json(item: ExamItem, check_: ExamCheck, config: CompletenessConfig = CompletenessConfig()) -> str:
    """The item as one JSON object (the only place item text enters the prompt): stem with
    numbered blanks, the answer as written and split, the explanation. `json.dumps` escapes
    quotes and line breaks, so nothing in an item can end the value."""
    stem, blanks = number_blanks(item.stem)
    stem, stem_cut = _cut(stem, config.max_stem_chars)
    answer, _ = _cut(item.answer, config.max_answer_chars)
    explanation, _ = _cut(item.explanation, config.max_explanation_chars)
    parts = list(item.answer_parts) if len(item.answer_parts) > 1 else []
    data = {"stem": stem, "blanks": blanks, "answer": answer, "answer_parts": parts, "explanation": explanation}
    if stem_cut:
        data["note"] = "the stem was cut for length; judge the blanks shown"
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def completeness_request(item: ExamItem, check_: ExamCheck,
                         config: CompletenessConfig = CompletenessConfig()) -> Any:
    """The ChatRequest asking whether every blank of a multi-part item has its answer part."""
    from scicurate.llm.client import ChatRequest

    prompt = load_prompt(config.prompt)
    if prompt.output != "json" or not prompt.output_schema:
        raise ConfigError(f"{prompt.ref} is not a json prompt; the exam check needs exam_check@N")
    user = prompt.render_user(item=item_json(item, check_, config), blanks=str(check_.blanks))
    messages = ([{"role": "system", "content": prompt.system}] if prompt.system else []) + \
        [{"role": "user", "content": user}]
    return ChatRequest(key=item.item_id, messages=tuple(messages), prompt=prompt.ref,
                       json_schema=prompt.output_schema, max_tokens=config.max_tokens)


def _answer_problems(data: Any) -> tuple[str, ...]:
    if not isinstance(data, Mapping):
        return (f"not an object: {type(data).__name__}",)
    if set(data) != {"complete", "missing"}:
        return (f"keys {sorted(map(str, data))}, expected ['complete', 'missing']",)
    if not isinstance(data["complete"], bool):
        return ("complete is not a boolean",)
    missing = data["missing"]
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing) or len(missing) > 10:
        return ("missing is not a list of at most 10 strings",)
    return ()


def completeness_from_result(result: Any) -> LlmCompleteness | LlmCheckFailure:
    """A ChatResult -> LlmCompleteness, or LlmCheckFailure with the client's error_reason, or
    `schema` when an ok answer breaks the contract (checked again here, never assumed)."""
    if not result.ok:
        return LlmCheckFailure(result.key, result.error_reason or "failed", result.error_message[:2000],
                               result.prompt, result.model)
    data = result.data
    if data is None:
        try:
            data = json.loads(result.text)
        except (json.JSONDecodeError, RecursionError) as exc:
            return LlmCheckFailure(result.key, "schema", f"not json: {exc}", result.prompt, result.model)
    problems = _answer_problems(data)
    if problems:
        return LlmCheckFailure(result.key, "schema", "; ".join(problems)[:2000], result.prompt, result.model)
    missing = tuple(m.strip()[:200] for m in data["missing"] if m.strip())
    return LlmCompleteness(result.key, data["complete"], missing, result.prompt, result.model)


def apply_completeness(check_: ExamCheck, answer: LlmCompleteness | LlmCheckFailure | None) -> ExamCheck:
    """The cheap stage after the LLM: `complete: false` filters the item (`llm_incomplete`);
    no usable answer keeps it with the note `llm_unchecked:<reason>` (the rules passed it, and
    a server's trouble is not a property of the item; the note selects it for a re-run). None:
    the check was turned off (`llm_unchecked:disabled`)."""
    import dataclasses

    if isinstance(answer, LlmCompleteness):
        if answer.complete:
            return dataclasses.replace(check_, needs_llm=False)
        return dataclasses.replace(check_, verdict=FILTER, reasons=check_.reasons + (LLM_INCOMPLETE,), needs_llm=False)
    why = answer.reason if isinstance(answer, LlmCheckFailure) else "disabled"
    return dataclasses.replace(check_, notes=check_.notes + (f"{NOTE_LLM_UNCHECKED}:{why}",), needs_llm=False)


# ---- the kept item as training text ----------------------------------------------------------

def render_text(item: ExamItem) -> str:
    """The item as one canonical text: stem, options one per line, answer, explanation; the
    section words follow the item's language (答案/解析 when the stem has CJK)."""
    zh = bool(_HAS_CJK.search(item.stem))
    lines = [item.stem.strip()]
    lines += [f"{o.label}. {o.text}" if o.label else o.text for o in item.options]
    if _present(item.answer, _EMPTY_ANSWERS):
        lines.append(("答案：" if zh else "Answer: ") + item.answer.strip())
    if _present(item.explanation, _EMPTY_EXPLANATIONS):
        lines.append(("解析：" if zh else "Explanation: ") + item.explanation.strip())
    return "\n".join(line for line in lines if line)


__all__ = [
    "ExamCheck", "ExamCheckConfig", "ExamItem", "ItemError", "Option", "PRESETS", "REASONS", "ITEM_TYPES",
    "CompletenessConfig", "LlmCheckFailure", "LlmCompleteness", "answer_labels", "answer_part_range",
    "apply_completeness", "check", "cites_figure", "completeness_from_result", "completeness_request",
    "count_blanks", "explanation_labels", "fold", "item_json", "normalise_type", "number_blanks", "parse_item",
    "render_text", "split_options", "split_text",
]
