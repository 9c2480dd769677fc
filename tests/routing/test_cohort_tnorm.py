"""cohort_tnorm: T-norm of a multi-vector space's scores against an explicit cohort."""

from __future__ import annotations

import math

import numpy as np
import pytest

from omniret.errors import QueryError
from omniret.methods.gap import cohort_tnorm


def test_tnorm_by_cohort_mean_and_population_std() -> None:
    # cohort [1, 2, 3]: mean 2, std sqrt(((1-2)^2 + 0 + (3-2)^2) / 3) = sqrt(2/3)
    out = cohort_tnorm(np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    sd = math.sqrt(2 / 3)
    np.testing.assert_allclose(out, [(3 - 2) / sd, (1 - 2) / sd, 0.0])


def test_degenerate_cohorts_only_centre() -> None:
    np.testing.assert_allclose(cohort_tnorm(np.array([5.0, 4.0]), np.array([4.0, 4.0])), [1.0, 0.0])
    np.testing.assert_allclose(cohort_tnorm(np.array([5.0]), np.array([3.0])), [2.0])
    np.testing.assert_allclose(cohort_tnorm(np.array([5.0, 1.0]), np.zeros(0)), [5.0, 1.0])


def test_order_is_kept_and_bad_cohorts_are_refused() -> None:
    s = np.array([0.3, 2.5, 1.0])
    assert list(np.argsort(cohort_tnorm(s, np.array([0.0, 1.0, 5.0])))) == list(np.argsort(s))
    with pytest.raises(QueryError, match="cohort"):
        cohort_tnorm(s, np.array([[1.0, 2.0]]))
    with pytest.raises(QueryError, match="finite"):
        cohort_tnorm(s, np.array([1.0, np.nan]))
