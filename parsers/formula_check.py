"""Check every formula of a parsed page with a real LaTeX math parser (KaTeX, through Node).

A page whose Markdown holds a formula KaTeX cannot parse was most likely mis-parsed (a cut
`\\frac{1}{`, a macro the OCR model invented, a delimiter lost at a column break): it is a
re-parse candidate for the high-cost route. Nothing here knows about Beam.

- `extract_formulas(markdown) -> tuple[Formula, ...]` (pure): every inline and display formula,
  with offsets into the text.
- `FormulaChecker`: a long-lived `node katex_check.js` child that runs `katex.renderToString`
  on each formula (JSON lines over pipes), with a cache, a per-formula timeout and restarts.
- `check_text(markdown, checker) -> FormulaReport`: totals and the broken formulas of one page;
  `summarize(formulas, results)` is the pure half of it.

What counts as a formula (Pandoc's `tex_math_dollars` + `tex_math_single_backslash` rules):
- `$$…$$` and `\\[…\\]` are display, `$…$` and `\\(…\\)` inline. `\\begin{E}…\\end{E}` outside
  other math, for E in `MATH_ENVIRONMENTS`, is display (`math` is inline).
- An inline `$` opens only when a non-space follows it, and closes at the first unescaped `$`
  after it, which must not follow a space nor precede a digit; otherwise the opening `$` is a
  literal dollar. So "costs $5 and $10" has no formula. One deliberate deviation: a pair that
  fails only on the space rule is a formula when its body holds TeX (a control word, `_`,
  `^`) and does not start with a digit: LaTeX writers and OCR models leave a space after a
  control word (`$P\\beta $`; 10 of the 221 inline formulas of the formula bench's ground
  truth), and MathJax and KaTeX's auto-render accept it. "costs $ 5 and $ 10" stays prose.
- `\\$` is a dollar and `\\\\` a backslash, in prose and in math. Code spans, fenced code
  blocks and HTML comments are skipped.
- No formula crosses a blank line (a paragraph break), as in Pandoc: an opener whose closer
  is not found before the paragraph ends is a formula of its own, reason `unclosed_delimiter`,
  spanning to the paragraph's end. A lone `$` is only taken as unclosed when TeX follows it in
  the paragraph (a control word such as `\\alpha`, or `_{` / `^{`); else it is a literal dollar.
- Indented (4-space) code blocks are not recognised: the parsers always fence code, and an
  indented display formula must not be skipped.

How a formula is checked (`katex_source`): inline formulas in inline mode, display formulas in
display mode, so that `align`, `gather`, `equation`, `alignat` and `\\tag` (which KaTeX renders
only in display mode) are accepted where LaTeX accepts them. A top-level environment is passed
as is in display mode. Environments LaTeX has and KaTeX lacks are checked as their nearest
KaTeX equivalent: `multline`, `eqnarray`, `flalign` as `align` (same starred form);
`displaymath` and `math` are unwrapped. The worker loads KaTeX's mhchem extension (`\\ce`, `\\pu`) and
defines the few LaTeX-kernel commands KaTeX lacks as their nearest equivalent (`LATEX_SHIMS`);
package commands it lacks (`\\si`, `\\mathbbm`, `\\symbf`) are reported as parse errors.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
import weakref
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from scicurate.config import ConfigError

_LOG = logging.getLogger(__name__)

KIND_INLINE = "inline"
KIND_DISPLAY = "display"
KINDS = (KIND_INLINE, KIND_DISPLAY)

# Why a formula is broken: stable codes, written per formula and used as counter names.
REASON_PARSE_ERROR = "parse_error"              # KaTeX's ParseError: the LaTeX is wrong
REASON_RENDER_ERROR = "render_error"            # KaTeX threw something else (absurd nesting)
REASON_UNCLOSED = "unclosed_delimiter"          # an opener without its closer in the paragraph
REASON_TOO_LONG = "too_long"                    # longer than max_chars: never sent to KaTeX
REASON_TIMEOUT = "checker_timeout"              # KaTeX ran past timeout_s on it, twice
REASON_CRASH = "checker_crash"                  # the Node process died on it, twice
REASONS = (REASON_PARSE_ERROR, REASON_RENDER_ERROR, REASON_UNCLOSED, REASON_TOO_LONG,
           REASON_TIMEOUT, REASON_CRASH)

# Top-level LaTeX math environments (outside `$`): the display ones KaTeX has, plus the ones
# checked as a KaTeX equivalent (`KATEX_ENVIRONMENT`). `math` is the inline one.
MATH_ENVIRONMENTS = frozenset({
    "equation", "equation*", "align", "align*", "gather", "gather*", "alignat", "alignat*",
    "multline", "multline*", "flalign", "flalign*", "eqnarray", "eqnarray*", "displaymath", "math",
})
KATEX_ENVIRONMENT = {
    "multline": "align", "multline*": "align*", "flalign": "align", "flalign*": "align*",
    "eqnarray": "align", "eqnarray*": "align*",
}
_UNWRAPPED_ENVIRONMENTS = frozenset({"displaymath", "math"})
# The commands katex_check.js defines because KaTeX lacks them (kept in step with latexShims()
# there): cross-references swallow their argument, the rest become their KaTeX equivalent.
LATEX_SHIMS = ("\\label", "\\ref", "\\eqref", "\\pageref", "\\mbox", "\\textsc", "\\ensuremath",
               "\\hdots", "\\slash", "\\displaylimits", "\\hfill")

KATEX_DIR_ENV = "SCICURATE_KATEX_DIR"
_REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_SCRIPT = Path(__file__).with_name("katex_check.js")
_INSTALL_HINT = ("run `make install` (it runs `npm ci`), or `npm ci` in the repository root, or set "
                 f"{KATEX_DIR_ENV} to an installed node_modules/katex directory")


# ---------------------------------------------------------------------------------------------
# Records.

@dataclass(frozen=True, slots=True)
class Formula:
    """One formula of a Markdown text.

    `start`/`end` are offsets into the text, delimiters included (`text[start:end]` is the
    formula as written); `latex` is what lies between the delimiters, stripped (for a top-level
    environment, the whole `\\begin…\\end`). `delimiter` is `$`, `$$`, `\\(`, `\\[` or `env`;
    `unclosed` marks an opener without a closer (then `latex` runs to the paragraph's end).
    """

    kind: str
    start: int
    end: int
    latex: str
    delimiter: str = "$"
    unclosed: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not 0 <= self.start < self.end:
            raise ValueError(f"bad span {self.start}..{self.end}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """KaTeX's answer for one (latex, mode): ok, or the reason code and message."""

    ok: bool
    reason: str = ""
    error: str = ""

    def __post_init__(self) -> None:
        if self.ok != (self.reason == ""):
            raise ValueError("a verdict has a reason exactly when it is not ok")
        if self.reason and self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}")


VERDICT_OK = Verdict(ok=True)


@dataclass(frozen=True, slots=True)
class FormulaResult:
    """One checked formula: where it is, whether KaTeX accepts it, and if not why."""

    kind: str
    start: int
    end: int
    ok: bool
    reason: str = ""
    error: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.ok != (self.reason == ""):
            raise ValueError("a result has a reason exactly when it is not ok")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end, "ok": self.ok,
                "reason": self.reason, "error": self.error}


@dataclass(frozen=True, slots=True)
class FormulaReport:
    """The formula check of one text (a page): what the pipeline writes per page.

    `broken_formulas` lists only the formulas that failed, in text order. A page with at least
    one broken formula is a re-parse candidate (`reparse_candidate`). `checker` names the parser
    and its version (`katex@0.19.1`).
    """

    formulas: int
    inline: int
    display: int
    broken: int
    broken_formulas: tuple[FormulaResult, ...] = ()
    checker: str = ""

    def __post_init__(self) -> None:
        if min(self.formulas, self.inline, self.display, self.broken) < 0:
            raise ValueError("counts must be >= 0")
        if self.formulas != self.inline + self.display:
            raise ValueError(f"formulas ({self.formulas}) != inline + display "
                             f"({self.inline} + {self.display})")
        if self.broken != len(self.broken_formulas) or self.broken > self.formulas:
            raise ValueError(f"broken ({self.broken}) must equal len(broken_formulas) "
                             f"({len(self.broken_formulas)}) and be <= formulas")
        if any(r.ok for r in self.broken_formulas):
            raise ValueError("broken_formulas holds only failed formulas")

    @property
    def valid_ratio(self) -> float:
        """Share of the formulas KaTeX accepts; 1.0 for a text without formulas."""
        return 1.0 if self.formulas == 0 else (self.formulas - self.broken) / self.formulas

    @property
    def reparse_candidate(self) -> bool:
        return self.broken > 0

    def to_dict(self) -> dict[str, Any]:
        return {"formulas": self.formulas, "inline": self.inline, "display": self.display,
                "broken": self.broken, "valid_ratio": self.valid_ratio, "checker": self.checker,
                "broken_formulas": [r.to_dict() for r in self.broken_formulas]}


@dataclass(frozen=True, slots=True)
class FormulaCheckConfig:
    """Settings of the formula check.

    `timeout_s`: the longest KaTeX may take on one formula (measured from the previous answer).
    Real formulas take well under 10 ms; 5 s only trips on hostile input, and such a formula is
    retried once alone in a fresh process before it is marked `checker_timeout`.
    `max_chars`: longer formulas are `too_long` without being sent. The longest real display
    formulas (multi-page `align`s) run to a few thousand characters; KaTeX's time grows with
    length (HTML output is quadratic: 80k chars of `x+x+…` took 15 s), so 20k bounds the work.
    `max_expand` / `max_size`: KaTeX's own limits on macro expansions (`\\def` bombs) and on
    user-given sizes in em. `output`: KaTeX's output format; `mathml` is a full render (same
    parser, same macro expansion, builds the MathML tree) and grows linearly with length, while
    `html`/`htmlAndMathml` build the HTML tree too and are quadratic on long inline formulas.
    `heap_mb`: Node's heap limit; running out kills only the child (`checker_crash`).
    `katex_dir`: an installed `katex` package; default `$SCICURATE_KATEX_DIR`, then the
    repository's `node_modules/katex`. `cache_size`: (latex, mode) verdicts kept (LRU).
    """

    node: str = "node"
    katex_dir: str = ""
    timeout_s: float = 5.0
    startup_timeout_s: float = 30.0
    max_chars: int = 20_000
    max_expand: int = 1000
    max_size: float = 100.0
    output: str = "mathml"
    heap_mb: int = 512
    cache_size: int = 100_000
    error_chars: int = 300

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.startup_timeout_s <= 0:
            raise ConfigError("formula check: timeouts must be > 0 seconds")
        if self.max_chars < 1 or self.max_expand < 1 or self.max_size <= 0:
            raise ConfigError("formula check: max_chars, max_expand and max_size must be > 0")
        if self.output not in ("mathml", "html", "htmlAndMathml"):
            raise ConfigError(f"formula check: output must be mathml, html or htmlAndMathml, got {self.output!r}")
        if self.heap_mb < 16 or self.cache_size < 0 or self.error_chars < 20:
            raise ConfigError("formula check: heap_mb >= 16, cache_size >= 0, error_chars >= 20")


# ---------------------------------------------------------------------------------------------
# Extraction (pure).

_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
_FENCE_OPEN_RE = re.compile(r" {0,3}(`{3,}|~{3,})")
_BACKTICKS_RE = re.compile(r"`+")
_MATH_TOKEN_RE = re.compile(r"\\[\s\S]|\$\$|\$")    # escapes first: `\$` is never a delimiter
_ESCAPE_OR_ENV_RE = re.compile(r"\\\\|\\(begin|end)\{([^{}\s]{1,32})\}")
_BEGIN_RE = re.compile(r"\\begin\{([^{}\s]{1,32})\}")
_INTERESTING_RE = re.compile(r"[\\$`<\n]")  # where the scanner can skip to
_TEX_HINT_RE = re.compile(r"\\[A-Za-z]{2,}|[_^]\{")      # TeX after a lone `$`: an unclosed formula
_LENIENT_TEX_RE = re.compile(r"\\[A-Za-z]+|[_^]")   # TeX inside `$ x $`: a formula all the same


def _strip_latex(body: str) -> str:
    """`body` without surrounding whitespace, except the space of a final control space `\\ `."""
    latex = body.strip()
    trailing = len(latex) - len(latex.rstrip("\\"))
    if trailing % 2 and len(latex) < len(body.lstrip()):
        latex += " "
    return latex


def _close_token(text: str, start: int, limit: int, wanted: tuple[str, ...]) -> tuple[int, str] | None:
    """The first math token in `wanted` at or after `start` and before `limit`, skipping escapes."""
    for match in _MATH_TOKEN_RE.finditer(text, start, limit):
        token = match.group()
        if token in wanted:
            return match.start(), token
    return None


def _close_environment(text: str, start: int, limit: int, name: str) -> int | None:
    """End offset of the `\\end{name}` that closes a `\\begin{name}` opened before `start`."""
    depth = 1
    for match in _ESCAPE_OR_ENV_RE.finditer(text, start, limit):
        if match.group(2) != name:
            continue
        depth += 1 if match.group(1) == "begin" else -1
        if depth == 0:
            return match.end()
    return None


def _fence_end(text: str, start: int) -> int | None:
    """If a code fence opens at line start `start`, the offset after its closing line (or the text's end)."""
    opened = _FENCE_OPEN_RE.match(text, start)
    if opened is None:
        return None
    fence = opened.group(1)
    closing = re.compile(r"^ {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$", re.M)
    line_end = text.find("\n", opened.end())
    if line_end == -1:
        return len(text)
    found = closing.search(text, line_end + 1)
    return len(text) if found is None else found.end()


def extract_formulas(markdown: str) -> tuple[Formula, ...]:
    """Every formula of a Markdown text, in order, non-overlapping (rules in the module doc)."""
    text = markdown
    n = len(text)
    blanks = [m.start() for m in _BLANK_LINE_RE.finditer(text)]

    def paragraph_end(pos: int) -> int:
        k = bisect.bisect_left(blanks, pos)
        return blanks[k] if k < len(blanks) else n

    out: list[Formula] = []
    unmatched_runs: dict[int, int] = {}  # backtick run length -> paragraph end with no closer

    def unclosed(kind: str, start: int, opener: str, delimiter: str) -> int:
        end = paragraph_end(start + len(opener))
        end = max(end, start + len(opener))
        out.append(Formula(kind, start, end, _strip_latex(text[start + len(opener):end]), delimiter, True))
        return end

    i = 0
    while i < n:
        c = text[i]
        if (i == 0 or text[i - 1] == "\n") and c in " `~":
            fence_end = _fence_end(text, i)
            if fence_end is not None:
                i = fence_end
                continue
        if c == "`":
            run = _BACKTICKS_RE.match(text, i).group()
            limit = paragraph_end(i)
            closer = None
            if unmatched_runs.get(len(run)) != limit:  # a failed search is not repeated
                closer = re.compile(r"(?<!`)" + run + r"(?!`)").search(text, i + len(run), limit)
                if closer is None:
                    unmatched_runs[len(run)] = limit
            i = closer.end() if closer else i + len(run)
            continue
        if c == "<" and text.startswith("<!--", i):
            close = text.find("-->", i + 4)
            i = close + 3 if close != -1 else i + 4
            continue
        if c == "\\":
            nxt = text[i + 1:i + 2]
            if nxt in ("(", "["):
                kind, want = (KIND_INLINE, "\\)") if nxt == "(" else (KIND_DISPLAY, "\\]")
                found = _close_token(text, i + 2, paragraph_end(i + 2), (want,))
                if found is None:
                    i = unclosed(kind, i, "\\" + nxt, "\\" + nxt)
                else:
                    out.append(Formula(kind, i, found[0] + 2, _strip_latex(text[i + 2:found[0]]), "\\" + nxt))
                    i = found[0] + 2
                continue
            begin = _BEGIN_RE.match(text, i)
            if begin is not None and begin.group(1) in MATH_ENVIRONMENTS:
                name = begin.group(1)
                kind = KIND_INLINE if name == "math" else KIND_DISPLAY
                end = _close_environment(text, begin.end(), paragraph_end(begin.end()), name)
                if end is None:
                    i = unclosed(kind, i, begin.group(), "env")
                else:
                    out.append(Formula(kind, i, end, text[i:end].strip(), "env"))
                    i = end
                continue
            i += 2  # `\$`, `\\`, `\)`, any other escape: literal
            continue
        if c == "$":
            if text.startswith("$$", i):
                found = _close_token(text, i + 2, paragraph_end(i + 2), ("$$",))
                if found is None:
                    i = unclosed(KIND_DISPLAY, i, "$$", "$$")
                else:
                    out.append(Formula(KIND_DISPLAY, i, found[0] + 2, _strip_latex(text[i + 2:found[0]]), "$$"))
                    i = found[0] + 2
                continue
            limit = paragraph_end(i + 1)
            found = _close_token(text, i + 1, limit, ("$", "$$"))
            if found is not None:
                close = found[0]
                body = text[i + 1:close]
                if not text[close + 1:close + 2].isdigit() and body.strip() and (
                        not (body[0].isspace() or body[-1].isspace())
                        or (not body.lstrip()[0].isdigit() and _LENIENT_TEX_RE.search(body))):
                    out.append(Formula(KIND_INLINE, i, close + 1, _strip_latex(body), "$"))
                    i = close + 1
                    continue
            elif i + 1 < n and not text[i + 1].isspace() and _TEX_HINT_RE.search(text, i + 1, limit):
                i = unclosed(KIND_INLINE, i, "$", "$")
                continue
            i += 1  # a literal dollar
            continue
        if c == "\n":
            i += 1  # the next position starts a line: a fence may open there
            continue
        jump = _INTERESTING_RE.search(text, i + 1)
        i = jump.start() if jump else n
    return tuple(out)


def katex_source(formula: Formula) -> tuple[str, bool]:
    """What KaTeX is given for a formula: (latex, display mode). See the module doc."""
    latex = formula.latex
    display = formula.kind == KIND_DISPLAY
    if formula.delimiter == "env":
        begin = _BEGIN_RE.match(latex)
        name = begin.group(1) if begin else ""
        tail = f"\\end{{{name}}}"
        if name in _UNWRAPPED_ENVIRONMENTS and latex.endswith(tail):
            latex = latex[begin.end():len(latex) - len(tail)].strip()
    if "\\begin{" in latex or "\\end{" in latex:
        latex = _ESCAPE_OR_ENV_RE.sub(_rename_environment, latex)
    return latex, display


def _rename_environment(match: re.Match[str]) -> str:
    if match.group(1) is None or match.group(2) not in KATEX_ENVIRONMENT:
        return match.group()
    return f"\\{match.group(1)}{{{KATEX_ENVIRONMENT[match.group(2)]}}}"


def summarize(formulas: Sequence[Formula], results: Sequence[FormulaResult], checker: str = "") -> FormulaReport:
    """The report of a text from its formulas and their results (same order). Pure."""
    if len(formulas) != len(results):
        raise ValueError(f"{len(formulas)} formulas but {len(results)} results")
    inline = sum(f.kind == KIND_INLINE for f in formulas)
    broken = tuple(r for r in results if not r.ok)
    return FormulaReport(formulas=len(formulas), inline=inline, display=len(formulas) - inline,
                         broken=len(broken), broken_formulas=broken, checker=checker)


def check_text(markdown: str, checker: "FormulaChecker") -> FormulaReport:
    """Extract and check every formula of one text (a page's Markdown)."""
    formulas = extract_formulas(markdown)
    return summarize(formulas, checker.check(formulas), checker.version)


# ---------------------------------------------------------------------------------------------
# The checker: a Node child running KaTeX.

def find_katex_dir(configured: str = "") -> Path:
    """The installed katex package: `configured`, else $SCICURATE_KATEX_DIR, else the repo's node_modules."""
    candidates = [Path(p) for p in (configured, os.environ.get(KATEX_DIR_ENV, "")) if p]
    candidates.append(_REPO_ROOT / "node_modules" / "katex")
    for path in candidates:
        if (path / "package.json").is_file() and (path / "dist" / "katex.js").is_file():
            return path.resolve()
    raise ConfigError(f"KaTeX is not installed (looked in {', '.join(map(str, candidates))}): {_INSTALL_HINT}")


class _WorkerFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class FormulaChecker:
    """Checks formulas with KaTeX in one long-lived Node child process. Not thread-safe.

    `check(formulas)` returns one `FormulaResult` per formula, in order; it never raises for bad
    input and never loses a formula. Formulas stream to the child as JSON lines and results come
    back one line per formula as soon as each is done, so when the child hangs (no answer within
    `timeout_s`) or dies, the formula in progress is known exactly (no bisection needed): the
    child is killed, that formula is retried alone in a fresh child once (a one-off failure such
    as the machine's OOM killer must not mark a good formula), then marked `checker_timeout` /
    `checker_crash`, and the formulas after it go to the fresh child. Timeout and crash verdicts
    are not cached; parse results are (LRU on (latex, mode)).

    A fatal set-up problem (no `node`, KaTeX not installed, the child cannot load KaTeX) raises
    `ConfigError` from `start()` naming the fix. `count(name, n)`, when given, is called once per
    outcome (`checked`, `cache_hit`, `broken`, each reason code, `restart`): inject a Beam
    counter there; `stats` holds the same counts.
    """

    def __init__(self, config: FormulaCheckConfig | None = None, *,
                 count: Callable[[str, int], None] | None = None, script: str | Path | None = None) -> None:
        self.config = config or FormulaCheckConfig()
        self._count = count
        self._script = Path(script) if script else WORKER_SCRIPT
        self._proc: subprocess.Popen | None = None
        self._stderr: Any = None
        self._cache: OrderedDict[tuple[str, bool], Verdict] = OrderedDict()
        self.stats: Counter[str] = Counter()
        self.ready_info: dict[str, Any] = {}

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> "FormulaChecker":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> str:
        """`katex@<version>`, once started."""
        return f"katex@{self.ready_info.get('katex', '?')}"

    def start(self) -> dict[str, Any]:
        """Start the child (if not running) and wait until KaTeX is loaded. ConfigError on failure."""
        if self._proc is not None and self._proc.poll() is None:
            return self.ready_info
        if self._proc is not None:
            self._kill()
            self._bump("restart")
        node = shutil.which(self.config.node)
        if node is None:
            raise ConfigError(f"formula check: Node.js (`{self.config.node}`) is not on PATH: install "
                              f"Node.js >= 18, then {_INSTALL_HINT}")
        katex_dir = find_katex_dir(self.config.katex_dir)
        if not self._script.is_file():
            raise ConfigError(f"formula check: worker script {self._script} is missing: reinstall scicurate")
        options = {"maxSize": self.config.max_size, "maxExpand": self.config.max_expand,
                   "output": self.config.output, "errorChars": max(self.config.error_chars, 500)}
        if self._stderr is not None:
            self._stderr.close()
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [node, f"--max-old-space-size={self.config.heap_mb}", str(self._script), str(katex_dir),
             json.dumps(options)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            start_new_session=True,  # its own process group: killed as a whole
        )
        # a checker dropped without close() (an exception in a caller, interpreter exit) must
        # not leave a worker spinning on a hostile formula: kill it when the checker goes
        from scicurate.parsers.sandbox import kill_process_group

        weakref.finalize(self, kill_process_group, self._proc)
        os.set_blocking(self._proc.stdin.fileno(), False)  # type: ignore[union-attr]
        try:
            info = json.loads(next(iter(self._exchange(b"", 1, self.config.startup_timeout_s))))
        except (_WorkerFailed, ValueError) as exc:
            self._kill()
            raise ConfigError(f"formula check: the KaTeX worker failed to start ({exc}); "
                              f"{_INSTALL_HINT}\n{self._stderr_tail()}") from None
        if not info.get("ready"):
            self._kill()
            raise ConfigError(f"formula check: {info.get('message')}; {_INSTALL_HINT}")
        self.ready_info = info
        return info

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
                proc.wait(timeout=5)
            except Exception:  # noqa: BLE001 - the child is ours to kill whatever went wrong
                self._proc = proc
                self._kill()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        from scicurate.parsers.sandbox import kill_process_group

        if not kill_process_group(proc):
            _LOG.warning("KaTeX worker %s did not exit after SIGKILL", proc.pid)
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()  # type: ignore[union-attr]
            except OSError:
                pass

    def _stderr_tail(self, limit: int = 800) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - limit))
        return self._stderr.read().decode("utf-8", "replace").strip()

    def _bump(self, name: str, n: int = 1) -> None:
        if n:
            self.stats[name] += n
            if self._count is not None:
                self._count(name, n)

    # -- checking -----------------------------------------------------------------------
    def check(self, formulas: Sequence[Formula]) -> tuple[FormulaResult, ...]:
        """One result per formula, in order. Unclosed formulas are broken without a KaTeX call."""
        self.start()
        todo = [katex_source(f) for f in formulas if not f.unclosed]
        verdicts = iter(self.check_latex(todo))
        results = []
        for f in formulas:
            v = Verdict(False, REASON_UNCLOSED, f"no closing delimiter for {f.delimiter!r} "
                        "before the end of the paragraph") if f.unclosed else next(verdicts)
            if f.unclosed:
                self._bump(REASON_UNCLOSED)
                self._bump("broken")
            results.append(FormulaResult(f.kind, f.start, f.end, v.ok, v.reason, v.error))
        return tuple(results)

    def check_latex(self, items: Sequence[tuple[str, bool]]) -> list[Verdict]:
        """Verdicts for (latex, display) pairs, in order: cache, length limit, then KaTeX."""
        out: list[Verdict | None] = [None] * len(items)
        send: dict[tuple[str, bool], list[int]] = {}
        for k, (latex, display) in enumerate(items):
            key = (latex, bool(display))
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self._bump("cache_hit")
                out[k] = cached
            elif len(latex) > self.config.max_chars:
                out[k] = Verdict(False, REASON_TOO_LONG,
                                 f"{len(latex)} characters > max_chars {self.config.max_chars}")
            else:
                send.setdefault(key, []).append(k)  # repeats inside the batch go once
        keys = list(send)
        for key, verdict in zip(keys, self._run(keys)):
            for k in send[key]:
                out[k] = verdict
            if verdict.reason not in (REASON_TIMEOUT, REASON_CRASH) and self.config.cache_size:
                self._cache[key] = verdict
                if len(self._cache) > self.config.cache_size:
                    self._cache.popitem(last=False)
        for verdict in out:
            if not verdict.ok:  # type: ignore[union-attr]
                self._bump(verdict.reason)  # type: ignore[union-attr]
                self._bump("broken")
        return out  # type: ignore[return-value]

    def _run(self, keys: list[tuple[str, bool]]) -> list[Verdict]:
        """KaTeX verdicts for distinct keys; isolates and marks the formula a failure hit."""
        results: list[Verdict] = []
        while len(results) < len(keys):
            pending = keys[len(results):]
            done, failure = self._stream(pending)
            results.extend(done)
            if failure is None:
                continue
            retry, again = self._stream([pending[len(done)]])  # alone, in a fresh child
            if again is None:
                results.extend(retry)
            else:
                results.append(Verdict(False, again.reason, again.message[:self.config.error_chars]))
        return results

    def _stream(self, keys: list[tuple[str, bool]]) -> tuple[list[Verdict], _WorkerFailed | None]:
        """Send keys, collect verdicts in order; stop at the first timeout or crash (child killed)."""
        self.start()
        payload = b"".join(json.dumps({"i": k, "latex": latex, "display": display}).encode("utf-8") + b"\n"
                           for k, (latex, display) in enumerate(keys))
        verdicts: list[Verdict] = []
        try:
            for line in self._exchange(payload, len(keys), self.config.timeout_s):
                reply = json.loads(line)
                if reply.get("i") != len(verdicts):
                    raise _WorkerFailed(REASON_CRASH, f"worker answered out of order: {line[:200]!r}")
                verdicts.append(VERDICT_OK if reply["ok"] is True else Verdict(
                    False, reply["reason"], str(reply["error"]).replace("\u0332", "")[:self.config.error_chars]))
                self._bump("checked")
        except (_WorkerFailed, ValueError, KeyError, TypeError) as exc:
            failure = exc if isinstance(exc, _WorkerFailed) else _WorkerFailed(
                REASON_CRASH, f"bad worker output: {type(exc).__name__}: {exc}")
            tail = self._stderr_tail(300) if failure.reason == REASON_CRASH else ""
            self._kill()
            self._bump("restart")
            _LOG.warning("KaTeX worker %s on a %d-char formula: %s", failure.reason,
                         len(keys[len(verdicts)][0]), failure.message)
            return verdicts, _WorkerFailed(failure.reason, f"{failure.message}; stderr: {tail}" if tail else failure.message)
        return verdicts, None

    def _exchange(self, payload: bytes, want: int, timeout_s: float) -> Iterator[str]:
        """Write `payload` to the child while yielding `want` lines from it.

        Each line must come within `timeout_s` of the previous one (or of the call), else
        `_WorkerFailed(checker_timeout)`; end of output is `_WorkerFailed(checker_crash)`. Writing
        and reading are interleaved with select, so a batch larger than the pipe buffers never
        deadlocks (the child blocks writing results while we would block writing formulas).
        """
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        out_fd, in_fd = proc.stdout.fileno(), proc.stdin.fileno()
        view = memoryview(payload)
        sent = 0
        buf = b""
        got = 0
        deadline = time.monotonic() + timeout_s
        while got < want:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _WorkerFailed(REASON_TIMEOUT, f"KaTeX gave no answer within {timeout_s:g} s")
            writing = [in_fd] if sent < len(view) else []
            readable, writable, _ = select.select([out_fd], writing, [], remaining)
            if writable:
                try:
                    sent += os.write(in_fd, view[sent:sent + (1 << 16)])
                except BlockingIOError:
                    pass
                except OSError:  # the child died; reading says how
                    sent = len(view)
            if not readable:
                continue
            data = os.read(out_fd, 1 << 20)
            if not data:
                try:
                    code = proc.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    code = None
                raise _WorkerFailed(REASON_CRASH, f"KaTeX worker died (exit code {code})")
            *lines, buf = (buf + data).split(b"\n")
            for line in lines[:want - got]:
                got += 1
                deadline = time.monotonic() + timeout_s
                yield line.decode("utf-8")
