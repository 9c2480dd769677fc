"""Described audio classification (ReCLAP style) in the audio space of a random-init tiny CLAP loaded
through the real ``hf:`` loader: the scores are the spec §9 mean-of-description-embeddings rule."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import omniret
from omniret.errors import ModelError, QueryError
from omniret.index import Index
from omniret.items import Modality
from omniret.methods.prompts import SOUND_DESCRIPTIONS, SOUND_TEMPLATES
from omniret.tasks.classify import build_prompts

sys.path.insert(0, str(Path(__file__).parent.parent / "media2"))

LABELS = ["cat", "dog", "rain", "siren"]


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def expected_probs(enc: object, labels: list[str], vecs: np.ndarray, sentences: dict[str, list[str]],
                   temperature: float = 100.0) -> np.ndarray:
    """Spec §9 written out: class_emb_c = normalize(mean_i normalize(text(p_i))); softmax(T * x . class_emb)."""
    class_emb = np.stack([_normalize(_normalize(enc.encode_text(sentences[lab])).mean(axis=0))  # type: ignore[attr-defined]
                          for lab in labels])
    logits = temperature * vecs.astype(np.float64) @ class_emb.T.astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tone, noise, and a 12 s sweep (long enough for windows, so children are classified too)."""
    import soundfile as sf

    d = tmp_path_factory.mktemp("sounds")
    rate, rng = 48_000, np.random.default_rng(0)
    t = np.arange(3 * rate) / rate
    sf.write(d / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    sf.write(d / "noise.wav", (0.1 * rng.standard_normal(3 * rate)).astype(np.float32), rate)
    t12 = np.arange(12 * rate) / rate
    sf.write(d / "sweep.wav", (0.3 * np.sin(2 * np.pi * (200 + 150 * t12) * t12)).astype(np.float32), rate)
    return d


@pytest.fixture(scope="module")
def index(sounds: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    from tiny_clap import build

    clap = build(tmp_path_factory.mktemp("clap") / "tiny-clap")
    with omniret.open(tmp_path_factory.mktemp("idx") / "idx", model="fake", audio_model=f"hf:{clap}") as ix:
        report = ix.add(sounds, workers=0)
        assert report.failed == [] and report.unembedded == 0
        yield ix


def test_audio_items_are_classified_in_the_audio_space(index: Index) -> None:
    enc = index.audio_encoder
    assert enc is not None and enc.space != index.encoder.space and enc.space in index.store.spaces()
    results = index.classify(LABELS, modality="audio", k=len(LABELS), descriptions="sounds")
    audio_ids = [it.id for it in index.store.iter_items() if it.modality is Modality.AUDIO]
    windows = [it for it in index.store.iter_items() if it.parent_id is not None]
    assert sorted(r.id for r in results) == sorted(audio_ids) and len(windows) >= 2 and len(audio_ids) == 3 + len(windows)
    sentences = {lab: [t.format(lab) for t in SOUND_TEMPLATES] + list(SOUND_DESCRIPTIONS[lab]) for lab in LABELS}
    vecs = index.store.vectors(enc.space, [r.id for r in results])
    want = expected_probs(enc, LABELS, vecs, sentences)
    got = np.array([[dict(r.labels)[lab] for lab in LABELS] for r in results])
    np.testing.assert_allclose(got, want, atol=2e-3)
    assert [r.best for r in results] == [LABELS[i] for i in want.argmax(axis=1)]


def test_descriptions_change_the_scores(index: Index) -> None:
    plain = index.classify(LABELS, modality="audio", k=len(LABELS))
    described = index.classify(LABELS, modality="audio", k=len(LABELS), descriptions="sounds")
    assert [r.id for r in plain] == [r.id for r in described]
    p = np.array([[dict(r.labels)[lab] for lab in LABELS] for r in plain])
    d = np.array([[dict(r.labels)[lab] for lab in LABELS] for r in described])
    assert np.abs(p - d).max() > 1e-3
    enc = index.audio_encoder
    want = expected_probs(enc, LABELS, index.store.vectors(enc.space, [r.id for r in plain]),  # type: ignore[union-attr]
                          {lab: [t.format(lab) for t in SOUND_TEMPLATES] for lab in LABELS})
    np.testing.assert_allclose(p, want, atol=2e-3)


def test_prompts_of_the_shipped_set_and_errors() -> None:
    prompts = build_prompts(["cat", "thunder"], "auto", "sounds", kind="audio")
    assert prompts["cat"][: len(SOUND_TEMPLATES)] == [t.format("cat") for t in SOUND_TEMPLATES]
    assert prompts["cat"][len(SOUND_TEMPLATES):] == list(SOUND_DESCRIPTIONS["cat"])
    assert prompts["thunder"] == [t.format("thunder") for t in SOUND_TEMPLATES]  # not in the set: templates only
    assert build_prompts(["cat"], "auto")["cat"][0] == "a bad photo of a cat."  # main space: CLIP's 80
    with pytest.raises(QueryError, match="choose from sounds"):
        build_prompts(["cat"], "auto", "birds")
    with pytest.raises(QueryError, match="choose from auto"):
        build_prompts(["cat"], "photos")


def test_write_keeps_vectors_and_files_mode(index: Index, sounds: Path) -> None:
    enc = index.audio_encoder
    before = index.store.vectors(enc.space, [r.id for r in index.classify(LABELS, modality="audio")])  # type: ignore[union-attr]
    written = index.classify(LABELS, modality="audio", write=True, descriptions="sounds")
    assert index.classify(LABELS, modality="audio", descriptions="sounds") == written
    after = index.store.vectors(enc.space, [r.id for r in written])  # type: ignore[union-attr]
    np.testing.assert_array_equal(before, after)
    labelled = [it for it in index.store.iter_items() if it.modality is Modality.AUDIO]
    assert all(it.metadata["class"] in LABELS for it in labelled)
    assert all(" @ " in it.metadata["label"] for it in labelled)  # the display label (name @ mm:ss–mm:ss) stays
    (res,) = index.classify(LABELS, files=[sounds / "tone.wav"], k=len(LABELS), descriptions="sounds")
    import soundfile as sf

    wave, rate = sf.read(sounds / "tone.wav", dtype="float32")
    vec = enc.encode_audio([wave], rate)  # type: ignore[union-attr]
    sentences = {lab: [t.format(lab) for t in SOUND_TEMPLATES] + list(SOUND_DESCRIPTIONS[lab]) for lab in LABELS}
    want = expected_probs(enc, LABELS, vec, sentences)[0]
    np.testing.assert_allclose([dict(res.labels)[lab] for lab in LABELS], want, atol=2e-3)


def test_no_audio_model_says_which_model_is_missing(sounds: Path, tmp_path: Path) -> None:
    with omniret.open(tmp_path / "idx", model="fake") as ix:
        ix.add(sounds, workers=0)
        with pytest.raises(ModelError, match="audio model"):
            ix.classify(LABELS, modality="audio")


def test_cli_classifies_audio_with_the_shipped_descriptions(index: Index) -> None:
    from omniret.cli.main import cli
    from omniret.cli.tasks import classify_cmd

    if "classify" not in cli.commands:
        cli.add_command(classify_cmd)
    path = str(index.path)
    r = CliRunner().invoke(cli, ["--index", path, "--json", "classify", "--labels", ",".join(LABELS),
                                 "--modality", "audio", "--descriptions", "sounds"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    assert len(rows) == index.store.count() and all(row["best"] in LABELS for row in rows)
