"""Automatic prompt refinement for taxonomy recall (issue 7): score a `recall_<domain>` prompt as
a binary annotator on validation sets, show the LLM its errors, let it propose a revision, and
keep the revision only when it scores better in domain without losing out of domain.

    judge(rows, answers, domain, taxonomy)    -> Judgement per validation text
    score_prompt(prompt, judgements)          -> PromptScore: per-split P/R/F1/score + the errors
    error_sample(errors, k, seed, round)      -> the errors the proposer sees (FN/FP interleaved)
    proposal_request(current, best, …)        -> ChatRequest for `refine_recall@1`
    proposal_from_result(result)              -> Proposal, or a reason it is none
    check_proposal(proposal, current, config) -> problems (empty: valid)
    candidate_text(current, proposal, v, …)   -> the prompt file of a candidate version
    decide(candidate, best, config)           -> Decision: accepted, or the rule it broke
    refine(…)                                 -> RefineRun (the loop; the LLM is a chat function)
    PromptStore(root)                         -> versions, rejected candidates and the log on disk

Scoring. A validation row `{"id", "text", "domain", "split"}` is a positive for domain D when D
is among `recall_fasttext.labels_of(row)` (its domain mapped onto the taxonomy's targets); the
prediction is the answer's `in_domain`. An answer that failed (no valid JSON after the client's
temperature schedule, an answer the tree rejects, a server error) counts as WRONG whatever the
gold: a false negative on a positive, a false positive on a negative. So a prompt that breaks
the answer format can never gain from it; failures are also counted per split and per reason.
Per split: precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN). A split's `score`
is its F1 when it holds positives; a split without positives (e.g. an out-of-domain set with
no text of D) has no F1, and its score is the specificity TN/(TN+FP), the share of its texts
correctly answered no.

Acceptance (`decide`). A candidate replaces the current best only if both hold:
    score(in_split)  >= best.score(in_split) + min_gain        (default min_gain 0.01)
    score(ood_split) >= best.score(ood_split) - ood_tolerance   (default ood_tolerance 0)
min_gain = 0.01: on a few hundred validation texts one changed answer moves F1 by about 0.005,
so a kept revision must fix at least about two answers net, not win a coin flip; on a tiny
sample any real gain is far above it. ood_tolerance = 0: the out-of-domain set is what catches
a prompt over-fitted to the pool's source, so it may not get worse at all. Every round asks for
one proposal from the current best (a rejected one is shown to the next round as history, and
the next round sees another hash-chosen sample of errors); an invalid proposal or a failed call
uses up its round. At most `rounds` rounds; the loop stops early when the best has no errors.

Provenance. Accepted revisions become `<root>/recall_<domain>/v<N+1>.md` (front matter copied
from the parent except version, plus a `refinement` block: parent, round, run, scores, parent
scores, validation sample, proposer prompt and model, rationale); rejected ones are written to
`<root>/recall_<domain>/candidates/v<N+1>-<sha12>.md` with status and reason (a subfolder, so
`scicurate.prompts.load` never sees them); every round, invalid and failed ones included, is a
line of `<root>/recall_<domain>/refinements.jsonl`. An accepted version's sha256 is added to
`<root>/versions.lock` when that file exists (existing lines are never changed). Run ids are
content hashes of the start prompt, the validation sample and the config, never a clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from scicurate import prompts as prompt_files
from scicurate.classifiers import annotate as an
from scicurate.classifiers import taxonomy as tx
from scicurate.classifiers.recall_fasttext import OTHER, labels_of
from scicurate.classifiers.registry import DomainClassifier, register_classifier
from scicurate.classifiers.triage import cut_text, page_json, render_messages
from scicurate.config import EMBEDDED_LLM, ConfigError, LlmConfig
from scicurate.llm.client import ChatRequest, ChatResult

META_PROMPT = "refine_recall@1"
IN_SPLIT = "in_domain"
OOD_SPLIT = "out_of_domain"
FAILED = "<failed>"             # the annotator classifier's label for an answer that failed
_EPS = 1e-9
_USER_MARK = "=== user ==="
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

# Round statuses and reasons (stable strings: they are written to the log).
ACCEPTED, REJECTED, INVALID, FAILED_CALL = "accepted", "rejected", "invalid", "failed"
REASON_ACCEPTED = "accepted"
REASON_NO_GAIN = "no_in_domain_gain"
REASON_OOD_LOSS = "ood_loss"
REASON_EMPTY = "empty"
REASON_UNCHANGED = "unchanged"
REASON_PLACEHOLDERS = "placeholders"
REASON_LABELS = "dropped_labels"
REASON_LENGTH = "length"
REASON_MARKER = "user_marker"
REASON_UNWRITABLE = "unwritable"

ChatFn = Callable[[Sequence[ChatRequest]], list[ChatResult]]


# ---- configuration -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RefineConfig:
    """The refinement loop's numbers (see the module docstring for the acceptance rule).

    - `rounds=3`: each round costs one proposal plus one annotation per validation text; three
      rounds triple the cost of scoring, and a prompt that three revisions cannot improve
      needs a person, not a fourth guess.
    - `errors_shown=8`, `error_chars=400`: eight errors (false negatives and false positives
      alternating) of 400 characters are ~1k tokens, enough to show a pattern and small enough
      that prompt, errors and a full revised prompt fit a 4k-token context.
    - `min_length_ratio=0.25`, `max_length_ratio=2.0` (of the current system + user length): a
      revision a quarter as long has dropped the subfield lists; one twice as long is an essay
      the annotating model will not follow.
    - `proposal_max_tokens=2048`: the longest shipped annotation prompt (physics, ~1.1k tokens)
      with room to grow.
    """

    domain: str
    in_split: str = IN_SPLIT
    ood_split: str = OOD_SPLIT
    rounds: int = 3
    min_gain: float = 0.01
    ood_tolerance: float = 0.0
    errors_shown: int = 8
    error_chars: int = 400
    history_shown: int = 3
    min_length_ratio: float = 0.25
    max_length_ratio: float = 2.0
    proposal_max_tokens: int = 2048
    seed: int = 0
    meta_prompt: str = META_PROMPT

    def __post_init__(self) -> None:
        if not self.domain:
            raise ConfigError("refinement needs a target domain (--domain)")
        if self.in_split == self.ood_split:
            raise ConfigError(f"--in-split and --ood-split must differ; both are {self.in_split!r}")
        if not 1 <= self.rounds <= 20:
            raise ConfigError(f"--rounds must be in 1..20; got {self.rounds}")
        if not 0.0 <= self.min_gain <= 1.0 or not 0.0 <= self.ood_tolerance <= 1.0:
            raise ConfigError("--min-gain and --ood-tolerance are F1 differences in [0, 1]")
        if self.errors_shown < 1 or self.error_chars < 50 or self.history_shown < 0:
            raise ConfigError("--errors-shown must be >= 1 and error_chars >= 50")
        if not 0.0 < self.min_length_ratio < 1.0 < self.max_length_ratio:
            raise ConfigError("need 0 < min_length_ratio < 1 < max_length_ratio")
        if self.proposal_max_tokens < 64:
            raise ConfigError("proposal_max_tokens must be at least 64")
        if "@" not in self.meta_prompt:
            raise ConfigError(f"the refinement meta-prompt must be pinned as id@version; got {self.meta_prompt!r}")


# ---- validation rows and their scores --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ValidationRow:
    id: str
    text: str
    domain: str            # the corpus label (a taxonomy id at any level, or e.g. non_science)
    split: str

    def __post_init__(self) -> None:
        if not self.id or not self.split or not self.text.strip():
            raise ValueError(f"validation row {self.id!r} needs an id, a split and a non-empty text")


def validation_rows(items: Iterable[Any]) -> list[ValidationRow]:
    """Rows from anything with id/text/domain/split (e.g. `evals.classify.read_labels`); an item
    without text is a ConfigError (it cannot be annotated)."""
    rows = []
    for item in items:
        if not isinstance(item.text, str) or not item.text.strip():
            raise ConfigError(f"validation row {item.id!r} has no text to annotate")
        rows.append(ValidationRow(str(item.id), item.text, str(item.domain), str(item.split)))
    return rows


def sample_validation(rows: Sequence[ValidationRow], per_split: int, seed: int = 0) -> list[ValidationRow]:
    """Per split, the `per_split` rows with the smallest blake2b(seed, id) (`annotate.sample_pool`):
    the same rows for any file order; 0 keeps every row. Sorted by (split, id)."""
    if per_split < 0:
        raise ConfigError(f"--sample must be >= 0; got {per_split}")
    by_split: dict[str, list[ValidationRow]] = {}
    for row in rows:
        by_split.setdefault(row.split, []).append(row)
    kept: list[ValidationRow] = []
    for split, members in sorted(by_split.items()):
        if not per_split:
            kept.extend(members)
            continue
        chosen = {str(r["id"]) for r in an.sample_pool([{"id": m.id, "text": m.text} for m in members], per_split, seed)}
        kept.extend(m for m in members if m.id in chosen)
    return sorted(kept, key=lambda r: (r.split, r.id))


@dataclass(frozen=True, slots=True)
class Judgement:
    """One validation text under one prompt: gold, the answer (None when it failed), and why."""

    id: str
    split: str
    gold: bool
    answer: bool | None
    failure: str = ""          # the AnnotationFailure reason when answer is None

    @property
    def correct(self) -> bool:
        return self.answer is not None and self.answer == self.gold

    @property
    def kind(self) -> str:
        """tp / tn / fp / fn; a failure is fn on a positive and fp on a negative."""
        if self.gold:
            return "tp" if self.correct else "fn"
        return "tn" if self.correct else "fp"


def gold_of(row: ValidationRow, domain: str, taxonomy: tx.Taxonomy) -> bool:
    return domain in labels_of({"domain": row.domain}, taxonomy)


def judge(rows: Sequence[ValidationRow], answers: Mapping[str, an.Annotation | an.AnnotationFailure],
          domain: str, taxonomy: tx.Taxonomy) -> list[Judgement]:
    """One judgement per row; a row without an answer is a failure `missing`."""
    out = []
    for row in rows:
        answer = answers.get(row.id)
        gold = gold_of(row, domain, taxonomy)
        if isinstance(answer, an.Annotation):
            out.append(Judgement(row.id, row.split, gold, answer.in_domain))
        else:
            out.append(Judgement(row.id, row.split, gold, None, answer.reason if answer is not None else "missing"))
    return out


@dataclass(frozen=True, slots=True)
class SplitScore:
    split: str
    items: int
    positives: int
    tp: int
    fp: int
    fn: int
    tn: int
    failures: int
    precision: float
    recall: float
    f1: float | None            # None when the split has no positives
    score: float                # f1, or specificity when the split has no positives
    metric: str                 # "f1" | "specificity"

    @classmethod
    def of(cls, split: str, judgements: Sequence[Judgement]) -> "SplitScore":
        kinds = Counter(j.kind for j in judgements)
        tp, fp, fn, tn = kinds["tp"], kinds["fp"], kinds["fn"], kinds["tn"]
        positives = tp + fn
        f1 = 2 * tp / (2 * tp + fp + fn) if positives else None
        specificity = tn / (tn + fp) if tn + fp else 0.0
        return cls(split=split, items=len(judgements), positives=positives, tp=tp, fp=fp, fn=fn, tn=tn,
                   failures=sum(j.answer is None for j in judgements),
                   precision=tp / (tp + fp) if tp + fp else 0.0, recall=tp / positives if positives else 0.0,
                   f1=f1, score=f1 if f1 is not None else specificity, metric="f1" if positives else "specificity")

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def line(self, domain_name: str) -> str:
        if self.metric == "f1":
            return (f"{self.split}: F1 {self.score:.3f} (precision {self.precision:.3f}, recall {self.recall:.3f}; "
                    f"{self.items} texts, {self.positives} of them {domain_name})")
        return (f"{self.split}: {self.score:.3f} of its texts correctly answered false "
                f"({self.items} texts, none of them {domain_name})")


@dataclass(frozen=True, slots=True)
class PromptScore:
    prompt: str                          # id@version
    sha256: str                          # of the prompt text that was scored
    splits: Mapping[str, SplitScore]     # sorted by split name
    judgements: tuple[Judgement, ...]

    def score(self, split: str) -> float:
        if split not in self.splits:
            raise ConfigError(f"the validation sample has no split {split!r}; it has {sorted(self.splits)}")
        return self.splits[split].score

    @property
    def errors(self) -> tuple[Judgement, ...]:
        return tuple(j for j in self.judgements if not j.correct)

    @property
    def failures(self) -> dict[str, int]:
        return dict(sorted(Counter(j.failure for j in self.judgements if j.answer is None).items()))

    def to_dict(self) -> dict[str, Any]:
        return {split: s.to_dict() for split, s in self.splits.items()}


def score_prompt(prompt: str, sha256: str, judgements: Sequence[Judgement]) -> PromptScore:
    """Per-split scores (every split the rows have) and the judgements they came from."""
    splits: dict[str, list[Judgement]] = {}
    for j in judgements:
        splits.setdefault(j.split, []).append(j)
    return PromptScore(prompt, sha256, {s: SplitScore.of(s, splits[s]) for s in sorted(splits)}, tuple(judgements))


# ---- the errors shown and the proposal request ---------------------------------------------

def _error_key(doc_id: str, seed: int, round_no: int) -> bytes:
    return hashlib.blake2b(f"{seed}\x00{round_no}\x00{doc_id}".encode("utf-8"), digest_size=8).digest()


def error_sample(errors: Sequence[Judgement], k: int, seed: int, round_no: int = 0) -> list[Judgement]:
    """At most k errors: false negatives and false positives each ordered by
    blake2b(seed, round, id), taken alternately (FN first), so both kinds are shown and every
    round sees another sample when there are more than k."""
    order = lambda js: sorted(js, key=lambda j: (_error_key(j.id, seed, round_no), j.id))  # noqa: E731
    fns = order([e for e in errors if e.kind == "fn"])
    fps = order([e for e in errors if e.kind == "fp"])
    out: list[Judgement] = []
    for i in range(max(len(fns), len(fps))):
        out.extend(x[i] for x in (fns, fps) if i < len(x))
    return out[:k]


def error_lines(errors: Sequence[Judgement], texts: Mapping[str, str], error_chars: int) -> str:
    """One JSON object per error: the text is a JSON string value (data, never instructions)."""
    lines = []
    for e in errors:
        body, cut = cut_text(texts[e.id], error_chars)
        lines.append(page_json(id=e.id, set=e.split, expected=e.gold,
                               answered="failed" if e.answer is None else e.answer, text=body + (" …" if cut else "")))
    return "\n".join(lines) or "(none)"


@dataclass(frozen=True, slots=True)
class Proposal:
    system: str
    user: str
    rationale: str


def proposal_request(current: prompt_files.Prompt, best: PromptScore, texts: Mapping[str, str], *,
                     meta: prompt_files.Prompt, config: RefineConfig, taxonomy: tx.Taxonomy, round_no: int,
                     history: Sequence[Mapping[str, Any]] = ()) -> ChatRequest:
    """The meta-prompt filled with the current prompt (as JSON), its scores, a deterministic
    sample of its errors and the last rejected attempts."""
    if meta.output != "json" or not meta.output_schema:
        raise ConfigError(f"{meta.ref} is not a json prompt; refinement needs refine_recall@N")
    name = taxonomy.node(config.domain).name.lower()
    shown = error_sample(best.errors, config.errors_shown, config.seed, round_no)
    past = [page_json(round=h["round"], status=h["status"], reason=h["reason"],
                      rationale=cut_text(str(h.get("rationale", "")), 300)[0])
            for h in list(history)[-config.history_shown:]] if config.history_shown else []
    keep = ", ".join(f"{{{{{p}}}}}" for p in sorted(current.placeholders()))
    messages = render_messages(
        meta, domain=name, current=page_json(system=current.system, user=current.user),
        scores="\n".join(s.line(name) for s in best.splits.values()),
        errors=error_lines(shown, texts, config.error_chars), history="\n".join(past) or "(none)", keep=keep or "(none)")
    return ChatRequest(key=f"refine|{current.ref}|{round_no}", messages=messages, prompt=meta.ref,
                       json_schema=meta.output_schema, max_tokens=config.proposal_max_tokens)


def proposal_from_result(result: ChatResult) -> Proposal | tuple[str, str]:
    """The proposal, or (reason, message) when the call failed or the answer is not one."""
    if not result.ok:
        return result.error_reason or "failed", result.error_message
    data = result.data
    if data is None:
        try:
            data = json.loads(result.text)
        except (json.JSONDecodeError, RecursionError) as exc:
            return an.REASON_SCHEMA, f"not json: {exc}"
    if not isinstance(data, Mapping) or not all(isinstance(data.get(k), str) for k in ("system", "user", "rationale")):
        return an.REASON_SCHEMA, f"not a proposal object: {str(data)[:300]}"
    return Proposal(data["system"], data["user"], data["rationale"])


def _slots(text: str) -> list[str]:
    return sorted(_PLACEHOLDER.findall(text))


def _labels(current: prompt_files.Prompt) -> list[str]:
    """The string enum values of the output schema that the current text names (word-bounded)."""
    values: list[str] = []
    for prop in (current.output_schema or {}).get("properties", {}).values():
        values += [v for v in prop.get("enum", []) if isinstance(v, str)]
    text = f"{current.system}\n{current.user}"
    return [v for v in dict.fromkeys(values) if v != an.NONE and re.search(rf"\b{re.escape(v)}\b", text)]


def check_proposal(proposal: Proposal, current: prompt_files.Prompt, config: RefineConfig) -> tuple[str, ...]:
    """Problems of a proposal, each `reason: detail` (the first reason is the round's); empty
    when it may be scored. Only the system and user texts may change: the output schema is
    the current version's, so the checks are about the texts."""
    system, user = proposal.system.strip(), proposal.user.strip()
    problems: list[str] = []
    if not user or (current.system and not system):
        problems.append(f"{REASON_EMPTY}: the proposal has an empty {'user' if not user else 'system'} text")
    if system == current.system and user == current.user:
        problems.append(f"{REASON_UNCHANGED}: the proposal is the current prompt")
    for where, new, old in (("system", system, current.system), ("user", user, current.user)):
        if _slots(new) != _slots(old):
            problems.append(f"{REASON_PLACEHOLDERS}: the {where} text has placeholders {_slots(new)}, "
                            f"the current one {_slots(old)}")
    if _USER_MARK in system or _USER_MARK in user:
        problems.append(f"{REASON_MARKER}: a text contains the file's '{_USER_MARK}' separator")
    dropped = [v for v in _labels(current) if not re.search(rf"\b{re.escape(v)}\b", f"{system}\n{user}")]
    if dropped:
        problems.append(f"{REASON_LABELS}: the proposal no longer names {', '.join(dropped[:8])}"
                        + (f" and {len(dropped) - 8} more" if len(dropped) > 8 else ""))
    size, base = len(system) + len(user), len(current.system) + len(current.user)
    if not config.min_length_ratio * base <= size <= config.max_length_ratio * base:
        problems.append(f"{REASON_LENGTH}: {size} characters against {base} now "
                        f"(allowed {config.min_length_ratio:g}x to {config.max_length_ratio:g}x)")
    return tuple(problems)


def candidate_text(current: prompt_files.Prompt, proposal: Proposal, version: int,
                   extra: Mapping[str, Any] | None = None) -> str:
    """The prompt file of a candidate: the current front matter (id, purpose, output and its
    output_schema unchanged) at `version`, plus `extra` keys (the refinement record); raises
    ValueError when the file would not read back as the same texts."""
    front: dict[str, Any] = {"id": current.id, "version": version, "purpose": current.purpose,
                             "output": current.output}
    if current.output_schema is not None:
        front["output_schema"] = json.loads(json.dumps(current.output_schema))
    front.update(extra or {})
    head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=10_000)
    system, user = proposal.system.strip(), proposal.user.strip()
    text = f"---\n{head}---\n{system}\n=== user ===\n{user}\n" if system else f"---\n{head}---\n{user}\n"
    back = prompt_files.parse(text, f"{current.id}@{version} (candidate)")
    if (back.system, back.user, back.id, back.version) != (system, user, current.id, version) \
            or back.output_schema != current.output_schema:
        raise ValueError("the candidate does not read back as the proposed texts")
    return text


# ---- the acceptance rule -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Decision:
    accepted: bool
    reason: str                 # accepted | no_in_domain_gain | ood_loss
    in_gain: float
    ood_change: float


def decide(candidate: PromptScore, best: PromptScore, config: RefineConfig) -> Decision:
    """Keep the candidate only if its in-split score beats the best by at least `min_gain` and
    its OOD score is not lower than the best's by more than `ood_tolerance` (see the module
    docstring for why)."""
    gain = candidate.score(config.in_split) - best.score(config.in_split)
    change = candidate.score(config.ood_split) - best.score(config.ood_split)
    if gain < config.min_gain - _EPS:
        return Decision(False, REASON_NO_GAIN, gain, change)
    if change < -config.ood_tolerance - _EPS:
        return Decision(False, REASON_OOD_LOSS, gain, change)
    return Decision(True, REASON_ACCEPTED, gain, change)


# ---- where the rounds are written ----------------------------------------------------------

class PromptStore:
    """A prompts root (`prompts/` or a copy): accepted versions as `<id>/v<N>.md`, rejected
    candidates under `<id>/candidates/`, one log line per round in `<id>/refinements.jsonl`,
    and accepted versions' sha256 added to `versions.lock` when the root has one."""

    LOG = "refinements.jsonl"
    CANDIDATES = "candidates"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def load(self, ref: str) -> prompt_files.Prompt:
        return prompt_files.load(ref, self.root)

    def next_version(self, prompt_id: str) -> int:
        found = prompt_files.versions(prompt_id, self.root)
        return (found[-1] if found else 0) + 1

    def seed_from(self, prompt_id: str, source: Path) -> list[str]:
        """Copy `source`'s versions of `prompt_id` into an empty root folder (a fresh
        --prompts-dir); returns the files copied, none when the folder already has versions."""
        if prompt_files.versions(prompt_id, self.root) or self.root.resolve() == source.resolve():
            return []
        folder = self.root / prompt_id
        folder.mkdir(parents=True, exist_ok=True)
        copied = []
        for v in prompt_files.versions(prompt_id, source):
            target = folder / f"v{v}.md"
            target.write_bytes((source / prompt_id / f"v{v}.md").read_bytes())
            copied.append(str(target))
        return copied

    def write_version(self, prompt_id: str, version: int, text: str) -> Path:
        path = self.root / prompt_id / f"v{version}.md"
        with open(path, "x", encoding="utf-8") as fh:       # never overwrite a released version
            fh.write(text)
        lock = self.root / "versions.lock"
        if lock.is_file():
            entries = json.loads(lock.read_text(encoding="utf-8"))
            ref = f"{prompt_id}@{version}"
            if ref in entries:
                raise ConfigError(f"{lock} already has {ref}; it was released before")
            entries[ref] = hashlib.sha256(text.encode("utf-8")).hexdigest()
            lock.write_text(json.dumps(dict(sorted(entries.items())), indent=2) + "\n", encoding="utf-8")
        return path

    def write_candidate(self, prompt_id: str, version: int, text: str) -> Path:
        folder = self.root / prompt_id / self.CANDIDATES
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"v{version}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}.md"
        path.write_text(text, encoding="utf-8")
        return path

    def log(self, prompt_id: str, entry: Mapping[str, Any]) -> None:
        with open(self.root / prompt_id / self.LOG, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")


# ---- the loop ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RoundRecord:
    round: int
    status: str                 # accepted | rejected | invalid | failed
    reason: str
    detail: str
    parent: str                 # the best prompt the proposal revised
    version: int | None         # the version it became (accepted) or would have become
    file: str
    sha256: str
    scores: Mapping[str, Any] | None
    rationale: str
    failures: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RefineRun:
    run: str
    start: PromptScore
    best: PromptScore
    rounds: tuple[RoundRecord, ...]
    requests: int               # ChatRequests sent (annotations + proposals)
    calls: int                  # HTTP calls, retries and temperature steps included
    stopped: str                # rounds | no_errors

    def summary(self) -> dict[str, Any]:
        failures: Counter[str] = Counter(self.start.failures)
        for r in self.rounds:
            failures.update(r.failures)
            if r.status == FAILED_CALL:
                failures[f"proposal_{r.reason}"] += 1
        return {
            "run": self.run, "start": self.start.prompt, "best": self.best.prompt,
            "accepted": [f"{self.start.prompt.split('@')[0]}@{r.version}" for r in self.rounds if r.status == ACCEPTED],
            "start_scores": self.start.to_dict(), "best_scores": self.best.to_dict(),
            "rounds": [{k: v for k, v in r.to_dict().items() if k != "rationale"} for r in self.rounds],
            "llm_requests": self.requests, "llm_calls": self.calls, "failures": dict(sorted(failures.items())),
            "stopped": self.stopped,
        }


def run_id(start: prompt_files.Prompt, rows: Sequence[ValidationRow], config: RefineConfig) -> str:
    """A content hash of what decides the run: start prompt, sample ids and splits, config."""
    h = hashlib.blake2b(digest_size=6)
    h.update(start.sha256.encode())
    for row in rows:
        h.update(f"\x00{row.split}\x00{row.id}".encode("utf-8"))
    h.update(json.dumps(asdict(config), sort_keys=True).encode())
    return h.hexdigest()


def check_splits(rows: Sequence[ValidationRow], config: RefineConfig) -> None:
    """Fail fast (before a model starts) when the sample lacks the in- or out-of-domain split."""
    splits = {r.split for r in rows}
    missing = [s for s in (config.in_split, config.ood_split) if s not in splits]
    if missing:
        raise ConfigError(f"the validation sample has no rows of split {missing}; it has {sorted(splits)} "
                          "(choose them with --in-split / --ood-split)")


def refine(start: prompt_files.Prompt, rows: Sequence[ValidationRow], *, chat: ChatFn, store: PromptStore,
           config: RefineConfig, meta: prompt_files.Prompt, taxonomy: tx.Taxonomy, model: str = "",
           validation: Mapping[str, Any] | None = None,
           progress: Callable[[str], None] = lambda message: None) -> RefineRun:
    """Score `start`, then up to `config.rounds` rounds of propose -> check -> score -> decide,
    each written to `store` as it ends (a crash keeps the rounds before it). `chat` sends
    requests and returns results in order (an `LLMClient.chat_many`)."""
    domain = config.domain
    if start.id != an.prompt_id(domain):
        raise ConfigError(f"{start.ref} is not the {domain} annotation prompt")
    check_splits(rows, config)
    texts = {r.id: r.text for r in rows}
    counts = {"requests": 0, "calls": 0}
    rid = run_id(start, rows, config)

    def score(prompt: prompt_files.Prompt) -> PromptScore:
        requests = [an.annotation_request(r.id, r.text, domain, prompt=prompt) for r in rows]
        results = chat(requests)
        counts["requests"] += len(requests)
        counts["calls"] += sum(r.usage.calls for r in results)
        answers = {a.doc_id: a for a in (an.annotation_from_result(r, taxonomy) for r in results)}
        return score_prompt(prompt.ref, prompt.sha256, judge(rows, answers, domain, taxonomy))

    def show(s: PromptScore) -> str:
        return ", ".join(f"{k} {v.metric} {v.score:.3f}" for k, v in s.splits.items())

    best_prompt = start
    best = start_score = score(start)
    progress(f"scicurate: refine {start.ref}: {show(best)}; {len(best.errors)} errors, failures {best.failures or 0}")
    rounds: list[RoundRecord] = []
    history: list[dict[str, Any]] = []
    stopped = "rounds"
    common = {"run": rid, "proposer": meta.ref, "model": model, "validation": dict(validation or {})}
    for n in range(1, config.rounds + 1):
        if not best.errors:
            stopped = "no_errors"
            break
        version = store.next_version(start.id)
        request = proposal_request(best_prompt, best, texts, meta=meta, config=config, taxonomy=taxonomy,
                                   round_no=n, history=history)
        [result] = chat([request])
        counts["requests"] += 1
        counts["calls"] += result.usage.calls
        proposal = proposal_from_result(result)
        record: RoundRecord
        if not isinstance(proposal, Proposal):
            record = RoundRecord(n, FAILED_CALL, proposal[0], proposal[1][:500], best.prompt, None, "", "", None, "")
            store.log(start.id, {**common, **record.to_dict()})
        else:
            problems = list(check_proposal(proposal, best_prompt, config))
            if not problems:
                try:
                    plain = candidate_text(best_prompt, proposal, version)
                except (ValueError, prompt_files.PromptError) as exc:
                    problems.append(f"{REASON_UNWRITABLE}: {exc}")
            if problems:
                record = RoundRecord(n, INVALID, problems[0].split(":", 1)[0], "; ".join(problems)[:1000],
                                     best.prompt, None, "", "", None, proposal.rationale)
                store.log(start.id, {**common, **record.to_dict(),
                                     "proposal": {"system": proposal.system, "user": proposal.user}})
            else:
                candidate = score(prompt_files.parse(plain, f"{start.id}@{version} (candidate)"))
                decision = decide(candidate, best, config)
                refinement = {"parent": best.prompt, "round": n, "run": rid, "status": ACCEPTED if decision.accepted
                              else REJECTED, "reason": decision.reason, "scores": candidate.to_dict(),
                              "parent_scores": best.to_dict(), "failures": candidate.failures,
                              "rationale": proposal.rationale, **common}
                text = candidate_text(best_prompt, proposal, version, {"refinement": refinement})
                if decision.accepted:
                    path = store.write_version(start.id, version, text)
                else:
                    path = store.write_candidate(start.id, version, text)
                record = RoundRecord(n, ACCEPTED if decision.accepted else REJECTED, decision.reason,
                                     f"in-split gain {decision.in_gain:+.3f}, OOD change {decision.ood_change:+.3f}",
                                     best.prompt, version, str(path), hashlib.sha256(text.encode("utf-8")).hexdigest(),
                                     candidate.to_dict(), proposal.rationale, candidate.failures)
                store.log(start.id, {**common, **record.to_dict(), "parent_scores": best.to_dict()})
                if decision.accepted:
                    best_prompt = store.load(f"{start.id}@{version}")
                    best = PromptScore(best_prompt.ref, best_prompt.sha256, candidate.splits, candidate.judgements)
        rounds.append(record)
        if record.status != ACCEPTED:
            history.append({"round": n, "status": record.status, "reason": record.reason,
                            "rationale": record.rationale})
        progress(f"scicurate: round {n}/{config.rounds}: {record.status} ({record.reason}); {record.detail[:200]}"
                 + (f"; {show(best)}" if record.status == ACCEPTED else ""))
    return RefineRun(rid, start_score, best, tuple(rounds), counts["requests"], counts["calls"], stopped)


# ---- the annotator as a registered classifier ----------------------------------------------

def annotator_llm(endpoint: str = "", model: str = "", concurrency: int | None = None,
                  timeout_s: float | None = None) -> LlmConfig:
    """The annotation LLM: the embedded model unless an endpoint is given (then `model` is
    required and 8 requests go in flight, as in `scicurate recall annotate`)."""
    if endpoint and not model:
        raise ConfigError("an LLM endpoint needs a model name (llm_model= / --llm-model)")
    changes: dict[str, Any] = {"max_tokens": an.MAX_TOKENS}
    if endpoint:
        changes.update(backend="endpoint", endpoint=endpoint, model=model, max_concurrency=8)
    elif model:
        changes["model"] = model
    if concurrency is not None:
        changes["max_concurrency"] = concurrency
    if timeout_s is not None:
        changes["timeout_s"] = timeout_s
    return EMBEDDED_LLM.replace(**changes)


def annotator_scores(answer: an.Annotation | an.AnnotationFailure, domain: str) -> dict[str, float]:
    """{domain: 1/0, other: 0/1}; a failed answer scores `<failed>` 1 (a pseudo-label the eval
    counts as wrong, as refinement does)."""
    if isinstance(answer, an.AnnotationFailure):
        return {domain: 0.0, OTHER: 0.0, FAILED: 1.0}
    return {domain: float(answer.in_domain), OTHER: float(not answer.in_domain)}


class AnnotatorClassifier(DomainClassifier):
    """`recall-annotator` in the classifier registry: one `recall_<domain>` prompt version used
    as a binary classifier of its domain, so `scicurate eval classify --classifier
    recall-annotator --classifier-option domain=physics --classifier-option prompt=recall_physics@1`
    scores a prompt per split. Options: domain (required), prompt (default the newest
    version), prompts_dir, llm_endpoint + llm_model (default: the embedded model),
    llm_concurrency, llm_timeout."""

    def __init__(self, domain: str = "", prompt: str = "", prompts_dir: str = "", llm_endpoint: str = "",
                 llm_model: str = "", llm_concurrency: str = "", llm_timeout: str = "", name: str = "") -> None:
        if not domain:
            raise ConfigError("recall-annotator needs --classifier-option domain=<target domain>")
        self.domain = domain
        self.prompt_ref = prompt
        self.root = Path(prompts_dir) if prompts_dir else prompt_files.PROMPTS_DIR
        try:
            self.llm = annotator_llm(llm_endpoint, llm_model, int(llm_concurrency) if llm_concurrency else None,
                                     float(llm_timeout) if llm_timeout else None)
        except ValueError:
            raise ConfigError("llm_concurrency and llm_timeout must be numbers") from None
        self.labels = (domain, OTHER)
        self.name = name or f"recall-annotator:{prompt or an.prompt_id(domain)}"
        self._fixed_name = bool(name)
        self._prompt: prompt_files.Prompt | None = None
        self._taxonomy: tx.Taxonomy | None = None

    def load(self) -> None:
        self._taxonomy = tx.default()
        if self.domain not in self._taxonomy.targets():
            raise ConfigError(f"recall-annotator domain {self.domain!r}: the targets are "
                              f"{', '.join(self._taxonomy.targets())}")
        ref = self.prompt_ref or an.prompt_id(self.domain)
        try:
            self._prompt = prompt_files.load(ref, self.root)
        except prompt_files.PromptError as exc:
            raise ConfigError(str(exc)) from None
        if self._prompt.id != an.prompt_id(self.domain):
            raise ConfigError(f"prompt {self._prompt.ref} is not the {self.domain} annotation prompt")
        if not self._fixed_name:
            self.name = f"recall-annotator:{self._prompt.ref}:{self.llm.model}"

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        if self._prompt is None or self._taxonomy is None:
            raise RuntimeError("load() must run before predict()")
        from scicurate.llm.client import LLMClient
        from scicurate.llm.embedded import serving

        requests = [an.annotation_request(str(i), t, self.domain, prompt=self._prompt) for i, t in enumerate(texts)]
        with serving(self.llm) as served, LLMClient(served) as client:
            results = client.chat_many(requests)
        return [annotator_scores(an.annotation_from_result(r, self._taxonomy), self.domain) for r in results]


register_classifier("recall-annotator", AnnotatorClassifier)
