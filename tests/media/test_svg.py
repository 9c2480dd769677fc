"""SVG drawings are rasterised (CairoSVG) and indexed like images; bad, huge or hostile ones fail by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniret.errors import MediaError
from omniret.media.image import load_image

pytest.importorskip("cairosvg", exc_type=ImportError)

DRAWING = ('<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 100 {vh}">'
           '<rect width="100" height="{vh}" fill="#0000ff"/><circle cx="50" cy="{cy}" r="20" fill="#ff0000"/></svg>')


def _svg(path: Path, w: float = 100, h: float = 100, vh: float = 100) -> Path:
    path.write_text(DRAWING.format(w=w, h=h, vh=vh, cy=vh / 2))
    return path


def test_a_drawing_becomes_an_rgb_picture(tmp_path: Path) -> None:
    im = load_image(_svg(tmp_path / "dot.svg"), target_size=224)
    a = np.asarray(im)
    assert im.mode == "RGB" and im.size == (512, 512)
    assert tuple(a[256, 256]) == (255, 0, 0) and tuple(a[10, 10]) == (0, 0, 255)


def test_extreme_sizes_stay_bounded(tmp_path: Path) -> None:
    tall = load_image(_svg(tmp_path / "tall.svg", w=10, h=1_000_000, vh=100_000))
    assert max(tall.size) == 512 and tall.size[0] >= 1
    wide = load_image(_svg(tmp_path / "wide.svg", w=10_000_000, h=10))
    assert max(wide.size) == 512


def test_bad_and_hostile_drawings_fail_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "broken.svg").write_text("<svg><rect")
    with pytest.raises(MediaError, match="cannot draw this SVG"):
        load_image(tmp_path / "broken.svg")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    (tmp_path / "xxe.svg").write_text(
        f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&x;</text></svg>')
    with pytest.raises(MediaError, match="cannot draw this SVG"):  # entities are refused, not resolved
        load_image(tmp_path / "xxe.svg")
    (tmp_path / "empty.svg").write_bytes(b"")
    with pytest.raises(MediaError, match="empty file"):
        load_image(tmp_path / "empty.svg")


def test_svgs_are_indexed_and_found(tmp_path: Path) -> None:
    import omniret

    d = tmp_path / "art"
    d.mkdir()
    _svg(d / "dot.svg")
    (d / "bad.svg").write_text("not xml at all")
    with omniret.open(tmp_path / "idx", model="fake") as idx:
        rep = idx.add(d, workers=0)
        assert rep.new == 2 and [Path(u).name for u, _ in rep.failed] == ["bad.svg"] and not rep.skipped
        hits = idx.search(image=str(d / "dot.svg"), k=1)
        assert Path(hits[0].uri).name == "dot.svg"
