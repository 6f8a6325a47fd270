"""Formula check: extraction (pure), the KaTeX checker (real Node + KaTeX) and its failure paths."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from scicurate.config import ConfigError
from scicurate.parsers import formula_check as fc
from scicurate.parsers.formula_check import (
    KIND_DISPLAY,
    KIND_INLINE,
    REASON_CRASH,
    REASON_PARSE_ERROR,
    REASON_RENDER_ERROR,
    REASON_TIMEOUT,
    REASON_TOO_LONG,
    REASON_UNCLOSED,
    Formula,
    FormulaCheckConfig,
    FormulaChecker,
    FormulaReport,
    FormulaResult,
    check_text,
    extract_formulas,
    katex_source,
    summarize,
)


def spans(text: str) -> list[tuple[str, str, str]]:
    """(kind, text as written, latex) of every formula: offsets are checked by slicing."""
    return [(f.kind, text[f.start:f.end], f.latex) for f in extract_formulas(text)]


# ---------------------------------------------------------------------------------------------
# Extraction (pure).

def test_inline_and_display_delimiters_with_offsets():
    text = "Let $x^2$ be \\(y\\) and\n\n$$\n\\frac{1}{2}\n$$\n\nor \\[ z \\] done."
    assert spans(text) == [
        (KIND_INLINE, "$x^2$", "x^2"),
        (KIND_INLINE, "\\(y\\)", "y"),
        (KIND_DISPLAY, "$$\n\\frac{1}{2}\n$$", "\\frac{1}{2}"),
        (KIND_DISPLAY, "\\[ z \\]", "z"),
    ]
    delimiters = [f.delimiter for f in extract_formulas(text)]
    assert delimiters == ["$", "\\(", "$$", "\\["]


@pytest.mark.parametrize("text", [
    "It costs $5 and $10.",
    "From $20,000 to $30,000 a year.",
    "US$ 5 and US$ 7",
    "Pay $ 5 per m^2 and $ 3 per m.",
    "A lone $ sign.",
    "Trailing $",
    "$a$5 is not math",         # closing $ followed by a digit
    "$a $ is not math",         # space before the closer, no TeX in it
    "$ $",
])
def test_currency_and_stray_dollars_are_not_formulas(text):
    assert extract_formulas(text) == ()


def test_escaped_dollars_and_backslashes():
    assert spans("Cost \\$5, then $x$.") == [(KIND_INLINE, "$x$", "x")]
    assert spans("$a\\$b$") == [(KIND_INLINE, "$a\\$b$", "a\\$b")]
    assert spans("$$a \\\\ b$$") == [(KIND_DISPLAY, "$$a \\\\ b$$", "a \\\\ b")]
    # `\\[2pt]` is a line break with spacing, not a display opener
    text = "\\[ a \\\\[2pt] b \\]"
    assert spans(text) == [(KIND_DISPLAY, text, "a \\\\[2pt] b")]
    assert extract_formulas("a \\\\[ b") == ()  # escaped backslash, then a plain bracket


def test_code_spans_fences_and_comments_are_skipped():
    text = textwrap.dedent("""\
        Use `$HOME` and ``a `$x$` b`` then $y$.

        ```bash
        echo "$$ not math $$" $z$
        ```

        ~~~~
        $w$
        ~~~~
        <!-- $c$ --> $v$
        """)
    assert [f.latex for f in extract_formulas(text)] == ["y", "v"]
    assert [f.latex for f in extract_formulas("```\n$a$\n")] == []  # unclosed fence runs to the end
    assert [f.latex for f in extract_formulas("$`a`$")] == ["`a`"]   # math opened first wins


def test_inline_math_crosses_a_line_but_no_formula_crosses_a_blank_line():
    assert spans("$a +\nb$") == [(KIND_INLINE, "$a +\nb$", "a +\nb")]
    assert extract_formulas("$a\n\nb$") == ()


def test_space_after_a_control_word_is_tolerated_when_the_body_is_tex():
    assert spans("so $P\\beta $ holds") == [(KIND_INLINE, "$P\\beta $", "P\\beta")]
    assert spans("so $ x_1 $ holds") == [(KIND_INLINE, "$ x_1 $", "x_1")]
    assert spans("$$=R\\ \\mathbf{u}\\ $$") == [(KIND_DISPLAY, "$$=R\\ \\mathbf{u}\\ $$", "=R\\ \\mathbf{u}\\ ")]


def test_top_level_environments():
    text = "Text\n\\begin{align}\na &= b \\label{x} \\\\\n\\begin{align}c\\end{align}\n\\end{align}\nafter $q$"
    found = extract_formulas(text)
    assert [(f.kind, f.delimiter) for f in found] == [(KIND_DISPLAY, "env"), (KIND_INLINE, "$")]
    assert found[0].latex.startswith("\\begin{align}") and found[0].latex.endswith("\\end{align}")
    assert text[found[0].end:].startswith("\nafter")
    # environments inside math belong to that formula; unknown environments are not math
    assert [f.delimiter for f in extract_formulas("$$\\begin{aligned}a\\end{aligned}$$")] == ["$$"]
    assert extract_formulas("\\begin{theorem}x\\end{theorem}") == ()
    assert [f.kind for f in extract_formulas("\\begin{math}x\\end{math}")] == [KIND_INLINE]


@pytest.mark.parametrize("text, opener, kind", [
    ("Cut $$\n\\frac{1}{2}\n\nNext $x$.", "$$", KIND_DISPLAY),
    ("Cut \\[ a + b\n\nNext $x$.", "\\[", KIND_DISPLAY),
    ("Cut \\( a + b\n\nNext $x$.", "\\(", KIND_INLINE),
    ("Cut \\begin{equation} a\n\nNext $x$.", "env", KIND_DISPLAY),
    ("Let $\\alpha be small.\n\nNext $x$.", "$", KIND_INLINE),
])
def test_unclosed_delimiters_are_formulas_of_their_own(text, opener, kind):
    first, second = extract_formulas(text)
    assert (first.kind, first.delimiter, first.unclosed) == (kind, opener, True)
    assert text[first.end:first.end + 2] == "\n\n"  # it spans to the end of its paragraph
    assert (second.latex, second.unclosed) == ("x", False)  # the next paragraph is unaffected


def test_katex_source_modes_and_environment_equivalents():
    def source(text: str) -> tuple[str, bool]:
        (formula,) = extract_formulas(text)
        return katex_source(formula)

    assert source("$x$") == ("x", False)
    assert source("$$x$$") == ("x", True)
    assert source("\\begin{align}a&=b\\end{align}") == ("\\begin{align}a&=b\\end{align}", True)
    assert source("\\begin{multline*}a\\\\b\\end{multline*}") == ("\\begin{align*}a\\\\b\\end{align*}", True)
    assert source("$$\\begin{eqnarray}a&=&b\\end{eqnarray}$$") == ("\\begin{align}a&=&b\\end{align}", True)
    assert source("\\begin{displaymath}y\\end{displaymath}") == ("y", True)
    assert source("\\begin{math}y\\end{math}") == ("y", False)


def test_records_validate_and_summarize_counts():
    with pytest.raises(ValueError):
        Formula("block", 0, 1, "x")
    with pytest.raises(ValueError):
        Formula(KIND_INLINE, 3, 3, "x")
    with pytest.raises(ValueError):
        FormulaResult(KIND_INLINE, 0, 3, False)  # broken without a reason
    with pytest.raises(ValueError):
        FormulaReport(formulas=2, inline=1, display=0, broken=0)
    with pytest.raises(ValueError):
        FormulaReport(formulas=1, inline=1, display=0, broken=1)  # broken list missing

    formulas = extract_formulas("$a$ $b$ $$c$$ $$d$$")
    bad = FormulaResult(KIND_DISPLAY, formulas[3].start, formulas[3].end, False, REASON_PARSE_ERROR, "boom")
    results = [FormulaResult(f.kind, f.start, f.end, True) for f in formulas[:3]] + [bad]
    report = summarize(formulas, results, "katex@test")
    assert (report.formulas, report.inline, report.display, report.broken) == (4, 2, 2, 1)
    assert report.broken_formulas == (bad,)
    assert report.valid_ratio == 0.75 and report.reparse_candidate
    assert report.to_dict()["broken_formulas"][0]["reason"] == REASON_PARSE_ERROR
    empty = summarize((), ())
    assert empty.valid_ratio == 1.0 and not empty.reparse_candidate


def test_shim_list_matches_the_worker():
    js = fc.WORKER_SCRIPT.read_text()
    body = js[js.index("function latexShims()"):js.index("const SHIM_RE")]
    defined = {"\\" + name for name in re.findall(r'"\\\\([A-Za-z]+)":', body)}
    pattern = re.search(r"const SHIM_RE = /\\\\\(\?:([a-z|]+)\)", js).group(1)
    assert defined == set(fc.LATEX_SHIMS) == {"\\" + name for name in pattern.split("|")}


def test_config_errors_are_fatal_and_say_what_to_fix():
    with pytest.raises(ConfigError, match="timeouts"):
        FormulaCheckConfig(timeout_s=0)
    with pytest.raises(ConfigError, match="output"):
        FormulaCheckConfig(output="svg")


def test_missing_node_or_katex_names_the_fix(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="make install"):
        FormulaChecker(FormulaCheckConfig(node="no-such-node-binary-xyz")).start()
    monkeypatch.setattr(fc, "_REPO_ROOT", tmp_path)
    monkeypatch.setenv(fc.KATEX_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="npm ci"):
        fc.find_katex_dir()


# ---------------------------------------------------------------------------------------------
# The checker with real KaTeX.

def _skip_reason() -> str:
    if shutil.which("node") is None:
        return "Node.js is not on PATH: install Node.js >= 18 and run `make install` (npm ci)"
    try:
        fc.find_katex_dir()
    except ConfigError as exc:
        return str(exc)
    return ""


needs_katex = pytest.mark.skipif(bool(_skip_reason()), reason=_skip_reason() or "KaTeX present")
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not on PATH")


@pytest.fixture(scope="module")
def checker():
    if _skip_reason():
        pytest.skip(_skip_reason())
    with FormulaChecker() as c:
        yield c


@needs_katex
def test_valid_broken_and_unknown_macro(checker):
    verdicts = checker.check_latex([
        ("\\frac{a}{b} + \\sum_{i=1}^n x_i", False),
        ("\\frac{1}{", False),
        ("\\foo x", False),
        ("\\begin{align}a&=b\\end{align}", True),
        ("\\begin{align}a&=b\\end{align}", False),   # align is display-only, in LaTeX too
        ("E = mc^2 \\label{eq:1} \\tag{1}", True),     # \label shimmed, \tag in display mode
        ("\\mbox{if } x>0 \\text{, see } \\eqref{eq:1}", False),
        ("\\ce{H2O + CO2 <=> H2CO3}", False),            # mhchem
        ("\\si{m}", False),                              # a package command KaTeX lacks
    ])
    assert [v.ok for v in verdicts] == [True, False, False, True, False, True, True, True, False]
    assert verdicts[1].reason == REASON_PARSE_ERROR and "expected '}'" in verdicts[1].error
    assert "Undefined control sequence: \\foo" in verdicts[2].error
    assert "\u0332" not in verdicts[2].error  # KaTeX's underlining is stripped
    assert "display mode" in verdicts[4].error
    assert "\\si" in verdicts[8].error


@needs_katex
def test_check_text_reports_broken_formulas_per_formula(checker):
    text = "Good $x_1$ and bad $\\frac{1}{$ here.\n\n$$\n\\int_0^1 f\n$$\n\nCut $$ a +\n\nprice $5"
    report = check_text(text, checker)
    assert (report.formulas, report.inline, report.display, report.broken) == (4, 2, 2, 2)
    assert report.checker == "katex@" + checker.ready_info["katex"]
    reasons = [(r.kind, text[r.start:r.end], r.reason) for r in report.broken_formulas]
    assert reasons == [(KIND_INLINE, "$\\frac{1}{$", REASON_PARSE_ERROR),
                       (KIND_DISPLAY, "$$ a +", REASON_UNCLOSED)]
    assert report.valid_ratio == 0.5 and report.reparse_candidate


@needs_katex
def test_hostile_formulas_end_quickly(checker):
    nested = "{" * 8_000 + "x" + "}" * 8_000  # overflows KaTeX's recursion
    bomb = "".join(f"\\def\\{a}{{\\{b}\\{b}}}" for a, b in zip("abcdefghij", "bcdefghijk")) + "\\def\\k{xx}\\a"
    verdicts = checker.check_latex([(nested, False), (bomb, False), ("\\hspace{1000000em}x", False),
                                    ("\\href{javascript:alert(1)}{x}", False), ("y", False)])
    assert verdicts[0].reason == REASON_RENDER_ERROR and "RangeError" in verdicts[0].error
    assert verdicts[1].reason == REASON_PARSE_ERROR and "Too many expansions" in verdicts[1].error
    assert verdicts[2].ok and verdicts[3].ok and verdicts[4].ok  # sizes capped, links inert


@needs_katex
def test_definitions_do_not_leak_between_formulas(checker):
    first, second = checker.check_latex([("\\gdef\\leak{x}\\leak", False), ("\\leak", False)])
    assert first.ok and not second.ok and "\\leak" in second.error


@needs_katex
def test_megabyte_formula_is_too_long_or_times_out_then_the_checker_recovers():
    huge = "x+" * 500_000
    with FormulaChecker() as c:
        (verdict,) = c.check_latex([(huge, False)])
        assert verdict.reason == REASON_TOO_LONG and c.stats["checked"] == 0
    with FormulaChecker(FormulaCheckConfig(max_chars=2_000_000, timeout_s=1.0)) as c:
        verdicts = c.check_latex([("a", False), (huge, False), ("\\frac{1}{", False), ("b", False)])
        assert [v.reason for v in verdicts] == ["", REASON_TIMEOUT, REASON_PARSE_ERROR, ""]
        assert c.stats["restart"] == 2  # killed on the batch, and again on its retry alone
        assert c.stats[REASON_TIMEOUT] == 1


@needs_katex
def test_cache_skips_repeats_but_not_failures_of_the_checker(checker):
    before = checker.stats["checked"]
    batch = [("\\alpha_{cache}", False)] * 3 + [("\\alpha_{cache}", True)]
    assert all(v.ok for v in checker.check_latex(batch))
    assert checker.stats["checked"] - before == 2  # (latex, mode) pairs, once each
    hits = checker.stats["cache_hit"]
    checker.check_latex([("\\alpha_{cache}", False)])
    assert checker.stats["checked"] - before == 2 and checker.stats["cache_hit"] == hits + 1


@needs_katex
def test_large_batch_keeps_order_without_pipe_deadlock(checker):
    items = [(f"x_{{{i}}} + \\frac{{{i}}}{{" + ("}" if i % 7 else ""), i % 2 == 0) for i in range(4000)]
    items.append(("\\sqrt{" + "a+" * 8000 + "b}", True))  # one long line in the stream
    verdicts = checker.check_latex(items)
    assert [v.ok for v in verdicts[:-1]] == [bool(i % 7) for i in range(4000)]
    assert verdicts[-1].ok


@needs_katex
def test_close_stops_the_child_and_is_idempotent():
    c = FormulaChecker()
    with c:
        proc = c._proc
        assert c.check_latex([("x", False)])[0].ok
    assert proc.poll() is not None
    c.close()


# ---------------------------------------------------------------------------------------------
# Timeout and crash handling, with a fake worker (needs Node only).

FAKE_WORKER = r"""
"use strict";
const fs = require("fs");
const readline = require("readline");
const out = (o) => fs.writeSync(1, JSON.stringify(o) + "\n");
const marker = process.argv[2] + "/crashed-once";
if (fs.existsSync(process.argv[2] + "/not-ready")) { out({ready: false, message: "fake cannot load"}); process.exit(2); }
out({ready: true, katex: "fake"});
readline.createInterface({input: process.stdin}).on("line", (line) => {
    const r = JSON.parse(line);
    if (r.latex === "HANG") { for (;;) {} }
    if (r.latex === "CRASH") process.exit(3);
    if (r.latex === "CRASH_ONCE" && !fs.existsSync(marker)) { fs.writeFileSync(marker, ""); process.exit(3); }
    out(r.latex === "BAD" ? {i: r.i, ok: false, reason: "parse_error", error: "bad"} : {i: r.i, ok: true});
});
"""


@pytest.fixture()
def fake(tmp_path):
    katex_dir = tmp_path / "katex"
    (katex_dir / "dist").mkdir(parents=True)
    (katex_dir / "package.json").write_text(json.dumps({"name": "katex"}))
    (katex_dir / "dist" / "katex.js").write_text("")
    script = tmp_path / "fake_worker.js"
    script.write_text(FAKE_WORKER)
    return katex_dir, script


@needs_node
def test_timeout_and_crash_mark_only_the_culprit(fake):
    katex_dir, script = fake
    counted: dict[str, int] = {}
    config = FormulaCheckConfig(katex_dir=str(katex_dir), timeout_s=0.5)
    with FormulaChecker(config, script=script, count=lambda k, n: counted.__setitem__(k, counted.get(k, 0) + n)) as c:
        assert c.version == "katex@fake"
        verdicts = c.check_latex([(x, False) for x in ("a", "HANG", "b", "CRASH", "BAD", "c")])
        assert [v.reason for v in verdicts] == ["", REASON_TIMEOUT, "", REASON_CRASH, REASON_PARSE_ERROR, ""]
        assert "exit code 3" in verdicts[3].error
        assert counted["restart"] == 4  # each culprit: once in the batch, once alone
        assert counted[REASON_TIMEOUT] == 1 and counted[REASON_CRASH] == 1 and counted["broken"] == 3
        # failures of the checker are not cached: the next call tries again
        assert c.check_latex([("HANG", False)])[0].reason == REASON_TIMEOUT
        assert counted["restart"] == 6


@needs_node
def test_a_one_off_crash_is_retried_alone(fake):
    katex_dir, script = fake
    with FormulaChecker(FormulaCheckConfig(katex_dir=str(katex_dir)), script=script) as c:
        verdicts = c.check_latex([("a", False), ("CRASH_ONCE", False), ("b", False)])
        assert [v.ok for v in verdicts] == [True, True, True] and c.stats["restart"] == 1


@needs_node
def test_worker_that_cannot_load_katex_fails_at_start_up(fake):
    katex_dir, script = fake
    (katex_dir / "not-ready").write_text("")
    with pytest.raises(ConfigError, match="fake cannot load"):
        FormulaChecker(FormulaCheckConfig(katex_dir=str(katex_dir)), script=script).start()


@needs_node
def test_a_checker_dropped_without_close_leaves_no_worker(fake):
    """A worker spinning on a formula is killed when its checker is garbage-collected."""
    import gc

    katex_dir, script = fake
    checker = FormulaChecker(FormulaCheckConfig(katex_dir=str(katex_dir), timeout_s=30), script=script)
    checker.start()
    proc = checker._proc
    proc.stdin.write(b'{"i": 0, "latex": "HANG", "display": false}\n')
    proc.stdin.flush()
    del checker
    gc.collect()
    assert proc.wait(timeout=10) is not None
