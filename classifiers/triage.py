"""Domain-centric web triage: sample pages per URL domain, tag them with an LLM, decide per domain.

The Intern-S1 recipe, as pure cores (no Beam); the pipeline wires them as

    sample_key(domain, page_id, seed)       -> the N smallest keys per domain are the sample
    triage_request(page_id, url, …, config) -> ChatRequest, one page per request (`web_triage@1`)
    tags_from_result(result, url=, domain=) -> PageTags | TagFailure (the answer re-validated)
    create / add / merge / extract          -> DomainTagStats (a mergeable CombineFn core)
    decide(stats, domain=, …, config)       -> DomainVerdict: discard | rewrite | retain

Web text is untrusted data. It reaches the model only as a JSON string value inside the user
message (`json.dumps`, so no quote, fence or fake "system:" line in a page can end the value),
the model's answer must match a closed schema (five keys, enums, `additionalProperties: false`),
and the answer is only ever the tags of that one page. A page that talks the model into
maximal tags moves its domain's shares by at most 1/pages_tagged and the quality mean by at most
5/pages_tagged (`one_page_robust` says when that cannot flip a verdict): it is aggregated, never
obeyed.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence, TypeVar

from scicurate.config import ConfigError
from scicurate.llm.client import ChatRequest, ChatResult

# ---- the tag vocabulary (stable strings: they become column values) -------------------------

SCIENCE_DOMAINS = ("mathematics", "physics", "chemistry", "life_science", "earth_science",
                   "materials_science", "other_science", "not_science")
FORMATS = ("article", "forum", "reference", "code", "list", "navigation", "product", "other")
ISSUES = ("navigation", "boilerplate", "broken_code", "broken_formula", "truncated", "garbled",
          "ads", "machine_generated", "other")
VERDICTS = ("discard", "rewrite", "retain")
QUALITY_LEVELS = 6          # quality is an integer 0..5
MAX_QUALITY = QUALITY_LEVELS - 1
TAG_KEYS = ("science_domain", "informative", "quality", "format", "issues")

# Issues that make a page "badly formed": fixable by the rewrite pass, not a reason to discard.
BADLY_FORMED_ISSUES = ("navigation", "boilerplate", "broken_code", "broken_formula", "truncated", "garbled")

# TagFailure reason when an answer the client called ok does not satisfy the tag contract.
REASON_SCHEMA = "schema"

# DomainVerdict reason codes (stable: they end up in rows and counters).
REASON_TOO_FEW_TAGS = "too_few_tags"
REASON_LOW_QUALITY = "low_quality_mean"
REASON_UNINFORMATIVE = "uninformative"
REASON_NOT_SCIENCE = "not_science"
REASON_BADLY_FORMED = "badly_formed"          # written as badly_formed:<issue>
REASON_MEDIOCRE = "below_retain_quality"
REASON_GOOD = "good"

# With the default VerdictConfig, a domain of k pages tagged as clearly bad (quality 0, not
# informative) plus one page with maximal tags is discarded whenever k >= this number:
# quality mean 5/(k+1) <= 1.5 and informative share 1/(k+1) <= 0.3 both hold from k = 3
# (k = 2 gives 1.67 and 0.33). tests/test_triage.py proves it against `decide`.
DISCARD_DESPITE_ONE_MAXIMAL_PAGE_K = 3

_T = TypeVar("_T")


# ---- configuration -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TriageConfig:
    """How pages are sampled and asked about.

    - `prompt="web_triage@1"`: pinned, so rows stay explainable when the prompt changes.
    - `max_page_chars=6000`: the page text sent per request, cut at a line boundary. 6000
      characters are ~1.5k tokens of English (up to ~2.5k for code or formulas; CJK text needs
      a lower limit); with the ~550-token prompt (SmolLM2 and Gemma-3 tokenizers) and 200 answer
      tokens that fits the 4096-token context of the small CPU models, and the first 6000 characters show a page's kind and quality. The cut is
      announced in the prompt, so the model does not tag `truncated` because we cut.
    - `max_tokens=200`: the answer is one small JSON object (~40 tokens); 200 leaves room for
      whitespace a model may add, and stops a runaway answer early.

    How many pages are sampled per domain, and with which seed, is the pipeline's decision
    (`WebConfig.sample_per_domain`, `WebConfig.seed`); `sample_key` / `select_sample` do it.
    """

    prompt: str = "web_triage@1"
    max_page_chars: int = 6000
    max_tokens: int = 200

    def __post_init__(self) -> None:
        if "@" not in self.prompt:
            raise ConfigError(f"triage prompt must be pinned as id@version; got {self.prompt!r}")
        if self.max_page_chars < 200:
            raise ConfigError(f"triage max_page_chars must be at least 200; got {self.max_page_chars}")
        if self.max_tokens < 32:
            raise ConfigError(f"triage max_tokens must be at least 32; got {self.max_tokens}")


@dataclass(frozen=True, slots=True)
class VerdictConfig:
    """The rules that turn a domain's aggregated tags into discard / rewrite / retain.

    Defaults and why:
    - `min_tagged=3`: below three tagged pages a share is 0, 1/2 or 1 and one page decides it;
      such domains get `no_tags_verdict` instead of a verdict from noise.
    - `no_tags_verdict="retain"`: a domain too small (or too often failed) to triage keeps its
      pages, which still went through the page-level filters; triage only removes what it saw.
    - `discard_max_quality_mean=1.5`: mean quality at or below 1.5 ("mostly residue, a few
      usable sentences") means rewriting has too little to keep.
    - `discard_max_informative_share=0.3`: at most 30% informative pages: a link farm, shop or
      spam site with a few good pages, not worth its noise.
    - `rewrite_min_issue_share=0.3`: a badly-formed issue (navigation, boilerplate, broken code
      or formulas, truncated, garbled) on at least 30% of the pages is a property of the site's
      template, which the rewrite pass fixes.
    - `retain_min_quality_mean=3.0`: quality below 3 ("usable but plain or untidy") is rewritten
      even without a dominant issue.
    - `science_only=False`, `min_science_share=0.5`: off by default (the label columns let a
      later mix select); when on, a domain with under half of its pages on a science subject is
      discarded.
    With the defaults a domain needs k >= 3 clearly bad pages to be discarded despite one page
    with maximal tags (`DISCARD_DESPITE_ONE_MAXIMAL_PAGE_K`).
    """

    min_tagged: int = 3
    no_tags_verdict: str = "retain"
    discard_max_quality_mean: float = 1.5
    discard_max_informative_share: float = 0.3
    rewrite_min_issue_share: float = 0.3
    retain_min_quality_mean: float = 3.0
    science_only: bool = False
    min_science_share: float = 0.5

    def __post_init__(self) -> None:
        if self.min_tagged < 1:
            raise ConfigError(f"min_tagged must be at least 1; got {self.min_tagged}")
        if self.no_tags_verdict not in VERDICTS:
            raise ConfigError(f"no_tags_verdict must be one of {', '.join(VERDICTS)}; got {self.no_tags_verdict!r}")
        if not 0.0 <= self.discard_max_quality_mean <= self.retain_min_quality_mean <= MAX_QUALITY:
            raise ConfigError("need 0 <= discard_max_quality_mean <= retain_min_quality_mean <= 5")
        for name in ("discard_max_informative_share", "rewrite_min_issue_share", "min_science_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} is a share in [0, 1]; got {getattr(self, name)}")


# ---- records -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PageTags:
    """The validated tags of one sampled page, with the prompt and model that produced them.
    `issues` is stored sorted and without duplicates."""

    page_id: str
    url: str
    domain: str
    science_domain: str
    informative: bool
    quality: int
    format: str
    issues: tuple[str, ...]
    prompt: str
    model: str

    def __post_init__(self) -> None:
        problems = _tag_problems({"science_domain": self.science_domain, "informative": self.informative,
                                  "quality": self.quality, "format": self.format, "issues": list(self.issues)})
        if problems:
            raise ValueError(f"invalid tags for {self.page_id!r}: {'; '.join(problems)}")
        if not self.page_id:
            raise ValueError("PageTags needs a page_id")
        object.__setattr__(self, "issues", tuple(sorted(set(self.issues))))


@dataclass(frozen=True, slots=True)
class TagFailure:
    """A sampled page that got no tags: the client's error_reason (`invalid_output`,
    `unavailable`, `rejected`) or `schema` when an ok answer broke the tag contract."""

    page_id: str
    url: str
    domain: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class DomainTagStats:
    """A domain's tags in aggregate. Shares are count / pages_tagged (0.0 when nothing was
    tagged); `*_shares` list every label in vocabulary order. `top_science_domain` is the most
    frequent science_domain label, not_science included (ties: vocabulary order; "" when
    nothing was tagged); `science_share` is the share of pages on any science subject."""

    pages_tagged: int
    tag_failures: int
    quality_mean: float
    quality_hist: tuple[int, ...]
    informative_share: float
    issue_shares: tuple[tuple[str, float], ...]
    format_shares: tuple[tuple[str, float], ...]
    science_shares: tuple[tuple[str, float], ...]
    top_science_domain: str
    science_share: float

    def __post_init__(self) -> None:
        if len(self.quality_hist) != QUALITY_LEVELS or sum(self.quality_hist) != self.pages_tagged:
            raise ValueError("quality_hist needs 6 counts that sum to pages_tagged")
        if self.pages_tagged < 0 or self.tag_failures < 0:
            raise ValueError("page counts must be non-negative")

    def issue_share(self, issue: str) -> float:
        return dict(self.issue_shares)[issue]


@dataclass(frozen=True, slots=True)
class DomainVerdict:
    """What happens to every page of `domain`, and the stable reason codes why."""

    domain: str
    verdict: str
    reasons: tuple[str, ...]
    stats: DomainTagStats
    pages_seen: int
    pages_sampled: int

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}; got {self.verdict!r}")
        if not self.reasons:
            raise ValueError("a verdict needs at least one reason")
        if not 0 <= self.pages_sampled <= self.pages_seen:
            raise ValueError("need 0 <= pages_sampled <= pages_seen")


# ---- sampling ------------------------------------------------------------------------------

def sample_key(domain: str, page_id: str, seed: int) -> int:
    """A 64-bit key; each domain's sample is its N smallest keys.

    Why a hash and not an RNG: the key of a page depends only on (seed, domain, page_id), so the
    sample is independent of input order, worker count and bundle retries (a rerun gives the
    same rows), needs no random state, and is a plain `Top.Smallest(N)` per domain in Beam.
    """
    payload = json.dumps([int(seed), domain, page_id], ensure_ascii=False).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8, person=b"scicurate-tri").digest(), "big")


def select_sample(keys: Iterable[_T], n: int) -> list[_T]:
    """The n smallest of `keys`, ascending: `(sample_key, page_id, …)` tuples, so ties in the
    (64-bit) key fall back to the page id. What `beam.combiners.Top.Smallest(n)` computes."""
    if n < 0:
        raise ValueError("n must be >= 0")
    return heapq.nsmallest(n, keys)


def sample_size(pages: int, *, cap: int, share: float, minimum: int) -> int:
    """How many of a domain's `pages` the agent reads: `share` of them, at least `minimum` and
    at most `cap`, never more than there are. A fixed cap alone (read up to 200) would make the
    agent read every page of the many domains with 5-200 pages, about one call per page; a share
    keeps mid-size domains cheap while `minimum` tags still bound one page's weight in any
    share to 1/minimum."""
    if pages < 0 or cap < 1 or minimum < 1 or not 0.0 < share <= 1.0:
        raise ValueError("sample_size needs pages >= 0, cap >= 1, minimum >= 1 and share in (0, 1]")
    return min(pages, cap, max(minimum, math.ceil(share * pages)))


# ---- the request ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def load_prompt(ref: str) -> Any:
    """The pinned prompt file (`scicurate.prompts.Prompt`), loaded once per process."""
    from scicurate import prompts

    return prompts.load(ref)


def cut_text(text: str, max_chars: int) -> tuple[str, bool]:
    """(text cut to at most max_chars at a line boundary, whether it was cut). Falls back to a
    space, then a hard cut, when the last newline would keep under half of the budget."""
    if len(text) <= max_chars:
        return text, False
    head = text[:max_chars]
    for sep in ("\n", " "):
        at = head.rfind(sep)
        if at >= max_chars // 2:
            return head[:at].rstrip(), True
    return head, True


def page_json(**fields_: Any) -> str:
    """One line of JSON holding untrusted page fields as string values. `json.dumps` escapes
    quotes, backslashes and control characters, so nothing in a page can close the value;
    U+2028/U+2029 are escaped too, so the value stays on one line for every line splitter."""
    text = json.dumps(fields_, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_messages(prompt: Any, **values: str) -> tuple[dict[str, str], ...]:
    messages = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    messages.append({"role": "user", "content": prompt.render_user(**values)})
    return tuple(messages)


def triage_request(page_id: str, url: str, domain: str, title: str, text: str,
                   config: TriageConfig = TriageConfig()) -> ChatRequest:
    """The tagging request for one sampled page: the page (url, title, text cut to
    `max_page_chars`) as one JSON-encoded data value; the answer must match the prompt's
    output_schema. `domain` is not sent: the model tags the page, never the site."""
    prompt = load_prompt(config.prompt)
    if prompt.output != "json" or not prompt.output_schema:
        raise ConfigError(f"{prompt.ref} is not a json prompt; the triage needs web_triage@N")
    body, cut = cut_text(text, config.max_page_chars)
    note = (f"Note: we cut the page text at {len(body)} characters; that cut is not a page defect "
            "(do not tag truncated for it)." if cut else "")
    return ChatRequest(
        key=page_id,
        messages=render_messages(prompt, page=page_json(url=url, title=title, text=body), cut_note=note),
        prompt=prompt.ref, json_schema=prompt.output_schema, max_tokens=config.max_tokens,
    )


# ---- the answer ----------------------------------------------------------------------------

def _tag_problems(data: Any) -> tuple[str, ...]:
    """Why `data` is not a valid tag object (the output contract, checked here in Python so
    a server that ignored the schema, or a client bug, cannot slip anything through)."""
    if not isinstance(data, Mapping):
        return (f"not an object: {type(data).__name__}",)
    problems = []
    keys = set(data)
    if keys != set(TAG_KEYS):
        extra, missing = sorted(map(str, keys - set(TAG_KEYS))), sorted(set(TAG_KEYS) - keys)
        problems.append(f"keys: extra {extra}, missing {missing}")
    if "science_domain" in data and data["science_domain"] not in SCIENCE_DOMAINS:
        problems.append(f"science_domain {data['science_domain']!r} not in the vocabulary")
    if "informative" in data and not isinstance(data["informative"], bool):
        problems.append("informative is not a boolean")
    quality = data.get("quality")
    if "quality" in data and (isinstance(quality, bool) or not isinstance(quality, int)
                              or not 0 <= quality <= MAX_QUALITY):
        problems.append(f"quality {quality!r} is not an integer 0..5")
    if "format" in data and data["format"] not in FORMATS:
        problems.append(f"format {data['format']!r} not in the vocabulary")
    issues = data.get("issues")
    if "issues" in data:
        if not isinstance(issues, (list, tuple)) or any(not isinstance(i, str) or i not in ISSUES for i in issues):
            problems.append(f"issues {issues!r} must be a list of known issues")
        elif len(set(issues)) != len(issues):
            problems.append("issues repeat")
    return tuple(problems)


def tags_from_result(result: ChatResult, *, url: str, domain: str) -> PageTags | TagFailure:
    """A tagging answer -> PageTags, or TagFailure with the client's error_reason, or `schema`
    when an ok answer breaks the tag contract (checked again here, never assumed)."""
    if not result.ok:
        return TagFailure(result.key, url, domain, result.error_reason or "failed", result.error_message)
    data = result.data
    if data is None:
        try:
            data = json.loads(result.text)
        except (json.JSONDecodeError, RecursionError) as exc:
            return TagFailure(result.key, url, domain, REASON_SCHEMA, f"not json: {exc}")
    if isinstance(data, Mapping) and isinstance(data.get("quality"), float) and data["quality"].is_integer():
        data = {**data, "quality": int(data["quality"])}   # JSON Schema's integer admits 3.0
    problems = _tag_problems(data)
    if problems:
        return TagFailure(result.key, url, domain, REASON_SCHEMA, "; ".join(problems)[:2000])
    return PageTags(page_id=result.key, url=url, domain=domain, science_domain=data["science_domain"],
                    informative=data["informative"], quality=data["quality"], format=data["format"],
                    issues=tuple(data["issues"]), prompt=result.prompt, model=result.model)


# ---- aggregation (the CombineFn core) ------------------------------------------------------

@dataclass(slots=True)
class TagAccumulator:
    """Integer counts only, so merging in any order gives bit-identical stats."""

    pages_tagged: int = 0
    tag_failures: int = 0
    informative: int = 0
    quality_hist: list[int] = field(default_factory=lambda: [0] * QUALITY_LEVELS)
    issues: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ISSUES, 0))
    formats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FORMATS, 0))
    science: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SCIENCE_DOMAINS, 0))


def create() -> TagAccumulator:
    return TagAccumulator()


def add(acc: TagAccumulator, item: PageTags | TagFailure) -> TagAccumulator:
    """Count one page's tags (or its failure) into `acc`, in place; returns `acc`."""
    if isinstance(item, TagFailure):
        acc.tag_failures += 1
        return acc
    acc.pages_tagged += 1
    acc.informative += int(item.informative)
    acc.quality_hist[item.quality] += 1
    for issue in item.issues:
        acc.issues[issue] += 1
    acc.formats[item.format] += 1
    acc.science[item.science_domain] += 1
    return acc


def merge(accs: Iterable[TagAccumulator]) -> TagAccumulator:
    out = create()
    for acc in accs:
        out.pages_tagged += acc.pages_tagged
        out.tag_failures += acc.tag_failures
        out.informative += acc.informative
        out.quality_hist = [a + b for a, b in zip(out.quality_hist, acc.quality_hist)]
        for mine, theirs in ((out.issues, acc.issues), (out.formats, acc.formats), (out.science, acc.science)):
            for label, count in theirs.items():
                mine[label] += count
    return out


def extract(acc: TagAccumulator) -> DomainTagStats:
    n = acc.pages_tagged

    def share(count: int) -> float:
        return count / n if n else 0.0

    top = max(SCIENCE_DOMAINS, key=lambda label: (acc.science[label], -SCIENCE_DOMAINS.index(label))) if n else ""
    return DomainTagStats(
        pages_tagged=n, tag_failures=acc.tag_failures,
        quality_mean=share(sum(q * c for q, c in enumerate(acc.quality_hist))),
        quality_hist=tuple(acc.quality_hist), informative_share=share(acc.informative),
        issue_shares=tuple((i, share(acc.issues[i])) for i in ISSUES),
        format_shares=tuple((f, share(acc.formats[f])) for f in FORMATS),
        science_shares=tuple((s, share(acc.science[s])) for s in SCIENCE_DOMAINS),
        top_science_domain=top, science_share=share(n - acc.science["not_science"]),
    )


def aggregate(items: Iterable[PageTags | TagFailure]) -> DomainTagStats:
    """create + add + extract over one domain's results (tests, the one-process path)."""
    acc = create()
    for item in items:
        add(acc, item)
    return extract(acc)


# ---- the verdict ---------------------------------------------------------------------------

def decide(stats: DomainTagStats, *, domain: str, pages_seen: int, pages_sampled: int,
           config: VerdictConfig = VerdictConfig()) -> DomainVerdict:
    """The domain's verdict, first rule that fires:

    1. fewer than `min_tagged` tagged pages -> `no_tags_verdict` (`too_few_tags`);
    2. discard when any of: quality_mean <= discard_max_quality_mean (`low_quality_mean`),
       informative_share <= discard_max_informative_share (`uninformative`), and with
       science_only, science_share < min_science_share (`not_science`);
    3. rewrite when a badly-formed issue has share >= rewrite_min_issue_share
       (`badly_formed:<issue>`, one per such issue) or quality_mean < retain_min_quality_mean
       (`below_retain_quality`);
    4. retain (`good`).
    Every rule compares a share or the mean against a threshold, so one page can move the
    outcome only when a statistic lies within 1/pages_tagged (5/pages_tagged for the mean) of a
    threshold (`one_page_robust`).
    """
    def verdict(v: str, reasons: Sequence[str]) -> DomainVerdict:
        return DomainVerdict(domain, v, tuple(reasons), stats, pages_seen, pages_sampled)

    if stats.pages_tagged < config.min_tagged:
        return verdict(config.no_tags_verdict, [REASON_TOO_FEW_TAGS])
    discard = []
    if stats.quality_mean <= config.discard_max_quality_mean:
        discard.append(REASON_LOW_QUALITY)
    if stats.informative_share <= config.discard_max_informative_share:
        discard.append(REASON_UNINFORMATIVE)
    if config.science_only and stats.science_share < config.min_science_share:
        discard.append(REASON_NOT_SCIENCE)
    if discard:
        return verdict("discard", discard)
    rewrite = [f"{REASON_BADLY_FORMED}:{issue}" for issue in BADLY_FORMED_ISSUES
               if stats.issue_share(issue) >= config.rewrite_min_issue_share]
    if stats.quality_mean < config.retain_min_quality_mean:
        rewrite.append(REASON_MEDIOCRE)
    if rewrite:
        return verdict("rewrite", rewrite)
    return verdict("retain", [REASON_GOOD])


def one_page_robust(stats: DomainTagStats, config: VerdictConfig = VerdictConfig()) -> bool:
    """True when no change to the tags of any one tagged page can change `decide`'s verdict or
    reasons: every statistic a rule reads lies strictly farther from its threshold than one page
    can move it (1/pages_tagged for a share, 5/pages_tagged for the quality mean). The page
    count itself does not move (a page with other tags is still one tagged page)."""
    n = stats.pages_tagged
    if n < config.min_tagged:
        return True
    share_step, mean_step = 1.0 / n, MAX_QUALITY / n
    checks = [
        (stats.quality_mean, config.discard_max_quality_mean, mean_step),
        (stats.quality_mean, config.retain_min_quality_mean, mean_step),
        (stats.informative_share, config.discard_max_informative_share, share_step),
    ]
    checks += [(stats.issue_share(i), config.rewrite_min_issue_share, share_step) for i in BADLY_FORMED_ISSUES]
    if config.science_only:
        checks.append((stats.science_share, config.min_science_share, share_step))
    return all(abs(value - threshold) > step + 1e-9 for value, threshold, step in checks)
