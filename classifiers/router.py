"""Decide which pages go to the high-cost parser, within a corpus-wide budget.

Every page has a questionability score (`classifiers.page_signals.score`). The pipeline
computes approximate quantiles of all pages' route keys in one global pass (Beam's
ApproximateQuantiles, as a side input), and this module turns them into a threshold such that
at most `budget` of all pages lie above it, and then routes each page against that threshold.

Route keys are (score, tiebreak) with a tiebreak hashed from the page id, so equal scores are
ordered the same way on every run and the threshold never splits a tie unpredictably.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Sequence

from scicurate.records import ROUTE_HIGH_COST, ROUTE_LOW_COST

RouteKey = tuple[float, float]

REASON_FAILED = "failed"
REASON_BELOW = "below_threshold"
REASON_TOP = "top_score"
REASON_NO_TEXT_LAYER = "no_text_layer"


def route_key(page_id: str, score: float) -> RouteKey:
    digest = hashlib.sha256(page_id.encode("utf-8")).digest()
    return (float(score), int.from_bytes(digest[:6], "big") / float(1 << 48))


def num_quantiles(epsilon: float) -> int:
    """Quantile grid size for a rank error of about `epsilon` (Beam's default error is 1/n)."""
    return int(math.ceil(1.0 / epsilon)) + 1


@dataclass(frozen=True, slots=True)
class Threshold:
    """Pages whose route key is strictly above `key` go to the high-cost parser."""

    key: RouteKey | None          # None: route nothing (empty corpus or zero budget)
    route_all: bool = False       # budget of 100%


def threshold_from_quantiles(quantiles: Sequence[RouteKey], budget: float, epsilon: float) -> Threshold:
    """Pick the grid point at or above rank (1 - budget + epsilon).

    ApproximateQuantiles returns `len(quantiles)` evenly spaced quantiles, min and max included,
    each within `epsilon * N` ranks of the truth. Asking for the quantile at 1 - budget + epsilon
    and rounding *up* on the grid means at most budget * N pages lie above the threshold: the
    budget is a hard cap, and we give away at most ~epsilon of it.
    """
    if budget >= 1.0:
        return Threshold(key=None, route_all=True)
    if budget <= 0.0 or not quantiles:
        return Threshold(key=None)
    q = len(quantiles) - 1
    if q <= 0:
        return Threshold(key=None)
    index = min(q, int(math.ceil((1.0 - budget + epsilon) * q)))
    if index >= q:
        return Threshold(key=None)  # the budget is smaller than the quantile resolution
    return Threshold(key=tuple(quantiles[index]))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RouteDecision:
    route: str
    reason: str
    needs_high_cost: bool


def decide(
    key: RouteKey,
    threshold: Threshold,
    *,
    failed: bool,
    has_text_layer: bool,
    high_cost_available: bool,
    signal_reasons: Sequence[str] = (),
) -> RouteDecision:
    """Route one page. The reason names the hard rule or the top signals that put it there."""
    if failed:
        return RouteDecision(ROUTE_LOW_COST, REASON_FAILED, False)
    if not has_text_layer:
        # Hard rule, outside the budget: the low-cost parser has nothing to read on a scan (it
        # was OCR'd as a stop-gap). Such pages also carry the top score, so in a corpus where
        # they are fewer than the budget they take budget places first.
        return RouteDecision(ROUTE_HIGH_COST, REASON_NO_TEXT_LAYER, not high_cost_available)
    above = threshold.route_all or (threshold.key is not None and tuple(key) > tuple(threshold.key))
    if not above:
        # Also when the budget rounds to zero places: the page is simply not among the top.
        return RouteDecision(ROUTE_LOW_COST, REASON_BELOW, False)
    reason = REASON_TOP + (":" + "+".join(signal_reasons) if signal_reasons else "")
    # Without a high-cost parser the page keeps its low-cost text and is marked for a later run.
    return RouteDecision(ROUTE_HIGH_COST, reason, not high_cost_available)


def exact_threshold(keys: Sequence[RouteKey], budget: float) -> Threshold:
    """Exact version for a set small enough to sort (one document in `scicurate parse`)."""
    if budget >= 1.0:
        return Threshold(key=None, route_all=True)
    ordered = sorted(tuple(k) for k in keys)
    quota = int(math.floor(budget * len(ordered)))
    if quota <= 0:
        return Threshold(key=None)
    return Threshold(key=ordered[len(ordered) - quota - 1])  # type: ignore[arg-type]
