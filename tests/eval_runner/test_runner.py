"""The evaluation runner end to end with the fake encoder: reports, cache reuse, numbers from the runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from omniret.errors import OmniretError
from omniret.eval import prepare, runner
from omniret.eval.metrics import evaluate_run
from omniret.eval.report import recall_curve, write_report
from omniret.methods.hubness import skewness_k_occurrence


def _config(tmp_path: Path, **kw: object) -> runner.EvalConfig:
    base = {"model": "fake", "methods": ("raw", "qbnorm", "dbnorm", "gap-center"), "depth": 50,
            "cache_dir": str(tmp_path / "cache"), "bank_fraction": 0.5, "skew_k": 3}
    return runner.EvalConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_run_eval_writes_reports_whose_numbers_match_the_runs(tiny_set: Path, tmp_path: Path) -> None:
    ds = prepare.load_prepared(tiny_set)
    result = runner.run_eval(ds, _config(tmp_path))
    paths = write_report(result, tmp_path / "rep")
    for p in paths.values():
        assert p.is_file() and p.stat().st_size > 0
    for key in ("recall", "k_occurrence"):
        with Image.open(paths[key]) as im:
            assert im.format == "PNG" and im.size[0] > 100
    rep = json.loads(paths["json"].read_text())
    assert rep["model"] == "fake" and rep["seed"] == 0 and rep["wall_seconds"] > 0 and "versions" in rep
    assert set(rep["methods"]) == {"raw", "qbnorm", "dbnorm", "gap-center"}
    assert set(result.bank_queries).isdisjoint(result.test_queries)
    for m in result.methods:
        assert set(m.run) == set(result.test_queries)
        assert all(len(docs) == 18 for docs in m.run.values())  # every image ranked, none twice
        judged = {q: result.qrels[q] for q in m.run}
        again = evaluate_run(m.run, judged, list(runner.METRICS))
        for name, value in again.items():
            assert rep["methods"][m.method]["metrics"][name] == pytest.approx(value, abs=1e-12)
        assert recall_curve(m.run, judged, (1, 5, 10)) == pytest.approx(
            [again["recall@1"], again["recall@5"], again["recall@10"]])
    assert "| raw |" in paths["md"].read_text()


def test_skewness_matches_the_matrix_definition(tiny_set: Path, tmp_path: Path) -> None:
    ds = prepare.load_prepared(tiny_set)
    result = runner.run_eval(ds, _config(tmp_path, methods=("raw",), bank_fraction=0.0))
    m = result.methods[0]
    docs = sorted({d for r in m.run.values() for d in r})
    S = np.full((len(m.run), len(docs)), -1e9)
    for i, r in enumerate(m.run.values()):
        for d, s in r.items():
            S[i, docs.index(d)] = s
    assert m.metrics["skewness@3"] == pytest.approx(skewness_k_occurrence(S, k=3), abs=1e-9)
    assert sum(m.k_occurrence) == 3 * len(m.run)


def test_second_run_reuses_the_cached_index(tiny_set: Path, tmp_path: Path) -> None:
    ds = prepare.load_prepared(tiny_set)
    first = runner.run_eval(ds, _config(tmp_path, methods=("raw",)))
    second = runner.run_eval(ds, _config(tmp_path, methods=("raw",)))
    assert not first.info["index_reused"] and second.info["index_reused"]
    assert first.methods[0].run == second.methods[0].run


def test_captions_are_stored_for_weimo_and_pdv(tiny_set: Path, tmp_path: Path) -> None:
    ds = prepare.load_prepared(tiny_set / "composed" / "queries.jsonl")
    assert ds.task == "composed"
    ds = type(ds)(ds.name, tuple(type(d)(d.id, d.content, d.modality, {"title": d.id.replace("_", " ")})
                                 for d in ds.corpus), ds.queries, ds.qrels, ds.task)
    index, uri_to_doc, _ = runner.build_index(ds, "fake", tmp_path / "cache")
    try:
        caps = {it.metadata.get("caption") for it in index.store.iter_items()}
        assert "blue cat" in caps and len(uri_to_doc) == 18
    finally:
        index.close()
    result = runner.run_eval(ds, _config(tmp_path, methods=runner.COMPOSED_METHODS, bank_fraction=0.0))
    for m in result.methods:
        for q in result.test_queries:
            ref = next(x for x in ds.queries if x.id == q).extra["reference"]
            assert Path(ref).stem not in m.run[q]  # the reference never ranks for itself
            assert len(m.run[q]) == 17


def test_split_is_seeded_and_disjoint() -> None:
    ids = [f"q{i}" for i in range(101)]
    bank, test = runner.split_queries(ids, 0.5, 3)
    assert (bank, test) == runner.split_queries(ids, 0.5, 3)
    assert set(bank).isdisjoint(test) and len(bank) + len(test) == 101 and len(bank) == 50
    assert runner.split_queries(ids, 0.5, 4) != (bank, test)


def test_unknown_method_and_bad_fraction_are_reported() -> None:
    with pytest.raises(OmniretError, match="unknown method"):
        runner.parse_methods("raw,bogus")
    assert runner.parse_methods("raw, qbnorm+weimo") == ("raw", "qbnorm+weimo")
    with pytest.raises(OmniretError, match="bank_fraction"):
        runner.EvalConfig(model="fake", bank_fraction=1.0).validate()


def test_cli_run_on_an_existing_index(tiny_set: Path, tmp_path: Path) -> None:
    from omniret.cli.eval import eval_group
    from omniret.index import Index

    idx = tmp_path / "idx"
    with Index.open(str(idx), model="fake") as index:
        index.add([str(tiny_set / "img")], workers=0)
    queries = tmp_path / "user" / "my.jsonl"
    queries.parent.mkdir()
    rows = [{"id": "a", "image": str(tiny_set / "img" / "red_cat.png"), "relevant": [str(tiny_set / "img" / "red_cat.png")]},
            {"id": "b", "image": str(tiny_set / "img" / "blue_car.png"), "relevant": [str(tiny_set / "img" / "blue_car.png")]}]
    queries.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "rep"
    res = CliRunner().invoke(eval_group, ["run", str(queries), "--index", str(idx), "--methods", "raw,gap-center",
                                          "--bank-fraction", "0", "--out", str(out), "--depth", "50"])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["model"] == "fake" and rep["n_corpus"] == 18
    assert rep["methods"]["raw"]["metrics"]["recall@1"] == 1.0  # an image finds itself first


def test_cli_reports_an_unreadable_dataset(tmp_path: Path) -> None:
    from omniret.cli.eval import eval_group

    (tmp_path / "x.txt").write_text("hi")
    res = CliRunner().invoke(eval_group, ["run", str(tmp_path / "x.txt")])
    assert res.exit_code != 0 and "cannot tell the format" in res.output


def test_external_bank_evaluates_every_query(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With bank_texts (e.g. training captions) no evaluated query is spent on the bank."""
    from omniret.eval import runner
    from omniret.eval.datasets.base import EvalDataset, EvalDoc, EvalQuery
    from omniret.items import Modality

    docs = tuple(EvalDoc(f"d{i}", f"note {w} {i}", Modality.TEXT) for i, w in enumerate(["cat", "dog", "fish", "bird"]))
    queries = tuple(EvalQuery(f"q{i}", w, Modality.TEXT) for i, w in enumerate(["cat", "dog", "fish", "bird"]))
    ds = EvalDataset("tiny", docs, queries, {f"q{i}": {f"d{i}": 1.0} for i in range(4)})
    cfg = runner.EvalConfig(model="fake", methods=("raw", "qbnorm"), cache_dir=str(tmp_path),
                            bank_texts=("a cat", "a dog", "a fish", "a bird", "a horse"))
    result = runner.run_eval(ds, cfg)
    assert len(result.test_queries) == 4 and result.bank_queries == []
    assert result.info["bank_size"] == 5


def test_rerank_rows_sit_beside_each_method(tiny_set: Path, tmp_path: Path) -> None:
    """--rerank evaluates every method twice on the same queries; re-ranking with the index's own model
    re-embeds the images from their files and so reproduces the first stage's ranking exactly."""
    ds = prepare.load_prepared(tiny_set)
    result = runner.run_eval(ds, _config(tmp_path, methods=("raw",), rerank="model:fake"))
    by = {m.method: m for m in result.methods}
    assert list(by) == ["raw", "raw>rerank"]
    assert set(by["raw>rerank"].run) == set(by["raw"].run) == set(result.test_queries)
    for q, docs in by["raw"].run.items():
        assert list(by["raw>rerank"].run[q]) == list(docs)  # same order (the fake model is deterministic)
    assert by["raw>rerank"].metrics == by["raw"].metrics
    with pytest.raises(OmniretError, match="unknown rerank"):
        runner.EvalConfig(model="fake", rerank="bm25").validate()
