import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that
from apache_beam.transforms.stats import ApproximateQuantiles

from scicurate.classifiers import router
from scicurate.records import ROUTE_HIGH_COST, ROUTE_LOW_COST


def _routed(keys, threshold):
    return sum(1 for k in keys if router.decide(k, threshold, failed=False, has_text_layer=True,
                                                high_cost_available=False).route == ROUTE_HIGH_COST)


def test_route_key_is_deterministic_and_breaks_ties():
    a = router.route_key("doc:00001", 0.5)
    assert a == router.route_key("doc:00001", 0.5)
    b = router.route_key("doc:00002", 0.5)
    assert a != b and a[0] == b[0]


@pytest.mark.parametrize("budget", [0.0, 0.01, 0.05, 0.2, 0.5])
def test_exact_threshold_routes_floor_of_budget(budget):
    rng = random.Random(7)
    keys = [router.route_key(f"d:{i}", rng.random()) for i in range(1000)]
    assert _routed(keys, router.exact_threshold(keys, budget)) == int(budget * 1000)


def test_exact_threshold_picks_the_top_scores():
    keys = [router.route_key(f"d:{i}", s) for i, s in enumerate([0.1, 0.9, 0.5, 0.8, 0.2])]
    threshold = router.exact_threshold(keys, 0.4)
    routed = sorted(k[0] for k in keys if tuple(k) > threshold.key)
    assert routed == [0.8, 0.9]


def test_threshold_from_quantiles_grid_rounds_up():
    grid = [(i / 10, 0.0) for i in range(11)]  # 11 quantiles: 0.0 .. 1.0
    assert router.threshold_from_quantiles(grid, 0.2, 0.001).key == (0.9, 0.0)
    assert router.threshold_from_quantiles(grid, 0.0, 0.001).key is None
    assert router.threshold_from_quantiles(grid, 1.0, 0.001).route_all
    assert router.threshold_from_quantiles([], 0.05, 0.001).key is None


def test_beam_quantiles_never_exceed_budget():
    rng = random.Random(11)
    # Many ties at 0 (prose pages), a long tail of distinct scores: the realistic shape.
    scores = [0.0] * 3000 + [round(rng.random(), 3) for _ in range(2000)]
    keys = [router.route_key(f"d:{i}", s) for i, s in enumerate(scores)]
    eps = 0.001
    with BeamTestPipeline(runner="FnApiRunner") as p:
        q = p | beam.Create(keys) | ApproximateQuantiles.Globally(router.num_quantiles(eps))
        counts = q | beam.Map(lambda qs: [
            _routed(keys, router.threshold_from_quantiles(qs, b, eps)) for b in (0.01, 0.05, 0.2)
        ])
        assert_that(counts, lambda got: _check_counts(got[0], len(keys), eps))


def _check_counts(counts, n, eps):
    for budget, routed in zip((0.01, 0.05, 0.2), counts):
        assert routed <= budget * n, (budget, routed)
        assert routed >= (budget - 2 * eps) * n - 1, (budget, routed)


def test_decide_rules():
    t = router.Threshold(key=(0.5, 0.5))
    low = router.decide((0.1, 0.0), t, failed=False, has_text_layer=True, high_cost_available=False)
    assert (low.route, low.reason, low.needs_high_cost) == (ROUTE_LOW_COST, "below_threshold", False)
    high = router.decide((0.9, 0.0), t, failed=False, has_text_layer=True, high_cost_available=False,
                         signal_reasons=("empty_equation_blocks",))
    assert (high.route, high.reason, high.needs_high_cost) == (ROUTE_HIGH_COST, "top_score:empty_equation_blocks", True)
    scan = router.decide((2.0, 0.0), router.Threshold(key=None), failed=False, has_text_layer=False,
                         high_cost_available=True)
    assert (scan.route, scan.reason, scan.needs_high_cost) == (ROUTE_HIGH_COST, "no_text_layer", False)
    failed = router.decide((0.9, 0.0), t, failed=True, has_text_layer=True, high_cost_available=False)
    assert (failed.route, failed.reason) == (ROUTE_LOW_COST, "failed")
