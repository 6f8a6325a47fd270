"""dedup.minhash / dedup.lsh / dedup.config: exact agreement with datasketch, banding, salting."""

import numpy as np
import pytest
from datasketch import LeanMinHash, MinHash, MinHashLSH
from datasketch import minhash as ds_minhash

from scicurate.config import ConfigError
from scicurate.dedup import lsh
from scicurate.dedup import minhash as mh
from scicurate.dedup.config import STRICT, ExactConfig, MinHashConfig, optimal_bands_rows

BASE = ("Graph decompositions are studied through a pebble game with colors, which gives a "
        "characterization of sparse graphs and algorithmic solutions to problems concerning "
        "tree decompositions of graphs. Special instances appear in rigidity theory and have "
        "received increased attention in recent years because of their applications.")

TEXTS = [
    BASE,
    BASE.replace("pebble game", "pebble-game").upper(),
    "",
    "   \n\t  ",
    "!!! ??? ...",
    "one",
    "two words",
    "exactly five words in here",
    "six words are in this text",
    "Straße ﬁne ＦＵＬＬ width ½ café naïve résumé — “quoted” ‘text’ … and more words here",
    "日本語 の テキスト です よ ね これ は テスト",
    "Ελληνικά κείμενα με τόνους και άλλα γράμματα εδώ",
    "emoji 😀 rocket 🚀 in a sentence with several words",
    "tabs\tand\nnewlines\r\nand\x1cunit\x1fseparators\u2003em space\u00a0nbsp",
    "under_score snake_case words_with_underscores and-hyphens",
    "$E = mc^2$ and \\frac{a}{b} + \\alpha_1 formula noise",
    "repeat " * 300,
    "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 4,
    "Numbers 3.14159 and 2,718 and 1e-10 in text with 42 answers",
    "x\x00y null byte inside a word of text here",
    " ".join(f"w{i}" for i in range(1000)),
    "Mixed CASE Words With Punctuation! Really? Yes: really; (maybe) [not] {sure}.",
]


def _datasketch(text, config):
    m = MinHash(num_perm=config.num_perm, seed=config.seed, scheme=config.scheme)
    m.update_batch(mh.shingles(text, config))
    return m.hashvalues


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
@pytest.mark.parametrize("seed", [1, 7])
def test_permutations_equal_datasketch(scheme, seed):
    a, b = mh.permutations(128, seed, scheme)
    ref = MinHash(num_perm=128, seed=seed, scheme=scheme).permutations
    assert a.dtype == ref[0].dtype and np.array_equal(a, ref[0]) and np.array_equal(b, ref[1])


def test_constants_equal_datasketch():
    assert mh.MERSENNE_PRIME == ds_minhash._mersenne_prime
    assert mh.MAX_HASH_LEGACY == ds_minhash._max_hash
    assert mh.MAX_HASH_AFFINE32 == ds_minhash._SCHEME_MAX_HASHES["affine32"]


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
def test_signatures_equal_datasketch_on_varied_texts(scheme):
    # A small chunk forces the permuted block to split inside documents.
    config = MinHashConfig(scheme=scheme, chunk_bytes=4 * 128 * 7, hash="sha1")
    sigs = mh.signatures(TEXTS, config)
    assert sigs.shape == (len(TEXTS), 128)
    for text, row in zip(TEXTS, sigs):
        ref = _datasketch(text, config)
        assert row.dtype == ref.dtype
        assert np.array_equal(row, ref), text[:40]


def test_sha1_signatures_equal_datasketch_defaults_and_other_sizes():
    config = MinHashConfig(hash="sha1")
    ref = MinHash()                       # datasketch's own defaults: 128 permutations, seed 1
    ref.update_batch(mh.shingles(TEXTS[0], config))
    assert np.array_equal(mh.signatures(TEXTS[:1], config)[0], ref.hashvalues)
    small = MinHashConfig(num_perm=64, ngram=3, seed=42, hash="sha1")
    for text, row in zip(TEXTS, mh.signatures(TEXTS, small)):
        assert np.array_equal(row, _datasketch(text, small))


def test_groups_do_not_change_rows(monkeypatch):
    whole = mh.signatures(TEXTS, MinHashConfig())
    monkeypatch.setattr(mh, "_GROUP_CHARS", 50)
    assert np.array_equal(mh.signatures(TEXTS, MinHashConfig()), whole)


def test_empty_texts_get_datasketch_empty_value():
    sigs = mh.signatures(["", "  ", "?!"], MinHashConfig())
    assert (sigs == MinHash().hashvalues).all()
    assert mh.shingles("", MinHashConfig()) == []
    assert mh.signatures([], MinHashConfig()).shape == (0, 128)


def test_normalise_and_shingles():
    config = MinHashConfig(ngram=5)
    assert mh.normalise("  Hello,\tＷＯＲＬＤ!  ﬁne_print\n", config) == "hello world fine print"
    assert mh.normalise("Hello, World", MinHashConfig(lowercase=False, strip_punct=False)) == "Hello, World"
    assert mh.shingles("Two words.", config) == [b"two words"]
    assert mh.shingles("a b c d e f", config) == [b"a b c d e", b"b c d e f"]
    assert mh.shingles("café au lait is nice today", config)[0] == "café au lait is nice".encode()


def test_wordmix_depends_on_words_only_and_estimates_jaccard():
    config = MinHashConfig(hash="wordmix")
    sigs = mh.signatures(TEXTS, config)
    for text, row in zip(TEXTS, sigs):
        assert np.array_equal(mh.signatures([text], config)[0], row)
        assert np.array_equal(mh.signatures(["pad", mh.normalise(text, config)], config)[1], row)
    assert (sigs[2] == mh.empty_value()).all()
    assert not np.array_equal(mh.signatures(["a b"], config)[0], mh.signatures(["b a"], config)[0])
    edited = BASE.replace("pebble game", "stone game").replace("rigidity", "elasticity")
    exact = set(mh.shingles(BASE, config)), set(mh.shingles(edited, config))
    true = len(exact[0] & exact[1]) / len(exact[0] | exact[1])
    for hashing in ("sha1", "wordmix"):
        pair = mh.signatures([BASE, edited], MinHashConfig(hash=hashing))
        assert abs(mh.jaccard_estimate(pair[0], pair[1]) - true) < 0.15


def test_to_lean_and_jaccard_estimate():
    config = MinHashConfig(hash="sha1")
    sigs = mh.signatures([BASE, TEXTS[1]], config)
    lean = mh.to_lean(sigs[0], config.seed, config.scheme)
    assert isinstance(lean, LeanMinHash)
    ref = MinHash()
    ref.update_batch(mh.shingles(BASE, config))
    assert lean == LeanMinHash(ref)
    other = mh.to_lean(sigs[1], config.seed, config.scheme)
    assert mh.jaccard_estimate(sigs[0], sigs[1]) == pytest.approx(lean.jaccard(other))
    with pytest.raises(ValueError):
        mh.jaccard_estimate(sigs[0], sigs[0][:64])


def test_signatures_are_deterministic():
    config = MinHashConfig()
    assert np.array_equal(mh.signatures(TEXTS, config), mh.signatures(list(TEXTS), config))
    assert np.array_equal(mh.signatures(TEXTS[::-1], config)[::-1], mh.signatures(TEXTS, config))


# ---- config ---------------------------------------------------------------------------------

@pytest.mark.parametrize("threshold,num_perm,weights", [
    (0.8, 128, (0.5, 0.5)), (0.5, 128, (0.5, 0.5)), (0.9, 64, (0.5, 0.5)), (0.7, 256, (0.5, 0.5)),
    (0.4, 128, (0.1, 0.9)), (0.6, 128, (0.8, 0.2)),
])
def test_band_params_equal_datasketch(threshold, num_perm, weights):
    index = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    config = MinHashConfig(threshold=threshold, num_perm=num_perm, weights=weights)
    assert (config.bands, config.rows) == (index.b, index.r)
    assert optimal_bands_rows(threshold, num_perm, *weights) == (index.b, index.r)


def test_default_and_strict_config():
    config = MinHashConfig()
    assert (config.num_perm, config.ngram, config.seed, config.threshold) == (128, 2, 1, 0.3)
    assert (config.weights, config.bands, config.rows, config.hash) == ((0.3, 0.7), 42, 3, "wordmix")
    assert (config.common_words, config.drop_words, config.common_min_docs) == (10, frozenset(), 1000)
    assert config.replace(threshold=0.6).bands != 42
    assert config.replace(bands=4, rows=8).bands == 4
    assert (STRICT.ngram, STRICT.threshold, STRICT.bands, STRICT.rows) == (5, 0.8, 9, 13)


@pytest.mark.parametrize("changes,match", [
    ({"num_perm": 0}, "num_perm"), ({"ngram": 0}, "ngram"), ({"seed": -1}, "seed"),
    ({"threshold": 1.0}, "threshold"), ({"threshold": 0.0}, "threshold"),
    ({"scheme": "affine64"}, "scheme"), ({"hash": "xxh3"}, "hash"), ({"max_bucket": 1}, "max_bucket"),
    ({"bands": 4}, "together"), ({"bands": 20, "rows": 10}, "at most num_perm"),
    ({"chunk_bytes": 16}, "chunk_bytes"), ({"weights": (0.0, 0.0)}, "weights"),
    ({"weights": (-1.0, 1.0)}, "weights"), ({"weights": (1.0,)}, "weights"),
    ({"common_words": -1}, "common_words"), ({"common_min_docs": 0}, "common_min_docs"),
    ({"drop_words": "the"}, "drop_words"), ({"drop_words": {""}}, "drop_words"),
])
def test_config_validation(changes, match):
    with pytest.raises(ConfigError, match=match):
        MinHashConfig(**changes)


def test_exact_config():
    assert ExactConfig().normalise is True
    with pytest.raises(ConfigError):
        ExactConfig(normalise="yes")


# ---- lsh ------------------------------------------------------------------------------------

NEAR = [
    BASE,
    BASE.replace("in recent years", "in the recent years"),
    BASE.upper().replace(".", "!"),
]
UNRELATED = [
    "The enzyme kinetics of lactate dehydrogenase were measured at five temperatures using a "
    "stopped flow apparatus and the rate constants fitted with a Michaelis Menten model.",
    "Stellar spectra from the survey telescope were calibrated against standard stars and the "
    "metallicity gradient of the galactic disk was derived from the resulting abundances.",
    "We train a convolutional network on labelled satellite images to segment crop fields and "
    "report intersection over union on held out regions from three continents.",
]


def test_near_duplicates_share_a_band_and_unrelated_texts_share_none():
    config = MinHashConfig()
    sigs = mh.signatures(NEAR + UNRELATED, config)
    keys = [set(lsh.band_keys(row, config.bands, config.rows)) for row in sigs]
    assert all(len(k) == config.bands for k in keys)
    for i in range(1, len(NEAR)):
        assert keys[0] & keys[i], f"near duplicate {i} shares no band"
    for i in range(len(sigs)):
        for j in range(max(i + 1, len(NEAR)), len(sigs)):
            assert not keys[i] & keys[j], (i, j)


def test_band_keys_are_stable_and_positional():
    row = np.arange(128, dtype=np.uint32)
    keys = lsh.band_keys(row, 9, 13)
    assert keys == lsh.band_keys(row.copy(), 9, 13) and all(len(k) == lsh.KEY_BYTES for k in keys)
    assert keys == lsh.band_keys(row.astype(">u4"), 9, 13)      # byte order does not leak in
    same_values = np.tile(np.arange(13, dtype=np.uint32), 9)
    assert len(set(lsh.band_keys(same_values, 9, 13))) == 9      # the band index is in the key
    with pytest.raises(ValueError):
        lsh.band_keys(row, 10, 13)


def test_candidate_pairs_sorted_and_order_free():
    assert lsh.candidate_pairs(["c", "a", "b", "a"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert lsh.candidate_pairs(["b", "c", "a"]) == lsh.candidate_pairs(["a", "b", "c"])
    assert lsh.candidate_pairs(["x"]) == []


def _components(pairs, members):
    parent = {m: m for m in members}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x
    for a, b in pairs:
        parent[find(a)] = find(b)
    return {find(m) for m in members}


def test_salted_buckets_keep_members_connected_and_are_deterministic():
    members = [f"doc:{i:03d}" for i in range(25)]
    parts = lsh.salted_buckets(b"k" * 16, members, max_bucket=10)
    assert parts == lsh.salted_buckets(b"k" * 16, list(reversed(members)) + members[:3], max_bucket=10)
    assert [len(m) for _k, m in parts] == [10, 10, 5, 2, 2]          # three parts, two chain links
    assert len({k for k, _m in parts}) == len(parts) and b"k" * 16 not in {k for k, _m in parts}
    assert sorted(m for _k, group in parts[:3] for m in group) == members
    assert parts[0][1] != members[:10]                                 # a hashed split, not id runs
    pairs = [p for _k, group in parts for p in lsh.candidate_pairs(group)]
    assert len(_components(pairs, members)) == 1
    assert len(pairs) == 45 + 45 + 10 + 2 < 25 * 24 // 2
    assert parts != lsh.salted_buckets(b"j" * 16, members, max_bucket=10)


def test_small_bucket_is_unchanged():
    assert lsh.salted_buckets(b"key", ["b", "a", "b"], max_bucket=3) == [(b"key", ["a", "b"])]
    with pytest.raises(ValueError):
        lsh.salted_buckets(b"key", ["a"], max_bucket=1)


# ---- common words -----------------------------------------------------------------------------

def test_common_words_rank_by_document_frequency_and_need_enough_texts():
    texts = ["The cat sat.", "the dog ran", "a cat and THE bird", "zebra"]
    config = MinHashConfig(common_min_docs=4)
    assert mh.common_words(texts, 2, config) == {"the", "cat"}          # df 3, then 2
    assert mh.common_words(texts[::-1], 2, config) == {"the", "cat"}    # order-free
    assert mh.common_words(texts, 3, config) == {"the", "cat", "a"}     # df-1 tie: smallest word
    assert mh.common_words(texts, 2, MinHashConfig(common_min_docs=5)) == frozenset()
    assert mh.common_words(texts, 0, config) == frozenset()


@pytest.mark.parametrize("hashing", ["sha1", "wordmix"])
def test_dropped_words_are_removed_before_shingling(hashing):
    config = MinHashConfig(hash=hashing, drop_words={"the", "of"})
    plain = MinHashConfig(hash=hashing)
    text = "The rigidity of the pebble game of graphs"
    assert mh.normalise(text, config) == "rigidity pebble game graphs"
    assert np.array_equal(mh.signatures([text], config)[0],
                          mh.signatures(["rigidity pebble game graphs"], plain)[0])
    # a text of dropped words only keeps them, so its copies still match
    assert np.array_equal(mh.signatures(["the of the"], config)[0], mh.signatures(["the of the"], plain)[0])
    assert mh.normalise("the of the", config) == "the of the"
    # batch position and neighbours do not change a row (vectorised drop = per-text drop)
    rows = mh.signatures(["of the", text, "zeta of eta"], config)
    assert np.array_equal(rows[1], mh.signatures([text], config)[0])
    assert np.array_equal(rows[2], mh.signatures(["zeta eta"], plain)[0])
