"""MinHash-LSH near-duplicate clusters: the pure core on a seeded mutation set, and the Beam
transform giving the same clusters."""

import random

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from scicurate.dedup.config import MinHashConfig
from scicurate.dedup.near import cluster_labels
from scicurate.dedup.transforms import CommonWords, NearDuplicateClusters, _in_sample

VOCAB = [f"w{i}" for i in range(5000)]
SAMPLED_OF_30 = 6      # ids of mutation_set(seed=3, originals=10) whose blake2b falls in the lowest 10/30


def _doc(rng, words=200):
    return [rng.choice(VOCAB) for _ in range(words)]


def _mutate(rng, words, share):
    out = list(words)
    for i in rng.sample(range(len(out)), int(share * len(out))):
        out[i] = rng.choice(VOCAB)
    return out


def mutation_set(seed=7, originals=20, share=0.03):
    rng = random.Random(seed)
    items, truth = [], {}
    for k in range(originals):
        base = _doc(rng)
        items.append((f"d{k:03d}-0", " ".join(base)))
        items.append((f"d{k:03d}-1", " ".join(_mutate(rng, base, share))))
        truth[f"d{k:03d}-0"] = truth[f"d{k:03d}-1"] = f"d{k:03d}-0"
    for k in range(originals):
        items.append((f"u{k:03d}", " ".join(_doc(rng))))
    return items, truth


def test_light_edits_cluster_and_unrelated_texts_do_not():
    """3% word edits: bigram Jaccard ~0.89, estimated >= 0.7. With datasketch's (bands, rows)
    for 0.7/128 (14 x 9) a pair at s = 0.83 shares a band with probability ~0.945, so a pair or
    two of 20 may be missed; nothing unrelated may ever be joined."""
    items, truth = mutation_set()
    labels = cluster_labels(items, MinHashConfig(ngram=2, threshold=0.7, weights=(0.5, 0.5)))
    assert all(truth[i] == label for i, label in labels.items())      # precision: exact
    assert not any(i.startswith("u") for i in labels)
    found_pairs = sum(1 for i in labels if i.endswith("-1"))
    assert found_pairs >= 18                                          # recall: 19 of 20 here


def test_empty_and_punctuation_only_texts_never_cluster():
    items = [("a", ""), ("b", "  "), ("c", "!!! ???"), ("d", "…")]
    assert cluster_labels(items) == {}


def test_exact_copies_cluster_without_verification_too():
    text = "the quick brown fox jumps over the lazy dog " * 5
    items = [("x", text), ("y", text), ("z", "completely different words here for the test case")]
    assert cluster_labels(items, verify=False) == {"x": "x", "y": "x"}


def test_beam_transform_gives_the_pure_clusters():
    items, truth = mutation_set(seed=11, originals=8)
    config = MinHashConfig(ngram=2, threshold=0.7)
    expected = sorted(cluster_labels(items, config).items())
    assert len(expected) >= 14 and all(truth[i] == label for i, label in expected)
    with BeamTestPipeline(runner="FnApiRunner") as p:
        created = p | beam.Create(items)
        labels = created | NearDuplicateClusters(config, batch_size=5)
        assert_that(labels, equal_to(expected))
        # shard_entries=7: 24 documents -> 4 parts per band, buckets found per (band, part)
        sharded = created | "Sharded" >> NearDuplicateClusters(config.replace(shard_entries=7), batch_size=5)
        assert_that(sharded, equal_to(expected), label="ShardedAlike")


def test_beam_transform_default_config_finds_20_percent_edits_and_hot_buckets_stay_connected():
    """Default config (bigrams, 0.4, 42 x 3): 20% word substitutions still cluster with their
    original; 12 exact copies of one boilerplate text with max_bucket=4 force salted parts and
    chain pairs, and must still form one cluster; unrelated texts stay apart."""
    items, truth = mutation_set(seed=5, originals=6, share=0.2)
    boiler = "this page intentionally left blank copyright all rights reserved " * 3
    items += [(f"b{k:02d}", boiler) for k in range(12)]
    truth |= {f"b{k:02d}": "b00" for k in range(12)}
    config = MinHashConfig().replace(max_bucket=4)
    expected = sorted(cluster_labels(items, config).items())
    assert [i for i, _ in expected if i.startswith("b")] == [f"b{k:02d}" for k in range(12)]
    assert all(truth[i] == label for i, label in expected)
    assert sum(1 for i, _ in expected if i.endswith("-1")) >= 5
    for verify in (True, False):
        with BeamTestPipeline(runner="FnApiRunner") as p:
            labels = p | beam.Create(items) | NearDuplicateClusters(config, verify=verify, batch_size=7)
            assert_that(labels, equal_to(expected))


def test_common_words_learned_alike_in_memory_and_in_beam():
    """With common-word learning on (min docs lowered to fit a test), the Beam transform learns
    the same list as the in-memory path and so gives the same clusters; the list is the
    texts' most frequent words."""
    from scicurate.dedup.minhash import common_words
    from scicurate.dedup.near import learned_config

    items, truth = mutation_set(seed=3, originals=10, share=0.1)
    rng = random.Random(1)
    items = [(i, " ".join(["the", "of", *t.split()[:150], "and"]) if rng.random() < 0.9 else t) for i, t in items]
    config = MinHashConfig(common_words=3, common_min_docs=10)
    learned = learned_config([t for _, t in items], config)
    assert learned.drop_words == {"the", "of", "and"} == common_words([t for _, t in items], 3, config)
    expected = sorted(cluster_labels(items, config).items())
    assert sum(1 for i, _ in expected if i.endswith("-1")) >= 9
    assert all(truth[i] == label for i, label in expected)
    with BeamTestPipeline(runner="FnApiRunner") as p:
        created = p | beam.Create(items)
        labels = created | NearDuplicateClusters(config, batch_size=6)
        assert_that(labels, equal_to(expected))
        assert_that(created | "Learn" >> CommonWords(config), equal_to([frozenset({"the", "of", "and"})]),
                    label="LearnedAlike")
        too_few = created | "LearnTooFew" >> CommonWords(config.replace(common_min_docs=len(items) + 1))
        assert_that(too_few, equal_to([frozenset()]), label="NoneFromTooFew")
        # a sample smaller than the input: about `common_sample` ids chosen by hash, same on rerun
        sampled = created | "Sampled" >> beam.Filter(_in_sample, total=len(items), sample=10)
        assert_that(sampled | beam.combiners.Count.Globally(), equal_to([SAMPLED_OF_30]), label="SampleSize")


def test_mark_near_duplicates_keeps_every_record_and_marks_all_but_the_smallest_id():
    from scicurate.dedup.documents import MarkNearDuplicates

    items, truth = mutation_set(seed=9, originals=4, share=0.1)
    items.append(("e-empty", ""))
    expected = cluster_labels(items)
    assert len(expected) == 8                       # the 4 originals and their copies
    want = [(i, t, expected[i] if expected.get(i, i) != i else "") for i, t in items]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = (p | beam.Create(items)
               | MarkNearDuplicates(key=lambda r: r[0], text=lambda r: r[1], mark=lambda r, label: (*r, label))
               | beam.Map(lambda r: r if len(r) == 3 else (*r, "")))
        assert_that(out, equal_to(want))


def test_mark_near_duplicates_on_empty_texts_only():
    """A bundle whose every text has no shingles (documents emptied by the quality stages)
    passes through unmarked instead of failing the band step."""
    from scicurate.dedup.documents import MarkNearDuplicates

    items = [("a", ""), ("b", "  "), ("c", "!!")]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = (p | beam.Create(items)
               | MarkNearDuplicates(key=lambda r: r[0], text=lambda r: r[1], mark=lambda r, label: (*r, label)))
        assert_that(out, equal_to(items))
