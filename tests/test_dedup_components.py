"""Connected components: (a) union-find and star-contraction cores, (b) Beam ConnectedComponents."""

from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from scicurate.dedup.components import (
    ComponentsConfig,
    canonical_edge,
    large_star,
    small_star,
    star_contraction,
    union_find_components,
)
from scicurate.dedup.transforms import CHANGED, LABELS, ConnectedComponents


def chain(n: int, prefix: str = "") -> list[tuple[str, str]]:
    """Path 0-1-...-(n-1) with zero-padded ids in path order: the slowest shape for min-propagation."""
    return [(f"{prefix}{i:04d}", f"{prefix}{i + 1:04d}") for i in range(n - 1)]


def star(leaves: int, prefix: str = "") -> list[tuple[str, str]]:
    # The centre "z" is the largest id, so every leaf must learn the smallest leaf, not the centre.
    return [(f"{prefix}z", f"{prefix}{i:04d}") for i in range(leaves)]


def random_graphs(count: int, seed: int = 1234) -> list[list[tuple[str, str]]]:
    rng = random.Random(seed)
    graphs = []
    for g in range(count):
        n = rng.randint(1, 60)
        m = rng.randint(0, 70)
        graphs.append([(f"g{g:02d}:{rng.randrange(n)}", f"g{g:02d}:{rng.randrange(n)}") for _ in range(m)])
    return graphs


# ---- tier a: pure cores ----------------------------------------------------------------------


def test_union_find_chain_and_star():
    assert union_find_components(chain(5)) == {f"{i:04d}": "0000" for i in range(5)}
    labels = union_find_components(star(4))
    assert labels == {"z": "0000", "0000": "0000", "0001": "0000", "0002": "0000", "0003": "0000"}


def test_union_find_disjoint_self_loops_duplicates_and_isolated_nodes():
    edges = [("b", "a"), ("a", "b"), ("a", "b"), ("d", "c"), ("e", "e"), ("c", "f")]
    assert union_find_components(edges, nodes=["x"]) == {
        "a": "a", "b": "a", "c": "c", "d": "c", "f": "c", "e": "e", "x": "x",
    }
    assert union_find_components([]) == {}


def test_union_find_orders_ids_as_strings():
    # Lexicographic, not numeric: "10" < "9", so "10" labels the component.
    assert union_find_components([("9", "10")]) == {"9": "10", "10": "10"}
    assert union_find_components([("2", "10"), ("10", "9")])["9"] == "10"


def test_union_find_rejects_non_string_ids():
    with pytest.raises(TypeError):
        union_find_components([(1, 2)])
    with pytest.raises(TypeError):
        union_find_components([("a",)])


def test_star_phases():
    assert canonical_edge(("a", "b")) == ("b", "a")
    assert canonical_edge(("a", "a")) is None
    # Large-Star at "c": larger neighbours hook onto min(c, neighbours) = "a".
    assert sorted(large_star("c", ["a", "d", "e"])) == [("d", "a"), ("e", "a")]
    assert list(large_star("e", ["a", "c"])) == []
    # Small-Star at "e" over smaller neighbours: all hook onto the minimum.
    assert sorted(small_star("e", ["c", "b", "d"])) == [("c", "b"), ("d", "b"), ("e", "b")]
    assert list(small_star("b", [])) == []


def test_components_config_validates():
    assert ComponentsConfig().max_iterations == 12
    with pytest.raises(ValueError):
        ComponentsConfig(max_iterations=0)
    with pytest.raises(TypeError):
        ComponentsConfig(max_iterations=2.5)


def test_star_contraction_matches_union_find_within_default_rounds():
    cases = [chain(200), star(300), *random_graphs(50)]
    for edges in cases:
        labels, changed = star_contraction(edges, 12)
        assert labels == union_find_components(edges)
        assert changed == 0


def test_star_contraction_partial_labels_are_a_valid_partition_in_progress():
    edges = chain(200)
    labels, changed = star_contraction(edges, 1)
    truth = union_find_components(edges)
    assert changed > 0
    assert len(set(labels.values())) > 1  # not converged: the one component is split
    for node, label in labels.items():
        assert label <= node and truth[label] == truth[node]


# ---- tier b: Beam ----------------------------------------------------------------------------


def _counters(result, step_prefix: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in result.metrics().query(MetricsFilter().with_namespace("dedup_components"))["counters"]:
        if r.key.step.startswith(step_prefix):
            out[r.key.metric.name] = out.get(r.key.metric.name, 0) + r.committed
    return out


def test_connected_components_matches_union_find():
    graphs = [chain(200, "c:"), star(300, "s:"), *random_graphs(50)]
    all_edges = [edge for graph in graphs for edge in graph]
    expected = union_find_components(all_edges)
    assert len(expected) > 700
    partial_edges = chain(200, "p:")
    with BeamTestPipeline(runner="FnApiRunner") as p:
        full = p | "Edges" >> beam.Create(all_edges) | "CC" >> ConnectedComponents()
        assert_that(full[LABELS], equal_to(sorted(expected.items())), label="LabelsEqualUnionFind")
        assert_that(full[CHANGED], equal_to([0]), label="Converged")

        empty = p | "NoEdges" >> beam.Create([]) | "CCEmpty" >> ConnectedComponents()
        assert_that(empty[LABELS], equal_to([]), label="EmptyLabels")
        assert_that(empty[CHANGED], equal_to([0]), label="EmptyConverged")

        partial = (
            p
            | "PartialEdges" >> beam.Create(partial_edges)
            | "CCOneRound" >> ConnectedComponents(ComponentsConfig(max_iterations=1))
        )
        _, partial_changed = star_contraction(partial_edges, 1)
        assert partial_changed > 0
        assert_that(partial[CHANGED], equal_to([partial_changed]), label="NotConvergedCount")
        assert_that(
            partial[LABELS],
            equal_to(sorted(star_contraction(partial_edges, 1)[0].items())),
            label="PartialLabelsMatchCore",
        )
    assert _counters(p.result, "CC/") == {"rounds": 12, "changed_last_round": 0}
    assert _counters(p.result, "CCEmpty/") == {"rounds": 12, "changed_last_round": 0}
    assert _counters(p.result, "CCOneRound/") == {"rounds": 1, "changed_last_round": partial_changed}
