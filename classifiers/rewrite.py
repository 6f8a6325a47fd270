"""The rewrite pass for web domains triaged "rewrite": an LLM cleans a page, rules check it.

Pure cores (no Beam):

    rewrite_request(page_id, text, config) -> ChatRequest (`rewrite@1`), or None when the page
                                              is not rewritten (`skip_reason`: too_long, empty)
    check_rewrite(source, rewritten, config) -> RewriteCheck: whether the answer may replace the
                                              page, with the measurements and reason codes
    rewrite_validator(source, config)        -> the same check as the client's validator, so a
                                              failed answer is retried at a warmer temperature

The model may only change the form. What a rewrite must keep is measured on the text itself:
its length relative to the source, the source's numbers and named entities (recall), and the
numbers it invents. A rewrite that fails keeps the source page, flagged with the reasons.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Sequence

from scicurate.config import ConfigError
from scicurate.llm.client import ChatRequest

from .triage import load_prompt, page_json, render_messages

# Reason codes of RewriteCheck / skip_reason (stable: they end up in rows and counters).
EMPTY = "empty"
TOO_LONG = "too_long"
TRUNCATED = "truncated"              # the model stopped at max_tokens
LENGTH_RATIO_LOW = "length_ratio_low"
LENGTH_RATIO_HIGH = "length_ratio_high"
NUMBERS_LOST = "numbers_lost"
NUMBERS_ADDED = "numbers_added"
ENTITIES_LOST = "entities_lost"
REFUSAL = "refusal"
PROMPT_ECHO = "prompt_echo"
PREAMBLE = "preamble"                # "Here is the cleaned page:" before the content


@dataclass(frozen=True, slots=True)
class RewriteConfig:
    """What the rewrite may do to a page.

    - `max_input_chars=8000`: ~2k tokens in and about as many out; longer pages stay as they are
      (`too_long`): one answer that long is slow and more likely to drop a passage.
    - `min_length_ratio=0.5`: removing residue from a page of a badly-formed domain rarely halves
      it; less than half left means content went with it (or the answer was cut).
    - `max_length_ratio=1.3`: repairs (fences, LaTeX) add a little; 30% more is added text.
    - `min_number_recall=0.9`: numbers are facts; 10% slack covers pagination and dates in
      the navigation and footers the rewrite is meant to remove.
    - `min_entity_recall=0.7`: entities (see `entities`) also occur in menus ("Home", "Login"),
      so more slack than for numbers.
    - `max_new_numbers=2`: distinct numbers of two or more characters the source does not have;
      a repaired formula may gain a digit (`x²` is `x^2`, counted equal), a fact may not.
    - `max_tokens=2048`: the cleaned page is at most about the source's ~2k tokens.
    """

    prompt: str = "rewrite@1"
    max_input_chars: int = 8000
    min_length_ratio: float = 0.5
    max_length_ratio: float = 1.3
    min_number_recall: float = 0.9
    min_entity_recall: float = 0.7
    max_new_numbers: int = 2
    max_tokens: int = 2048

    def __post_init__(self) -> None:
        if "@" not in self.prompt:
            raise ConfigError(f"rewrite prompt must be pinned as id@version; got {self.prompt!r}")
        if self.max_input_chars < 1:
            raise ConfigError("rewrite max_input_chars must be at least 1")
        if not 0.0 <= self.min_length_ratio <= 1.0 <= self.max_length_ratio:
            raise ConfigError("need 0 <= min_length_ratio <= 1 <= max_length_ratio")
        if not (0.0 <= self.min_number_recall <= 1.0 and 0.0 <= self.min_entity_recall <= 1.0):
            raise ConfigError("number and entity recall thresholds are shares in [0, 1]")
        if self.max_new_numbers < 0 or self.max_tokens < 1:
            raise ConfigError("max_new_numbers must be >= 0 and max_tokens >= 1")


@dataclass(frozen=True, slots=True)
class RewriteCheck:
    """The rule check of one rewrite. `ok` is true exactly when `reasons` is empty."""

    ok: bool
    reasons: tuple[str, ...]
    length_ratio: float
    number_recall: float
    entity_recall: float
    new_numbers: int

    def __post_init__(self) -> None:
        if self.ok != (not self.reasons):
            raise ValueError("a RewriteCheck is ok exactly when it has no reasons")


# ---- the request ---------------------------------------------------------------------------

def skip_reason(text: str, config: RewriteConfig = RewriteConfig()) -> str:
    """Why a page is not sent to the rewrite model ("" = it is)."""
    if not text.strip():
        return EMPTY
    if len(text) > config.max_input_chars:
        return TOO_LONG
    return ""


def rewrite_request(page_id: str, text: str, config: RewriteConfig = RewriteConfig()) -> ChatRequest | None:
    """The rewrite request for one page (its text as one JSON-encoded data value), or None
    when `skip_reason` says the page stays as it is."""
    if skip_reason(text, config):
        return None
    prompt = load_prompt(config.prompt)
    return ChatRequest(key=page_id, messages=render_messages(prompt, page=page_json(text=text)),
                       prompt=prompt.ref, max_tokens=config.max_tokens)


# ---- measuring a rewrite -------------------------------------------------------------------

# A number: digits with optional thousands groups ("1,000" = "1000") and decimals ("3.14").
_NUMBER = re.compile(r"(?<!\d)(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?")
_WORD = re.compile(r"\w+(?:[-'’.]\w+)*")
_SKIP_BEFORE_WORD = " \t\"'“‘([*#>|-"
_FENCE_OPEN = re.compile(r"^```[ \t]*(?:markdown|md|text)?[ \t]*\n", re.IGNORECASE)
_REFUSAL = re.compile(
    r"^\W*(?:i['’]?m sorry|i am sorry|sorry,|i apologi[sz]e|as an ai\b|i cannot\b|i can['’]?t\b|"
    r"i can not\b|i['’]?m (?:not able|unable)|i am (?:not able|unable)|unfortunately,? i\b)", re.IGNORECASE)
_AS_AN_AI = re.compile(r"\bas an ai(?: language)? model\b", re.IGNORECASE)
_PREAMBLE = re.compile(r"^\W*(?:here is|here's|below is|sure[,!.]|certainly[,!.])[^\n]{0,80}:\s*\n", re.IGNORECASE)


def _fold(text: str) -> str:
    """NFKC: superscript/subscript and full-width digits count as digits (x² ~ x^2)."""
    return unicodedata.normalize("NFKC", text)


def numbers(text: str) -> set[str]:
    """Distinct normalised numbers: thousands separators removed, leading zeros dropped
    ("007" = "7"), decimals kept as written ("1.50" != "1.5")."""
    found = set()
    for match in _NUMBER.finditer(_fold(text)):
        whole, _, frac = match.group().replace(",", "").partition(".")
        whole = whole.lstrip("0") or "0"
        found.add(f"{whole}.{frac}" if frac else whole)
    return found


def words(text: str) -> set[str]:
    return {m.group().rstrip(".") for m in _WORD.finditer(_fold(text))}


def _starts_sentence(text: str, at: int) -> bool:
    """Whether the word at `at` starts a sentence: the previous character, skipping spaces,
    quotes, brackets and Markdown marks, is the start of the text, one of . ! ? : ; or a line
    break that follows such a character or a blank line (a hard-wrapped line does not start a
    sentence; a paragraph, heading or list item does)."""
    i = at - 1
    while i >= 0 and text[i] in _SKIP_BEFORE_WORD:
        i -= 1
    if i < 0 or text[i] in ".!?:;":
        return True
    if text[i] not in "\r\n":
        return False
    i -= 1
    while i >= 0 and text[i] in " \t\r":
        i -= 1
    return i < 0 or text[i] in ".!?:;\n"


def _prose_line(line: str) -> bool:
    """At least 6 words and fewer than one separator (| • · » ›) per 4 words: running text,
    not a menu, breadcrumb or share bar."""
    count = len(_WORD.findall(line))
    return count >= 6 and sum(line.count(ch) for ch in "|•·»›") * 4 < count


def entities(text: str, *, prose_only: bool = False) -> set[str]:
    """Distinct named-entity-like words of `text` (case kept, NFKC-folded). A word (letters,
    digits, inner hyphens/apostrophes/dots) is an entity when it has a letter and
    - has a digit (H2O, CO2, p53, COVID-19), or
    - has two or more capitals (DNA, NaCl, mRNA, LaTeX), or
    - starts with a capital, has two or more letters and does not start a sentence
      (`_starts_sentence`), so "The" or "However" opening a sentence is not an entity but
      "Einstein" inside one is.
    `prose_only` keeps the entities of prose lines (`_prose_line`): the source side of the
    recall, so the menu words a rewrite is meant to remove ("Home", "Login") do not count.
    Pure numbers are measured by `numbers`."""
    text = _fold(text)
    found = set()
    offset = 0
    for line in text.split("\n"):
        start, offset = offset, offset + len(line) + 1
        if prose_only and not _prose_line(line):
            continue
        for match in _WORD.finditer(line):
            word = match.group().rstrip(".")
            if not any(ch.isalpha() for ch in word):
                continue
            if any(ch.isdigit() for ch in word) or sum(ch.isupper() for ch in word) >= 2:
                found.add(word)
            elif (word[0].isupper() and sum(ch.isalpha() for ch in word) >= 2
                  and not _starts_sentence(text, start + match.start())):
                found.add(word)
    return found


def strip_wrapping_fence(rewritten: str, source: str = "") -> str:
    """The answer without a ```/```markdown fence around the whole of it (models add one
    despite the prompt), unless the source itself starts with a fence."""
    text = rewritten.strip()
    if source.lstrip().startswith("```"):
        return text
    match = _FENCE_OPEN.match(text)
    if match and text.endswith("```") and len(text) >= match.end() + 3:
        return text[match.end():-3].strip()
    return text


def _prompt_lines(ref: str) -> list[str]:
    try:
        prompt = load_prompt(ref)
    except ValueError:
        return []
    lines = (prompt.system + "\n" + prompt.user).split("\n")
    return [" ".join(line.strip(" -").split()).lower() for line in lines
            if len(line.strip(" -")) >= 24 and "{{" not in line]


def _echoes_prompt(rewritten: str, source: str, ref: str) -> bool:
    folded = " ".join(rewritten.split()).lower()
    folded_source = " ".join(source.split()).lower()
    if any(line in folded and line not in folded_source for line in _prompt_lines(ref)):
        return True
    # the data wrapper itself: {"text": "..."} coming back
    return rewritten.lstrip().startswith('{"text"') and not source.lstrip().startswith('{"text"')


def _recall(wanted: set[str], have: set[str]) -> float:
    return len(wanted & have) / len(wanted) if wanted else 1.0


def check_rewrite(source: str, rewritten: str, config: RewriteConfig = RewriteConfig(),
                  *, finish_reason: str = "") -> RewriteCheck:
    """Whether `rewritten` may replace `source`, after stripping a wrapping fence.

    Reasons: `empty`; `too_long` (the source exceeds max_input_chars); `truncated`
    (finish_reason "length"); `length_ratio_low` / `length_ratio_high` (cleaned chars / source
    chars outside [min_length_ratio, max_length_ratio]); `numbers_lost` (share of the source's
    distinct numbers found in the rewrite < min_number_recall); `numbers_added` (more than
    max_new_numbers distinct numbers of 2+ characters not in the source; single digits are list
    markers, footnotes and exponents as often as facts); `entities_lost` (share of the entities of the
    source's prose lines, `entities(source, prose_only=True)`, that occur as words of the
    rewrite < min_entity_recall); `refusal` ("I'm sorry",
    "As an AI…" not in the source); `prompt_echo` (a line of the prompt, or the JSON data
    wrapper, not in the source); `preamble` ("Here is the cleaned page:").
    """
    text = strip_wrapping_fence(rewritten, source)
    source_len = len(source.strip())
    if not text:
        return RewriteCheck(False, (EMPTY,), 0.0, 0.0, 0.0, 0)
    ratio = len(text) / source_len if source_len else float("inf")
    src_numbers, new_numbers_found = numbers(source), numbers(text)
    number_recall = _recall(src_numbers, new_numbers_found)
    added = sum(1 for n in new_numbers_found - src_numbers if len(n) >= 2)
    entity_recall = _recall(entities(source, prose_only=True), words(text))

    reasons = []
    if len(source) > config.max_input_chars:
        reasons.append(TOO_LONG)
    if finish_reason == "length":
        reasons.append(TRUNCATED)
    if ratio < config.min_length_ratio:
        reasons.append(LENGTH_RATIO_LOW)
    if ratio > config.max_length_ratio:
        reasons.append(LENGTH_RATIO_HIGH)
    if number_recall < config.min_number_recall:
        reasons.append(NUMBERS_LOST)
    if added > config.max_new_numbers:
        reasons.append(NUMBERS_ADDED)
    if entity_recall < config.min_entity_recall:
        reasons.append(ENTITIES_LOST)
    head = text[:300]
    if (_REFUSAL.search(head) and not _REFUSAL.search(source.strip()[:300])) or \
            (_AS_AN_AI.search(text) and not _AS_AN_AI.search(source)):
        reasons.append(REFUSAL)
    if _echoes_prompt(text, source, config.prompt):
        reasons.append(PROMPT_ECHO)
    if _PREAMBLE.search(head) and not _PREAMBLE.search(source.strip()[:300]):
        reasons.append(PREAMBLE)
    return RewriteCheck(not reasons, tuple(reasons), ratio, number_recall, entity_recall, added)


def rewrite_validator(source: str, config: RewriteConfig = RewriteConfig()) -> Callable[[str, str], Sequence[str]]:
    """`check_rewrite` as an `LLMClient.chat` validator for one page's request."""
    def validate(raw: str, finish_reason: str) -> Sequence[str]:
        return check_rewrite(source, raw, config, finish_reason=finish_reason).reasons
    return validate
