"""Registry errors and the ``auto`` choice (never touches the network)."""

from __future__ import annotations

import pytest

from omniret.encoders import auto
from omniret.encoders.offline import OfflineEncoder
from omniret.encoders.registry import DEFAULT_OPENCLIP, create
from omniret.errors import ModelError


def test_unknown_model_lists_choices() -> None:
    with pytest.raises(ModelError, match="unknown model 'nope:x'; choose from: offline, .*openclip:"):
        create("nope:x")


@pytest.mark.parametrize("bad", ["", None])
def test_empty_model_name(bad: object) -> None:
    with pytest.raises(ModelError, match="non-empty string"):
        create(bad)  # type: ignore[arg-type]


def test_offline_rejects_unknown_suffix() -> None:
    with pytest.raises(ModelError, match="unknown offline variant 'offline:big'; choose 'offline' or offline:multilingual"):
        create("offline:big")


def test_auto_falls_back_to_offline(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from omniret.encoders import openclip as oc

    monkeypatch.setattr(oc, "cached_file", lambda repo, files: None)
    monkeypatch.setattr(oc, "hub_reachable", lambda repo, files, timeout=3.0: None)
    enc = create("auto")
    assert isinstance(enc, OfflineEncoder) and enc.name == "offline"
    assert "chose 'offline'" in capsys.readouterr().err


def test_auto_picks_openclip_when_cached(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from omniret.encoders import openclip as oc

    monkeypatch.setattr(oc, "cached_file", lambda repo, files: "/cache/" + files[0])
    enc = create("auto")
    assert enc.name == DEFAULT_OPENCLIP and enc.dim == 512
    assert DEFAULT_OPENCLIP in capsys.readouterr().err


def test_auto_offline_here_is_fast_and_real() -> None:
    """With HF_HUB_OFFLINE set, no probe is made at all; here the weights are not cached either."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        if auto.weights_available(DEFAULT_OPENCLIP):
            pytest.skip("the default open_clip weights are cached on this machine")
        assert create("auto").name == "offline"
    finally:
        mp.undo()


def test_auto_hub_files_of_default() -> None:
    from omniret.encoders.openclip import hub_files

    repo, files = hub_files("ViT-B-32-256", "datacomp_s34b_b86k")  # type: ignore[misc]
    assert repo == "laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K"
    assert "open_clip_pytorch_model.bin" in files


def test_name_and_config_rebuild_the_encoder(tiny_openclip_dir, tiny_st_dir) -> None:  # type: ignore[no-untyped-def]
    """What the manifest records (name + config()) builds an equivalent encoder again."""
    for enc in (create("offline"), create("offline", top_k=5, blend=0.5),
                create(f"openclip:local-dir:{tiny_openclip_dir}"), create(f"st:{tiny_st_dir}")):
        again = create(enc.name, **enc.config())
        assert (again.name, again.space, again.dim, again.config()) == (enc.name, enc.space, enc.dim, enc.config())
