"""Page-level rule filters for web text: Gopher quality, Gopher repetition, C4 and FineWeb.

Score, then filter. `text_stats(text, language) -> TextStats` measures every quantity the rules
look at, once per page; `rule_failures(stats, config, language) -> tuple[str, ...]` applies a
`RuleConfig`'s thresholds to those numbers and names every failing rule. The stats are stored
with the page (a flat Parquet struct), so thresholds change without re-reading the text.
`check(text, config, language)` does both.

The definitions follow huggingface/datatrove (`pipeline/filters/gopher_quality_filter.py`,
`gopher_repetition_filter.py`, `c4_filters.py`, `fineweb_quality_filter.py`), which follow the
Gopher paper (Rae et al. 2021, Table A1 and section A.1.1), C4 (Raffel et al. 2020 and TFDS's
`c4_utils.py`) and FineWeb (Penedo et al. 2024). `DEFAULT` is datatrove's default thresholds.
Where this module measures differently, the field's comment says so; the differences are:

- Words. datatrove uses a per-language tokenizer (NLTK/spaCy for English). Here one regex does
  it for every language: a *word* is a run of letters/digits/underscores (plus Indic combining
  marks) that may contain inner `'`, `’`, `-` or `.` ("don't", "state-of-the-art", "3.14",
  "e.g"); every other non-space character is its own *symbol token*, except `...`, which is one
  token. Characters of scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar,
  Tibetan) are one word each, so a Chinese page has about as many "words" as characters.
  Like datatrove, ratios "per word" (symbols, alphabetic words, list ratio) divide by all
  tokens, symbols included, and the repetition n-grams run over all tokens (datatrove's
  tokenizer output includes punctuation); word counts and mean word length use words only.
- Stop words are matched case-insensitively ("The" counts; datatrove's match is exact).
- Lines. trafilatura's Markdown puts a blank line between blocks; counting them would halve
  every line fraction, so line fractions (bullets, ellipsis, punctuation, short lines,
  javascript, policy) divide by *non-empty content lines*, and the FineWeb list ratio counts
  the line breaks between them rather than raw `\\n`.
- Markdown. Each line's *content* is the line without its Markdown markers: leading `#`..`######`
  (heading), `>` (quote), `-`/`*`/`+`/`•`/`·`/`‣`/`▪`/`◦`/`●` or `1.`/`1)` followed by a space
  (list item: it counts as a bullet line, numbered items included, where datatrove counts only
  `•` and `-`), `|` cell separators of table rows (table separator rows `|---|:--|` are markup
  only and have no content), `**`/`__` emphasis, and trailing `*`/`_` closing an emphasis.
  Tokens, `#` and ellipsis counts, punctuation and length checks use the content, so heading
  `#`s are not "hash symbols" and `**Note.**` ends in a full stop. The repetition measures
  (duplicate lines, paragraphs, n-grams, FineWeb char duplicates) use the raw lines, as
  datatrove does.
- Only the first `max_chars` characters are measured (`truncated` says so): the rules are
  fractions, and the first 200,000 characters (~30,000 words, several times a long article)
  give the same verdict at bounded cost. `too_many_words` then extrapolates the word count
  of a truncated page from its measured part (`words * total_chars / chars`), since 200k
  characters hold fewer than Gopher's 100,000-word limit.
- C4 is a *line* filter in datatrove (it rewrites the text). Here it scores only: the page
  fails `c4:javascript` / `c4:policy` when more than a set fraction of its lines would have
  been removed, `c4:lorem_ipsum` / `c4:curly_brace` when the phrase / a `{` appears anywhere
  (datatrove looks only in lines it keeps), and `c4:too_few_sentences` when the lines C4
  would keep hold fewer than 5 sentences (sentences counted by terminal punctuation, not
  with punkt).
- The top 2/3/4-gram fraction counts only an n-gram that occurs at least twice (datatrove
  also counts the most common n-gram when it occurs once, which is not repetition).

Pure Python, no Beam, no model; deterministic. Cost (CPython 3.11, one core): ~6 ms for a
5,000-word Markdown page, most of it tokenising and counting 2/3/4-grams; pages built of
repeated blocks cost up to ~5x that; a truncated multi-megabyte page ~40 ms.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import ne

from scicurate.config import ConfigError

# Only this many characters of a page are measured (see `TextStats.truncated`).
MAX_CHARS = 200_000

# Gopher's stop words (Rae et al. 2021, A.1.1; datatrove STOP_WORDS). English only.
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})

# Languages the word-count, mean-word-length and stop-word rules do not apply to: written
# without spaces between words (zh, ja, th, lo, km, my, bo), where "words" are characters or
# need a dictionary segmenter, or (ko) where particles attach to words, so counts and lengths
# are not comparable to English ones.
WORD_RULE_EXEMPT_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "ko", "yue", "wuu", "dz"})

# FineWeb's short line: at most 30 characters (datatrove `short_line_length`). A measurement
# parameter, so it is fixed here rather than in RuleConfig: changing it means re-measuring.
SHORT_LINE_CHARS = 30
# C4: a line with fewer words is dropped (`min_words_per_line`), and a line with a longer
# "word" (a URL dump, base64) is dropped before everything else (`max_word_length`).
C4_MIN_WORDS_PER_LINE = 3
C4_MAX_WORD_LENGTH = 1000

C4_END_PUNCTUATION = (".", "?", "!", '"', "'")
FINEWEB_STOP_CHARS = (".", "'", '"', "!", "?")
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
BULLET_CHARS = "-*+•·‣▪◦●"

TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)

# Scripts written without spaces: one character = one word.
_NO_SPACE = (
    "\u0e00-\u0eff"            # Thai, Lao
    "\u0f00-\u0fff"            # Tibetan
    "\u1000-\u109f"            # Myanmar
    "\u1780-\u17ff"            # Khmer
    "\u3040-\u30ff"            # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"   # CJK ideographs
)
# Word characters of other scripts, plus the Indic combining marks that `\w` leaves out
# (Devanagari .. Sinhala, without the dandas U+0964/5, which are punctuation).
_WORD_CHAR = f"(?:[^\\W{_NO_SPACE}]|[\u0300-\u036f\u0900-\u0963\u0966-\u0dff])"
_TOKEN = re.compile(f"[{_NO_SPACE}]|{_WORD_CHAR}+(?:['’.\\-]{_WORD_CHAR}+)*|\\.\\.\\.|[^\\w\\s]")
# The same tokens for text without no-space characters, with one character class (~3x faster).
_WORD_CLASS = "[\\w\u0300-\u036f\u0900-\u0963\u0966-\u0dff]"
_TOKEN_SPACED = re.compile(f"{_WORD_CLASS}+(?:['’.\\-]{_WORD_CLASS}+)*|\\.\\.\\.|[^\\w\\s]")
_NO_SPACE_CHAR = re.compile(f"[{_NO_SPACE}]")
_HAS_LETTER = re.compile(r"[^\W\d_]")

_HEADING = re.compile(r"#{1,6}(?:\s+|$)")
_QUOTE = re.compile(r"(?:>\s?)+")
_BULLET = re.compile(f"(?:[{re.escape(BULLET_CHARS)}]|\\d{{1,3}}[.)])\\s+")
_TABLE_SEPARATOR = re.compile(r"\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?")
_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")


@dataclass(frozen=True, slots=True)
class TextStats:
    """Everything the page rules measure, for one page (only flat numbers: a Parquet struct).

    Fractions of lines divide by `non_empty_lines` (content lines, Markdown markers removed);
    fractions of characters divide by `chars` unless the field says otherwise. An empty page
    has every count and fraction 0.
    """

    truncated: bool                 # the page was longer than max_chars; only its start is measured
    total_chars: int                # characters of the whole page
    chars: int                      # characters measured (= total_chars unless truncated)
    lines: int                      # raw lines ("\n"-separated)
    non_empty_lines: int            # lines with content after Markdown markers are removed
    heading_lines: int              # Markdown heading lines (`# ...`)
    tokens: int                     # words + symbol tokens
    words: int                      # word tokens (Gopher's "non-symbol words")
    mean_word_length: float         # characters per word
    hash_word_ratio: float          # `#` outside heading markers, per token
    ellipsis_word_ratio: float      # "..." and "…", per token
    symbol_word_ratio: float        # max(hash_word_ratio, ellipsis_word_ratio): Gopher tests each
    bullet_line_frac: float         # lines that are list items (bullets or numbered)
    ellipsis_line_frac: float       # lines ending in "..." or "…"
    alpha_word_frac: float          # tokens containing a letter, per token
    stop_words: int                 # occurrences of Gopher's English stop words
    no_space_word_frac: float       # words in scripts written without spaces (Han, kana, Thai, ...)
    space_delimited: bool           # word rules make sense: language not exempt, no_space_word_frac <= 0.5
    dup_line_frac: float            # Gopher: repeated lines / lines
    dup_para_frac: float            # Gopher: repeated paragraphs / paragraphs
    dup_line_char_frac: float       # Gopher: characters in repeated lines / chars
    dup_para_char_frac: float       # Gopher: characters in repeated paragraphs / chars
    top_2gram_char_frac: float      # Gopher: characters in the most frequent repeated 2-gram / chars
    top_3gram_char_frac: float
    top_4gram_char_frac: float
    dup_5gram_char_frac: float      # Gopher: characters in repeated 5-grams / chars
    dup_6gram_char_frac: float
    dup_7gram_char_frac: float
    dup_8gram_char_frac: float
    dup_9gram_char_frac: float
    dup_10gram_char_frac: float
    line_punct_frac: float          # FineWeb: lines ending in . ' " ! ?
    short_line_frac: float          # FineWeb: lines of at most SHORT_LINE_CHARS characters
    char_dup_frac: float            # FineWeb: characters in repeated lines / characters without "\n"
    list_frac: float                # FineWeb: line breaks (between content lines) per token
    lorem_ipsum: bool               # C4: "lorem ipsum" appears
    curly_brace: bool               # C4: "{" appears
    javascript_line_frac: float     # C4: lines mentioning "javascript"
    policy_line_frac: float         # C4: lines with a POLICY_SUBSTRINGS phrase
    terminal_punct_line_frac: float  # C4: lines ending in . ? ! " ' but not "..." (citations removed)
    words_per_line: float           # C4: whitespace-separated words per line
    c4_sentences: int               # C4: sentences in the lines C4 would keep


def _normalise_language(language: str) -> str:
    """"zh-Hans", "ZH_cn", "__label__zh" -> "zh": rules key on the primary subtag."""
    lang = language.strip().lower().removeprefix("__label__")
    return re.split(r"[-_]", lang, maxsplit=1)[0]


def _content(line: str) -> tuple[str, bool, bool, bool]:
    """A line without Markdown markers -> (content, is_heading, is_bullet, is_table_separator)."""
    s = line.strip()
    if not s:
        return "", False, False, False
    heading = bullet = False
    m = _HEADING.match(s)
    if m:
        heading = True
        s = s[m.end():]
    else:
        m = _QUOTE.match(s)
        if m:
            s = s[m.end():]
        m = _BULLET.match(s)
        if m:
            bullet = True
            s = s[m.end():]
        elif s and s[0] in "•·‣▪◦●":   # typographic bullets glued to the text still start a list item
            bullet = True
            s = s[1:]
    if s.startswith("|") or s.endswith("|"):
        if "-" in s and _TABLE_SEPARATOR.fullmatch(s):
            return "", False, False, True
        s = s.replace("|", " ")
    if "**" in s or "__" in s:
        s = s.replace("**", "").replace("__", "")
    return s.strip().rstrip("*_").rstrip(), heading, bullet, False


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(repeated elements, their characters): every occurrence after the first counts."""
    dup = chars = 0
    for item, count in Counter(items).items():
        if count > 1:
            dup += count - 1
            chars += (count - 1) * len(item)
    return dup, chars


def _top_ngram_chars(counts: Counter, n: int) -> int:
    """Characters of the most frequent n-gram (joined by spaces) times its count; 0 if none repeats."""
    top = max(counts.values(), default=0)
    if top < 2:
        return 0
    gram = next(g for g, c in counts.items() if c == top)   # first seen among ties: deterministic
    return (sum(map(len, gram)) + n - 1) * top


def _dup_ngram_chars(
    tokens: list[str], cum: list[int], ns: tuple[int, ...], positions: list[int] | None = None,
) -> dict[int, int]:
    """For each n in `ns` (increasing, consecutive): characters (without spaces) in n-grams
    seen before, scanning left to right and jumping past a repeated n-gram so overlapping
    repeats are not counted twice (datatrove's `find_all_duplicate`).

    Same result as that scan, at a fraction of its cost:
    - a position holding the first occurrence of its n-gram is always a plain step of the
      scan, so only positions of *later* occurrences are walked in Python; such an n-gram is
      "seen" when its first occurrence was not jumped over, or a later one was visited;
    - an (n+1)-gram can only repeat where its n-gram prefix repeats, and its first occurrence
      is then one of those positions or the prefix's first occurrence, so each n after the
      first looks only at those positions (usually a few percent of the page).
    `positions`, when given, are the only positions where the first n-gram can repeat or first
    occur (the positions of repeated (n-1)-grams); None means every position.
    """
    out = {n: 0 for n in ns}
    for n in ns:
        total = len(tokens) - n + 1
        if total <= 0 or positions == []:
            break
        if positions is None:
            grams = list(zip(*(tokens[i:] for i in range(n))))
            first = dict(zip(reversed(grams), range(total - 1, -1, -1)))   # n-gram -> first position
            if len(first) == total:
                break
            later = list(compress(range(total), map(ne, map(first.__getitem__, grams), range(total))))
            gram_at = grams.__getitem__
        else:
            at = {i: tuple(tokens[i:i + n]) for i in positions if i < total}
            first = {}
            for i, gram in at.items():
                first.setdefault(gram, i)
            later = [i for i, gram in at.items() if first[gram] != i]
            gram_at = at.__getitem__
        jumped: set[int] = set()
        seen_later: set[tuple[str, ...]] = set()
        repeated = next_idx = 0
        for idx in later:
            if idx < next_idx:
                continue
            gram = gram_at(idx)
            if first[gram] not in jumped or gram in seen_later:
                repeated += cum[idx + n] - cum[idx]
                jumped.update(range(idx + 1, idx + n))
                next_idx = idx + n
            else:
                seen_later.add(gram)
                next_idx = idx + 1
        out[n] = repeated
        positions = sorted({*later, *(first[gram_at(i)] for i in later)})
    return out


def _dup_ngram_chars_reference(tokens: list[str], n: int) -> int:
    """datatrove's scan, position by position (kept to test `_dup_ngram_chars` against)."""
    seen: set[tuple[str, ...]] = set()
    repeated = idx = 0
    while idx < len(tokens) - n + 1:
        gram = tuple(tokens[idx:idx + n])
        if gram in seen:
            repeated += sum(map(len, gram))
            idx += n
        else:
            seen.add(gram)
            idx += 1
    return repeated


def text_stats(text: str, language: str = "", max_chars: int = MAX_CHARS) -> TextStats:
    """Measure one page (Markdown-ish text from trafilatura) for every rule in this module.

    `language` (ISO 639-1, "" when unknown) only decides `space_delimited`: False for
    WORD_RULE_EXEMPT_LANGUAGES, and for any page whose words are mostly in scripts written
    without spaces (a mislabelled or unlabelled Chinese page). The measurement itself is the
    same for every language, so stats of pages in different languages compare.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1; got {max_chars}")
    total_chars = len(text)
    truncated = total_chars > max_chars
    if truncated:
        text = text[:max_chars]
    n_chars = len(text)
    raw_lines = text.split("\n") if text else []

    contents: list[str] = []
    headings = bullets = ellipsis_lines = punct_lines = short_lines = 0
    c4_punct_lines = javascript_lines = policy_lines = line_words = sentences = 0
    for raw in raw_lines:
        content, heading, bullet, _separator = _content(raw)
        if not content:
            continue
        contents.append(content)
        headings += heading
        bullets += bullet
        if content.endswith(("...", "…")):
            ellipsis_lines += 1
        if content.endswith(FINEWEB_STOP_CHARS):
            punct_lines += 1
        if len(content) <= SHORT_LINE_CHARS:
            short_lines += 1
        # C4, in datatrove's order: too-long word, citations, terminal punctuation, few words,
        # then javascript / policy lines are dropped; what is left counts sentences.
        split = content.split()
        line_words += len(split)
        lower = content.lower()
        javascript = "javascript" in lower
        policy = any(p in lower for p in POLICY_SUBSTRINGS)
        javascript_lines += javascript
        policy_lines += policy
        if "[" in content:
            content = _CITATION.sub("", content).rstrip()
        c4_punct = content.endswith(C4_END_PUNCTUATION) and not content.endswith("...")
        c4_punct_lines += c4_punct
        if (c4_punct and len(split) >= C4_MIN_WORDS_PER_LINE and not javascript and not policy
                and max(map(len, split)) <= C4_MAX_WORD_LENGTH):
            sentences += max(1, len(_SENTENCE_END.findall(content)))

    body = "\n".join(contents)
    # Fast path: without characters of no-space scripts a plain run of word characters is a word.
    has_no_space = _NO_SPACE_CHAR.search(body) is not None
    tokens = (_TOKEN if has_no_space else _TOKEN_SPACED).findall(body)
    n_tokens = len(tokens)
    # One pass over distinct tokens. Symbol tokens are "..." or one non-word character.
    n_words = word_chars = alpha_tokens = stop_words = 0
    for tok, count in Counter(tokens).items():
        if len(tok) == 1:
            if not (tok.isalnum() or tok == "_"):
                continue
        elif tok == "...":
            continue
        n_words += count
        word_chars += len(tok) * count
        if tok[0].isalpha() or _HAS_LETTER.search(tok):
            alpha_tokens += count
        if len(tok) <= 4 and tok.lower() in STOP_WORDS:
            stop_words += count
    no_space_words = len(_NO_SPACE_CHAR.findall(body)) if has_no_space else 0
    hashes = body.count("#")
    ellipses = body.count("...") + body.count("…")
    n_lines = len(contents)
    lang = _normalise_language(language)
    no_space_frac = no_space_words / n_words if n_words else 0.0

    def per_token(x: int) -> float:
        return x / n_tokens if n_tokens else 0.0

    def per_line(x: int) -> float:
        return x / n_lines if n_lines else 0.0

    def per_char(x: int) -> float:
        return x / n_chars if n_chars else 0.0

    # Gopher repetition, on the raw text as datatrove does.
    paragraphs = _PARAGRAPH_BREAK.split(text.strip()) if text.strip() else []
    para_dup, para_dup_chars = _duplicates(paragraphs)
    gopher_lines = [line for line in raw_lines if line]
    line_dup, line_dup_chars = _duplicates(gopher_lines)
    fineweb_lines = [line for line in raw_lines if line.strip()]
    _, fineweb_dup_chars = _duplicates(fineweb_lines)
    chars_without_newlines = n_chars - text.count("\n")

    top = {}
    for n in TOP_NGRAMS:
        grams = list(zip(*(tokens[i:] for i in range(n))))
        counts = Counter(grams)
        top[n] = per_char(_top_ngram_chars(counts, n))
    # A 5-gram can only repeat (or first occur, if it repeats) where its 4-gram prefix repeats.
    repeated_4grams = list(compress(range(len(grams)), map((2).__le__, map(counts.__getitem__, grams))))
    cum = [0, *accumulate(map(len, tokens))]
    dup = {n: per_char(chars) for n, chars in _dup_ngram_chars(tokens, cum, DUP_NGRAMS, repeated_4grams).items()}

    hash_ratio = per_token(hashes)
    ellipsis_ratio = per_token(ellipses)
    return TextStats(
        truncated=truncated,
        total_chars=total_chars,
        chars=n_chars,
        lines=len(raw_lines),
        non_empty_lines=n_lines,
        heading_lines=headings,
        tokens=n_tokens,
        words=n_words,
        mean_word_length=word_chars / n_words if n_words else 0.0,
        hash_word_ratio=hash_ratio,
        ellipsis_word_ratio=ellipsis_ratio,
        symbol_word_ratio=max(hash_ratio, ellipsis_ratio),
        bullet_line_frac=per_line(bullets),
        ellipsis_line_frac=per_line(ellipsis_lines),
        alpha_word_frac=per_token(alpha_tokens),
        stop_words=stop_words,
        no_space_word_frac=no_space_frac,
        space_delimited=lang not in WORD_RULE_EXEMPT_LANGUAGES and no_space_frac <= 0.5,
        dup_line_frac=line_dup / len(gopher_lines) if gopher_lines else 0.0,
        dup_para_frac=para_dup / len(paragraphs) if paragraphs else 0.0,
        dup_line_char_frac=per_char(line_dup_chars),
        dup_para_char_frac=per_char(para_dup_chars),
        top_2gram_char_frac=top[2],
        top_3gram_char_frac=top[3],
        top_4gram_char_frac=top[4],
        dup_5gram_char_frac=dup[5],
        dup_6gram_char_frac=dup[6],
        dup_7gram_char_frac=dup[7],
        dup_8gram_char_frac=dup[8],
        dup_9gram_char_frac=dup[9],
        dup_10gram_char_frac=dup[10],
        line_punct_frac=per_line(punct_lines),
        short_line_frac=per_line(short_lines),
        char_dup_frac=fineweb_dup_chars / chars_without_newlines if chars_without_newlines else 0.0,
        list_frac=per_token(max(n_lines - 1, 0)),
        lorem_ipsum="lorem ipsum" in text.lower(),
        curly_brace="{" in text,
        javascript_line_frac=per_line(javascript_lines),
        policy_line_frac=per_line(policy_lines),
        terminal_punct_line_frac=per_line(c4_punct_lines),
        words_per_line=per_line(line_words),
        c4_sentences=sentences,
    )


def _fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"web rules: {name} must be a fraction in [0, 1]; got {value!r}")


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Thresholds of the page rules; a page fails a rule when its stat crosses the threshold.

    Defaults are datatrove's (themselves the papers'), with datatrove's strictness of each
    comparison kept (`>` vs `>=`, as each field's comment says):
    - Gopher quality (Rae et al. 2021, A.1.1): 50..100,000 words, mean word length 3..10,
      at most 0.1 `#` or ellipses per word, at most 90% bullet lines and 30% lines ending in
      an ellipsis, at least 80% of words with a letter, at least 2 stop words. Word count,
      word length and stop words are skipped for `word_rule_exempt_languages` and for pages
      whose text is mostly in scripts without spaces; stop words only apply to
      `stop_word_languages` (the list is English); "" (unknown) is treated as English, as
      datatrove's default language is.
    - Gopher repetition (Table A1): duplicate lines / paragraphs 30% (of items), 20% (of
      characters); most frequent 2/3/4-gram 20/18/16% of characters; repeated 5..10-grams
      15/14/13/12/11/10% of characters.
    - C4: `lorem ipsum` anywhere, a page of which more than 10% of lines mention javascript
      or a cookie/terms/privacy policy (C4 removes such lines; a page that is mostly them is a
      notice, not content; datatrove has no page threshold, 0.1 is this module's), fewer than
      5 sentences in the lines C4 keeps. `c4_curly_brace` is off: C4 drops any page with a
      `{`, which for scientific text drops every page with code, JSON or TeX (`\\frac{a}{b}`).
    - FineWeb (Penedo et al. 2024): at most 12% of lines ending in punctuation fails (`<=`),
      67% or more lines of <= 30 characters fails (`>=`), 1% or more characters in repeated
      lines fails (`>=`), more than 0.3 line breaks per word fails (`>`).
    """

    gopher_quality: bool = True
    min_words: int = 50                         # fails if words < min_words
    max_words: int = 100_000                    # fails if words > max_words
    min_mean_word_length: float = 3.0           # fails if mean < min
    max_mean_word_length: float = 10.0          # fails if mean > max
    max_symbol_word_ratio: float = 0.1          # fails if > (for `#` or ellipsis)
    max_bullet_line_frac: float = 0.9           # fails if >
    max_ellipsis_line_frac: float = 0.3         # fails if >
    min_alpha_word_frac: float = 0.8            # fails if <
    min_stop_words: int = 2                     # fails if <

    gopher_repetition: bool = True
    max_dup_line_frac: float = 0.3              # all repetition thresholds: fails if >
    max_dup_para_frac: float = 0.3
    max_dup_line_char_frac: float = 0.2
    max_dup_para_char_frac: float = 0.2
    max_top_ngram_char_frac: tuple[float, ...] = (0.20, 0.18, 0.16)                    # n = 2, 3, 4
    max_dup_ngram_char_frac: tuple[float, ...] = (0.15, 0.14, 0.13, 0.12, 0.11, 0.10)  # n = 5..10

    c4: bool = True
    c4_lorem_ipsum: bool = True
    c4_curly_brace: bool = False
    max_javascript_line_frac: float = 0.1       # fails if >
    max_policy_line_frac: float = 0.1           # fails if >
    min_sentences: int = 5                      # fails if <; 0 disables

    fineweb: bool = True
    min_line_punct_frac: float = 0.12           # fails if <= (unless 0 and line_punct_exclude_zero)
    line_punct_exclude_zero: bool = False
    max_short_line_frac: float = 0.67           # fails if >=
    max_char_dup_frac: float = 0.01             # fails if >=
    max_list_frac: float = 0.3                  # fails if >

    word_rule_exempt_languages: frozenset[str] = WORD_RULE_EXEMPT_LANGUAGES
    stop_word_languages: frozenset[str] = frozenset({"en"})

    def __post_init__(self) -> None:
        if self.min_words < 0 or self.max_words < self.min_words:
            raise ConfigError(f"web rules: need 0 <= min_words <= max_words; got {self.min_words}, {self.max_words}")
        if not 0.0 <= self.min_mean_word_length <= self.max_mean_word_length:
            raise ConfigError("web rules: need 0 <= min_mean_word_length <= max_mean_word_length; got "
                              f"{self.min_mean_word_length}, {self.max_mean_word_length}")
        if self.max_symbol_word_ratio < 0:
            raise ConfigError(f"web rules: max_symbol_word_ratio must be >= 0; got {self.max_symbol_word_ratio}")
        if self.min_stop_words < 0 or self.min_sentences < 0:
            raise ConfigError("web rules: min_stop_words and min_sentences must be >= 0")
        if self.max_list_frac < 0:
            raise ConfigError(f"web rules: max_list_frac must be >= 0; got {self.max_list_frac}")
        for name in ("max_bullet_line_frac", "max_ellipsis_line_frac", "min_alpha_word_frac",
                     "max_dup_line_frac", "max_dup_para_frac", "max_dup_line_char_frac",
                     "max_dup_para_char_frac", "max_javascript_line_frac", "max_policy_line_frac",
                     "min_line_punct_frac", "max_short_line_frac", "max_char_dup_frac"):
            _fraction(name, getattr(self, name))
        for name, ns in (("max_top_ngram_char_frac", TOP_NGRAMS), ("max_dup_ngram_char_frac", DUP_NGRAMS)):
            values = getattr(self, name)
            if not isinstance(values, tuple) or len(values) != len(ns):
                raise ConfigError(f"web rules: {name} needs one threshold per n in {ns}; got {values!r}")
            for value in values:
                _fraction(name, value)
        for name in ("word_rule_exempt_languages", "stop_word_languages"):
            value = getattr(self, name)
            if not isinstance(value, frozenset) or not all(isinstance(x, str) and x for x in value):
                raise ConfigError(f"web rules: {name} must be a frozenset of language codes; got {value!r}")

    def replace(self, **changes) -> RuleConfig:
        return dataclasses.replace(self, **changes)


DEFAULT = RuleConfig()

# Scientific web text: formulas, code and tables are content here, not noise.
LENIENT = DEFAULT.replace(
    # `#` is a comment/preprocessor mark in code and "..." / "…" an ellipsis in formulas
    # ("x_1, ..., x_n"); a page with a code listing passes 0.1 per word easily.
    max_symbol_word_ratio=0.25,
    # `$x = 2y + 3$` is 7 tokens with 2 letters-bearing: equation-heavy prose sits at 0.6-0.8.
    min_alpha_word_frac=0.6,
    # Programming and web-science pages mention JavaScript in many lines legitimately.
    max_javascript_line_frac=0.3,
    # Display equations, code lines and table rows do not end in punctuation.
    min_line_punct_frac=0.05,
    # Same lines are short: `$$`, `\end{align}`, `return x`, table rows of numbers.
    max_short_line_frac=0.8,
    # Repeated short lines are normal in derivations, tables and code ("where", "}", "| – |");
    # boilerplate repeated across pages is removed by line dedup before the rules run.
    max_char_dup_frac=0.05,
    # One equation, code line or table row per line means more line breaks per word.
    max_list_frac=0.5,
)

PRESETS: dict[str, RuleConfig] = {"default": DEFAULT, "lenient": LENIENT}

_DESCRIPTIONS = {
    "gopher_quality:too_few_words": "fewer words than min_words (too little text to be a document)",
    "gopher_quality:too_many_words": "more words than max_words (a dump, not a document)",
    "gopher_quality:mean_word_length": "mean word length outside min..max_mean_word_length (gibberish, lists of codes or URLs)",
    "gopher_quality:symbol_word_ratio": "too many '#' or ellipses per word (hashtag spam, truncated teasers)",
    "gopher_quality:bullet_lines": "more than max_bullet_line_frac of lines are list items (navigation, link lists)",
    "gopher_quality:ellipsis_lines": "more than max_ellipsis_line_frac of lines end in an ellipsis (truncated previews)",
    "gopher_quality:alpha_words": "fewer than min_alpha_word_frac of words contain a letter (numbers, symbols, tables)",
    "gopher_quality:stop_words": "fewer than min_stop_words English stop words (not running English prose)",
    "gopher_repetition:dup_line_frac": "too many lines repeat an earlier line",
    "gopher_repetition:dup_para_frac": "too many paragraphs repeat an earlier paragraph",
    "gopher_repetition:dup_line_char_frac": "too many characters are in repeated lines",
    "gopher_repetition:dup_para_char_frac": "too many characters are in repeated paragraphs",
    **{f"gopher_repetition:top_{n}gram": f"the most frequent word {n}-gram covers too many characters"
       for n in TOP_NGRAMS},
    **{f"gopher_repetition:dup_{n}gram": f"too many characters are in repeated word {n}-grams"
       for n in DUP_NGRAMS},
    "c4:lorem_ipsum": "contains 'lorem ipsum' (template placeholder text)",
    "c4:curly_brace": "contains '{' (C4 treats it as code)",
    "c4:javascript": "too many lines mention javascript (enable-javascript notices)",
    "c4:policy": "too many lines mention cookies, terms of use or privacy policy (consent boilerplate)",
    "c4:too_few_sentences": "fewer than min_sentences sentences in lines ending in punctuation with 3+ words",
    "fineweb:line_punct": "too few lines end in terminal punctuation (menus, lists, headings)",
    "fineweb:short_lines": "too many lines of 30 characters or fewer (navigation, fragments)",
    "fineweb:char_dup": "too many characters are in repeated lines",
    "fineweb:list_ratio": "too many line breaks per word (a list rather than prose)",
}

# Every reason code `rule_failures` can return, in the order it returns them.
REASONS: tuple[str, ...] = tuple(_DESCRIPTIONS)


def describe(reason: str) -> str:
    """One line saying what a reason code means, for people reading rejected records."""
    try:
        return _DESCRIPTIONS[reason]
    except KeyError:
        raise ValueError(f"unknown web rule reason {reason!r}; known: {', '.join(REASONS)}") from None


def _page_words(stats: TextStats) -> float:
    """Words of the whole page: measured, or extrapolated from the measured part if truncated."""
    if stats.truncated and stats.chars:
        return stats.words * stats.total_chars / stats.chars
    return float(stats.words)


def rule_failures(stats: TextStats, config: RuleConfig = DEFAULT, language: str = "") -> tuple[str, ...]:
    """Every rule the page fails, as reason codes in REASONS order; () means it passes.

    `language` (ISO 639-1 or lid label, "" when unknown) gates the word rules: word counts and
    mean word length are skipped when `stats.space_delimited` is False or the language is in
    `config.word_rule_exempt_languages`; the stop-word rule also needs the language ("" counts
    as English) to be in `config.stop_word_languages`.
    """
    lang = _normalise_language(language)
    word_rules = stats.space_delimited and lang not in config.word_rule_exempt_languages
    failed: list[str] = []
    add = failed.append
    s, c = stats, config
    if c.gopher_quality:
        if word_rules and s.words < c.min_words:
            add("gopher_quality:too_few_words")
        if word_rules and _page_words(s) > c.max_words:
            add("gopher_quality:too_many_words")
        if word_rules and s.words and not c.min_mean_word_length <= s.mean_word_length <= c.max_mean_word_length:
            add("gopher_quality:mean_word_length")
        if s.symbol_word_ratio > c.max_symbol_word_ratio:
            add("gopher_quality:symbol_word_ratio")
        if s.bullet_line_frac > c.max_bullet_line_frac:
            add("gopher_quality:bullet_lines")
        if s.ellipsis_line_frac > c.max_ellipsis_line_frac:
            add("gopher_quality:ellipsis_lines")
        if s.alpha_word_frac < c.min_alpha_word_frac:
            add("gopher_quality:alpha_words")
        if word_rules and (lang or "en") in c.stop_word_languages and s.stop_words < c.min_stop_words:
            add("gopher_quality:stop_words")
    if c.gopher_repetition:
        for name in ("dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac"):
            if getattr(s, name) > getattr(c, f"max_{name}"):
                add(f"gopher_repetition:{name}")
        for n, limit in zip(TOP_NGRAMS, c.max_top_ngram_char_frac):
            if getattr(s, f"top_{n}gram_char_frac") > limit:
                add(f"gopher_repetition:top_{n}gram")
        for n, limit in zip(DUP_NGRAMS, c.max_dup_ngram_char_frac):
            if getattr(s, f"dup_{n}gram_char_frac") > limit:
                add(f"gopher_repetition:dup_{n}gram")
    if c.c4:
        if c.c4_lorem_ipsum and s.lorem_ipsum:
            add("c4:lorem_ipsum")
        if c.c4_curly_brace and s.curly_brace:
            add("c4:curly_brace")
        if s.javascript_line_frac > c.max_javascript_line_frac:
            add("c4:javascript")
        if s.policy_line_frac > c.max_policy_line_frac:
            add("c4:policy")
        if s.c4_sentences < c.min_sentences:
            add("c4:too_few_sentences")
    if c.fineweb:
        if s.line_punct_frac <= c.min_line_punct_frac and not (s.line_punct_frac == 0 and c.line_punct_exclude_zero):
            add("fineweb:line_punct")
        if s.short_line_frac >= c.max_short_line_frac:
            add("fineweb:short_lines")
        if s.char_dup_frac >= c.max_char_dup_frac:
            add("fineweb:char_dup")
        if s.list_frac > c.max_list_frac:
            add("fineweb:list_ratio")
    return tuple(failed)


def check(text: str, config: RuleConfig = DEFAULT, language: str = "") -> tuple[TextStats, tuple[str, ...]]:
    """Measure and judge one page: (stats, failing reason codes)."""
    stats = text_stats(text, language)
    return stats, rule_failures(stats, config, language)
