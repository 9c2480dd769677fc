"""Ranking stages wired into Index.search, each checked against the pure full-matrix reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import make_image  # type: ignore[import-not-found]

import omniret
from omniret.errors import QueryError
from omniret.items import Modality
from omniret.methods import composed as comp
from omniret.methods import gap as gapm
from omniret.methods import hubness as hub
from omniret.query.pipeline import Term
from omniret.query.stats import DB_BETA1, DB_BETA2, QB_BETA

WORDS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "melon", "peach", "pear", "plum", "kiwi", "fig"]


@pytest.fixture
def text_index(tmp_path: Path) -> omniret.Index:
    docs = tmp_path / "docs"
    docs.mkdir()
    rng = np.random.default_rng(1)
    for i in range(40):
        words = rng.choice(WORDS, size=4, replace=True)
        (docs / f"d{i:02d}.txt").write_text(" ".join(words) + f" note {i}")
    idx = omniret.open(str(tmp_path / "idx"), model="fake")
    idx.add(str(docs), workers=0)
    return idx


def _gallery(idx: omniret.Index) -> tuple[list[str], np.ndarray]:
    stats = idx.stats()
    stats.refresh()
    ids = list(stats.ids)
    return ids, idx.store.vectors(idx.encoder.space, ids).astype(np.float64)


def _ranked(ids: list[str], scores: np.ndarray) -> list[str]:
    order = np.lexsort((np.array(ids), -scores))
    return [ids[i] for i in order]


@pytest.mark.parametrize("method", ["is", "qbnorm", "dbnorm", "dualdis"])
def test_hubness_stages_equal_full_matrix_reference(text_index: omniret.Index, method: str) -> None:
    idx = text_index
    bank_texts = [f"{a} {b}" for a in WORDS for b in WORDS[:4]]
    assert idx.set_query_bank(bank_texts) == len(bank_texts)
    ids, G = _gallery(idx)
    bank = idx.encoder.encode_text(bank_texts).astype(np.float64)
    B = bank @ G.T
    n = len(ids)
    rng = np.random.default_rng(0)
    gb = G[np.sort(rng.choice(n, size=n, replace=False))]  # gallery bank = every item when n < 2000
    for query in ("banana mango", "plum fig kiwi", "lemon"):
        q = idx.encoder.encode_text([query]).astype(np.float64)
        S = q @ G.T
        if method == "is":
            ref = hub.inverted_softmax_log(S, B, QB_BETA)[0]
        elif method == "qbnorm":
            ref = hub.qb_norm_log(S, B, QB_BETA)[0]
        elif method == "dbnorm":
            ref = hub.dual_is_log(S, B, gb @ G.T, DB_BETA1, DB_BETA2)[0]
        else:
            ref = hub.dual_dis_log(S, B, gb @ G.T, DB_BETA1, DB_BETA2)[0]
        hits = idx.search(query, k=10, hubness=method, candidates=n)
        assert [h.id for h in hits] == _ranked(ids, ref)[:10]
        assert [h.score for h in hits] == pytest.approx(sorted(ref, reverse=True)[:10], abs=5e-3)  # float16 storage × beta 20


def test_hubness_without_bank_is_a_clear_error(text_index: omniret.Index) -> None:
    with pytest.raises(QueryError, match="query bank"):
        text_index.search("apple", hubness="qbnorm")
    with pytest.raises(QueryError, match="unknown hubness"):
        text_index.search("apple", hubness="bogus")


def test_stats_follow_additions_incrementally(text_index: omniret.Index, tmp_path: Path) -> None:
    idx = text_index
    idx.set_query_bank(["apple pie", "grape juice", "pear tart"])
    st = idx.stats()
    more = tmp_path / "more"
    more.mkdir()
    for i in range(5):
        (more / f"m{i}.txt").write_text(f"{WORDS[i]} {WORDS[-i - 1]} extra")
    idx.add(str(more), workers=0)
    st.refresh()  # incremental path (no deletion since the last refresh)
    inc = (list(st.ids), {b: v.copy() for b, v in st.qstats.log_z.items()}, st.qstats.top_ids.copy(), st.means())
    st.refresh(force=True)
    assert set(inc[0]) == set(st.ids)
    pos = {i: n for n, i in enumerate(inc[0])}
    perm = [pos[i] for i in st.ids]
    for b, v in st.qstats.log_z.items():
        np.testing.assert_allclose(inc[1][b][perm], v, rtol=1e-6)
    np.testing.assert_allclose(inc[3], st.means(), atol=1e-6)
    assert {inc[0][i] for i in inc[2].ravel()} == {st.ids[i] for i in st.qstats.top_ids.ravel()}


def test_stage_search_sees_another_writers_commit(text_index: omniret.Index, tmp_path: Path) -> None:
    """The statistics refresh after the ANN call, from the commit number that call read: items another
    store object (another process) committed are candidates *and* in the statistics on the next search."""
    idx = text_index
    st = idx.stats()
    idx.search("apple", k=5, gap="center")
    before = st.version
    assert idx.store.seen_version() == before  # cached: no SQL until the next freshness check
    other = omniret.open(str(tmp_path / "idx"), model="fake")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "new.txt").write_text("apple apple apple apple")
    other.add(str(extra), workers=0)
    other.close()
    hits = idx.search("apple apple apple apple", k=3, gap="center")
    assert st.version > before and st.version == idx.store.version()
    new_id = next(h.id for h in hits if h.uri.endswith("new.txt"))
    assert st.rows_of([new_id])[0] >= 0  # centred with its statistics, not left at its raw score


def test_gap_center_and_calibrate_match_reference(tmp_path: Path, corpus: Path) -> None:
    for i in range(8):
        make_image(corpus / f"extra{i}.png", (i * 30, 100, 255 - i * 30), stripe=bool(i % 2))
    idx = omniret.open(str(tmp_path / "idx"), model="fake")
    idx.add(str(corpus), workers=0)
    ids, G = _gallery(idx)
    st = idx.stats()
    mods = st.mod
    q = idx.encoder.encode_text(["a cat likes the sun"]).astype(np.float64)
    raw = idx.search("a cat likes the sun", k=20)
    assert raw[0].modality is Modality.TEXT
    # calibrate: T-norm per modality
    means, covs = st.means(), st.covs()
    ref = gapm.tnorm_scores(q, (q @ G.T), mods[None, :], means, covs)[0]
    cal = idx.search("a cat likes the sun", k=len(ids), gap="calibrate")
    assert [h.id for h in cal] == _ranked(ids, ref)[: len(cal)]
    assert {h.modality for h in cal[:6]} == {Modality.TEXT, Modality.IMAGE}
    for k in (1, 3, 5):  # k candidates a modality suffice: T-norm keeps each modality's order
        assert [h.id for h in idx.search("a cat likes the sun", k=k, gap="calibrate")] == _ranked(ids, ref)[:k]
    # center: per-modality centring of query (text mean) and items (own mean), re-normalised
    qc = gapm.center(q, means[0])
    gc = np.stack([gapm.center(G[i : i + 1], means[mods[i]])[0] for i in range(len(ids))])
    ref_c = (gc @ qc.T)[:, 0]
    cen = idx.search("a cat likes the sun", k=10, gap="center", candidates=len(ids))
    assert [h.id for h in cen] == _ranked(ids, ref_c)[:10]
    with pytest.raises(QueryError, match="exclusive"):
        idx.search("x", gap="center", hubness="is")


def test_composed_queries_match_pure_functions(tmp_path: Path, corpus: Path) -> None:
    idx = omniret.open(str(tmp_path / "idx"), model="fake")
    idx.add(str(corpus), workers=0)
    ref_img = corpus / "blue.png"
    v = idx.embed_query(image=str(ref_img)).astype(np.float64)
    t = idx.embed_query(text="but red").astype(np.float64)
    ids, G = _gallery(idx)
    for method, qref in (("sum", comp.sum_compose(v, t)), ("weimo", comp.weighted_compose(v, t, 0.8)),
                         ("pdv", comp.normalize(0.25 * (v + 1.4 * t) + 0.75 * 1.4 * t))):
        hits = idx.search("but red", image=str(ref_img), compose=method, k=5, candidates=len(ids))
        ref = G @ qref
        assert [h.id for h in hits] == _ranked(ids, ref)[:5], method
    with pytest.raises(QueryError, match="compose"):
        idx.search("x", image=str(ref_img), compose="nope")


def test_query_algebra_negative_and_like(text_index: omniret.Index) -> None:
    idx = text_index
    e = idx.encoder
    hits = idx.search("apple banana", negative="banana", k=5)
    qref = comp.normalize(e.encode_text(["apple banana"])[0] - 0.5 * e.encode_text(["banana"])[0])
    ids, G = _gallery(idx)
    assert [h.id for h in hits] == _ranked(ids, G @ qref)[:5]
    seed = hits[0].id
    like = idx.search(like=[seed], k=5)
    assert seed not in [h.id for h in like] and len(like) == 5
    terms = [Term("text", "cherry", 2.0), Term("item", seed, 1.0)]
    algebra = idx.search(terms=terms, k=3)
    qa = comp.normalize(2 * e.encode_text(["cherry"])[0] + idx.store.vectors(e.space, [seed])[0])
    assert [h.id for h in algebra] == _ranked(ids, G @ qa)[:3]


def test_hybrid_fusion_brings_in_lexical_matches(text_index: omniret.Index) -> None:
    idx = text_index

    def rank_of_note17(hits: list[omniret.Hit]) -> int:
        return next(i for i, h in enumerate(hits) if (h.text or "").endswith("note 17"))

    dense = idx.search("note 17", k=40, modality="text")
    rrf = idx.search("note 17", k=40, hybrid="rrf", modality="text")
    assert rank_of_note17(rrf) <= rank_of_note17(dense)
    lexical = dict(idx.store.lexical("note 17", 400))
    dense_run = {h.id: h.score for h in idx.search("note 17", k=400, modality="text")}
    from omniret.methods.fusion import rrf as rrf_ref

    ref_ids, _ = rrf_ref([dense_run, lexical])
    assert [h.id for h in rrf[:10]] == [i for i in ref_ids if i in {h.id for h in rrf}][:10]
    mm = idx.search("note 17", k=5, hybrid="minmax", modality="text")
    assert (mm[0].text or "").endswith("note 17")
