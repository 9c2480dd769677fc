"""Fusion: spec §10 vectors, determinism, order invariance, cross-check with ranx."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniret.errors import QueryError
from omniret.methods import fusion as f

RUN1 = {"a": 0.9, "b": 0.5, "c": 0.1}
RUN2 = {"c": 12.0, "a": 10.0, "d": 4.0}


def as_dict(result: tuple[list, np.ndarray]) -> dict:
    return dict(zip(result[0], result[1].tolist(), strict=True))


def test_spec_rrf() -> None:
    ids, scores = f.rrf([RUN1, RUN2])
    assert ids == ["a", "c", "b", "d"]
    np.testing.assert_allclose(scores, [1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62, 1 / 63], atol=1e-12)


def test_spec_weighted_sum() -> None:
    mm = as_dict(f.weighted_sum([RUN1, RUN2], [0.5, 0.5], norm="minmax"))
    assert mm == pytest.approx({"a": 0.875, "c": 0.5, "b": 0.25, "d": 0.0})
    z = as_dict(f.weighted_sum([RUN1, RUN2], [0.5, 0.5], norm="zscore"))
    assert z == pytest.approx({"a": 0.808489, "b": 0.0, "c": -0.122082, "d": -0.686406}, abs=1e-6)
    np.testing.assert_allclose(f.zscore(np.array([12.0, 10.0, 4.0])), [0.980581, 0.392232, -1.372813], atol=1e-6)


def test_pair_input_and_tie_break_by_id() -> None:
    ids, scores = f.weighted_sum([(["z", "y", "x"], [1.0, 1.0, 0.0])], norm="none")
    assert ids == ["y", "z", "x"]
    ids, _ = f.rrf([(["z", "y"], [1.0, 1.0]), (["y", "z"], [0.5, 0.5])])
    assert ids == ["y", "z"]  # y ranks first in both runs after the id tie-break


def test_single_doc_minmax_is_zero() -> None:
    np.testing.assert_array_equal(f.minmax(np.array([3.0])), [0.0])


def test_bad_runs() -> None:
    with pytest.raises(QueryError, match="twice"):
        f.rrf([(["a", "a"], [1.0, 2.0])])
    with pytest.raises(QueryError, match="weights"):
        f.weighted_sum([RUN1, RUN2], [1.0])
    with pytest.raises(QueryError, match="normalisation"):
        f.weighted_sum([RUN1], norm="max")  # type: ignore[arg-type]


run_st = st.dictionaries(st.sampled_from(list("abcdefghij")), st.floats(-5, 5, allow_nan=False), min_size=1, max_size=8)


@settings(max_examples=80, deadline=None)
@given(st.lists(run_st, min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_rrf_and_wsum_invariant_to_run_order(runs: list[dict], rnd) -> None:
    shuffled = runs[:]
    rnd.shuffle(shuffled)
    a, b = f.rrf(runs), f.rrf(shuffled)
    assert a[0] == b[0]
    np.testing.assert_allclose(a[1], b[1], atol=1e-12)
    a, b = f.weighted_sum(runs, norm="zscore"), f.weighted_sum(shuffled, norm="zscore")
    assert as_dict(a) == pytest.approx(as_dict(b), abs=1e-9)


def test_inputs_not_mutated() -> None:
    r1, scores = dict(RUN1), np.array([3.0, 1.0, 2.0])
    f.weighted_sum([r1, (["x", "y", "z"], scores)])
    f.rrf([r1, (["x", "y", "z"], scores)])
    f.zscore(scores)
    f.minmax(scores)
    assert r1 == RUN1
    np.testing.assert_array_equal(scores, [3.0, 1.0, 2.0])


@pytest.mark.parametrize("seed", range(5))
def test_cross_check_with_ranx(seed: int) -> None:
    ranx = pytest.importorskip("ranx")
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(40)]
    runs = []
    for _ in range(3):
        chosen = rng.choice(docs, size=int(rng.integers(5, 30)), replace=False)
        runs.append({d: float(s) for d, s in zip(chosen, rng.normal(size=len(chosen)), strict=True)})  # no ties
    rx = [ranx.Run({"q": r}) for r in runs]
    ours = as_dict(f.rrf(runs, k=60))
    theirs = ranx.fuse(rx, method="rrf", params={"k": 60}).to_dict()["q"]
    assert ours == pytest.approx(theirs, rel=1e-9)
    w = [0.2, 0.5, 0.3]
    for norm, rnorm in (("minmax", "min-max"), ("zscore", "zmuv")):
        ours = as_dict(f.weighted_sum(runs, w, norm=norm))
        theirs = ranx.fuse(rx, norm=rnorm, method="wsum", params={"weights": w}).to_dict()["q"]
        assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-9)


def test_int_ids_sort_numerically_and_mixed_ids_fail() -> None:
    ids, _ = f.weighted_sum([([10, 9, 100], [1.0, 1.0, 1.0])], norm="none")
    assert ids == [9, 10, 100]
    with pytest.raises(QueryError, match="comparable"):
        f.rrf([(["a", 1], [1.0, 1.0])])
