"""Few-pair alignment: the torch loss against the numpy reference, training on synthetic pairs, and
`omniret align` on a real offline index (scikit-image photos, real EfficientNet-Lite0 + MiniLM weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import omniret
from omniret.cli.main import cli
from omniret.encoders.aligned import AlignedOfflineEncoder, Projector
from omniret.errors import ModelError, QueryError
from omniret.methods.alignment import info_nce, structure_regularizer
from omniret.tasks import align as al

PHOTOS = {"chelsea": "a cat looking at the camera", "coffee": "a coffee cup on a saucer",
          "rocket": "a space rocket before launch", "astronaut": "a woman in a space suit",
          "horse": "a horse drawn in black", "coins": "old coins in rows"}


def test_torch_losses_match_the_numpy_reference() -> None:
    import torch

    from omniret.tasks.align_loss import structure_loss, symmetric_info_nce

    rng = np.random.default_rng(1)
    x, z = rng.standard_normal((12, 7)), rng.standard_normal((12, 5))
    for levels in (1, 3):
        got = float(structure_loss(torch.tensor(x), torch.tensor(z), levels=levels, tau=0.2))
        assert got == pytest.approx(structure_regularizer(x, z, levels=levels, tau=0.2), rel=1e-6)
    zu = z / np.linalg.norm(z, axis=1, keepdims=True)
    tu = rng.standard_normal((12, 5))
    tu /= np.linalg.norm(tu, axis=1, keepdims=True)
    assert float(symmetric_info_nce(torch.tensor(zu), torch.tensor(tu), 0.07)) == pytest.approx(info_nce(zu, tu, 0.07), rel=1e-6)


def test_training_recovers_a_hidden_map() -> None:
    """Texts are a hidden linear image of the features: the trained projector retrieves held-out pairs."""
    rng = np.random.default_rng(0)
    feats = np.abs(rng.standard_normal((600, 1280))).astype(np.float32)
    hidden = rng.standard_normal((1280, 384)) / 30
    texts = (feats / np.linalg.norm(feats, axis=1, keepdims=True) - 0.03) @ hidden
    texts = (texts / np.linalg.norm(texts, axis=1, keepdims=True)).astype(np.float32)
    cfg = al.AlignConfig(epochs=3, batch_size=128, structure_lambda=10.0, warmup_steps=5)
    proj, history = al.train_projector(feats[:500], texts[:500], cfg)
    assert len(history) == 3 and all(np.isfinite(history))
    assert al.recall_at(texts[500:], proj(feats[500:]), 1) > 0.9
    with pytest.raises(QueryError, match="at least two pairs"):
        al.train_projector(feats[:1], texts[:1], cfg)


def test_recall_at_by_hand() -> None:
    q = np.eye(3)
    g = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]])
    # query 1 (e2) scores 0 against every row: its own row ties with row 0, which wins the tie -> rank 2
    assert al.recall_at(q, g, 1) == pytest.approx(2 / 3)
    assert al.recall_at(q, g, 2) == 1.0


def _pairs(folder: Path, sample_images: dict) -> Path:
    rows = []
    for name, text in PHOTOS.items():
        sample_images[name].save(folder / f"{name}.png")
        rows.append({"image": f"{name}.png", "text": text})
    path = folder / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import skimage.data
    from PIL import Image

    return {n: Image.fromarray(np.asarray(getattr(skimage.data, n)())).convert("RGB") for n in PHOTOS}


def test_align_an_offline_index(tmp_path: Path, photos: dict) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    pairs = _pairs(folder, photos)
    (folder / "note.txt").write_text("Coffee is brewed from roasted beans.", encoding="utf-8")
    with omniret.open(tmp_path / "idx", model="offline") as idx:
        idx.add([str(folder)], workers=0)
        space = idx.encoder.space
        ids = [it.id for it in idx.store.iter_items()]
        before = idx.store.vectors(space, ids)
        report = idx.align(pairs, epochs=3, mix=0.5)
        assert report.pairs == 6 and report.reembedded == 6 and report.mix == 0.5
        assert isinstance(idx.encoder, AlignedOfflineEncoder) and idx.encoder.name == "offline+aligned"
        after = idx.store.vectors(space, ids)
        kinds = {it.id: it.modality.value for it in idx.store.iter_items()}
        for i, item_id in enumerate(ids):
            if kinds[item_id] == "text":
                np.testing.assert_array_equal(after[i], before[i])  # the text space did not move
            else:
                assert not np.allclose(after[i], before[i], atol=1e-3)  # images were re-embedded
        cat = next(it for it in idx.store.iter_items() if it.uri.endswith("chelsea.png"))
        fresh = idx.encoder.encode_images([photos["chelsea"]])[0]
        np.testing.assert_allclose(idx.store.vectors(space, [cat.id])[0], fresh, atol=2e-3)  # float16 storage
        assert idx.search("a cat", k=1, modality="image")
        manifest = idx.store.manifest()
        assert manifest["encoder"]["name"] == "offline+aligned" and manifest["align"]["state"] == "complete"
        assert (Path(idx.files) / al.PROJECTOR).is_file()
    with omniret.open(tmp_path / "idx") as idx:  # reopened with no flags: the projector comes back
        assert idx.encoder.name == "offline+aligned" and idx.encoder.mix == 0.5
        photos["rocket"].save(folder / "rocket2.png")
        idx.add([str(folder / "rocket2.png")], workers=0)
        new = next(it for it in idx.store.iter_items() if it.uri.endswith("rocket2.png"))
        np.testing.assert_allclose(idx.store.vectors(space, [new.id])[0], idx.encoder.encode_images([photos["rocket"]])[0],
                                   atol=2e-3)
    with omniret.open(tmp_path / "idx", model="offline+aligned") as idx:
        assert idx.encoder.projector.digest() == idx.store.manifest()["align"]["digest"]


def test_cli_align_and_errors(tmp_path: Path, photos: dict) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    pairs = _pairs(folder, photos)
    runner = CliRunner()
    assert runner.invoke(cli, ["--index", str(tmp_path / "idx"), "add", str(folder), "--model", "offline"]).exit_code == 0
    res = runner.invoke(cli, ["--index", str(tmp_path / "idx"), "--json", "align", "--pairs", str(pairs),
                              "--epochs", "2", "--lambda", "0"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index('{"event"'):].splitlines()[0])  # after any progress bars
    assert out["event"] == "align" and out["pairs"] == 6 and 0.0 <= out["mix"] <= 1.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "a.png", "text": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(QueryError, match=r"bad.jsonl:2"):
        al.read_pairs(bad)
    with omniret.open(tmp_path / "fakeidx", model="fake") as idx, pytest.raises(ModelError, match="offline"):
        idx.align(pairs)
    with pytest.raises(ModelError, match="needs its projector"):
        omniret.encoders.registry.create("offline+aligned")


def test_projector_roundtrip_and_shape_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p = Projector(rng.standard_normal((1280, 384)), rng.standard_normal(384), rng.standard_normal(1280))
    p.save(tmp_path / "p.npz")
    q = Projector.load(tmp_path / "p.npz")
    assert q.digest() == p.digest()
    np.testing.assert_allclose(q(rng.standard_normal((2, 1280))).shape, (2, 384))
    with pytest.raises(ModelError, match="needs W"):
        Projector(np.zeros((10, 3)), np.zeros(3), np.zeros(10))
    with pytest.raises(ModelError, match="cannot read"):
        Projector.load(tmp_path / "missing.npz")
