"""Page rule filters (classifiers.web_rules): measurement, every rule, presets, config checks."""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys

import pytest

from scicurate.classifiers.web_rules import (
    DEFAULT,
    LENIENT,
    PRESETS,
    REASONS,
    RuleConfig,
    TextStats,
    check,
    describe,
    rule_failures,
    text_stats,
)
from scicurate.config import ConfigError

P1 = (
    "Marine algae convert light into chemical energy through photosynthesis, a process that has "
    "shaped the chemistry of the oceans and the atmosphere for more than two billion years. The rate "
    "of carbon fixation depends on light, temperature and the supply of nutrients such as nitrogen "
    "and iron."
)
P2 = (
    "In the open ocean, iron is often the limiting nutrient. Experiments that added dissolved iron to "
    "patches of seawater showed rapid blooms of diatoms, which are single-celled algae with silica "
    "walls. These blooms drew down carbon dioxide from the surface water, although most of the fixed "
    "carbon was respired before it could sink to the deep ocean."
)
P3 = (
    "Researchers now combine satellite observations with ship-based measurements to estimate global "
    "primary production. The estimates agree to within about twenty percent, and the remaining "
    "differences come mostly from the treatment of deep chlorophyll maxima that satellites cannot see."
)
P4 = (
    "Coastal waters behave differently. Rivers deliver nitrogen and phosphorus from farmland, so "
    "growth there is usually limited by light rather than by iron, and dense blooms can deplete the "
    "oxygen in the bottom water when they decay."
)
CLEAN = "\n\n".join([P1, P2, P3, P4])

# The same article as trafilatura writes it with output_format="markdown".
MARKDOWN = (
    "# Photosynthesis in marine algae\n\n"
    f"{P1}\n\n"
    "## Iron limitation\n\n"
    f"{P2}\n\n"
    "- Light intensity controls the rate of the light reactions.\n"
    "- Temperature affects the enzymes of the **Calvin cycle**.\n\n"
    "| Region | Limiting nutrient |\n"
    "|---|:---:|\n"
    "| Open ocean | iron |\n\n"
    f"**{P3}**\n\n"
    f"> {P4}\n"
)

CHINESE = (
    "海洋藻类通过光合作用把光能转化为化学能，这一过程在二十多亿年里塑造了海洋和大气的化学组成。"
    "碳固定的速率取决于光照、温度以及氮和铁等营养物质的供应。\n\n"
    "在开阔的大洋中，铁常常是限制性的营养元素。向海水中加入溶解铁的实验引发了硅藻的迅速繁盛，"
    "这些藻华从表层海水中吸收了二氧化碳，但大部分被固定的碳在沉入深海之前就被呼吸作用释放了。\n\n"
    "研究人员现在把卫星观测与船载测量结合起来估算全球初级生产力，各种估算结果之间的差别大约在百分之二十以内。"
)


def _failures(text: str, config: RuleConfig = DEFAULT, language: str = "") -> tuple[str, ...]:
    return check(text, config, language)[1]


def _words(n: int, seed: int = 0) -> str:
    """`n` words of varied pseudo-English prose (deterministic), in sentences of ten words."""
    rng = random.Random(seed)
    vocab = [
        "".join(rng.choice("abcdefghiklmnoprstu") for _ in range(rng.randint(3, 9))) for _ in range(3000)
    ] + ["the", "of", "and", "with"] * 50
    out = []
    for i in range(n):
        word = rng.choice(vocab)
        out.append(word + ("." if i % 10 == 9 else ""))
    return " ".join(out)


# -- clean text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [CLEAN, MARKDOWN], ids=["plain", "markdown"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_clean_articles_pass_every_preset(text, preset):
    assert _failures(text, PRESETS[preset], "en") == ()


def test_stats_of_clean_text():
    stats = text_stats(CLEAN)
    assert stats.words == len(CLEAN.replace(",", " ").replace(".", " ").split())
    assert stats.tokens == stats.words + CLEAN.count(",") + CLEAN.count(".")
    assert stats.non_empty_lines == 4 and stats.lines == 7
    assert stats.stop_words >= 20
    assert stats.c4_sentences == 9
    assert stats.line_punct_frac == stats.terminal_punct_line_frac == 1.0
    assert stats.dup_line_frac == stats.dup_5gram_char_frac == stats.char_dup_frac == 0.0
    assert not stats.truncated and stats.space_delimited
    assert 4.0 < stats.mean_word_length < 6.5


def test_text_stats_fields_are_flat_scalars():
    kinds = {f.name: f.type for f in dataclasses.fields(TextStats)}
    assert set(kinds.values()) <= {"int", "float", "bool"}
    stats = text_stats(MARKDOWN)
    for name, kind in kinds.items():
        assert type(getattr(stats, name)).__name__ == kind, name


def test_empty_text_measures_zero_and_fails_without_error():
    stats, reasons = check("")
    assert stats.words == stats.lines == stats.chars == 0
    assert stats.mean_word_length == stats.dup_line_frac == 0.0
    assert "gopher_quality:too_few_words" in reasons


# -- every rule fires on a crafted text ------------------------------------------------------------

BULLETS = "\n".join(f"- {s.strip()}." for s in (P1 + " " + P2).replace(",", "").split(".") if s.strip())
LONG_WORDS = " ".join(
    f"Pseudohypoparathyroidism{i} and electroencephalographically{i} hyperparathyroidism{i} "
    f"counterrevolutionaries{i} indistinguishability{i} with immunohistochemistry{i}."
    for i in range(12)
)
NO_STOP_WORDS = (
    "Marine algae convert light into chemical energy through photosynthesis. Carbon fixation "
    "depends on light, temperature, nitrogen supply plus iron supply. Iron limits growth across "
    "much open ocean water. Experiments adding dissolved iron produced rapid diatom blooms. "
    "Diatoms are single-celled algae carrying silica walls. Those blooms drew down carbon dioxide "
    "from surface water. Satellites now estimate global primary production quite well. "
    "Estimates agree within twenty percent across many independent groups."
)
NUMBER_TABLE = CLEAN + "\n\n" + "\n".join(
    " ".join(f"{(i * 7 + j * 13) % 97}.{j} ±{j}" for j in range(8)) + " ." for i in range(12)
)
CRAFTED = {
    "gopher_quality:too_few_words": "The cell divides. It then grows. It divides again. It stops. It dies.",
    "gopher_quality:mean_word_length": LONG_WORDS,
    "gopher_quality:symbol_word_ratio": CLEAN + " " + " ".join(f"#topic{i}" for i in range(30)) + ".",
    "gopher_quality:bullet_lines": BULLETS,
    "gopher_quality:ellipsis_lines": "\n".join(p.rsplit(".", 1)[0] + "..." for p in (P1, P2, P3)) + "\n" + P4,
    "gopher_quality:alpha_words": NUMBER_TABLE,
    "gopher_quality:stop_words": NO_STOP_WORDS,
    "gopher_repetition:dup_line_frac": "\n".join([P1, P2, P3, P4, "Read more."] + ["Share this."] * 4),
    "gopher_repetition:dup_para_frac": "\n\n".join([P1, P2, "Subscribe now.", "Subscribe now.", "Subscribe now."]),
    "gopher_repetition:dup_line_char_frac": "\n".join([P1, P2, P3, P4, P3, P4]),
    "gopher_repetition:dup_para_char_frac": "\n\n".join([P1, P2, P3, P4, P3, P4]),
    "gopher_repetition:top_2gram": CLEAN + " " + " ".join(f"photosynthetic efficiency {i}" for i in range(60)) + ".",
    "gopher_repetition:top_3gram": CLEAN + " " + " ".join(f"photosynthetic carbon efficiency {i}" for i in range(50)) + ".",
    "gopher_repetition:top_4gram": CLEAN + " " + " ".join(f"the photosynthetic carbon efficiency {i}." for i in range(40)),
    **{f"gopher_repetition:dup_{n}gram": P1 + " " + P2 + " " + P2 + " " + P3 for n in range(5, 11)},
    "c4:lorem_ipsum": CLEAN + "\n\nLorem ipsum dolor sit amet, consectetur adipiscing elit.",
    "c4:javascript": CLEAN + "\n\nPlease enable JavaScript to view the comments.",
    "c4:policy": CLEAN + "\n\nThis site uses cookies. By continuing you accept our privacy policy.",
    "c4:too_few_sentences": P1 + " " + P2.replace(". ", "; ") + " " + P3.replace(". ", "; "),
    "fineweb:line_punct": "\n".join(w.strip() for w in (P1 + " " + P2 + " " + P3).replace(".", "").split(",")),
    "fineweb:short_lines": "\n".join([P1, P2] + [f"Section {i} of the report" for i in range(8)]),
    "fineweb:char_dup": "\n".join([P1, P2, P3, P4, "Figure 1. Chlorophyll in the surface water.", "Figure 1. Chlorophyll in the surface water."]),
    "fineweb:list_ratio": "\n".join(f"{w}." for w in (P1 + " " + P2).replace(",", "").replace(".", "").split()[:60]),
}


def test_crafted_texts_cover_every_reason_but_the_config_only_ones():
    assert set(CRAFTED) | {"gopher_quality:too_many_words", "c4:curly_brace"} == set(REASONS)


@pytest.mark.parametrize("reason", sorted(CRAFTED))
def test_each_rule_fires_on_its_crafted_text(reason):
    assert reason in _failures(CRAFTED[reason], DEFAULT, "en")


def test_too_many_words_extrapolates_a_truncated_page():
    text = _words(120_000)
    stats, reasons = check(text)
    assert stats.truncated and stats.chars == 200_000 < stats.total_chars
    assert stats.words < 100_000
    assert "gopher_quality:too_many_words" in reasons
    # The first 40k words alone are a long but acceptable page.
    assert "gopher_quality:too_many_words" not in _failures(_words(40_000))


def test_curly_brace_is_off_by_default_and_fires_when_switched_on():
    text = CLEAN + "\n\nThe fit minimises the loss $L = \\frac{1}{n} \\sum_i r_i^2$ over the samples."
    assert text_stats(text).curly_brace
    assert "c4:curly_brace" not in _failures(text)
    assert "c4:curly_brace" in _failures(text, DEFAULT.replace(c4_curly_brace=True))


def test_rules_are_independent_of_each_other_on_stats():
    """Pushing one stat past its threshold fails exactly that rule (stats of the clean text)."""
    clean = text_stats(CLEAN)
    pushes = {
        "gopher_quality:too_few_words": {"words": 10},
        "gopher_quality:too_many_words": {"words": 100_001},
        "gopher_quality:mean_word_length": {"mean_word_length": 11.0},
        "gopher_quality:symbol_word_ratio": {"symbol_word_ratio": 0.11},
        "gopher_quality:bullet_lines": {"bullet_line_frac": 0.95},
        "gopher_quality:ellipsis_lines": {"ellipsis_line_frac": 0.31},
        "gopher_quality:alpha_words": {"alpha_word_frac": 0.79},
        "gopher_quality:stop_words": {"stop_words": 1},
        "gopher_repetition:dup_line_frac": {"dup_line_frac": 0.31},
        "gopher_repetition:dup_para_frac": {"dup_para_frac": 0.31},
        "gopher_repetition:dup_line_char_frac": {"dup_line_char_frac": 0.21},
        "gopher_repetition:dup_para_char_frac": {"dup_para_char_frac": 0.21},
        "gopher_repetition:top_2gram": {"top_2gram_char_frac": 0.21},
        "gopher_repetition:top_3gram": {"top_3gram_char_frac": 0.19},
        "gopher_repetition:top_4gram": {"top_4gram_char_frac": 0.17},
        **{f"gopher_repetition:dup_{n}gram": {f"dup_{n}gram_char_frac": 0.16} for n in range(5, 11)},
        "c4:lorem_ipsum": {"lorem_ipsum": True},
        "c4:curly_brace": {"curly_brace": True},
        "c4:javascript": {"javascript_line_frac": 0.2},
        "c4:policy": {"policy_line_frac": 0.2},
        "c4:too_few_sentences": {"c4_sentences": 4},
        "fineweb:line_punct": {"line_punct_frac": 0.12},
        "fineweb:short_lines": {"short_line_frac": 0.67},
        "fineweb:char_dup": {"char_dup_frac": 0.01},
        "fineweb:list_ratio": {"list_frac": 0.31},
    }
    assert set(pushes) == set(REASONS)
    config = DEFAULT.replace(c4_curly_brace=True)
    assert rule_failures(clean, config) == ()
    for reason, change in pushes.items():
        assert rule_failures(dataclasses.replace(clean, **change), config, "en") == (reason,), reason


def test_failures_come_in_reasons_order():
    text = "Lorem ipsum dolor sit amet...\nLorem ipsum dolor sit amet...\n#a #b #c"
    reasons = _failures(text)
    assert len(reasons) > 3
    assert list(reasons) == sorted(reasons, key=REASONS.index)


def test_group_switches_turn_off_their_rules():
    text = CRAFTED["gopher_repetition:dup_para_frac"]
    off = DEFAULT.replace(gopher_quality=False, gopher_repetition=False, c4=False, fineweb=False)
    assert _failures(text) and _failures(text, off) == ()
    only_repetition = off.replace(gopher_repetition=True)
    assert all(r.startswith("gopher_repetition:") for r in _failures(text, only_repetition))


def test_lenient_relaxes_symbols_and_alpha_words():
    equations = CLEAN + "\n\n" + " ".join(f"$x_{i} = {i} y + {2 * i}$ ," for i in range(12)) + " and so on."
    assert "gopher_quality:alpha_words" in _failures(equations)
    assert "gopher_quality:alpha_words" not in _failures(equations, LENIENT)
    code_comments = CLEAN + " " + " ".join(f"#step{i}" for i in range(30)) + "."
    assert "gopher_quality:symbol_word_ratio" in _failures(code_comments)
    assert "gopher_quality:symbol_word_ratio" not in _failures(code_comments, LENIENT)


# -- languages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh", "zh-Hans", "__label__zh", ""])
def test_chinese_is_not_failed_by_word_rules(language):
    stats, reasons = check(CHINESE, DEFAULT, language)
    assert not stats.space_delimited
    assert stats.no_space_word_frac > 0.9
    word_rules = {"gopher_quality:too_few_words", "gopher_quality:too_many_words",
                  "gopher_quality:mean_word_length", "gopher_quality:stop_words"}
    assert not word_rules & set(reasons)
    assert not any(r.startswith("gopher_repetition:") for r in reasons)


def test_stop_word_rule_applies_to_english_only():
    german = (
        "Meeresalgen wandeln Licht durch Photosynthese in chemische Energie um. Dieser Prozess "
        "prägt seit mehr als zwei Milliarden Jahren die Chemie der Ozeane und der Atmosphäre. "
    ) * 5
    stats = text_stats(german, "de")
    assert stats.stop_words < 2 and stats.space_delimited
    assert "gopher_quality:stop_words" in rule_failures(stats, DEFAULT, "en")
    assert "gopher_quality:stop_words" not in rule_failures(stats, DEFAULT, "de")
    assert "gopher_quality:stop_words" in rule_failures(stats, DEFAULT, "")   # unknown = English


def test_exempt_languages_come_from_config():
    stats = text_stats("Short text in Korean script transliteration.", "ko")
    assert "gopher_quality:too_few_words" not in rule_failures(stats, DEFAULT, "ko")
    stats = text_stats("Short text.", "xx")
    custom = DEFAULT.replace(word_rule_exempt_languages=frozenset({"xx"}))
    assert "gopher_quality:too_few_words" in rule_failures(stats, DEFAULT, "xx")
    assert "gopher_quality:too_few_words" not in rule_failures(stats, custom, "xx")


# -- Markdown ----------------------------------------------------------------------------------------


def test_markdown_markers_are_not_content():
    stats = text_stats(MARKDOWN)
    assert stats.heading_lines == 2
    assert stats.hash_word_ratio == 0.0               # heading `#`s are markup, not hashtags
    assert stats.bullet_line_frac == pytest.approx(2 / stats.non_empty_lines)
    # lines: 2 headings, P1, P2, 2 items, 2 table rows (separator is markup), P3, P4
    assert stats.non_empty_lines == 10
    plain = text_stats(CLEAN)
    assert stats.alpha_word_frac >= plain.alpha_word_frac - 0.01   # `|` and `**` are not words
    # `**P3.**` and `> P4.` end in punctuation once the markers go.
    assert stats.line_punct_frac == pytest.approx(6 / 10)


def test_markdown_lists_count_as_bullets_numbered_too():
    items = "\n".join(f"{i}. {s}." for i, s in enumerate(P1.split(", "), start=1))
    dashes = "\n".join(f"- {s}." for s in P1.split(", "))
    stars = "\n".join(f"* {s}." for s in P1.split(", "))
    for text in (items, dashes, stars):
        assert text_stats(text).bullet_line_frac == 1.0
    assert text_stats("-5 degrees was the lowest reading of the winter.").bullet_line_frac == 0.0


def test_hashtags_in_text_still_count():
    stats = text_stats("# Heading\n\nWe love #science and #biology and #chemistry.")
    assert stats.hash_word_ratio == pytest.approx(3 / stats.tokens)


# -- config ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("changes", [
    {"min_words": 200, "max_words": 100},
    {"min_words": -1},
    {"min_mean_word_length": 12.0},
    {"max_bullet_line_frac": 1.5},
    {"min_alpha_word_frac": -0.1},
    {"max_char_dup_frac": 2.0},
    {"max_symbol_word_ratio": -1.0},
    {"max_top_ngram_char_frac": (0.2, 0.18)},
    {"max_dup_ngram_char_frac": (0.15,) * 6 + (0.1,)},
    {"max_dup_ngram_char_frac": (0.15, 0.14, 0.13, 0.12, 0.11, 1.5)},
    {"stop_word_languages": {"en"}},
    {"word_rule_exempt_languages": frozenset({""})},
    {"min_sentences": -1},
])
def test_invalid_config_is_rejected(changes):
    with pytest.raises(ConfigError):
        DEFAULT.replace(**changes)


def test_presets():
    assert PRESETS == {"default": DEFAULT, "lenient": LENIENT}
    assert DEFAULT == RuleConfig()
    assert DEFAULT.min_words == 50 and DEFAULT.max_words == 100_000
    assert DEFAULT.max_dup_ngram_char_frac == (0.15, 0.14, 0.13, 0.12, 0.11, 0.10)
    assert not DEFAULT.c4_curly_brace and not LENIENT.c4_curly_brace
    assert LENIENT.max_symbol_word_ratio > DEFAULT.max_symbol_word_ratio
    assert LENIENT.min_alpha_word_frac < DEFAULT.min_alpha_word_frac


# -- reasons ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", REASONS)
def test_every_reason_is_described(reason):
    group, rule = reason.split(":")
    assert group in {"gopher_quality", "gopher_repetition", "c4", "fineweb"} and rule
    assert describe(reason) and "\n" not in describe(reason)


def test_unknown_reason_is_an_error():
    with pytest.raises(ValueError):
        describe("gopher_quality:nope")


@pytest.mark.parametrize("text", [*CRAFTED.values(), CLEAN, MARKDOWN, CHINESE, "", "x"])
def test_only_known_reasons_are_emitted(text):
    everything = DEFAULT.replace(c4_curly_brace=True)
    assert set(_failures(text, everything)) <= set(REASONS)


# -- determinism -------------------------------------------------------------------------------------


def test_same_text_same_stats_across_hash_seeds():
    text = CRAFTED["gopher_repetition:top_2gram"] + "\n" + CRAFTED["gopher_repetition:dup_5gram"]
    script = (
        "import sys; from scicurate.classifiers.web_rules import check; "
        "print(repr(check(sys.stdin.read())))"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", script], input=text, capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("0", "1", "12345")
    }
    assert len(outputs) == 1
    assert check(text) == check(text)


# -- the fast repeated n-gram scan equals datatrove's scan ---------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_dup_ngram_scan_matches_the_reference(seed):
    from itertools import accumulate

    from scicurate.classifiers.web_rules import DUP_NGRAMS, _dup_ngram_chars, _dup_ngram_chars_reference

    rng = random.Random(seed)
    vocab = [f"w{i}" * rng.randint(1, 3) for i in range(rng.choice([2, 3, 5, 20, 200]))]
    tokens = [rng.choice(vocab) for _ in range(rng.randint(0, 400))]
    if seed % 3 == 0 and tokens:                       # long verbatim repeats, overlapping ones too
        start = rng.randrange(len(tokens))
        tokens = tokens + tokens[start:start + 30] * 3 + tokens[: rng.randint(0, 50)]
    cum = [0, *accumulate(map(len, tokens))]
    expected = {n: _dup_ngram_chars_reference(tokens, n) for n in DUP_NGRAMS}
    assert _dup_ngram_chars(tokens, cum, DUP_NGRAMS) == expected
    text = " ".join(tokens)
    stats = text_stats(text)
    for n in DUP_NGRAMS:
        assert getattr(stats, f"dup_{n}gram_char_frac") == pytest.approx(expected[n] / len(text) if text else 0.0)
