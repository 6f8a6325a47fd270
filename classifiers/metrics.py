"""Evaluation metrics for scores, kept dependency-free (no scikit-learn in the core install)."""

from __future__ import annotations

from typing import Sequence


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """ROC AUC as the Mann-Whitney statistic: P(score of a positive > score of a negative).

    Ties count 1/2. Sorting makes it O((P + N) log(P + N)). Raises ValueError when either side
    is empty, since the AUC is then undefined.
    """
    if not positives or not negatives:
        raise ValueError("roc_auc needs at least one positive and one negative score")
    labelled = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives])
    wins = 0.0        # sum over positives of (#negatives below) + (#negatives tied) / 2
    negatives_below = 0
    i = 0
    while i < len(labelled):
        j = i
        while j < len(labelled) and labelled[j][0] == labelled[i][0]:
            j += 1
        group = labelled[i:j]
        pos_here = sum(label for _, label in group)
        neg_here = len(group) - pos_here
        wins += pos_here * (negatives_below + neg_here / 2.0)
        negatives_below += neg_here
        i = j
    return wins / (len(positives) * len(negatives))
