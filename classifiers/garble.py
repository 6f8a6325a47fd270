"""Garbled-text detector: is this parsed text readable language, or the debris of a broken
font encoding, a failed OCR or a mis-decoded byte stream?

Pure core of the PDF pipeline's `ScoreGarble` stage (and usable on any text). `measure` turns
a text into `GarbleFeatures`; `score` turns features into a 0-1 score with the names of the
features that raised it; a separate threshold stage (`GarbleConfig.page_threshold`) decides, so
a threshold changes without re-measuring.

What garbled PDF text looks like, and the feature that catches it:

| failure | example | feature |
|---|---|---|
| no ToUnicode map | `(cid:72)(cid:101)` | `cid_ratio` |
| glyphs with no Unicode | U+FFFD, private-use code points, C0/C1 controls | `replacement_ratio` |
| UTF-8 read as Latin-1/cp1252 | `CafÃ©`, `â€™` | `mojibake_ratio` (ftfy's badness) |
| shifted or custom font encoding | `Uif rvjdl cspxo` | `word_likeness`, `lang_prob` |
| letter-spaced or one-glyph-per-line text | `T h e  q u i c k` | `letter_spaced_ratio` |
| lost word spaces | `Thequickbrownfoxjumps` | `long_token_ratio`, `word_likeness` |
| symbol-font debris | `ÿ¶§ þ ¬ ÷` | `symbol_ratio`, `script_mix` |

Mathematics is not garble: formulas (`$…$`, `$$…$$`, `\\(…\\)`, `\\[…\\]`), LaTeX commands,
Markdown tables, code, URLs and numbers are cut out before the prose features are measured, and
Greek letters and Unicode math alphanumerics never count as a foreign script. The hard
evidence (cid, replacement, mojibake) is measured on the whole text.

Each feature maps to a badness in [0, 1] by a straight line between a bound that clean text
stays under and a bound that only garbled text reaches (`BOUNDS`). Badnesses combine as a
weighted noisy-OR, `1 - prod(1 - w * b)`: hard evidence has weight 1 (one feature at its
garbled bound decides alone); the soft features have weights below 1, so a page needs two of
them (say, no dictionary words and no confident language) to pass 0.5. This is what keeps a
page of dense notation, which looks odd on one soft feature, below the threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Callable, Iterable, Sequence

import regex

from scicurate.config import ConfigError

MODEL_NAME = "garble@1"   # bump when features, bounds or weights change: scores are not comparable

# Reason codes: the features whose badness passed 0.5, in the order of `BOUNDS`.
CID = "cid"
REPLACEMENT = "replacement_chars"
MOJIBAKE = "mojibake"
WORDS = "non_words"
LANGUAGE = "no_language"
SINGLE_CHARS = "letter_spaced"
LONG_TOKENS = "lost_spaces"
SYMBOLS = "symbols"
SCRIPT_MIX = "script_mix"

# feature -> (clean bound, garbled bound, weight, reason). Badness is 0 at the clean bound, 1 at
# the garbled bound, linear between; for word_likeness and lang_prob lower is worse.
#   cid 0.2%-3% of characters inside "(cid:N)": a few come from one odd glyph (a logo); 3% is
#     a whole font without a map.  replacement 1%-10% for U+FFFD, private-use code points and
#     controls: TeX math fonts put brace and radical pieces in the private-use area, so a
#     maths page with readable prose has a few percent of them.
#   mojibake 0.1-1 ftfy badness hits per 100 characters: ftfy counts sequences like "Ã©"
#     that real text almost never has; one in 100 characters is an encoding failure.
#   word_likeness 0.7-0.3: share of letters in dictionary words. English prose scores
#     0.9+; scientific text with names, symbols and jargon 0.75-0.9 (measured on the dev corpus
#     abstracts); a shifted font encoding scores under 0.2.
#   lang_prob 0.5-0.15: lid.176's top probability on the prose. Weight 0.5: short or mixed
#     pages are uncertain without being garbled.
#   letter_spaced_ratio 0.1-0.4: share of letters in runs of 5+ one-letter tokens separated by
#     single spaces ("T h e q u i c k"). Counting one-letter tokens instead flagged geometry
#     ("P, Q, R liegen kollinear" reaches 0.6 of tokens); runs of five do not occur in prose
#     or formulas, but a letter-spaced heading alone stays under 0.1 of a page.
#   long_token_ratio 0.05-0.3: share of letters in tokens of 25+ letters (lost spaces).
#   symbol_ratio 0.1-0.35: characters that are neither letters, digits, spaces nor ordinary
#     punctuation, in the prose (formulas already cut out).
#   script_mix 0.1-0.4: letters outside the dominant script (Greek and math letters excluded).
BOUNDS: dict[str, tuple[float, float, float, str]] = {
    "cid_ratio": (0.002, 0.03, 1.0, CID),
    "replacement_ratio": (0.01, 0.1, 1.0, REPLACEMENT),
    "mojibake_ratio": (0.1, 1.0, 1.0, MOJIBAKE),
    "word_likeness": (0.7, 0.3, 0.75, WORDS),
    "lang_prob": (0.5, 0.15, 0.5, LANGUAGE),
    "letter_spaced_ratio": (0.1, 0.4, 0.9, SINGLE_CHARS),
    "long_token_ratio": (0.05, 0.3, 0.6, LONG_TOKENS),
    "symbol_ratio": (0.1, 0.35, 0.6, SYMBOLS),
    "script_mix": (0.1, 0.4, 0.6, SCRIPT_MIX),
}
HARD = ("cid_ratio", "replacement_ratio", "mojibake_ratio")
# Soft features that only mean something on enough prose (see GarbleConfig.min_prose_chars).
PROSE = ("word_likeness", "lang_prob", "letter_spaced_ratio", "long_token_ratio", "symbol_ratio", "script_mix")


@dataclass(frozen=True, slots=True)
class GarbleConfig:
    """Thresholds of the garble stage.

    page_threshold 0.5: the score's midpoint, where one hard feature at its garbled bound, or
      two soft ones, put a page. Pages at or above it leave the document (`removed="garbled"`)
      and stay readable in the pages dataset with their score and reasons.
    document_share 0.5: a document whose garbled pages hold at least half of its parsed
      characters goes to filtered/ whole: what is left is the minority of a broken file.
    min_chars 50: shorter texts (page numbers, a figure alone) are not judged: score 0, reason
      "too_short"; they carry too few characters for any ratio.
    min_prose_chars 100: the soft features need this much prose after formulas are cut out
      (about 15 words: a sentence or two); below it only the hard evidence counts (a page that
      is all equations is not garbled for having few words).
    max_chars 20000: features are measured on the first 20k characters (a page rarely has more;
      the cap bounds the cost of a hostile one).
    """

    page_threshold: float = 0.5
    document_share: float = 0.5
    min_chars: int = 50
    min_prose_chars: int = 100
    max_chars: int = 20_000

    def __post_init__(self) -> None:
        if not 0.0 < self.page_threshold <= 1.0:
            raise ConfigError(f"garble page_threshold must be in (0, 1]; got {self.page_threshold}")
        if not 0.0 < self.document_share <= 1.0:
            raise ConfigError(f"garble document_share must be in (0, 1]; got {self.document_share}")
        if self.min_chars < 1 or self.min_prose_chars < 1 or self.max_chars < self.min_chars:
            raise ConfigError("garble min_chars, min_prose_chars and max_chars must be positive, "
                              "max_chars >= min_chars")


@dataclass(frozen=True, slots=True)
class GarbleFeatures:
    """What `measure` found. Ratios are in [0, 1]; `lang` is lid.176's code on the prose."""

    chars: int = 0                 # non-space characters measured
    prose_chars: int = 0           # non-space characters left after formulas, tables, code, URLs
    cid_ratio: float = 0.0
    replacement_ratio: float = 0.0
    mojibake_ratio: float = 0.0    # ftfy badness hits per 100 characters
    word_likeness: float = 1.0
    lang: str = ""
    lang_prob: float = 1.0
    letter_spaced_ratio: float = 0.0
    long_token_ratio: float = 0.0
    symbol_ratio: float = 0.0
    script_mix: float = 0.0


@dataclass(frozen=True, slots=True)
class GarbleScore:
    score: float                   # 0 = readable language, 1 = garbled
    reasons: tuple[str, ...]       # features whose badness passed 0.5, or ("too_short",)
    features: GarbleFeatures = field(default_factory=GarbleFeatures)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"garble score {self.score} outside [0, 1]")


TOO_SHORT = "too_short"

_CID = re.compile(r"\(cid:\d+\)")
_BAD_CHARS = regex.compile(r"[\uFFFD\p{Co}\p{Cc}--[\t\n\r]]", flags=regex.V1)
_MATH = re.compile(
    r"\$\$.*?\$\$|\$[^$\n]+\$|\\\[.*?\\\]|\\\(.*?\\\)|\\begin\{(\w+\*?)\}.*?\\end\{\1\}",
    re.S,
)
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
_TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$|<table.*?</table>", re.M | re.S)
_MARKUP = re.compile(r"<(sub|sup)>.*?</\1>|<!--.*?-->|<[^>\n]{1,40}>", re.S)
_URL = re.compile(r"https?://\S+|www\.\S+|\S+@\S+\.\w+")
_LATEX_CMD = re.compile(r"\\[A-Za-z]+\*?")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LETTER_TOKEN = regex.compile(r"[\p{L}\p{M}]+")
# Ordinary punctuation and the symbols prose uses; the rest counts toward symbol_ratio.
_PLAIN = regex.compile(r"[\p{L}\p{M}\p{N}\s.,;:!?'\"()\[\]{}\-–—/%&+=<>*#_@§°·•…‘’“”«»\u3000-\u303F\uFF01-\uFF65]")
_SCRIPTS = ("Latin", "Cyrillic", "Arabic", "Hebrew", "Han", "Hiragana", "Katakana", "Hangul", "Devanagari",
            "Thai", "Armenian", "Georgian", "Bengali", "Tamil", "Ethiopic")
_SCRIPT_RE = {name: regex.compile(rf"\p{{Script={name}}}") for name in _SCRIPTS}
# Japanese mixes Han, Hiragana and Katakana; Korean Han and Hangul: one writing system each.
_SCRIPT_FAMILY = {"Hiragana": "Han", "Katakana": "Han", "Hangul": "Han"}
_LETTERS = regex.compile(r"\p{L}")
_UNSPACED = regex.compile(r"[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}"
                          r"\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}\p{Script=Tibetan}]")
_SPACED = regex.compile(r"(?<!\S)(?:\p{L}[ \t]){4,}\p{L}(?!\S)")
_MATH_LETTERS = regex.compile(r"[\p{Script=Greek}\U0001D400-\U0001D7FF\u2100-\u214F]")


def _badness(value: float, clean: float, garbled: float) -> float:
    if clean == garbled:
        return 0.0
    t = (value - clean) / (garbled - clean)
    return min(1.0, max(0.0, t))


def prose_of(text: str) -> str:
    """The text with formulas, code, tables, sub/superscripts and other markup, image links,
    URLs and LaTeX commands cut out."""
    for pattern in (_CODE, _MATH, _TABLE_LINE, _MARKUP, _IMAGE, _URL, _LATEX_CMD):
        text = pattern.sub(" ", text)
    return text


@lru_cache(maxsize=1)
def _available_languages() -> frozenset[str]:
    import wordfreq

    return frozenset(wordfreq.available_languages(wordlist="best"))


@lru_cache(maxsize=32)
def _dictionary(lang: str) -> frozenset[str] | None:
    """Words of `lang` with a Zipf frequency of at least 1 (wordfreq's large lists); None when
    wordfreq has no list for it."""
    import wordfreq

    if lang not in _available_languages():
        return None              # wordfreq would fall back on a "nearest" language (eu -> es)
    try:
        freqs = wordfreq.get_frequency_dict(lang, wordlist="best")
    except (LookupError, ValueError):
        return None
    return frozenset(w for w, f in freqs.items() if f >= 1e-8)


def _word_likeness(tokens: Sequence[str], langs: Iterable[str]) -> float:
    letters = sum(len(t) for t in tokens)
    if not letters:
        return 1.0
    best = 0.0
    for lang in dict.fromkeys(langs):
        words = _dictionary(lang) if lang else None
        if words is None:
            continue
        known = sum(len(t) for t in tokens if t in words)
        best = max(best, known / letters)
    return best


def _script_mix(prose: str) -> float:
    counts: dict[str, int] = {}
    for name, pattern in _SCRIPT_RE.items():
        n = len(pattern.findall(prose))
        if n:
            family = _SCRIPT_FAMILY.get(name, name)
            counts[family] = counts.get(family, 0) + n
    letters = len(_LETTERS.findall(prose)) - len(_MATH_LETTERS.findall(prose))
    if letters <= 0 or not counts:
        return 0.0
    return max(0.0, 1.0 - max(counts.values()) / letters)


LanguageId = Callable[[str], tuple[str, float]]


def measure(text: str, language_id: LanguageId | None, config: GarbleConfig = GarbleConfig()) -> GarbleFeatures:
    """Text -> its features. `language_id(prose) -> (iso code, probability)` (lid.176 in the
    pipeline); None skips the language feature."""
    text = text[: config.max_chars]
    chars = sum(1 for c in text if not c.isspace())
    if chars == 0:
        return GarbleFeatures()
    cid_chars = sum(len(m) for m in _CID.findall(text))
    bad = len(_BAD_CHARS.findall(text))
    from ftfy.badness import badness

    mojibake = badness(text) * 100.0 / chars
    prose = prose_of(_CID.sub(" ", text))
    prose_chars = sum(1 for c in prose if not c.isspace())
    # Scripts written without spaces (Han, kana, Thai, …) have no words to look up or to run
    # together: their tokens are left out of the word features (lid.176 still judges them).
    tokens = [t.lower() for t in _LETTER_TOKEN.findall(prose) if not _UNSPACED.search(t)]
    if prose_chars and (tokens or _UNSPACED.search(prose)):
        lang, prob = language_id(prose) if language_id is not None else ("", 1.0)
        word_likeness = _word_likeness([t for t in tokens if len(t) > 1], (lang, "en"))
        letters = sum(len(t) for t in tokens)
        single = sum(len(_LETTERS.findall(m)) for m in _SPACED.findall(prose)) / letters if letters else 0.0
        long_tokens = sum(len(t) for t in tokens if len(t) >= 25) / letters if letters else 0.0
        symbols = sum(1 for c in prose if not c.isspace() and not _PLAIN.match(c)) / prose_chars
        mix = _script_mix(prose)
    else:
        lang, prob, word_likeness, single, long_tokens, symbols, mix = "", 1.0, 1.0, 0.0, 0.0, 0.0, 0.0
    return GarbleFeatures(
        chars=chars, prose_chars=prose_chars, cid_ratio=cid_chars / chars, replacement_ratio=bad / chars,
        mojibake_ratio=mojibake, word_likeness=word_likeness, lang=lang, lang_prob=prob,
        letter_spaced_ratio=single, long_token_ratio=long_tokens, symbol_ratio=symbols, script_mix=mix,
    )


def score(features: GarbleFeatures, config: GarbleConfig = GarbleConfig()) -> GarbleScore:
    """Features -> the 0-1 garble score and the features that raised it. Pure."""
    if features.chars < config.min_chars:
        return GarbleScore(0.0, (TOO_SHORT,), features)
    names = HARD + (PROSE if features.prose_chars >= config.min_prose_chars else ())
    keep = 1.0
    reasons: list[str] = []
    for name in names:
        clean, garbled, weight, reason = BOUNDS[name]
        b = _badness(getattr(features, name), clean, garbled)
        keep *= 1.0 - weight * b
        if b >= 0.5:
            reasons.append(reason)
    value = round(1.0 - keep, 6)
    return GarbleScore(min(1.0, max(0.0, value)), tuple(reasons), features)


class GarbleDetector:
    """`measure` + `score` with lid.176 loaded once: texts -> GarbleScores."""

    name = MODEL_NAME

    def __init__(self, config: GarbleConfig = GarbleConfig(), lid_model_path: str | None = None) -> None:
        self.config = config
        self.lid_model_path = lid_model_path
        self._lid = None

    def load(self) -> "GarbleDetector":
        from scicurate.classifiers.web_fasttext import LanguageIdentifier

        self._lid = LanguageIdentifier(self.lid_model_path)
        self._lid.load()
        _dictionary("en")
        return self

    def _language(self, prose: str) -> tuple[str, float]:
        return self._lid.predict([prose])[0]

    def scores(self, texts: Sequence[str]) -> list[GarbleScore]:
        if self._lid is None:
            self.load()
        return [score(measure(t, self._language, self.config), self.config) for t in texts]


def repair_encoding(text: str) -> str:
    """Undo mojibake (UTF-8 read as Latin-1/cp1252, and the like) with ftfy's `fix_encoding`
    when ftfy's own badness test sees it; otherwise the text unchanged. Mojibake is the one
    garble that can be reversed exactly, so the pipeline repairs it before scoring rather
    than dropping the page."""
    from ftfy import fix_encoding
    from ftfy.badness import is_bad

    if not is_bad(text):
        return text
    return fix_encoding(text)


def is_garbled(result: GarbleScore, config: GarbleConfig = GarbleConfig()) -> bool:
    """The threshold stage's rule: score at or above `page_threshold`."""
    return result.score >= config.page_threshold


def feature_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(GarbleFeatures))


def describe(result: GarbleScore) -> str:
    """One line for logs and reports: score, reasons and the features behind them."""
    f = result.features
    return (f"garble {result.score:.2f} [{','.join(result.reasons) or '-'}] cid={f.cid_ratio:.3f} "
            f"bad={f.replacement_ratio:.3f} moji={f.mojibake_ratio:.2f} words={f.word_likeness:.2f} "
            f"lang={f.lang}:{f.lang_prob:.2f} spaced={f.letter_spaced_ratio:.2f} long={f.long_token_ratio:.2f} "
            f"sym={f.symbol_ratio:.2f} mix={f.script_mix:.2f}")


__all__ = ["GarbleConfig", "GarbleFeatures", "GarbleScore", "GarbleDetector", "measure", "score", "is_garbled",
           "prose_of", "describe", "repair_encoding", "MODEL_NAME", "BOUNDS", "TOO_SHORT"]
