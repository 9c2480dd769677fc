"""The audio space of an index: manifest, ingest, text → audio, audio → audio, routes, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import omniret
from omniret.errors import ModelError, ModelMismatchError, QueryError
from omniret.items import Modality


@pytest.fixture(scope="module")
def index_dir(mixed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("idx") / "idx"
    with omniret.open(d, model="fake", audio_model="fake-clap") as index:
        report = index.add(mixed, workers=0)
        assert report.failed == [] and report.unembedded == 0
    return d


def _name(h) -> str:  # type: ignore[no-untyped-def]
    return Path(h.uri).name


def test_audio_items_get_vectors_in_the_audio_space(index_dir: Path) -> None:
    with omniret.open(index_dir) as index:  # no flags: the manifest restores both encoders
        assert index.audio_encoder is not None and index.audio_encoder.name == "fake-clap"
        manifest = index.store.manifest()
        assert manifest["audio_encoder"]["space"] == "fake-clap-32" and manifest["audio_encoder"]["dim"] == 32
        assert set(manifest["spaces"]) == {"fake-64", "fake-clap-32"}
        audio = [it for it in index.store.iter_items() if it.modality is Modality.AUDIO]
        assert len([it for it in audio if it.parent_id is None]) == 3 and len(audio) > 3  # windows as children
        vecs = index.store.vectors("fake-clap-32", [it.id for it in audio])
        assert not np.isnan(vecs).any()
        assert np.isnan(index.store.vectors("fake-64", [audio[0].id])).all()  # not in the main space


def test_text_to_audio_through_the_audio_space(index_dir: Path) -> None:
    with omniret.open(index_dir) as index:
        for freq in (300, 3000):
            hits = index.search(f"a {freq} hz tone", route="audio", k=5)
            assert hits and all(h.modality is Modality.AUDIO for h in hits)
            assert _name(hits[0]) == f"tone{freq}.wav"
        files = index.search("a 3000 hz tone", route="audio", granularity="parent", k=3)
        assert [_name(h) for h in files][0] == "tone3000.wav" and all(h.parent_id is None for h in files)


def test_query_by_example_sound(index_dir: Path, excerpt: Path, mixed: Path) -> None:
    with omniret.open(index_dir) as index:
        hits = index.search(audio=excerpt, k=5)
        assert _name(hits[0]) == "tone300.wav" and all(h.modality is Modality.AUDIO for h in hits)
        same = index.search(audio=mixed / "noise.wav", k=1, granularity="parent")
        assert _name(same[0]) == "noise.wav" and same[0].score == pytest.approx(1.0, abs=1e-3)
        with pytest.raises(QueryError, match="audio="):
            index.search("tone", audio=excerpt)


def test_auto_route_merges_spaces_with_calibrated_scores(index_dir: Path) -> None:
    with omniret.open(index_dir) as index:
        hits = index.search("a low hum at 300 hz", k=8, granularity="parent")
        mods = [h.modality for h in hits]
        names = [_name(h) for h in hits]
        # the note with these words (main space) and the 300 Hz recording (audio space) both lead; by raw
        # cosine the recording (1.0 in the audio space) would come first, calibrated the note stands out more
        assert names[0] == "note0.txt" and "tone300.wav" in names[:3]
        assert names.index("tone300.wav") < names.index("tone3000.wav") if "tone3000.wav" in names else True
        raw = index.search("a low hum at 300 hz", route="audio", k=1)[0]
        assert raw.score == pytest.approx(1.0, abs=1e-3)  # one space only: raw cosine, uncalibrated
        assert Modality.IMAGE in mods  # every space's candidates on one calibrated scale
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        # raw cosines would not be comparable: calibrated scores are z-scores, not in [-1, 1]
        assert max(abs(s) for s in scores) > 1.0


def test_route_all_gives_every_modality_candidates(index_dir: Path) -> None:
    with omniret.open(index_dir) as index:
        hits = index.search("red", route="all", k=30, granularity="parent")
        assert {h.modality for h in hits} == {Modality.IMAGE, Modality.TEXT, Modality.AUDIO}


def test_route_modality_keeps_only_that_modality(index_dir: Path) -> None:
    with omniret.open(index_dir) as index:
        assert {h.modality for h in index.search("a 300 hz tone", route="audio", k=20)} == {Modality.AUDIO}
        assert {h.modality for h in index.search("red", route="image", k=20)} == {Modality.IMAGE}
        with pytest.raises(QueryError, match="exclude each other"):
            index.search("red", route="image", modality="text")
        with pytest.raises(QueryError, match="unknown route"):
            index.search("red", route="sideways")


def test_without_an_audio_model(mixed: Path, excerpt: Path, tmp_path: Path) -> None:
    with omniret.open(tmp_path / "plain", model="fake") as index:
        report = index.add(mixed, workers=0)
        assert report.unembedded == 3 and index.audio_encoder is None
        assert "audio_encoder" not in index.store.manifest()
        with pytest.raises(ModelError, match="--audio-model hf:"):
            index.search(audio=excerpt)
        with pytest.raises(ModelError, match="needs an audio model"):
            index.search("a 300 hz tone", route="audio")
        with pytest.raises(ModelError, match="needs an audio model"):
            index.search("a 300 hz tone", modality="audio")
        hits = index.search("a low hum at 300 hz", k=20)  # the main space still works
        assert hits and Modality.AUDIO not in {h.modality for h in hits}
        stored = [it for it in index.store.iter_items() if it.modality is Modality.AUDIO]
        assert len(stored) == 3 and all(it.metadata["embedded"] is False for it in stored)


def test_manifest_round_trip_and_mismatch(tmp_path: Path) -> None:
    with omniret.open(tmp_path / "i", model="fake", audio_model="fake-clap"):
        pass
    with omniret.open(tmp_path / "i", audio_model="auto") as index:
        assert index.audio_encoder is not None and index.audio_encoder.space == "fake-clap-32"
    with pytest.raises(ModelMismatchError, match="fake-clap"):
        omniret.open(tmp_path / "i", audio_model="hf:/nowhere")


def test_auto_audio_model_is_none_without_cached_weights(tmp_path: Path) -> None:
    from omniret.spaces.audio import clap_cached

    with omniret.open(tmp_path / "a", model="fake", audio_model="auto") as index:
        assert index.audio_encoder is None  # no CLAP weights on this machine, and no network probe
    folder = tmp_path / "clap"
    folder.mkdir()
    assert not clap_cached(f"hf:{folder}")
    (folder / "config.json").write_text("{}")
    assert clap_cached(f"hf:{folder}")


def test_audio_model_must_embed_audio(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not embed audio"):
        omniret.open(tmp_path / "b", model="fake", audio_model="fake")
