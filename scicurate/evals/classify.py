"""`scicurate eval classify`: score domain predictions against labelled texts, per split.

Goes in: a labels JSONL (`{"id", "domain", "split", "text", ...}` per line, e.g.
`shared/corpus/text/labeled_texts.dev.jsonl`) and either a predictions JSONL
(`{"id", "domain"}` per line, optionally `"scores": {label: float}`) or the name of a registered
domain classifier (`scicurate.classifiers.registry`), which scores the labels file's `text`.

Comes out: an `EvalReport` with one row per (split, domain) and per domain over all splits
("all"), macro-F1 and accuracy per split in the summary, and confusion matrices, average
precision and the ids of missing / unlabelled predictions in `details`. With `--plot`, one-vs-rest
precision-recall curves from the scores are written as a PNG.

Definitions (each computed for every split separately and for all splits together):
- TP(L) = items with true L predicted L; support(L) = items with true L; predicted(L) = items
  predicted L.
- precision(L) = TP / predicted (0 when nothing is predicted L); recall(L) = TP / support (0 when
  support is 0); F1(L) = 2·TP / (support + predicted), the harmonic mean of the two.
- macro-F1 = unweighted mean of F1(L) over the labels that occur as a true or a predicted label
  in that split (scikit-learn's `labels=None`), pseudo-labels (`<missing>`, `<abstain>`)
  excluded. A label predicted but never true enters with F1 = 0, so inventing labels costs.
- accuracy = items whose prediction equals the true label / labelled items (missing = wrong).
- A labelled id without a prediction is predicted `<missing>`: wrong for every metric, a column
  of the confusion matrix, counted and listed. Predicted ids absent from the labels are counted,
  listed and otherwise ignored.
- Confusion matrix: rows = true label, columns = predicted label, both the sorted union of the
  true and predicted labels of that split (pseudo-labels included).
- AP(L), one-vs-rest from `scores`: positives = items with true L, ranked by scores[L] from high
  to low; AP = Σ_k (R_k − R_{k−1})·P_k over the distinct score thresholds (scikit-learn's
  `average_precision_score`, no interpolation; tied scores enter together). Items without
  scores (missing predictions, lines without `scores`) and labels absent from an item's
  `scores` rank last, at −inf. AP is defined only for labels with support > 0; mean AP is the
  unweighted mean over those.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from scicurate.config import ConfigError
from scicurate.jsonl import read_objects
from scicurate.evals import EvalCommand, EvalReport, register

MISSING = "<missing>"
ABSTAIN = "<abstain>"
ALL = "all"
DEFAULT_SPLIT = "unsplit"


def is_pseudo_label(label: str) -> bool:
    """`<missing>`, `<abstain>` and any `<...>` label: never true, left out of the macro average."""
    return label.startswith("<") and label.endswith(">")


@dataclass(frozen=True, slots=True)
class LabeledText:
    id: str
    domain: str
    split: str = DEFAULT_SPLIT
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    id: str
    domain: str
    scores: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if not self.domain:
            raise ValueError(f"prediction {self.id!r} has an empty domain")
        if self.scores is not None:
            for label, score in self.scores.items():
                if not math.isfinite(score):
                    raise ValueError(f"prediction {self.id!r}: score of {label!r} is {score}")


@dataclass(frozen=True, slots=True)
class LabelMetrics:
    label: str
    support: int
    predicted: int
    tp: int
    precision: float
    recall: float
    f1: float
    ap: float | None = None


@dataclass(frozen=True, slots=True)
class GroupMetrics:
    """Metrics of one split (or of all splits, group "all")."""

    group: str
    items: int
    correct: int
    missing: int
    accuracy: float
    macro_f1: float
    macro_labels: tuple[str, ...]
    per_label: Mapping[str, LabelMetrics]
    confusion_labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    mean_ap: float | None = None
    # label -> (recall, precision) points of its PR curve, recall rising; empty without scores.
    curves: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    groups: Mapping[str, GroupMetrics]   # splits sorted, then "all"
    missing_ids: tuple[str, ...]
    unlabelled_ids: tuple[str, ...]
    scored: bool                         # at least one labelled item has scores


# ---------------------------------------------------------------------------------------------
# Pure metrics


def precision_recall_curve(y_true: Sequence[bool], scores: Sequence[float]) -> tuple[list[float], list[float]]:
    """(recall, precision) at each distinct score threshold, highest first, from (0, 1) up to
    the first threshold that reaches full recall. Tied scores cross the threshold together.

    Raises ValueError without positives (recall is then undefined) or on mismatched lengths.
    """
    if len(y_true) != len(scores):
        raise ValueError(f"{len(y_true)} labels but {len(scores)} scores")
    positives = sum(1 for y in y_true if y)
    if positives == 0:
        raise ValueError("precision-recall needs at least one positive")
    ranked = sorted(zip(scores, y_true), key=lambda pair: pair[0], reverse=True)
    recall, precision = [0.0], [1.0]
    tp = fp = 0
    i = 0
    while i < len(ranked) and tp < positives:
        threshold = ranked[i][0]
        while i < len(ranked) and ranked[i][0] == threshold:
            if ranked[i][1]:
                tp += 1
            else:
                fp += 1
            i += 1
        recall.append(tp / positives)
        precision.append(tp / (tp + fp))
    return recall, precision


def average_precision(y_true: Sequence[bool], scores: Sequence[float]) -> float:
    """AP = Σ_k (R_k − R_{k−1})·P_k over distinct thresholds (scikit-learn's definition)."""
    recall, precision = precision_recall_curve(y_true, scores)
    return sum((recall[k] - recall[k - 1]) * precision[k] for k in range(1, len(recall)))


def argmax_label(scores: Mapping[str, float]) -> str:
    """The label with the highest score; ties go to the label that sorts first."""
    if not scores:
        raise ValueError("argmax of empty scores")
    return max(sorted(scores), key=lambda label: scores[label])


def group_metrics(group: str, true: Sequence[str], predicted: Sequence[str],
                  scores: Sequence[Mapping[str, float] | None] | None = None) -> GroupMetrics:
    """Every metric of one group from its true labels, predicted labels and optional scores.

    `predicted` may hold pseudo-labels (`<missing>`, `<abstain>`); `scores[i]` None means item i
    has no scores. AP is computed when any item has scores.
    """
    if len(true) != len(predicted) or (scores is not None and len(scores) != len(true)):
        raise ValueError("true, predicted and scores must have one entry per item")
    if not true:
        raise ValueError(f"group {group!r} has no items")
    bad = sorted({t for t in true if is_pseudo_label(t)})
    if bad:
        raise ValueError(f"true labels cannot be pseudo-labels: {bad}")
    labels = tuple(sorted(set(true) | set(predicted)))
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(true, predicted):
        matrix[index[t]][index[p]] += 1
    macro_labels = tuple(label for label in labels if not is_pseudo_label(label))

    aps: dict[str, float] = {}
    curves: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
    if scores is not None and any(s is not None for s in scores):
        for label in macro_labels:
            y = [t == label for t in true]
            if not any(y):
                continue
            ranked = [s.get(label, -math.inf) if s is not None else -math.inf for s in scores]
            recall, precision = precision_recall_curve(y, ranked)
            aps[label] = sum((recall[k] - recall[k - 1]) * precision[k] for k in range(1, len(recall)))
            curves[label] = (tuple(recall), tuple(precision))

    per_label: dict[str, LabelMetrics] = {}
    for label in macro_labels:
        i = index[label]
        tp = matrix[i][i]
        support = sum(matrix[i])
        n_predicted = sum(row[i] for row in matrix)
        per_label[label] = LabelMetrics(
            label=label, support=support, predicted=n_predicted, tp=tp,
            precision=tp / n_predicted if n_predicted else 0.0,
            recall=tp / support if support else 0.0,
            f1=2 * tp / (support + n_predicted),
            ap=aps.get(label),
        )
    correct = sum(1 for t, p in zip(true, predicted) if t == p)
    return GroupMetrics(
        group=group, items=len(true), correct=correct,
        missing=sum(1 for p in predicted if p == MISSING),
        accuracy=correct / len(true),
        macro_f1=sum(m.f1 for m in per_label.values()) / len(per_label),
        macro_labels=macro_labels, per_label=per_label,
        confusion_labels=labels, confusion=tuple(tuple(row) for row in matrix),
        mean_ap=sum(aps.values()) / len(aps) if aps else None,
        curves=curves,
    )


def evaluate(labels: Sequence[LabeledText], predictions: Mapping[str, Prediction]) -> Evaluation:
    """Score `predictions` (by id) against `labels`, per split and over all splits."""
    if not labels:
        raise ValueError("no labelled items")
    label_ids = {item.id for item in labels}
    if len(label_ids) != len(labels):
        raise ValueError("labelled ids must be unique")
    splits = sorted({item.split for item in labels})
    if ALL in splits:
        raise ValueError(f"a split may not be named {ALL!r}: that name is the all-splits group")
    members: dict[str, list[LabeledText]] = {split: [] for split in splits}
    for item in labels:
        members[item.split].append(item)
    members[ALL] = list(labels)
    scored = any(predictions[item.id].scores is not None for item in labels if item.id in predictions)

    groups: dict[str, GroupMetrics] = {}
    for group, items in members.items():
        found = [predictions.get(item.id) for item in items]
        groups[group] = group_metrics(
            group,
            [item.domain for item in items],
            [p.domain if p is not None else MISSING for p in found],
            [p.scores if p is not None else None for p in found] if scored else None,
        )
    return Evaluation(
        groups=groups,
        missing_ids=tuple(sorted(item.id for item in labels if item.id not in predictions)),
        unlabelled_ids=tuple(sorted(set(predictions) - label_ids)),
        scored=scored,
    )


def apply_threshold(predictions: Mapping[str, Prediction], threshold: float,
                    abstain_label: str = ABSTAIN) -> tuple[dict[str, Prediction], int]:
    """Re-decide each scored prediction: its top label if that score >= `threshold`, else
    `abstain_label`. Predictions without scores keep their domain; their count is returned."""
    decided: dict[str, Prediction] = {}
    unscored = 0
    for pid, prediction in predictions.items():
        if prediction.scores is None:
            unscored += 1
            decided[pid] = prediction
            continue
        top = argmax_label(prediction.scores)
        domain = top if prediction.scores[top] >= threshold else abstain_label
        decided[pid] = Prediction(pid, domain, prediction.scores)
    return decided, unscored


# ---------------------------------------------------------------------------------------------
# Reading inputs (fatal problems are ConfigError: they are the user's files, read at start-up)


def _id(obj: dict[str, Any], where: str) -> str:
    value = obj.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise ConfigError(f"{where}: 'id' must be a non-empty string; got {value!r}")
    return str(value)


def read_labels(path: str | Path) -> list[LabeledText]:
    """Labelled lines `{"id", "domain", "split"?, "text"?}`; a line without split is "unsplit"."""
    items: list[LabeledText] = []
    seen: dict[str, int] = {}
    for lineno, obj in read_objects(path):
        where = f"{path}:{lineno}"
        item_id = _id(obj, where)
        if item_id in seen:
            raise ConfigError(f"{where}: id {item_id!r} already labelled on line {seen[item_id]}")
        seen[item_id] = lineno
        domain = obj.get("domain")
        if not isinstance(domain, str) or not domain or is_pseudo_label(domain):
            raise ConfigError(f"{where}: 'domain' must be a label string (not <...>); got {domain!r}")
        split = obj.get("split", DEFAULT_SPLIT)
        if not isinstance(split, str) or not split or split == ALL:
            raise ConfigError(f"{where}: 'split' must be a non-empty string other than {ALL!r}; got {split!r}")
        text = obj.get("text")
        items.append(LabeledText(item_id, domain, split, text if isinstance(text, str) else None))
    return items


def _scores(value: Any, where: str) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: 'scores' must be an object {{label: number}}")
    scores: dict[str, float] = {}
    for label, score in value.items():
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ConfigError(f"{where}: score of {label!r} must be a finite number; got {score!r}")
        scores[label] = float(score)
    return scores or None


def read_predictions(path: str | Path) -> dict[str, Prediction]:
    """Prediction lines `{"id", "domain", "scores"?}`; without "domain", the top-scoring label."""
    predictions: dict[str, Prediction] = {}
    lines: dict[str, int] = {}
    for lineno, obj in read_objects(path):
        where = f"{path}:{lineno}"
        item_id = _id(obj, where)
        if item_id in predictions:
            raise ConfigError(f"{where}: id {item_id!r} already predicted on line {lines[item_id]}")
        scores = _scores(obj.get("scores"), where)
        domain = obj.get("domain")
        if domain is None and scores is not None:
            domain = argmax_label(scores)
        if not isinstance(domain, str) or not domain:
            raise ConfigError(f"{where}: needs 'domain' (a label string) or 'scores'; got domain={domain!r}")
        predictions[item_id] = Prediction(item_id, domain, scores)
        lines[item_id] = lineno
    return predictions


def predict_with_classifier(classifier: Any, labels: Sequence[LabeledText], *, decide: bool = False
                            ) -> dict[str, Prediction]:
    """Load `classifier` (a `DomainClassifier`), score every labelled text, predict the top label
    (or, with `decide`, the label of the classifier's own `decide(scores)`: a recall model's
    card thresholds)."""
    if decide and not callable(getattr(classifier, "decide", None)):
        raise ConfigError(f"--decide: classifier {getattr(classifier, 'name', classifier)!r} has no thresholds "
                          "of its own (only the recall classifiers do); use --threshold")
    no_text = [item.id for item in labels if item.text is None]
    if no_text:
        raise ConfigError(f"--classifier needs a 'text' on every labelled line; {len(no_text)} lack one "
                          f"(first: {no_text[0]!r})")
    classifier.load()
    scored = classifier.predict([item.text for item in labels])
    if len(scored) != len(labels):
        raise ValueError(f"classifier {classifier.name!r} returned {len(scored)} score dicts "
                         f"for {len(labels)} texts")
    predictions: dict[str, Prediction] = {}
    for item, scores in zip(labels, scored):
        clean = _scores(scores, f"classifier {classifier.name!r} on {item.id!r}")
        if clean is None:
            raise ValueError(f"classifier {classifier.name!r} returned no scores for {item.id!r}")
        predictions[item.id] = Prediction(item.id, classifier.decide(clean) if decide else argmax_label(clean), clean)
    return predictions


def collapse_to_targets(labels: Sequence[LabeledText]) -> list[LabeledText]:
    """Gold labels onto what the recall classifiers predict: a taxonomy target (a level-1 id, or
    any id under it) stays its level-1 id, anything else (non_science, other_non_target, a
    non-target science) becomes `other`."""
    from scicurate.classifiers import taxonomy as tx
    from scicurate.classifiers.recall_fasttext import to_label

    tree = tx.default()
    return [LabeledText(item.id, to_label(item.domain, tree), item.split, item.text) for item in labels]


# ---------------------------------------------------------------------------------------------
# Plot


def plot_pr_curves(evaluation: Evaluation, path: str | Path) -> Path:
    """One panel per split (and "all"), one step curve per domain with its AP; PNG at `path`."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install matplotlib") from None
    panels = [g for g in evaluation.groups.values() if g.curves]
    if not panels:
        raise ConfigError("--plot needs 'scores' in the predictions; none of the labelled ids has them")
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    figure = Figure(figsize=(6.5 * cols, 5.0 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    for n, group in enumerate(panels, 1):
        ax = figure.add_subplot(rows, cols, n)
        for label, (recall, precision) in group.curves.items():
            ap = group.per_label[label].ap
            ax.plot(recall, precision, drawstyle="steps-pre",
                    label=f"{label} (AP {ap:.3f}, n={group.per_label[label].support})")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.05)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"{group.group}: one-vs-rest, mean AP {group.mean_ap:.3f}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", loc="lower left")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path


# ---------------------------------------------------------------------------------------------
# Report and command


def to_report(evaluation: Evaluation, source: str, notes: Sequence[str] = ()) -> EvalReport:
    summary: dict[str, Any] = {
        "source": source,
        "labelled": evaluation.groups[ALL].items,
        "missing_predictions": len(evaluation.missing_ids),
        "unlabelled_predictions": len(evaluation.unlabelled_ids),
    }
    for group in evaluation.groups.values():
        summary[f"macro_f1.{group.group}"] = group.macro_f1
    for group in evaluation.groups.values():
        summary[f"accuracy.{group.group}"] = group.accuracy
    if evaluation.scored:
        for group in evaluation.groups.values():
            summary[f"mean_ap.{group.group}"] = group.mean_ap
    columns = ("split", "domain", "support", "predicted", "precision", "recall", "f1")
    if evaluation.scored:
        columns += ("ap",)
    rows = []
    for group in evaluation.groups.values():
        for m in group.per_label.values():
            row = {"split": group.group, "domain": m.label, "support": m.support, "predicted": m.predicted,
                   "precision": m.precision, "recall": m.recall, "f1": m.f1}
            if evaluation.scored:
                row["ap"] = m.ap
            rows.append(row)
    all_notes = [
        "macro-F1 = unweighted mean F1 over the labels true or predicted in that split "
        "(<missing>/<abstain> excluded); a label predicted but never true counts with F1 = 0",
        "a labelled id without a prediction is predicted <missing> and counts as wrong",
    ]
    if evaluation.missing_ids:
        all_notes.append(f"{len(evaluation.missing_ids)} labelled ids have no prediction "
                         f"(first: {', '.join(evaluation.missing_ids[:5])})")
    if evaluation.unlabelled_ids:
        all_notes.append(f"{len(evaluation.unlabelled_ids)} predicted ids have no label and are ignored "
                         f"(first: {', '.join(evaluation.unlabelled_ids[:5])})")
    if evaluation.scored:
        all_notes.append("AP is one-vs-rest over each split's items, scikit-learn's step-wise definition; "
                         "items without scores rank last; ap is empty for labels with support 0")
    all_notes.extend(notes)
    details: dict[str, Any] = {
        "macro_f1_labels": {g.group: list(g.macro_labels) for g in evaluation.groups.values()},
        "confusion": {g.group: {"labels": list(g.confusion_labels), "matrix": [list(r) for r in g.confusion]}
                      for g in evaluation.groups.values()},
        "missing_ids": list(evaluation.missing_ids),
        "unlabelled_ids": list(evaluation.unlabelled_ids),
    }
    if evaluation.scored:
        details["average_precision"] = {
            g.group: {label: m.ap for label, m in g.per_label.items() if m.ap is not None}
            for g in evaluation.groups.values()
        }
    return EvalReport(name="classify", summary=summary, columns=columns, rows=tuple(rows),
                      notes=tuple(all_notes), details=details)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", required=True, help="labelled JSONL: {id, domain, split, text}")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="predictions JSONL: {id, domain, scores?: {label: score}}")
    source.add_argument("--classifier", help="registered domain classifier that scores the labels' text")
    parser.add_argument("--classifier-option", action="append", default=[], metavar="KEY=VALUE",
                        help="keyword argument for the classifier's factory (repeatable)")
    parser.add_argument("--plot", help="write one-vs-rest precision-recall curves to this PNG (needs scores)")
    parser.add_argument("--threshold", type=float,
                        help="re-decide scored predictions: top label if its score >= THRESHOLD, "
                             "else --abstain-label")
    parser.add_argument("--decide", action="store_true",
                        help="predict with the classifier's own thresholds (a recall model's card) instead of argmax")
    parser.add_argument("--targets-only", action="store_true",
                        help="map gold labels onto the six target domains or `other`, as recall classifiers predict")
    parser.add_argument("--abstain-label", default=ABSTAIN,
                        help=f"label below --threshold (default {ABSTAIN}: always wrong); "
                             "a real label such as non_science maps low confidence to it")


def _classifier_options(options: Sequence[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise ConfigError(f"--classifier-option takes KEY=VALUE; got {option!r}")
        parsed[key] = value
    return parsed


def run(args: argparse.Namespace) -> EvalReport:
    """Read, predict or load, optionally threshold, evaluate, optionally plot; return the report."""
    predictions_path = getattr(args, "predictions", None)
    classifier_name = getattr(args, "classifier", None)
    if bool(predictions_path) == bool(classifier_name):
        raise ConfigError("give exactly one of --predictions FILE.jsonl and --classifier NAME")
    threshold = getattr(args, "threshold", None)
    abstain_label = getattr(args, "abstain_label", ABSTAIN) or ABSTAIN
    plot = getattr(args, "plot", None)
    notes: list[str] = []
    if classifier_name:
        from scicurate.classifiers.registry import get_classifier

        classifier = get_classifier(classifier_name, **_classifier_options(getattr(args, "classifier_option", None) or []))
        labels = read_labels(args.labels)
        if getattr(args, "targets_only", False):
            labels = collapse_to_targets(labels)
        predictions = predict_with_classifier(classifier, labels, decide=getattr(args, "decide", False))
        source = f"classifier {classifier.name}"
        if getattr(args, "decide", False):
            notes.append("--decide: each text's label is the classifier's own decision (card thresholds), not the argmax")
    else:
        if getattr(args, "decide", False):
            raise ConfigError("--decide needs --classifier (a predictions file has no thresholds)")
        labels = read_labels(args.labels)
        if getattr(args, "targets_only", False):
            labels = collapse_to_targets(labels)
        predictions = read_predictions(predictions_path)
        source = f"predictions {predictions_path}"
    if getattr(args, "targets_only", False):
        notes.append("--targets-only: gold labels mapped onto the six target domains, everything else `other`")
    if threshold is not None:
        predictions, unscored = apply_threshold(predictions, threshold, abstain_label)
        notes.append(f"--threshold {threshold:g}: scored predictions re-decided as the top label if its "
                     f"score >= {threshold:g}, else {abstain_label}")
        if unscored:
            notes.append(f"{unscored} predictions have no scores and keep their domain under --threshold")
    try:
        evaluation = evaluate(labels, predictions)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if plot:
        plot_pr_curves(evaluation, plot)
        notes.append(f"precision-recall curves written to {plot}")
    return to_report(evaluation, source, notes)


COMMAND = register(EvalCommand(
    name="classify",
    help="domain classification: per-split P/R/F1, macro-F1, confusion, AP and PR curves",
    add_arguments=add_arguments,
    run=run,
))
