"""Ray ingest on a local 2-CPU Ray: every file indexed exactly once, also when a worker dies mid-job."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import omniret
from omniret.ingest.work import IngestOptions

ray = pytest.importorskip("ray")
from omniret.ingest.ray import RayOptions, ray_add  # noqa: E402


def make_folder(folder: Path, n_images: int = 14, n_texts: int = 3) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n_images):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    for i in range(n_texts):
        (folder / f"note{i}.txt").write_text(f"note number {i} about violins and rivers " * (i + 1))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")


def check_exactly_once(idx: omniret.Index, folder: Path) -> None:
    items = list(idx.store.iter_items())
    ids = Counter(it.id for it in items)
    assert all(c == 1 for c in ids.values())
    images = {it.uri for it in items if it.modality.value == "image"}
    assert images == {str(p) for p in folder.glob("img*.png")}
    assert {it.uri for it in items if it.modality.value == "text"} == {str(p) for p in folder.glob("*.txt")}
    vec_ids = [i for ids_, _, _ in idx.store.iter_vectors(idx.encoder.space) for i in ids_]
    assert len(vec_ids) == len(set(vec_ids)) and set(vec_ids) <= set(ids)
    assert images <= {it.uri for it in idx.store.get(vec_ids) if it is not None}
    assert set(idx.store.source_states()) == {str(p) for p in folder.iterdir()}


def test_ray_add_matches_single_process(local_ray: None, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    make_folder(folder)
    with omniret.open(str(tmp_path / "ray"), model="fake") as idx:
        report = ray_add([str(folder)], idx, IngestOptions(), ray_options=RayOptions(files_per_batch=5, decode_batch=3))
        assert report.new == 18 and [u for u, _ in report.failed] == [str(folder / "broken.jpg")]
        check_exactly_once(idx, folder)
        again = ray_add([str(folder)], idx)  # resumable: nothing left to do
        assert again.unchanged == 18 and again.items == 0
        ray_vecs = {ids[0]: m[0] for ids, _, m in idx.store.iter_vectors(idx.encoder.space, chunk=1)}
    with omniret.open(str(tmp_path / "single"), model="fake") as single:
        single.add([str(folder)], workers=0)
        ref = {ids[0]: m[0] for ids, _, m in single.store.iter_vectors(single.encoder.space, chunk=1)}
    assert set(ref) == set(ray_vecs)
    for k, v in ref.items():
        np.testing.assert_allclose(ray_vecs[k], v, atol=1e-3)


@pytest.mark.slow
def test_killed_worker_still_exactly_once(local_ray: None, tmp_path: Path) -> None:
    from crash_encoder import CrashOnceEncoder

    folder = tmp_path / "src"
    make_folder(folder)
    marker = tmp_path / "crashed"
    with omniret.open(str(tmp_path / "ray"), model="fake") as idx:
        report = ray_add([str(folder)], idx, encoder_factory=lambda: CrashOnceEncoder(str(marker)),
                         ray_options=RayOptions(files_per_batch=4, decode_batch=2))
        assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker really died
        assert report.new == 18
        check_exactly_once(idx, folder)


def test_cli_add_engine_ray(local_ray: None, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from omniret.cli.main import cli

    folder = tmp_path / "files"
    make_folder(folder, n_images=4, n_texts=1)
    idx = str(tmp_path / "idx")
    r = CliRunner().invoke(cli, ["--index", idx, "--json", "-q", "add", str(folder), "--model", "fake",
                                 "--engine", "ray"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["new"] == 6 and [f["uri"].split("/")[-1] for f in report["failed"]] == ["broken.jpg"]
    with omniret.open(idx) as index:
        check_exactly_once(index, folder)
