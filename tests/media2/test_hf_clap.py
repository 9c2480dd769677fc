"""The ``hf:`` encoder on random-init tiny CLAP and CLIP checkpoints loaded through the real loader, and in ingest."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_clap import build, build_clip

from omniret.encoders.base import Encoder
from omniret.encoders.registry import create
from omniret.errors import ModelError
from omniret.ingest.run import run_add
from omniret.ingest.work import IngestOptions
from omniret.items import Modality
from omniret.store import open_store


@pytest.fixture(scope="module")
def clap(tmp_path_factory: pytest.TempPathFactory) -> Encoder:
    path = build(tmp_path_factory.mktemp("clap") / "tiny-clap")
    return create(f"hf:{path}", device="cpu", batch_size=4)


def test_loads_and_embeds_text_and_audio(clap: Encoder) -> None:
    assert clap.dim == 16 and clap.modalities == frozenset({Modality.TEXT, Modality.AUDIO})
    t = clap.encode_text(["the sound of a cat", "a dog barks", "rain"])
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(48_000 * s).astype(np.float32) * 0.1 for s in (1, 3, 10)]
    a = clap.encode_audio(waves, 48_000)
    assert t.shape == (3, 16) and a.shape == (3, 16) and clap.audio_rate == 48_000
    np.testing.assert_allclose(np.linalg.norm(np.vstack([t, a]), axis=1), 1.0, atol=1e-5)
    assert not np.allclose(a[0], a[1])  # different sounds, different vectors
    np.testing.assert_allclose(clap.encode(waves, modality=Modality.AUDIO), a, atol=1e-6)  # base dispatch


def test_long_audio_is_cropped_at_the_centre_deterministically(clap: Encoder) -> None:
    rng = np.random.default_rng(1)
    long = rng.standard_normal(48_000 * 14).astype(np.float32) * 0.1
    a, b = clap.encode_audio([long], 48_000), clap.encode_audio([long], 48_000)
    np.testing.assert_array_equal(a, b)  # rand_trunc never gets to pick a random crop
    np.testing.assert_allclose(a, clap.encode_audio([long[2 * 48_000 : 12 * 48_000]], 48_000), atol=1e-5)


def test_errors_name_the_fix(clap: Encoder, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="at 48000 Hz"):
        clap.encode_audio([np.zeros(16_000, np.float32)], 16_000)
    with pytest.raises(ModelError, match="cannot embed image"):
        clap.encode([], modality=Modality.IMAGE)
    with pytest.raises(ModelError, match="no readable config.json"):
        create(f"hf:{tmp_path}")
    with pytest.raises(ModelError, match="hf:<folder>"):
        create("hf:laion/clap-htsat-unfused")  # no network here: the hub cannot be reached
    with pytest.raises(ModelError, match="does not embed audio.*clap"):
        create("fake").encode_audio([np.zeros(10, np.float32)], 48_000)


def test_clap_as_the_audio_model_of_an_ingest(clap: Encoder, animals: Path, tmp_path: Path) -> None:
    for name in ("cat.mp3", "dog.mp3", "horse.mp3"):
        shutil.copy(animals / name, tmp_path / name)
    with open_store(tmp_path / "idx") as store:
        report = run_add([str(tmp_path)], store, create("fake"), IngestOptions(workers=0), audio_encoder=clap)
        assert report.failed == [] and report.unembedded == 0 and report.items == 3
        q = clap.encode_text(["a horse neighing"])
        scores, ids = store.search(clap.space, q, 3)
        assert len([i for i in ids[0] if i is not None]) == 3 and scores[0][0] >= scores[0][-1]


def test_clip_by_path_embeds_images_and_video(media_dir: Path, tmp_path: Path) -> None:
    import omniret

    path = build_clip(tmp_path / "tiny-clip")
    clip = create(f"hf:{path}")
    assert clip.dim == 16 and clip.modalities == frozenset({Modality.TEXT, Modality.IMAGE})
    pre = pickle.loads(pickle.dumps(clip.image_preprocessor()))  # what the decode workers receive
    from PIL import Image

    pixels = pre(Image.new("RGB", (64, 48), (200, 30, 30)))
    assert pixels.shape == (3, 32, 32)
    np.testing.assert_allclose(np.linalg.norm(clip.encode_pixels(pixels[None]), axis=1), 1.0, atol=1e-5)
    shutil.copy(media_dir / "scenes.mp4", tmp_path / "scenes.mp4")
    with omniret.open(tmp_path / "idx", model=f"hf:{path}") as index:
        report = index.add(tmp_path / "scenes.mp4", workers=0)
        assert report.failed == [] and report.items == 4
        hits = index.search("a cat", k=4)
        assert len(hits) == 4 and {h.modality for h in hits} == {Modality.VIDEO}
