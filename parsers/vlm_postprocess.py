"""Rule-based clean-up of the HIGH-COST (VLM) page parser's Markdown + LaTeX output.

A VLM (Qwen2.5-VL / olmOCR / InternVL class) transcribes one page image into Markdown with
LaTeX math. It fails in known ways: it loops until max_tokens, wraps its answer in a ```markdown
fence, opens with a chat line ("Here is the transcription:"), writes `\\( \\)` / `\\[ \\]` math,
stops mid-equation, invents running headers the page does not have, refuses, or says nothing.

`clean_vlm_markdown(raw, finish_reason=..., text_layer=..., running_lines=...)` applies the rules
below in this order and says which changed the text, then decides whether what is left is
usable (`problems`, empty = usable). The rules fix what can be fixed without the image; the
problems tell the caller to retry or fall back (the low-cost text stays). Nothing here knows
about Beam, and no rule touches fenced code blocks or inline `code` spans.

Rules (stable names, in `VLM_RULES`):
- `strip_preamble`: a leading chat line ("Sure! Here is the Markdown transcription:").
- `strip_fences`: one ``` / ```markdown / ```md / ```latex fence pair around the whole output
  (or an opening markdown fence never closed because the output was cut).
- `repetition`: a loop running to the end is cut after its first copy, an interior one
  collapsed to one copy (`scicurate.llm.repetition.truncate_loop`).
- `math_delimiters`: `\\(x\\)` -> `$x$`, `\\[x\\]` -> `$$` / `x` / `$$` on their own lines.
- `close_environments`: an unclosed `\\begin{env}` in the last paragraph of the output gets its
  `\\end{env}`; an `\\end{env}` with no `\\begin` is removed.
- `balance_dollars`: an unterminated last `$$` block gets its closing `$$`.
- `drop_running_lines`: up to 2 short lines at each end of the page that are a known running
  header/footer, a bare page number, or (given the text layer) mostly words the page lacks.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from scicurate.llm.repetition import Loop, truncate_loop

RULE_STRIP_PREAMBLE = "strip_preamble"
RULE_STRIP_FENCES = "strip_fences"
RULE_REPETITION = "repetition"
RULE_MATH_DELIMITERS = "math_delimiters"
RULE_CLOSE_ENVIRONMENTS = "close_environments"
RULE_BALANCE_DOLLARS = "balance_dollars"
RULE_DROP_RUNNING_LINES = "drop_running_lines"

# Every rule, in the order applied.
VLM_RULES = (
    RULE_STRIP_PREAMBLE,
    RULE_STRIP_FENCES,
    RULE_REPETITION,
    RULE_MATH_DELIMITERS,
    RULE_CLOSE_ENVIRONMENTS,
    RULE_BALANCE_DOLLARS,
    RULE_DROP_RUNNING_LINES,
)

# Why an output is unusable: stable codes, written with the page and used as counter names.
PROBLEM_EMPTY = "empty"                      # nothing but whitespace (after the rules)
PROBLEM_REFUSAL = "refusal"                  # "I'm sorry, I can't ..."
PROBLEM_REPETITION_LOOP = "repetition_loop"  # a loop ate most of the output
PROBLEM_TRUNCATED = "truncated"              # finish_reason "length" and no loop explains it
PROBLEM_UNBALANCED_MATH = "unbalanced_math"  # odd `$` count, or unbalanced `{}` inside math
PROBLEM_UNBALANCED_ENV = "unbalanced_env"    # \begin{x} and \end{x} counts differ

VLM_PROBLEMS = (
    PROBLEM_EMPTY,
    PROBLEM_REFUSAL,
    PROBLEM_REPETITION_LOOP,
    PROBLEM_TRUNCATED,
    PROBLEM_UNBALANCED_MATH,
    PROBLEM_UNBALANCED_ENV,
)

# After a loop is removed the page is only worth keeping if a fair share of the output was real:
# below 30% of the raw characters, or 50 characters, the model looped almost from the start.
LOOP_MIN_KEPT_SHARE = 0.3
LOOP_MIN_KEPT_CHARS = 50

# Running headers/footers are short lines: a journal name, an author list, "Page 3 of 12".
RUNNING_LINE_MAX_CHARS = 80
EDGE_LINES = 2  # how many non-empty lines at each end of a page can be a running line
# A line is hallucinated when more than half of its words are not on the page's text layer; a
# text layer with fewer words than this is too thin to judge by (a figure page, a bad scan).
MOSTLY_ABSENT_SHARE = 0.5
MIN_TEXT_LAYER_WORDS = 20

# Refusals are short; a long output that quotes "I cannot" is a page, not a refusal.
REFUSAL_MAX_CHARS = 500


@dataclass(frozen=True, slots=True)
class VlmCleanResult:
    """One VLM page output after the rules.

    `rules` names, in `VLM_RULES` order, each rule that changed the text; `problems` says, in
    `VLM_PROBLEMS` order, why the result is unusable (empty = usable); `loop` is True when a
    repetition loop was found and removed.
    """

    markdown: str
    rules: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    loop: bool = False

    def __post_init__(self) -> None:
        unknown = (set(self.rules) - set(VLM_RULES)) | (set(self.problems) - set(VLM_PROBLEMS))
        if unknown:
            raise ValueError(f"unknown rules or problems {sorted(unknown)}")
        if len(set(self.rules)) != len(self.rules) or len(set(self.problems)) != len(self.problems):
            raise ValueError(f"duplicate rules or problems in {self.rules} / {self.problems}")

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------------------------------
# Code: fenced blocks and inline spans are content; no rule rewrites them.

_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})(.*)$")
_INLINE_CODE_RE = re.compile(r"(`+)[^`\n].*?(?<!`)\1(?!`)")


def _code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of fenced code blocks (fence lines included) and inline code spans."""
    spans: list[tuple[int, int]] = []
    fence = ""
    block_start = 0
    prose_start = 0
    offset = 0
    for line in text.splitlines(keepends=True):
        match = _FENCE_RE.match(line.rstrip("\n"))
        if not fence:
            # A backtick fence's info string cannot hold a backtick (CommonMark).
            if match and (match.group(1)[0] == "~" or "`" not in match.group(2)):
                spans.extend(_inline_spans(text, prose_start, offset))
                fence, block_start = match.group(1), offset
        elif (match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)
              and not match.group(2).strip()):
            spans.append((block_start, offset + len(line)))
            fence, prose_start = "", offset + len(line)
        offset += len(line)
    if fence:  # never closed: the block runs to the end
        spans.append((block_start, len(text)))
    else:
        spans.extend(_inline_spans(text, prose_start, len(text)))
    return spans


def _inline_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _INLINE_CODE_RE.finditer(text, start, end)]


def _prose_chunks(text: str) -> list[tuple[bool, str]]:
    """`text` cut into (is_code, chunk) pieces that join back to `text`."""
    chunks: list[tuple[bool, str]] = []
    pos = 0
    for start, end in _code_spans(text):
        if start > pos:
            chunks.append((False, text[pos:start]))
        chunks.append((True, text[start:end]))
        pos = end
    if pos < len(text):
        chunks.append((False, text[pos:]))
    return chunks


def _prose_matches(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    """Matches of `pattern` in `text` that start outside code."""
    spans = _code_spans(text)
    return [m for m in pattern.finditer(text)
            if not any(start <= m.start() < end for start, end in spans)]


def _prose_only(text: str) -> str:
    """`text` with code replaced by paragraph breaks, for counting delimiters."""
    return "".join("\n\n" if is_code else chunk for is_code, chunk in _prose_chunks(text))


_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")

# ---------------------------------------------------------------------------------------------
# Rules. Each takes and returns the page text; `clean_vlm_markdown` records which changed it.

_PREAMBLE_RE = re.compile(
    r"""^\s*(?:
        (?:sure|certainly|of\ course|okay|absolutely)[!,.][^\n]{0,200}
      | (?:here\ is|here\ are|here['’]s|below\ is|the\ following\ is)\b[^\n]{0,200}?
        (?:transcri|markdown|text|content|conversion|ocr|extract|page|image|document)[^\n]{0,120}:
    )[ \t]*(?:\n|$)""",
    re.IGNORECASE | re.VERBOSE,
)


def strip_preamble(text: str) -> str:
    """Drop up to two leading chat lines ("Sure!" then "Here is the Markdown of the page:").

    A "here is" line must name what it introduces (transcription, Markdown, text, page, ...) and
    end in a colon, so a page that starts "Here is a proof." keeps its first line.
    """
    for _ in range(2):
        match = _PREAMBLE_RE.match(text)
        if match is None:
            break
        text = text[match.end():].lstrip("\n")
    return text


_WRAPPER_RE = re.compile(r"^(`{3,}|~{3,})[ \t]*(markdown|md|latex|tex|text)?[ \t]*$", re.IGNORECASE)
_CODE_LINE_RE = re.compile(r";\s*$|^\s*(?:def |class |import |from \S+ import |#include|return\b)")
_BRACE_END_RE = re.compile(r"[{}]\s*$")


def _looks_like_code(lines: Sequence[str]) -> bool:
    """Half or more of the lines end in ; { } or start like Python/C: a real code listing.

    A line ending in a brace counts only without a backslash: `\\end{aligned}` is LaTeX.
    """
    body = [line for line in lines if line.strip()]
    code = sum(bool(_CODE_LINE_RE.search(line))
               or ("\\" not in line and bool(_BRACE_END_RE.search(line))) for line in body)
    return bool(body) and code * 2 >= len(body)


def strip_fences(text: str) -> str:
    """Remove one fence pair that wraps the whole output; keep code blocks that are content.

    The first non-empty line must be a fence (bare or marked markdown/md/latex/tex/text) and the
    last one its closing fence, with the fences between them pairing up. A bare fence around
    something that reads as code (most lines end in ; { }) is a code page and is kept. An opening
    markdown fence without any closing fence is the wrapper of an output cut by max_tokens.
    """
    lines = text.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if not filled:
        return text
    first, last = filled[0], filled[-1]
    opening = _WRAPPER_RE.match(lines[first].strip())
    if opening is None:
        return text
    fence, language = opening.group(1), opening.group(2)
    closer = lines[last].strip()
    closed = (last > first and closer.startswith(fence[0] * len(fence))
              and not closer.strip(fence[0]))
    inner = lines[first + 1:last] if closed else lines[first + 1:]
    inner_fences = sum(bool(_FENCE_RE.match(line)) for line in inner)
    if closed and inner_fences % 2:
        return text  # the last fence closes a block that opened inside: not a wrapper
    if not closed and (language is None or inner_fences % 2):
        return text  # a bare unclosed fence may be a truncated code listing
    if language is None and _looks_like_code(inner):
        return text
    return "\n".join(inner).strip("\n")


def remove_repetition(text: str) -> tuple[str, Loop | None]:
    """Cut a tail loop after its first copy, collapse interior loops (see `truncate_loop`)."""
    return truncate_loop(text)


_DELIMITER_RE = re.compile(r"\\\\|\\[\[\]()]")  # `\\` first, so `\\[2pt]` is a line break


def _convert_delimiters(chunk: str, *, at_end: bool) -> str:
    out: list[str] = []
    pos = 0
    opener: re.Match[str] | None = None
    for match in _DELIMITER_RE.finditer(chunk):
        token = match.group()
        if token in ("\\(", "\\["):
            opener = match  # a second opener before a closer: the first was stray
            continue
        if opener is None or token == "\\\\" or token[1] != {"(": ")", "[": "]"}[opener.group()[1]]:
            continue
        body = chunk[opener.end():match.start()].strip()
        if not body or _BLANK_LINE_RE.search(body):
            opener = None  # empty, or spans paragraphs: not a formula we can trust
            continue
        before = chunk[pos:opener.start()]
        if opener.group() == "\\(":
            out.append(f"{before}${body}$")
            pos = match.end()
        else:
            line_start = chunk.rfind("\n", 0, opener.start()) + 1
            before = before.rstrip(" \t")
            if chunk[line_start:opener.start()].strip():
                before += "\n"
            line_end = chunk.find("\n", match.end())
            line_end = len(chunk) if line_end == -1 else line_end
            rest_of_line = chunk[match.end():line_end]
            out.append(f"{before}$$\n{body}\n$$")
            if rest_of_line.strip():
                out.append("\n")
                pos = match.end() + len(rest_of_line) - len(rest_of_line.lstrip(" \t"))
            else:
                pos = line_end
        opener = None
    rest = chunk[pos:]
    if (at_end and opener is not None and opener.group() == "\\[" and opener.start() >= pos
            and not _BLANK_LINE_RE.search(chunk[opener.end():].rstrip())):
        # The output was cut inside a display formula: open it the Markdown way, and let
        # balance_dollars close it.
        before = chunk[pos:opener.start()].rstrip(" \t")
        if before and not before.endswith("\n"):
            before += "\n"
        body = chunk[opener.end():].lstrip(" \t")
        rest = before + "$$\n" + (body[1:] if body.startswith("\n") else body)
    out.append(rest)
    return "".join(out)


def convert_math_delimiters(text: str) -> str:
    """`\\(x\\)` -> `$x$` and `\\[x\\]` -> `$$` / `x` / `$$` on their own lines, outside code.

    `\\\\` is read first, so `\\\\[2pt]` (a line break with spacing in an aligned formula) is not
    a display opener; a pair whose body is empty or spans a blank line is left alone. A `\\[`
    left open in the last paragraph (the output was cut inside it) becomes an opening `$$`.
    """
    chunks = _prose_chunks(text)
    return "".join(chunk if is_code else _convert_delimiters(chunk, at_end=i == len(chunks) - 1)
                   for i, (is_code, chunk) in enumerate(chunks))


_ENV_RE = re.compile(r"\\(begin|end)\{([A-Za-z]+\*?)\}")


def close_environments(text: str) -> str:
    """Close environments the output was cut inside; drop `\\end{x}` that close nothing.

    Only an environment opened in the last paragraph is closed (nothing but its own body after
    it): appending `\\end{x}` to a page whose `\\begin{x}` sits paragraphs earlier would pull
    prose into the formula. Those stay unbalanced and are reported.
    """
    stack: list[re.Match[str]] = []
    orphans: list[re.Match[str]] = []
    for match in _prose_matches(_ENV_RE, text):
        kind, name = match.group(1), match.group(2)
        if kind == "begin":
            stack.append(match)
        elif any(opened.group(2) == name for opened in stack):
            while stack.pop().group(2) != name:
                pass  # inner environments left open here stay unbalanced
        else:
            orphans.append(match)
    unclosed = [m for m in stack if not _BLANK_LINE_RE.search(text[m.end():].rstrip())]
    for match in reversed(orphans):
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line_end = len(text) if line_end == -1 else line_end
        if (text[line_start:match.start()] + text[match.end():line_end]).strip():
            end = match.end()
            if text[match.start() - 1:match.start()] == " " and text[end:end + 1] == " ":
                end += 1  # "a \end{x} b" -> "a b"
            text = text[:match.start()] + text[end:]
        else:  # the orphan was alone on its line: remove the line
            text = text[:line_start] + text[min(line_end + 1, len(text)):]
    for match in reversed(unclosed):
        text = text.rstrip() + f"\n\\end{{{match.group(2)}}}"
    return text


_DISPLAY_DOLLARS_RE = re.compile(r"(?<!\\)\$\$")


def balance_dollars(text: str) -> str:
    """Close the last `$$` block when the output stopped inside it.

    With an odd number of `$$`, the last one is taken as the unterminated opener only if no blank
    line follows it (the output ended inside the formula); a `$$` with nothing after it is
    dropped. An unpaired `$$` earlier on the page is left for `problems` to report.
    """
    marks = _prose_matches(_DISPLAY_DOLLARS_RE, text)
    if len(marks) % 2 == 0:
        return text
    last = marks[-1]
    after = text[last.end():].rstrip()
    if not after.strip():
        return text[:last.start()].rstrip()
    if _BLANK_LINE_RE.search(after):
        return text
    return text.rstrip() + "\n$$"


_DIGITS_RE = re.compile(r"\d+")
_MARKUP_EDGE_RE = re.compile(r"^[#>*_\s]+|[*_\s]+$")
_PAGE_NUMBER_RE = re.compile(
    r"""^(?:(?:page|p\.|pp\.|seite|s\.)\s*)?[-–—]?\s*
        (?P<num>\d{1,5}|[ivxlcdm]{1,8})\s*[-–—]?(?:\s*(?:/|of)\s*\d{1,5})?$""",
    re.IGNORECASE | re.VERBOSE,
)
_ROMAN_RE = re.compile(r"^m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})$")
_WORD_RE = re.compile(r"[^\W\d_]{2,}|\d+")


def _bare(line: str) -> str:
    """A line without heading marks, quote marks and emphasis around it, NFKC-normalised."""
    return _MARKUP_EDGE_RE.sub("", unicodedata.normalize("NFKC", line))


def _running_key(line: str) -> str:
    """Case-, whitespace- and number-blind form: "Page 3" and "page  12" give the same key."""
    return " ".join(_DIGITS_RE.sub("#", _bare(line).casefold()).split())


def _is_page_number(line: str) -> bool:
    match = _PAGE_NUMBER_RE.match(_bare(line))
    if match is None:
        return False
    numeral = match.group("num")
    return numeral.isdigit() or bool(_ROMAN_RE.match(numeral.lower()))


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).casefold())


def _layer_vocabulary(text_layer: str) -> set[str] | None:
    """The text layer's words, hyphenated line ends joined; None when too thin to judge by."""
    joined = re.sub(r"[-\u00ad\ufffe]\s*\n\s*", "", text_layer)
    words = _words(joined)
    if len(words) < MIN_TEXT_LAYER_WORDS:
        return None
    return set(words) | set(_words(text_layer))


def _prose_lines(lines: Sequence[str]) -> list[bool]:
    """Which lines are plain prose: not code, not display math, not table rows or images."""
    prose = [False] * len(lines)
    fence = ""
    in_math = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        match = _FENCE_RE.match(line)
        if fence:
            if match and match.group(1)[0] == fence[0] and not match.group(2).strip():
                fence = ""
            continue
        if match:
            fence = match.group(1)
            continue
        if stripped.startswith("$$"):
            in_math = not in_math if stripped == "$$" else in_math
            continue
        if in_math or stripped.startswith(("|", "![", "<", "\\")):
            continue
        prose[i] = True
    return prose


def drop_running_lines(text: str, running_lines: Iterable[str] = (), text_layer: str = "") -> str:
    """Remove running headers/footers and page numbers from the edges of one page.

    Looks at the first and last `EDGE_LINES` non-empty lines, from the edge inwards, stopping at
    the first line that stays. A line goes when it is at most `RUNNING_LINE_MAX_CHARS` long, is
    prose (not code, math, a table row) and: equals one of `running_lines` ignoring case, spacing
    and numbers; or is a bare page number ("12", "- 12 -", "Page 3 of 9", "xii"); or, when a
    `text_layer` of at least `MIN_TEXT_LAYER_WORDS` words is given, more than half its words are
    not on it (the VLM invented a journal header the page does not carry).
    """
    keys = {key for key in map(_running_key, running_lines) if key}
    vocabulary = _layer_vocabulary(text_layer) if text_layer.strip() else None
    lines = text.split("\n")
    prose = _prose_lines(lines)

    def running(i: int) -> bool:
        line = lines[i].strip()
        if not prose[i] or len(line) > RUNNING_LINE_MAX_CHARS:
            return False
        if _running_key(line) in keys or _is_page_number(line):
            return True
        if vocabulary is None or "$" in line:
            return False
        words = _words(_bare(line))
        absent = sum(word not in vocabulary for word in words)
        return bool(words) and absent > MOSTLY_ABSENT_SHARE * len(words)

    filled = [i for i, line in enumerate(lines) if line.strip()]
    removed: set[int] = set()
    for i in filled[:EDGE_LINES]:
        if not running(i):
            break
        removed.add(i)
    for i in reversed(filled[-EDGE_LINES:]):
        if i in removed or not running(i):
            break
        removed.add(i)
    if not removed:
        return text
    kept = [i for i in filled if i not in removed]
    if not kept:
        return ""
    return "\n".join(lines[kept[0]:kept[-1] + 1])


# ---------------------------------------------------------------------------------------------
# Problems.

_REFUSAL_START_RE = re.compile(
    r"^\W*(?:i['’]m sorry|i am sorry|sorry,|i apologi[sz]e|i can(?:not|['’]t)|i am unable|"
    r"i['’]m unable|i am not able|i['’]m not able|as an ai\b)",
    re.IGNORECASE,
)
_REFUSAL_ANYWHERE_RE = re.compile(
    r"\b(?:can(?:not|['’]t)|unable to|not able to)\s+(?:transcribe|read|process|help|assist|"
    r"extract|provide|comply|see)\b",
    re.IGNORECASE,
)


def _is_refusal(text: str) -> bool:
    stripped = text.strip()
    if len(stripped) > REFUSAL_MAX_CHARS:
        return False
    return bool(_REFUSAL_START_RE.match(stripped) or _REFUSAL_ANYWHERE_RE.search(stripped))


_ESCAPED_BRACE_RE = re.compile(r"\\[{}]")
_DISPLAY_MATH_RE = re.compile(r"(?<!\\)\$\$(.*?)(?<!\\)\$\$", re.DOTALL)
_INLINE_MATH_RE = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$")
_DOLLAR_RE = re.compile(r"(?<!\\)\$")
# "$5", "US$ 10", "($3.2M)": a dollar before a number and not closing a formula is money.
_CURRENCY_RE = re.compile(r"(?<![\w$])\$\s?\d[\d,.]*(?![\d^_{])")


def _braces_balanced(math: str) -> bool:
    depth = 0
    for ch in _ESCAPED_BRACE_RE.sub("", math.replace("\\\\", "  ")):
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return False
    return depth == 0


def _math_unbalanced(text: str) -> bool:
    """An odd `$$` or `$` count outside code, or unbalanced `{}` inside any formula.

    Inline math never crosses a blank line, so `$` is counted per paragraph; a paragraph whose odd
    count is explained by a currency amount ("$5") is not a math error.
    """
    prose = _prose_only(text)
    if len(_DISPLAY_DOLLARS_RE.findall(prose)) % 2:
        return True
    if not all(_braces_balanced(m.group(1)) for m in _DISPLAY_MATH_RE.finditer(prose)):
        return True
    for paragraph in _BLANK_LINE_RE.split(_DISPLAY_MATH_RE.sub(" ", prose)):
        if len(_DOLLAR_RE.findall(paragraph)) % 2:
            if not _CURRENCY_RE.search(paragraph):
                return True
            continue
        if not all(_braces_balanced(m.group(1)) for m in _INLINE_MATH_RE.finditer(paragraph)):
            return True
    return False


def _env_unbalanced(text: str) -> bool:
    counts: Counter[tuple[str, str]] = Counter(
        (m.group(1), m.group(2)) for m in _prose_matches(_ENV_RE, text))
    names = {name for _, name in counts}
    return any(counts["begin", name] != counts["end", name] for name in names)


def _problems(raw: str, markdown: str, loop: Loop | None, finish_reason: str) -> tuple[str, ...]:
    if not markdown.strip():
        return (PROBLEM_EMPTY,)
    found: list[str] = []
    if _is_refusal(markdown):
        found.append(PROBLEM_REFUSAL)
    kept = len(markdown.strip())
    if loop is not None and (kept < LOOP_MIN_KEPT_SHARE * len(raw.strip())
                             or kept < LOOP_MIN_KEPT_CHARS):
        found.append(PROBLEM_REPETITION_LOOP)
    if finish_reason == "length" and loop is None:
        found.append(PROBLEM_TRUNCATED)
    if _math_unbalanced(markdown):
        found.append(PROBLEM_UNBALANCED_MATH)
    if _env_unbalanced(markdown):
        found.append(PROBLEM_UNBALANCED_ENV)
    return tuple(found)


def clean_vlm_markdown(raw: str, *, finish_reason: str = "stop", text_layer: str = "",
                       running_lines: Sequence[str] = ()) -> VlmCleanResult:
    """Apply the VLM rules to one page's raw model output and say whether it is usable.

    `finish_reason` is the server's ("stop", "length", ...): "length" without a loop means the
    page was cut. `text_layer` is the page's PDF text, given only when it can be trusted (it
    enables the hallucinated-header check); `running_lines` are the document's known running
    headers/footers. Problems are computed on the cleaned text, except the loop share, which
    compares it with `raw`.
    """
    fired: list[str] = []

    def apply(rule: str, text: str, new: str) -> str:
        if new != text:
            fired.append(rule)
        return new

    text = apply(RULE_STRIP_PREAMBLE, raw, strip_preamble(raw))
    text = apply(RULE_STRIP_FENCES, text, strip_fences(text))
    cut, loop = remove_repetition(text)
    text = apply(RULE_REPETITION, text, cut)
    text = apply(RULE_MATH_DELIMITERS, text, convert_math_delimiters(text))
    text = apply(RULE_CLOSE_ENVIRONMENTS, text, close_environments(text))
    text = apply(RULE_BALANCE_DOLLARS, text, balance_dollars(text))
    text = apply(RULE_DROP_RUNNING_LINES, text,
                 drop_running_lines(text, running_lines=running_lines, text_layer=text_layer))
    return VlmCleanResult(markdown=text, rules=tuple(fired),
                          problems=_problems(raw, text, loop, finish_reason), loop=loop is not None)
