"""Second-stage re-ranking: how a stronger scorer's numbers re-order a first-stage list.

A re-ranker (a cross-encoder, MaxSim late interaction, a stronger dual encoder) can often score
only some of the candidates — a text cross-encoder has nothing to say about a photo, a page model
nothing about an audio window — and its scores are not on the first stage's scale. So it re-orders
*within the slots its candidates hold*:

    given the first-stage order d_1 … d_n, the eligible set E ⊆ {d_i} and new scores r(d) for d ∈ E,
    the positions P = {i : d_i ∈ E} keep holding eligible items, filled in order of decreasing r
    (ties by first-stage position); every other item keeps its position.

On a single-modality list where every candidate is eligible this is the plain re-rank of
INQUIRE-Rerank (Vendrow et al., NeurIPS 2024 D&B) and MM-Embed (Lin et al., ICLR 2025): sort the
top-n by the second-stage score. On a mixed list it keeps the first stage's interleaving of
modalities (which the calibrated first stage decided) and lets the re-ranker decide only among the
items it can judge.
"""

from __future__ import annotations

import numpy as np

from omniret.errors import QueryError

__all__ = ["slot_rerank"]


def slot_rerank(scores: np.ndarray) -> np.ndarray:
    """The new order (a permutation of ``range(n)``) of a first-stage list given second-stage ``scores``.

    ``scores[i]`` is the re-ranker's score of the i-th first-stage candidate, ``NaN`` where it has none
    (that candidate keeps its position). Eligible candidates are sorted by decreasing score, ties by
    first-stage position, into the positions eligible candidates held. ``+-inf`` scores are allowed.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise QueryError(f"re-rank scores must be one score per candidate (1-d), got shape {s.shape}")
    order = np.arange(len(s))
    slots = np.flatnonzero(~np.isnan(s))
    if len(slots) < 2:
        return order
    ranked = slots[np.lexsort((slots, -s[slots]))]  # primary: -score; secondary: first-stage position
    order[slots] = ranked
    return order
