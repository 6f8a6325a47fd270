"""Cores and thin Beam steps of `scicurate run recall` (wiring in pipelines/recall.py).

Scores come from RunInference over `RecallScoreHandler` (one per model; fastText or the
small-LLM classifier, whichever the model directory holds); `decide` applies the thresholds in
a separate, cheap stage, so a rerun with other thresholds changes no score. Recalled texts get
their taxonomy path from the model's path model (`PathHandler`), are counted per URL domain for
the iterative rule, and a deterministic sample per domain is re-labelled by the LLM
(`spot_check_requests` / `spot_check_row`) for the measured half of the purity report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from apache_beam.pvalue import TaggedOutput

from scicurate.parsers import pool_input
from scicurate.pipelines.inference import failed_examples
from scicurate.pipelines.summary import CountSummary
from scicurate.recall_records import (Decision, ModelInfo, PoolDoc, RecallDeadLetter, RecallFiltered, RecalledDoc,
                                      RecallRunConfig, ScoredDoc, SeedCandidate, SpotCheck, UrlDomainStats)

NAMESPACE = "recall"
FAILED = "failed"
FILTERED = "filtered"
STAGE_THRESHOLD = "threshold"


# ---- read ------------------------------------------------------------------------------------

class ReadPool(beam.DoFn):
    """ReadableFile -> PoolDoc | filtered RecallFiltered (empty text) | failed RecallDeadLetter.
    Streamed; a broken file keeps the rows before the break and adds one dead letter."""

    def __init__(self, config: RecallRunConfig) -> None:
        self.max_text_bytes = config.max_text_bytes

    def process(self, readable) -> Iterator[Any]:
        path = readable.metadata.path
        try:
            pool_input.pool_format(path)
        except ValueError as exc:
            Metrics.counter(NAMESPACE, "read_failed").inc()
            yield TaggedOutput(FAILED, RecallDeadLetter("", path, pool_input.STAGE_READ, "unsupported_input", str(exc)))
            return
        try:
            with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as stream:
                for item in pool_input.read_pool(stream, path, max_text_bytes=self.max_text_bytes):
                    yield from _route_read(item)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the run
            Metrics.counter(NAMESPACE, "read_failed").inc()
            yield TaggedOutput(FAILED, RecallDeadLetter("", path, pool_input.STAGE_READ, "unreadable",
                                                        f"{type(exc).__name__}: {exc}"))


def _route_read(item) -> Iterator[Any]:
    if isinstance(item, PoolDoc):
        Metrics.counter(NAMESPACE, "read_docs").inc()
        yield item
    elif isinstance(item, RecallFiltered):
        Metrics.counter(NAMESPACE, f"filtered_{item.reason}").inc()
        yield TaggedOutput(FILTERED, item)
    else:
        Metrics.counter(NAMESPACE, "read_failed").inc()
        yield TaggedOutput(FAILED, item)


# ---- score -----------------------------------------------------------------------------------

class RecallScoreHandler(ModelHandler[str, PredictionResult, Any]):
    """RunInference handler: text -> PredictionResult(text, {label: P}, model name). The model
    is `recall_fasttext.load_recall_model(model_dir)`: fastText (batches up to 256) or the
    small-LLM classifier (batches up to 16). Wrap in `KeyedModelHandler` to carry the doc."""

    def __init__(self, model_dir: str, *, max_batch_size: int = 256) -> None:
        super().__init__(min_batch_size=1, max_batch_size=max_batch_size)
        self.model_dir = model_dir

    def load_model(self):
        from scicurate.classifiers.recall_fasttext import load_recall_model

        return load_recall_model(self.model_dir)

    def run_inference(self, batch: Sequence[str], model, inference_args: Optional[dict[str, Any]] = None
                      ) -> Iterable[PredictionResult]:
        return [PredictionResult(text, scores, model.name) for text, scores in zip(batch, model.scores(list(batch)))]

    def get_metrics_namespace(self) -> str:
        return "RunInference_recall"


class PathHandler(RecallScoreHandler):
    """RunInference handler: (text, domain) -> PredictionResult(..., (path, score)) from the
    model's path model; `(domain,)` when it has none (or the model is a small-LLM one). Loads
    the path model alone, not the domain model again."""

    def load_model(self):
        from scicurate.classifiers.recall_fasttext import CARD_FILE, RecallModel, load_recall_model

        if (Path(self.model_dir) / CARD_FILE).is_file():
            return RecallModel(self.model_dir, domain_model=False)
        return load_recall_model(self.model_dir)

    def run_inference(self, batch: Sequence[tuple[str, str]], model, inference_args: Optional[dict[str, Any]] = None
                      ) -> Iterable[PredictionResult]:
        texts, domains = [t for t, _ in batch], [d for _, d in batch]
        found = model.paths(texts, domains) if hasattr(model, "paths") else [((d,), 0.0) for d in domains]
        return [PredictionResult(item, path, model.name) for item, path in zip(batch, found)]

    def get_metrics_namespace(self) -> str:
        return "RunInference_recall_paths"


def text_of(scored: ScoredDoc) -> tuple[ScoredDoc, str]:
    return scored, scored.doc.text


def add_scores(item) -> ScoredDoc:
    scored, prediction = item
    return scored.add(prediction.model_id, prediction.inference)


# ---- thresholds (a separate stage: scores are never recomputed to change them) ----------------

ThresholdTable = tuple[tuple[str, ...], tuple[Mapping[str, Optional[float]], ...]]


def threshold_table(config: RecallRunConfig) -> ThresholdTable:
    """The run's targets and, per model, each target's threshold (None: held back), resolved
    from the cards and overrides once instead of for every text."""
    targets = config.targets()
    return targets, tuple({d: config.threshold(m, d) for d in targets} for m in config.models)


def decide(scored: ScoredDoc, config: RecallRunConfig, table: ThresholdTable | None = None) -> Decision:
    """Apply the run's thresholds to one text's scores (`config.models[i]` scored
    `scored.scores[i]`; `table` is `threshold_table(config)`, computed here when not given). A
    target passes a model when its score is at or over that model's threshold; with
    `combine=all` every model must pass it, with `any` one. The recalled domain is the passing
    target of highest mean score (ties: the smaller id)."""
    if len(scored.scores) != len(config.models):
        raise ValueError(f"{scored.doc.doc_id}: {len(scored.scores)} score sets for {len(config.models)} models")
    targets, limits = table or threshold_table(config)
    mean = {d: sum(s.get(d, 0.0) for _, s in scored.scores) / len(scored.scores) for d in targets}
    passing = []
    for domain in targets:
        votes = [limit[domain] is not None and scores.get(domain, 0.0) >= limit[domain]
                 for limit, (_, scores) in zip(limits, scored.scores)]
        if (all(votes) if config.combine == "all" else any(votes)):
            passing.append(domain)
    best_domain = min(targets, key=lambda d: (-mean[d], d)) if targets else ""
    domain = min(passing, key=lambda d: (-mean[d], d)) if passing else ""
    return Decision(scored, domain, tuple(sorted(passing)), best_domain, round(mean.get(best_domain, 0.0), 6))


class ApplyThresholds(beam.DoFn):
    """ScoredDoc -> Decision, with the threshold table built once per DoFn instance."""

    def __init__(self, config: RecallRunConfig) -> None:
        self.config = config
        self.table: ThresholdTable | None = None

    def setup(self) -> None:
        self.table = threshold_table(self.config)

    def process(self, scored: ScoredDoc) -> Iterator[Decision]:
        yield decide(scored, self.config, self.table)


def split_decision(decision: Decision) -> Iterator[Any]:
    """Decision -> itself when recalled | filtered RecallFiltered `below_threshold`."""
    if decision.domain:
        Metrics.counter(NAMESPACE, f"recalled_{decision.domain}").inc()
        yield decision
        return
    Metrics.counter(NAMESPACE, "filtered_below_threshold").inc()
    doc = decision.scored.doc
    yield TaggedOutput(FILTERED, RecallFiltered(doc.doc_id, doc.url, doc.url_domain, doc.source, STAGE_THRESHOLD,
                                                "below_threshold", decision.best_domain, decision.best_score))


def path_input(decision: Decision) -> tuple[Decision, tuple[str, str]]:
    return decision, (decision.scored.doc.text, decision.domain)


def attach_path(item) -> RecalledDoc:
    decision, prediction = item
    path, score = prediction.inference
    path = tuple(path)
    if not path or path[0] != decision.domain:
        path = (decision.domain,)
    return RecalledDoc(decision, path, float(score))


def domain_index(recalled: RecalledDoc, _num: int, targets: Sequence[str]) -> int:
    return list(targets).index(recalled.decision.domain)


# ---- URL domains and seed candidates (the iterative rule) ------------------------------------

class UrlDomainRecall(beam.CombineFn):
    """Decisions of one URL domain -> (pages, {target: recalled})."""

    def create_accumulator(self):
        return [0, {}]

    def add_input(self, acc, decision: Decision):
        acc[0] += 1
        if decision.domain:
            acc[1][decision.domain] = acc[1].get(decision.domain, 0) + 1
        return acc

    def merge_accumulators(self, accs):
        out = [0, {}]
        for pages, recalled in accs:
            out[0] += pages
            for d, n in recalled.items():
                out[1][d] = out[1].get(d, 0) + n
        return out

    def extract_output(self, acc):
        return acc


def url_domain_stats(url_domain: str, acc, config: RecallRunConfig) -> UrlDomainStats:
    """DeepSeekMath's rule: a target is hot in a URL domain when more than `candidate_share`
    of its pages were recalled for it and the domain has at least `candidate_min_pages` pages."""
    pages, recalled = acc
    hot = tuple(sorted(d for d, n in recalled.items()
                       if pages >= config.candidate_min_pages and n / pages > config.candidate_share))
    return UrlDomainStats(url_domain, pages, tuple(sorted(recalled.items())), hot)


def seed_candidates(decision: Decision, hot: Mapping[str, UrlDomainStats], round_: int) -> Iterator[SeedCandidate]:
    """A text not recalled (for any target) from a URL domain hot for some target -> one seed
    candidate naming those targets and their shares."""
    doc = decision.scored.doc
    stats = hot.get(doc.url_domain) if doc.url_domain else None
    if decision.domain or stats is None or not stats.hot:
        return
    recalled = dict(stats.recalled)
    Metrics.counter(NAMESPACE, "seed_candidates").inc()
    yield SeedCandidate(doc.doc_id, doc.text, doc.url, doc.url_domain, stats.hot,
                        tuple(round(recalled[d] / stats.pages, 4) for d in stats.hot), round_)


# ---- the LLM spot-check of recalled texts ----------------------------------------------------

def spot_key(recalled: RecalledDoc, seed: int) -> tuple[str, tuple[str, str, str]]:
    """(domain, (sample key, id, text)): the key is annotate's pool-sample key, blake2b(seed, id)."""
    from scicurate.classifiers.annotate import sample_key

    doc = recalled.decision.scored.doc
    return recalled.decision.domain, (sample_key(doc.doc_id, seed).hex(), doc.doc_id, doc.text)


def spot_check_requests(element) -> Iterator[tuple[tuple[str, str], Any]]:
    """(domain, [(key, doc_id, text)]) -> keyed annotation requests of that domain's prompt."""
    from scicurate.classifiers.annotate import annotation_request

    domain, sample = element
    for _, doc_id, text in sample:
        yield (domain, doc_id), annotation_request(doc_id, text, domain)


def spot_check_row(item) -> SpotCheck:
    from scicurate.classifiers import annotate
    from scicurate.classifiers import taxonomy as tx

    (domain, doc_id), prediction = item
    answer = annotate.annotation_from_result(prediction.inference, tx.default())
    if isinstance(answer, annotate.AnnotationFailure):
        Metrics.counter(NAMESPACE, "spot_check_failed").inc()
        return SpotCheck(doc_id, domain, "failed", (), answer.reason, prediction.inference.prompt,
                         prediction.inference.model)
    verdict = "yes" if answer.in_domain else "no"
    Metrics.counter(NAMESPACE, f"spot_check_{verdict}").inc()
    return SpotCheck(doc_id, domain, verdict, answer.path, "", answer.prompt, answer.model)


def failed_spot_checks(failure) -> Iterator[SpotCheck]:
    """A batch RunInference gave up on -> one failed SpotCheck per request in it."""
    examples, exc = failed_examples(failure)
    for example in examples:
        try:
            (domain, doc_id), _request = example
        except (TypeError, ValueError):
            continue
        Metrics.counter(NAMESPACE, "spot_check_failed").inc()
        yield SpotCheck(doc_id, domain, "failed", (), "llm_exception", "", f"{type(exc).__name__}: {exc}"[:300])


def failed_scores(failure, stage: str) -> Iterator[RecallDeadLetter]:
    """A batch a model raised on (a bug or a broken model, not a bad text) -> one dead letter
    per text in it, so the run goes on and the texts are accounted for."""
    examples, exc = failed_examples(failure)
    for example in examples:
        try:
            item, _text = example
        except (TypeError, ValueError):
            continue
        doc = item.scored.doc if isinstance(item, Decision) else item.doc
        Metrics.counter(NAMESPACE, f"{stage}_failed").inc()
        yield RecallDeadLetter(doc.doc_id, doc.source, stage, "model_error", f"{type(exc).__name__}: {exc}"[:2000])


# ---- summary ---------------------------------------------------------------------------------

def keys_read(doc: PoolDoc) -> Iterable[str]:
    return ("inputs",)


def keys_filtered(row: RecallFiltered) -> Iterable[str]:
    # read-stage filters (empty text) never reach keys_read: they are inputs too
    return (("inputs",) if row.stage == pool_input.STAGE_READ else ()) + ("filtered", f"filtered_by_reason.{row.reason}")


ROW_FAILURES = ("bad_record", "too_large", "model_error")    # dead letters that stand for one pool row


def keys_dead(dead: RecallDeadLetter) -> Iterable[str]:
    # a file-level failure (unreadable, corrupt, unsupported) is counted but is not a pool row
    return (("inputs",) if dead.reason in ROW_FAILURES else ()) + ("dead_letter", f"dead_letter_by_reason.{dead.reason}")


def keys_recalled(doc: RecalledDoc) -> Iterable[str]:
    return ("recalled", f"recalled_by_domain.{doc.decision.domain}",
            f"recalled_by_level2.{doc.path[1] if len(doc.path) > 1 else doc.path[0] + '.(none)'}")


def keys_spot(row: SpotCheck) -> Iterable[str]:
    return (f"spot_check.{row.domain}:{row.verdict}",)


def keys_url_domain(stats: UrlDomainStats) -> Iterable[Any]:
    return ("url_domains",) + (("hot_url_domains",) if stats.hot else ())


def keys_candidate(row: SeedCandidate) -> Iterable[str]:
    return ("seed_candidates",)


class BuildSummary(CountSummary):
    """The counts plus, per recalled domain, the purity report: the validation precision of the
    domain's threshold (the least over models when all must agree) times the recalled count
    is the expected number of in-domain texts; the LLM spot-check's yes share is measured on a
    sample. `accounted`: inputs == recalled + filtered + dead-lettered rows."""

    TOP = ("inputs", "recalled", "filtered", "dead_letter", "seed_candidates", "url_domains", "hot_url_domains")
    GROUPS = ("recalled_by_domain", "recalled_by_level2", "filtered_by_reason", "dead_letter_by_reason", "spot_check")

    def __init__(self, config: RecallRunConfig) -> None:
        self.targets = config.targets()
        self.held_back = config.held_back()
        self.precision = {d: _validation_precision(config, d) for d in self.targets}

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        row_dead = sum(v for k, v in summary["dead_letter_by_reason"].items() if k in ROW_FAILURES)
        summary["dead_letter_rows"] = row_dead
        summary["accounted"] = summary["inputs"] == summary["recalled"] + summary["filtered"] + row_dead
        spots = summary.pop("spot_check")
        purity = {}
        for domain in self.targets:
            recalled = summary["recalled_by_domain"].get(domain, 0)
            summary["recalled_by_domain"].setdefault(domain, 0)
            yes, no, failed = (spots.get(f"{domain}:{v}", 0) for v in ("yes", "no", "failed"))
            precision = self.precision.get(domain)
            purity[domain] = {
                "recalled": recalled,
                "validation_precision": precision,
                "expected_in_domain": round(precision * recalled, 1) if precision is not None else None,
                "spot_checked": yes + no + failed, "spot_yes": yes, "spot_no": no, "spot_failed": failed,
                "spot_precision": round(yes / (yes + no), 4) if yes + no else None,
                "held_back": self.held_back.get(domain, ""),
            }
        summary["purity"] = purity
        scored = summary["recalled"] + summary["filtered_by_reason"].get("below_threshold", 0)
        summary["recalled_share"] = round(summary["recalled"] / scored, 4) if scored else 0.0
        return summary


def _validation_precision(config: RecallRunConfig, domain: str) -> float | None:
    values = [dict(m.precision).get(domain) for m in config.models if config.threshold(m, domain) is not None]
    values = [v for v in values if v is not None]
    if not values or dict(config.thresholds).get(domain) is not None:
        return None          # an overridden threshold was not measured on the validation set
    return min(values) if config.combine == "all" else max(values)


def model_info(model_dir: str) -> ModelInfo:
    """Read a model's card on the driver, without loading the model: name, labels, thresholds,
    precision, target met. A small-LLM card's base model must be on this machine's disk too."""
    from scicurate.classifiers.recall_fasttext import read_recall_card

    card, name = read_recall_card(model_dir)
    if card.get("base_model"):          # only small-LLM cards name a backbone
        from scicurate.classifiers.recall_llm import resolve_base_model

        resolve_base_model(card["base_model"]["path"])
    card_thresholds = card.get("thresholds") or {}
    return ModelInfo(
        model_dir=str(model_dir), name=name, labels=tuple(card["labels"]),
        thresholds=tuple(sorted((d, float(t["threshold"])) for d, t in card_thresholds.items())),
        precision=tuple(sorted((d, float(t["precision"])) for d, t in card_thresholds.items())),
        met_target=tuple(sorted((d, bool(t.get("met_target", False))) for d, t in card_thresholds.items())),
    )
