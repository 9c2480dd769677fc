"""The pure re-ranking math: slot-preserving re-rank and MMR, against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from omniret.errors import QueryError
from omniret.methods.diversity import mmr
from omniret.methods.rerank import slot_rerank

NAN = float("nan")


def test_slot_rerank_by_hand() -> None:
    # eligible slots 1, 3, 4 hold scores 0.2, 0.9, 0.5 -> filled by 3 (0.9), 4 (0.5), 1 (0.2)
    assert slot_rerank(np.array([NAN, 0.2, NAN, 0.9, 0.5])).tolist() == [0, 3, 2, 4, 1]
    assert slot_rerank(np.array([0.1, 0.3, 0.2])).tolist() == [1, 2, 0]  # all eligible: a plain sort
    assert slot_rerank(np.array([0.5, 0.5, NAN])).tolist() == [0, 1, 2]  # ties keep first-stage order
    assert slot_rerank(np.array([NAN, -np.inf, np.inf])).tolist() == [0, 2, 1]
    assert slot_rerank(np.array([NAN, 0.4])).tolist() == [0, 1] and slot_rerank(np.array([])).tolist() == []
    with pytest.raises(QueryError, match="1-d"):
        slot_rerank(np.zeros((2, 2)))


def test_mmr_by_hand() -> None:
    rel = np.array([0.9, 0.85, 0.5])
    sim = np.array([[1.0, 0.95, 0.1], [0.95, 1.0, 0.2], [0.1, 0.2, 1.0]])
    # lambda 0.5: first d0 (0.45 > 0.425 > 0.25); then d1: 0.425 - 0.475 = -0.05, d2: 0.25 - 0.05 = 0.2 -> d2
    assert mmr(rel, sim, 0.5) == [0, 2, 1]
    assert mmr(rel, sim, 1.0) == [0, 1, 2]  # pure relevance
    assert mmr(rel, sim, 0.5, k=2) == [0, 2] and mmr(rel, sim, 0.5, k=0) == []
    # lambda 0: after d0, the least similar to d0 (d2: 0.1) then d1
    assert mmr(rel, sim, 0.0) == [0, 2, 1]
    assert mmr(np.array([0.5, 0.5]), np.eye(2), 0.7) == [0, 1]  # ties: lower index first


def test_mmr_bad_input() -> None:
    with pytest.raises(QueryError, match="lambda"):
        mmr(np.zeros(2), np.eye(2), 1.5)
    with pytest.raises(QueryError, match=r"\(n, n\)"):
        mmr(np.zeros(3), np.eye(2))
