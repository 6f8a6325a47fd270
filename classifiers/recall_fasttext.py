"""Recall classifiers (taxonomy recall, step 5): one fastText model that scores every target
domain one-vs-rest, trained on labelled rows (a seed set or an LLM silver set), with a
per-domain threshold chosen on a validation set for a target precision.

Labels are the taxonomy's level-1 target ids; every other domain (non-science, non-target
science, a corpus's "other") is the single negative label `other`. fastText's `ova` loss gives
each label an independent sigmoid score, so a text can score high for two sciences and a
threshold per domain means what it says: P(domain) for that text. Training runs in a fresh
interpreter (see `web_fasttext._train_in_fresh_process`) and is deterministic (one thread,
fixed seed). Pure Python plus fastText; the Beam shell and the CLI come with `run recall`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from scicurate.classifiers import taxonomy as tx
from scicurate.classifiers.registry import DomainClassifier, register_classifier
from scicurate.classifiers.web_fasttext import _LABEL, _load_fasttext_model, _train_in_fresh_process, normalise_for_fasttext
from scicurate.config import ConfigError

log = logging.getLogger(__name__)

OTHER = "other"
MODEL_FILE = "recall.bin"
PATHS_FILE = "paths.bin"
CARD_FILE = "recall_card.json"
LLM_CARD_FILE = "recall_llm_card.json"     # the small-LLM recall model's card (classifiers/recall_llm.py)
LLM_HEAD_FILE = "recall_llm_head.safetensors"
# card file, model file, name prefix, the card key whose sha names the model, the command that trains it
_KINDS = ((CARD_FILE, MODEL_FILE, "recall-fasttext", "model_sha256", "scicurate train recall"),
          (LLM_CARD_FILE, LLM_HEAD_FILE, "recall-smollm", "head_sha256", "scicurate train recall-llm"))
MIN_PATH_ROWS = 20                          # fewer rows with a level-2 path: no path model
PATH_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class RecallConfig:
    """fastText settings and the threshold rule. Defaults: DeepSeekMath's recall model (dim 256,
    word 3-grams, min count 3) with more epochs, because seed and silver sets are thousands of
    rows, not millions: at 3 epochs a 1,000-row set predicts its majority label for everything.
    200k n-gram buckets, not fastText's 2M: at dim 256 the 2M-bucket model is a 2 GB file that
    every Beam worker process loads; with 200k it is 209 MB, and on the dev corpus (arXiv seeds
    plus news negatives) physics F1 was 0.874 vs 0.883 and maths 0.33 vs 0.36 on 49 rows, the
    news false-positive rate 1 vs 2 of 122: differences inside the noise of sets this size."""

    dim: int = 256
    word_ngrams: int = 3
    min_count: int = 3
    epoch: int = 25
    lr: float = 0.5
    bucket: int = 200_000
    max_chars: int = 4000
    seed: int = 1
    target_precision: float = 0.9
    min_predicted: int = 5        # a threshold must leave at least this many validation positives
    pool_prior: float | None = None   # precision re-weighted to this domain share (choose_threshold)
    # The path model splits a domain into dozens of level-2/3 nodes from a few hundred rows:
    # a smaller model (dim 64, every word) learns it; the domain model's settings (3-grams,
    # dim 256) predicted the largest node for nearly every text. Word bigrams, not unigrams:
    # the installed fastText build trains a different model on every run with wordNgrams 1
    # (and sometimes stops with NaN), with 2 it is byte-identical.
    path_dim: int = 64
    path_word_ngrams: int = 2
    path_min_count: int = 1
    path_epoch: int = 50
    path_bucket: int = 200_000

    def __post_init__(self) -> None:
        if min(self.dim, self.word_ngrams, self.min_count, self.epoch, self.bucket, self.max_chars, self.path_dim,
               self.path_word_ngrams, self.path_min_count, self.path_epoch, self.path_bucket) < 1:
            raise ConfigError("recall fastText: dim, word_ngrams, min_count, epoch, bucket, max_chars and the "
                              "path_ settings must be >= 1")
        if not 0.0 < self.lr <= 5.0:
            raise ConfigError(f"recall fastText: lr must be in (0, 5]; got {self.lr}")
        if not 0.0 < self.target_precision <= 1.0:
            raise ConfigError(f"target_precision must be in (0, 1]; got {self.target_precision}")
        if self.min_predicted < 1:
            raise ConfigError("min_predicted must be at least 1")
        if self.pool_prior is not None and not 0.0 < self.pool_prior < 1.0:
            raise ConfigError(f"pool_prior must be in (0, 1); got {self.pool_prior}")

    def fasttext_params(self) -> dict[str, Any]:
        return {"dim": self.dim, "wordNgrams": self.word_ngrams, "minCount": self.min_count, "epoch": self.epoch,
                "lr": self.lr, "bucket": self.bucket, "loss": "ova", "thread": 1, "seed": self.seed}

    def path_fasttext_params(self) -> dict[str, Any]:
        return {**self.fasttext_params(), "dim": self.path_dim, "wordNgrams": self.path_word_ngrams,
                "minCount": self.path_min_count, "epoch": self.path_epoch, "bucket": self.path_bucket}


def to_label(domain: str, taxonomy: tx.Taxonomy) -> str:
    """A row's domain (a taxonomy id at any level, or a corpus label) -> its target level-1 id,
    or `other`."""
    head = domain.split(".", 1)[0]
    return head if head in taxonomy.targets() else OTHER


def labels_of(row: Mapping[str, Any], taxonomy: tx.Taxonomy) -> tuple[str, ...]:
    """A row's labels: its `domain`, one string (a labelled corpus) or a list (a silver row
    the LLM said yes to for several domains), each through `to_label`; `other` only when no
    target remains."""
    raw = row["domain"]
    labels = sorted({to_label(str(d), taxonomy) for d in (raw if isinstance(raw, list) else [raw])})
    targets = tuple(label for label in labels if label != OTHER)
    return targets or (OTHER,)


def path_labels(row: Mapping[str, Any], taxonomy: tx.Taxonomy) -> tuple[str, ...]:
    """The deepest taxonomy node (level 2 or 3) of each target path a row carries: a silver
    row's `paths`, or for a labelled corpus row the path its arXiv `source_label` gives (as in
    seed mode). Empty when the row has no path below level 1."""
    paths = row.get("paths")
    if not isinstance(paths, Mapping):
        from scicurate.classifiers.annotate import seed_row

        paths = seed_row(row, taxonomy)["paths"] if row.get("domain") is not None else {}
    out = set()
    for domain, path in paths.items():
        if domain in taxonomy.targets() and isinstance(path, (list, tuple)) and len(path) > 1 \
                and taxonomy.is_valid_path(tuple(path)):
            out.add(str(path[-1]))
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class Threshold:
    domain: str
    threshold: float              # predict the domain when its score >= threshold
    precision: float              # on the validation rows, at that threshold
    recall: float
    predicted: int
    support: int
    met_target: bool              # False: no threshold reached the target; the best-F1 one is used


def choose_threshold(domain: str, scores: Sequence[float], gold: Sequence[bool], *, target_precision: float,
                     min_predicted: int = 1, prior: float | None = None) -> Threshold:
    """The cut with the most recall at which validation precision is >= target_precision with at
    least `min_predicted` texts predicted. The cut is placed at a positive's score and the
    threshold halfway down to the next lower validation score: every validation text keeps its
    side (the measured precision and recall hold exactly), and a new text scoring a little
    under the lowest validation positive is not lost to a cut drawn tight on it (with
    saturated scores the lowest positive may be 1.0 itself). When no cut reaches the target,
    the cut of best F1, flagged `met_target=False`. Ties in score enter together. No positives
    at all: threshold 1.0 (predict nothing), flagged.

    `prior`: the domain's share in the pool the model will sweep (about 0.02 for science on the
    web). A validation set is far richer in positives than that pool, so its precision
    overstates the pool's; with a prior, precision is re-weighted to it: recall x prior /
    (recall x prior + false-positive rate x (1 - prior)). It needs negatives in the validation
    set, and on a few hundred of them it amounts to "above every validation negative"."""
    if len(scores) != len(gold):
        raise ValueError("scores and gold differ in length")
    support = sum(gold)
    if not support:
        return Threshold(domain, 1.0, 0.0, 0.0, 0, 0, False)
    if prior is not None and support == len(gold):
        raise ValueError(f"{domain}: a pool prior needs validation texts outside the domain to measure false positives")
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    distinct = sorted(set(scores), reverse=True)
    below = {v: (v + distinct[k + 1]) / 2 if k + 1 < len(distinct) else v for k, v in enumerate(distinct)}
    best_target: tuple[float, float, float, int] | None = None
    best_f1: tuple[float, float, float, float, int] = (-1.0, 1.0, 0.0, 0.0, 0)
    tp = predicted = 0
    i = 0
    while i < len(order):
        value = scores[order[i]]
        before = tp
        while i < len(order) and scores[order[i]] == value:   # ties enter together
            tp += gold[order[i]]
            predicted += 1
            i += 1
        if tp == before:
            continue        # cut only at a positive's score: no lower than the recall needs
        recall = tp / support
        if prior is None:
            precision = tp / predicted
        else:
            negatives = len(gold) - support
            fpr = (predicted - tp) / negatives if negatives else 0.0
            precision = recall * prior / (recall * prior + fpr * (1 - prior))
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        if f1 > best_f1[0]:
            best_f1 = (f1, value, precision, recall, predicted)
        if precision >= target_precision and predicted >= min_predicted:
            best_target = (value, precision, recall, predicted)      # lower thresholds come later
    if best_target is not None:
        value, precision, recall, predicted = best_target
        return Threshold(domain, below[value], round(precision, 4), round(recall, 4), predicted, support, True)
    _, value, precision, recall, predicted = best_f1
    return Threshold(domain, below[value], round(precision, 4), round(recall, 4), predicted, support, False)


def decide_with(thresholds: Mapping[str, float], scores: Mapping[str, float]) -> str:
    """The target of highest score at or over its threshold, else `other` (no threshold: never)."""
    passing = [(s, d) for d, s in scores.items() if d != OTHER and s >= thresholds.get(d, 1.01)]
    return max(passing)[1] if passing else OTHER


def _label_scores(model: Any, labels: Sequence[str], max_chars: int, texts: Sequence[str]) -> list[dict[str, float]]:
    """A loaded fastText ova model's {label: P} (6 decimals, every label) for each text."""
    predicted, probs = model.predict([normalise_for_fasttext(t, max_chars) for t in texts], k=-1, threshold=0.0)
    out = []
    for names, values in zip(predicted, probs):
        got = {n[len(_LABEL):]: min(1.0, float(v)) for n, v in zip(names, values)}
        out.append({label: round(got.get(label, 0.0), 6) for label in labels})
    return out


class RecallModel:
    """A trained recall model and its thresholds: `scores(texts)` -> {label: P} per text;
    `decide(scores)` -> the best target domain over its threshold, or `other`."""

    def __init__(self, model_dir: str | Path, *, domain_model: bool = True) -> None:
        """`domain_model=False` loads the card and the path model only (for a stage that
        places texts already decided: the domain model is the large file)."""
        model_dir = Path(model_dir)
        if not (model_dir / CARD_FILE).is_file() or not (model_dir / MODEL_FILE).is_file():
            raise ConfigError(f"{model_dir}: no {MODEL_FILE} and {CARD_FILE}; train one with train_recall()")
        self.card, self.name = read_recall_card(model_dir, CARD_FILE)
        self.labels: tuple[str, ...] = tuple(self.card["labels"])
        self.max_chars = int(self.card["config"]["max_chars"])
        self.thresholds = card_thresholds(self.card)
        self._model = _load_fasttext_model(model_dir / MODEL_FILE) if domain_model else None
        self._paths = _load_fasttext_model(model_dir / PATHS_FILE) if self.card.get("path_model") else None
        self._taxonomy = tx.default()

    def scores(self, texts: Sequence[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        if self._model is None:
            raise RuntimeError("this RecallModel was loaded with domain_model=False")
        return _label_scores(self._model, self.labels, self.max_chars, texts)

    def decide(self, scores: dict[str, float]) -> str:
        return decide_with(self.thresholds, scores)

    def paths(self, texts: Sequence[str], domains: Sequence[str]) -> list[tuple[tuple[str, ...], float]]:
        """The taxonomy path of each text within its (already decided) domain: the best-scoring
        level-2/3 node of the path model under that domain, with its score; `(domain,)` and 0.0
        when the model has no path model or no node of that domain."""
        if len(texts) != len(domains):
            raise ValueError("texts and domains differ in length")
        if self._paths is None or not texts:
            return [((d,), 0.0) for d in domains]
        lines = [normalise_for_fasttext(t, self.max_chars) for t in texts]
        labels, probs = self._paths.predict(lines, k=-1, threshold=0.0)
        out = []
        for domain, names, values in zip(domains, labels, probs):
            best = max(((float(v), n[len(_LABEL):]) for n, v in zip(names, values)
                        if n[len(_LABEL):].startswith(domain + ".")), default=None)
            out.append((self._taxonomy.path(best[1]), round(min(1.0, best[0]), 6)) if best else ((domain,), 0.0))
        return out


def read_recall_card(model_dir: str | Path, card_file: str | None = None) -> tuple[dict[str, Any], str]:
    """The card of the recall model in `model_dir` (fastText or small-LLM, or only `card_file`'s
    kind) and the model's name, without loading the model: all a driver needs before a run. A
    card without its model file, or no card, is a ConfigError saying which command trains one."""
    model_dir = Path(model_dir)
    for card, model_file, prefix, sha_key, command in _KINDS:
        if card_file not in (None, card):
            continue
        if (model_dir / card).is_file():
            if not (model_dir / model_file).is_file():
                raise ConfigError(f"{model_dir}: {card} without {model_file}; train it again with `{command}`")
            data = json.loads((model_dir / card).read_text(encoding="utf-8"))
            return data, f"{prefix}-{data[sha_key][:12]}"
    raise ConfigError(f"{model_dir}: no {CARD_FILE} or {LLM_CARD_FILE}; train a model with "
                      "`scicurate train recall` (fastText) or `scicurate train recall-llm`")


def card_thresholds(card: Mapping[str, Any]) -> dict[str, float]:
    """{domain: threshold} of a recall card (empty when it was trained without validation rows)."""
    return {d: float(t["threshold"]) for d, t in (card.get("thresholds") or {}).items()}


def load_recall_model(model_dir: str | Path):
    """The recall model in `model_dir`, whichever kind its card says: the fastText model
    (`recall_card.json`) or the small-LLM one (`recall_llm_card.json`). Both score texts with
    `scores(texts)` and carry `card`, `labels`, `thresholds` and `name`."""
    model_dir = Path(model_dir)
    if (model_dir / CARD_FILE).is_file():
        return RecallModel(model_dir)
    if (model_dir / LLM_CARD_FILE).is_file():
        from scicurate.classifiers.recall_llm import RecallLLMModel

        return RecallLLMModel(model_dir)
    read_recall_card(model_dir)          # raises the ConfigError that says what to train


def usable_rows(rows: Iterable[dict]) -> list[dict]:
    """Rows with a non-empty text; silver rows with `complete` false (a failed answer, so their
    negatives are unknown) are left out."""
    return [r for r in rows if isinstance(r.get("text"), str) and r["text"].strip() and r.get("complete", True)]


def label_counts(label_sets: Iterable[Sequence[str]]) -> dict[str, int]:
    """Rows per label (sorted); fewer than two labels is a ConfigError: nothing to separate."""
    counts: dict[str, int] = {}
    rows = 0
    for labels in label_sets:
        rows += 1
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    if len(counts) < 2:
        raise ConfigError(f"cannot train a recall model on {rows} rows with labels {counts}: it needs two labels")
    return dict(sorted(counts.items()))


def validation_thresholds(labels: Sequence[str], scored: Sequence[Mapping[str, float]],
                          gold: Sequence[Sequence[str]], *, target_precision: float, min_predicted: int,
                          prior: float | None = None) -> dict[str, dict[str, Any]]:
    """The card's `thresholds`: `choose_threshold` for every target label on validation scores."""
    return {d: asdict(choose_threshold(d, [s[d] for s in scored], [d in g for g in gold],
                                       target_precision=target_precision, min_predicted=min_predicted, prior=prior))
            for d in labels if d != OTHER}


def _fasttext_lines(examples: Iterable[tuple[Sequence[str], str]], max_chars: int) -> bytes:
    """fastText training lines: every label of a row, then its normalised text."""
    return "".join(" ".join(_LABEL + label for label in labels) + f" {normalise_for_fasttext(text, max_chars)}\n"
                   for labels, text in examples).encode("utf-8")


@contextlib.contextmanager
def _training_file(payload: bytes, prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        path = Path(tmp) / "train.txt"
        path.write_bytes(payload)
        yield path


def train_recall(rows: Iterable[dict], out_dir: str | Path, *, validation: Iterable[dict] = (),
                 config: RecallConfig = RecallConfig(), taxonomy: tx.Taxonomy | None = None) -> dict[str, Any]:
    """Train `recall.bin` in out_dir from rows {"id", "text", "domain"} (`domain` a label or a
    list of labels; silver rows with `complete` false are left out); choose per-domain
    thresholds on `validation` rows (same shape) when given; write and return the card."""
    taxonomy = taxonomy or tx.default()
    rows_kept = sorted(usable_rows(rows), key=lambda r: str(r["id"]))
    examples = [(labels_of(r, taxonomy), r["text"]) for r in rows_kept]
    counts = label_counts(labels for labels, _ in examples)
    held = usable_rows(validation)
    if held and config.pool_prior is not None and all(OTHER not in labels_of(r, taxonomy) for r in held):
        raise ConfigError("pool_prior needs negatives (rows labelled outside the target domains) in the "
                          "validation rows: without them no false-positive rate can be measured")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = _fasttext_lines(examples, config.max_chars)
    with _training_file(payload, "scicurate-recall-") as train_path:
        _train_in_fresh_process("recall", train_path, out_dir / MODEL_FILE, config.fasttext_params())
    card: dict[str, Any] = {
        "created_by": "scicurate.classifiers.recall_fasttext.train_recall",
        "path_model": _train_path_model(rows_kept, out_dir, config, taxonomy),
        "taxonomy": taxonomy.ref, "labels": list(counts), "label_counts": counts,
        "rows": len(examples), "train_data_sha256": hashlib.sha256(payload).hexdigest(),
        "model_sha256": hashlib.sha256((out_dir / MODEL_FILE).read_bytes()).hexdigest(),
        "config": asdict(config), "thresholds": None, "validation_rows": 0,
    }
    if held:
        model = _load_fasttext_model(out_dir / MODEL_FILE)
        scored = _label_scores(model, card["labels"], config.max_chars, [r["text"] for r in held])
        card["thresholds"] = validation_thresholds(
            card["labels"], scored, [labels_of(r, taxonomy) for r in held], target_precision=config.target_precision,
            min_predicted=config.min_predicted, prior=config.pool_prior)
        card["validation_rows"] = len(held)
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return card


def _train_path_model(rows: Sequence[Mapping[str, Any]], out_dir: Path, config: RecallConfig,
                      taxonomy: tx.Taxonomy) -> dict[str, Any] | None:
    """`paths.bin`: fastText over the deepest level-2/3 node of each row's target paths (see
    `path_labels`), with its own settings (`RecallConfig.path_*`). It only places a text inside a domain
    already decided, so it is trained on in-domain rows alone. None (and no file) when fewer
    than MIN_PATH_ROWS rows have a path or they hold a single node."""
    examples = [(labels, r["text"]) for r in rows if (labels := path_labels(r, taxonomy))]
    nodes = sorted({n for labels, _ in examples for n in labels})
    target = out_dir / PATHS_FILE
    if len(examples) < MIN_PATH_ROWS or len(nodes) < 2:
        target.unlink(missing_ok=True)
        return None
    with _training_file(_fasttext_lines(examples, config.max_chars), "scicurate-recall-paths-") as train_path:
        params = config.path_fasttext_params()
        for attempt in range(PATH_ATTEMPTS):
            try:
                _train_in_fresh_process("recall paths", train_path, target, params)
                break
            except ConfigError as exc:
                # fastText may stop with "Encountered NaN" on a small, cleanly separable set (seen
                # with word unigrams, not run to run the same). Retry, halving dim and lr every
                # second failure; if it never trains, the domain model still stands and texts
                # keep level-1 paths.
                if "NaN" not in str(exc):
                    raise
                if attempt == PATH_ATTEMPTS - 1:
                    target.unlink(missing_ok=True)
                    log.warning("no path model: %s", exc)
                    return None
                if attempt % 2:
                    params = {**params, "lr": params["lr"] / 2, "dim": max(4, params["dim"] // 2)}
    return {"file": PATHS_FILE, "rows": len(examples), "nodes": len(nodes), "lr": params["lr"], "dim": params["dim"],
            "sha256": hashlib.sha256(target.read_bytes()).hexdigest()}


class RecallClassifierShell(DomainClassifier):
    """What the recall classifiers share in the registry: a model directory, a name taken from
    the loaded model unless given, scores from `predict`, the card's thresholds from `decide`.
    A subclass opens its model in `_open()` and may score differently in `_score`."""

    kind = ""

    def __init__(self, model_dir: str = "", name: str = "") -> None:
        self.model_dir = model_dir
        self.name = name or self.kind
        self._fixed_name = bool(name)
        self.labels: tuple[str, ...] = ()
        self._model: Any = None

    def _open(self) -> Any:
        raise NotImplementedError

    def _score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        return self._model.scores(texts)

    def load(self) -> None:
        self._model = self._open()
        self.labels = self._model.labels
        if not self._fixed_name:
            self.name = self._model.name

    def _loaded(self) -> Any:
        if self._model is None:
            raise RuntimeError("load() must run before predict() or decide()")
        return self._model

    def decide(self, scores: dict[str, float]) -> str:
        """The card's thresholds on one text's scores (what `run recall` applies): the best target
        over its threshold, else `other`. `eval classify --decide` uses it instead of argmax."""
        return self._loaded().decide(scores)

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        self._loaded()
        return self._score(texts)


class RecallClassifier(RecallClassifierShell):
    """`recall-fasttext` in the classifier registry: `scicurate eval classify --classifier
    recall-fasttext --classifier-option model_dir=DIR` scores a labels file with a model from
    `scicurate train recall`. Scores only (one per label, `other` included); thresholds are the
    card's, applied by `decide` (`eval classify --decide`) or the eval's `--threshold`."""

    kind = "recall-fasttext"

    def __init__(self, model_dir: str = "", name: str = "") -> None:
        if not model_dir:
            raise ConfigError("recall-fasttext needs --classifier-option model_dir=DIR (a `scicurate train recall` output)")
        super().__init__(model_dir, name)

    def _open(self) -> RecallModel:
        return RecallModel(self.model_dir)


register_classifier("recall-fasttext", RecallClassifier)
