"""omniret.media.decode: dispatch by modality, option checking, walk → decode."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from omniret.errors import MediaError, OmniretError
from omniret.items import Modality
from omniret.media import decode
from omniret.media.text import TextDocument
from omniret.sources import walk


def test_image_and_text_dispatch(corpus: dict[str, Path]) -> None:
    im = decode(corpus["photo.jpg"], Modality.IMAGE, target_size=64)
    assert isinstance(im, Image.Image) and im.mode == "RGB" and min(im.size) >= 64
    doc = decode(corpus["notes.md"], "text", max_chars=50, overlap=10)
    assert isinstance(doc, TextDocument) and doc.title == "The Real Title" and len(doc) >= 2


@pytest.mark.parametrize("modality", ["audio", "video", "document"])
def test_media_modalities_dispatch_and_fail_cleanly(tmp_path: Path, modality: str) -> None:
    with pytest.raises(MediaError, match="file vanished"):
        decode(tmp_path / "x.bin", modality)
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(MediaError, match="empty file"):
        decode(tmp_path / "empty.bin", modality)


def test_unknown_option_and_modality(corpus: dict[str, Path]) -> None:
    with pytest.raises(
        OmniretError, match="unknown option.*target_sise.*choose from max_pixels, target_size"
    ):
        decode(corpus["photo.jpg"], "image", target_sise=3)
    with pytest.raises(OmniretError, match="unknown modality 'smell'"):
        decode(corpus["photo.jpg"], "smell")


def test_every_walked_file_decodes_or_fails_cleanly(corpus: dict[str, Path], tmp_path: Path) -> None:
    """The whole corpus through walk → decode: only MediaError ever escapes, with a reason."""
    root = tmp_path / "c"
    shutil.copytree(next(iter(corpus.values())).parent, root, ignore=shutil.ignore_patterns("folder.jpg"))
    result = walk(root)
    assert {f.modality for f in result.files} == {Modality.IMAGE, Modality.TEXT}
    ok, failed = 0, {}
    for f in result.files:
        try:
            decode(f.uri, f.modality)
            ok += 1
        except MediaError as e:
            failed[Path(f.uri).name] = e.reason
    assert set(failed) == {
        "empty.jpg", "truncated.jpg", "truncated.png", "random.png", "text.jpg", "pdf.png",
        "bomb.png", "binary.txt",
    }  # fmt: skip
    assert ok == len(result.files) - len(failed)


def test_file_deleted_between_walk_and_decode(corpus: dict[str, Path], tmp_path: Path) -> None:
    shutil.copy(corpus["photo.jpg"], tmp_path / "a.jpg")
    shutil.copy(corpus["utf8.txt"], tmp_path / "b.txt")
    files = walk(tmp_path).files
    for f in files:
        Path(f.uri).unlink()
    for f in files:
        with pytest.raises(MediaError) as info:
            decode(f.uri, f.modality)
        assert info.value.reason == "file vanished"


def test_import_has_no_heavy_side_effects() -> None:
    code = (
        "import sys, omniret.media, omniret.sources;"
        "print(sorted(m for m in ('PIL', 'charset_normalizer', 'torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
