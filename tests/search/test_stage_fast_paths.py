"""The pipeline's per-query stage fast paths equal the reference functions of omniret.methods."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniret.items import Item, Modality
from omniret.methods import gap as gapm
from omniret.query import pipeline
from omniret.query.stats import MOD_CODE, SpaceStats
from omniret.store.base import IdRow, WriteBatch
from omniret.store.embedded import EmbeddedStore

SPACE = "s16"


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _build(folder, parts):  # type: ignore[no-untyped-def]
    """A store from ``parts`` [(id prefix, count, modality)], the last one committed after the
    statistics' first refresh (folded in incrementally: the centring means stay frozen)."""
    rng = np.random.default_rng(7)
    store = EmbeddedStore(folder / "idx")
    offset = {Modality.TEXT: rng.standard_normal(16) * 1.5, Modality.IMAGE: rng.standard_normal(16) * 1.5}
    vecs: dict[str, np.ndarray] = {}

    def commit(prefix: str, n: int, mod: Modality) -> None:
        v = _unit(rng.standard_normal((n, 16)) + offset[mod])
        batch = WriteBatch()
        items = [Item(f"{prefix}{i}", f"/d/{prefix}{i}", mod) for i in range(n)]
        batch.add(items, {SPACE: v})
        store.commit(batch)
        vecs.update({it.id: row for it, row in zip(items, v, strict=True)})

    for part in parts[:-1]:
        commit(*part)
    stats = SpaceStats(store, SPACE, folder)
    stats.refresh()
    commit(*parts[-1])
    stats.refresh()
    ids = sorted(vecs)
    stored = store.vectors(SPACE, ids).astype(np.float64)  # what the statistics saw (float16 storage)
    return store, stats, dict(zip(ids, stored, strict=True))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[EmbeddedStore, SpaceStats, dict[str, np.ndarray]]:
    """A store of 60 text and 90 image items with a gap between the modalities, plus 30 added later."""
    return _build(tmp_path_factory.mktemp("fast"), [("t", 60, Modality.TEXT), ("i", 90, Modality.IMAGE),
                                                   ("late", 30, Modality.IMAGE)])


@pytest.fixture(scope="module")
def images_only(tmp_path_factory: pytest.TempPathFactory) -> tuple[EmbeddedStore, SpaceStats, dict[str, np.ndarray]]:
    """One modality: the stages' single-modality shortcuts."""
    return _build(tmp_path_factory.mktemp("one"), [("i", 90, Modality.IMAGE), ("late", 30, Modality.IMAGE)])


@pytest.fixture(scope="module", params=["mixed", "images_only"])
def stores(request):  # type: ignore[no-untyped-def]
    return request.getfixturevalue(request.param)


def test_only_modality(mixed, images_only) -> None:  # type: ignore[no-untyped-def]
    assert mixed[1].only_modality() is None
    assert images_only[1].only_modality() == MOD_CODE["image"]


def _candidates(stats: SpaceStats, vecs: dict[str, np.ndarray], q: np.ndarray, unknown: bool
                ) -> tuple[list[str], np.ndarray, np.ndarray]:
    ids = sorted(vecs)[::3]
    if unknown:
        ids = [*ids, "not-yet-seen"]
    s = np.array([float(vecs[i] @ q) if i in vecs else 0.42 for i in ids])
    return ids, s, stats.rows_of(ids)


def _case(stores, seed: int, unknown: bool):  # type: ignore[no-untyped-def]
    """A random unit query and its candidates in one of the ``stores`` fixtures."""
    _, stats, vecs = stores
    q = _unit(np.random.default_rng(seed).standard_normal(16))
    return (stats, vecs, q, *_candidates(stats, vecs, q, unknown))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([Modality.TEXT, Modality.IMAGE]), st.booleans())
def test_center_fast_path_equals_center_scores(stores, seed: int, qmod: Modality, unknown: bool) -> None:  # type: ignore[no-untyped-def]
    stats, vecs, q, ids, s, rows = _case(stores, seed, unknown)
    got = pipeline._center(stats, pipeline.Query(q, qmod), rows, s)
    known = rows >= 0
    mu = stats.center_means
    qc = gapm.center(q[None, :], mu[MOD_CODE[qmod.value]])[0]
    ref = [float(gapm.center(vecs[i][None, :], mu[stats.mod[r]])[0] @ qc) for i, r in zip(ids, rows, strict=True) if r >= 0]
    np.testing.assert_allclose(got[known], ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got[~known], s[~known])  # newer than the statistics: raw score kept


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([Modality.TEXT, Modality.IMAGE]), st.booleans())
def test_calibrate_fast_path_equals_tnorm_scores(stores, seed: int, qmod: Modality, unknown: bool) -> None:  # type: ignore[no-untyped-def]
    stats, vecs, q, ids, s, rows = _case(stores, seed, unknown)
    got = pipeline._calibrate(stats, pipeline.Query(q, qmod), rows, s)
    mods = np.where(rows >= 0, stats.mod[np.maximum(rows, 0)], MOD_CODE[qmod.value])
    ref = gapm.tnorm_scores(q[None, :], s[None, :], mods[None, :], stats.means(), stats.covs())[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_center_gnorm_is_the_centred_norm(mixed) -> None:  # type: ignore[no-untyped-def]
    _, stats, vecs = mixed
    for item_id in ("t3", "i10", "late5"):
        r = stats.row[item_id]
        mu = stats.center_means[stats.mod[r]]
        assert stats.center_gnorm[r] == pytest.approx(np.linalg.norm(vecs[item_id] - mu), rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=0, max_size=30), st.integers(0, 1000))
def test_rank_order_equals_lexsort_by_score_then_id(scores: list[int], seed: int) -> None:
    """Coarse integer scores force ties: they break by id, as the reference lexsort does."""
    rng = np.random.default_rng(seed)
    ids = [f"id{v}" for v in rng.permutation(len(scores))]
    s = np.asarray(scores, dtype=np.float64)
    ref = np.lexsort((np.array(ids, dtype=object).astype(str), -s)) if len(s) else np.zeros(0, np.int64)
    np.testing.assert_array_equal(pipeline.rank_order(ids, s), ref)
    lazy = IdRow(np.array(ids, dtype=object), rng.permutation(len(ids)))  # ids read from a column, lazily
    ref_lazy = np.lexsort((np.array(list(lazy), dtype=object).astype(str), -s)) if len(s) else ref
    np.testing.assert_array_equal(pipeline.rank_order(lazy, s), ref_lazy)



@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["is", "qbnorm", "dbnorm", "dualdis"]), st.booleans(), st.booleans())
def test_hubness_fast_path_equals_candidate_set_functions(mixed, seed: int, method: str, unknown: bool,  # type: ignore[no-untyped-def]
                                                          near_bank: bool) -> None:
    """Against hubness.apply_* on the (1, K') arrays of SpaceStats.hubness_arrays (the reference path)."""
    from omniret.methods import hubness as hub
    from omniret.query.stats import DB_BETA1, DB_BETA2, QB_BETA, Bank

    _, stats, vecs = mixed
    rng = np.random.default_rng(seed)
    if stats.qstats is None:
        bank = _unit(rng.standard_normal((40, 16)))
        stats.set_query_bank(Bank(bank.astype(np.float32), [], "test"))
        stats.refresh(force=True)
    bankv = stats.query_bank().vectors  # type: ignore[union-attr]
    # a query next to a bank query makes its top-1 likely active (QB-Norm's normalised branch)
    q = _unit(bankv[seed % len(bankv)] + 0.05 * rng.standard_normal(16)) if near_bank else _unit(rng.standard_normal(16))
    ids, s, rows = _candidates(stats, vecs, q, unknown)
    got = pipeline._hubness(stats, rows, s, method)
    a = stats.hubness_arrays(rows[None, :], method)
    c = s[None, :]
    ref = {"is": lambda: hub.apply_inverted_softmax(c, a["log_zq"], QB_BETA),
           "qbnorm": lambda: hub.apply_qbnorm(c, a["log_zq"], a["active_q"], QB_BETA, rows[None, :]),
           "dbnorm": lambda: hub.apply_dual_is(c, a["log_zq"], a["log_zg"], DB_BETA1, DB_BETA2),
           "dualdis": lambda: hub.apply_dual_dis(c, a["log_zq"], a["active_q"], a["log_zg"], a["active_g"],
                                                 DB_BETA1, DB_BETA2, rows[None, :])}[method]()[0]
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_vector_keys_find_the_same_rows_as_ids(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Stats rows looked up by the store's vector keys equal the id lookups: after a full build, after
    an incremental addition, for a candidate committed after the refresh (-1), and after a removal."""
    rng = np.random.default_rng(3)
    store = EmbeddedStore(tmp_path / "idx")
    stats = SpaceStats(store, SPACE, tmp_path)

    def commit(prefix: str, n: int) -> None:
        batch = WriteBatch()
        batch.add([Item(f"{prefix}{i}", f"/d/{prefix}{i}", Modality.IMAGE) for i in range(n)],
                  {SPACE: _unit(rng.standard_normal((n, 16)))})
        store.commit(batch)

    def check(expect_unseen: int = 0) -> None:
        q = _unit(rng.standard_normal((1, 16)))
        s, ids, keys = store.search_keyed(SPACE, q, 40)
        live = [i for i in ids[0].tolist() if i is not None]
        got = stats.rows_for(live, keys[0][: len(live)])
        np.testing.assert_array_equal(got, stats.rows_of(live))
        table, stats._key_table = stats._key_table, lambda: None  # the binary-search path (sparse keys)
        np.testing.assert_array_equal(stats.rows_for(live, keys[0][: len(live)]), got)
        stats._key_table = table
        assert int((got < 0).sum()) == expect_unseen
        assert stats.rows_for(["pad", "future"], np.array([-1, 10**6])).tolist() == [-1, -1]  # padding, unseen key

    commit("a", 30)
    stats.refresh()
    check()
    commit("b", 10)
    stats.refresh()  # incremental: keys appended
    assert stats.keys is not None and len(stats.keys) == 40
    check()
    commit("c", 5)  # not refreshed: five candidates the statistics have not seen
    check(expect_unseen=5)
    store.delete(["a1", "b2"])
    stats.refresh()  # removal: full rebuild
    assert stats.keys is not None and len(stats.keys) == 43
    check()
    store.close()


def test_depth_of_each_stage() -> None:
    """K' = max(100, 10k) for stages that re-score candidates in their own order; k for none and for
    calibrate alone (monotone within a modality); deeper again when calibrate is combined."""
    opts = pipeline.StageOptions
    assert opts(k=10).depth() == 10 and opts(k=10, gap="calibrate").depth() == 10
    assert opts(k=10, gap="center").depth() == 100 and opts(k=20, hubness="is").depth() == 200
    assert opts(k=10, gap="calibrate", hybrid="rrf").depth() == 100
    assert opts(k=10, gap="calibrate", compose="weimo").depth() == 100
    assert opts(k=10, gap="calibrate", candidates=50).depth() == 50
