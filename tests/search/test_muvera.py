"""MUVERA FDE: spec §5 vector with explicit matrices, Chamfer equality, batch == single, search."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniret.errors import QueryError
from omniret.methods import muvera as mv
from omniret.methods.late_interaction import maxsim

G = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
Q = np.array([[0.6, 0.8, 0.0], [-0.6, 0.8, 0.0]])
P = np.array([[0.8, 0.6, 0.0], [0.6, -0.8, 0.0], [0.0, 0.6, 0.8]])


def test_spec_vector() -> None:
    cfg, fill = mv.FDEConfig(3, 2), mv.FDEConfig(3, 2, fill_empty_partitions=True)
    assert mv.simhash_partition((Q @ G > 0).astype(int)).tolist() == [2, 1]
    assert mv.simhash_partition((P @ G > 0).astype(int)).tolist() == [2, 3, 1]
    fq = mv.query_fde(Q, cfg, simhash=[G])
    np.testing.assert_allclose(fq, [0, 0, 0, -0.6, 0.8, 0, 0.6, 0.8, 0, 0, 0, 0], atol=1e-12)
    fd = mv.document_fde(P, cfg, simhash=[G])
    np.testing.assert_allclose(fd, [0, 0, 0, 0, 0.6, 0.8, 0.8, 0.6, 0, 0.6, -0.8, 0], atol=1e-12)
    fdf = mv.document_fde(P, fill, simhash=[G])
    np.testing.assert_allclose(fdf, [0.6, -0.8, 0, 0, 0.6, 0.8, 0.8, 0.6, 0, 0.6, -0.8, 0], atol=1e-12)
    assert fq @ fd == pytest.approx(1.44) and fq @ fdf == pytest.approx(1.44)
    assert maxsim(Q, [P])[0] == pytest.approx(1.44)


def test_gray_code_follows_cpp() -> None:
    assert mv.simhash_partition(np.array([[1, 1, 0], [1, 0, 1]])).tolist() == [4, 6]
    assert mv.partition_bits(4) == 0b110 and mv.partition_bits(6) == 0b101
    bits = np.array([[int(c) for c in f"{i:05b}"] for i in range(32)])
    codes = mv.simhash_partition(bits)
    assert sorted(codes.tolist()) == list(range(32))  # a bijection
    recovered = mv.partition_bits(codes)
    np.testing.assert_array_equal(recovered, bits @ (1 << np.arange(4, -1, -1)))


def test_query_with_fill_is_an_error() -> None:
    with pytest.raises(QueryError, match="fill_empty_partitions"):
        mv.query_fde(Q, mv.FDEConfig(3, 2, fill_empty_partitions=True))
    with pytest.raises(QueryError, match=r"\[0, 30\]"):
        mv.FDEConfig(3, 31)


@st.composite
def separated(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points each landing in a partition of its own: an orthonormal G and points along +-axes."""
    k = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_doc = draw(st.integers(1, 2**k))
    parts = rng.permutation(2**k)[:n_doc]
    signs = ((parts[:, None] >> np.arange(k - 1, -1, -1)) & 1) * 2 - 1  # distinct sign patterns
    doc = signs * rng.uniform(0.2, 1.0, size=signs.shape)
    q = rng.normal(size=(draw(st.integers(1, 4)), k))
    return np.eye(k), q, doc


@settings(max_examples=60, deadline=None)
@given(separated(), st.booleans())
def test_fde_inner_product_equals_chamfer_when_partitions_separate(data, fill: bool) -> None:
    g, q, doc = data
    k = g.shape[0]
    qcfg, dcfg = mv.FDEConfig(k, k), mv.FDEConfig(k, k, fill_empty_partitions=fill)
    if fill:
        # with fill on, a query point in an empty partition meets its Hamming-nearest document point,
        # which for these axis-aligned clouds is its MaxSim partner only when all partitions are full
        doc = (((np.arange(2**k)[:, None] >> np.arange(k - 1, -1, -1)) & 1) * 2 - 1) * 0.5
    fq = mv.query_fde(q, qcfg, simhash=[g])
    fd = mv.document_fde(doc, dcfg, simhash=[g])
    same_part = mv.simhash_partition((q > 0).astype(int))[:, None] == mv.simhash_partition((doc > 0).astype(int))[None, :]
    expected = float(((q @ doc.T) * same_part).sum())
    assert fq @ fd == pytest.approx(expected, abs=1e-9)
    if fill:
        assert fq @ fd == pytest.approx(maxsim(q, [doc])[0], abs=1e-9)


def test_batch_equals_single_with_projections() -> None:
    rng = np.random.default_rng(3)
    docs = [rng.normal(size=(int(rng.integers(1, 9)), 16)) for _ in range(12)]
    cfg = mv.FDEConfig(16, 3, num_repetitions=4, seed=7, projection_dimension=8, fill_empty_partitions=True, final_dimension=64)
    batch = mv.document_fde_batch(docs, cfg)
    assert batch.shape == (12, 64)
    single = np.stack([mv.document_fde(d, cfg) for d in docs])
    np.testing.assert_allclose(batch, single, atol=1e-12)
    assert mv.FDEConfig(16, 3, num_repetitions=4, projection_dimension=8).fde_dim == 4 * 8 * 8
    assert mv.query_fde(docs[0], mv.FDEConfig(16, 3, num_repetitions=4, projection_dimension=8)).shape == (256,)


def test_fill_uses_first_hamming_minimum_per_document() -> None:
    cfg = mv.FDEConfig(3, 2, fill_empty_partitions=True)
    docs = [P, P[[1, 0]], P[[2]]]
    batch = mv.document_fde_batch(docs, cfg, simhash=[G])
    single = np.stack([mv.document_fde(d, cfg, simhash=[G]) for d in docs])
    np.testing.assert_allclose(batch, single)
    np.testing.assert_allclose(batch[0][:3], P[1])  # Hamming ties [2, 1, 1]: the first minimum wins
    # doc P[[1, 0]]: bits 10 and 11; partition 0 (00) takes P[1], partition 1 (01) takes P[0]
    np.testing.assert_allclose(batch[1][:3], P[1])
    np.testing.assert_allclose(batch[1][3:6], P[0])
    np.testing.assert_allclose(batch[2], np.tile(P[2], 4))  # one point fills every partition


def test_muvera_search_reranks_exactly() -> None:
    rng = np.random.default_rng(5)
    docs = [rng.normal(size=(int(rng.integers(3, 12)), 16)) for _ in range(200)]
    docs = [d / np.linalg.norm(d, axis=1, keepdims=True) for d in docs]
    q = docs[17][:4] + 0.05 * rng.normal(size=(4, 16))
    cfg = mv.FDEConfig(16, 3, num_repetitions=10, fill_empty_partitions=True)
    fdes = mv.document_fde_batch(docs, cfg)
    ids, scores = mv.muvera_search(q, fdes, docs, cfg, k=5, candidates=200)
    exact = maxsim(q, docs)
    np.testing.assert_array_equal(ids, np.lexsort((np.arange(200), -exact))[:5])
    np.testing.assert_allclose(scores, np.sort(exact)[::-1][:5])
    ids, _ = mv.muvera_search(q, fdes, docs, cfg, k=1, candidates=20)
    assert ids[0] == 17


def test_inputs_not_mutated() -> None:
    q, p, g = Q.copy(), P.copy(), G.copy()
    cfg = mv.FDEConfig(3, 2, fill_empty_partitions=True, projection_dimension=2, final_dimension=5)
    fdes = mv.document_fde_batch([p, p[:1]], cfg)
    mv.document_fde(p, cfg, simhash=[g])
    mv.muvera_search(q, fdes, [p, p[:1]], cfg, k=1, candidates=2)
    np.testing.assert_array_equal(q, Q)
    np.testing.assert_array_equal(p, P)
    np.testing.assert_array_equal(g, G)


def _naive_document_fde(doc: np.ndarray, cfg: mv.FDEConfig) -> np.ndarray:
    """Spec §5 with plain loops: per repetition, partition points, average the projections, fill empties."""
    blocks = []
    for rep in range(cfg.num_repetitions):
        g, s = mv._matrices(cfg, rep, None, None)
        bits = (doc @ g > 0).astype(int)
        part = mv.simhash_partition(bits)
        proj = doc if s is None else doc @ s
        for p in range(cfg.num_partitions):
            members = [i for i in range(len(doc)) if part[i] == p]
            if members:
                blocks.append(sum(proj[i] for i in members) / len(members))
                continue
            target = [(mv.partition_bits(p) >> (cfg.num_simhash_projections - 1 - j)) & 1
                      for j in range(cfg.num_simhash_projections)]
            dists = [int(np.sum(bits[i] != target)) for i in range(len(doc))]
            blocks.append(proj[int(np.argmin(dists))])  # argmin: the first minimum
    return np.concatenate(blocks)


@pytest.mark.parametrize(("k", "proj"), [(3, None), (4, 8)])
def test_batch_fast_path_equals_naive_loops_on_clustered_docs(k: int, proj: int | None) -> None:
    """Clustered documents leave many partitions empty, so the fill path runs for most documents."""
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(3, 16))
    docs = [centres[rng.integers(0, 3, n)] + 0.3 * rng.normal(size=(n, 16)) for n in (1, 2, 5, 40, 200, 7)]
    cfg = mv.FDEConfig(16, k, num_repetitions=3, seed=4, projection_dimension=proj, fill_empty_partitions=True)
    want = np.stack([_naive_document_fde(d, cfg) for d in docs])
    np.testing.assert_allclose(mv.document_fde_batch(docs, cfg), want, atol=1e-12)


def test_nearest_point_by_cell_equals_by_point() -> None:
    rng = np.random.default_rng(2)
    for k, sizes in ((2, [9, 1, 30]), (3, [50, 8, 100, 1]), (5, [400, 33, 1000])):
        nb, doc_of = 1 << k, np.repeat(np.arange(len(sizes)), sizes)
        bits = rng.random((len(doc_of), k)) < rng.random((len(doc_of), 1))  # skewed: many empty partitions
        cell = doc_of * nb + mv.simhash_partition(bits)
        fast = mv._nearest_by_cell(mv._first_points(cell, len(sizes) * nb), len(doc_of), len(sizes), nb)
        ref = mv._nearest_by_point(bits, np.searchsorted(doc_of, np.arange(len(sizes))), nb)
        np.testing.assert_array_equal(fast, ref)


def test_batch_is_chunked_without_changing_results(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    docs = [rng.normal(size=(int(rng.integers(1, 30)), 8)) for _ in range(25)]
    cfg = mv.FDEConfig(8, 2, num_repetitions=2, fill_empty_partitions=True)
    whole = mv.document_fde_batch(docs, cfg)
    monkeypatch.setattr(mv, "_CHUNK_POINTS", 20)
    np.testing.assert_allclose(mv.document_fde_batch(docs, cfg), whole, atol=1e-12)
